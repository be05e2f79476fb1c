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
//! mail implementations), `antivirus` (a clamd client: bytes streamed with
//! INSTREAM).

use std::future::Future;
use std::path::PathBuf;

pub mod antivirus;
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

/// Why an entry of a drop zone (or an SFTP listing) was refused before
/// anything was landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// A symbolic link (never followed).
    Link,
    /// A FIFO (never opened for reading: it could block intake).
    Fifo,
    /// A socket.
    Socket,
    /// A character or block device.
    Device,
    /// A directory inside a partner's folder.
    Directory,
    /// A regular file with more than one hard link (it may be another
    /// file's content under a name in this folder).
    HardLink,
    /// Neither of the above nor a regular file.
    NotRegular,
    /// The partner's folder itself is a link or not a folder.
    PartnerFolderLink,
    /// The partner's folder has a name that cannot be a partner id.
    PartnerFolderName,
    /// A file directly in a partner root, outside any partner's folder.
    OutsidePartnerFolder,
}

impl RefusalReason {
    /// A short label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            RefusalReason::Link => "link",
            RefusalReason::Fifo => "fifo",
            RefusalReason::Socket => "socket",
            RefusalReason::Device => "device",
            RefusalReason::Directory => "directory",
            RefusalReason::HardLink => "hard_link",
            RefusalReason::NotRegular => "not_regular",
            RefusalReason::PartnerFolderLink => "partner_folder_link",
            RefusalReason::PartnerFolderName => "partner_folder_name",
            RefusalReason::OutsidePartnerFolder => "outside_partner_folder",
        }
    }

    /// What the partner is told (an integration report's reason text).
    /// Never names a link's target.
    pub fn describe(self) -> &'static str {
        match self {
            RefusalReason::Link => "a symbolic link, not a file: links are never followed",
            RefusalReason::Fifo => "a named pipe, not a file",
            RefusalReason::Socket => "a socket, not a file",
            RefusalReason::Device => "a device, not a file",
            RefusalReason::Directory => "a folder inside the drop folder: only files are taken",
            RefusalReason::HardLink => "a file with several hard links: only plain files are taken",
            RefusalReason::NotRegular => "not a regular file",
            RefusalReason::PartnerFolderLink => "the partner folder is a symbolic link, not a folder",
            RefusalReason::PartnerFolderName => {
                "the folder name cannot be a partner id (1 to 64 ASCII letters, digits, '-', '_', '.')"
            }
            RefusalReason::OutsidePartnerFolder => "a file outside any partner folder",
        }
    }
}

/// An entry refused once, without landing anything: moved aside (drop
/// zones) or left and skipped (SFTP), never retried in a loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The partner whose folder held the entry; `None` when the folder's
    /// name is not a usable partner id (no report can be addressed).
    pub partner: Option<String>,
    pub channel: Channel,
    /// The entry's name as the partner gave it (lossily decoded).
    pub name: String,
    pub reason: RefusalReason,
    /// Where the entry was moved (`<folder>/.quai-refused/<name>`), when it was.
    pub moved_to: Option<PathBuf>,
}

/// Where connectors hand landed flows. Implemented by the daemon; returns
/// only after the flow's registration is durably committed.
pub trait FlowSink: Send + Sync + 'static {
    fn accept(&self, flow: LandedFlow) -> impl Future<Output = Result<Accepted, SinkError>> + Send;

    /// Told once of every entry refused before landing (a link, a FIFO, a
    /// folder with an unusable name, ...). The connector has already logged
    /// it and moved it aside; the daemon counts it
    /// (`quai_intake_refused_total{partner,reason}`) and, when `partner` is
    /// set, answers the partner with an integration report (IRR_TYPE_F,
    /// `reason.describe()`). The default does nothing.
    fn refused(&self, refusal: Refusal) -> impl Future<Output = ()> + Send {
        let _ = refusal;
        async {}
    }
}
