//! Logging: human-readable on a terminal, JSON under systemd or when asked
//! (`QUAI_LOG_FORMAT=json`). `RUST_LOG` / `QUAI_LOG` set the level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Install the global subscriber (idempotent: later calls are ignored).
pub fn init() {
    let filter = std::env::var("QUAI_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info,sqlx=warn".to_string());
    let json = match std::env::var("QUAI_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => std::env::var_os("JOURNAL_STREAM").is_some() && !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
