//! A delivery row as the database returns it, before it is checked into a
//! typed `DeliveryRow`, and the retry backoff: a leaf, so the shared write steps can read rows
//! without importing the deliveries API that calls them.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The wait before the attempt after `attempts` failed ones: 5 s after the
/// first failure, doubling per attempt, at most 15 minutes.
pub fn retry_delay(attempts: i32) -> Duration {
    const FIRST: Duration = Duration::from_secs(5);
    const MAX: Duration = Duration::from_secs(15 * 60);
    let doublings = attempts.saturating_sub(1).clamp(0, 16) as u32;
    FIRST.saturating_mul(1u32 << doublings).min(MAX)
}

#[derive(sqlx::FromRow)]
pub(crate) struct RawDelivery {
    pub(crate) id: i64,
    pub(crate) item: String,
    pub(crate) flow_id: Option<i64>,
    pub(crate) ack_id: Option<i64>,
    pub(crate) ack_kind: Option<String>,
    pub(crate) doc_index: Option<i64>,
    pub(crate) digest_id: Option<i64>,
    pub(crate) status_id: Option<i64>,
    pub(crate) partner: String,
    pub(crate) destination_kind: String,
    pub(crate) destination: String,
    pub(crate) file_name: String,
    pub(crate) state: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) attempts: i32,
    pub(crate) next_attempt_at: DateTime<Utc>,
    pub(crate) last_error: Option<String>,
    pub(crate) delivered_at: Option<DateTime<Utc>>,
    pub(crate) receipt: Option<String>,
    pub(crate) lease_owner: Option<String>,
    pub(crate) lease_expires_at: Option<DateTime<Utc>>,
}

/// Columns of a [`RawDelivery`] (alias `d`), valid on both backends.
pub(crate) const DELIVERY_SELECT: &str = "SELECT d.id, d.item, d.flow_id, d.ack_id, a.kind AS ack_kind, \
    d.doc_index, d.digest_id, d.status_id, d.partner, d.destination_kind, d.destination, d.file_name, d.state, \
    d.created_at, d.attempts, d.next_attempt_at, d.last_error, d.delivered_at, d.receipt, d.lease_owner, \
    d.lease_expires_at FROM deliveries d LEFT JOIN acknowledgements a ON a.id = d.ack_id";

/// The `next_attempt_at` of an invoice delivery held for a flow still
/// being processed: no claim takes it (claims want `next_attempt_at <=
/// now`) until the transaction that finishes the flow makes it due.
pub fn held_until() -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
