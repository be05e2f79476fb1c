//! Flows on disk and their manifest: each flow streamed one invoice at a
//! time into its archive (zip, tar.gz, gzipped interchange), several flows
//! in parallel, and `expected.json` listing the verdicts expected.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::cii::write_cii;
use super::edifact::{write_edifact_header, write_edifact_message, write_edifact_trailer};
use super::invoice::{build_invoice, Defect, GenInvoice, Kind, Rng};
use super::ubl::write_ubl;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub kind: Kind,
    pub flows: usize,
    pub invoices: usize,
    pub lines_min: usize,
    pub lines_max: usize,
    /// Share of invalid invoices per flow, 0.0 ..= 1.0 (rounded per flow).
    pub invalid_share: f64,
    pub seed: u64,
    /// Prefix of invoice numbers and file names; default `R<seed>`.
    pub run_id: Option<String>,
    pub out: PathBuf,
}

impl Options {
    pub fn run_id(&self) -> String {
        self.run_id
            .clone()
            .unwrap_or_else(|| format!("R{}", self.seed))
    }
}

/// One invalid invoice, as the manifest records it.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidEntry {
    /// 0-based position in the flow.
    pub index: usize,
    pub number: String,
    /// The rule the invoice was made to break.
    pub rule: &'static str,
    /// Every fatal rule expected for it.
    pub rules: Vec<&'static str>,
}

/// One generated flow.
#[derive(Debug, Clone, Serialize)]
pub struct FlowManifest {
    pub file: String,
    pub invoices: usize,
    pub rejected: usize,
    pub lines: usize,
    /// Size of the file as dropped.
    pub bytes: u64,
    /// Size of the documents once unpacked.
    pub unpacked_bytes: u64,
    pub invalid: Vec<InvalidEntry>,
}

/// `expected.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub kind: Kind,
    pub seed: u64,
    pub run_id: String,
    pub invoices: usize,
    pub rejected: usize,
    pub bytes: u64,
    pub unpacked_bytes: u64,
    pub flows: Vec<FlowManifest>,
}

