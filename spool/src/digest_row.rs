//! The record of a sent digest: a leaf shared by the outbox API and the
//! write step that marks its rows notified.

/// The digest that was sent.
#[derive(Debug, Clone)]
pub struct NewDigest {
    pub partner: String,
    pub recipients: Vec<String>,
    /// Message-ID of the mail, when known.
    pub message_id: Option<String>,
}
