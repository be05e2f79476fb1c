//! The recipient directory, daemon side: loading the `[[partner]]
//! addresses` and the `[directory] file` export into the spool (which
//! stores them and answers lookups, `quai_spool::directory`), reloading the
//! file when it changes, checking it for `quai check-config`, and the
//! routing key of an invoice.
//!
//! A file is loaded again when its stamp (size and modification time)
//! differs from the one recorded with the current version, so instances
//! sharing one PostgreSQL load a changed file once each at most and an
//! unchanged one never. A file with a bad line is refused whole: the
//! previous version keeps answering and every bad line is logged.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quai_mappings::model::Invoice;
use quai_spool::{
    CsvLines, DirectoryLine, DirectorySource, LineChecks, LoadRefused, Loaded, Spool,
};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::{Config, ConfigProblem};

/// How often the daemon looks at the file's stamp.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

/// The routing key of an invoice: the buyer's electronic address (BT-49
/// with its scheme, BT-49-1), else the buyer's legal registration
/// identifier (BT-47) under scheme 0002 (SIREN) or 0009 (SIRET).
pub fn routing_key(invoice: &Invoice) -> Option<String> {
    let buyer = &invoice.buyer;
    if let Some(a) = &buyer.electronic_address {
        if let Some(scheme) = a.scheme.as_deref().filter(|s| !s.is_empty()) {
            if !a.value.trim().is_empty() {
                return Some(format!("{}:{}", scheme.trim(), a.value.trim()));
            }
        }
    }
    let legal = buyer.legal_registration_id.as_ref()?;
    match legal.scheme.as_deref() {
        Some(s @ ("0002" | "0009")) if !legal.value.trim().is_empty() => {
            Some(format!("{s}:{}", legal.value.trim()))
        }
        _ => None,
    }
}

/// The stamp of a file: its size and modification time.
pub fn stamp(path: &Path) -> std::io::Result<String> {
    let m = std::fs::metadata(path)?;
    let mtime = m
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(format!("{}:{mtime}", m.len()))
}

