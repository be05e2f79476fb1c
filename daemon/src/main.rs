//! The `quai` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use quai::config::Config;
use quai::{commands, telemetry, App};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "quai",
    version,
    about = "Batch EDI exchange daemon: takes invoice flows in durably, maps them to EN 16931, validates, acknowledges.",
    after_help = "Without --config, quai runs on the embedded default rooted at $QUAI_HOME (default ./quai-data).\n\nExamples:\n  quai run                                  # watch ./quai-data/inbound/<partner>/\n  quai status --json\n  quai validate invoice.xml batch.zip       # check before you send; exit 1 on a reject\n  quai ingest batch.zip --partner acme\n  quai flows --partner acme --state failed"
)]
struct Cli {
    /// Configuration file (TOML). Default: the embedded configuration under $QUAI_HOME.
    #[arg(long, global = true, env = "QUAI_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: watch drop zones, process flows, deliver acknowledgements.
    /// SIGHUP reloads the configuration; SIGTERM stops it.
    Run,
    /// Ask the running daemon to reload its configuration (SIGHUP to the pid
    /// in $home/quai.pid), after checking the configuration.
    Reload,
    /// Flows by state and invoices by verdict, per partner and in total.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// List flows, newest first.
    Flows {
        #[arg(long)]
        partner: Option<String>,
        /// received, processing, processed, failed, duplicate
        #[arg(long)]
        state: Option<String>,
        /// A date (2026-11-28), a time (RFC 3339) or a duration back (2h, 3d).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// One flow: history, invoices, rejects with reasons, acknowledgements.
    Flow {
        id: i64,
        #[arg(long)]
        json: bool,
        /// Print the canonical EN 16931 invoice (JSON) of the document at this index instead.
        #[arg(long, value_name = "INDEX")]
        invoice: Option<i64>,
    },
    /// Map and validate files or archives without spooling (exit 1 when an invoice is rejected).
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Take files in for a partner as if dropped, and process them now.
    Ingest {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        partner: String,
        #[arg(long)]
        json: bool,
    },
    /// Process a stored flow again (idempotent).
    Replay {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Reconcile files seen, flows, acknowledgements, invoices and notifications
    /// for a period (default: the last 24 hours); exit 1 when anything does not add up.
    Reconcile {
        /// A date (2026-11-28, midnight in [schedule] timezone) or an RFC 3339 time.
        #[arg(long)]
        from: Option<String>,
        /// A date (included) or an RFC 3339 time (excluded).
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove finished flows older than [spool] retention_days, and their raw files.
    Purge {
        #[arg(long)]
        json: bool,
    },
    /// Deliver an acknowledgement again.
    ResendAck {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Check the configuration and list every problem at once.
    CheckConfig {
        #[arg(long)]
        json: bool,
    },
}

fn load_config(path: &Option<PathBuf>) -> Result<Config, ExitCode> {
    match path {
        Some(p) => Config::load(p).map_err(|e| {
            eprint!("{e}");
            ExitCode::from(2)
        }),
        None => Ok(Config::embedded_default()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    if let Command::CheckConfig { json } = &cli.command {
        return ExitCode::from(commands::check_config(cli.config.as_deref(), *json) as u8);
    }
    let config = match load_config(&cli.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("quai: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run => {
                let shutdown = CancellationToken::new();
                // Signals are taken before anything starts: a SIGHUP during
                // startup is a reload once running, never a kill.
                let reloads = signals(shutdown.clone())?;
                let listener = quai::daemon::bind(&config).await?;
                quai::daemon::run_with_reloads(config, listener, shutdown, reloads)
                    .await
                    .map(|()| 0)
            }
            Command::Reload => {
                let problems = quai::preflight::check(&config);
                if !problems.is_empty() {
                    eprint!("{}", quai::config::ConfigErrors(problems));
                    eprintln!("quai: not reloading: fix the configuration first");
                    return Ok(2);
                }
                let pid = quai::reload::signal_running(&config)?;
                println!(
                    "reload asked of quai (pid {pid}, {}): its log says whether the configuration was taken",
                    quai::reload::pid_file(&config).display()
                );
                Ok(0)
            }
            Command::Validate { files, json } => commands::validate(&config, &files, json),
            Command::Status { json } => {
                let app = App::inspect(config).await?;
                commands::status(&app, json).await
            }
            Command::Flows {
                partner,
                state,
                since,
                limit,
                json,
            } => {
                let app = App::inspect(config).await?;
                commands::flows(&app, partner, state, since, limit, json).await
            }
            Command::Flow {
                id,
                invoice: Some(index),
                ..
            } => {
                let app = App::inspect(config).await?;
                commands::canonical_invoice(&app, id, index).await
            }
            Command::Flow { id, json, .. } => {
                let app = App::inspect(config).await?;
                commands::flow_detail(&app, id, json).await
            }
            Command::Ingest {
                files,
                partner,
                json,
            } => commands::ingest(&App::open(config).await?, &partner, &files, json).await,
            Command::Replay { id, json } => {
                commands::replay(&App::open(config).await?, id, json).await
            }
            Command::Reconcile { from, to, json } => {
                commands::reconcile(&App::open(config).await?, from, to, json).await
            }
            Command::Purge { json } => commands::purge(&App::open(config).await?, json).await,
            Command::ResendAck { id, json } => {
                commands::resend_ack(&App::open(config).await?, id, json).await
            }
            Command::CheckConfig { .. } => unreachable!("handled before the runtime starts"),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("quai: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// SIGTERM and SIGINT cancel `shutdown`; each SIGHUP is a reload, sent on
/// the returned channel.
fn signals(
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::sync::mpsc::UnboundedReceiver<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    if tx.send(()).is_err() {
                        break;
                    }
                }
            }
        }
        shutdown.cancel();
    });
    Ok(rx)
}
