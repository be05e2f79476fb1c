//! One delivery attempt's bookkeeping, shared by the row-by-row path
//! (`deliverer`) and the batched one (`deliver_batch`): a failed attempt's
//! record (next attempt time, error naming the destination, metrics), the
//! row's kind and ids for the log, and polling a wave of sends together.
//! A leaf of both, so neither path calls back into the other.

use chrono::Utc;
use quai_spool::{DeliveryItem, DeliveryRow};
use tracing::warn;

use crate::app::App;
use crate::outbound::SendFailure;

/// Polls futures of one wave together (they borrow `app`, so no spawn).
pub(crate) async fn join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("polled to the end"))
        .collect()
}

/// Store a failed attempt and its next attempt time.
pub(crate) async fn record_failure(app: &App, row: &DeliveryRow, failure: &SendFailure) {
    let kind = item_kind(row);
    if matches!(row.item, DeliveryItem::Invoice { .. }) {
        crate::metrics::invoice_delivery_failed(&row.partner);
    } else {
        crate::metrics::ack_failed(kind);
    }
    if row.to.kind() == quai_spool::DestinationKind::SftpOutbox {
        crate::metrics::sftp_failed("upload");
    }
    let now = Utc::now();
    let next = row.retry_at(now);
    let attempts = row.attempts.saturating_add(1);
    let retry_in_s = (next - now).num_seconds();
    let (flow_id, ack) = ids(row);
    let error = if failure.message.contains(&failure.destination) {
        failure.message.clone()
    } else {
        format!("{} ({})", failure.message, failure.destination)
    };
    warn!(partner = %row.partner, flow_id, ack, delivery = row.id, kind, attempts, retry_in_s,
        transient = failure.transient, destination = %failure.destination, error = %error,
        "delivery failed; will retry");
    if let Err(e) = app
        .spool
        .record_delivery_failure(row.id, &error, next)
        .await
    {
        warn!(delivery = row.id, error = %e, "cannot record the failed delivery");
    }
}

pub(crate) fn item_kind(row: &DeliveryRow) -> &'static str {
    match &row.item {
        DeliveryItem::Ack { kind, .. } => kind.as_str(),
        DeliveryItem::Invoice { .. } => "invoice",
        DeliveryItem::Digest { .. } => "digest",
        DeliveryItem::Status { .. } => "status",
    }
}

pub(crate) fn ids(row: &DeliveryRow) -> (i64, i64) {
    match &row.item {
        DeliveryItem::Ack { ack, flow, .. } => (*flow, *ack),
        DeliveryItem::Invoice { flow, .. } => (*flow, 0),
        DeliveryItem::Digest { .. } => (0, 0),
        DeliveryItem::Status { flow, status, .. } => (*flow, *status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn join_all_keeps_order() {
        let out = join_all([3u64, 1, 2].into_iter().map(|n| async move {
            tokio::time::sleep(Duration::from_millis(n * 5)).await;
            n
        }))
        .await;
        assert_eq!(out, vec![3, 1, 2]);
    }
}
