//! Status flows: a partner's CDAR lifecycle statuses (issue 15).
//!
//! A flow whose content is a CDAR (detected by its root element and
//! namespace, never its name) is not an invoice flow. Each status it holds
//! is read (`quai_mappings::ack::cdar_read`, with the BR-FR-CDV checks of
//! one status), matched to the invoice it names (seller, number BT-1, issue
//! date BT-2), and recorded through `Spool::record_status`, which checks
//! that the sender is that invoice's party for the status (its recipient
//! for 204–211, its supplier for 212) and the transition, and owes the
//! status's CDAR relay to the other party in the same transaction. What is
//! refused is answered to the sender in the flow's integration report, one
//! line per status (failure code `STATUS_REFUSED`), logged and counted; it
//! never changes another partner's invoice. docs/lifecycle.md.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use quai_mappings::ack::cdar_read::{self, ReadStatus};
use quai_mappings::detect::{self, Format};
use quai_spool::{
    ClaimedFlow, FlowOutcome, Issuer, NewAck, NewStatus, SpoolError, StatusAmount, StatusCode,
    StatusFilter, StatusReason, StatusRefusal, StatusRelay,
};
use tracing::{info, warn};

use crate::app::App;

/// The failure code of a status flow with refused statuses.
pub const STATUS_REFUSED: &str = "STATUS_REFUSED";

/// What a sender hears for a status naming no invoice of its own.
const NO_SUCH_INVOICE: &str = "no invoice of yours has that number, date and seller";

/// How many statuses of a status flow's refusal message matched no
/// invoice (for reconciliation).
pub fn unmatched(message: &str) -> usize {
    message
        .split("; ")
        .filter(|l| l.ends_with(NO_SUCH_INVOICE))
        .count()
}

/// Is the stored flow a CDAR document?
pub fn is_status_flow(path: &Path) -> bool {
    let mut head = Vec::with_capacity(detect::SNIFF_LEN);
    std::fs::File::open(path)
        .and_then(|f| f.take(detect::SNIFF_LEN as u64).read_to_end(&mut head))
        .is_ok()
        && detect::sniff(&head) == Format::Cdar
}

/// Take a status flow to its end (recorded, refusals answered).
pub async fn process(
    app: &App,
    claimed: &ClaimedFlow,
    path: PathBuf,
    max: usize,
) -> anyhow::Result<()> {
    let read = tokio::task::spawn_blocking(
        move || -> Result<(cdar_read::CdarHead, Vec<ReadStatus>, bool), String> {
            let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            let mut over = false;
            let head = cdar_read::read(BufReader::new(file), |s| {
                if out.len() < max {
                    out.push(s)
                } else {
                    over = true
                }
            })
            .map_err(|e| e.to_string())?;
            Ok((head, out, over))
        },
    )
    .await?;
    let mut refused: Vec<String> = Vec::new();
    let mut recorded = 0usize;
    match read {
        Err(e) => refused.push(format!("the CDAR document cannot be read: {e}")),
        Ok((head, _, _)) if !head.problems.is_empty() => {
            for p in &head.problems {
                refused.push(format!("document: {}: {}", p.rule, p.message));
            }
        }
        Ok((_, statuses, over)) => {
            if over {
                refused.push(format!(
                    "more than {max} statuses: the ones after are not read"
                ));
            }
            for s in &statuses {
                match take_one(app, claimed, s).await? {
                    None => recorded += 1,
                    Some(why) => {
                        let number = crate::text::printable(&s.invoice_number);
                        refused.push(format!(
                            "status {} (invoice {number}, {}): {why}",
                            s.index + 1,
                            s.code
                        ));
                    }
                }
            }
        }
    }
    let outcome = if refused.is_empty() {
        FlowOutcome::Processed
    } else {
        FlowOutcome::Failed {
            code: STATUS_REFUSED.to_owned(),
            message: refused.join("; "),
        }
    };
    let config = app.config();
    let acks: Vec<NewAck> = crate::routing::owed_by_duplicate(
        &config,
        &claimed.partner,
        claimed.origin,
        &claimed.original_name,
        claimed.id,
    )
    .iter()
    .map(|row| NewAck::from_legacy(&claimed.partner, row))
    .collect();
    app.spool
        .finish_flow_owing(claimed.id, &outcome, 0, &acks)
        .await?;
    if refused.is_empty() {
        info!(partner = %claimed.partner, flow_id = claimed.id, stage = "processed", statuses = recorded, "status flow recorded");
    } else {
        warn!(partner = %claimed.partner, flow_id = claimed.id, stage = "failed", statuses = recorded, refused = refused.len(), reason = %refused.join("; "), "status flow refused in part");
    }
    app.acks.notify_one();
    Ok(())
}

