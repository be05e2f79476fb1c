//! The lifecycle statuses of one invoice and the one table that says which
//! may follow which, and who may emit each.
//!
//! The codes are those of the 2026 French e-invoicing reform (DGFiP
//! external specifications, AFNOR XP Z12-012 / XP Z12-014, carried in CDAR
//! as `ram:ProcessConditionCode`, MDT-105). An invoice's history is read
//! in order; the status a new one is checked against is the *latest* one.
//! An invoice stored by quai starts with an implicit 200 *Déposée*
//! (accepted) or 213 *Rejetée* (rejected): the verdict of its flow, already
//! told to the supplier in the flow's CDAR, so it is never written twice.
//!
//! ```text
//!  next  │ may follow (latest status)            │ emitted by
//!  ──────┼───────────────────────────────────────┼──────────────────────
//!  200   │ nothing (the first status)            │ platform
//!  201   │ 200                                   │ platform
//!  202   │ 201                                   │ platform
//!  203   │ 201 202                               │ platform
//!  213   │ nothing, 200 201 202                  │ platform
//!  204   │ T                                     │ recipient
//!  205   │ T 204 206 207 209                     │ recipient
//!  206   │ T 204 206 207 209                     │ recipient
//!  207   │ T 204 205 206 209                     │ recipient
//!  208   │ T 204 207                             │ recipient
//!  209   │ 208                                   │ recipient, supplier
//!  210   │ T 204 207 208 209                     │ recipient
//!  211   │ 205 206 211                           │ recipient
//!  212   │ T 204 205 206 207 208 209 211 212     │ supplier
//! ```
//! (`T` = transmitted: 201, 202 or 203.)
//!
//! So: 213 *Rejetée* and 210 *Refusée* are final (a refused or rejected
//! invoice is cancelled by a credit note, never revived: 205 after 210 is
//! refused); after 212 *Encaissée* only another 212 (a later partial
//! payment); the buyer's statuses need the invoice to have been
//! transmitted to it; a payment (211) follows an approval; a suspended
//! invoice (208) waits for 209 *Complétée*, or is refused. 209 is emitted
//! by the side that completes the invoice: the DGFiP specifications have
//! the supplier complete what the buyer suspended, quai's issue lists it
//! with the buyer's statuses, so either side may send it.

use serde::{Deserialize, Serialize};

use crate::state::UnknownName;

/// A lifecycle status code (MDT-105).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusCode {
    /// 200 Déposée.
    Deposited,
    /// 201 Émise (sent to the recipient's channel).
    Issued,
    /// 202 Reçue (the recipient's side acknowledged it).
    Received,
    /// 203 Mise à disposition (in the recipient's outbox).
    MadeAvailable,
    /// 204 Prise en charge.
    InHand,
    /// 205 Approuvée.
    Approved,
    /// 206 Approuvée partiellement.
    PartiallyApproved,
    /// 207 En litige.
    Disputed,
    /// 208 Suspendue.
    Suspended,
    /// 209 Complétée.
    Completed,
    /// 210 Refusée.
    Refused,
    /// 211 Paiement transmis.
    PaymentSent,
    /// 212 Encaissée.
    Cashed,
    /// 213 Rejetée.
    Rejected,
}

use StatusCode::*;

impl StatusCode {
    /// Every code, in numeric order.
    pub const ALL: &'static [StatusCode] = &[
        Deposited,
        Issued,
        Received,
        MadeAvailable,
        InHand,
        Approved,
        PartiallyApproved,
        Disputed,
        Suspended,
        Completed,
        Refused,
        PaymentSent,
        Cashed,
        Rejected,
    ];
    const NAMES: &'static [&'static str] = &[
        "200", "201", "202", "203", "204", "205", "206", "207", "208", "209", "210", "211", "212",
        "213",
    ];

    /// The number (`210`).
    pub fn code(self) -> u16 {
        200 + self as u16
    }

    /// The number as text (`"210"`), as CDAR and the configuration write it.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The code of a number, if it is one.
    pub fn from_code(code: u16) -> Option<StatusCode> {
        code.checked_sub(200)
            .and_then(|i| Self::ALL.get(usize::from(i)))
            .copied()
    }

    /// The French label of the reform (`Refusée`).
    pub fn label(self) -> &'static str {
        match self {
            Deposited => "Déposée",
            Issued => "Émise",
            Received => "Reçue",
            MadeAvailable => "Mise à disposition",
            InHand => "Prise en charge",
            Approved => "Approuvée",
            PartiallyApproved => "Approuvée partiellement",
            Disputed => "En litige",
            Suspended => "Suspendue",
            Completed => "Complétée",
            Refused => "Refusée",
            PaymentSent => "Paiement transmis",
            Cashed => "Encaissée",
            Rejected => "Rejetée",
        }
    }

    /// Who may emit it.
    pub fn emitters(self) -> &'static [Issuer] {
        match self {
            Deposited | Issued | Received | MadeAvailable | Rejected => &[Issuer::Platform],
            Completed => &[Issuer::Recipient, Issuer::Supplier],
            Cashed => &[Issuer::Supplier],
            _ => &[Issuer::Recipient],
        }
    }

    /// Whether `issuer` may emit it.
    pub fn emitted_by(self, issuer: Issuer) -> bool {
        self.emitters().contains(&issuer)
    }

    /// Nothing may follow it but what the table says (210, 213 are final;
    /// 212 is followed only by 212).
    pub fn is_final(self) -> bool {
        matches!(self, Refused | Rejected)
    }
}

