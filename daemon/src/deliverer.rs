//! The deliverer: sends what the spool says is owed, and records how it went.
//!
//! Every answer quai owes has a delivery row in the spool (created in the
//! transaction that finished its flow, or registered its duplicate, or
//! queued its MDN) with its typed destination, attempts, next attempt time
//! and last error. The deliverer claims due rows under a lease (so two
//! instances on one PostgreSQL never send one row at once, and a dead
//! instance's rows are claimed again when its lease expires), renders each
//! acknowledgement from spool data (`acks`), hands the staged files to the
//! destination's channel (`outbound`), and only then marks the row
//! delivered. A failed attempt stores the next attempt time (the backoff of
//! `quai_spool::retry_delay`), so it survives a restart and is shared by
//! every instance; its error names the destination.
//!
//! Rows are grouped by destination and the groups sent concurrently: a
//! partner whose server hangs delays its own answers, not everyone's.
//! Within a group, invoices and status relays go the batched way
//! (`deliver_batch`: one durability pass and one spool transaction per
//! batch); acknowledgements are sent one by one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use quai_spool::{AckKind, AckRow, DeliveryItem, DeliveryRow, Destination, Lease};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::acks;
use crate::app::App;
use crate::delivery_attempt::{ids, item_kind, join_all, record_failure};
use crate::outbound::{self, Outbound, Parcel, SendFailure, Sent};
use crate::render;

/// Rows claimed per pass; the invoices and status relays of one
/// destination among them are sent in batches (`deliver_batch`). Claiming
/// 20,000 made batches of ~400 per recipient but raised the exchange
/// benchmark's peak RSS from 200 to 366 MiB for +8 % throughput
/// (BENCHMARKS.md, "Exchange path").
const BATCH: i64 = 2000;
/// How long a claim holds: longer than a pass over one destination's rows
/// normally takes; a pass that takes longer risks another instance sending
/// a row again, which the channels' idempotence on names absorbs.
const LEASE: Duration = Duration::from_secs(10 * 60);
/// Destinations served at once.
const PARALLEL: usize = 8;
/// Outbox temporaries older than this are from a send that died.
const STALE_TEMPORARY: Duration = Duration::from_secs(15 * 60);

