//! The deliverer's batched path (issue 15, "Scale"): invoices to their
//! recipient and status relays to the supplier, many at a time.
//!
//! Sending one file per spool transaction costs a handful of fsyncs per
//! file (the staged copy, the outbox copy, the outbox folder, the spool's
//! commits of statuses and marks). Here the rows of one destination claimed
//! together are rendered concurrently — into a local outbox's own exclusive
//! temporaries (`Outbound::in_place`: no staged copy to create and unlink),
//! else into one staging folder (not fsynced: a crash renders them again,
//! same bytes) handed to the channel as one batch (`Outbound::send_batch`:
//! SFTP uploads over one session, AS2 sends one message each). A local
//! outbox fsyncs every temporary, renames each without replacing and
//! fsyncs the folder once. The whole batch is then recorded in one spool
//! transaction (`Spool::record_delivered_batch`): each invoice's
//! 201/202/203 with their relays owed, and every mark delivered. A crash
//! between the channel and that commit leaves the rows pending; they are
//! sent again under the same names, which every channel takes as already
//! delivered.
//!
//! Status relays travel in relay groups (`quai_spool` `delivered.rs`): the
//! rows of one flow's statuses of one code recorded in one batch share one
//! file name and are one CDAR file naming each invoice. A group is
//! rendered whole from all its rows in the spool, claimed or not, so it is
//! the same file every time it is offered.

use std::collections::{HashMap, HashSet};
use std::io::BufWriter;
use std::path::PathBuf;

use quai_spool::{
    DeliveredItem, DeliveryItem, DeliveryRow, FlowRow, InvoiceRow, StatusRelayRow, StatusRow,
};
use tracing::{debug, info, warn};

use crate::acks::Staged;
use crate::app::App;
use quai_connectors::outbound::{InPlaceBatch, InPlaceFile};

use crate::outbound::{Outbound, Parcel, SendFailure, Sent};

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
    let mut units = units_of(rows).into_iter().peekable();
    while units.peek().is_some() {
        let mut chunk: Vec<Unit> = Vec::new();
        let mut n = 0;
        while n < CHUNK {
            let Some(unit) = units.next() else { break };
            n += unit.rows.len();
            chunk.push(unit);
        }
        let (d, f) = deliver_chunk(app, channel, chunk).await;
        delivered += d;
        failed += f;
    }
    (delivered, failed)
}

/// What becomes one file: an invoice row, or the claimed rows of one relay
/// group (status rows of one flow sharing a file name, `delivered.rs`).
struct Unit {
    rows: Vec<DeliveryRow>,
}

impl Unit {
    fn first(&self) -> &DeliveryRow {
        &self.rows[0]
    }
}

/// Rows in units, in the order of their first row.
fn units_of(rows: Vec<DeliveryRow>) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    let mut groups: HashMap<(i64, String, String), usize> = HashMap::new();
    for row in rows {
        if let DeliveryItem::Status { flow, .. } = row.item {
            let key = (flow, row.partner.clone(), row.file_name.clone());
            if let Some(&i) = groups.get(&key) {
                units[i].rows.push(row);
                continue;
            }
            groups.insert(key, units.len());
        }
        units.push(Unit { rows: vec![row] });
    }
    units
}

