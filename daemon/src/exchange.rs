//! Routing a batch of accepted invoices to their recipients (issue 15).
//!
//! The pipeline calls [`route_batch`] on each batch of rows before it
//! stores them: every accepted invoice's routing key
//! (`directory::routing_key`) is looked up in the directory, all of the
//! batch in one query (`Spool::routes`). An invoice no valid line serves is
//! rejected here, 213 with reason `REJ_ADR`, before its row is stored, so
//! it is in the integration report, the CDAR and the reject digest like
//! any reject. An address that routes back to the sender is allowed.
//! A configuration without a directory (no `[directory] file`, no partner
//! `addresses`) routes nothing: quai is then an intake only.
//! The recipients found become the deliveries the flow owes
//! ([`owed_by_batch`]): held in the spool batch by batch, released by the
//! transaction that finishes the flow.

use std::collections::HashMap;

use quai_spool::{NewInvoice, NewInvoiceDelivery, Reason, StoredInvoice, Verdict};

use crate::app::App;
use crate::config::Config;
use crate::routing;

/// The reason of an invoice no partner receives.
pub const REJ_ADR: &str = "REJ_ADR";

/// Route the accepted rows of a batch (`keys[i]`: the routing key of
/// `rows[i]`): rows without a recipient become REJ_ADR rejects; returns
/// each row's recipient (None for rejected rows) and how many were
/// rejected here.
pub async fn route_batch(
    app: &App,
    rows: &mut [NewInvoice],
    keys: &[Option<String>],
) -> anyhow::Result<(Vec<Option<String>>, u64)> {
    let config = app.config();
    if !routing::routes_invoices(&config) {
        return Ok((vec![None; rows.len()], 0));
    }
    let wanted: Vec<String> = rows
        .iter()
        .zip(keys)
        .filter(|(r, _)| r.verdict == Verdict::Accepted)
        .filter_map(|(_, k)| k.clone())
        .collect();
    let today = chrono::Utc::now()
        .with_timezone(&config.timezone)
        .date_naive();
    let found = if wanted.is_empty() {
        HashMap::new()
    } else {
        app.spool.routes(&wanted, today).await?
    };
    let mut recipients = Vec::with_capacity(rows.len());
    let mut rejected = 0u64;
    for (row, key) in rows.iter_mut().zip(keys) {
        if row.verdict != Verdict::Accepted {
            recipients.push(None);
            continue;
        }
        match key.as_ref().and_then(|k| found.get(k)) {
            Some(route) => recipients.push(Some(route.partner.clone())),
            None => {
                rejected += 1;
                row.verdict = Verdict::Rejected;
                row.reasons.push(unroutable(key.as_deref()));
                recipients.push(None);
            }
        }
    }
    crate::metrics::invoices_unroutable(rejected);
    Ok((recipients, rejected))
}

/// The REJ_ADR reason of an invoice whose key (if any) no line serves.
fn unroutable(key: Option<&str>) -> Reason {
    let (term, message) = match key {
        Some(k) => (
            "BT-49",
            format!(
                "no partner receives invoices for the buyer's address {k}: no valid line of the directory"
            ),
        ),
        None => (
            "BT-49",
            "the buyer has no electronic address (BT-49 with its scheme) nor a SIREN or SIRET \
             (BT-47, scheme 0002 or 0009): the invoice cannot be routed"
                .to_owned(),
        ),
    };
    Reason {
        rule: REJ_ADR.to_owned(),
        term: term.to_owned(),
        severity: "fatal".to_owned(),
        message,
    }
}

