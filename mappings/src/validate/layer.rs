//! Rule layers a platform adds on top of EN 16931 (`[validation] layers`,
//! `quai validate --layer`): today the French CTC rules (BR-FR); and which
//! Factur-X / ZUGFeRD profiles it accepts (`[validation] profiles`).

#[cfg(test)]
use crate::model::Severity;
use crate::model::{Invoice, Profile, Syntax, Violation};

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

/// The Factur-X / ZUGFeRD profiles a platform accepts, each judged by its
/// own schematron; a CII document whose BT-24 (or PDF metadata) names
/// another is refused with a `PROFILE` finding that says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profiles(u8);

/// The profiles by configuration name, in the order of their content.
const PROFILE_NAMES: &[(&str, Profile)] = &[
    ("minimum", Profile::Minimum),
    ("basic-wl", Profile::BasicWl),
    ("basic", Profile::Basic),
    ("en16931", Profile::En16931),
    ("extended", Profile::Extended),
];

/// The rule id of a refused profile.
pub const PROFILE_RULE: &str = "PROFILE";

impl Profiles {
    /// Every profile.
    pub const ALL: Profiles = Profiles(0b1_1111);
    /// Those the French reform accepts as invoices: BASIC, EN 16931 and
    /// EXTENDED (MINIMUM and BASIC WL carry no lines: booking aids, not
    /// invoices). The default of `[validation] profiles`.
    pub const REFORM: Profiles = Profiles(0b1_1100);

    fn bit(p: Profile) -> Option<u8> {
        PROFILE_NAMES
            .iter()
            .position(|(_, q)| *q == p)
            .map(|i| 1 << i)
    }

    /// `["basic", "en16931", "extended"]`: names as in the configuration
    /// (`basic-wl` also written `basicwl`; case and spaces ignored).
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Profiles, String> {
        let mut set = 0;
        for n in names {
            let key = n.trim().to_ascii_lowercase().replace([' ', '_'], "-");
            let key = if key == "basicwl" {
                "basic-wl".to_string()
            } else {
                key
            };
            match PROFILE_NAMES.iter().position(|(name, _)| *name == key) {
                Some(i) => set |= 1 << i,
                None => {
                    let known: Vec<&str> = PROFILE_NAMES.iter().map(|(n, _)| *n).collect();
                    return Err(format!(
                        "unknown Factur-X profile {n:?} (known: {})",
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(Profiles(set))
    }

    /// Whether a document of profile `p` is accepted (a profile that is no
    /// Factur-X one always is).
    pub fn accepts(self, p: Profile) -> bool {
        Self::bit(p).is_none_or(|b| self.0 & b != 0)
    }

    /// The accepted profiles' names, for messages.
    pub fn names(self) -> Vec<&'static str> {
        PROFILE_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, (n, _))| *n)
            .collect()
    }
}

impl Default for Profiles {
    fn default() -> Self {
        Profiles::ALL
    }
}

/// The layers applied to a document, with their options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layers {
    /// The French CTC rules, in the given mode; `None`: not applied.
    pub fr_ctc: Option<FrMode>,
    /// The Factur-X profiles accepted ([`Profiles::ALL`] in [`Layers::NONE`]).
    pub profiles: Profiles,
}

impl Layers {
    /// No layer: EN 16931 alone, every profile accepted.
    pub const NONE: Layers = Layers {
        fr_ctc: None,
        profiles: Profiles::ALL,
    };

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
        self.fr_ctc.is_none() && self.profiles == Profiles::ALL
    }
}

/// The finding for a document in a profile the platform does not accept,
/// worded for the supplier who must send it again.
fn refused_profile(p: Profile, accepted: Profiles) -> Violation {
    let display = |n: &str| match n {
        "basic-wl" => "BASIC WL".to_string(),
        "en16931" => "EN 16931".to_string(),
        other => other.to_ascii_uppercase(),
    };
    let list: Vec<String> = accepted.names().iter().map(|n| display(n)).collect();
    let send = if list.is_empty() {
        "this platform accepts no Factur-X profile: send the invoice as UBL or CII".to_string()
    } else {
        format!(
            "send the invoice again in the {} profile",
            match list.as_slice() {
                [one] => one.clone(),
                [init @ .., last] => format!("{} or {last}", init.join(", ")),
                [] => unreachable!(),
            }
        )
    };
    let why = match p {
        Profile::Minimum => "a Factur-X MINIMUM file is not a complete invoice: it carries only the header and the totals (no invoice lines, no VAT breakdown, no payment terms); it is a booking aid, which the reform does not accept as an invoice".to_string(),
        Profile::BasicWl => "a Factur-X BASIC WL file is not a complete invoice: it carries no invoice lines; it is a booking aid, which the reform does not accept as an invoice".to_string(),
        other => format!("this platform does not accept the Factur-X {} profile", other.as_str()),
    };
    Violation::fatal(PROFILE_RULE, "BT-24", format!("{why}; {send}"))
}

/// The findings of `layers` on `invoice` (EN 16931 excluded: see
/// [`super::validate`]).
pub fn validate_layers(invoice: &Invoice, layers: &Layers) -> Vec<Violation> {
    let mut out = Vec::new();
    if matches!(invoice.syntax, Some(Syntax::Cii | Syntax::FacturX)) {
        if let Some(p) = invoice.profile {
            if !layers.profiles.accepts(p) {
                out.push(refused_profile(p, layers.profiles));
            }
        }
    }
    if let Some(mode) = layers.fr_ctc {
        out.extend(fr::validate(invoice, mode));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_by_name_and_the_reform_default() {
        let p = Profiles::from_names(["Basic", "EN16931", "extended"]).unwrap();
        assert_eq!(p, Profiles::REFORM);
        assert_eq!(
            Profiles::from_names(["basicwl", "BASIC WL"]).unwrap(),
            Profiles::from_names(["basic-wl"]).unwrap()
        );
        assert!(Profiles::from_names(["comfort"])
            .unwrap_err()
            .contains("known: minimum"));
        assert!(!Profiles::REFORM.accepts(Profile::Minimum));
        assert!(!Profiles::REFORM.accepts(Profile::BasicWl));
        assert!(Profiles::REFORM.accepts(Profile::Xrechnung));
        assert!(Profiles::ALL.accepts(Profile::Minimum));
    }

    #[test]
    fn a_refused_profile_says_why_and_what_to_send() {
        let inv = Invoice {
            syntax: Some(Syntax::Cii),
            profile: Some(Profile::Minimum),
            ..Invoice::default()
        };
        let layers = Layers {
            profiles: Profiles::REFORM,
            ..Layers::NONE
        };
        let v = validate_layers(&inv, &layers);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].rule, PROFILE_RULE);
        assert_eq!(v[0].severity, Severity::Fatal);
        assert!(
            v[0].message.contains("not a complete invoice"),
            "{}",
            v[0].message
        );
        assert!(
            v[0].message.contains("BASIC, EN 16931 or EXTENDED"),
            "{}",
            v[0].message
        );
        // A UBL document is not judged by its Factur-X profile.
        let ubl = Invoice {
            syntax: Some(Syntax::Ubl),
            ..inv.clone()
        };
        assert!(validate_layers(&ubl, &layers).is_empty());
        assert!(validate_layers(&inv, &Layers::NONE).is_empty());
    }
}
