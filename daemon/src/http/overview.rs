//! What the status page and `/api/overview` show, computed from the spool.
//!
//! Why computed here: the spool API offers counts (`status`), flow listings
//! (`list_flows`) and the invoices of one flow, not yet the aggregate
//! queries a dashboard wants (throughput buckets, oldest unfinished flow,
//! last flow per partner, recent rejects). Until it does, this module
//! derives them from bounded listings: at most [`SCAN_LIMIT`] flows of the
//! last [`REJECT_WINDOW_HOURS`] hours, and the invoices of at most
//! [`REJECT_FLOWS`] flows. When a listing is cut off, the result says so
//! (`*_truncated`) rather than pretending to be exact.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use quai_spool::{
    Counts, FlowFilter, FlowRow, FlowState, Spool, SpoolError, StatusSummary, Verdict,
};
use serde::Serialize;

/// Most flows read by one listing.
pub const SCAN_LIMIT: i64 = 10_000;
/// Width of one throughput bar.
pub const BUCKET_MINUTES: i64 = 10;
/// Bars of the throughput chart (6 hours).
pub const BUCKETS: usize = 36;
/// How far back recent rejects are looked for.
pub const REJECT_WINDOW_HOURS: i64 = 24;
/// Flows whose invoices are read for the recent rejects.
pub const REJECT_FLOWS: usize = 10;
/// Reject rows shown.
pub const REJECT_ROWS: usize = 25;
/// Default age after which an unfinished flow counts as stuck.
pub const DEFAULT_STUCK_MINUTES: i64 = 15;
/// Flows in the "recent flows" table.
pub const RECENT_FLOWS: i64 = 15;

/// Backlog: flows not yet in a final state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Backlog {
    pub received: i64,
    pub processing: i64,
    /// The oldest unfinished flow (by arrival), if any.
    pub oldest: Option<FlowBrief>,
    pub oldest_age_seconds: Option<i64>,
    /// True when more unfinished flows exist than were scanned: the oldest
    /// shown is then the oldest of the newest [`SCAN_LIMIT`].
    pub oldest_truncated: bool,
}

/// The fields of a flow a dashboard row needs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FlowBrief {
    pub id: i64,
    pub partner: String,
    pub original_name: String,
    pub state: FlowState,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attempts: i32,
    pub invoices_accepted: i64,
    pub invoices_rejected: i64,
    pub failure_code: Option<String>,
}

impl From<&FlowRow> for FlowBrief {
    fn from(f: &FlowRow) -> Self {
        FlowBrief {
            id: f.id,
            partner: f.partner.clone(),
            original_name: f.original_name.clone(),
            state: f.state,
            received_at: f.received_at,
            updated_at: f.updated_at,
            attempts: f.attempts,
            invoices_accepted: f.invoices_accepted,
            invoices_rejected: f.invoices_rejected,
            failure_code: f.failure_code.clone(),
        }
    }
}

/// Invoices of flows finished within one bucket.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub accepted: i64,
    pub rejected: i64,
    pub flows: i64,
}

/// One partner's line.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PartnerSummary {
    pub partner: String,
    pub last_flow_at: Option<DateTime<Utc>>,
    pub last_flow_id: Option<i64>,
    pub last_flow_name: Option<String>,
    pub flows: BTreeMap<String, i64>,
    pub invoices_accepted: i64,
    pub invoices_rejected: i64,
    /// rejected / (accepted + rejected); None when no invoice yet.
    pub reject_rate: Option<f64>,
}

/// A rejected invoice (or a flow rejected as a whole) with its reasons.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RejectRow {
    pub flow_id: i64,
    pub partner: String,
    pub original_name: String,
    pub at: DateTime<Utc>,
    /// The archive entry (or the flow name for a flow-level reject).
    pub entry: String,
    pub invoice_number: Option<String>,
    /// (rule, message) pairs; fatal reasons first.
    #[schema(value_type = Vec<Vec<String>>)]
    pub reasons: Vec<(String, String)>,
}

