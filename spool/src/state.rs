//! The one place that decides which state changes are legal.
//!
//! Every write that changes the state of a flow, an acknowledgement or a
//! notification needs a [`Transition`], and the only way to obtain one is
//! through the functions of this module, which check the transition table.
//! The backends (`sqlite.rs`, `postgres.rs`) then execute the transition:
//! they update the row *guarded by its expected current state* (`WHERE state
//! = from`) and append the transition's [`Event`] in the same transaction. A
//! transition that is not in the table is a [`SpoolError::IllegalTransition`].
//!
//! Flow states:
//!
//! ```text
//!   (new) ──register──▶ received ──claim──▶ processing ──finish──▶ processed
//!   (new) ──register──▶ duplicate            │  ▲  │  └──finish──▶ failed
//!                          ▲                 │  │  └─reclaim (lease expired)
//!                          └───abandon───────┘  └──replay── processed | failed
//! ```
//!
//! `duplicate` is final: a duplicate flow is never processed.

use crate::{AckKind, FlowId, FlowState, Origin, Result, SpoolError, Verdict};

/// Entity names used in the event history.
pub(crate) const FLOW: &str = "flow";
pub(crate) const ACK: &str = "ack";
pub(crate) const NOTIFICATION: &str = "notification";

/// Why a flow changes state; decides which (from, to) pairs are legal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowStep {
    /// A new flow is registered (`(new) → received`).
    Register,
    /// A flow already seen is recorded (`(new) → duplicate`).
    RegisterDuplicate,
    /// Claimed from the queue (`received → processing`).
    Claim,
    /// Taken over after the previous owner's lease expired
    /// (`processing → processing`).
    Reclaim,
    /// Reprocessing on operator request (`processed | failed | received → processing`).
    Replay,
    /// Processed to the end (`processing → processed`).
    Finish,
    /// Could not be read as a whole (`processing → failed`).
    Fail,
    /// Given back to the queue at shutdown (`processing → received`).
    Abandon,
}

/// A checked state change of one flow. Fields are private: build it with
/// [`flow`].
#[derive(Debug, Clone)]
pub(crate) struct Transition {
    flow: FlowId,
    from: Option<FlowState>,
    to: FlowState,
    reason: String,
}

impl Transition {
    pub(crate) fn old_state(&self) -> Option<&'static str> {
        self.from.map(FlowState::as_str)
    }
    pub(crate) fn new_state(&self) -> &'static str {
        self.to.as_str()
    }
    /// The event to append in the same transaction as the update.
    pub(crate) fn event(&self) -> Event {
        Event {
            entity: FLOW,
            entity_id: self.flow,
            from: self.old_state().map(str::to_owned),
            to: self.new_state().to_owned(),
            reason: Some(self.reason.clone()),
        }
    }
    /// Same transition for another row id (a registration learns its id
    /// only after the insert).
    pub(crate) fn for_flow(mut self, flow: FlowId) -> Transition {
        self.flow = flow;
        self
    }
}

/// The transition table.
fn legal(step: FlowStep, from: Option<FlowState>, to: FlowState) -> bool {
    use FlowState::*;
    use FlowStep::*;
    matches!(
        (step, from, to),
        (Register, None, Received)
            | (RegisterDuplicate, None, Duplicate)
            | (Claim, Some(Received), Processing)
            | (Reclaim, Some(Processing), Processing)
            | (
                Replay,
                Some(Processed | Failed | Received | Processing),
                Processing
            )
            | (Finish, Some(Processing), Processed)
            | (Fail, Some(Processing), Failed)
            | (Abandon, Some(Processing), Received)
    )
}

/// Check a flow transition against the table.
pub(crate) fn flow(
    flow: FlowId,
    step: FlowStep,
    from: Option<FlowState>,
    to: FlowState,
    reason: impl Into<String>,
) -> Result<Transition> {
    if legal(step, from, to) {
        Ok(Transition {
            flow,
            from,
            to,
            reason: reason.into(),
        })
    } else {
        Err(SpoolError::IllegalTransition {
            flow,
            from: from.map_or("(new)", FlowState::as_str).to_owned(),
            to: to.as_str().to_owned(),
        })
    }
}

/// One row of the append-only event history.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) entity: &'static str,
    pub(crate) entity_id: i64,
    pub(crate) from: Option<String>,
    pub(crate) to: String,
    pub(crate) reason: Option<String>,
}

