//! The quai daemon: configuration, the processing pipeline, scheduled jobs,
//! the ops HTTP listener and the CLI commands.
//!
//! [`run`] starts everything for one configuration and returns when the
//! `shutdown` token is cancelled and in-flight work has been finished or
//! safely abandoned (a flow whose processing is interrupted keeps its lease
//! and is taken again, idempotently, after the lease expires or at the next
//! start). Everything works on one [`App`], built in [`app`].

pub mod acks;
pub mod antivirus;
pub mod app;
pub mod commands;
pub mod config;
pub mod connect;
pub mod daemon;
pub mod deliver_batch;
pub mod deliverer;
pub mod delivery_attempt;
pub mod directory;
pub mod exchange;
pub mod flow_json;
pub mod http;
pub mod intake;
pub mod invoice_commands;
pub mod jobs;
pub mod language;
pub mod mail;
pub mod metrics;
pub mod outbound;
pub mod outbound_api;
pub mod partner_text;
pub mod pipeline;
pub mod preflight;
pub mod process_metrics;
pub mod query;
pub mod reasons;
pub mod reload;
pub mod render;
pub mod routing;
pub mod scheduler;
pub mod sdnotify;
pub mod statuses;
pub mod stored;
pub mod telemetry;
pub mod text;
pub mod token_cli;
pub mod tokens;
pub mod webhooks;

pub use app::{instance_name, open_spool, prepare_folders, App};
pub use daemon::run;
pub use text::redact_url;
