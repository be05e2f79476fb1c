//! The status page: one server-rendered HTML document, no build step, no
//! external assets (inline CSS, an inline SVG chart), refreshed by a
//! `<meta http-equiv="refresh">` so it works with scripts disabled.
//!
//! Everything that comes from data (partner ids, file names, archive entry
//! names, reject messages) is HTML-escaped through [`esc`]: file names are
//! chosen by partners and must never become markup.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::html::{
    ago, esc, flow_link, partner_link, search_box, state_badge, state_filters, time, CSS,
    EXTRA_CSS, REFRESH_SECONDS,
};
use super::overview::{self, Overview};
use crate::app::App;
use crate::text::age;

/// Reasons listed per rejected invoice (the rest: `quai flow ID`).
const REASONS_SHOWN: usize = 4;

#[derive(Debug, serde::Deserialize)]
pub struct PageQuery {
    pub stuck_minutes: Option<i64>,
}

pub async fn status_page(State(d): State<Arc<App>>, Query(q): Query<PageQuery>) -> Response {
    let stuck = q.stuck_minutes.unwrap_or(overview::DEFAULT_STUCK_MINUTES);
    match overview::overview(&d.spool, stuck).await {
        Ok(o) => ([(header::CACHE_CONTROL, "no-store")], Html(render(&o))).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "status page: spool query failed");
            let body = format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\"><title>quai: spool unavailable</title></head>\
                 <body><h1>quai</h1><p>The spool cannot be read: {}</p></body></html>",
                esc(&e.to_string())
            );
            (StatusCode::SERVICE_UNAVAILABLE, Html(body)).into_response()
        }
    }
}

/// The throughput chart: stacked bars (accepted, rejected) per bucket.
fn chart(o: &Overview) -> String {
    let (w, h, left, bottom, top) = (1100.0_f64, 190.0_f64, 44.0_f64, 24.0_f64, 10.0_f64);
    let n = o.throughput.len().max(1) as f64;
    let plot_w = w - left - 8.0;
    let plot_h = h - bottom - top;
    let max = o
        .throughput
        .iter()
        .map(|b| b.accepted + b.rejected)
        .max()
        .unwrap_or(0)
        .max(1);
    // A round axis maximum: 1, 2, 5 x 10^k.
    let mut axis = 1i64;
    'outer: for mag in [1i64, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000] {
        for m in [1, 2, 5] {
            if m * mag >= max {
                axis = m * mag;
                break 'outer;
            }
        }
        axis = 10 * mag;
    }
    let y = |v: i64| top + plot_h - (v as f64 / axis as f64) * plot_h;
    let bw = plot_w / n;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg id=\"throughput-chart\" role=\"img\" aria-label=\"Invoices per {} minutes, last 6 hours\" \
         viewBox=\"0 0 {w} {h}\" width=\"100%\" preserveAspectRatio=\"xMidYMid meet\" xmlns=\"http://www.w3.org/2000/svg\" \
         font-family=\"system-ui,sans-serif\" font-size=\"11\">",
        o.bucket_minutes
    );
    let mut ticks = vec![0, axis];
    if axis % 2 == 0 {
        ticks.insert(1, axis / 2);
    }
    for v in ticks {
        let yy = y(v);
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e4e7ec\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#667085\">{v}</text>",
            w - 8.0,
            left - 6.0,
            yy + 4.0
        );
    }
    for (i, b) in o.throughput.iter().enumerate() {
        let x = left + i as f64 * bw + 1.0;
        let bar_w = (bw - 2.0).max(1.0);
        let ya = y(b.accepted);
        let yr = y(b.accepted + b.rejected);
        let title = format!(
            "{} – {} accepted, {} rejected, {} flow(s)",
            b.start.format("%H:%M UTC"),
            b.accepted,
            b.rejected,
            b.flows
        );
        let _ = write!(s, "<g><title>{}</title>", esc(&title));
        if b.accepted > 0 {
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{ya:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"#2e9d5b\"/>",
                (top + plot_h - ya).max(0.5)
            );
        }
        if b.rejected > 0 {
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{yr:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"#d64545\"/>",
                (ya - yr).max(0.5)
            );
        }
        // An invisible full-height target so the tooltip works on empty bars.
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{top}\" width=\"{bar_w:.1}\" height=\"{plot_h}\" fill=\"transparent\"/></g>"
        );
        if i % 6 == 0 {
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{}\" fill=\"#667085\">{}</text>",
                h - 6.0,
                b.start.format("%H:%M")
            );
        }
    }
    let _ = write!(
        s,
        "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#98a2b3\"/></svg>",
        w - 8.0,
        top + plot_h,
        top + plot_h
    );
    s
}

