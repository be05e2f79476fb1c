//! Recording a batch of deliveries sent together, in one transaction
//! (issue 15, the exchange's bounded and fast path).
//!
//! The deliverer publishes a batch of files to one destination, makes them
//! durable with one fsync pass, then records the whole batch here: for
//! each delivery, the platform statuses its sending owes (201/202/203,
//! each recorded once, its CDAR relay owed in the same commit) and its
//! mark `pending → delivered`. One item the spool refuses (a status the
//! table refuses, a row no longer pending) is reported and left as it was;
//! it does not undo the others. A database error rolls the whole batch
//! back: every file of it is offered again under the same name, which
//! every channel takes as already delivered.
//!
//! The relays of the platform's statuses are grouped: all those of one
//! code owed to one supplier's channel about invoices of one flow in the
//! batch are one **relay group**, their delivery rows (one per status, as
//! the history, the partner's `statuses` filter and the deliverer's
//! bookkeeping want) sharing one file name, the one the first invoice's
//! relay would have had alone (`<flow stem>.cdar.<doc>-<code>.xml`, lowest
//! document index). The deliverer writes a group as one CDAR file naming
//! each of its invoices. The name is unique: a status is recorded once per
//! invoice, so no later group of that flow and code starts at that
//! invoice.
//!
//! The platform's statuses are checked exactly as `record_status` checks
//! one (the invoice exists, the same status recorded before is not
//! recorded again, the transition table, the relay goes to the supplier),
//! but set-wise: the batch's invoices and their histories are read in one
//! query each, and statuses, their events, the relays, their events and
//! the marks are each written by one statement, so a batch of 500 costs a
//! handful of statements, not twenty per invoice. A status of another
//! issuer goes through `record_status` itself.

/// One delivery of a batch that was sent.
#[derive(Debug, Clone)]
pub struct DeliveredItem {
    pub delivery: i64,
    /// Where it went.
    pub to: crate::Destination,
    /// What the other side answered.
    pub receipt: Option<String>,
    /// The statuses its sending owes, recorded before its mark.
    pub statuses: Vec<super::NewStatus>,
}

