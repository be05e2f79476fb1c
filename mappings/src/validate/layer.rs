//! Rule layers a platform adds on top of EN 16931 (`[validation] layers`,
//! `quai validate --layer`): today the French CTC rules (BR-FR).

use crate::model::{Invoice, Violation};

use super::fr::{self, FrMode};

/// One optional rule layer, by its configuration name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// `fr-ctc`: the BR-FR Flux 2 rules of AFNOR XP Z12-012 v1.4.
    FrCtc,
}

impl Layer {
    /// Every layer quai knows, for messages.
    pub const ALL: &'static [Layer] = &[Layer::FrCtc];

    pub fn parse(name: &str) -> Option<Layer> {
        match name.trim().to_ascii_lowercase().as_str() {
            "fr-ctc" => Some(Layer::FrCtc),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Layer::FrCtc => "fr-ctc",
        }
    }
}

/// The layers applied to a document, with their options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layers {
    /// The French CTC rules, in the given mode; `None`: not applied.
    pub fr_ctc: Option<FrMode>,
}

impl Layers {
    /// No layer: EN 16931 alone.
    pub const NONE: Layers = Layers { fr_ctc: None };

    /// The layers named in `names`, the French one in `fr_mode`.
    pub fn from_names<'a>(
        names: impl IntoIterator<Item = &'a str>,
        fr_mode: FrMode,
    ) -> Result<Layers, String> {
        let mut layers = Layers::NONE;
        for n in names {
            match Layer::parse(n) {
                Some(Layer::FrCtc) => layers.fr_ctc = Some(fr_mode),
                None => {
                    let known: Vec<&str> = Layer::ALL.iter().map(|l| l.name()).collect();
                    return Err(format!(
                        "unknown validation layer {n:?} (known: {})",
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(layers)
    }

    pub fn is_empty(&self) -> bool {
        self.fr_ctc.is_none()
    }
}

/// The findings of `layers` on `invoice` (EN 16931 excluded: see
/// [`super::validate`]).
pub fn validate_layers(invoice: &Invoice, layers: &Layers) -> Vec<Violation> {
    let mut out = Vec::new();
    if let Some(mode) = layers.fr_ctc {
        out.extend(fr::validate(invoice, mode));
    }
    out
}