/// Record one status; `Some(why)` when it is refused.
async fn take_one(
    app: &App,
    claimed: &ClaimedFlow,
    s: &ReadStatus,
) -> anyhow::Result<Option<String>> {
    let partner = claimed.partner.as_str();
    let counted = |outcome: &str| crate::metrics::status_received(partner, &s.code, outcome);
    if let Some(p) = s.problems.first() {
        counted("unusable");
        return Ok(Some(format!("{}: {}", p.rule, p.message)));
    }
    let Ok(code) = s.code.parse::<StatusCode>() else {
        counted("unusable");
        return Ok(Some(format!(
            "status {} is not one quai relays (200 to 213)",
            s.code
        )));
    };
    let (Some(date), Some((_, seller))) = (s.issue_date, s.seller.as_ref()) else {
        counted("unusable");
        return Ok(Some("no issue date or seller".into()));
    };
    let spool = &app.spool;
    let Some((flow, doc)) = spool.find_invoice(seller, &s.invoice_number, date).await? else {
        counted("unknown_invoice");
        return Ok(Some(NO_SUCH_INVOICE.to_owned()));
    };
    let supplier = spool.flow(flow).await?.partner;
    let recipient = spool.recipient_of(flow, doc).await?;
    let issuer = match code {
        StatusCode::Cashed => Issuer::Supplier,
        StatusCode::Completed if supplier == partner => Issuer::Supplier,
        _ => Issuer::Recipient,
    };
    let other = match issuer {
        Issuer::Supplier => recipient,
        _ => Some(supplier),
    };
    let config = app.config();
    let relay = other.map(|other| StatusRelay {
        to: crate::routing::relay_destination(&config, &other),
        file_name: crate::routing::status_file_name(
            &s.invoice_number,
            flow,
            doc,
            code.as_str(),
            claimed.id,
        ),
        wants: config
            .partner(&other)
            .map(|p| p.statuses.clone())
            .unwrap_or_else(StatusFilter::all),
        partner: other,
    });
    let status = NewStatus {
        flow,
        doc_index: doc,
        code,
        reasons: s
            .reasons
            .iter()
            .map(|r| StatusReason {
                code: r.code.clone(),
                text: r.text.clone(),
            })
            .collect(),
        amounts: s
            .amounts
            .iter()
            .filter_map(|a| {
                Some(StatusAmount {
                    kind: a.kind.clone(),
                    amount: a.amount?,
                    currency: a.currency.clone(),
                    vat_rate: a.vat_rate,
                })
            })
            .collect(),
        issuer,
        from_partner: Some(partner.to_owned()),
        inbound_flow: Some(claimed.id),
        at: None,
        relay,
    };
    match spool.record_status(&status).await {
        Ok(_) => {
            counted("recorded");
            Ok(None)
        }
        Err(SpoolError::StatusRefused { why, .. }) => {
            counted(match why {
                StatusRefusal::UnknownInvoice => "unknown_invoice",
                StatusRefusal::WrongIssuer { .. } => "wrong_issuer",
                StatusRefusal::NotYourInvoice { .. } => "not_your_invoice",
                StatusRefusal::IllegalTransition { .. } => "illegal_transition",
                StatusRefusal::WrongRelay { .. } => "wrong_relay",
            });
            // Another partner's invoice is not named: a sender who is not
            // its party hears the same answer as for an unknown invoice.
            Ok(Some(match why {
                StatusRefusal::UnknownInvoice => NO_SUCH_INVOICE.to_owned(),
                StatusRefusal::NotYourInvoice { .. } => NO_SUCH_INVOICE.to_owned(),
                other => other.to_string(),
            }))
        }
        Err(e) => Err(e.into()),
    }
}
