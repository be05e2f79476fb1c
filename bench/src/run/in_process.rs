//! In-process timings, no daemon: mapping and validating one large
//! invoice, and the cost per invoice as flows grow (linearity).

use std::time::Instant;

use serde_json::{json, Value};

use crate::gen;

use super::cache::cached_flows;
use super::options::{goal, RunOptions};

// ------------------------------------------------------------------ in-process

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Map + validate one invoice of `lines` lines, `repeat` times (medians, ms:
/// mapping, the EN 16931 rules, the French CTC layer BR-FR).
pub(super) fn time_one(
    lines: usize,
    cii: bool,
    repeat: usize,
) -> anyhow::Result<(f64, f64, f64, usize, usize)> {
    let mut rng = gen::invoice::Rng::new(5000 + lines as u64);
    let inv = gen::invoice::build_invoice(&mut rng, "V", 0, 0, lines, None);
    let mut doc = String::new();
    if cii {
        gen::cii::write_cii(&inv, &mut doc);
    } else {
        gen::ubl::write_ubl(&inv, &mut doc);
    }
    let mut map_ms = Vec::new();
    let mut val_ms = Vec::new();
    let mut fr_ms = Vec::new();
    let mut fr_findings = 0;
    let fr_layer = quai_mappings::validate::Layers {
        fr_ctc: Some(quai_mappings::validate::fr::FrMode::Fatal),
        ..quai_mappings::validate::Layers::NONE
    };
    for _ in 0..repeat {
        let t = Instant::now();
        let outcome = if cii {
            quai_mappings::cii::read(doc.as_bytes())
        } else {
            quai_mappings::ubl::read(doc.as_bytes())
        }
        .map_err(|e| anyhow::anyhow!("the generated invoice cannot be read: {e}"))?;
        let mapped = t.elapsed();
        let violations = quai_mappings::validate::validate(&outcome.invoice);
        let validated = t.elapsed() - mapped;
        let t_fr = Instant::now();
        let fr = quai_mappings::validate::validate_layers(&outcome.invoice, &fr_layer);
        let fr_elapsed = t_fr.elapsed();
        fr_findings = fr.len();
        anyhow::ensure!(
            outcome.invoice.lines.len() == lines,
            "lines lost in mapping"
        );
        let fatal: Vec<_> = outcome
            .issues
            .iter()
            .chain(violations.iter())
            .filter(|v| v.severity == quai_mappings::Severity::Fatal)
            .collect();
        anyhow::ensure!(
            fatal.is_empty(),
            "the generated invoice is rejected: {fatal:?}"
        );
        map_ms.push(mapped.as_secs_f64() * 1000.0);
        val_ms.push(validated.as_secs_f64() * 1000.0);
        fr_ms.push(fr_elapsed.as_secs_f64() * 1000.0);
    }
    Ok((
        median(map_ms),
        median(val_ms),
        median(fr_ms),
        fr_findings,
        doc.len(),
    ))
}

pub(super) fn validate_lines(opts: &RunOptions) -> anyhow::Result<Value> {
    let mut rows = Vec::new();
    let ok = true;
    let mut goals = Vec::new();
    for (syntax, cii) in [("ubl", false), ("cii", true)] {
        for lines in [500usize, 5_000, 50_000] {
            let repeat = if lines > 5_000 {
                opts.repeat.min(5)
            } else {
                opts.repeat
            };
            let (map, val, fr, fr_findings, size) = time_one(lines, cii, repeat)?;
            let total = map + val;
            let with_fr = total + fr;
            let fr_pct = fr * 100.0 / total;
            let per_line_us = total * 1000.0 / lines as f64;
            say!(
                opts,
                "  {syntax} {lines:>6} lines ({:.1} MB): map {map:.2} ms + validate {val:.2} ms = {total:.2} ms, {per_line_us:.2} us/line (median of {repeat}){}",
                size as f64 / 1e6,
                if lines == 5_000 { " (goal <= 20 ms)" } else { "" }
            );
            say!(
                opts,
                "  {syntax} {lines:>6} lines: + BR-FR {fr:.3} ms = {with_fr:.2} ms, +{fr_pct:.1} % over EN 16931 alone (goal <= 10 %; {fr_findings} BR-FR findings: the generated invoice is not French)"
            );
            if lines == 5_000 {
                goals.push(goal(
                    &format!("validate a 5,000-line {syntax} invoice (map + validate)"),
                    format!("{total:.1} ms"),
                    "<= 20 ms",
                    total <= 20.0,
                ));
                goals.push(goal(
                    &format!("validate a 5,000-line {syntax} invoice with BR-FR (map + validate)"),
                    format!("{with_fr:.1} ms"),
                    "<= 20 ms",
                    with_fr <= 20.0,
                ));
                goals.push(goal(
                    &format!("BR-FR over EN 16931 alone, 5,000-line {syntax} invoice"),
                    format!("+{fr_pct:.1} %"),
                    "<= 10 %",
                    fr_pct <= 10.0,
                ));
                goals.push(goal(
                    &format!("validate a 5,000-line {syntax} invoice (rules only)"),
                    format!("{val:.2} ms"),
                    "<= 20 ms",
                    val <= 20.0,
                ));
            }
            rows.push(json!({"syntax": syntax, "lines": lines, "bytes": size, "map_ms": map, "validate_ms": val, "br_fr_ms": fr, "total_ms": total, "total_with_br_fr_ms": with_fr, "us_per_line": per_line_us, "runs": repeat}));
        }
    }
    Ok(json!({"scenario": "validate-5000-lines", "ok": ok, "goals": goals, "rows": rows}))
}

/// In-process `flow::process` over one tar.gz flow of each size, one core.
pub(super) fn linearity(opts: &RunOptions) -> anyhow::Result<Value> {
    let mut rows = Vec::new();
    for &n in &opts.sizes {
        let (dir, manifest) = cached_flows(opts, gen::Kind::UblTargz, 1, n, (1, 3), 0.1, 8)?;
        let f = &manifest.flows[0];
        let limits = quai_mappings::flow::FlowLimits {
            max_invoices: n as u64 + 1,
            max_unpacked_bytes: u64::MAX / 4,
            max_ratio: 100_000,
            max_entries: n as u64 + 1,
            ..quai_mappings::flow::FlowLimits::default()
        };
        let mut docs = 0u64;
        let mut rejected = 0u64;
        let t = Instant::now();
        let end = quai_mappings::flow::process(&dir.join(&f.file), &f.file, &limits, &mut |doc| {
            docs += 1;
            if doc.is_rejected() {
                rejected += 1;
            }
            Ok(())
        });
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            matches!(end, quai_mappings::flow::FlowEnd::Done(_)),
            "flow of {n} not processed: {end:?}"
        );
        let ok = docs == f.invoices as u64 && rejected == f.rejected as u64;
        let us = secs * 1e6 / n as f64;
        say!(
            opts,
            "  {n:>8} invoices: {secs:.2}s, {:.0} invoices/s, {us:.1} us/invoice (unpack + map + validate, one core, no spool){}",
            n as f64 / secs,
            if ok { "" } else { "  COUNTS MISMATCH" }
        );
        rows.push(json!({"invoices": n, "seconds": secs, "invoices_per_s": n as f64 / secs, "us_per_invoice": us, "counts_ok": ok}));
    }
    let ok = rows.iter().all(|r| r["counts_ok"] == Value::Bool(true));
    let per: Vec<f64> = rows
        .iter()
        .filter_map(|r| r["us_per_invoice"].as_f64())
        .collect();
    let mut goals = Vec::new();
    if let (Some(first), Some(last)) = (per.first(), per.last()) {
        let growth = last / first;
        goals.push(goal(
            "cost per invoice, largest flow / smallest flow (linear in flow size)",
            format!("{growth:.2}x ({first:.0} -> {last:.0} us/invoice)"),
            "<= 1.25x",
            growth <= 1.25,
        ));
    }
    Ok(json!({"scenario": "linearity", "ok": ok, "goals": goals, "rows": rows}))
}
