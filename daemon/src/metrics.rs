//! Process-wide metrics, rendered in the Prometheus text format by `/metrics`.
//!
//! Why hand-written: quai needs a dozen counters and one histogram; a small
//! registry of atomics and mutex-guarded label maps costs no dependency and
//! keeps the exposition format under our control (it is tested line by line).
//!
//! Two kinds of numbers end up on `/metrics`:
//!
//! * **Events of this process**, counted where they happen by calling the
//!   functions below. They reset when the process restarts (Prometheus'
//!   `rate()`/`increase()` handle that):
//!
//!   | call | where | metric |
//!   |---|---|---|
//!   | [`status_received`]`(partner, code, outcome)` | a status flow, per status | `quai_statuses_received_total{partner,code,outcome}` |
//!   | [`bytes_in`]`(partner, n)` | intake, after a flow is registered (not for duplicates) | `quai_intake_bytes_total{partner}` (and the deprecated `quai_bytes_in_total`) |
//!   | [`flow_received`]`(partner, origin)` | intake, after registration | `quai_flows_received_total{partner,origin}` |
//!   | [`flow_processed`]`(partner, seconds)` | pipeline, after `finish_flow` (processed or failed) | `quai_flow_processing_seconds{partner}` histogram |
//!   | [`invoices_processed`]`(partner, accepted, rejected)` | pipeline, after `finish_flow` | `quai_invoices_processed_total{partner,verdict}` |
//!   | [`ack_failed`]`(kind)` | acks, when a delivery attempt fails | `quai_ack_delivery_failures_total{kind}` |
//!   | [`ack_delivered`]`(kind)` | acks, after `ack_delivered` | `quai_acks_delivered_total{kind}` |
//!   | [`smtp_failed`]`()` | mail, when sending fails | `quai_smtp_failures_total` |
//!   | [`sftp_failed`]`(kind)` | SFTP polling (`connect`, `auth`, `hostkey`, `transfer`...) | `quai_sftp_connection_failures_total{kind}` |
//!   | [`as2_message`]`(outcome)` | AS2 route (`accepted`, `duplicate`, `rejected`, `error`...) | `quai_as2_messages_total{outcome}` |
//!   | [`http_refused`]`(reason)` | ops listener (`max_connections`, `header_timeout`, `body_rate`, `send_timeout`, `host`) | `quai_http_refused_total{reason}` |
//!   | [`antivirus_scan`]`(outcome)` | pipeline's antivirus stage (`clean`, `infected`, `unavailable`) | `quai_antivirus_scans_total{outcome}` |
//!   | [`intake_refused`]`(partner, reason)` | intake, when a connector refused an entry (a link, a FIFO...) | `quai_intake_refused_total{partner,reason}` |
//!   | [`invoices_routed`]`(n)` | pipeline, after `finish_flow_routed` | `quai_invoices_routed_total` |
//!   | [`invoices_unroutable`]`(n)` | pipeline, invoices rejected REJ_ADR | `quai_invoices_unroutable_total` |
//!   | [`invoice_delivered`]`(recipient)` | deliverer, an invoice delivered to its recipient | `quai_invoices_delivered_total{recipient}` |
//!   | [`invoice_delivery_failed`]`(recipient)` | deliverer, a failed invoice delivery attempt | `quai_invoice_delivery_failures_total{recipient}` |
//!
//! * **State of the spool**, read at scrape time (so every instance sharing
//!   a PostgreSQL spool reports the same, true numbers, and nothing drifts
//!   after a restart): flows by partner and state, invoices by partner and
//!   verdict, backlog and the age of the oldest unfinished flow. The HTTP
//!   layer gathers a [`SpoolGauges`] and passes it to [`render`].
//!
//! * **The process itself**: `quai_build_info` and the standard
//!   `process_*` series (CPU, memory, file descriptors, start time), read
//!   from `/proc` by [`crate::process_metrics`].
//!
//! Label values come from configuration and partner folders, but a partner
//! id is still outside input: each labelled family holds at most
//! [`MAX_SERIES`] label sets, further ones are folded into `"other"`, so a
//! flood of new partner folders cannot grow memory without bound.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Label sets kept per family before new ones are folded into `"other"`.
pub const MAX_SERIES: usize = 1000;

/// Bucket upper bounds (seconds) of the processing latency histogram.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];

