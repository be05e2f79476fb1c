//! The status page's linked pages: one per partner (`/partners/ID`: its
//! flows, reject rate, last flow, pending deliveries), one per flow
//! (`/flows/ID`: its invoices, rejects with their reasons and locations,
//! acknowledgements and invoice deliveries with their state, its history),
//! and the flow list (`/flows?partner=&state=&invoice=`) behind the search
//! box and the state filters.
//!
//! Why a module of its own: `page.rs` draws the one-screen overview; these
//! pages answer "what happened to this partner / this flow" and only read
//! bounded listings (at most [`FLOWS_SHOWN`] flows, [`INVOICES_SHOWN`]
//! invoices, [`DELIVERIES_SCANNED`] pending deliveries), saying so when a
//! listing is cut off. Like the overview they are server-rendered, refresh
//! themselves, and HTML-escape every text that comes from data.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use quai_spool::{DeliveryItem, FlowFilter, FlowRow, FlowState, SpoolError};

use super::html::{
    ago, esc, flow_link, partner_link, search_box, state_badge, state_filters, time, url_part, CSS,
    EXTRA_CSS, REFRESH_SECONDS,
};
use crate::app::App;

/// Most flows listed on a partner page or the flow list.
pub const FLOWS_SHOWN: i64 = 200;
/// Most invoices listed on a flow page.
pub const INVOICES_SHOWN: i64 = 1000;
/// Pending deliveries read to find a partner's.
pub const DELIVERIES_SCANNED: i64 = 5000;

/// The start of a page: head, header with the search box, `<main>`.
fn open_page(title: &str, search: &str) -> String {
    let mut s = String::with_capacity(16 * 1024);
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <title>{}</title><style>{CSS}{EXTRA_CSS}</style></head><body>\
         <header><h1><a href=\"/\">quai</a></h1><span class=\"sub\">{} · {} · refreshes every {REFRESH_SECONDS} s</span>{}</header><main>",
        esc(title),
        esc(title),
        time(Utc::now()),
        search_box(search)
    );
    s
}

fn close_page(mut s: String) -> String {
    s.push_str(
        "</main><footer style=\"padding:0 24px 18px\" class=\"mut\"><a href=\"/\">status</a> · \
         <a href=\"/flows\">all flows</a></footer></body></html>",
    );
    s
}

fn html(body: String) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

/// A page saying what went wrong, with its status code.
fn problem(code: StatusCode, title: &str, message: &str) -> Response {
    let mut s = open_page(title, "");
    let _ = write!(
        s,
        "<section id=\"problem\"><h2>{}</h2><p>{}</p></section>",
        esc(title),
        esc(message)
    );
    (code, Html(close_page(s))).into_response()
}

fn spool_problem(e: SpoolError) -> Response {
    match e {
        SpoolError::FlowNotFound(id) => problem(
            StatusCode::NOT_FOUND,
            "flow not found",
            &format!("there is no flow {id} in the spool"),
        ),
        e => {
            tracing::warn!(error = %e, "status page: spool query failed");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "spool unavailable",
                &format!("The spool cannot be read: {e}"),
            )
        }
    }
}

/// The flows table shared by the partner page and the flow list.
fn flows_table(s: &mut String, flows: &[FlowRow], truncated: bool, with_partner: bool) {
    let now = Utc::now();
    let _ = write!(
        s,
        "<table id=\"flow-table\"><thead><tr><th class=\"n\">Flow</th><th>Received</th>{}<th>File</th><th>State</th>\
         <th class=\"n\">Accepted</th><th class=\"n\">Rejected</th><th>Reason</th></tr></thead><tbody>",
        if with_partner { "<th>Partner</th>" } else { "" }
    );
    let cols = if with_partner { 8 } else { 7 };
    if flows.is_empty() {
        let _ = write!(
            s,
            "<tr><td colspan=\"{cols}\" class=\"empty\">no flow</td></tr>"
        );
    }
    for f in flows {
        let _ = write!(
            s,
            "<tr class=\"flow\" data-flow-id=\"{}\"><td class=\"n\">{}</td><td class=\"mut\">{}<br>{}</td>{}\
             <td class=\"fname\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            f.id,
            flow_link(f.id),
            esc(&time(f.received_at)),
            esc(&ago(now, f.received_at)),
            if with_partner {
                format!("<td>{}</td>", partner_link(&f.partner))
            } else {
                String::new()
            },
            esc(&f.original_name),
            state_badge(f.state.as_str()),
            f.invoices_accepted,
            f.invoices_rejected,
            esc(f.failure_code.as_deref().unwrap_or(""))
        );
    }
    if truncated {
        let _ = write!(
            s,
            "<tr><td colspan=\"{cols}\" class=\"mut\">only the newest {FLOWS_SHOWN} are listed (<code>quai flows</code> lists all)</td></tr>"
        );
    }
    s.push_str("</tbody></table>");
}