/// The deliveries one stored batch owes: its invoices that stayed
/// accepted (the spool may have turned one into a REJ_UNI duplicate) and
/// have a recipient. The pipeline holds them in the spool batch by batch
/// (`Spool::hold_invoice_deliveries`); the flow's finishing transaction
/// releases them, so a flow's deliveries are never gathered in memory.
pub fn owed_by_batch(
    config: &Config,
    flow_id: i64,
    rows: &[NewInvoice],
    recipients: &[Option<String>],
    stored: &[StoredInvoice],
) -> Vec<NewInvoiceDelivery> {
    let accepted: HashMap<i64, bool> = stored
        .iter()
        .map(|s| (s.doc_index, s.verdict == Verdict::Accepted))
        .collect();
    let mut owed = Vec::new();
    for (row, recipient) in rows.iter().zip(recipients) {
        let Some(recipient) = recipient else { continue };
        if accepted.get(&row.doc_index) != Some(&true) {
            continue;
        }
        let form = routing::invoice_form(config, recipient, row.syntax.as_deref());
        owed.push(NewInvoiceDelivery {
            doc_index: row.doc_index,
            recipient: recipient.clone(),
            to: routing::invoice_destination(config, recipient),
            file_name: routing::invoice_file_name(
                row.seller_id.as_deref(),
                row.number.as_deref(),
                flow_id,
                row.doc_index,
                &form.extension(&row.entry),
            ),
        });
    }
    owed
}

/// The statuses an invoice delivered to `row`'s channel owes its supplier:
/// 201 Émise (sent to the recipient's channel), 202 Reçue when the
/// recipient's side acknowledged it (an AS2 MDN, an SFTP upload confirmed
/// by its rename), 203 Mise à disposition (in the recipient's outbox).
pub fn statuses_for(to: &quai_spool::Destination) -> &'static [quai_spool::StatusCode] {
    use quai_spool::{Destination, StatusCode::*};
    match to {
        Destination::As2 { .. } | Destination::SftpOutbox { .. } => {
            &[Issued, Received, MadeAvailable]
        }
        _ => &[Issued, MadeAvailable],
    }
}

/// Which status codes `partner` wants relayed as CDAR (default all).
/// (`[[partner]] statuses`; a partner no longer configured gets all.)
pub fn status_filter(config: &Config, partner: &str) -> quai_spool::StatusFilter {
    config
        .partner(partner)
        .map(|p| p.statuses.clone())
        .unwrap_or_else(quai_spool::StatusFilter::all)
}

/// Record the statuses of an invoice just delivered ([`statuses_for`])
/// through the spool's lifecycle history, each relayed as CDAR to the
/// supplier (its channel: the way its flow came) when it wants the code.
/// Each is recorded once: recording again after a crash, or after a
/// resend, adds nothing.
pub async fn record_sent(
    app: &App,
    row: &quai_spool::DeliveryRow,
    flow_id: i64,
    doc_index: i64,
    _sent: &crate::outbound::Sent,
) -> anyhow::Result<()> {
    let flow = app.spool.flow(flow_id).await?;
    for status in sent_statuses(&app.config(), &flow, &row.to, doc_index) {
        app.spool.record_status(&status).await?;
    }
    app.acks.notify_one();
    Ok(())
}

/// The statuses an invoice of `flow` delivered to `to` owes its supplier
/// ([`statuses_for`]), each with its CDAR relay to the supplier's channel
/// (the way its flow came), named `<flow report stem>.cdar.<doc>-<code>.xml`.
/// Recorded for a batch (`Spool::record_delivered_batch`), the relays of
/// one code about invoices of one flow become one relay group, one file
/// under the name of its first invoice's relay.
pub fn sent_statuses(
    config: &Config,
    flow: &quai_spool::FlowRow,
    to: &quai_spool::Destination,
    doc_index: i64,
) -> Vec<quai_spool::NewStatus> {
    let back = routing::destination_for(config, &flow.partner, flow.origin);
    let report = routing::report_file_name(&flow.original_name, flow.id);
    let wants = status_filter(config, &flow.partner);
    statuses_for(to)
        .iter()
        .map(|&code| {
            let relay = quai_spool::StatusRelay {
                partner: flow.partner.clone(),
                to: back.clone(),
                file_name: routing::sibling_name(&report, &format!("cdar.{doc_index}-{code}.xml")),
                wants: wants.clone(),
            };
            quai_spool::NewStatus::platform(flow.id, doc_index, code, Some(relay))
        })
        .collect()
}