/// Deliver what is owed until `stop`, woken by `app.acks` or every 5 s.
pub async fn deliverer(app: Arc<App>, stop: CancellationToken) {
    tidy(&app).await;
    loop {
        let notified = app.acks.notified();
        let pass = deliver_due(&app).await;
        if stop.is_cancelled() {
            break;
        }
        if pass.claimed == 0 {
            tokio::select! {
                _ = stop.cancelled() => {
                    // One last pass so answers of flows finished during
                    // shutdown are not left for the next start.
                    deliver_due(&app).await;
                    break;
                }
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub claimed: usize,
    pub delivered: usize,
    pub failed: usize,
}

/// Passes until nothing due is left (a failed row is due again only after
/// its backoff): `quai resend-ack` and the one-shot commands.
pub async fn deliver_pending(app: &App) -> Pass {
    let mut total = Pass::default();
    loop {
        let pass = deliver_due(app).await;
        total.claimed += pass.claimed;
        total.delivered += pass.delivered;
        total.failed += pass.failed;
        if pass.claimed == 0 {
            return total;
        }
    }
}

/// One pass: claim due rows, send them grouped by destination.
pub async fn deliver_due(app: &App) -> Pass {
    match app
        .spool
        .claim_due_deliveries(Utc::now(), BATCH, Lease { duration: LEASE })
        .await
    {
        Ok(rows) => deliver_claimed(app, rows).await,
        Err(e) => {
            warn!(error = %e, "cannot claim due deliveries");
            Pass::default()
        }
    }
}

/// Claim and send the given deliveries only (`quai resend-ack`): those a
/// running daemon holds under its lease are left to it.
pub async fn deliver_chosen(app: &App, ids: &[i64]) -> anyhow::Result<Pass> {
    let rows = app
        .spool
        .claim_deliveries(ids, Utc::now(), Lease { duration: LEASE })
        .await?;
    Ok(deliver_claimed(app, rows).await)
}

/// Send claimed rows, grouped by destination, the groups concurrently.
async fn deliver_claimed(app: &App, rows: Vec<DeliveryRow>) -> Pass {
    let mut pass = Pass {
        claimed: rows.len(),
        ..Pass::default()
    };
    let mut groups: BTreeMap<String, (Destination, Vec<DeliveryRow>)> = BTreeMap::new();
    for row in rows {
        let key = format!("{:?}", row.to);
        groups
            .entry(key)
            .or_insert_with(|| (row.to.clone(), Vec::new()))
            .1
            .push(row);
    }
    let mut groups = groups.into_values();
    loop {
        let wave: Vec<_> = groups.by_ref().take(PARALLEL).collect();
        if wave.is_empty() {
            break;
        }
        let results = join_all(
            wave.into_iter()
                .map(|(to, rows)| deliver_group(app, to, rows)),
        )
        .await;
        for (delivered, failed) in results {
            pass.delivered += delivered;
            pass.failed += failed;
        }
    }
    pass
}

/// Send one destination's rows in order; (delivered, failed).
async fn deliver_group(app: &App, to: Destination, rows: Vec<DeliveryRow>) -> (usize, usize) {
    let (mut api_delivered, mut api_failed) = (0, 0);
    let rows = if let Destination::Api { partner } = &to {
        // The partner API's acknowledgements are announced, not sent
        // (`webhooks`); invoices and status relays become flows `In`
        // (`outbound_api`, through the batched path below).
        let (acks, rest): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|r| !crate::deliver_batch::batchable(r));
        let (mut delivered, mut failed) = (0, 0);
        for row in acks {
            match crate::webhooks::announce(app, partner, &row).await {
                Ok(sent) => delivered += usize::from(record_delivered(app, &row, &sent).await),
                Err(failure) => {
                    failed += 1;
                    record_failure(app, &row, &failure).await;
                }
            }
        }
        if rest.is_empty() {
            return (delivered, failed);
        }
        (api_delivered, api_failed) = (delivered, failed);
        rest
    } else {
        rows
    };
    let channel: Result<Box<dyn outbound::Outbound>, _> = match &to {
        Destination::Api { partner } => Ok(Box::new(crate::outbound_api::ApiInbox::new(
            &app.config(),
            partner,
            app.spool.clone(),
        ))),
        _ => outbound::for_destination(&app.config(), &to),
    };
    let (mut delivered, mut failed) = (api_delivered, api_failed);
    // Invoices and status relays go in batches (`deliver_batch`).
    let (batched, rows): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(crate::deliver_batch::batchable);
    if !batched.is_empty() {
        match &channel {
            Ok(channel) => {
                let (d, f) = crate::deliver_batch::deliver(app, channel.as_ref(), batched).await;
                delivered += d;
                failed += f;
            }
            Err(refused) => {
                for row in &batched {
                    failed += 1;
                    record_failure(app, row, refused).await;
                }
            }
        }
    }
    for row in rows {
        let sent = match &channel {
            Ok(channel) => send_row(app, channel.as_ref(), &row).await,
            Err(refused) => Err(refused.clone()),
        };
        match sent {
            Ok((sent, names)) => {
                if record_delivered(app, &row, &sent).await {
                    delivered += 1;
                    if let Ok(channel) = &channel {
                        for name in names {
                            if let Err(e) = channel.forget(&name) {
                                warn!(delivery = row.id, file = %name, error = %e,
                                    "delivered; its send record could not be removed");
                            }
                        }
                    }
                }
            }
            Err(failure) => {
                failed += 1;
                record_failure(app, &row, &failure).await;
            }
        }
    }
    (delivered, failed)
}

/// Sends a row's files; the sent confirmation and the names sent.
async fn send_row(
    app: &App,
    channel: &dyn Outbound,
    row: &DeliveryRow,
) -> Result<(Sent, Vec<String>), SendFailure> {
    let refused = |message: String, transient: bool| SendFailure {
        destination: channel.describe(),
        message,
        transient,
    };
    let (ack, flow, kind) = match &row.item {
        DeliveryItem::Ack { ack, flow, kind } => (ack, flow, kind),
        DeliveryItem::Invoice { flow, doc_index } => {
            return send_invoice(app, channel, row, *flow, *doc_index).await;
        }
        DeliveryItem::Status {
            status,
            flow,
            doc_index,
        } => {
            let staged = acks::render_status(
                app,
                *status,
                *flow,
                *doc_index,
                &row.partner,
                &row.file_name,
            )
            .await
            .map_err(|e| refused(format!("status {status} not rendered: {e:#}"), true))?;
            return send_staged(channel, &staged).await;
        }
        DeliveryItem::Digest { .. } => {
            return Err(refused(
                format!(
                    "delivery {}: this version of quai does not deliver this item ({}) through the deliverer",
                    row.id,
                    item_kind(row)
                ),
                false,
            ))
        }
    };
    if *kind == AckKind::Mdn {
        // The queued MDN is its own staged file (see `acks::queue_async_mdn`).
        let parcel = Parcel {
            name: row.file_name.clone(),
            staged: row.file_name.clone().into(),
            media_type: "application/json",
        };
        return channel.send(&parcel).await.map(|s| (s, Vec::new()));
    }
    let ack_row = ack_row(app, *flow, *ack)
        .await
        .map_err(|e| refused(format!("acknowledgement {ack}: {e:#}"), true))?;
    let staged = acks::render(app, &ack_row).await.map_err(|e| {
        refused(
            format!("acknowledgement {ack} of flow {flow} not rendered: {e:#}"),
            true,
        )
    })?;
    send_staged(channel, &staged).await
}

/// Send the staged files of one row, in order.
async fn send_staged(
    channel: &dyn Outbound,
    staged: &acks::Staged,
) -> Result<(Sent, Vec<String>), SendFailure> {
    let mut receipts = Vec::new();
    let mut names = Vec::new();
    let mut last = None;
    for (name, path) in &staged.files {
        let parcel = Parcel {
            name: name.clone(),
            staged: path.clone(),
            media_type: media_type(name),
        };
        let sent = channel.send(&parcel).await?;
        receipts.extend(sent.receipt.clone());
        names.push(name.clone());
        last = Some(sent);
    }
    let destination = last
        .map(|s| s.destination)
        .unwrap_or_else(|| channel.describe());
    Ok((
        Sent {
            destination,
            receipt: (!receipts.is_empty()).then(|| receipts.join(", ")),
        },
        names,
    ))
}

/// Render an invoice for its recipient (`render`) and send it: one file,
/// under the delivery's name.
async fn send_invoice(
    app: &App,
    channel: &dyn Outbound,
    row: &DeliveryRow,
    flow: i64,
    doc_index: i64,
) -> Result<(Sent, Vec<String>), SendFailure> {
    let staged = render::render_invoice(app, flow, doc_index, &row.file_name)
        .await
        .map_err(|e| SendFailure {
            destination: channel.describe(),
            message: format!("invoice {flow}/{doc_index} not rendered: {e:#}"),
            transient: true,
        })?;
    let parcel = Parcel {
        name: row.file_name.clone(),
        staged: staged.path.clone(),
        media_type: render::media_type(&row.file_name),
    };
    let sent = channel.send(&parcel).await?;
    Ok((sent, vec![row.file_name.clone()]))
}

async fn ack_row(app: &App, flow: i64, ack: i64) -> anyhow::Result<AckRow> {
    app.spool
        .acks_of_flow(flow)
        .await?
        .into_iter()
        .find(|a| a.id == ack)
        .ok_or_else(|| anyhow::anyhow!("no longer in the spool"))
}

/// The media type of a rendered file, by its name.
fn media_type(name: &str) -> &'static str {
    if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".edi") {
        "application/EDIFACT"
    } else {
        "application/xml"
    }
}

