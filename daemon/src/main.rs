//! The `quai` command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, CommandFactory, Parser, Subcommand};
use quai::config::Config;
use quai::{commands, telemetry, App};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "quai",
    version,
    about = "Batch EDI exchange daemon: takes invoice flows in durably, maps them to EN 16931, validates, acknowledges.",
    after_help = "Without --config, quai runs on the embedded default rooted at $QUAI_HOME (default ./quai-data).\nResults go to stdout, logs to stderr. Exit codes: 0 success, 1 something to look at (a rejected invoice, a discrepancy), 2 usage or configuration error.\n\nExamples:\n  quai run                                  # watch ./quai-data/inbound/<partner>/\n  quai status --json\n  quai validate invoice.xml batch.zip       # check before you send; exit 1 on a reject\n  quai ingest batch.zip --partner acme\n  quai flows --partner acme --state failed\n  quai completions bash > /etc/bash_completion.d/quai"
)]
struct Cli {
    /// Configuration file (TOML). Default: the embedded configuration under $QUAI_HOME.
    #[arg(long, global = true, env = "QUAI_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Fewer log lines on stderr: -q warnings and errors, -qq errors only.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    quiet: u8,
    /// More log lines on stderr: -v debug, -vv trace (overrides RUST_LOG and QUAI_LOG).
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
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
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List flows, newest first.
    Flows {
        /// Only this partner's flows (an unknown partner is an error).
        #[arg(long, value_name = "PARTNER")]
        partner: Option<String>,
        /// Only flows in this state: received, processing, processed, failed, duplicate.
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
        /// Only flows received since: a date (2026-11-28), a time (RFC 3339) or a duration back (2h, 3d).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only flows holding an invoice with this number.
        #[arg(long, value_name = "NUMBER")]
        invoice: Option<String>,
        /// At most this many flows.
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: i64,
        /// Print JSON (an array of flows) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One flow: history, invoices, rejects with reasons, acknowledgements.
    Flow {
        /// The flow id (the ID column of `quai flows`).
        id: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// List only the rejected invoices (with their reasons).
        #[arg(long)]
        rejected: bool,
        /// Print the canonical EN 16931 invoice (JSON) of the document with this
        /// index instead: the number shown as #N by `quai flow ID`, 0-based
        /// (the first document of a flow is #0).
        #[arg(long, value_name = "INDEX")]
        invoice: Option<i64>,
    },
    /// Map and validate files or archives without spooling (exit 1 when an invoice is rejected).
    Validate {
        /// Invoice files or archives (zip, tar, tar.gz, gzip).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print JSON (an array of invoices) instead of text.
        #[arg(long)]
        json: bool,
        /// A rule layer to apply on top of EN 16931 and `[validation] layers`
        /// (repeatable): `fr-ctc`, the French CTC rules (BR-FR).
        #[arg(long = "layer", value_name = "LAYER")]
        layers: Vec<String>,
    },
    /// Take files in for a partner as if dropped, and process them now
    /// (exit 1 when an invoice or a flow was rejected).
    Ingest {
        /// Invoice files or archives.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The partner the files come from: configured, or already known to the spool.
        #[arg(long, value_name = "PARTNER")]
        partner: String,
        /// Accept a partner neither configured nor known to the spool (it is created).
        #[arg(long)]
        new_partner: bool,
        /// Print JSON (an array, one entry per file) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Process a stored flow again (idempotent).
    Replay {
        /// The flow id.
        id: i64,
        /// Print the flow as JSON afterwards.
        #[arg(long)]
        json: bool,
    },
    /// Reconcile files seen, flows, acknowledgements, invoices and notifications
    /// for a period (default: the last 24 hours); exit 1 when anything does not add up.
    Reconcile {
        /// A date (2026-11-28, midnight in [schedule] timezone) or an RFC 3339 time.
        #[arg(long, value_name = "WHEN")]
        from: Option<String>,
        /// A date (included) or an RFC 3339 time (excluded).
        #[arg(long, value_name = "WHEN")]
        to: Option<String>,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove finished flows older than [spool] retention_days, and their raw files.
    Purge {
        /// Say what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Deliver acknowledgements again: one by id, or a flow's (`--flow`),
    /// of one kind (`--kind`). Only those are sent; a running daemon is
    /// coordinated with through the spool.
    ResendAck {
        /// The acknowledgement id (as listed by `quai flow ID`).
        #[arg(conflicts_with = "flow", required_unless_present = "flow")]
        id: Option<i64>,
        /// Every acknowledgement of this flow.
        #[arg(long, value_name = "FLOW_ID")]
        flow: Option<i64>,
        /// Only this kind: report, cdar, contrl or mdn.
        #[arg(long, value_name = "KIND", requires = "flow")]
        kind: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One invoice: its route, delivery and status history. Name it as
    /// FLOW/INDEX (`quai flow ID` shows #INDEX) or as NUMBER with --seller.
    Invoice {
        /// FLOW/INDEX (e.g. 12/0), or the invoice number (BT-1) with --seller.
        #[arg(value_name = "NUMBER|FLOW/INDEX")]
        what: String,
        /// The seller (its VAT id, else its legal or other identifier, as stored).
        #[arg(long, value_name = "ID")]
        seller: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Invoices a partner sent or receives, newest first.
    Invoices {
        /// The partner (as supplier or as recipient).
        #[arg(long, value_name = "PARTNER")]
        partner: String,
        /// Only invoices whose history holds this status (200 to 213).
        #[arg(long, value_name = "CODE")]
        status: Option<String>,
        /// Only invoices stored since: a date, an RFC 3339 time or a duration back (2h, 3d).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// At most this many invoices.
        #[arg(long, default_value_t = 1000, value_name = "N")]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Deliver an invoice to its recipient again (coordinated with a running
    /// daemon through the spool).
    ResendInvoice {
        /// FLOW/INDEX (e.g. 12/0).
        #[arg(value_name = "FLOW/INDEX")]
        what: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The partner API's bearer tokens (`/v1`): create, list, revoke.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// The recipient directory: who receives invoices for an address.
    Directory {
        #[command(subcommand)]
        action: DirectoryAction,
    },
    /// Check the configuration and what a start would check (files, folders);
    /// list every problem at once (exit 2 when there is any).
    CheckConfig {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the manual page quai(1) (roff), or write one page per command into a folder.
    Man {
        /// Write quai.1 and quai-COMMAND.1 into this folder instead of printing quai.1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Issue a token for a configured partner; the secret is printed once.
    Create {
        /// The partner the token authenticates as.
        #[arg(long)]
        partner: String,
        /// A name to recognise it by (e.g. the partner's system).
        #[arg(long)]
        name: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Every token (never its secret), active or revoked.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token (exit 1 when there is no such active token).
    Revoke {
        /// The token's id (`quai token list`).
        id: i64,
    },
}

#[derive(Subcommand)]
enum DirectoryAction {
    /// Which partner receives invoices for ADDRESS (scheme:identifier), under
    /// which line, valid when (exit 1 when none).
    Lookup {
        /// The address, e.g. 0225:732829320_73282932000074 or 0009:73282932000074.
        address: String,
        /// The day to look up (default: today in [schedule] timezone).
        #[arg(long, value_name = "DATE")]
        on: Option<chrono::NaiveDate>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Load the directory file now (default: [directory] file); a file with a
    /// bad line is refused whole, every bad line listed (exit 1).
    Import {
        /// A CSV file address,partner,valid_from,valid_to.
        file: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_with(
        i8::try_from(cli.verbose).unwrap_or(i8::MAX) - i8::try_from(cli.quiet).unwrap_or(i8::MAX),
    );
    let code = match run(cli) {
        Ok(code) => code,
        // A closed pipe (`quai flows | head -1`) ends the command quietly.
        Err(e) if commands::is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("quai: {e:#}");
            2
        }
    };
    ExitCode::from(code as u8)
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::CheckConfig { json } => {
            return commands::check_config(cli.config.as_deref(), *json);
        }
        Command::Completions { shell } => {
            // Generated in memory: the generator panics on a closed pipe.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "quai", &mut script);
            let mut out = std::io::stdout().lock();
            out.write_all(&script)?;
            out.flush()?;
            return Ok(0);
        }
        Command::Man { dir } => {
            return man(dir.as_deref());
        }
        _ => {}
    }
    let config = match &cli.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprint!("{}: {e}", p.display());
                return Ok(2);
            }
        },
        None => Config::embedded_default(),
    };
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("cannot start the runtime: {e}"))?;
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
                let found = quai::preflight::findings(&config);
                for p in &found.partner {
                    eprintln!("quai: warning: {p}");
                }
                if !found.fatal.is_empty() {
                    eprint!("{}", quai::config::ConfigErrors(found.fatal));
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
            Command::Validate {
                files,
                json,
                layers,
            } => commands::validate(&config, &files, json, &layers),
            Command::Status { json } => {
                let app = App::inspect_existing(config).await?;
                commands::status(&app, json).await
            }
            Command::Flows {
                partner,
                state,
                since,
                invoice,
                limit,
                json,
            } => {
                let app = App::inspect_existing(config).await?;
                let filter = commands::FlowsFilter {
                    partner,
                    state,
                    since,
                    invoice,
                    limit,
                };
                commands::flows(&app, filter, json).await
            }
            Command::Flow {
                id,
                invoice: Some(index),
                ..
            } => {
                let app = App::inspect_existing(config).await?;
                commands::canonical_invoice(&app, id, index).await
            }
            Command::Flow {
                id, json, rejected, ..
            } => {
                let app = App::inspect_existing(config).await?;
                commands::flow_detail(&app, id, json, rejected).await
            }
            Command::Ingest {
                files,
                partner,
                new_partner,
                json,
            } => {
                let app = App::open(config).await?;
                commands::ingest(&app, &partner, new_partner, &files, json).await
            }
            Command::Replay { id, json } => {
                commands::replay(&App::open_existing(config).await?, id, json).await
            }
            Command::Reconcile { from, to, json } => {
                commands::reconcile(&App::open_existing(config).await?, from, to, json).await
            }
            Command::Purge { dry_run, json } => {
                commands::purge(&App::open_existing(config).await?, dry_run, json).await
            }
            Command::ResendAck {
                id,
                flow,
                kind,
                json,
            } => {
                let kind = kind.as_deref().map(commands::parse_ack_kind).transpose()?;
                let choice = commands::ResendChoice {
                    ack: id,
                    flow,
                    kind,
                };
                commands::resend_ack(&App::open_existing(config).await?, choice, json).await
            }
            Command::Invoice {
                what,
                seller,
                json,
            } => {
                let app = App::inspect_existing(config).await?;
                quai::invoice_commands::invoice(&app, &what, seller.as_deref(), json).await
            }
            Command::Invoices {
                partner,
                status,
                since,
                limit,
                json,
            } => {
                let app = App::inspect_existing(config).await?;
                quai::invoice_commands::invoices(
                    &app,
                    &partner,
                    status.as_deref(),
                    since.as_deref(),
                    limit,
                    json,
                )
                .await
            }
            Command::ResendInvoice { what, json } => {
                let app = App::open_existing(config).await?;
                quai::invoice_commands::resend_invoice(&app, &what, json).await
            }
            Command::Token { action } => {
                let app = App::open(config).await?;
                match action {
                    TokenAction::Create {
                        partner,
                        name,
                        json,
                    } => quai::token_cli::create(&app, &partner, name.as_deref(), json).await,
                    TokenAction::List { json } => quai::token_cli::list(&app, json).await,
                    TokenAction::Revoke { id } => quai::token_cli::revoke(&app, id).await,
                }
            }
            Command::Directory {
                action: DirectoryAction::Lookup { address, on, json },
            } => {
                let app = App::open_existing(config).await?;
                quai::directory::lookup_command(&app, &address, on, json).await
            }
            Command::Directory {
                action: DirectoryAction::Import { file, json },
            } => {
                let app = App::open(config).await?;
                quai::directory::import_command(&app, file.as_deref(), json).await
            }
            Command::CheckConfig { .. } | Command::Completions { .. } | Command::Man { .. } => {
                unreachable!("handled before the runtime starts")
            }
        }
    });
    // Do not wait for blocked tasks (a log writer on a closed pipe, a
    // connection being set up): the result is known.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

/// `quai man [--dir DIR]`: the manual pages, from the same definitions as
/// the command line itself.
fn man(dir: Option<&std::path::Path>) -> anyhow::Result<i32> {
    let cmd = Cli::command();
    match dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&page)?;
            out.flush()?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
            std::fs::write(dir.join("quai.1"), &page)?;
            for sub in cmd.get_subcommands() {
                let name = format!("quai-{}", sub.get_name());
                let sub = sub.clone().name(&*Box::leak(name.clone().into_boxed_str()));
                let mut page = Vec::new();
                clap_mangen::Man::new(sub).render(&mut page)?;
                std::fs::write(dir.join(format!("{name}.1")), &page)?;
            }
            println!("manual pages written to {}", dir.display());
        }
    }
    Ok(0)
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
