//! Recording a batch of deliveries sent together, in one transaction
//! (issue 15, the exchange's bounded and fast path).
//!
//! The deliverer publishes a batch of files to one destination, makes them
//! durable with one fsync pass, then records the whole batch here: for
//! each delivery, the platform statuses its sending owes (201/202/203,
//! each through the guarded `record_status`, so each is recorded once and
//! its CDAR relay owed in the same commit) and its mark `pending →
//! delivered`. One item the spool refuses (a status the table refuses, a
//! row no longer pending) is reported and left as it was; it does not
//! undo the others. A database error rolls the whole batch back: every
//! file of it is offered again under the same name, which every channel
//! takes as already delivered.

/// One delivery of a batch that was sent.
#[derive(Debug, Clone)]
pub struct DeliveredItem {
    pub delivery: i64,
    /// Where it went.
    pub to: crate::Destination,
    /// What the other side answered.
    pub receipt: Option<String>,
    /// The statuses its sending owes, recorded before its mark.
    pub statuses: Vec<super::NewStatus>,
}

macro_rules! delivered_steps {
    ($backend:ident, $Conn:ty) => {
        pub(crate) mod $backend {
            use super::DeliveredItem;
            use crate::steps::{By, Cx};
            use crate::{Result, SpoolError};

            /// Per item: `None` when recorded, `Some(why)` when refused.
            pub(crate) async fn record_delivered_batch(
                conn: &mut $Conn,
                cx: &Cx<'_>,
                batch: &[DeliveredItem],
            ) -> Result<Vec<Option<String>>> {
                let mut out = Vec::with_capacity(batch.len());
                for d in batch {
                    let mut refused = None;
                    for s in &d.statuses {
                        match super::super::sql::$backend::record_status(conn, cx, s).await {
                            Ok(_) => {}
                            Err(e @ SpoolError::StatusRefused { .. }) => {
                                refused = Some(e.to_string());
                                break;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    if refused.is_none() {
                        let marked = crate::steps::$backend::mark_delivered(
                            conn,
                            cx,
                            By::Delivery(d.delivery),
                            Some(&d.to),
                            d.receipt.as_deref(),
                        )
                        .await;
                        match marked {
                            Ok(_) => {}
                            Err(
                                e @ (SpoolError::IllegalStateChange { .. }
                                | SpoolError::DeliveryNotFound(_)),
                            ) => refused = Some(e.to_string()),
                            Err(e) => return Err(e),
                        }
                    }
                    out.push(refused);
                }
                Ok(out)
            }
        }
    };
}

delivered_steps!(sqlite, sqlx::SqliteConnection);
delivered_steps!(postgres, sqlx::PgConnection);