/// Everything the status page shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Overview {
    pub generated_at: DateTime<Utc>,
    pub totals: Counts,
    pub backlog: Backlog,
    pub bucket_minutes: i64,
    pub throughput: Vec<Bucket>,
    pub throughput_truncated: bool,
    pub partners: Vec<PartnerSummary>,
    pub recent_rejects: Vec<RejectRow>,
    pub stuck_minutes: i64,
    pub stuck: Vec<FlowBrief>,
    pub recent_flows: Vec<FlowBrief>,
    /// Deliveries owed and not yet delivered, the longest owed first.
    pub undelivered: Vec<Undelivered>,
    /// Per recipient: invoices routed, delivered, awaiting delivery,
    /// refused by the buyer (the exchange, issue 15).
    pub exchange: Vec<quai_spool::RecipientCounts>,
}

/// One delivery owed and not yet delivered (the status page's panel).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Undelivered {
    pub delivery: i64,
    pub flow_id: Option<i64>,
    pub partner: String,
    pub file_name: String,
    /// Where it goes, in words.
    pub destination: String,
    pub owed_since: DateTime<Utc>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// Deliveries listed on the page.
const UNDELIVERED_SHOWN: i64 = 50;

/// Per-partner summaries (`/api/partners`).
pub async fn partners(spool: &Spool) -> Result<Vec<PartnerSummary>, SpoolError> {
    let status = spool.status().await?;
    partners_of(spool, status).await
}

/// Per-partner summaries from counts already read (one query per partner
/// for its last flow).
async fn partners_of(
    spool: &Spool,
    status: StatusSummary,
) -> Result<Vec<PartnerSummary>, SpoolError> {
    let mut out = Vec::with_capacity(status.partners.len());
    for p in status.partners {
        let last = spool
            .list_flows(&FlowFilter {
                partner: Some(p.partner.clone()),
                limit: Some(1),
                ..FlowFilter::default()
            })
            .await?;
        let accepted = p.counts.invoices.get("accepted").copied().unwrap_or(0);
        let rejected = p.counts.invoices.get("rejected").copied().unwrap_or(0);
        let total = accepted + rejected;
        out.push(PartnerSummary {
            partner: p.partner,
            last_flow_at: last.first().map(|f| f.received_at),
            last_flow_id: last.first().map(|f| f.id),
            last_flow_name: last.first().map(|f| f.original_name.clone()),
            flows: p.counts.flows,
            invoices_accepted: accepted,
            invoices_rejected: rejected,
            reject_rate: (total > 0).then(|| rejected as f64 / total as f64),
        });
    }
    Ok(out)
}

/// Start of the 10-minute bucket holding `t`.
fn bucket_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = BUCKET_MINUTES * 60;
    let ts = t.timestamp();
    DateTime::from_timestamp(ts - ts.rem_euclid(secs), 0).unwrap_or(t)
}

/// Throughput bars ending with the bucket that holds `now`, from flows
/// finished (`processed`) in that span; a flow's invoices count at its last
/// update, the time it was finished.
pub fn throughput(flows: &[FlowRow], now: DateTime<Utc>) -> Vec<Bucket> {
    let last = bucket_floor(now);
    let step = Duration::minutes(BUCKET_MINUTES);
    let first = last - step * (BUCKETS as i32 - 1);
    let mut buckets: Vec<Bucket> = (0..BUCKETS)
        .map(|i| Bucket {
            start: first + step * i as i32,
            accepted: 0,
            rejected: 0,
            flows: 0,
        })
        .collect();
    for f in flows {
        if f.state != FlowState::Processed || f.updated_at < first {
            continue;
        }
        let idx = ((f.updated_at - first).num_seconds() / (BUCKET_MINUTES * 60)) as usize;
        if let Some(b) = buckets.get_mut(idx) {
            b.accepted += f.invoices_accepted;
            b.rejected += f.invoices_rejected;
            b.flows += 1;
        }
    }
    buckets
}

