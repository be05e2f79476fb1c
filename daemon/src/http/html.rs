//! The HTML pieces every ops page shares: escaping, times, the stylesheet,
//! state badges, links to the partner and flow pages, the search box and the
//! state filters. A leaf: `page.rs` (the overview) and `detail.rs` (the
//! linked pages) both draw with it, and neither imports the other.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use quai_spool::FlowState;

pub use crate::text::html_escape as esc;

use crate::text::age;

/// Seconds between automatic reloads.
pub const REFRESH_SECONDS: u32 = 15;

pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    format!("{} ago", age((now - t).num_seconds()))
}

pub const CSS: &str = r#"
:root{--bg:#f6f7f9;--fg:#1d2330;--mut:#667085;--card:#fff;--line:#e4e7ec;--ok:#2e9d5b;--bad:#d64545;--warn:#c77c02;--acc:#3559c7}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;align-items:baseline;gap:16px;padding:14px 24px;background:#1d2330;color:#fff}
header h1{margin:0;font-size:20px;letter-spacing:.5px}
header .sub{color:#c3c9d6;font-size:13px}
main{padding:18px 24px;display:grid;gap:18px;grid-template-columns:repeat(12,1fr)}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;grid-column:span 12}
section.half{grid-column:span 6}
@media (max-width:1100px){section.half{grid-column:span 12}}
h2{margin:0 0 10px;font-size:15px}
.cards{display:flex;gap:14px;flex-wrap:wrap}
.card{flex:1 1 150px;border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .v{font-size:26px;font-weight:600}
.card .l{color:var(--mut);font-size:12px;text-transform:uppercase;letter-spacing:.4px}
.card.alert{border-color:var(--bad)} .card.alert .v{color:var(--bad)}
.card.warn{border-color:var(--warn)} .card.warn .v{color:var(--warn)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--mut);font-weight:600;text-transform:uppercase;letter-spacing:.3px}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.mut{color:var(--mut)} .empty{color:var(--mut);font-style:italic}
.st{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;background:#eef1f6}
.st.processed{background:#e3f4ea;color:#1d6b3d} .st.failed{background:#fbe5e5;color:#9b2626}
.st.received{background:#fff3dc;color:#8a5a00} .st.processing{background:#e4ebff;color:#2a45a0}
.st.duplicate{background:#eee;color:#555}
.rule{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;background:#f1f2f5;padding:0 4px;border-radius:3px}
.rate.high{color:var(--bad);font-weight:600}
.legend{display:flex;gap:14px;font-size:12px;color:var(--mut);margin-top:4px}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.fname{word-break:break-all}
"#;

/// CSS of these pages, on top of the overview's.
pub const EXTRA_CSS: &str = r#"
a{color:var(--acc)} header a{color:#fff;text-decoration:none}
.search{margin-left:auto;display:flex;gap:6px} .search input{padding:4px 8px;border-radius:4px;border:1px solid #98a2b3;min-width:220px}
.filters{display:flex;gap:10px;margin:0 0 10px;font-size:13px;flex-wrap:wrap} .filters a.on{font-weight:700;text-decoration:none;color:var(--fg)}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0} dl.kv dt{color:var(--mut)} dl.kv dd{margin:0}
.verdict.rejected{color:var(--bad);font-weight:600} .verdict.accepted{color:var(--ok)}
"#;

pub fn state_badge(s: &str) -> String {
    format!("<span class=\"st {0}\">{0}</span>", esc(s))
}

/// A path segment made safe for a URL (partner ids are `[A-Za-z0-9._-]`,
/// anything else is percent-encoded all the same).
pub fn url_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The link to a partner's page.
pub fn partner_link(partner: &str) -> String {
    format!(
        "<a class=\"partner\" href=\"/partners/{}\">{}</a>",
        url_part(partner),
        esc(partner)
    )
}

/// The link to a flow's page.
pub fn flow_link(id: i64) -> String {
    format!("<a class=\"flow-link\" href=\"/flows/{id}\">{id}</a>")
}

/// The search box (invoice numbers) shown in every page's header.
pub fn search_box(value: &str) -> String {
    format!(
        "<form class=\"search\" method=\"get\" action=\"/flows\" role=\"search\">\
         <input type=\"search\" name=\"invoice\" id=\"invoice-search\" placeholder=\"invoice number\" \
         aria-label=\"Find the flows holding an invoice number\" value=\"{}\">\
         <button type=\"submit\">Find</button></form>",
        esc(value)
    )
}

/// Links filtering a flow list by state (`base` is the list's URL with
/// its other parameters, ending in `?` or `&`).
pub fn state_filters(base: &str, current: Option<FlowState>) -> String {
    let mut s = String::from("<nav class=\"filters\" aria-label=\"Filter by state\">");
    let all = base.trim_end_matches(['?', '&']);
    let _ = write!(
        s,
        "<a href=\"{}\"{}>all</a>",
        esc(if all.is_empty() { "/flows" } else { all }),
        if current.is_none() {
            " class=\"on\""
        } else {
            ""
        }
    );
    for st in FlowState::ALL {
        let _ = write!(
            s,
            " <a href=\"{}state={}\"{}>{}</a>",
            esc(base),
            st.as_str(),
            if current == Some(*st) {
                " class=\"on\""
            } else {
                ""
            },
            st.as_str()
        );
    }
    s.push_str("</nav>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_are_encoded() {
        assert_eq!(url_part("acme-1.fr_x"), "acme-1.fr_x");
        assert_eq!(url_part("a b/<c>"), "a%20b%2F%3Cc%3E");
        assert_eq!(url_part("é"), "%C3%A9");
    }

    #[test]
    fn links_escape_their_text() {
        assert_eq!(
            partner_link("<x>"),
            "<a class=\"partner\" href=\"/partners/%3Cx%3E\">&lt;x&gt;</a>"
        );
        assert!(search_box("\"><script>").contains("value=\"&quot;&gt;&lt;script&gt;\""));
    }
}
