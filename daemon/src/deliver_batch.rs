//! The deliverer's batched path (issue 15, "Scale"): invoices to their
//! recipient and status relays to the supplier, many at a time.
//!
//! Sending one file per spool transaction costs a handful of fsyncs per
//! file (the staged copy, the outbox copy, the outbox folder, the spool's
//! commits of statuses and marks). Here the rows of one destination claimed
//! together are rendered concurrently into one staging folder (not
//! fsynced: a crash renders them again, same bytes), handed to the channel
//! as one batch (`Outbound::send_batch`: a local outbox writes every
//! temporary, fsyncs each, renames each without replacing and fsyncs the
//! folder once; SFTP uploads over one session; AS2 sends one message
//! each), and the whole batch is recorded in one spool transaction
//! (`Spool::record_delivered_batch`): each invoice's 201/202/203 with
//! their relays owed, and every mark delivered. A crash between the
//! channel and that commit leaves the rows pending; they are sent again
//! under the same names, which every channel takes as already delivered.

use std::collections::HashMap;
use std::path::PathBuf;

use quai_spool::{DeliveredItem, DeliveryItem, DeliveryRow, FlowRow, InvoiceRow, StatusRow};
use tracing::{debug, info, warn};

use crate::acks::Staged;
use crate::app::App;
use crate::outbound::{Outbound, Parcel, SendFailure};

/// Rows of one destination sent as one batch.
pub const CHUNK: usize = 500;
/// Renders in flight at once (conversion runs on the blocking pool).
const RENDERERS: usize = 4;

/// Does this row go the batched way? (Invoices and status relays; the
/// acknowledgements of a flow keep their own path.)
pub fn batchable(row: &DeliveryRow) -> bool {
    matches!(
        row.item,
        DeliveryItem::Invoice { .. } | DeliveryItem::Status { .. }
    )
}

/// Deliver `rows` (one destination's, batchable) through `channel`;
/// (delivered, failed).
pub async fn deliver(app: &App, channel: &dyn Outbound, rows: Vec<DeliveryRow>) -> (usize, usize) {
    let (mut delivered, mut failed) = (0, 0);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<DeliveryRow> = rows.by_ref().take(CHUNK).collect();
        let (d, f) = deliver_chunk(app, channel, chunk).await;
        delivered += d;
        failed += f;
    }
    (delivered, failed)
}

async fn deliver_chunk(
    app: &App,
    channel: &dyn Outbound,
    rows: Vec<DeliveryRow>,
) -> (usize, usize) {
    let refused = |message: String| SendFailure {
        destination: channel.describe(),
        message,
        transient: true,
    };
    let mut failed = 0;
    let mut staged = match Staged::new(app) {
        Ok(s) => s,
        Err(e) => {
            for row in &rows {
                failed += 1;
                crate::delivery_attempt::record_failure(
                    app,
                    row,
                    &refused(format!("cannot stage: {e}")),
                )
                .await;
            }
            return (0, failed);
        }
    };
    let started = std::time::Instant::now();

    // Render: every staged file created first, then written concurrently.
    let mut jobs = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        jobs.push(
            staged
                .create_numbered(i, &row.file_name)
                .map_err(|e| format!("cannot stage {}: {e}", row.file_name)),
        );
    }
    let known = &prefetch(app, &rows).await;
    let mut rendered: Vec<Result<PathBuf, String>> = Vec::with_capacity(rows.len());
    let mut pending = rows.iter().zip(jobs).peekable();
    while pending.peek().is_some() {
        let wave: Vec<_> = pending.by_ref().take(RENDERERS).collect();
        let results =
            crate::delivery_attempt::join_all(wave.into_iter().map(|(row, job)| async move {
                let (out, path) = job?;
                render_row(app, known, row, out)
                    .await
                    .map(|()| path)
                    .map_err(|e| format!("{e:#}"))
            }))
            .await;
        rendered.extend(results);
    }
    let rendered_at = started.elapsed();

    // Send what rendered, as one batch.
    let mut parcels = Vec::new();
    let mut sent_rows = Vec::new();
    for (row, r) in rows.iter().zip(rendered) {
        match r {
            Ok(path) => {
                parcels.push(Parcel {
                    name: row.file_name.clone(),
                    staged: path,
                    media_type: media_type(row),
                });
                sent_rows.push(row);
            }
            Err(e) => {
                failed += 1;
                crate::delivery_attempt::record_failure(app, row, &refused(not_rendered(row, &e)))
                    .await;
            }
        }
    }
    let results = channel.send_batch(&parcels).await;
    let sent_at = started.elapsed();
    drop(staged);

    // Record every row sent, and its statuses, in one transaction.
    let config = app.config();
    let mut flows: HashMap<i64, Option<FlowRow>> = HashMap::new();
    let mut items = Vec::new();
    let mut recorded_rows = Vec::new();
    for (row, result) in sent_rows.into_iter().zip(results) {
        let sent = match result {
            Ok(sent) => sent,
            Err(failure) => {
                failed += 1;
                crate::delivery_attempt::record_failure(app, row, &failure).await;
                continue;
            }
        };
        let statuses = match &row.item {
            DeliveryItem::Invoice { flow, doc_index } => {
                if !flows.contains_key(flow) {
                    let found = app.spool.flow(*flow).await.ok();
                    flows.insert(*flow, found);
                }
                match &flows[flow] {
                    Some(f) => crate::exchange::sent_statuses(&config, f, &row.to, *doc_index),
                    None => {
                        warn!(
                            delivery = row.id,
                            flow,
                            "sent, but its flow is no longer in the spool; it will be sent again"
                        );
                        continue;
                    }
                }
            }
            _ => Vec::new(),
        };
        items.push(DeliveredItem {
            delivery: row.id,
            to: row.to.clone(),
            receipt: sent.receipt.clone(),
            statuses,
        });
        recorded_rows.push((row, sent));
    }
    let mut delivered = 0;
    match app.spool.record_delivered_batch(&items).await {
        Ok(outcomes) => {
            for ((row, sent), outcome) in recorded_rows.iter().zip(outcomes) {
                match outcome {
                    None => {
                        delivered += 1;
                        if let Err(e) = channel.forget(&row.file_name) {
                            warn!(delivery = row.id, file = %row.file_name, error = %e,
                                "delivered; its send record could not be removed");
                        }
                        match &row.item {
                            DeliveryItem::Invoice { flow, doc_index } => {
                                crate::metrics::invoice_delivered(&row.partner);
                                debug!(partner = %row.partner, flow_id = flow, doc_index, delivery = row.id,
                                    stage = "delivered", file = %row.file_name, destination = %sent.destination,
                                    "invoice delivered to its recipient");
                            }
                            _ => crate::metrics::ack_delivered("status"),
                        }
                    }
                    Some(why) => {
                        warn!(delivery = row.id, destination = %sent.destination, error = %why,
                        "sent but not recorded as delivered; it will be sent again (same name, same bytes)")
                    }
                }
            }
        }
        Err(e) => warn!(error = %e, rows = items.len(),
            "a batch was sent but not recorded; it will be sent again (same names, same bytes)"),
    }
    info!(destination = %channel.describe(), rows = rows.len(), delivered, failed,
        render_ms = rendered_at.as_millis() as u64,
        send_ms = (sent_at - rendered_at).as_millis() as u64,
        record_ms = (started.elapsed() - sent_at).as_millis() as u64,
        stage = "delivered", "batch delivered");
    if delivered > 0 {
        // The statuses' relays to the suppliers are owed now.
        app.acks.notify_one();
    }
    (delivered, failed)
}

