//! `quai-bench`: the benchmark harness of issue 8.
//!
//! `quai-bench generate ...` writes realistic bulk flows (UBL / CII zips, UBL
//! tar.gz, gzipped EDIFACT interchanges) with a manifest of the exact
//! verdicts expected; `quai-bench run --scenario NAME` drops such flows into
//! a real `quai run` child process and measures it end to end, beside the
//! time `unzip -p` / `gzip -dc` needs for the same files on one core.
//! `BENCHMARKS.md` records the figures and `scripts/bench.sh` runs them all.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use quai_bench::{gen, run};

#[derive(Parser)]
#[command(
    name = "quai-bench",
    about = "Generate bulk flows and benchmark quai end to end"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write generated flows and their manifest (expected.json) into --out.
    Generate {
        /// ubl-zip, cii-zip, ubl-targz or edifact-gz
        #[arg(long, default_value = "ubl-zip")]
        kind: String,
        #[arg(long, default_value_t = 1)]
        flows: usize,
        /// Invoices per flow (EDIFACT: messages per interchange).
        #[arg(long, default_value_t = 500)]
        invoices: usize,
        #[arg(long, default_value_t = 1)]
        lines_min: usize,
        #[arg(long, default_value_t = 3)]
        lines_max: usize,
        /// Share of invalid invoices in each flow (0 to 1).
        #[arg(long, default_value_t = 0.1)]
        invalid_share: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Prefix of invoice numbers and file names (default R<seed>).
        #[arg(long)]
        run_id: Option<String>,
        /// Parallel generator threads.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Run one benchmark scenario (or `all`) against a fresh `quai run`.
    Run {
        /// ubl-zip-200x500, edifact-100k, rss-1m, latency-100,
        /// validate-5000-lines, linearity, postgres-2x, or all
        #[arg(long)]
        scenario: String,
        /// The quai binary (default: `quai` beside this program).
        #[arg(long)]
        quai: Option<PathBuf>,
        /// Work folder: generated flows are cached here, each run gets a
        /// fresh QUAI_HOME under it (same filesystem, so drops are renames).
        #[arg(long)]
        work: Option<PathBuf>,
        /// Override the number of flows of a drop scenario.
        #[arg(long)]
        flows: Option<usize>,
        /// Override the invoices per flow of a drop scenario.
        #[arg(long)]
        invoices: Option<usize>,
        /// Linearity sizes (invoices per flow), comma separated.
        #[arg(long, default_value = "10000,100000,1000000")]
        sizes: String,
        /// Runs of the in-process validation timing (median reported).
        #[arg(long, default_value_t = 21)]
        repeat: usize,
        /// Keep the QUAI_HOME of each run (spool, reports) for inspection.
        #[arg(long)]
        keep: bool,
        /// Seconds to wait for a drop scenario to complete.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        /// Print the results as JSON on stdout (human text goes to stderr).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Generate {
            kind,
            flows,
            invoices,
            lines_min,
            lines_max,
            invalid_share,
            seed,
            run_id,
            jobs,
            out,
        } => {
            let kind = gen::Kind::parse(&kind).ok_or_else(|| {
                anyhow::anyhow!("unknown kind {kind:?}: ubl-zip, cii-zip, ubl-targz, edifact-gz")
            })?;
            anyhow::ensure!(
                (0.0..=1.0).contains(&invalid_share),
                "--invalid-share must be between 0 and 1"
            );
            let opts = gen::Options {
                kind,
                flows,
                invoices,
                lines_min,
                lines_max,
                invalid_share,
                seed,
                run_id,
                out: out.clone(),
            };
            let started = std::time::Instant::now();
            let m = gen::generate(&opts, jobs)?;
            eprintln!(
                "{} flow(s), {} invoices ({} expected rejected), {:.1} MB on disk, {:.1} MB unpacked, in {:.1}s -> {}",
                m.flows.len(),
                m.invoices,
                m.rejected,
                m.bytes as f64 / 1e6,
                m.unpacked_bytes as f64 / 1e6,
                started.elapsed().as_secs_f64(),
                out.join("expected.json").display()
            );
            Ok(())
        }
        Command::Run {
            scenario,
            quai,
            work,
            flows,
            invoices,
            sizes,
            repeat,
            keep,
            timeout,
            json,
        } => {
            let sizes = sizes
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("--sizes: {e}"))?;
            let opts = run::RunOptions {
                quai: quai.unwrap_or_else(run::default_quai),
                work: work.unwrap_or_else(|| std::env::temp_dir().join("quai-bench")),
                flows,
                invoices,
                sizes,
                repeat: repeat.max(1),
                keep,
                timeout: std::time::Duration::from_secs(timeout),
                json,
            };
            run::main(&scenario, &opts)
        }
    }
}