/// The name of a lifecycle status code (200 Déposée ... 213 Rejetée).
pub fn status_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "200" => "Déposée",
        "201" => "Émise",
        "202" => "Reçue",
        "203" => "Mise à disposition",
        "204" => "Prise en charge",
        "205" => "Approuvée",
        "206" => "Approuvée partiellement",
        "207" => "En litige",
        "208" => "Suspendue",
        "209" => "Complétée",
        "210" => "Refusée",
        "211" => "Paiement transmis",
        "212" => "Encaissée",
        "213" => "Rejetée",
        _ => return None,
    })
}

/// An invoice's status history, oldest first, as JSON objects (`code`,
/// `name`, `at`, `issuer`, `from_partner`, `reasons`; the spool's
/// lifecycle history, its implicit 200/213 first).
pub async fn status_history(
    spool: &quai_spool::Spool,
    inv: &quai_spool::ExchangedInvoice,
) -> anyhow::Result<Vec<serde_json::Value>> {
    Ok(spool
        .statuses_of_invoice(inv.flow_id, inv.doc_index)
        .await?
        .into_iter()
        .map(|s| {
            serde_json::json!({
                "code": s.code.as_str(),
                "name": s.code.label(),
                "at": s.at,
                "issuer": s.issuer,
                "from_partner": s.from_partner,
                "reasons": s.reasons,
                "reason": (!s.reasons.is_empty()).then(|| s.reasons.iter()
                    .map(|r| match &r.text { Some(t) => format!("{} {t}", r.code), None => r.code.clone() })
                    .collect::<Vec<_>>().join("; ")),
            })
        })
        .collect())
}

/// `FLOW/INDEX` → (flow, index).
pub fn parse_ref(s: &str) -> Option<(i64, i64)> {
    let (f, d) = s.split_once('/')?;
    Some((f.trim().parse().ok()?, d.trim().parse().ok()?))
}

/// Resolve what the operator named: `FLOW/INDEX`, or `NUMBER` with
/// `--seller` (every invoice with that number and seller).
pub async fn resolve(
    spool: &quai_spool::Spool,
    what: &str,
    seller: Option<&str>,
) -> anyhow::Result<Vec<quai_spool::ExchangedInvoice>> {
    match (seller, parse_ref(what)) {
        (Some(seller), _) => {
            let found = spool.find_invoices(what, seller).await?;
            anyhow::ensure!(
                !found.is_empty(),
                "no invoice numbered {} from seller {}",
                crate::text::printable(what),
                crate::text::printable(seller)
            );
            Ok(found)
        }
        (None, Some((flow, doc))) => match spool.exchanged_invoice(flow, doc).await? {
            Some(i) => Ok(vec![i]),
            None => anyhow::bail!("flow {flow} has no document {doc}"),
        },
        (None, None) => {
            anyhow::bail!("name an invoice as FLOW/INDEX (e.g. 12/0), or NUMBER --seller ID")
        }
    }
}

/// One invoice as JSON: the invoice, its deliveries, its statuses.
pub async fn invoice_json(
    spool: &quai_spool::Spool,
    inv: &quai_spool::ExchangedInvoice,
) -> anyhow::Result<serde_json::Value> {
    let deliveries = spool.invoice_deliveries(inv.flow_id, inv.doc_index).await?;
    let statuses = status_history(spool, inv).await?;
    Ok(serde_json::json!({
        "invoice": inv,
        "deliveries": deliveries.iter().map(|d| serde_json::json!({
            "id": d.id,
            "recipient": d.partner,
            "to": d.to,
            "destination": crate::outbound::describe(&d.to),
            "file": d.file_name,
            "state": d.state.as_str(),
            "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at,
            "last_error": d.last_error,
            "delivered_at": d.delivered_at,
            "receipt": d.receipt,
        })).collect::<Vec<_>>(),
        "statuses": statuses,
    }))
}
