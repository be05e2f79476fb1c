//! The guarded insert of a status and the delivery of its relay, written
//! once for both backends (compiled twice, as `steps.rs` does).
//!
//! The invoice row is read first (locked on PostgreSQL, so two statuses of
//! one invoice are checked one after the other; SQLite has one writer);
//! then the issuer, the sender and the transition are checked against the
//! table, and only then is anything written.

/// The partner an invoice's delivery is owed to (its recipient).
pub(crate) const RECIPIENT_OF: &str = "SELECT partner FROM deliveries \
    WHERE item = 'invoice' AND flow_id = $1 AND doc_index = $2 ORDER BY id LIMIT 1";

macro_rules! status_steps {
    ($backend:ident, $Conn:ty, $dialect:expr) => {
        pub(crate) mod $backend {
            use super::super::table::{may_follow, Issuer, StatusCode};
            use super::super::{verdict_status, NewStatus, RecordedStatus, StatusRefusal};
            use super::{json, RECIPIENT_OF};
            use crate::invoices::clean_text;
            use crate::state::{self, DeliveryStep, Event};
            use crate::steps::{$backend::insert_event, Cx, Dialect};
            use crate::{Result, SpoolError, Verdict};

            type Conn = $Conn;
            const D: Dialect = $dialect;

            fn refused(s: &NewStatus, why: StatusRefusal) -> SpoolError {
                SpoolError::StatusRefused {
                    flow: s.flow,
                    doc_index: s.doc_index,
                    why,
                }
            }

            pub(crate) async fn record_status(
                conn: &mut Conn,
                cx: &Cx<'_>,
                s: &NewStatus,
            ) -> Result<RecordedStatus> {
                let lock = if D == Dialect::Postgres { " FOR NO KEY UPDATE OF i" } else { "" };
                let head: Option<(String, String)> = sqlx::query_as(&format!(
                    "SELECT i.verdict, f.partner FROM invoices i JOIN flows f ON f.id = i.flow_id \
                     WHERE i.flow_id = $1 AND i.doc_index = $2{lock}"
                ))
                .bind(s.flow)
                .bind(s.doc_index)
                .fetch_optional(&mut *conn)
                .await?;
                let Some((verdict, supplier)) = head else {
                    return Err(refused(s, StatusRefusal::UnknownInvoice));
                };
                let verdict: Verdict = state::parse(&verdict)?;

                // The same status again: the first one stands.
                let seen: Option<(i64, i64)> = sqlx::query_as(
                    "SELECT id, seq FROM invoice_statuses WHERE flow_id = $1 AND doc_index = $2 \
                     AND code = $3 AND issuer = $4 AND inbound_flow_id IS NOT DISTINCT FROM $5 \
                     ORDER BY seq LIMIT 1",
                )
                .bind(s.flow)
                .bind(s.doc_index)
                .bind(i32::from(s.code.code()))
                .bind(s.issuer.as_str())
                .bind(s.inbound_flow)
                .fetch_optional(&mut *conn)
                .await?;
                if let Some((id, seq)) = seen {
                    let relay: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM deliveries WHERE item = 'status' AND status_id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    return Ok(RecordedStatus { id, seq, relay, new: false });
                }

                if !s.code.emitted_by(s.issuer) {
                    return Err(refused(s, StatusRefusal::WrongIssuer { code: s.code, issuer: s.issuer }));
                }
                let recipient: Option<String> = sqlx::query_scalar(RECIPIENT_OF)
                    .bind(s.flow)
                    .bind(s.doc_index)
                    .fetch_optional(&mut *conn)
                    .await?;
                let from = s.from_partner.as_deref();
                let (sender_ok, other_party) = match s.issuer {
                    Issuer::Platform => (from.is_none(), Some(supplier.as_str())),
                    Issuer::Recipient => (
                        from.is_some() && from == recipient.as_deref(),
                        Some(supplier.as_str()),
                    ),
                    Issuer::Supplier => (from == Some(supplier.as_str()), recipient.as_deref()),
                };
                if !sender_ok {
                    return Err(refused(
                        s,
                        StatusRefusal::NotYourInvoice { partner: s.from_partner.clone() },
                    ));
                }

                let last: Option<(i64, i32)> = sqlx::query_as(
                    "SELECT seq, code FROM invoice_statuses WHERE flow_id = $1 AND doc_index = $2 \
                     ORDER BY seq DESC LIMIT 1",
                )
                .bind(s.flow)
                .bind(s.doc_index)
                .fetch_optional(&mut *conn)
                .await?;
                let (seq, latest) = match last {
                    Some((seq, code)) => (
                        seq,
                        u16::try_from(code).ok().and_then(StatusCode::from_code).ok_or_else(|| {
                            SpoolError::Corrupt(format!(
                                "invoice {}/{}: status code {code}",
                                s.flow, s.doc_index
                            ))
                        })?,
                    ),
                    None => (0, verdict_status(verdict)),
                };
                if !may_follow(Some(latest), s.code) {
                    return Err(refused(
                        s,
                        StatusRefusal::IllegalTransition { latest: Some(latest), next: s.code },
                    ));
                }
                let relay = match &s.relay {
                    Some(r) if r.wants.wants(s.code) => {
                        if other_party != Some(r.partner.as_str()) {
                            return Err(refused(
                                s,
                                StatusRefusal::WrongRelay { partner: r.partner.clone() },
                            ));
                        }
                        Some(r)
                    }
                    _ => None,
                };

                let reasons: Vec<_> = s
                    .reasons
                    .iter()
                    .map(|r| super::super::StatusReason {
                        code: clean_text(&r.code).into_owned(),
                        text: r.text.as_deref().map(|t| clean_text(t).into_owned()),
                    })
                    .collect();
                let at = s.at.unwrap_or(cx.now);
                let seq = seq + 1;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO invoice_statuses (flow_id, doc_index, seq, code, reasons, amounts, \
                     issuer, from_partner, inbound_flow_id, at, recorded_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                )
                .bind(s.flow)
                .bind(s.doc_index)
                .bind(seq)
                .bind(i32::from(s.code.code()))
                .bind(json(&reasons))
                .bind(json(&s.amounts))
                .bind(s.issuer.as_str())
                .bind(s.from_partner.as_deref().map(clean_text))
                .bind(s.inbound_flow)
                .bind(at)
                .bind(cx.now)
                .fetch_one(&mut *conn)
                .await?;
                insert_event(
                    conn,
                    cx,
                    &Event {
                        entity: state::STATUS,
                        entity_id: id,
                        from: Some(latest.as_str().to_owned()),
                        to: s.code.as_str().to_owned(),
                        reason: Some(format!(
                            "invoice {}/{} by {}",
                            s.flow, s.doc_index, s.issuer
                        )),
                    },
                )
                .await?;

                let relay = match relay {
                    None => None,
                    Some(r) => {
                        let did: i64 = sqlx::query_scalar(
                            "INSERT INTO deliveries (item, flow_id, doc_index, status_id, partner, \
                             destination_kind, destination, file_name, state, created_at, updated_at, \
                             next_attempt_at) \
                             VALUES ('status', $1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8, $8) RETURNING id",
                        )
                        .bind(s.flow)
                        .bind(s.doc_index)
                        .bind(id)
                        .bind(clean_text(&r.partner))
                        .bind(r.to.kind().as_str())
                        .bind(r.to.target())
                        .bind(clean_text(&r.file_name))
                        .bind(cx.now)
                        .fetch_one(&mut *conn)
                        .await?;
                        let ev = state::delivery(state::DELIVERY, did, DeliveryStep::Owe, None, None)?;
                        insert_event(conn, cx, &ev).await?;
                        Some(did)
                    }
                };
                Ok(RecordedStatus { id, seq, relay, new: true })
            }
        }
    };
}

/// JSON text of the lists a status row stores.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

status_steps!(sqlite, sqlx::SqliteConnection, Dialect::Sqlite);
status_steps!(postgres, sqlx::PgConnection, Dialect::Postgres);