/// A counter family with label values.
struct CounterVec {
    series: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl CounterVec {
    const fn new() -> Self {
        CounterVec {
            series: Mutex::new(BTreeMap::new()),
        }
    }

    fn add(&self, labels: &[&str], n: u64) {
        let mut map = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let mut key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        if !map.contains_key(&key) && map.len() >= MAX_SERIES {
            key = vec!["other".to_string(); labels.len()];
        }
        let v = map.entry(key).or_insert(0);
        *v = v.saturating_add(n);
    }

    fn snapshot(&self) -> Vec<(Vec<String>, u64)> {
        let map = self.series.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

#[derive(Clone, Default)]
struct HistogramData {
    /// Cumulative counts are computed at render time; these are per bucket.
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// A histogram family with label values and fixed buckets.
struct HistogramVec {
    series: Mutex<BTreeMap<Vec<String>, HistogramData>>,
}

impl HistogramVec {
    const fn new() -> Self {
        HistogramVec {
            series: Mutex::new(BTreeMap::new()),
        }
    }

    fn observe(&self, labels: &[&str], value: f64) {
        // NaN or negative durations would corrupt the sum; clamp to zero.
        let value = if value.is_finite() && value > 0.0 {
            value
        } else {
            0.0
        };
        let mut map = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let mut key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        if !map.contains_key(&key) && map.len() >= MAX_SERIES {
            key = vec!["other".to_string(); labels.len()];
        }
        let h = map.entry(key).or_default();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| value <= *b) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum += value;
    }

    fn snapshot(&self) -> Vec<(Vec<String>, HistogramData)> {
        let map = self.series.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

struct Registry {
    bytes_in: CounterVec,
    flows_received: CounterVec,
    invoices_processed: CounterVec,
    processing: HistogramVec,
    ack_failures: CounterVec,
    acks_delivered: CounterVec,
    smtp_failures: AtomicU64,
    sftp_failures: CounterVec,
    as2_messages: CounterVec,
    http_refused: CounterVec,
    antivirus_scans: CounterVec,
    intake_refused: CounterVec,
    invoices_routed: AtomicU64,
    invoices_unroutable: AtomicU64,
    invoices_delivered: CounterVec,
    invoice_delivery_failures: CounterVec,
    statuses_received: CounterVec,
    started: OnceLock<std::time::SystemTime>,
}

static REGISTRY: Registry = Registry {
    bytes_in: CounterVec::new(),
    flows_received: CounterVec::new(),
    invoices_processed: CounterVec::new(),
    processing: HistogramVec::new(),
    ack_failures: CounterVec::new(),
    acks_delivered: CounterVec::new(),
    smtp_failures: AtomicU64::new(0),
    sftp_failures: CounterVec::new(),
    as2_messages: CounterVec::new(),
    http_refused: CounterVec::new(),
    antivirus_scans: CounterVec::new(),
    intake_refused: CounterVec::new(),
    invoices_routed: AtomicU64::new(0),
    invoices_unroutable: AtomicU64::new(0),
    invoices_delivered: CounterVec::new(),
    invoice_delivery_failures: CounterVec::new(),
    statuses_received: CounterVec::new(),
    started: OnceLock::new(),
};

/// Record the process start time (first call wins; `serve` calls it).
pub fn mark_started() {
    REGISTRY.started.get_or_init(std::time::SystemTime::now);
}

/// Bytes of a newly registered flow.
pub fn bytes_in(partner: &str, n: u64) {
    REGISTRY.bytes_in.add(&[partner], n);
}

/// A flow was registered (`origin`: `dropzone`, `sftp`, `as2`, `cli`).
pub fn flow_received(partner: &str, origin: &str) {
    REGISTRY.flows_received.add(&[partner, origin], 1);
}

/// A flow finished processing (processed or failed) after `seconds`.
pub fn flow_processed(partner: &str, seconds: f64) {
    REGISTRY.processing.observe(&[partner], seconds);
}

/// Invoices of a finished flow, by verdict.
pub fn invoices_processed(partner: &str, accepted: u64, rejected: u64) {
    REGISTRY
        .invoices_processed
        .add(&[partner, "accepted"], accepted);
    REGISTRY
        .invoices_processed
        .add(&[partner, "rejected"], rejected);
}

/// An acknowledgement delivery attempt failed (`kind`: `integration_report`, `cdar`, `mdn`...).
pub fn ack_failed(kind: &str) {
    REGISTRY.ack_failures.add(&[kind], 1);
}

/// An acknowledgement was delivered.
pub fn ack_delivered(kind: &str) {
    REGISTRY.acks_delivered.add(&[kind], 1);
}

/// Sending a mail over SMTP failed.
pub fn smtp_failed() {
    REGISTRY.smtp_failures.fetch_add(1, Ordering::Relaxed);
}

/// An SFTP session could not be used (`kind`: `connect`, `handshake`,
/// `hostkey`, `auth`, `transfer`...).
pub fn sftp_failed(kind: &str) {
    REGISTRY.sftp_failures.add(&[kind], 1);
}

/// An AS2 message was answered (`outcome`: `accepted`, `duplicate`,
/// `rejected`, `error`...).
pub fn as2_message(outcome: &str) {
    REGISTRY.as2_messages.add(&[outcome], 1);
}

/// The ops listener refused a connection or a request (`reason`:
/// `max_connections`, `header_timeout`, `body_rate`, `send_timeout`, `host`).
pub fn http_refused(reason: &str) {
    REGISTRY.http_refused.add(&[reason], 1);
}

/// A flow went through the antivirus stage (`outcome`: `clean`,
/// `infected`, `unavailable`).
pub fn antivirus_scan(outcome: &str) {
    REGISTRY.antivirus_scans.add(&[outcome], 1);
}

/// A connector refused an entry before landing it (`reason`: `link`,
/// `fifo`, `device`...; `partner` is empty when the folder's name is no
/// usable partner id).
pub fn intake_refused(partner: &str, reason: &str) {
    REGISTRY.intake_refused.add(&[partner, reason], 1);
}

/// Accepted invoices routed to a recipient (their deliveries owed).
pub fn invoices_routed(n: u64) {
    REGISTRY.invoices_routed.fetch_add(n, Ordering::Relaxed);
}

/// Accepted invoices no partner receives (rejected REJ_ADR).
pub fn invoices_unroutable(n: u64) {
    REGISTRY.invoices_unroutable.fetch_add(n, Ordering::Relaxed);
}

/// An invoice was delivered to its recipient's channel.
pub fn invoice_delivered(recipient: &str) {
    REGISTRY.invoices_delivered.add(&[recipient], 1);
}

/// An attempt to deliver an invoice to its recipient failed.
pub fn invoice_delivery_failed(recipient: &str) {
    REGISTRY.invoice_delivery_failures.add(&[recipient], 1);
}

/// A lifecycle status came in a partner's CDAR (`code`: `210`...;
/// `outcome`: `recorded`, or why it was refused: `unknown_invoice`,
/// `not_your_invoice`, `illegal_transition`, `unusable`...).
pub fn status_received(partner: &str, code: &str, outcome: &str) {
    REGISTRY.statuses_received.add(&[partner, code, outcome], 1);
}

/// Spool state read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct SpoolGauges {
    /// (partner, state, flows)
    pub flows: Vec<(String, String, i64)>,
    /// (partner, verdict, invoices)
    pub invoices: Vec<(String, String, i64)>,
    /// Flows waiting (`received`).
    pub backlog_received: i64,
    /// Flows being processed (`processing`).
    pub backlog_processing: i64,
    /// Age in seconds of the oldest flow not yet in a final state (0 when none).
    pub oldest_unfinished_seconds: f64,
    /// (partner, deliveries pending, age in seconds of the oldest): what
    /// quai owes a partner and has not delivered (acknowledgements, MDNs).
    pub undelivered: Vec<(String, i64, f64)>,
}

/// Escape a label value (backslash, double quote, newline).
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn labels(names: &[&str], values: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape_label(v)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter_family(out: &mut String, name: &str, help: &str, names: &[&str], v: &CounterVec) {
    header(out, name, "counter", help);
    for (vals, n) in v.snapshot() {
        let _ = writeln!(out, "{name}{} {n}", labels(names, &vals));
    }
}

/// Format a float the way Prometheus expects (`+Inf`, no exponent surprises).
fn num(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else if v.is_nan() {
        "NaN".to_string()
    } else {
        format!("{v}")
    }
}

/// Render every metric in the Prometheus text exposition format (0.0.4).
/// `spool` is `None` when the spool could not be read; `quai_spool_up` is
/// then 0 and the spool-derived families are left out.
pub fn render(spool: Option<&SpoolGauges>) -> String {
    let r = &REGISTRY;
    let mut out = String::with_capacity(4096);

    header(
        &mut out,
        "quai_spool_up",
        "gauge",
        "1 when the spool answered the scrape's queries.",
    );
    let _ = writeln!(out, "quai_spool_up {}", u8::from(spool.is_some()));

    if let Some(s) = spool {
        header(
            &mut out,
            "quai_flows",
            "gauge",
            "Flows in the spool by partner and state.",
        );
        for (p, st, n) in &s.flows {
            let _ = writeln!(
                out,
                "quai_flows{} {n}",
                labels(&["partner", "state"], &[p.clone(), st.clone()])
            );
        }
        header(
            &mut out,
            "quai_invoices",
            "gauge",
            "Invoices in the spool by partner and verdict.",
        );
        for (p, v, n) in &s.invoices {
            let _ = writeln!(
                out,
                "quai_invoices{} {n}",
                labels(&["partner", "verdict"], &[p.clone(), v.clone()])
            );
        }
        header(
            &mut out,
            "quai_backlog_flows",
            "gauge",
            "Flows not yet processed, by state (received = waiting, processing = in progress).",
        );
        let _ = writeln!(
            out,
            "quai_backlog_flows{{state=\"received\"}} {}",
            s.backlog_received
        );
        let _ = writeln!(
            out,
            "quai_backlog_flows{{state=\"processing\"}} {}",
            s.backlog_processing
        );
        header(
            &mut out,
            "quai_oldest_unfinished_flow_age_seconds",
            "gauge",
            "Age of the oldest flow still received or processing (0 when none).",
        );
        let _ = writeln!(
            out,
            "quai_oldest_unfinished_flow_age_seconds {}",
            num(s.oldest_unfinished_seconds)
        );
        header(
            &mut out,
            "quai_undelivered",
            "gauge",
            "Deliveries owed to a partner and not yet delivered (acknowledgements, MDNs).",
        );
        for (p, n, _) in &s.undelivered {
            let _ = writeln!(
                out,
                "quai_undelivered{} {n}",
                labels(&["partner"], std::slice::from_ref(p))
            );
        }
        header(
            &mut out,
            "quai_undelivered_oldest_age_seconds",
            "gauge",
            "Age of the oldest delivery owed to a partner and not yet delivered.",
        );
        for (p, _, age) in &s.undelivered {
            let _ = writeln!(
                out,
                "quai_undelivered_oldest_age_seconds{} {}",
                labels(&["partner"], std::slice::from_ref(p)),
                num(*age)
            );
        }
    }

    counter_family(
        &mut out,
        "quai_statuses_received_total",
        "Lifecycle statuses received in partners' CDAR, by partner, code and outcome.",
        &["partner", "code", "outcome"],
        &r.statuses_received,
    );
    counter_family(
        &mut out,
        "quai_intake_bytes_total",
        "Bytes of flows registered by this process.",
        &["partner"],
        &r.bytes_in,
    );
    counter_family(
        &mut out,
        "quai_bytes_in_total",
        "Deprecated: the same as quai_intake_bytes_total (kept for existing dashboards).",
        &["partner"],
        &r.bytes_in,
    );
    counter_family(
        &mut out,
        "quai_flows_received_total",
        "Flows registered by this process, by partner and origin.",
        &["partner", "origin"],
        &r.flows_received,
    );
    counter_family(
        &mut out,
        "quai_invoices_processed_total",
        "Invoices processed by this process, by partner and verdict.",
        &["partner", "verdict"],
        &r.invoices_processed,
    );

    let name = "quai_flow_processing_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "Time from claim to finish of a flow, by partner.",
    );
    for (vals, h) in r.processing.snapshot() {
        let base = labels(&["partner"], &vals);
        let inner = base.trim_start_matches('{').trim_end_matches('}');
        let mut cumulative = 0u64;
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += h.buckets[i];
            let _ = writeln!(
                out,
                "{name}_bucket{{{inner},le=\"{}\"}} {cumulative}",
                num(*le)
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{inner},le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum{base} {}", num(h.sum));
        let _ = writeln!(out, "{name}_count{base} {}", h.count);
    }

    counter_family(
        &mut out,
        "quai_ack_delivery_failures_total",
        "Failed acknowledgement delivery attempts, by kind.",
        &["kind"],
        &r.ack_failures,
    );
    counter_family(
        &mut out,
        "quai_acks_delivered_total",
        "Acknowledgements delivered, by kind.",
        &["kind"],
        &r.acks_delivered,
    );
    header(
        &mut out,
        "quai_smtp_failures_total",
        "counter",
        "Mails that could not be handed to the SMTP relay.",
    );
    let _ = writeln!(
        out,
        "quai_smtp_failures_total {}",
        r.smtp_failures.load(Ordering::Relaxed)
    );
    counter_family(
        &mut out,
        "quai_sftp_connection_failures_total",
        "SFTP sessions that failed, by kind (connect, handshake, hostkey, auth, transfer).",
        &["kind"],
        &r.sftp_failures,
    );
    counter_family(
        &mut out,
        "quai_as2_messages_total",
        "AS2 messages answered, by outcome.",
        &["outcome"],
        &r.as2_messages,
    );
    counter_family(
        &mut out,
        "quai_http_refused_total",
        "Connections or requests the ops listener refused, by reason.",
        &["reason"],
        &r.http_refused,
    );
    counter_family(
        &mut out,
        "quai_antivirus_scans_total",
        "Flows through the antivirus stage, by outcome (clean, infected, unavailable).",
        &["outcome"],
        &r.antivirus_scans,
    );
    counter_family(
        &mut out,
        "quai_intake_refused_total",
        "Entries refused before landing (links, FIFOs, devices, folders...), by partner and reason.",
        &["partner", "reason"],
        &r.intake_refused,
    );
    for (name, help, v) in [
        (
            "quai_invoices_routed_total",
            "Accepted invoices routed to a recipient.",
            &r.invoices_routed,
        ),
        (
            "quai_invoices_unroutable_total",
            "Accepted invoices no partner receives, rejected REJ_ADR.",
            &r.invoices_unroutable,
        ),
    ] {
        header(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
    }
    counter_family(
        &mut out,
        "quai_invoices_delivered_total",
        "Invoices delivered to their recipient's channel, by recipient.",
        &["recipient"],
        &r.invoices_delivered,
    );
    counter_family(
        &mut out,
        "quai_invoice_delivery_failures_total",
        "Failed attempts to deliver an invoice to its recipient, by recipient.",
        &["recipient"],
        &r.invoice_delivery_failures,
    );

    if let Some(started) = r.started.get() {
        if let Ok(d) = started.duration_since(std::time::UNIX_EPOCH) {
            header(
                &mut out,
                "quai_process_start_time_seconds",
                "gauge",
                "Start time of the process since the Unix epoch.",
            );
            let _ = writeln!(out, "quai_process_start_time_seconds {}", d.as_secs());
        }
    }
    crate::process_metrics::render(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn histogram_is_cumulative() {
        let h = HistogramVec::new();
        h.observe(&["p"], 0.2);
        h.observe(&["p"], 3.0);
        h.observe(&["p"], 5000.0);
        h.observe(&["p"], f64::NAN);
        let snap = h.snapshot();
        let (_, d) = &snap[0];
        assert_eq!(d.count, 4);
        // 0.2 -> le 0.25 (index 3), NaN -> 0 -> le 0.01, 3.0 -> le 5
        assert_eq!(d.buckets[0], 1);
        assert_eq!(d.buckets[3], 1);
        assert_eq!(d.buckets[7], 1);
        assert_eq!(d.buckets.iter().sum::<u64>(), 3, "5000 s is only in +Inf");
        assert!((d.sum - 5003.2).abs() < 1e-9);
    }

    #[test]
    fn series_are_bounded() {
        let c = CounterVec::new();
        for i in 0..(MAX_SERIES + 50) {
            c.add(&[&format!("p{i}")], 1);
        }
        let snap = c.snapshot();
        assert_eq!(snap.len(), MAX_SERIES + 1);
        let other = snap.iter().find(|(k, _)| k[0] == "other").map(|(_, v)| *v);
        assert_eq!(other, Some(50));
    }
}
