//! The exchange's commands (issue 15): `quai invoice`, `quai invoices`,
//! `quai resend-invoice`.
//!
//! An invoice is named by its flow and document index (`FLOW/INDEX`, as
//! `quai flow ID` shows `#INDEX`) or by its number and seller (`NUMBER
//! --seller ID`). What is shown — route, delivery, status history — is the
//! spool's; the JSON shapes are documented in docs/exchange.md and shared
//! with `GET /api/invoices/...` (`exchange::invoice_json`).

use std::sync::Arc;

use quai_spool::{DeliveryState, ExchangeFilter};
use serde_json::{json, Value};

use crate::app::App;

macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*)?
    }};
}

fn p(s: &str) -> std::borrow::Cow<'_, str> {
    crate::text::printable(s)
}

/// How long `resend-invoice` waits for a row a running daemon holds.
const RESEND_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `quai invoice (NUMBER --seller ID | FLOW/INDEX) [--json]`.
pub async fn invoice(
    app: &App,
    what: &str,
    seller: Option<&str>,
    json: bool,
) -> anyhow::Result<i32> {
    let found = crate::exchange::resolve(&app.spool, what, seller).await?;
    let mut shown = Vec::with_capacity(found.len());
    for inv in &found {
        shown.push(crate::exchange::invoice_json(&app.spool, inv).await?);
    }
    if json {
        if shown.len() == 1 {
            out!("{}", shown.remove(0));
        } else {
            out!("{}", json!({ "invoices": shown }));
        }
        return Ok(0);
    }
    for v in &shown {
        let i = &v["invoice"];
        let s = |k: &str| {
            i[k].as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| "-".into())
        };
        out!(
            "invoice {}/{}: number {} seller {} issued {} — {}",
            i["flow_id"],
            i["doc_index"],
            p(&s("number")),
            p(&s("seller_id")),
            s("issue_date"),
            s("verdict")
        );
        out!(
            "  route: from {} to {}",
            p(&s("supplier")),
            p(&s("recipient"))
        );
        let deliveries = v["deliveries"].as_array().cloned().unwrap_or_default();
        if deliveries.is_empty() {
            out!("  delivery: none owed");
        }
        for d in deliveries {
            let t = |k: &str| {
                d[k].as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| "-".into())
            };
            out!(
                "  delivery {}: {} {} to {} (attempts {}){}{}",
                d["id"],
                t("state"),
                p(&t("file")),
                p(&t("destination")),
                d["attempts"],
                d["delivered_at"]
                    .as_str()
                    .map(|w| format!(", delivered at {w}"))
                    .unwrap_or_default(),
                d["last_error"]
                    .as_str()
                    .map(|e| format!(", last error: {}", p(e)))
                    .unwrap_or_default(),
            );
        }
        let statuses = v["statuses"].as_array().cloned().unwrap_or_default();
        out!("  statuses:");
        for st in statuses {
            let t = |k: &str| st[k].as_str().map(str::to_owned).unwrap_or_default();
            out!(
                "    {} {} {}{}",
                t("at"),
                t("code"),
                p(&t("name")),
                st["reason"]
                    .as_str()
                    .map(|r| format!(" ({})", p(r)))
                    .unwrap_or_default()
            );
        }
    }
    Ok(0)
}

/// `quai invoices --partner P [--status CODE] [--since D] [--limit N] [--json]`.
pub async fn invoices(
    app: &App,
    partner: &str,
    status: Option<&str>,
    since: Option<&str>,
    limit: i64,
    json: bool,
) -> anyhow::Result<i32> {
    let since = since.map(crate::query::parse_since).transpose()?;
    if let Some(code) = status {
        anyhow::ensure!(
            crate::exchange::status_name(code).is_some(),
            "unknown status {} (200 to 213)",
            p(code)
        );
    }
    let filter = ExchangeFilter {
        partner: Some(partner.to_owned()),
        since,
        status: status.and_then(|c| c.parse().ok()),
        limit: Some(limit),
    };
    let list = app.spool.exchanged_invoices(&filter).await?;
    if json {
        out!("{}", json!({ "partner": partner, "invoices": list }));
        return Ok(0);
    }
    out!(
        "{:<12} {:<20} {:<24} {:<12} {:<12} {:<10}",
        "INVOICE",
        "NUMBER",
        "SELLER",
        "SUPPLIER",
        "RECIPIENT",
        "VERDICT"
    );
    for i in &list {
        out!(
            "{:<12} {:<20} {:<24} {:<12} {:<12} {:<10}",
            format!("{}/{}", i.flow_id, i.doc_index),
            p(i.number.as_deref().unwrap_or("-")),
            p(i.seller_id.as_deref().unwrap_or("-")),
            p(&i.supplier),
            p(i.recipient.as_deref().unwrap_or("-")),
            i.verdict
        );
    }
    Ok(0)
}

/// `quai resend-invoice FLOW/INDEX [--json]`: deliver an invoice to its
/// recipient again (a delivered one back to pending, a pending one due
/// now), through the spool: a running daemon holding the row under its
/// lease sends it, and this command waits for it.
pub async fn resend_invoice(app: &Arc<App>, what: &str, json: bool) -> anyhow::Result<i32> {
    let Some((flow, doc)) = crate::exchange::parse_ref(what) else {
        anyhow::bail!("name the invoice as FLOW/INDEX (e.g. 12/0)");
    };
    let rows = app.spool.invoice_deliveries(flow, doc).await?;
    anyhow::ensure!(
        !rows.is_empty(),
        "invoice {flow}/{doc} owes no delivery (rejected, or not routed)"
    );
    for r in &rows {
        app.spool.send_again(r.id).await?;
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    crate::deliverer::deliver_chosen(app, &ids).await?;
    let started = std::time::Instant::now();
    let rows = loop {
        let rows = app.spool.invoice_deliveries(flow, doc).await?;
        let held = rows.iter().any(|r| {
            r.state == DeliveryState::Pending
                && r.lease_expires_at.is_some_and(|t| t > chrono::Utc::now())
        });
        if !held || started.elapsed() > RESEND_WAIT {
            break rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let all = rows.iter().all(|r| r.state == DeliveryState::Delivered);
    if json {
        let list: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "delivery": r.id,
                    "recipient": r.partner,
                    "file": r.file_name,
                    "destination": crate::outbound::describe(&r.to),
                    "delivered": r.state == DeliveryState::Delivered,
                    "error": if r.state == DeliveryState::Delivered { None } else { r.last_error.clone() },
                })
            })
            .collect();
        out!(
            "{}",
            json!({"invoice": format!("{flow}/{doc}"), "deliveries": list, "delivered": all})
        );
    } else {
        for r in &rows {
            let to = crate::outbound::describe(&r.to);
            if r.state == DeliveryState::Delivered {
                out!(
                    "invoice {flow}/{doc} ({}) delivered to {}",
                    p(&r.file_name),
                    p(&to)
                );
            } else {
                out!(
                    "invoice {flow}/{doc} ({}) NOT delivered to {}: {}",
                    p(&r.file_name),
                    p(&to),
                    p(r.last_error.as_deref().unwrap_or("still pending"))
                );
            }
        }
    }
    Ok(if all { 0 } else { 1 })
}