/// Mark a sent row delivered; false when the spool refused (logged). An
/// invoice's statuses for its supplier (201, 202, 203) are recorded first
/// (`exchange::record_sent`, idempotent), so a crash between the two sends
/// the file again (same name, same bytes) and records nothing twice.
async fn record_delivered(app: &App, row: &DeliveryRow, sent: &Sent) -> bool {
    let kind = item_kind(row);
    if let DeliveryItem::Invoice { flow, doc_index } = &row.item {
        if let Err(e) = crate::exchange::record_sent(app, row, *flow, *doc_index, sent).await {
            warn!(delivery = row.id, error = %e,
                "invoice sent but its statuses not recorded; it will be sent again (same name, same bytes)");
            return false;
        }
    }
    match app
        .spool
        .mark_delivered(row.id, &row.to, sent.receipt.as_deref())
        .await
    {
        Ok(()) => {
            if let DeliveryItem::Invoice { flow, doc_index } = &row.item {
                crate::metrics::invoice_delivered(&row.partner);
                info!(partner = %row.partner, flow_id = flow, doc_index, delivery = row.id, stage = "delivered",
                    file = %row.file_name, destination = %sent.destination,
                    receipt = sent.receipt.as_deref().unwrap_or(""), "invoice delivered to its recipient");
                return true;
            }
            crate::metrics::ack_delivered(kind);
            let (flow_id, ack) = ids(row);
            info!(partner = %row.partner, flow_id, ack, delivery = row.id, stage = "acknowledged",
                kind, file = %row.file_name, destination = %sent.destination,
                receipt = sent.receipt.as_deref().unwrap_or(""), "acknowledgement delivered");
            true
        }
        Err(e) => {
            warn!(delivery = row.id, destination = %sent.destination, error = %e,
                "sent but not marked delivered; it will be sent again (same name, same bytes)");
            false
        }
    }
}