/// What the status relays of a batch are rendered from, read in bulk:
/// the statuses by id, their invoices by (flow, doc).
#[derive(Default)]
struct Known {
    statuses: HashMap<i64, StatusRow>,
    invoices: HashMap<(i64, i64), InvoiceRow>,
}

/// Read the statuses of the batch's relays in one query, and their
/// invoices one page per flow (a relay missing here is rendered from
/// its own reads).
async fn prefetch(app: &App, rows: &[DeliveryRow]) -> Known {
    let mut known = Known::default();
    let mut ids = Vec::new();
    let mut spans: HashMap<i64, (i64, i64)> = HashMap::new();
    for row in rows {
        if let DeliveryItem::Status {
            status,
            flow,
            doc_index,
        } = row.item
        {
            ids.push(status);
            let span = spans.entry(flow).or_insert((doc_index, doc_index));
            span.0 = span.0.min(doc_index);
            span.1 = span.1.max(doc_index);
        }
    }
    if ids.is_empty() {
        return known;
    }
    match app.spool.status_rows(&ids).await {
        Ok(found) => known.statuses = found.into_iter().map(|s| (s.id.unwrap_or(0), s)).collect(),
        Err(e) => warn!(error = %e, "cannot read the statuses of a batch of relays"),
    }
    for (flow, (lo, hi)) in spans {
        match app
            .spool
            .invoices_of_flow_page(flow, Some(lo - 1), hi - lo + 1)
            .await
        {
            Ok(page) => known
                .invoices
                .extend(page.into_iter().map(|i| ((flow, i.doc_index), i))),
            Err(e) => warn!(flow, error = %e, "cannot read the invoices of a batch of relays"),
        }
    }
    known
}

/// Render one row into its staged writer (not fsynced).
async fn render_row(
    app: &App,
    known: &Known,
    row: &DeliveryRow,
    out: std::io::BufWriter<std::fs::File>,
) -> anyhow::Result<()> {
    match &row.item {
        DeliveryItem::Invoice { flow, doc_index } => {
            crate::render::write_invoice(app, *flow, *doc_index, &row.file_name, out, false).await
        }
        DeliveryItem::Status {
            status,
            flow,
            doc_index,
        } => {
            let xml = match (
                known.statuses.get(status),
                known.invoices.get(&(*flow, *doc_index)),
            ) {
                (Some(st), Some(inv)) => crate::acks::status_relay_xml(
                    &app.config(),
                    *status,
                    st,
                    inv,
                    &row.partner,
                    &row.file_name,
                ),
                _ => {
                    crate::acks::status_xml(
                        app,
                        *status,
                        *flow,
                        *doc_index,
                        &row.partner,
                        &row.file_name,
                    )
                    .await?
                }
            };
            let mut out = out;
            std::io::Write::write_all(&mut out, xml.as_bytes())?;
            out.into_inner().map_err(|e| e.into_error())?;
            Ok(())
        }
        _ => anyhow::bail!("not a batched item"),
    }
}

fn not_rendered(row: &DeliveryRow, e: &str) -> String {
    match &row.item {
        DeliveryItem::Invoice { flow, doc_index } => {
            format!("invoice {flow}/{doc_index} not rendered: {e}")
        }
        DeliveryItem::Status { status, .. } => format!("status {status} not rendered: {e}"),
        _ => e.to_owned(),
    }
}

fn media_type(row: &DeliveryRow) -> &'static str {
    match row.item {
        DeliveryItem::Invoice { .. } => crate::render::media_type(&row.file_name),
        _ => "application/xml",
    }
}