fn parse_state(state: Option<&str>) -> Result<Option<FlowState>, String> {
    match state.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse::<FlowState>().map(Some).map_err(|e| e.to_string()),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    pub state: Option<String>,
    pub partner: Option<String>,
    pub invoice: Option<String>,
}

/// `GET /partners/:id`
pub async fn partner_page(
    State(d): State<Arc<App>>,
    Path(partner): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let state = match parse_state(q.state.as_deref()) {
        Ok(s) => s,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "unknown state", &e),
    };
    let known = match d.spool.partner_ids().await {
        Ok(ids) => ids.contains(&partner),
        Err(e) => return spool_problem(e),
    };
    if !known {
        return problem(
            StatusCode::NOT_FOUND,
            "partner not found",
            &format!("the spool knows no partner {partner:?}"),
        );
    }
    match render_partner(&d, &partner, state).await {
        Ok(body) => html(body),
        Err(e) => spool_problem(e),
    }
}

async fn render_partner(
    d: &App,
    partner: &str,
    state: Option<FlowState>,
) -> Result<String, SpoolError> {
    let now = Utc::now();
    let summary = super::overview::partners(&d.spool)
        .await?
        .into_iter()
        .find(|p| p.partner == partner);
    let flows = d
        .spool
        .list_flows(&FlowFilter {
            partner: Some(partner.to_string()),
            state,
            limit: Some(FLOWS_SHOWN + 1),
            ..FlowFilter::default()
        })
        .await?;
    let pending: Vec<_> = d
        .spool
        .pending_deliveries(DELIVERIES_SCANNED)
        .await?
        .into_iter()
        .filter(|r| r.partner == partner)
        .collect();

    let mut s = open_page(&format!("partner {partner}"), "");
    let _ = write!(
        s,
        "<section id=\"partner\"><h2>Partner <span id=\"partner-id\">{}</span></h2><div class=\"cards\">",
        esc(partner)
    );
    if let Some(p) = &summary {
        let flows_total: i64 = p.flows.values().sum();
        let rate = match p.reject_rate {
            Some(r) => format!(
                "<span class=\"rate{}\">{:.1} %</span>",
                if r >= 0.1 { " high" } else { "" },
                r * 100.0
            ),
            None => "–".into(),
        };
        let last = match (p.last_flow_id, p.last_flow_at, &p.last_flow_name) {
            (Some(id), Some(at), Some(name)) => format!(
                "{} <span class=\"fname\">{}</span><div class=\"mut\">{}</div>",
                flow_link(id),
                esc(name),
                esc(&ago(now, at))
            ),
            _ => "never".into(),
        };
        let _ = write!(
            s,
            "<div class=\"card\"><div class=\"v\">{flows_total}</div><div class=\"l\">flows</div></div>\
             <div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">invoices accepted</div></div>\
             <div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">invoices rejected</div></div>\
             <div class=\"card\"><div class=\"v\" id=\"reject-rate\">{rate}</div><div class=\"l\">reject rate</div></div>\
             <div class=\"card\"><div class=\"v\" style=\"font-size:16px\" id=\"last-flow\">{last}</div><div class=\"l\">last flow</div></div>\
             <div class=\"card{}\"><div class=\"v\" id=\"pending-deliveries\">{}</div><div class=\"l\">pending deliveries</div></div>",
            p.invoices_accepted,
            p.invoices_rejected,
            if pending.is_empty() { "" } else { " alert" },
            pending.len()
        );
    }
    s.push_str("</div></section>");

    // Pending deliveries.
    s.push_str(
        "<section id=\"deliveries\"><h2>Pending deliveries (owed to this partner, not yet delivered)</h2><table><thead><tr>\
         <th class=\"n\">Flow</th><th>File</th><th>Destination</th><th>Owed since</th><th class=\"n\">Attempts</th>\
         <th>Next attempt</th><th>Last error</th></tr></thead><tbody>",
    );
    if pending.is_empty() {
        s.push_str("<tr><td colspan=\"7\" class=\"empty\">none</td></tr>");
    }
    for r in &pending {
        let flow = match &r.item {
            DeliveryItem::Ack { flow, .. }
            | DeliveryItem::Invoice { flow, .. }
            | DeliveryItem::Status { flow, .. } => flow_link(*flow),
            DeliveryItem::Digest { digest } => format!("digest {digest}"),
        };
        let _ = write!(
            s,
            "<tr><td class=\"n\">{flow}</td><td class=\"fname\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
             <td>{}</td><td class=\"reason\">{}</td></tr>",
            esc(&r.file_name),
            esc(&crate::outbound::describe(&r.to)),
            esc(&ago(now, r.created_at)),
            r.attempts,
            esc(&time(r.next_attempt_at)),
            esc(r.last_error.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</tbody></table></section>");

    // Its flows.
    let truncated = flows.len() as i64 > FLOWS_SHOWN;
    let shown = &flows[..flows.len().min(FLOWS_SHOWN as usize)];
    let _ = write!(
        s,
        "<section id=\"flows\"><h2>Flows{}</h2>{}",
        match state {
            Some(st) => format!(" ({})", st.as_str()),
            None => String::new(),
        },
        state_filters(&format!("/partners/{}?", url_part(partner)), state)
    );
    flows_table(&mut s, shown, truncated, false);
    s.push_str("</section>");
    Ok(close_page(s))
}

/// `GET /flows?partner=&state=&invoice=`
pub async fn flow_list(State(d): State<Arc<App>>, Query(q): Query<ListQuery>) -> Response {
    let state = match parse_state(q.state.as_deref()) {
        Ok(s) => s,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "unknown state", &e),
    };
    let partner = q.partner.clone().filter(|p| !p.is_empty());
    if let Some(p) = &partner {
        match d.spool.partner_ids().await {
            Ok(ids) if ids.contains(p) => {}
            Ok(_) => {
                return problem(
                    StatusCode::NOT_FOUND,
                    "partner not found",
                    &format!("the spool knows no partner {p:?}"),
                )
            }
            Err(e) => return spool_problem(e),
        }
    }
    let invoice = q
        .invoice
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    match render_list(&d, partner.as_deref(), state, invoice).await {
        Ok(body) => html(body),
        Err(e) => spool_problem(e),
    }
}

async fn render_list(
    d: &App,
    partner: Option<&str>,
    state: Option<FlowState>,
    invoice: Option<&str>,
) -> Result<String, SpoolError> {
    let (mut flows, truncated) = match invoice {
        Some(number) => {
            let ids = d.spool.flows_with_invoice_number(number).await?;
            let mut out = Vec::new();
            for id in ids {
                match d.spool.flow(id).await {
                    Ok(f) => out.push(f),
                    Err(SpoolError::FlowNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            (out, false)
        }
        None => {
            let rows = d
                .spool
                .list_flows(&FlowFilter {
                    partner: partner.map(str::to_string),
                    state,
                    limit: Some(FLOWS_SHOWN + 1),
                    ..FlowFilter::default()
                })
                .await?;
            let cut = rows.len() as i64 > FLOWS_SHOWN;
            (rows, cut)
        }
    };
    flows
        .retain(|f| partner.is_none_or(|p| f.partner == p) && state.is_none_or(|st| f.state == st));
    flows.truncate(FLOWS_SHOWN as usize);

    let mut title = String::from("flows");
    if let Some(p) = partner {
        title.push_str(&format!(" of {p}"));
    }
    if let Some(st) = state {
        title.push_str(&format!(" ({})", st.as_str()));
    }
    if let Some(n) = invoice {
        title.push_str(&format!(" holding invoice {n}"));
    }
    let mut s = open_page(&title, invoice.unwrap_or(""));
    let mut base = String::from("/flows?");
    if let Some(p) = partner {
        let _ = write!(base, "partner={}&", url_part(p));
    }
    if let Some(n) = invoice {
        let _ = write!(base, "invoice={}&", url_part(n));
    }
    let _ = write!(
        s,
        "<section id=\"flows\"><h2>{}</h2>{}",
        esc(&title),
        state_filters(&base, state)
    );
    if let Some(n) = invoice {
        let _ = write!(
            s,
            "<p id=\"search-result\">{} flow(s) hold an invoice numbered <b>{}</b>.</p>",
            flows.len(),
            esc(n)
        );
    }
    flows_table(&mut s, &flows, truncated, true);
    s.push_str("</section>");
    Ok(close_page(s))
}

/// `GET /flows/:id`
pub async fn flow_page(State(d): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "not a flow id",
            &format!("{id:?} is not a flow id (a number)"),
        );
    };
    match render_flow(&d, id).await {
        Ok(body) => html(body),
        Err(e) => spool_problem(e),
    }
}

async fn render_flow(d: &App, id: i64) -> Result<String, SpoolError> {
    let now = Utc::now();
    let f = d.spool.flow(id).await?;
    let invoices = d
        .spool
        .invoices_of_flow_page(id, None, INVOICES_SHOWN + 1)
        .await?;
    let acks = d.spool.acks_of_flow(id).await?;
    let deliveries: Vec<_> = d
        .spool
        .deliveries_of_flow(id)
        .await?
        .into_iter()
        .filter(|r| matches!(r.item, DeliveryItem::Invoice { .. }))
        .collect();
    let events = d.spool.flow_events(id).await?;

    let mut s = open_page(&format!("flow {id}"), "");
    let _ = write!(
        s,
        "<section id=\"flow\"><h2>Flow {id} {}</h2><dl class=\"kv\">\
         <dt>Partner</dt><dd>{}</dd><dt>File</dt><dd class=\"fname\" id=\"flow-file\">{}</dd>\
         <dt>Origin</dt><dd>{}</dd><dt>Size</dt><dd>{} bytes</dd><dt>SHA-256</dt><dd class=\"mut\">{}</dd>\
         <dt>Received</dt><dd>{} ({})</dd><dt>Last change</dt><dd>{}</dd><dt>Attempts</dt><dd>{}</dd>\
         <dt>Invoices</dt><dd>{} accepted, {} rejected</dd>",
        state_badge(f.state.as_str()),
        partner_link(&f.partner),
        esc(&f.original_name),
        esc(f.origin.as_str()),
        f.size,
        esc(&f.sha256),
        esc(&time(f.received_at)),
        esc(&ago(now, f.received_at)),
        esc(&time(f.updated_at)),
        f.attempts,
        f.invoices_accepted,
        f.invoices_rejected
    );
    if let Some(of) = f.duplicate_of {
        let _ = write!(s, "<dt>Duplicate of</dt><dd>flow {}</dd>", flow_link(of));
    }
    if f.failure_code.is_some() || f.failure_message.is_some() {
        let _ = write!(
            s,
            "<dt>Refused whole</dt><dd id=\"flow-failure\"><span class=\"rule\">{}</span> {}</dd>",
            esc(f.failure_code.as_deref().unwrap_or("")),
            esc(f.failure_message.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</dl></section>");

    // Invoices, rejects with their reasons and where they are.
    let truncated = invoices.len() as i64 > INVOICES_SHOWN;
    s.push_str(
        "<section id=\"invoices\"><h2>Invoices</h2><table><thead><tr><th class=\"n\">#</th><th>Document</th>\
         <th>Invoice</th><th>Date</th><th class=\"n\">Amount</th><th>Verdict</th><th>Reasons (rule, where, message)</th>\
         </tr></thead><tbody>",
    );
    if invoices.is_empty() {
        s.push_str("<tr><td colspan=\"7\" class=\"empty\">no invoice stored</td></tr>");
    }
    for inv in invoices.iter().take(INVOICES_SHOWN as usize) {
        let verdict = inv.verdict.as_str();
        let reasons: Vec<String> = inv
            .reasons
            .iter()
            .map(|r| {
                format!(
                    "<span class=\"rule\">{}</span> <span class=\"mut\">{}{}</span> {}",
                    esc(&r.rule),
                    esc(&r.term),
                    if r.severity == "fatal" {
                        String::new()
                    } else {
                        format!(" ({})", esc(&r.severity))
                    },
                    esc(&r.message)
                )
            })
            .collect();
        let amount = match (inv.total_with_vat, inv.currency.as_deref()) {
            (Some(a), Some(c)) => format!("{a} {c}"),
            (Some(a), None) => a.to_string(),
            _ => String::new(),
        };
        let _ = write!(
            s,
            "<tr class=\"invoice {verdict}\" data-doc=\"{}\"><td class=\"n\">{}</td><td class=\"fname\">{}</td><td>{}</td>\
             <td>{}</td><td class=\"n\">{}</td><td class=\"verdict {verdict}\">{verdict}</td><td>{}</td></tr>",
            inv.doc_index,
            inv.doc_index + 1,
            esc(&inv.entry),
            esc(inv.number.as_deref().unwrap_or("–")),
            inv.issue_date.map(|d| d.to_string()).unwrap_or_default(),
            esc(&amount),
            reasons.join("<br>")
        );
    }
    if truncated {
        let _ = write!(
            s,
            "<tr><td colspan=\"7\" class=\"mut\">only the first {INVOICES_SHOWN} are listed (<code>quai flow {id}</code> lists all)</td></tr>"
        );
    }
    s.push_str("</tbody></table></section>");

    // Acknowledgements and their delivery.
    s.push_str(
        "<section id=\"acks\" class=\"half\"><h2>Acknowledgements</h2><table><thead><tr><th class=\"n\">Id</th>\
         <th>Kind</th><th>File</th><th>Destination</th><th>Delivery</th><th class=\"n\">Attempts</th><th>Last error</th>\
         </tr></thead><tbody>",
    );
    if acks.is_empty() {
        s.push_str("<tr><td colspan=\"7\" class=\"empty\">none</td></tr>");
    }
    for a in &acks {
        let delivery = match a.delivered_at {
            Some(t) => format!("delivered {}", esc(&time(t))),
            None => format!(
                "<b>pending</b><div class=\"mut\">next attempt {}</div>",
                esc(&time(a.next_attempt_at))
            ),
        };
        let _ = write!(
            s,
            "<tr class=\"ack\" data-ack-id=\"{}\"><td class=\"n\">{}</td><td>{}</td><td class=\"fname\">{}</td><td>{}</td>\
             <td>{delivery}</td><td class=\"n\">{}</td><td class=\"reason\">{}</td></tr>",
            a.id,
            a.id,
            esc(a.kind.as_str()),
            esc(&a.file_name),
            esc(&crate::outbound::describe(&a.to)),
            a.attempts,
            esc(a.last_error.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</tbody></table></section>");

    // Invoices delivered to their recipients.
    s.push_str(
        "<section id=\"invoice-deliveries\" class=\"half\"><h2>Invoice deliveries</h2><table><thead><tr><th class=\"n\">#</th>\
         <th>Recipient</th><th>File</th><th>Delivery</th><th class=\"n\">Attempts</th><th>Last error</th></tr></thead><tbody>",
    );
    if deliveries.is_empty() {
        s.push_str("<tr><td colspan=\"6\" class=\"empty\">none</td></tr>");
    }
    for r in &deliveries {
        let doc = match r.item {
            DeliveryItem::Invoice { doc_index, .. } => (doc_index + 1).to_string(),
            _ => String::new(),
        };
        let delivery = match r.delivered_at {
            Some(t) => format!("delivered {}", esc(&time(t))),
            None => "<b>pending</b>".to_string(),
        };
        let _ = write!(
            s,
            "<tr><td class=\"n\">{doc}</td><td>{}</td><td class=\"fname\">{}</td><td>{delivery}</td><td class=\"n\">{}</td>\
             <td class=\"reason\">{}</td></tr>",
            partner_link(&r.partner),
            esc(&r.file_name),
            r.attempts,
            esc(r.last_error.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</tbody></table></section>");

    // History.
    s.push_str(
        "<section id=\"history\"><h2>History</h2><table><thead><tr><th>When</th><th>What</th><th>From</th><th>To</th>\
         <th>Why</th></tr></thead><tbody>",
    );
    for e in &events {
        let _ = write!(
            s,
            "<tr><td class=\"mut\">{}</td><td>{} {}</td><td>{}</td><td>{}</td><td class=\"reason\">{}</td></tr>",
            esc(&time(e.at)),
            esc(&e.entity),
            e.entity_id,
            esc(e.from_state.as_deref().unwrap_or("")),
            esc(&e.to_state),
            esc(e.reason.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</tbody></table></section>");
    Ok(close_page(s))
}