/// The transition table (see the module doc): may `next` follow `latest`?
pub fn may_follow(latest: Option<StatusCode>, next: StatusCode) -> bool {
    let transmitted = |s: StatusCode| matches!(s, Issued | Received | MadeAvailable);
    let Some(p) = latest else {
        return matches!(next, Deposited | Rejected);
    };
    match next {
        Deposited => false,
        Issued => p == Deposited,
        Received => p == Issued,
        MadeAvailable => matches!(p, Issued | Received),
        Rejected => matches!(p, Deposited | Issued | Received),
        InHand => transmitted(p),
        Approved | PartiallyApproved => {
            transmitted(p) || matches!(p, InHand | PartiallyApproved | Disputed | Completed)
        }
        Disputed => {
            transmitted(p) || matches!(p, InHand | Approved | PartiallyApproved | Completed)
        }
        Suspended => transmitted(p) || matches!(p, InHand | Disputed),
        Completed => p == Suspended,
        Refused => transmitted(p) || matches!(p, InHand | Disputed | Suspended | Completed),
        PaymentSent => matches!(p, Approved | PartiallyApproved | PaymentSent),
        Cashed => {
            transmitted(p)
                || matches!(
                    p,
                    InHand
                        | Approved
                        | PartiallyApproved
                        | Disputed
                        | Suspended
                        | Completed
                        | PaymentSent
                        | Cashed
                )
        }
    }
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StatusCode {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<StatusCode, UnknownName> {
        s.trim()
            .parse::<u16>()
            .ok()
            .and_then(StatusCode::from_code)
            .ok_or_else(|| UnknownName {
                what: "lifecycle status",
                value: s.to_owned(),
                expected: StatusCode::NAMES,
            })
    }
}

impl Serialize for StatusCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.code())
    }
}

impl<'de> Deserialize<'de> for StatusCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StatusCode, D::Error> {
        let n = u16::deserialize(d)?;
        StatusCode::from_code(n)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown lifecycle status {n}")))
    }
}

/// Which side of the exchange emitted a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Issuer {
    /// quai itself (200–203, 213).
    Platform,
    /// The invoice's recipient, the buyer's side (204–211).
    Recipient,
    /// The supplier who sent the invoice (212).
    Supplier,
}

impl Issuer {
    pub const ALL: &'static [Issuer] = &[Issuer::Platform, Issuer::Recipient, Issuer::Supplier];
    const NAMES: &'static [&'static str] = &["platform", "recipient", "supplier"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl std::fmt::Display for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Issuer {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Issuer, UnknownName> {
        Issuer::ALL
            .iter()
            .find(|i| i.as_str().eq_ignore_ascii_case(s))
            .copied()
            .ok_or_else(|| UnknownName {
                what: "status issuer",
                value: s.to_owned(),
                expected: Issuer::NAMES,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for (i, c) in StatusCode::ALL.iter().enumerate() {
            assert_eq!(c.code(), 200 + i as u16);
            assert_eq!(c.as_str().parse::<StatusCode>(), Ok(*c));
            assert_eq!(StatusCode::from_code(c.code()), Some(*c));
        }
        assert!("214".parse::<StatusCode>().is_err());
        assert!("199".parse::<StatusCode>().is_err());
        assert_eq!(serde_json::to_string(&Refused).unwrap(), "210");
        assert_eq!(serde_json::from_str::<StatusCode>("212").unwrap(), Cashed);
    }

    #[test]
    fn the_table() {
        // the platform's road
        assert!(may_follow(None, Deposited));
        assert!(may_follow(Some(Deposited), Issued));
        assert!(may_follow(Some(Issued), MadeAvailable));
        assert!(may_follow(Some(Received), MadeAvailable));
        assert!(!may_follow(Some(MadeAvailable), Issued));
        assert!(!may_follow(Some(Deposited), Deposited));
        // the buyer's
        assert!(may_follow(Some(MadeAvailable), Refused));
        assert!(may_follow(Some(MadeAvailable), InHand));
        assert!(may_follow(Some(InHand), Approved));
        assert!(may_follow(Some(Approved), PaymentSent));
        assert!(may_follow(Some(PaymentSent), Cashed));
        assert!(may_follow(Some(Suspended), Completed));
        assert!(!may_follow(Some(Suspended), Approved));
        assert!(!may_follow(Some(Deposited), InHand), "not transmitted yet");
        assert!(
            !may_follow(Some(InHand), PaymentSent),
            "paid before approved"
        );
        // finals
        assert!(!may_follow(Some(Refused), Approved));
        for next in StatusCode::ALL {
            assert!(!may_follow(Some(Refused), *next), "{next} after 210");
            assert!(!may_follow(Some(Rejected), *next), "{next} after 213");
            assert_eq!(may_follow(Some(Cashed), *next), *next == Cashed);
        }
    }

    #[test]
    fn emitters() {
        assert!(Deposited.emitted_by(Issuer::Platform));
        assert!(Rejected.emitted_by(Issuer::Platform));
        assert!(Refused.emitted_by(Issuer::Recipient));
        assert!(!Refused.emitted_by(Issuer::Supplier));
        assert!(Cashed.emitted_by(Issuer::Supplier));
        assert!(!Cashed.emitted_by(Issuer::Recipient));
        assert!(!MadeAvailable.emitted_by(Issuer::Recipient));
        assert_eq!("Recipient".parse::<Issuer>(), Ok(Issuer::Recipient));
    }
}