/// At start: delivery rows leased by an instance of this host that no
/// longer runs (`host:pid` with no such process: killed mid-send) are
/// released, so they are sent again now rather than when the lease
/// expires. The channels' idempotence on names absorbs a file that was
/// sent but not recorded.
async fn release_dead_leases(app: &App) {
    let me = app.spool.instance().to_owned();
    let Some((host, _)) = me.rsplit_once(':') else {
        return;
    };
    let owners = match app.spool.delivery_lease_owners().await {
        Ok(o) => o,
        Err(e) => {
            warn!(error = %e, "cannot read delivery leases");
            return;
        }
    };
    for owner in owners {
        let Some((h, pid)) = owner.rsplit_once(':') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if h != host || owner == me || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match app.spool.release_delivery_leases(&owner).await {
            Ok(n) if n > 0 => {
                info!(instance = %owner, released = n, "released the delivery leases of an instance that is gone")
            }
            Ok(_) => {}
            Err(e) => warn!(instance = %owner, error = %e, "cannot release delivery leases"),
        }
    }
}

/// At start: staging left by processes that are gone, and temporaries an
/// interrupted send left in the partners' local outboxes.
async fn tidy(app: &App) {
    release_dead_leases(app).await;
    let tmp = app.config().home.join("tmp");
    let removed = tokio::task::spawn_blocking(move || acks::remove_stale_staging(&tmp))
        .await
        .unwrap_or(0);
    if removed > 0 {
        info!(
            removed,
            "removed acknowledgement files staged by a process that is gone"
        );
    }
    let config = app.config();
    let outboxes: Vec<_> = config
        .partners
        .iter()
        .map(|p| config.outbox_for(&p.id))
        .collect();
    let _ = tokio::task::spawn_blocking(move || {
        for dir in outboxes {
            let outbox = quai_connectors::outbound::FolderOutbox::new(
                quai_connectors::outbound::FolderOutboxConfig {
                    dir: dir.clone(),
                    create_missing: false,
                },
            );
            if dir.is_dir() {
                if let Err(e) = outbox.clean_temporaries(STALE_TEMPORARY) {
                    warn!(error = %e, "cannot clean an outbox");
                }
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_by_name() {
        assert_eq!(media_type("a.1.report.json"), "application/json");
        assert_eq!(media_type("a.1.report.xml"), "application/xml");
        assert_eq!(media_type("a.1.contrl.edi"), "application/EDIFACT");
    }
}