/// Render the whole page.
pub fn render(o: &Overview) -> String {
    let now = o.generated_at;
    let mut s = String::with_capacity(32 * 1024);
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <title>quai status</title><style>{CSS}{}</style></head><body>\
         <header><h1>quai</h1><span class=\"sub\">status at {} · refreshes every {REFRESH_SECONDS} s</span>{}</header><main>",
        EXTRA_CSS,
        time(now),
        search_box("")
    );

    // Backlog.
    let b = &o.backlog;
    let total_inv = o.totals.invoices.get("accepted").copied().unwrap_or(0)
        + o.totals.invoices.get("rejected").copied().unwrap_or(0);
    let oldest_age = b.oldest_age_seconds.unwrap_or(0);
    let oldest_class = if b.oldest.is_some() && oldest_age > o.stuck_minutes * 60 {
        "card alert"
    } else if b.oldest.is_some() {
        "card warn"
    } else {
        "card"
    };
    let _ = write!(
        s,
        "<section id=\"backlog\"><h2>Backlog</h2><div class=\"cards\">\
         <div class=\"card\"><div class=\"v\" id=\"backlog-received\">{}</div><div class=\"l\">flows waiting</div></div>\
         <div class=\"card\"><div class=\"v\" id=\"backlog-processing\">{}</div><div class=\"l\">flows processing</div></div>\
         <div class=\"{oldest_class}\"><div class=\"v\" id=\"oldest-age\">{}</div><div class=\"l\">oldest unfinished flow</div>{}</div>\
         <div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">flows failed</div></div>\
         <div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">invoices stored</div></div>\
         </div></section>",
        b.received,
        b.processing,
        if b.oldest.is_some() {
            esc(&age(oldest_age))
        } else {
            "–".to_string()
        },
        match &b.oldest {
            Some(f) => format!(
                "<div class=\"mut fname\">#{} {} / {}{}</div>",
                flow_link(f.id),
                partner_link(&f.partner),
                esc(&f.original_name),
                if b.oldest_truncated { " (at least)" } else { "" }
            ),
            None => String::new(),
        },
        o.totals.flows.get("failed").copied().unwrap_or(0),
        total_inv
    );

    // Throughput.
    let window: i64 = o.throughput.iter().map(|b| b.accepted + b.rejected).sum();
    let _ = write!(
        s,
        "<section id=\"throughput\"><h2>Throughput: invoices per {} minutes, last 6 hours ({} in total{})</h2>{}\
         <div class=\"legend\"><span><span class=\"sw\" style=\"background:#2e9d5b\"></span>accepted</span>\
         <span><span class=\"sw\" style=\"background:#d64545\"></span>rejected</span></div></section>",
        o.bucket_minutes,
        window,
        if o.throughput_truncated {
            ", listing truncated"
        } else {
            ""
        },
        chart(o)
    );

    // Partners.
    let _ = write!(
        s,
        "<section id=\"partners\" class=\"half\"><h2>Partners</h2><table><thead><tr>\
         <th>Partner</th><th>Last flow</th><th class=\"n\">Flows</th><th class=\"n\">Accepted</th>\
         <th class=\"n\">Rejected</th><th class=\"n\">Reject rate</th></tr></thead><tbody>"
    );
    if o.partners.is_empty() {
        s.push_str("<tr><td colspan=\"6\" class=\"empty\">no partner yet</td></tr>");
    }
    for p in &o.partners {
        let flows: i64 = p.flows.values().sum();
        let rate = match p.reject_rate {
            Some(r) => format!(
                "<span class=\"rate{}\">{:.1} %</span>",
                if r >= 0.1 { " high" } else { "" },
                r * 100.0
            ),
            None => "<span class=\"mut\">–</span>".to_string(),
        };
        let last = match (p.last_flow_at, &p.last_flow_name) {
            (Some(t), Some(name)) => format!(
                "<span class=\"fname\">{}</span><br><span class=\"mut\">{}</span>",
                esc(name),
                esc(&ago(now, t))
            ),
            _ => "<span class=\"mut\">never</span>".to_string(),
        };
        let _ = write!(
            s,
            "<tr><td><b>{}</b></td><td>{last}</td><td class=\"n\">{flows}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{rate}</td></tr>",
            partner_link(&p.partner),
            p.invoices_accepted,
            p.invoices_rejected
        );
    }
    s.push_str("</tbody></table></section>");

    // Stuck flows.
    let _ = write!(
        s,
        "<section id=\"stuck\" class=\"half\"><h2>Stuck flows (unfinished for more than {} minutes)</h2><table><thead><tr>\
         <th class=\"n\">Flow</th><th>Partner</th><th>File</th><th>State</th><th>Since</th><th class=\"n\">Attempts</th>\
         </tr></thead><tbody>",
        o.stuck_minutes
    );
    if o.stuck.is_empty() {
        s.push_str("<tr><td colspan=\"6\" class=\"empty\">none</td></tr>");
    }
    for f in &o.stuck {
        let _ = write!(
            s,
            "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"fname\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            flow_link(f.id),
            partner_link(&f.partner),
            esc(&f.original_name),
            state_badge(f.state.as_str()),
            esc(&ago(now, f.received_at)),
            f.attempts
        );
    }
    s.push_str("</tbody></table></section>");

    // Undelivered: what quai owes partners and could not deliver yet.
    s.push_str(
        "<section id=\"undelivered\"><h2>Undelivered (owed to a partner, not yet delivered)</h2><table><thead><tr>\
         <th class=\"n\">Flow</th><th>Partner</th><th>File</th><th>Destination</th><th>Owed since</th>\
         <th class=\"n\">Attempts</th><th>Next attempt</th><th>Last error</th></tr></thead><tbody>",
    );
    if o.undelivered.is_empty() {
        s.push_str("<tr><td colspan=\"8\" class=\"empty\">none</td></tr>");
    }
    for u in &o.undelivered {
        let _ = write!(
            s,
            "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"fname\">{}</td><td>{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td class=\"reason\">{}</td></tr>",
            u.flow_id.map(flow_link).unwrap_or_default(),
            partner_link(&u.partner),
            esc(&u.file_name),
            esc(&u.destination),
            esc(&ago(now, u.owed_since)),
            u.attempts,
            esc(&time(u.next_attempt_at)),
            esc(u.last_error.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</tbody></table></section>");

    // The exchange: what each recipient was routed and got.
    s.push_str(
        "<section id=\"exchange\"><h2>Exchange (per recipient)</h2><table><thead><tr>\
         <th>Recipient</th><th class=\"n\">Routed</th><th class=\"n\">Delivered</th>\
         <th class=\"n\">Awaiting delivery</th><th class=\"n\">Refused by the buyer</th></tr></thead><tbody>",
    );
    if o.exchange.is_empty() {
        s.push_str("<tr><td colspan=\"5\" class=\"empty\">no invoice routed</td></tr>");
    }
    for r in &o.exchange {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&r.partner),
            r.routed,
            r.delivered,
            r.awaiting_delivery,
            r.refused_by_buyer
        );
    }
    s.push_str("</tbody></table></section>");

    // Recent rejects.
    s.push_str(
        "<section id=\"rejects\"><h2>Recent rejects (last 24 hours)</h2><table><thead><tr>\
         <th>When</th><th>Partner</th><th class=\"n\">Flow</th><th>Document</th><th>Invoice</th><th>Reasons</th>\
         </tr></thead><tbody>",
    );
    if o.recent_rejects.is_empty() {
        s.push_str("<tr><td colspan=\"6\" class=\"empty\">no reject</td></tr>");
    }
    for r in &o.recent_rejects {
        let mut reasons: Vec<String> = r
            .reasons
            .iter()
            .take(REASONS_SHOWN)
            .map(|(rule, msg)| format!("<span class=\"rule\">{}</span> {}", esc(rule), esc(msg)))
            .collect();
        if r.reasons.len() > REASONS_SHOWN {
            reasons.push(format!(
                "<span class=\"mut\">… {} more (<a href=\"/flows/{}\">flow page</a>, <code>quai flow {}</code>)</span>",
                r.reasons.len() - REASONS_SHOWN,
                r.flow_id,
                r.flow_id
            ));
        }
        let doc = if r.entry == r.original_name {
            esc(&r.entry)
        } else {
            format!(
                "{}<br><span class=\"mut\">in {}</span>",
                esc(&r.entry),
                esc(&r.original_name)
            )
        };
        let _ = write!(
            s,
            "<tr><td class=\"mut\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"fname\">{doc}</td><td>{}</td><td>{}</td></tr>",
            esc(&ago(now, r.at)),
            partner_link(&r.partner),
            flow_link(r.flow_id),
            esc(r.invoice_number.as_deref().unwrap_or("–")),
            reasons.join("<br>")
        );
    }
    s.push_str("</tbody></table></section>");

    // Recent flows.
    let _ = write!(
        s,
        "<section id=\"flows\"><h2>Recent flows</h2>{}<table><thead><tr>\
         <th class=\"n\">Flow</th><th>Received</th><th>Partner</th><th>File</th><th>State</th>\
         <th class=\"n\">Accepted</th><th class=\"n\">Rejected</th><th>Reason</th></tr></thead><tbody>",
        state_filters("/flows?", None)
    );
    if o.recent_flows.is_empty() {
        s.push_str("<tr><td colspan=\"8\" class=\"empty\">no flow yet</td></tr>");
    }
    for f in &o.recent_flows {
        let _ = write!(
            s,
            "<tr class=\"flow\" data-flow-id=\"{}\"><td class=\"n\">{}</td><td class=\"mut\">{}</td><td>{}</td>\
             <td class=\"fname\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            f.id,
            flow_link(f.id),
            esc(&ago(now, f.received_at)),
            partner_link(&f.partner),
            esc(&f.original_name),
            state_badge(f.state.as_str()),
            f.invoices_accepted,
            f.invoices_rejected,
            esc(f.failure_code.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</tbody></table></section>");

    s.push_str(
        "</main><footer style=\"padding:0 24px 18px\" class=\"mut\">\
         JSON: <code>/api/overview</code> · <code>/api/status</code> · <code>/api/flows</code> · \
         <code>/api/partners</code> · metrics: <code>/metrics</code></footer></body></html>",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>alert('x')</script>&\"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;q&quot;"
        );
        assert_eq!(esc("a\u{1b}b"), "a\u{FFFD}b");
    }

    #[test]
    fn ages_read_well() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(125), "2m 5s");
        assert_eq!(age(3 * 3600 + 120), "3h 2m");
        assert_eq!(age(90000), "1d 1h");
        assert_eq!(age(-3), "0s");
    }
}
