//! Connector values built from the configuration, once for every user: the
//! SFTP source of a partner (polled by its job, and the SFTP outbox of its
//! answers) and the AS2 identity and partner settings (the AS2 endpoint and
//! AS2 answers). Depends only on `config` and the connectors crate, so the
//! deliverer and the jobs both use it without importing each other.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use quai_connectors::as2;
use quai_connectors::sftp::{AfterPickup, SftpSource};
use tokio::sync::Semaphore;

use crate::config::{Config, Partner};

/// Concurrent SFTP downloads across all partners.
pub const TRANSFER_SLOTS: usize = 4;

/// The semaphore shared by every partner's polls.
pub fn transfer_slots() -> Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS
        .get_or_init(|| Arc::new(Semaphore::new(TRANSFER_SLOTS)))
        .clone()
}

/// The known_hosts file used when a partner does not name one.
pub fn default_known_hosts(config: &Config) -> std::path::PathBuf {
    config.home.join("known_hosts")
}

/// The SFTP source of a partner (polling and outbox delivery).
pub fn sftp_source(config: &Config, partner: &Partner) -> anyhow::Result<SftpSource> {
    let s = partner
        .sftp
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("partner {} has no [partner.sftp]", partner.id))?;
    let base = config
        .source
        .as_deref()
        .and_then(|p| p.parent())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| config.home.clone());
    let abs = |p: &std::path::Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let known_hosts = s
        .known_hosts
        .as_deref()
        .map(abs)
        .unwrap_or_else(|| default_known_hosts(config));
    let mut src =
        SftpSource::from_url(&partner.id, &s.url, s.key.as_deref().map(abs), known_hosts)?;
    src.password_file = s.password_file.as_deref().map(abs);
    src.trust_on_first_use = s.trust_on_first_use;
    src.outbox = s.outbox.clone();
    src.after_pickup = match s.after_pickup.as_deref() {
        Some(a) => a.parse()?,
        None => AfterPickup::Delete,
    };
    if let Some(age) = s.min_age_seconds {
        src.min_age = Duration::from_secs(age);
    }
    src.max_file_size = Some(partner.limits.max_flow_bytes);
    src.transfer_slots = Some(transfer_slots());
    Ok(src)
}

/// quai's own AS2 identity (`[as2]`), if it has one.
pub fn as2_identity(config: &Config) -> Option<as2::IdentityConfig> {
    config.as2.as_ref().map(|own| as2::IdentityConfig {
        as2_id: own.as2_id.clone(),
        certificate: own.certificate.clone(),
        key: own.key.clone(),
    })
}

/// A partner's AS2 settings (`[partner.as2]`), if it has them.
pub fn as2_partner(p: &Partner) -> Option<as2::PartnerConfig> {
    p.as2.as_ref().map(|a| as2::PartnerConfig {
        partner_id: p.id.clone(),
        as2_id: a.as2_id.clone(),
        certificate: a.certificate.clone(),
        require_signed: a.require_signed,
        require_encrypted: a.require_encrypted,
        allow_async_mdn: a.allow_async_mdn.unwrap_or(true),
    })
}

/// Our identity, the partner and its outbound settings, loaded from the
/// configuration (certificates and key read from disk each time, so a
/// renewed certificate is taken without a restart).
pub fn as2_sender(
    config: &Config,
    partner_id: &str,
) -> anyhow::Result<(as2::Identity, as2::Partner, as2::send::Outbound)> {
    let own =
        as2_identity(config).context("no [as2] identity is configured: cannot send over AS2")?;
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
    let identity = as2::Identity::load(&own)?;
    let partner = as2::Partner::load(&as2_partner(p).expect("partner has [partner.as2]"))?;
    let out = as2::send::Outbound::resolve(&out_cfg, partner.cert.is_some()).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!("partner {partner_id} [partner.as2]: {}", list.join("; "))
    })?;
    Ok((identity, partner, out))
}
