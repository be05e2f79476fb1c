//! Acknowledgements sent back over AS2 to partners whose flows came over
//! AS2 (owned by the outbound AS2 work; see issue 6).

use std::path::PathBuf;

use quai_spool::AckRow;

use crate::config::Config;
use crate::Daemon;

/// Does this partner take its acknowledgements as outbound AS2 messages?
pub fn sends_over_as2(_config: &Config, _partner: &str) -> bool {
    false
}

/// Send the rendered files of one acknowledgement, each as one AS2 message.
pub async fn deliver(
    _daemon: &Daemon,
    _ack: &AckRow,
    _files: &[(String, PathBuf)],
) -> anyhow::Result<()> {
    anyhow::bail!("outbound AS2 is not configured")
}