async fn deliver_chunk(app: &App, channel: &dyn Outbound, units: Vec<Unit>) -> (usize, usize) {
    let refused = |message: String| SendFailure {
        destination: channel.describe(),
        message,
        transient: true,
    };
    let mut failed = 0;
    let rows_in = units.iter().map(|u| u.rows.len()).sum::<usize>();
    // Where the batch is rendered: straight into a local outbox's
    // temporaries, else into staged files handed to the channel.
    let sink = match channel.in_place() {
        Some(folder) => folder.in_place_batch().map(Sink::InPlace),
        None => Staged::new(app)
            .map(Sink::Staged)
            .map_err(|e| refused(format!("cannot stage: {e}"))),
    };
    let mut sink = match sink {
        Ok(s) => s,
        Err(failure) => {
            for row in units.iter().flat_map(|u| &u.rows) {
                failed += 1;
                crate::delivery_attempt::record_failure(app, row, &failure).await;
            }
            return (0, failed);
        }
    };
    let started = std::time::Instant::now();

    // Render: every file created first, then written concurrently.
    let mut jobs = Vec::with_capacity(units.len());
    let mut targets = Vec::with_capacity(units.len());
    for (i, unit) in units.iter().enumerate() {
        let name = &unit.first().file_name;
        let created = match &mut sink {
            Sink::Staged(staged) => staged
                .create_numbered(i, name)
                .map(|(out, path)| (out, Target::Staged(path)))
                .map_err(|e| refused(format!("cannot stage {name}: {e}"))),
            Sink::InPlace(batch) => batch.temporary(name).map(|(entry, file, handle)| {
                (
                    BufWriter::with_capacity(64 * 1024, file),
                    Target::InPlace(entry, handle),
                )
            }),
        };
        match created {
            Ok((out, target)) => {
                jobs.push(Ok(out));
                targets.push(Some(target));
            }
            Err(failure) => {
                jobs.push(Err(failure));
                targets.push(None);
            }
        }
    }
    let known = &prefetch(app, &units).await;
    let mut rendered: Vec<Result<(), SendFailure>> = Vec::with_capacity(units.len());
    let mut pending = units.iter().zip(jobs).peekable();
    while pending.peek().is_some() {
        let wave: Vec<_> = pending.by_ref().take(RENDERERS).collect();
        let results =
            crate::delivery_attempt::join_all(wave.into_iter().map(|(unit, job)| async move {
                let out = job?;
                render_unit(app, known, unit, out)
                    .await
                    .map_err(|e| refused(not_rendered(unit.first(), &format!("{e:#}"))))
            }))
            .await;
        rendered.extend(results);
    }
    let rendered_at = started.elapsed();

    // Send what rendered, as one batch: one file per unit.
    let mut sent_units = Vec::new();
    let mut files = Vec::new();
    for ((unit, r), target) in units.iter().zip(rendered).zip(targets) {
        let Some(target) = target else {
            // Its file could not be created: nothing to send or remove.
            if let Err(failure) = r {
                for row in &unit.rows {
                    failed += 1;
                    crate::delivery_attempt::record_failure(app, row, &failure).await;
                }
            }
            continue;
        };
        match r {
            Ok(()) => {
                sent_units.push(unit);
                files.push((target, true));
            }
            Err(failure) => {
                for row in &unit.rows {
                    failed += 1;
                    crate::delivery_attempt::record_failure(app, row, &failure).await;
                }
                files.push((target, false));
            }
        }
    }
    let results = send(channel, sink, &sent_units, files).await;
    let sent_at = started.elapsed();

    // Record every row sent, and its statuses, in one transaction.
    let config = app.config();
    let mut flows: HashMap<i64, Option<FlowRow>> = HashMap::new();
    let mut items = Vec::new();
    let mut recorded_rows = Vec::new();
    for (unit, result) in sent_units.into_iter().zip(results) {
        let sent = match result {
            Ok(sent) => sent,
            Err(failure) => {
                for row in &unit.rows {
                    failed += 1;
                    crate::delivery_attempt::record_failure(app, row, &failure).await;
                }
                continue;
            }
        };
        for row in &unit.rows {
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
            recorded_rows.push((row, sent.clone()));
        }
    }
    let mut delivered = 0;
    match app.spool.record_delivered_batch(&items).await {
        Ok(outcomes) => {
            let mut marked: HashSet<i64> = HashSet::new();
            for ((row, sent), outcome) in recorded_rows.iter().zip(outcomes) {
                match outcome {
                    None => {
                        delivered += 1;
                        marked.insert(row.id);
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
            // A file's send record goes once every row it carries is
            // marked (a relay group's rows claimed later are taken as
            // delivered by that record, not sent twice).
            for unit in &units {
                let first = unit.first();
                let whole = match &first.item {
                    DeliveryItem::Status { flow, .. } => known
                        .groups
                        .get(&(*flow, first.partner.clone(), first.file_name.clone()))
                        .map_or(unit.rows.iter().map(|r| r.id).collect(), |g| {
                            g.iter().map(|m| m.delivery).collect::<Vec<_>>()
                        }),
                    _ => vec![first.id],
                };
                if whole.iter().all(|id| marked.contains(id)) {
                    if let Err(e) = channel.forget(&first.file_name) {
                        warn!(delivery = first.id, file = %first.file_name, error = %e,
                            "delivered; its send record could not be removed");
                    }
                }
            }
        }
        Err(e) => warn!(error = %e, rows = items.len(),
            "a batch was sent but not recorded; it will be sent again (same names, same bytes)"),
    }
    info!(destination = %channel.describe(), rows = rows_in, files = units.len(), delivered, failed,
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

/// Where a batch is rendered.
enum Sink {
    /// Staged files (not fsynced), handed to the channel as parcels.
    Staged(Staged),
    /// A local outbox's own temporaries, published in place.
    InPlace(InPlaceBatch),
}

/// Where one unit was rendered.
enum Target {
    Staged(PathBuf),
    /// Its temporary, and the handle the publication syncs.
    InPlace(InPlaceFile, std::fs::File),
}

/// Send the files of a batch (`true`: rendered whole; the others are
/// dropped, a temporary removed): one result per rendered file, in order
/// (`rendered` are their units).
async fn send(
    channel: &dyn Outbound,
    sink: Sink,
    rendered: &[&Unit],
    files: Vec<(Target, bool)>,
) -> Vec<Result<Sent, SendFailure>> {
    match sink {
        Sink::Staged(staged) => {
            let parcels: Vec<Parcel> = files
                .into_iter()
                .filter(|(_, ok)| *ok)
                .zip(rendered)
                .filter_map(|((target, _), unit)| match target {
                    Target::Staged(path) => Some(Parcel {
                        name: unit.first().file_name.clone(),
                        staged: path,
                        media_type: media_type(unit.first()),
                    }),
                    Target::InPlace(..) => None,
                })
                .collect();
            let out = channel.send_batch(&parcels).await;
            drop(staged);
            out
        }
        Sink::InPlace(batch) => {
            let keep: Vec<bool> = files.iter().map(|(_, ok)| *ok).collect();
            let entries: Vec<(InPlaceFile, Option<std::fs::File>)> = files
                .into_iter()
                .filter_map(|(target, ok)| match target {
                    Target::InPlace(entry, handle) => Some((entry, ok.then_some(handle))),
                    Target::Staged(_) => None,
                })
                .collect();
            let published = tokio::task::spawn_blocking(move || batch.publish(entries)).await;
            match published {
                Ok(out) => out
                    .into_iter()
                    .zip(keep)
                    .filter(|(_, ok)| *ok)
                    .map(|(r, _)| r)
                    .collect(),
                Err(e) => rendered
                    .iter()
                    .map(|_| {
                        Err(SendFailure {
                            destination: channel.describe(),
                            message: format!("outbox writer task failed: {e}"),
                            transient: true,
                        })
                    })
                    .collect(),
            }
        }
    }
}

/// What the status relays of a batch are rendered from, read in bulk:
/// each relay group's rows (all of them, claimed or not, so a group is
/// always the same file), their statuses by id, their invoices by (flow,
/// doc).
#[derive(Default)]
struct Known {
    groups: HashMap<(i64, String, String), Vec<StatusRelayRow>>,
    statuses: HashMap<i64, StatusRow>,
    invoices: HashMap<(i64, i64), InvoiceRow>,
}

/// Read the relay groups of the batch (one query per flow and partner),
/// their statuses in one query, and their invoices one page per flow (a
/// relay missing here is rendered from its own reads).
async fn prefetch(app: &App, units: &[Unit]) -> Known {
    let mut known = Known::default();
    let mut wanted: HashMap<(i64, String), HashSet<String>> = HashMap::new();
    for unit in units {
        let row = unit.first();
        if let DeliveryItem::Status { flow, .. } = row.item {
            wanted
                .entry((flow, row.partner.clone()))
                .or_default()
                .insert(row.file_name.clone());
        }
    }
    if wanted.is_empty() {
        return known;
    }
    for ((flow, partner), names) in &wanted {
        match app.spool.status_relays_of_flow(*flow, partner).await {
            Ok(found) => {
                for r in found.into_iter().filter(|r| names.contains(&r.file_name)) {
                    known
                        .groups
                        .entry((*flow, partner.clone(), r.file_name.clone()))
                        .or_default()
                        .push(r);
                }
            }
            Err(e) => warn!(flow, error = %e, "cannot read the relay groups of a batch"),
        }
    }
    let mut ids = Vec::new();
    let mut spans: HashMap<i64, (i64, i64)> = HashMap::new();
    for ((flow, _, _), members) in known.groups.iter_mut() {
        members.sort_by_key(|m| (m.doc_index, m.status));
        for m in members.iter() {
            ids.push(m.status);
            let span = spans.entry(*flow).or_insert((m.doc_index, m.doc_index));
            span.0 = span.0.min(m.doc_index);
            span.1 = span.1.max(m.doc_index);
        }
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

/// The CDAR of a relay group from what was read in bulk; `None` when a
/// part of it is missing there.
fn group_xml(app: &App, known: &Known, row: &DeliveryRow, flow: i64) -> Option<String> {
    let members = known
        .groups
        .get(&(flow, row.partner.clone(), row.file_name.clone()))?;
    let mut parts = Vec::with_capacity(members.len());
    for m in members {
        let st = known.statuses.get(&m.status)?;
        let inv = known.invoices.get(&(flow, m.doc_index))?;
        parts.push((m.status, st, inv));
    }
    if parts.is_empty() {
        return None;
    }
    Some(crate::acks::status_relays_xml(
        &app.config(),
        &parts,
        &row.partner,
        &row.file_name,
    ))
}

/// Render one unit into its staged writer (not fsynced).
async fn render_unit(
    app: &App,
    known: &Known,
    unit: &Unit,
    out: std::io::BufWriter<std::fs::File>,
) -> anyhow::Result<()> {
    let row = unit.first();
    match &row.item {
        DeliveryItem::Invoice { flow, doc_index } => {
            crate::render::write_invoice(app, *flow, *doc_index, &row.file_name, out, false).await
        }
        DeliveryItem::Status {
            status,
            flow,
            doc_index,
        } => {
            let xml = match group_xml(app, known, row, *flow) {
                Some(xml) => xml,
                None => {
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
