//! Acknowledgements sent back over AS2 to partners whose flows came over
//! AS2 (issue 6: "each acknowledgement goes back the way its flow came").
//!
//! A partner whose `[partner.as2]` has a `url` (and quai an `[as2]`
//! identity) gets the acknowledgements of its AS2 flows (integration report
//! XML and JSON, CDAR, CONTRL) as AS2 messages, one file per message, each
//! answered by a synchronous MDN that `quai_connectors::as2::send` verifies
//! (signature, Message-ID, `processed`, MIC). The acknowledgement deliverer
//! (`acks.rs`) renders the files, calls [`deliver`], and marks the
//! acknowledgement delivered only when every file's MDN was accepted; on an
//! error it records the attempt and tries again on its next pass.
//!
//! An acknowledgement can hold several files (the report's XML and JSON).
//! When some went through and a later one failed, the ones already accepted
//! are remembered in `<home>/as2-out/sent/` (one small marker per file,
//! holding the Message-ID) so the retry sends only the rest: a partner does
//! not get the same report twice because its JSON twin was refused. The
//! markers are removed once the whole acknowledgement went through, so
//! `quai resend-ack` sends everything again.

use std::path::{Path, PathBuf};

use anyhow::Context;
use quai_connectors::as2::send;
use quai_spool::AckRow;
use tracing::{info, warn};

use crate::app::App;

/// Send the rendered files of one acknowledgement, each as one AS2 message.
/// Ok only when every file's MDN was accepted.
pub async fn deliver(
    daemon: &App,
    ack: &AckRow,
    files: &[(String, PathBuf)],
) -> anyhow::Result<()> {
    let config = &daemon.config();
    let (identity, partner, out) = crate::connect::as2_sender(config, &ack.partner)?;
    let sent_dir = config.home.join("as2-out").join("sent");
    let mut markers = Vec::with_capacity(files.len());
    for (name, path) in files {
        let marker = sent_dir.join(format!("{}-{}.sent", ack.id, marker_name(name)));
        if tokio::fs::try_exists(&marker).await.unwrap_or(false) {
            info!(partner = %ack.partner, flow_id = ack.flow_id, ack = ack.id, file = %name,
                "acknowledgement file already accepted over AS2; not sent again");
            markers.push(marker);
            continue;
        }
        let size = tokio::fs::metadata(path)
            .await
            .with_context(|| format!("{}", path.display()))?
            .len();
        if size > out.max_bytes {
            let e = send::SendError::TooLarge {
                name: name.clone(),
                size,
                max: out.max_bytes,
            };
            warn!(partner = %ack.partner, flow_id = ack.flow_id, ack = ack.id, file = %name, error = %e,
                "acknowledgement not sent over AS2");
            return Err(e.into());
        }
        let bytes = tokio::fs::read(path)
            .await
            .with_context(|| format!("{}", path.display()))?;
        match send::send(&identity, &partner, &out, name, &bytes).await {
            Ok(sent) => {
                info!(
                    partner = %ack.partner, flow_id = ack.flow_id, ack = ack.id, file = %name,
                    message_id = %sent.message_id, url = %out.url,
                    mdn = %sent.mdn.disposition.as_deref().unwrap_or(""),
                    mdn_signed = sent.mdn.signed, mic = %sent.mic, signed = sent.signed,
                    encrypted = sent.encrypted, compressed = sent.compressed,
                    "acknowledgement sent over AS2; MDN accepted"
                );
                write_marker(&sent_dir, &marker, &sent.message_id).await?;
                markers.push(marker);
            }
            Err(e) => {
                warn!(
                    partner = %ack.partner, flow_id = ack.flow_id, ack = ack.id, file = %name,
                    url = %out.url, transient = e.is_transient(), error = %e,
                    "acknowledgement not accepted over AS2; will retry"
                );
                // One line with the cause: the spool keeps `to_string()`.
                return Err(anyhow::anyhow!("{name} to {} over AS2: {e}", ack.partner));
            }
        }
    }
    for m in markers {
        let _ = tokio::fs::remove_file(m).await;
    }
    Ok(())
}

/// A file name as a marker name: no separators, bounded.
fn marker_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect()
}

async fn write_marker(dir: &Path, marker: &Path, message_id: &str) -> anyhow::Result<()> {
    let dir = dir.to_path_buf();
    let marker = marker.to_path_buf();
    let id = message_id.to_string();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        let name = marker
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        crate::text::write_atomically(&dir, &name, id.as_bytes())
    })
    .await??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_names_are_file_safe() {
        assert_eq!(marker_name("a/b c.xml"), "a_b_c.xml");
    }
}