/// Which invoices of a flow are invalid, and how: exactly
/// `round(n × share)` of them, at seeded positions.
fn defects_for(rng: &mut Rng, n: usize, share: f64) -> Vec<Option<Defect>> {
    let share = share.clamp(0.0, 1.0);
    let bad = ((n as f64) * share).round() as usize;
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..bad.min(n) {
        let j = i + (rng.next_u64() % (n - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut out = vec![None; n];
    // Cycle the kinds from a seeded start, so every kind appears as soon as
    // a flow has five invalid invoices.
    let start = (rng.next_u64() % Defect::ALL.len() as u64) as usize;
    for (k, &i) in idx.iter().take(bad).enumerate() {
        out[i] = Some(Defect::ALL[(k + start) % Defect::ALL.len()]);
    }
    out
}

/// Counts what goes through it (the unpacked size of a flow).
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Generate one flow at `path`; returns its manifest entry.
pub fn generate_flow(opts: &Options, flow: usize, path: &Path) -> io::Result<FlowManifest> {
    let run_id = opts.run_id();
    let mut rng = Rng::new(opts.seed.wrapping_mul(1_000_003).wrapping_add(flow as u64));
    let defects = defects_for(&mut rng, opts.invoices, opts.invalid_share);
    let file = File::create(path)?;
    let mut invalid = Vec::new();
    let mut unpacked = 0u64;
    let mut total_lines = 0usize;
    let mut doc = String::with_capacity(16 << 10);
    let lines_max = opts.lines_max.max(opts.lines_min).max(1);
    let lines_min = opts.lines_min.clamp(1, lines_max);
    let next = |rng: &mut Rng, i: usize| -> GenInvoice {
        let lines = rng.range(lines_min as u64, lines_max as u64) as usize;
        build_invoice(rng, &run_id, flow, i, lines, defects[i])
    };
    let record = |inv: &GenInvoice, i: usize, invalid: &mut Vec<InvalidEntry>| {
        if let Some(d) = inv.defect {
            invalid.push(InvalidEntry {
                index: i,
                number: inv.number.clone(),
                rule: d.rule(),
                rules: if opts.kind == Kind::CiiZip {
                    d.rules_in_cii().to_vec()
                } else {
                    d.rules().to_vec()
                },
            });
        }
    };
    match opts.kind {
        Kind::UblZip | Kind::CiiZip => {
            let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .last_modified_time(zip::DateTime::default());
            for i in 0..opts.invoices {
                let inv = next(&mut rng, i);
                doc.clear();
                if opts.kind == Kind::UblZip {
                    write_ubl(&inv, &mut doc);
                } else {
                    write_cii(&inv, &mut doc);
                }
                zip.start_file(format!("{}.xml", inv.number), options)
                    .map_err(io::Error::other)?;
                zip.write_all(doc.as_bytes())?;
                unpacked += doc.len() as u64;
                total_lines += inv.lines.len();
                record(&inv, i, &mut invalid);
            }
            let mut w = zip.finish().map_err(io::Error::other)?;
            w.flush()?;
            w.get_ref().sync_all()?;
        }
        Kind::UblTargz => {
            let gz = flate2::write::GzEncoder::new(
                BufWriter::with_capacity(1 << 20, file),
                flate2::Compression::default(),
            );
            let mut tar = tar::Builder::new(gz);
            for i in 0..opts.invoices {
                let inv = next(&mut rng, i);
                doc.clear();
                write_ubl(&inv, &mut doc);
                let mut header = tar::Header::new_gnu();
                header.set_size(doc.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(1_735_776_000);
                header.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut header, format!("{}.xml", inv.number), doc.as_bytes())?;
                unpacked += doc.len() as u64;
                total_lines += inv.lines.len();
                record(&inv, i, &mut invalid);
            }
            let gz = tar.into_inner()?;
            let mut w = gz.finish()?;
            w.flush()?;
            w.get_ref().sync_all()?;
        }
        Kind::EdifactGz => {
            let gz = flate2::write::GzEncoder::new(
                BufWriter::with_capacity(1 << 20, file),
                flate2::Compression::default(),
            );
            let mut w = Counting { inner: gz, n: 0 };
            let control = format!(
                "{}{:05}",
                run_id
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .take(8)
                    .collect::<String>(),
                flow
            );
            doc.clear();
            write_edifact_header(&control, &mut doc);
            w.write_all(doc.as_bytes())?;
            for i in 0..opts.invoices {
                let inv = next(&mut rng, i);
                doc.clear();
                write_edifact_message(&inv, i + 1, &mut doc);
                w.write_all(doc.as_bytes())?;
                total_lines += inv.lines.len();
                record(&inv, i, &mut invalid);
            }
            doc.clear();
            write_edifact_trailer(&control, opts.invoices, &mut doc);
            w.write_all(doc.as_bytes())?;
            unpacked = w.n;
            let mut inner = w.inner.finish()?;
            inner.flush()?;
            inner.get_ref().sync_all()?;
        }
    }
    let bytes = std::fs::metadata(path)?.len();
    Ok(FlowManifest {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        invoices: opts.invoices,
        rejected: invalid.len(),
        lines: total_lines,
        bytes,
        unpacked_bytes: unpacked,
        invalid,
    })
}

/// The file name of flow `flow`.
pub fn flow_file_name(opts: &Options, flow: usize) -> String {
    format!(
        "{}-flow-{:05}.{}",
        opts.run_id(),
        flow,
        opts.kind.extension()
    )
}

/// Generate every flow into `opts.out` (`jobs` in parallel) and write
/// `expected.json` beside them.
pub fn generate(opts: &Options, jobs: usize) -> io::Result<Manifest> {
    std::fs::create_dir_all(&opts.out)?;
    let jobs = jobs.clamp(1, opts.flows.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(opts.flows));
    std::thread::scope(|s| -> io::Result<()> {
        let mut handles = Vec::new();
        for _ in 0..jobs {
            handles.push(s.spawn(|| -> io::Result<()> {
                loop {
                    let f = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if f >= opts.flows {
                        return Ok(());
                    }
                    let path = opts.out.join(flow_file_name(opts, f));
                    let m = generate_flow(opts, f, &path)?;
                    results
                        .lock()
                        .map_err(|_| io::Error::other("generator thread panicked"))?
                        .push((f, m));
                }
            }));
        }
        for h in handles {
            h.join()
                .map_err(|_| io::Error::other("generator thread panicked"))??;
        }
        Ok(())
    })?;
    let mut flows = results
        .into_inner()
        .map_err(|_| io::Error::other("generator thread panicked"))?;
    flows.sort_by_key(|(f, _)| *f);
    let flows: Vec<FlowManifest> = flows.into_iter().map(|(_, m)| m).collect();
    let manifest = Manifest {
        kind: opts.kind,
        seed: opts.seed,
        run_id: opts.run_id(),
        invoices: flows.iter().map(|f| f.invoices).sum(),
        rejected: flows.iter().map(|f| f.rejected).sum(),
        bytes: flows.iter().map(|f| f.bytes).sum(),
        unpacked_bytes: flows.iter().map(|f| f.unpacked_bytes).sum(),
        flows,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    std::fs::write(opts.out.join("expected.json"), json)?;
    Ok(manifest)
}