/// Acknowledgement states: `pending → delivered`, a failed attempt keeps it
/// `pending`, a resend puts a delivered one back to `pending`.
pub(crate) fn ack_event(ack: i64, from: Option<&str>, to: &str, reason: Option<String>) -> Event {
    Event {
        entity: ACK,
        entity_id: ack,
        from: from.map(str::to_owned),
        to: to.to_owned(),
        reason,
    }
}

/// Notification outbox rows: `pending → notified` (inside a digest).
pub(crate) fn notified_event(notification: i64, digest: i64) -> Event {
    Event {
        entity: NOTIFICATION,
        entity_id: notification,
        from: Some("pending".to_owned()),
        to: "notified".to_owned(),
        reason: Some(format!("digest {digest}")),
    }
}

/// A name that is not one of an enum's names (a state, kind or origin read
/// from the database, a command line or a query string).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} (expected {})", expected.join(", "))]
pub struct UnknownName {
    /// `flow state`, `acknowledgement kind`...
    pub what: &'static str,
    pub value: String,
    /// Every accepted name.
    pub expected: &'static [&'static str],
}

impl From<UnknownName> for SpoolError {
    fn from(e: UnknownName) -> SpoolError {
        SpoolError::Corrupt(e.to_string())
    }
}

/// The one definition of an enum's names: `as_str`, `ALL`, `Display` and
/// a `FromStr` that ignores ASCII case (so the CLI and the HTTP API parse
/// with it too, instead of keeping their own lists).
macro_rules! names {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            /// Every name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name),+];
            /// The name stored in the database (and shown to users).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> std::result::Result<$ty, UnknownName> {
                $(if s.eq_ignore_ascii_case($name) {
                    return Ok($ty::$variant);
                })+
                Err(UnknownName {
                    what: $what,
                    value: s.to_owned(),
                    expected: $ty::NAMES,
                })
            }
        }
    };
}

names!(FlowState, "flow state", {
    Received => "received",
    Processing => "processing",
    Processed => "processed",
    Failed => "failed",
    Duplicate => "duplicate",
});
names!(AckKind, "acknowledgement kind", {
    IntegrationReport => "integration_report",
    Cdar => "cdar",
    Contrl => "contrl",
    Mdn => "mdn",
});
names!(Origin, "origin", {
    Dropzone => "dropzone",
    Sftp => "sftp",
    As2 => "as2",
    Cli => "cli",
});
names!(Verdict, "verdict", {
    Accepted => "accepted",
    Rejected => "rejected",
});

/// Parse a name stored in the database (an unknown one is a corrupt row).
pub(crate) fn parse<T: std::str::FromStr<Err = UnknownName>>(s: &str) -> Result<T> {
    Ok(s.parse::<T>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use FlowState::*;

    #[test]
    fn table_allows_the_lifecycle() {
        assert!(flow(1, FlowStep::Register, None, Received, "").is_ok());
        assert!(flow(1, FlowStep::Claim, Some(Received), Processing, "").is_ok());
        assert!(flow(1, FlowStep::Finish, Some(Processing), Processed, "").is_ok());
        assert!(flow(1, FlowStep::Replay, Some(Failed), Processing, "").is_ok());
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for s in FlowState::ALL {
            assert_eq!(s.as_str().parse::<FlowState>(), Ok(*s));
            assert_eq!(s.as_str().to_uppercase().parse::<FlowState>(), Ok(*s));
        }
        for k in AckKind::ALL {
            assert_eq!(k.to_string().parse::<AckKind>(), Ok(*k));
        }
        let err = "archived".parse::<FlowState>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown flow state \"archived\" (expected received, processing, processed, failed, duplicate)"
        );
        assert!(matches!(
            parse::<Origin>("ftp"),
            Err(SpoolError::Corrupt(m)) if m.contains("unknown origin")
        ));
    }

    #[test]
    fn table_refuses_the_rest() {
        for from in [Processed, Failed, Duplicate, Received] {
            let err = flow(7, FlowStep::Finish, Some(from), Processed, "").unwrap_err();
            match err {
                SpoolError::IllegalTransition { flow, from: f, to } => {
                    assert_eq!(flow, 7);
                    assert_eq!(f, from.as_str());
                    assert_eq!(to, "processed");
                }
                other => panic!("unexpected {other}"),
            }
        }
        assert!(flow(1, FlowStep::Replay, Some(Duplicate), Processing, "").is_err());
        assert!(flow(1, FlowStep::Claim, Some(Processed), Processing, "").is_err());
        assert!(flow(1, FlowStep::Register, Some(Received), Received, "").is_err());
    }
}
