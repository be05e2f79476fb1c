//! quai-connectors: how flows arrive and how answers leave.
//!
//! A connector lands a flow's bytes in the content-addressed store
//! ([`landing`]), then hands the landed flow to a [`FlowSink`] (the daemon,
//! which registers it in the spool) and only once the sink has committed does
//! it delete or move the source, or answer the sender (AS2 MDN). Connectors
//! never write spool state themselves.
//!
//! Modules: `landing` (streaming, fsynced, SHA-256-named store writes),
//! `dropzone` (local folders watched with notify), `sftp` (remote servers
//! polled with ssh2), `as2` (RFC 4130 receiving and MDNs), `outbound` (the one
//! trait everything leaving quai goes through, with its folder, SFTP, AS2 and
//! mail implementations).

use std::future::Future;
use std::path::PathBuf;

pub mod as2;
pub mod dropzone;
pub mod landing;
pub mod outbound;
pub mod sftp;

/// Where a flow came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Dropzone,
    Sftp,
    As2,
    Cli,
}

/// A flow whose bytes are durably in the store, not yet registered.
#[derive(Debug, Clone)]
pub struct LandedFlow {
    pub partner: String,
    pub channel: Channel,
    /// The name the partner gave the file (or the AS2 filename / Message-ID).
    pub original_name: String,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    pub size: u64,
    /// Path of the stored bytes (named by the hash).
    pub stored_path: PathBuf,
    /// False when the flow was over the size limit: hashed but not kept
    /// (`stored_path` does not exist); the daemon rejects it (IRR_TAILLE_F).
    pub complete: bool,
    /// AS2 Message-ID, for flows received over AS2.
    pub as2_message_id: Option<String>,
}

/// What the sink decided, after its durable commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A new flow, registered under this id.
    New { flow_id: i64 },
    /// Seen before: recorded as a duplicate of `original`.
    Duplicate { flow_id: i64, original: i64 },
}

/// The sink could not commit: the connector must leave the source in place
/// (or answer with an error) so the flow is taken again later.
#[derive(Debug, thiserror::Error)]
#[error("flow not committed: {0}")]
pub struct SinkError(pub String);

/// Where connectors hand landed flows. Implemented by the daemon; returns
/// only after the flow's registration is durably committed.
pub trait FlowSink: Send + Sync + 'static {
    fn accept(&self, flow: LandedFlow) -> impl Future<Output = Result<Accepted, SinkError>> + Send;
}