macro_rules! delivered_steps {
    ($backend:ident, $Conn:ty, $dialect:expr) => {
        pub(crate) mod $backend {
            use std::collections::{HashMap, HashSet};

            use super::DeliveredItem;
            use crate::invoices::clean_text;
            use crate::lifecycle::table::{may_follow, Issuer, StatusCode};
            use crate::lifecycle::{verdict_status, StatusRefusal};
            use crate::state::{self, DeliveryState, DeliveryStep};
            use crate::steps::{Cx, Dialect};
            use crate::{Result, SpoolError};

            type Conn = $Conn;
            const D: Dialect = $dialect;

            /// (flow, doc) of an invoice.
            type Key = (i64, i64);

            /// Per item: `None` when recorded, `Some(why)` when refused.
            pub(crate) async fn record_delivered_batch(
                conn: &mut Conn,
                cx: &Cx<'_>,
                batch: &[DeliveredItem],
            ) -> Result<Vec<Option<String>>> {
                let mut out: Vec<Option<String>> = vec![None; batch.len()];
                let keys: Vec<Key> = batch
                    .iter()
                    .flat_map(|d| d.statuses.iter().map(|s| (s.flow, s.doc_index)))
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                let pairs = serde_json::Value::Array(
                    keys.iter()
                        .map(|(f, d)| serde_json::json!({"flow": f, "doc": d}))
                        .collect(),
                )
                .to_string();
                // The invoices (locked on PostgreSQL, as record_status does).
                let lock = if D == Dialect::Postgres { " FOR NO KEY UPDATE OF i" } else { "" };
                let heads: Vec<(i64, i64, String, String)> = if keys.is_empty() {
                    Vec::new()
                } else {
                    sqlx::query_as(&format!(
                        "SELECT i.flow_id, i.doc_index, i.verdict, f.partner FROM {rows} \
                         JOIN invoices i ON i.flow_id = {flow} AND i.doc_index = {doc} \
                         JOIN flows f ON f.id = i.flow_id{lock}",
                        rows = D.json_rows(1),
                        flow = D.field("flow", true),
                        doc = D.field("doc", true),
                    ))
                    .bind(&pairs)
                    .fetch_all(&mut *conn)
                    .await?
                };
                // Their histories: (seq, code, issuer, inbound flow).
                let history: Vec<(i64, i64, i64, i32, String, Option<i64>)> = if keys.is_empty() {
                    Vec::new()
                } else {
                    sqlx::query_as(&format!(
                        "SELECT s.flow_id, s.doc_index, s.seq, s.code, s.issuer, s.inbound_flow_id FROM {rows} \
                         JOIN invoice_statuses s ON s.flow_id = {flow} AND s.doc_index = {doc}",
                        rows = D.json_rows(1),
                        flow = D.field("flow", true),
                        doc = D.field("doc", true),
                    ))
                    .bind(&pairs)
                    .fetch_all(&mut *conn)
                    .await?
                };
                struct Head {
                    supplier: String,
                    seq: i64,
                    latest: StatusCode,
                    /// Codes the platform recorded (no inbound flow).
                    platform: HashSet<u16>,
                }
                let mut invoices: HashMap<Key, Head> = HashMap::new();
                for (flow, doc, verdict, supplier) in heads {
                    let verdict: crate::Verdict = state::parse(&verdict)?;
                    invoices.insert(
                        (flow, doc),
                        Head { supplier, seq: 0, latest: verdict_status(verdict), platform: HashSet::new() },
                    );
                }
                for (flow, doc, seq, code, issuer, inbound) in history {
                    let Some(h) = invoices.get_mut(&(flow, doc)) else { continue };
                    let code = u16::try_from(code).ok().and_then(StatusCode::from_code).ok_or_else(|| {
                        SpoolError::Corrupt(format!("invoice {flow}/{doc}: status code {code}"))
                    })?;
                    if seq > h.seq {
                        h.seq = seq;
                        h.latest = code;
                    }
                    if issuer == Issuer::Platform.as_str() && inbound.is_none() {
                        h.platform.insert(code.code());
                    }
                }

                // Decide, item by item, as record_status would.
                let mut statuses = Vec::new();
                let mut relays = Vec::new();
                for (n, d) in batch.iter().enumerate() {
                    for s in &d.statuses {
                        if s.issuer != Issuer::Platform || s.from_partner.is_some() || s.inbound_flow.is_some() {
                            // Not the platform's own: the one-status path.
                            match super::super::sql::$backend::record_status(conn, cx, s).await {
                                Ok(_) => continue,
                                Err(e @ SpoolError::StatusRefused { .. }) => {
                                    out[n] = Some(e.to_string());
                                    break;
                                }
                                Err(e) => return Err(e),
                            }
                        }
                        let refused = |why: StatusRefusal| {
                            SpoolError::StatusRefused { flow: s.flow, doc_index: s.doc_index, why }.to_string()
                        };
                        let Some(h) = invoices.get_mut(&(s.flow, s.doc_index)) else {
                            out[n] = Some(refused(StatusRefusal::UnknownInvoice));
                            break;
                        };
                        if h.platform.contains(&s.code.code()) {
                            continue; // recorded before: the first one stands
                        }
                        if !s.code.emitted_by(Issuer::Platform) {
                            out[n] = Some(refused(StatusRefusal::WrongIssuer { code: s.code, issuer: s.issuer }));
                            break;
                        }
                        if !may_follow(Some(h.latest), s.code) {
                            out[n] = Some(refused(StatusRefusal::IllegalTransition {
                                latest: Some(h.latest),
                                next: s.code,
                            }));
                            break;
                        }
                        let relay = match &s.relay {
                            Some(r) if r.wants.wants(s.code) => {
                                if r.partner != h.supplier {
                                    out[n] = Some(refused(StatusRefusal::WrongRelay { partner: r.partner.clone() }));
                                    break;
                                }
                                Some(r)
                            }
                            _ => None,
                        };
                        let from = h.latest;
                        h.seq += 1;
                        h.latest = s.code;
                        h.platform.insert(s.code.code());
                        statuses.push(serde_json::json!({
                            "flow": s.flow,
                            "doc": s.doc_index,
                            "seq": h.seq,
                            "code": s.code.code(),
                            "at": s.at.unwrap_or(cx.now).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
                            "from": from.as_str(),
                            "to": s.code.as_str(),
                            "reason": format!("invoice {}/{} by {}", s.flow, s.doc_index, s.issuer),
                        }));
                        if let Some(r) = relay {
                            relays.push((s.flow, s.doc_index, h.seq, s.code.code(), r));
                        }
                    }
                }
                // One relay group per (supplier, its channel, flow, code):
                // its rows share the name of its first invoice's relay.
                let mut groups: HashMap<(&str, String, i64, u16), (i64, &str)> = HashMap::new();
                for &(flow, doc, _, code, r) in &relays {
                    let key = (r.partner.as_str(), format!("{:?}", r.to), flow, code);
                    let first = groups.entry(key).or_insert((doc, r.file_name.as_str()));
                    if doc < first.0 {
                        *first = (doc, r.file_name.as_str());
                    }
                }
                let relays: Vec<serde_json::Value> = relays
                    .iter()
                    .map(|&(flow, doc, seq, code, r)| {
                        let key = (r.partner.as_str(), format!("{:?}", r.to), flow, code);
                        let name = groups.get(&key).map_or(r.file_name.as_str(), |g| g.1);
                        serde_json::json!({
                            "flow": flow,
                            "doc": doc,
                            "seq": seq,
                            "partner": clean_text(&r.partner),
                            "kind": r.to.kind().as_str(),
                            "target": r.to.target(),
                            "name": clean_text(name),
                        })
                    })
                    .collect();

                if !statuses.is_empty() {
                    let rows = serde_json::Value::Array(statuses).to_string();
                    // RFC 3339, the text sqlx stores for a bound time on SQLite.
                    let at = if D == Dialect::Postgres {
                        format!("{}::timestamptz", D.field("at", false))
                    } else {
                        D.field("at", false)
                    };
                    sqlx::query(&format!(
                        "INSERT INTO invoice_statuses (flow_id, doc_index, seq, code, reasons, amounts, \
                         issuer, from_partner, inbound_flow_id, at, recorded_at) \
                         SELECT {flow}, {doc}, {seq}, {code}, '[]', '[]', '{platform}', NULL, NULL, {at}, $2 \
                         FROM {rows} WHERE true",
                        flow = D.field("flow", true),
                        doc = D.field("doc", true),
                        seq = D.field("seq", true),
                        code = if D == Dialect::Postgres { "(t.value ->> 'code')::int".to_owned() } else { D.field("code", true) },
                        platform = Issuer::Platform.as_str(),
                        rows = D.json_rows(1),
                    ))
                    .bind(&rows)
                    .bind(cx.now)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(&format!(
                        "INSERT INTO events (at, instance, entity, entity_id, from_state, to_state, reason) \
                         SELECT $2, $3, $4, s.id, {from}, {to}, {reason} FROM {rows} \
                         JOIN invoice_statuses s ON s.flow_id = {flow} AND s.doc_index = {doc} AND s.seq = {seq}",
                        from = D.field("from", false),
                        to = D.field("to", false),
                        reason = D.field("reason", false),
                        flow = D.field("flow", true),
                        doc = D.field("doc", true),
                        seq = D.field("seq", true),
                        rows = D.json_rows(1),
                    ))
                    .bind(&rows)
                    .bind(cx.now)
                    .bind(cx.me)
                    .bind(state::STATUS)
                    .execute(&mut *conn)
                    .await?;
                }
                if !relays.is_empty() {
                    let rows = serde_json::Value::Array(relays).to_string();
                    let ids: Vec<i64> = sqlx::query_scalar(&format!(
                        "INSERT INTO deliveries (item, flow_id, doc_index, status_id, partner, \
                         destination_kind, destination, file_name, state, created_at, updated_at, next_attempt_at) \
                         SELECT 'status', s.flow_id, s.doc_index, s.id, {partner}, {kind}, {target}, {name}, \
                         'pending', $2, $2, $2 FROM {rows} \
                         JOIN invoice_statuses s ON s.flow_id = {flow} AND s.doc_index = {doc} AND s.seq = {seq} \
                         WHERE true RETURNING id",
                        partner = D.field("partner", false),
                        kind = D.field("kind", false),
                        target = D.field("target", false),
                        name = D.field("name", false),
                        flow = D.field("flow", true),
                        doc = D.field("doc", true),
                        seq = D.field("seq", true),
                        rows = D.json_rows(1),
                    ))
                    .bind(&rows)
                    .bind(cx.now)
                    .fetch_all(&mut *conn)
                    .await?;
                    let ev = state::delivery(state::DELIVERY, 0, DeliveryStep::Owe, None, None)?;
                    crate::steps::$backend::insert_events_for(conn, cx, &ev, &ids).await?;
                }

                // The marks, pending → delivered, of the items not refused.
                let marks: Vec<serde_json::Value> = batch
                    .iter()
                    .zip(&out)
                    .filter(|(_, refused)| refused.is_none())
                    .map(|(d, _)| {
                        serde_json::json!({
                            "id": d.delivery,
                            "kind": d.to.kind().as_str(),
                            "target": clean_text(d.to.target()),
                            "receipt": d.receipt.as_deref().map(clean_text),
                        })
                    })
                    .collect();
                if !marks.is_empty() {
                    let rows = serde_json::Value::Array(marks).to_string();
                    let marked: Vec<i64> = sqlx::query_scalar(&format!(
                        "UPDATE deliveries SET state = 'delivered', updated_at = $2, delivered_at = $2, \
                         attempts = attempts + 1, last_error = NULL, lease_owner = NULL, lease_expires_at = NULL, \
                         destination_kind = {kind}, destination = {target}, receipt = {receipt} \
                         FROM {rows} WHERE deliveries.id = {id} AND deliveries.state = 'pending' \
                         AND deliveries.item IN ('invoice', 'status') RETURNING id",
                        kind = D.field("kind", false),
                        target = D.field("target", false),
                        receipt = D.field("receipt", false),
                        id = D.field("id", true),
                        rows = D.json_rows(1),
                    ))
                    .bind(&rows)
                    .bind(cx.now)
                    .fetch_all(&mut *conn)
                    .await?;
                    let ev = state::delivery(
                        state::DELIVERY,
                        0,
                        DeliveryStep::Deliver,
                        Some(DeliveryState::Pending),
                        None,
                    )?;
                    crate::steps::$backend::insert_events_for(conn, cx, &ev, &marked).await?;
                    let marked: HashSet<i64> = marked.into_iter().collect();
                    for (d, refused) in batch.iter().zip(out.iter_mut()) {
                        if refused.is_none() && !marked.contains(&d.delivery) {
                            *refused = Some(format!(
                                "delivery {} is not a pending invoice or status delivery",
                                d.delivery
                            ));
                        }
                    }
                }
                Ok(out)
            }

        }
    };
}

delivered_steps!(
    sqlite,
    sqlx::SqliteConnection,
    crate::steps::Dialect::Sqlite
);
delivered_steps!(
    postgres,
    sqlx::PgConnection,
    crate::steps::Dialect::Postgres
);