/// Gather the status page's data. `stuck_minutes`: age after which an
/// unfinished flow is listed as stuck.
pub async fn overview(spool: &Spool, stuck_minutes: i64) -> Result<Overview, SpoolError> {
    let now = Utc::now();
    let status = spool.status().await?;
    let count = |s: &str| status.totals.flows.get(s).copied().unwrap_or(0);

    // Unfinished flows (received, then processing), newest first.
    let mut unfinished = Vec::new();
    let mut truncated = false;
    for state in [FlowState::Received, FlowState::Processing] {
        let rows = spool
            .list_flows(&FlowFilter {
                state: Some(state),
                limit: Some(SCAN_LIMIT),
                ..FlowFilter::default()
            })
            .await?;
        truncated |= rows.len() as i64 >= SCAN_LIMIT;
        unfinished.extend(rows);
    }
    let oldest = unfinished.iter().min_by_key(|f| (f.received_at, f.id));
    let backlog = Backlog {
        received: count("received"),
        processing: count("processing"),
        oldest: oldest.map(FlowBrief::from),
        oldest_age_seconds: oldest.map(|f| (now - f.received_at).num_seconds().max(0)),
        oldest_truncated: truncated,
    };
    let stuck_minutes = stuck_minutes.clamp(1, 7 * 24 * 60);
    let stuck_before = now - Duration::minutes(stuck_minutes);
    let mut stuck: Vec<FlowBrief> = unfinished
        .iter()
        .filter(|f| f.received_at < stuck_before)
        .map(FlowBrief::from)
        .collect();
    stuck.sort_by_key(|f| (f.received_at, f.id));
    stuck.truncate(50);

    // Recent flows: throughput and rejects. A flow finished in the chart's
    // span may have arrived before it: look one more hour back.
    let window = spool
        .list_flows(&FlowFilter {
            since: Some(now - Duration::hours(REJECT_WINDOW_HOURS.max(7))),
            limit: Some(SCAN_LIMIT),
            ..FlowFilter::default()
        })
        .await?;
    let throughput_truncated = window.len() as i64 >= SCAN_LIMIT;
    let buckets = throughput(&window, now);

    let mut recent_rejects = Vec::new();
    let mut flows_read = 0;
    for f in &window {
        if recent_rejects.len() >= REJECT_ROWS || flows_read >= REJECT_FLOWS {
            break;
        }
        if f.state == FlowState::Failed {
            recent_rejects.push(RejectRow {
                flow_id: f.id,
                partner: f.partner.clone(),
                original_name: f.original_name.clone(),
                at: f.updated_at,
                entry: f.original_name.clone(),
                invoice_number: None,
                reasons: vec![(
                    f.failure_code.clone().unwrap_or_else(|| "FAILED".into()),
                    f.failure_message.clone().unwrap_or_default(),
                )],
            });
            continue;
        }
        if f.invoices_rejected == 0 {
            continue;
        }
        flows_read += 1;
        // Page through the flow's invoices (a flow may hold a million) and
        // stop as soon as the table is full.
        let mut after = None;
        'pages: loop {
            let page = spool.invoices_of_flow_page(f.id, after, 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.doc_index);
            for inv in page {
                if inv.verdict != Verdict::Rejected {
                    continue;
                }
                let mut reasons: Vec<_> = inv.reasons.iter().collect();
                reasons.sort_by_key(|r| !crate::reasons::is_fatal(r));
                recent_rejects.push(RejectRow {
                    flow_id: f.id,
                    partner: f.partner.clone(),
                    original_name: f.original_name.clone(),
                    at: f.updated_at,
                    entry: inv.entry.clone(),
                    invoice_number: inv.number.clone(),
                    reasons: reasons
                        .into_iter()
                        .map(|r| (r.rule.clone(), r.message.clone()))
                        .collect(),
                });
                if recent_rejects.len() >= REJECT_ROWS {
                    break 'pages;
                }
            }
        }
    }

    let recent_flows = window
        .iter()
        .take(RECENT_FLOWS as usize)
        .map(FlowBrief::from)
        .collect::<Vec<_>>();
    let recent_flows = if recent_flows.is_empty() {
        // Nothing in the window: still show the last flows ever received.
        spool
            .list_flows(&FlowFilter {
                limit: Some(RECENT_FLOWS),
                ..FlowFilter::default()
            })
            .await?
            .iter()
            .map(FlowBrief::from)
            .collect()
    } else {
        recent_flows
    };

    let undelivered = spool
        .pending_deliveries(UNDELIVERED_SHOWN)
        .await?
        .into_iter()
        .map(|d| Undelivered {
            delivery: d.id,
            flow_id: match &d.item {
                quai_spool::DeliveryItem::Ack { flow, .. }
                | quai_spool::DeliveryItem::Invoice { flow, .. }
                | quai_spool::DeliveryItem::Status { flow, .. } => Some(*flow),
                quai_spool::DeliveryItem::Digest { .. } => None,
            },
            destination: crate::outbound::describe(&d.to),
            partner: d.partner,
            file_name: d.file_name,
            owed_since: d.created_at,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
        })
        .collect();
    let totals = status.totals.clone();
    let partners = partners_of(spool, status).await?;
    let exchange = spool.recipient_counts().await?;
    Ok(Overview {
        exchange,
        undelivered,
        generated_at: now,
        totals,
        backlog,
        bucket_minutes: BUCKET_MINUTES,
        throughput: buckets,
        throughput_truncated,
        partners,
        recent_rejects,
        stuck_minutes,
        stuck,
        recent_flows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quai_spool::Origin;

    fn row(state: FlowState, updated: DateTime<Utc>, acc: i64, rej: i64) -> FlowRow {
        FlowRow {
            id: 1,
            partner: "p".into(),
            origin: Origin::Cli,
            original_name: "f".into(),
            size: 1,
            sha256: String::new(),
            state,
            received_at: updated,
            updated_at: updated,
            attempts: 1,
            duplicate_of: None,
            failure_code: None,
            failure_message: None,
            invoices_accepted: acc,
            invoices_rejected: rej,
        }
    }

    #[test]
    fn throughput_buckets_cover_six_hours() {
        let now = DateTime::parse_from_rfc3339("2026-11-28T12:34:56Z")
            .unwrap()
            .with_timezone(&Utc);
        let flows = vec![
            row(FlowState::Processed, now, 3, 1),
            row(FlowState::Processed, now - Duration::minutes(5), 2, 0),
            row(FlowState::Processed, now - Duration::minutes(25), 10, 5),
            // too old, not finished, failed: not counted
            row(FlowState::Processed, now - Duration::hours(7), 100, 0),
            row(FlowState::Received, now, 100, 0),
            row(FlowState::Failed, now, 0, 0),
        ];
        let b = throughput(&flows, now);
        assert_eq!(b.len(), BUCKETS);
        assert_eq!(
            b[BUCKETS - 1].start.to_rfc3339(),
            "2026-11-28T12:30:00+00:00"
        );
        assert_eq!(b[0].start.to_rfc3339(), "2026-11-28T06:40:00+00:00");
        // 12:34:56 and 12:29:56 fall in different buckets
        assert_eq!((b[35].accepted, b[35].rejected, b[35].flows), (3, 1, 1));
        assert_eq!((b[34].accepted, b[34].rejected), (2, 0));
        assert_eq!((b[32].accepted, b[32].rejected), (10, 5));
        let total: i64 = b.iter().map(|x| x.accepted + x.rejected).sum();
        assert_eq!(total, 21);
    }
}