/// Stream `path`'s lines through the checks against `config`.
fn with_lines<T>(
    config: &Config,
    path: &Path,
    f: impl FnOnce(CsvLines<'_, BufReader<std::fs::File>>) -> T,
) -> std::io::Result<T> {
    let file = std::fs::File::open(path)?;
    let addresses = config.config_addresses();
    let known = |p: &str| config.partner(p).is_some();
    let checks = LineChecks {
        known_partner: &known,
        config: &addresses,
    };
    Ok(f(CsvLines::new(
        BufReader::with_capacity(1 << 16, file),
        &checks,
    )))
}

/// `quai check-config`: every bad line of the directory file (unknown
/// partner, bad address or dates, contradiction with a configuration
/// address). Two file lines giving one address to two partners are found
/// by an import (which needs the database), not here.
pub fn check_file(config: &Config) -> Vec<ConfigProblem> {
    let Some(path) = &config.directory_file else {
        return Vec::new();
    };
    let problem = |message: String| ConfigProblem {
        line: None,
        key: "directory.file".into(),
        message,
    };
    let result = with_lines(config, path, |lines| {
        let mut out = Vec::new();
        let mut more = 0u64;
        for p in lines.filter_map(Result::err) {
            if out.len() < quai_spool::directory::MAX_PROBLEMS {
                out.push(problem(format!(
                    "{} line {}: {}",
                    path.display(),
                    p.line,
                    p.message
                )));
            } else {
                more += 1;
            }
        }
        if more > 0 {
            out.push(problem(format!(
                "{} and {more} more bad line(s)",
                path.display()
            )));
        }
        out
    });
    result.unwrap_or_else(|e| vec![problem(format!("cannot read {}: {e}", path.display()))])
}

/// Make the configuration's addresses the spool's `config` version.
pub async fn sync_config(spool: &Spool, config: &Config) -> anyhow::Result<()> {
    let mut lines: Vec<DirectoryLine> = config
        .config_addresses()
        .into_iter()
        .map(|(address, partner)| DirectoryLine {
            address,
            partner,
            valid_from: None,
            valid_to: None,
            line: 0,
        })
        .collect();
    lines.sort_by(|a, b| a.address.cmp(&b.address));
    let stamp = fingerprint(&lines);
    let current = spool.directory_versions().await?;
    if current
        .iter()
        .any(|v| v.source == DirectorySource::Config && v.stamp.as_deref() == Some(&stamp))
    {
        return Ok(());
    }
    match spool
        .load_directory(
            DirectorySource::Config,
            lines.into_iter().map(Ok),
            Some(&stamp),
        )
        .await?
    {
        Ok(_) => Ok(()),
        Err(refused) => Err(anyhow::anyhow!(
            "the configuration's addresses contradict each other: {}",
            first_problems(&refused)
        )),
    }
}

fn fingerprint(lines: &[DirectoryLine]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for l in lines {
        h.update(l.address.as_bytes());
        h.update(b"\0");
        h.update(l.partner.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

fn first_problems(r: &LoadRefused) -> String {
    let shown: Vec<String> = r.problems.iter().take(5).map(|p| p.to_string()).collect();
    format!("{} ({} in all)", shown.join("; "), r.total)
}

/// What [`import_file`] did.
#[derive(Debug)]
pub enum Import {
    /// The file's stamp is the current version's: nothing to do.
    Unchanged,
    Loaded(Loaded),
    Refused(LoadRefused),
}

/// Load the configured file into the spool (when `force`, or when its
/// stamp changed).
pub async fn import_file(
    spool: &Spool,
    config: Arc<Config>,
    path: &Path,
    force: bool,
) -> anyhow::Result<Import> {
    let stamp = stamp(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    if !force {
        let current = spool.directory_versions().await?;
        if current
            .iter()
            .any(|v| v.source == DirectorySource::File && v.stamp.as_deref() == Some(&stamp))
        {
            return Ok(Import::Unchanged);
        }
    }
    // The file is read as it is loaded, 64 KiB at a time: memory stays
    // bounded whatever its size (a local file's reads do not stall the
    // runtime noticeably).
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let addresses = config.config_addresses();
    let known = |p: &str| config.partner(p).is_some();
    let checks = LineChecks {
        known_partner: &known,
        config: &addresses,
    };
    let lines = CsvLines::new(BufReader::with_capacity(1 << 16, file), &checks);
    let outcome = spool
        .load_directory(DirectorySource::File, lines, Some(&stamp))
        .await?;
    Ok(match outcome {
        Ok(l) => Import::Loaded(l),
        Err(r) => Import::Refused(r),
    })
}

/// Log a refused file: every bad line.
pub fn log_refused(path: &Path, r: &LoadRefused) {
    for p in &r.problems {
        tracing::error!(file = %path.display(), line = p.line, problem = %p.message, "bad directory line");
    }
    tracing::error!(
        file = %path.display(),
        bad_lines = r.total,
        "directory file refused; the previous version stays in use"
    );
}

/// The daemon's directory task: sync the configuration's addresses, load
/// the file when its stamp changes; check again every [`CHECK_EVERY`].
pub async fn watch(app: Arc<App>, stop: CancellationToken) {
    let mut refused_stamp: Option<String> = None;
    loop {
        let config = app.config();
        if let Err(e) = sync_config(&app.spool, &config).await {
            tracing::error!(error = %e, "directory: configuration addresses not loaded");
        }
        if let Some(path) = config.directory_file.clone() {
            let s = stamp(&path).ok();
            // A refused file is not read again until it changes.
            if s.is_some() && s != refused_stamp {
                match import_file(&app.spool, config.clone(), &path, false).await {
                    Ok(Import::Unchanged) => {}
                    Ok(Import::Loaded(l)) => {
                        tracing::info!(file = %path.display(), lines = l.lines, version = l.version, "directory loaded")
                    }
                    Ok(Import::Refused(r)) => {
                        log_refused(&path, &r);
                        refused_stamp = s;
                    }
                    Err(e) => tracing::error!(error = %e, "directory file not loaded"),
                }
            } else if s.is_none() {
                tracing::warn!(file = %path.display(), "directory file missing; the previous version stays in use");
            }
        }
        drop(config);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

/// `quai directory lookup ADDRESS [--on DATE] [--json]`: exit 0 when a
/// partner receives, 1 when none does.
pub async fn lookup_command(
    app: &App,
    address: &str,
    on: Option<chrono::NaiveDate>,
    json: bool,
) -> anyhow::Result<i32> {
    use std::io::Write as _;
    let config = app.config();
    if let Err(e) = quai_spool::check_address(address) {
        anyhow::bail!("{e}");
    }
    sync_config(&app.spool, &config).await?;
    let on = on.unwrap_or_else(|| {
        chrono::Utc::now()
            .with_timezone(&config.timezone)
            .date_naive()
    });
    let route = app.spool.route(address, on).await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"address": address, "on": on, "route": route})
        )?;
    } else {
        match &route {
            Some(r) => {
                let under = match r.line {
                    Some(l) => format!("directory file line {l}"),
                    None => "the configuration".to_owned(),
                };
                let day = |d: Option<chrono::NaiveDate>| {
                    d.map(|d| d.to_string()).unwrap_or_else(|| "-".into())
                };
                writeln!(
                    out,
                    "{address} on {on}: partner {} (line {} from {under}, valid from {} to {})",
                    r.partner,
                    r.address,
                    day(r.valid_from),
                    day(r.valid_to)
                )?;
            }
            None => writeln!(
                out,
                "{address} on {on}: no partner receives (no valid line)"
            )?,
        }
    }
    Ok(if route.is_some() { 0 } else { 1 })
}

/// `quai directory import [FILE] [--json]`: load the file now (default:
/// `[directory] file`); exit 0 when loaded, 1 when refused (every bad line
/// listed; the previous version stays).
pub async fn import_command(app: &App, file: Option<&Path>, json: bool) -> anyhow::Result<i32> {
    use std::io::Write as _;
    let config = app.config();
    let path = match file
        .map(Path::to_path_buf)
        .or_else(|| config.directory_file.clone())
    {
        Some(p) => p,
        None => anyhow::bail!("no FILE given and no [directory] file configured"),
    };
    sync_config(&app.spool, &config).await?;
    let started = std::time::Instant::now();
    let outcome = import_file(&app.spool, config.clone(), &path, true).await?;
    let seconds = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    match outcome {
        Import::Loaded(l) => {
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"ok": true, "file": path, "lines": l.lines,
                        "version": l.version, "seconds": seconds})
                )?;
            } else {
                writeln!(
                    out,
                    "{}: {} line(s) loaded (version {}, {seconds:.1} s)",
                    path.display(),
                    l.lines,
                    l.version
                )?;
            }
            Ok(0)
        }
        Import::Refused(r) => {
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"ok": false, "file": path, "bad_lines": r.total,
                        "problems": r.problems})
                )?;
            } else {
                for p in &r.problems {
                    writeln!(out, "{} {p}", path.display())?;
                }
                writeln!(
                    out,
                    "{}: refused, {} bad line(s); the previous version stays in use",
                    path.display(),
                    r.total
                )?;
            }
            Ok(1)
        }
        Import::Unchanged => unreachable!("a forced import always loads"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quai_mappings::model::Identifier;

    fn id(value: &str, scheme: Option<&str>) -> Option<Identifier> {
        let mut i = Identifier::new(value);
        i.scheme = scheme.map(str::to_owned);
        Some(i)
    }

    #[test]
    fn routing_key_prefers_the_electronic_address() {
        let mut inv = Invoice::default();
        assert_eq!(routing_key(&inv), None);
        inv.buyer.legal_registration_id = id("73282932000074", Some("0009"));
        assert_eq!(routing_key(&inv).as_deref(), Some("0009:73282932000074"));
        inv.buyer.legal_registration_id = id("732829320", Some("0002"));
        assert_eq!(routing_key(&inv).as_deref(), Some("0002:732829320"));
        inv.buyer.electronic_address = id("732829320_SERVICE", Some("0225"));
        assert_eq!(routing_key(&inv).as_deref(), Some("0225:732829320_SERVICE"));
        // An address without a scheme is no key; another legal scheme neither.
        inv.buyer.electronic_address = id("x@example.com", None);
        inv.buyer.legal_registration_id = id("123", Some("0088"));
        assert_eq!(routing_key(&inv), None);
    }
}
