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
use quai_connectors::as2::send::{self, Outbound};
use quai_connectors::as2::{Identity, IdentityConfig, Partner, PartnerConfig};
use quai_spool::AckRow;
use tracing::{info, warn};

use crate::app::App;
use crate::config::Config;

/// Does this partner take its acknowledgements as outbound AS2 messages?
/// Yes when quai has an `[as2]` identity and the partner an AS2 `url`.
pub fn sends_over_as2(config: &Config, partner: &str) -> bool {
    config.as2.is_some()
        && config
            .partner(partner)
            .and_then(|p| p.as2.as_ref())
            .is_some_and(|a| a.url.is_some())
}

/// Send the rendered files of one acknowledgement, each as one AS2 message.
/// Ok only when every file's MDN was accepted.
pub async fn deliver(
    daemon: &App,
    ack: &AckRow,
    files: &[(String, PathBuf)],
) -> anyhow::Result<()> {
    let config = &daemon.config;
    let (identity, partner, out) = load(config, &ack.partner)?;
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

/// Our identity, the partner and its outbound settings, loaded from the
/// configuration (certificates and key read from disk each time, so a
/// renewed certificate is taken without a restart).
fn load(config: &Config, partner_id: &str) -> anyhow::Result<(Identity, Partner, Outbound)> {
    let own = config
        .as2
        .as_ref()
        .context("no [as2] identity is configured: cannot send over AS2")?;
    let p = config
        .partner(partner_id)
        .with_context(|| format!("partner {partner_id} is no longer configured"))?;
    let a = p
        .as2
        .as_ref()
        .with_context(|| format!("partner {partner_id} has no [partner.as2] section"))?;
    let out_cfg = a
        .outbound()
        .with_context(|| format!("partner {partner_id} has no [partner.as2] url"))?;
    let identity = Identity::load(&IdentityConfig {
        as2_id: own.as2_id.clone(),
        certificate: own.certificate.clone(),
        key: own.key.clone(),
    })?;
    let partner = Partner::load(&PartnerConfig {
        partner_id: p.id.clone(),
        as2_id: a.as2_id.clone(),
        certificate: a.certificate.clone(),
        require_signed: a.require_signed,
        require_encrypted: a.require_encrypted,
        allow_async_mdn: a.allow_async_mdn.unwrap_or(true),
    })?;
    let out = Outbound::resolve(&out_cfg, partner.cert.is_some()).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!("partner {partner_id} [partner.as2]: {}", list.join("; "))
    })?;
    Ok((identity, partner, out))
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
        crate::acks::write_atomically(&dir, &name, id.as_bytes())
    })
    .await??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_partners_with_a_url_and_an_identity() {
        let text = "[as2]\nas2_id = \"Q\"\ncertificate = \"q.crt\"\nkey = \"q.key\"\n\
                    [[partner]]\nid = \"acme\"\n[partner.as2]\nas2_id = \"A\"\nurl = \"http://h/as2\"\nmdn = \"unsigned\"\n\
                    [[partner]]\nid = \"b\"\n[partner.as2]\nas2_id = \"B\"\n";
        let c = Config::parse(text, Path::new("/q/c.toml")).unwrap();
        assert!(sends_over_as2(&c, "acme"));
        assert!(!sends_over_as2(&c, "b"));
        assert!(!sends_over_as2(&c, "nobody"));
        assert_eq!(marker_name("a/b c.xml"), "a_b_c.xml");
    }
}
