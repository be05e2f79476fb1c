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
//! `duplicate` is final: a duplicate flow is never processed. An entry a
//! connector refused before landing anything (a link, a FIFO) is
//! registered straight as `failed` (`register refused`), to be answered.

use serde::{Deserialize, Serialize};

use crate::{AckKind, DestinationKind, FlowId, FlowState, Origin, Result, SpoolError, Verdict};

/// Entity names used in the event history.
pub(crate) const FLOW: &str = "flow";
pub(crate) const ACK: &str = "ack";
pub(crate) const NOTIFICATION: &str = "notification";
/// A flow refused whole, in the digest outbox (same states as a notification).
pub(crate) const FLOW_NOTIFICATION: &str = "flow_notification";
pub(crate) const DELIVERY: &str = "delivery";
/// A lifecycle status of an invoice (`invoice_statuses`).
pub(crate) const STATUS: &str = "status";

/// Why a flow changes state; decides which (from, to) pairs are legal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowStep {
    /// A new flow is registered (`(new) → received`).
    Register,
    /// A flow already seen is recorded (`(new) → duplicate`).
    RegisterDuplicate,
    /// An entry refused before anything was landed (a link, a FIFO, ...)
    /// is recorded, to be answered (`(new) → failed`).
    RegisterRefused,
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
            | (RegisterRefused, None, Failed)
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

/// Delivery states (of an acknowledgement, a delivered invoice, a digest):
///
/// ```text
///   (new) ──owe──▶ pending ──deliver──▶ delivered
///                   │  ▲                    │
///                   └──┘ fail (attempts+1,  │
///                        next attempt later)│
///                      ▲                    │
///                      └──────resend────────┘
/// ```
///
/// A pending delivery may also be made due at once on request (`retry`,
/// `pending → pending`: the operator fixed the destination and does not
/// want to wait for the backoff).
///
/// An acknowledgement's state is the state of its delivery row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Delivered,
}

/// Why a delivery changes state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliveryStep {
    /// Something is owed (`(new) → pending`).
    Owe,
    /// Sent and taken (`pending → delivered`).
    Deliver,
    /// An attempt failed; tried again later (`pending → pending`).
    Fail,
    /// Sent again on request (`delivered → pending`).
    Resend,
    /// A pending one made due now on request (`pending → pending`).
    Retry,
}

impl DeliveryStep {
    /// The one state the step starts from, and the one it leads to (the
    /// guarded update is `WHERE state = from`).
    pub(crate) fn states(self) -> (Option<DeliveryState>, DeliveryState) {
        use DeliveryState::*;
        match self {
            DeliveryStep::Owe => (None, Pending),
            DeliveryStep::Deliver => (Some(Pending), Delivered),
            DeliveryStep::Fail => (Some(Pending), Pending),
            DeliveryStep::Resend => (Some(Delivered), Pending),
            DeliveryStep::Retry => (Some(Pending), Pending),
        }
    }
}

/// Check a delivery transition: `found` is the row's current state (`None`
/// for a row being created). The event is logged under `entity` (`ack` for
/// an acknowledgement's delivery, with the acknowledgement's id, so a
/// flow's history shows it; `delivery` otherwise).
pub(crate) fn delivery(
    entity: &'static str,
    id: i64,
    step: DeliveryStep,
    found: Option<DeliveryState>,
    reason: Option<String>,
) -> Result<Event> {
    let (from, to) = step.states();
    if found != from {
        return Err(SpoolError::IllegalStateChange {
            entity,
            id,
            from: found.map_or("(new)", DeliveryState::as_str).to_owned(),
            to: to.as_str().to_owned(),
        });
    }
    Ok(Event {
        entity,
        entity_id: id,
        from: from.map(|s| s.as_str().to_owned()),
        to: to.as_str().to_owned(),
        reason,
    })
}

/// States of a rejected invoice in the notifications outbox: `pending`
/// until a digest listing it is recorded, then `notified` (final: a
/// reject is never notified twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationState {
    Pending,
    Notified,
}

/// The outbox's transition table: only `pending → notified`, inside a digest.
pub(crate) fn notification(
    id: i64,
    from: NotificationState,
    to: NotificationState,
    digest: i64,
) -> Result<Event> {
    if (from, to) != (NotificationState::Pending, NotificationState::Notified) {
        return Err(SpoolError::IllegalStateChange {
            entity: NOTIFICATION,
            id,
            from: from.as_str().to_owned(),
            to: to.as_str().to_owned(),
        });
    }
    Ok(Event {
        entity: NOTIFICATION,
        entity_id: id,
        from: Some(from.as_str().to_owned()),
        to: to.as_str().to_owned(),
        reason: Some(format!("digest {digest}")),
    })
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
    Api => "api",
});
names!(DeliveryState, "delivery state", {
    Pending => "pending",
    Delivered => "delivered",
});
names!(NotificationState, "notification state", {
    Pending => "pending",
    Notified => "notified",
});
names!(DestinationKind, "destination kind", {
    LocalOutbox => "local_outbox",
    SftpOutbox => "sftp_outbox",
    As2 => "as2",
    As2Mdn => "as2_mdn",
    Mail => "mail",
    Api => "api",
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
    fn delivery_table() {
        use DeliveryState as D;
        let ev = delivery(ACK, 3, DeliveryStep::Owe, None, None).unwrap();
        assert_eq!((ev.from, ev.to.as_str()), (None, "pending"));
        assert!(delivery(ACK, 3, DeliveryStep::Deliver, Some(D::Pending), None).is_ok());
        assert!(delivery(ACK, 3, DeliveryStep::Fail, Some(D::Pending), None).is_ok());
        assert!(delivery(ACK, 3, DeliveryStep::Resend, Some(D::Delivered), None).is_ok());
        assert!(delivery(ACK, 3, DeliveryStep::Retry, Some(D::Pending), None).is_ok());
        assert!(delivery(ACK, 3, DeliveryStep::Retry, Some(D::Delivered), None).is_err());
        for (step, found) in [
            (DeliveryStep::Deliver, Some(D::Delivered)),
            (DeliveryStep::Fail, Some(D::Delivered)),
            (DeliveryStep::Resend, Some(D::Pending)),
            (DeliveryStep::Owe, Some(D::Pending)),
            (DeliveryStep::Deliver, None),
        ] {
            match delivery(DELIVERY, 9, step, found, None).unwrap_err() {
                SpoolError::IllegalStateChange { entity, id, .. } => {
                    assert_eq!((entity, id), (DELIVERY, 9))
                }
                other => panic!("unexpected {other}"),
            }
        }
        use NotificationState as N;
        assert!(notification(1, N::Pending, N::Notified, 4).is_ok());
        assert!(notification(1, N::Notified, N::Notified, 4).is_err());
        assert!(notification(1, N::Notified, N::Pending, 4).is_err());
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
