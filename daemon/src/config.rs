//! Configuration: one TOML file, or the embedded default rooted at `$QUAI_HOME`.
//!
//! The file is checked key by key against its schema (`schema`: unknown
//! keys, wrong types and missing keys are all reported), parsed strictly
//! into [`FileConfig`],
//! then resolved into [`Config`]: relative paths are taken relative to the
//! file's folder, sizes like `"1GiB"` become byte counts, cron expressions are
//! parsed. Resolution collects every problem instead of stopping at the first,
//! so `quai check-config` can list them all at once.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use quai_mappings::validate::fr::FrMode;
use quai_mappings::validate::{Layers, Profiles};
use serde::Deserialize;

mod schema;

/// Default folder of the embedded configuration.
pub const DEFAULT_HOME: &str = "./quai-data";

// ---------------------------------------------------------------- file shape

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub spool: SpoolSection,
    #[serde(default)]
    pub dropzones: DropzonesSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub mail: MailSection,
    #[serde(default)]
    pub schedule: ScheduleSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub processing: ProcessingSection,
    #[serde(default)]
    pub validation: ValidationSection,
    pub as2: Option<As2Section>,
    pub antivirus: Option<AntivirusSection>,
    #[serde(default)]
    pub directory: DirectorySection,
    #[serde(default)]
    pub exchange: ExchangeSection,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default, rename = "partner")]
    pub partners: Vec<PartnerSection>,
}

/// `[directory]`: the recipient directory export (see docs/directory.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySection {
    /// CSV `address,partner,valid_from,valid_to`, reloaded when it changes.
    pub file: Option<PathBuf>,
}

/// `[exchange]`: the reconciliation's thresholds for routed invoices (see
/// docs/exchange.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeSection {
    /// An invoice owed to its recipient and not delivered after this many
    /// minutes is a finding (default 60).
    pub undelivered_after_minutes: Option<u64>,
    /// An invoice delivered this many days ago with no status from its
    /// recipient since is a finding (default 7).
    pub no_status_after_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolSection {
    pub url: Option<String>,
    pub store: Option<PathBuf>,
    /// Days a terminal flow is kept before `quai purge` removes it.
    pub retention_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropzonesSection {
    /// Folder whose sub-folders are partner inboxes (a new folder is a new partner).
    pub inbound: Option<PathBuf>,
    /// Folder under which acknowledgements go, one sub-folder per partner.
    pub outbound: Option<PathBuf>,
    /// Set to false to disable the partner-root drop zone.
    pub enabled: Option<bool>,
    /// Seconds a file must keep the same size before it is taken without a close-write event.
    pub stable_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// `host:port`, or `"off"`.
    pub listen: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Seconds a client has to send a request's headers (default 10).
    pub header_timeout_seconds: Option<u64>,
    /// Seconds a request body may take, plus one per `body_min_rate` bytes (default 30).
    pub body_timeout_seconds: Option<u64>,
    /// Bytes per second a body must keep up after `body_timeout_seconds` (default 1KiB).
    pub body_min_rate: Option<ByteSize>,
    /// Seconds a client may take nothing of a response before it is dropped (default 60).
    pub send_timeout_seconds: Option<u64>,
    /// Connections open at once; one more gets 503 (default 256).
    pub max_connections: Option<usize>,
    /// Host names (`name` or `name:port`) the listener answers to without a token,
    /// besides its own address (default none).
    pub allowed_hosts: Option<Vec<String>>,
    /// Largest response body built for one request (default 64MiB).
    pub max_response_bytes: Option<ByteSize>,
}

/// `[api]`: the partner API (AFNOR Flow Service, `/v1` on the `[http]`
/// listener; see docs/api.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// URL prefixes a webhook may be subscribed to (default none: no
    /// subscription is accepted).
    pub webhook_urls: Option<Vec<String>>,
    /// Largest file one deposit may carry (default and at most 100MiB, the
    /// specification's limit); the partner's `max_flow_bytes` also applies.
    pub max_file_bytes: Option<ByteSize>,
    /// Seconds a webhook receiver has to answer (default 10).
    pub webhook_timeout_seconds: Option<u64>,
}

/// The partner API's settings (`[api]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    pub webhook_urls: Vec<String>,
    pub max_file_bytes: u64,
    pub webhook_timeout_seconds: u64,
}

/// The Flow Service's file limit: 100 MB (read as MiB).
pub const API_MAX_FILE_BYTES: u64 = 100 << 20;

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            webhook_urls: Vec::new(),
            max_file_bytes: API_MAX_FILE_BYTES,
            webhook_timeout_seconds: 10,
        }
    }
}

impl ApiConfig {
    /// May a webhook be subscribed to `url`? Only under one of the
    /// operator's prefixes, the prefix ending at a path boundary (so
    /// `https://h` does not allow `https://h.evil`).
    pub fn allows_webhook(&self, url: &str) -> bool {
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.contains('@') {
            return false;
        }
        self.webhook_urls.iter().any(|prefix| {
            let Some(rest) = url.strip_prefix(prefix.as_str()) else {
                return false;
            };
            prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?'])
        })
    }
}

/// `[antivirus]`: every flow is scanned by clamd before it is processed.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct AntivirusSection {
    /// `unix:/run/clamav/clamd.ctl` or `tcp://host:port`.
    pub clamd: String,
    /// Seconds one exchange with clamd may take (default 60).
    pub timeout_seconds: Option<u64>,
    /// Seconds before a flow held because clamd did not answer is tried again (default 30).
    pub retry_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSection {
    /// `smtp://host:port`, `smtps://host:port`, or `file:///folder`.
    pub transport: Option<String>,
    pub from: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Operations mailbox for reconciliation reports.
    pub operations: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    pub timezone: Option<String>,
    pub reject_digest: Option<String>,
    pub reconcile: Option<String>,
    pub purge: Option<String>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_flow_bytes: Option<ByteSize>,
    pub max_invoices_per_flow: Option<u64>,
    pub max_unpacked_ratio: Option<u64>,
    pub max_unpacked_bytes: Option<ByteSize>,
    pub max_archive_entries: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessingSection {
    /// Flows processed at once (default: number of cores).
    pub workers: Option<usize>,
    /// Seconds a claimed flow stays leased without renewal.
    pub lease_seconds: Option<u64>,
    /// Invoices written per spool transaction.
    pub batch_size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct As2Section {
    pub as2_id: String,
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// `[validation]`: rule layers applied on top of EN 16931.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationSection {
    /// Layers for every partner: `["fr-ctc"]` (the French CTC rules, BR-FR).
    pub layers: Option<Vec<String>>,
    /// `"fatal"` (default, the official BR-FR file) or `"warning"` (its
    /// transition copy: every BR-FR rule reported, none rejects).
    pub fr_ctc_mode: Option<String>,
    /// The Factur-X / ZUGFeRD profiles accepted (default: those the French
    /// reform accepts, BASIC, EN 16931, EXTENDED).
    pub profiles: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerSection {
    pub id: String,
    #[serde(default)]
    pub contacts: Vec<String>,
    pub dropzone: Option<PartnerDropzone>,
    pub sftp: Option<PartnerSftp>,
    pub as2: Option<PartnerAs2>,
    pub limits: Option<LimitsSection>,
    /// One CDAR file per invoice instead of one per flow.
    #[serde(default)]
    pub cdar_per_invoice: bool,
    /// This partner's validation layers, instead of `[validation] layers`.
    pub layers: Option<Vec<String>>,
    /// The electronic addresses (scheme:identifier) it receives invoices for.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The syntax it wants invoices in: `original` (default), `ubl`, `cii`.
    pub syntax: Option<String>,
    /// The lifecycle status codes relayed to it as CDAR (default all).
    pub statuses: Option<Vec<String>>,
    /// The language of its digests: `en` (default) or `fr`.
    pub language: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerDropzone {
    pub inbox: PathBuf,
    pub outbox: Option<PathBuf>,
    /// Create the inbox when it does not exist (default false: a missing
    /// inbox is a configuration error, so a misspelled path is not watched).
    #[serde(default)]
    pub create: bool,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct PartnerSftp {
    pub url: String,
    pub key: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    #[serde(default)]
    pub trust_on_first_use: bool,
    pub outbox: Option<String>,
    pub poll: Option<String>,
    pub after_pickup: Option<String>,
    pub min_age_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct PartnerAs2 {
    pub as2_id: String,
    pub certificate: Option<PathBuf>,
    #[serde(default)]
    pub require_signed: bool,
    #[serde(default)]
    pub require_encrypted: bool,
    /// May the partner ask for an asynchronous MDN (a URL quai POSTs to)?
    pub allow_async_mdn: Option<bool>,
    /// The partner's AS2 endpoint: when set, acknowledgements of the
    /// partner's AS2 flows go back over AS2 (see `as2_out`).
    pub url: Option<String>,
    /// Where asynchronous MDNs for this partner's messages may be sent (the
    /// only URL quai POSTs them to; default: `url`). A Receipt-Delivery-Option
    /// naming anything else is answered synchronously.
    pub mdn_url: Option<String>,
    /// Outbound: sign (default true), encrypt (default: when `certificate`
    /// is set), compress (default false).
    pub sign: Option<bool>,
    pub encrypt: Option<bool>,
    pub compress: Option<bool>,
    /// Outbound: `aes256-cbc` (default), `aes192-cbc`, `aes128-cbc`, `3des`.
    pub encryption: Option<String>,
    /// Outbound signature digest: `sha256` (default), `sha384`, `sha512`, `sha224`, `sha1`.
    pub signature: Option<String>,
    /// Outbound: the MDN asked for, `signed` (default) or `unsigned`.
    pub mdn: Option<String>,
    /// Outbound: seconds for one message, connection to MDN (default 60).
    pub timeout_seconds: Option<u64>,
    /// Outbound: largest file sent (default 64MiB).
    pub max_send_bytes: Option<ByteSize>,
}

impl PartnerAs2 {
    /// The outbound settings, when `url` is set.
    pub fn outbound(&self) -> Option<quai_connectors::as2::send::OutboundConfig> {
        let url = self.url.clone()?;
        Some(quai_connectors::as2::send::OutboundConfig {
            url,
            sign: self.sign,
            encrypt: self.encrypt,
            compress: self.compress,
            encryption: self.encryption.clone(),
            signature: self.signature.clone(),
            mdn: self.mdn.clone(),
            timeout_seconds: self.timeout_seconds,
            max_send_bytes: self.max_send_bytes.map(|b| b.0),
        })
    }
}

/// A byte count written as a number or a string like `"1GiB"`, `"500 MB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a size (e.g. 1GiB, 500MB, 1048576)"))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            "t" | "tb" => 1_000_000_000_000,
            "tib" => 1 << 40,
            other => return Err(format!("unknown size unit {other:?} in {s:?}")),
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}

// ------------------------------------------------------------ resolved shape

/// Limits applied to one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_flow_bytes: u64,
    pub max_invoices_per_flow: u64,
    pub max_unpacked_ratio: u64,
    pub max_unpacked_bytes: u64,
    pub max_archive_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_flow_bytes: 1 << 30,
            max_invoices_per_flow: 500,
            max_unpacked_ratio: 100,
            max_unpacked_bytes: 4 << 30,
            max_archive_entries: 10_000,
        }
    }
}

impl Limits {
    fn overlay(&self, s: &LimitsSection) -> Limits {
        Limits {
            max_flow_bytes: s.max_flow_bytes.map(|b| b.0).unwrap_or(self.max_flow_bytes),
            max_invoices_per_flow: s
                .max_invoices_per_flow
                .unwrap_or(self.max_invoices_per_flow),
            max_unpacked_ratio: s.max_unpacked_ratio.unwrap_or(self.max_unpacked_ratio),
            max_unpacked_bytes: s
                .max_unpacked_bytes
                .map(|b| b.0)
                .unwrap_or(self.max_unpacked_bytes),
            max_archive_entries: s.max_archive_entries.unwrap_or(self.max_archive_entries),
        }
    }
}

/// The ops listener's limits (`[http]`): see `http::listener`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_timeout_seconds: u64,
    pub body_timeout_seconds: u64,
    pub body_min_rate: u64,
    pub send_timeout_seconds: u64,
    pub max_connections: usize,
    pub allowed_hosts: Vec<String>,
    pub max_response_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
            body_min_rate: 1024,
            send_timeout_seconds: 60,
            max_connections: 256,
            allowed_hosts: Vec::new(),
            max_response_bytes: 64 << 20,
        }
    }
}

/// The antivirus stage's settings (`[antivirus]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Antivirus {
    /// `unix:/path` or `tcp://host:port`, checked.
    pub clamd: String,
    pub timeout_seconds: u64,
    pub retry_seconds: u64,
}

/// Mail transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// Write each message as an `.eml` file in this folder.
    Files(PathBuf),
    /// SMTP relay: `smtp://` (STARTTLS when offered... or plain), `smtps://` (TLS).
    Smtp { url: String },
}

#[derive(Debug, Clone)]
pub struct Partner {
    pub id: String,
    pub contacts: Vec<String>,
    pub inbox: Option<PathBuf>,
    /// `[partner.dropzone] create`: quai may create the inbox.
    pub create_inbox: bool,
    pub outbox: Option<PathBuf>,
    pub sftp: Option<PartnerSftp>,
    pub as2: Option<PartnerAs2>,
    pub limits: Limits,
    /// One CDAR file per invoice instead of one per flow.
    pub cdar_per_invoice: bool,
    /// Validation layers for this partner's flows.
    pub layers: Layers,
    /// `[[partner]] addresses`: the addresses it receives invoices for.
    pub addresses: Vec<String>,
    /// `[[partner]] syntax`: the form it wants invoices in.
    pub syntax: RecipientSyntax,
    /// `[[partner]] statuses`: the lifecycle statuses relayed to it
    /// (docs/lifecycle.md; default all).
    pub statuses: quai_spool::StatusFilter,
    /// `[[partner]] language`: the language of what it reads (digests).
    pub language: crate::language::Language,
}

/// `[[partner]] syntax`: what a recipient receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientSyntax {
    /// The bytes the supplier sent.
    #[default]
    Original,
    /// UBL 2.1 Invoice / CreditNote.
    Ubl,
    /// CII D16B (EN 16931).
    Cii,
}

/// The resolved configuration the daemon runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, or None for the embedded default.
    pub source: Option<PathBuf>,
    pub home: PathBuf,
    pub spool_url: String,
    pub store: PathBuf,
    pub retention_days: u32,
    /// Partner-root drop zone (`inbound/<partner>/`), if enabled.
    pub inbound_root: Option<PathBuf>,
    pub outbound_root: PathBuf,
    pub stable_seconds: u64,
    pub http_listen: Option<String>,
    pub http_token_file: Option<PathBuf>,
    /// The ops listener's bounds (`[http]`).
    pub http_limits: HttpLimits,
    /// `[antivirus]`, when configured.
    pub antivirus: Option<Antivirus>,
    pub mail_transport: MailTransport,
    pub mail_from: String,
    pub mail_username: Option<String>,
    pub mail_password_file: Option<PathBuf>,
    pub operations_mail: Vec<String>,
    pub timezone: chrono_tz::Tz,
    pub reject_digest: Option<String>,
    pub reconcile: Option<String>,
    pub purge: Option<String>,
    pub limits: Limits,
    pub workers: usize,
    pub lease_seconds: u64,
    pub batch_size: usize,
    pub as2: Option<As2Section>,
    pub partners: Vec<Partner>,
    /// Validation layers of partners without their own.
    pub layers: Layers,
    /// `[validation] fr_ctc_mode`, also for `quai validate --layer fr-ctc`.
    pub fr_ctc_mode: FrMode,
    /// `[directory] file`, absolute.
    pub directory_file: Option<PathBuf>,
    /// `[exchange] undelivered_after_minutes` (default 60).
    pub undelivered_after_minutes: u64,
    /// `[exchange] no_status_after_days` (default 7).
    pub no_status_after_days: u32,
    /// `[api]`: the partner API.
    pub api: ApiConfig,
}

impl Clone for As2Section {
    fn clone(&self) -> Self {
        As2Section {
            as2_id: self.as2_id.clone(),
            certificate: self.certificate.clone(),
            key: self.key.clone(),
        }
    }
}

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `schedule.reconcile`.
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// All problems of a configuration.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} problem(s) in the configuration:", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// The embedded default rooted at `$QUAI_HOME` (default `./quai-data`).
    pub fn embedded_default() -> Config {
        let home = std::env::var_os("QUAI_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_HOME));
        Config::embedded_at(&home)
    }

    /// The embedded default rooted at `home`.
    pub fn embedded_at(home: &Path) -> Config {
        let text = "";
        Config::resolve(FileConfig::default(), home, None, text)
            .expect("the embedded default is valid")
    }

    /// Load and resolve a configuration file, reporting every problem found.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigProblem {
                line: None,
                key: path.display().to_string(),
                message: e.to_string(),
            }])
        })?;
        Config::parse(&text, path)
    }

    /// Load a configuration file and report every problem, keeping the
    /// configuration resolved from the parts that are right (`None` when
    /// the file cannot be read or parsed at all): `quai check-config` runs
    /// the start checks on it even when the file has problems.
    pub fn load_all(path: &Path) -> (Option<Config>, Vec<ConfigProblem>) {
        match std::fs::read_to_string(path) {
            Err(e) => (
                None,
                vec![ConfigProblem {
                    line: None,
                    key: path.display().to_string(),
                    message: e.to_string(),
                }],
            ),
            Ok(text) => Config::parse_all(&text, path),
        }
    }

    /// Parse configuration text as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        match Config::parse_all(text, path) {
            (Some(c), problems) if problems.is_empty() => Ok(c),
            (_, problems) => Err(ConfigErrors(problems)),
        }
    }

    /// [`Config::parse`], keeping what resolves ([`Config::load_all`]).
    pub fn parse_all(text: &str, path: &Path) -> (Option<Config>, Vec<ConfigProblem>) {
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        // A syntax error stops the parse (nothing after it can be read);
        // otherwise every key is checked against the schema first, so type
        // errors, unknown and missing keys are all reported, and what fits
        // still goes through the semantic checks below.
        let mut doc: toml::Table = match text.parse() {
            Ok(d) => d,
            Err(e) => return (None, vec![toml_problem(text, &e)]),
        };
        let mut problems = schema::check(&mut doc, &schema::Lines::of(text));
        let file: FileConfig = match toml::Value::Table(doc).try_into() {
            Ok(f) => f,
            Err(e) => {
                if problems.is_empty() {
                    problems.push(ConfigProblem {
                        line: None,
                        key: "toml".into(),
                        message: e.message().to_string(),
                    });
                }
                return (None, problems);
            }
        };
        let (config, more) = Config::resolve_all(file, &base, Some(path.to_path_buf()), text);
        problems.extend(more);
        (Some(config), problems)
    }

    fn resolve(
        file: FileConfig,
        base: &Path,
        source: Option<PathBuf>,
        text: &str,
    ) -> Result<Config, ConfigErrors> {
        match Config::resolve_all(file, base, source, text) {
            (c, problems) if problems.is_empty() => Ok(c),
            (_, problems) => Err(ConfigErrors(problems)),
        }
    }

    /// Resolve, with every problem found; values with a problem fall back
    /// to their defaults in the returned configuration.
    fn resolve_all(
        file: FileConfig,
        base: &Path,
        source: Option<PathBuf>,
        text: &str,
    ) -> (Config, Vec<ConfigProblem>) {
        // Every path is made absolute once, here: the drop-zone watcher
        // matches event paths against these folders, and a relative
        // `--config` or `$QUAI_HOME` must not depend on the current folder.
        let base = &std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            problems.push(ConfigProblem {
                line: line_of_key(text, key),
                key: key.to_string(),
                message,
            });
        };
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let home = base.to_path_buf();

        let spool_url = match &file.spool.url {
            Some(u)
                if u.starts_with("sqlite:")
                    || u.starts_with("postgres:")
                    || u.starts_with("postgresql:") =>
            {
                u.clone()
            }
            Some(u) => {
                problem(
                    "spool.url",
                    format!("{u:?} is neither sqlite://PATH nor postgres://..."),
                );
                String::new()
            }
            None => format!("sqlite://{}", home.join("spool.db").display()),
        };
        let store = file
            .spool
            .store
            .as_deref()
            .map(abs)
            .unwrap_or_else(|| home.join("flows"));

        let inbound_root = if file.dropzones.enabled == Some(false) {
            None
        } else {
            Some(
                file.dropzones
                    .inbound
                    .as_deref()
                    .map(abs)
                    .unwrap_or_else(|| home.join("inbound")),
            )
        };
        let outbound_root = file
            .dropzones
            .outbound
            .as_deref()
            .map(abs)
            .unwrap_or_else(|| home.join("outbound"));

        let http_listen = match file.http.listen.as_deref() {
            Some("off") | Some("") => None,
            Some(l) => {
                if l.parse::<std::net::SocketAddr>().is_err() {
                    problem(
                        "http.listen",
                        format!("{l:?} is not host:port (e.g. 127.0.0.1:8470) or \"off\""),
                    );
                }
                Some(l.to_string())
            }
            None => Some("127.0.0.1:8470".to_string()),
        };
        if let Some(l) = &http_listen {
            if let Ok(addr) = l.parse::<std::net::SocketAddr>() {
                if !addr.ip().is_loopback() && file.http.token_file.is_none() {
                    problem(
                        "http.token_file",
                        format!("http.listen = {l:?} is not a loopback address: a token_file is required"),
                    );
                }
            }
        }

        let http_limits = {
            let d = HttpLimits::default();
            let h = &file.http;
            for (key, v) in [
                ("http.header_timeout_seconds", h.header_timeout_seconds),
                ("http.body_timeout_seconds", h.body_timeout_seconds),
                ("http.send_timeout_seconds", h.send_timeout_seconds),
            ] {
                if v == Some(0) {
                    problem(key, "must be at least 1 second".into());
                }
            }
            if h.max_connections == Some(0) {
                problem("http.max_connections", "must be at least 1".into());
            }
            HttpLimits {
                header_timeout_seconds: h
                    .header_timeout_seconds
                    .unwrap_or(d.header_timeout_seconds),
                body_timeout_seconds: h.body_timeout_seconds.unwrap_or(d.body_timeout_seconds),
                body_min_rate: h.body_min_rate.map(|b| b.0).unwrap_or(d.body_min_rate),
                send_timeout_seconds: h.send_timeout_seconds.unwrap_or(d.send_timeout_seconds),
                max_connections: h.max_connections.unwrap_or(d.max_connections),
                allowed_hosts: h.allowed_hosts.clone().unwrap_or_default(),
                max_response_bytes: h
                    .max_response_bytes
                    .map(|b| b.0)
                    .unwrap_or(d.max_response_bytes),
            }
        };
        let api = {
            let d = ApiConfig::default();
            let a = &file.api;
            let urls = a.webhook_urls.clone().unwrap_or_default();
            for u in &urls {
                if !(u.starts_with("https://") || u.starts_with("http://"))
                    || u.len() <= "https://".len()
                    || u.contains('@')
                {
                    problem(
                        "api.webhook_urls",
                        format!("{u:?} is not an http:// or https:// URL prefix with a host"),
                    );
                }
            }
            let max = a.max_file_bytes.map(|b| b.0).unwrap_or(d.max_file_bytes);
            if max == 0 || max > API_MAX_FILE_BYTES {
                problem(
                    "api.max_file_bytes",
                    "must be between 1 byte and 100MiB (the Flow Service's limit)".into(),
                );
            }
            if a.webhook_timeout_seconds == Some(0) {
                problem(
                    "api.webhook_timeout_seconds",
                    "must be at least 1 second".into(),
                );
            }
            ApiConfig {
                webhook_urls: urls,
                max_file_bytes: max.clamp(1, API_MAX_FILE_BYTES),
                webhook_timeout_seconds: a
                    .webhook_timeout_seconds
                    .unwrap_or(d.webhook_timeout_seconds)
                    .max(1),
            }
        };
        let antivirus = file.antivirus.as_ref().map(|a| {
            if let Err(e) = quai_connectors::antivirus::ClamdAddress::parse(&a.clamd) {
                problem("antivirus.clamd", e);
            }
            if a.timeout_seconds == Some(0) {
                problem(
                    "antivirus.timeout_seconds",
                    "must be at least 1 second".into(),
                );
            }
            Antivirus {
                clamd: a.clamd.clone(),
                timeout_seconds: a.timeout_seconds.unwrap_or(60),
                retry_seconds: a.retry_seconds.unwrap_or(30).max(1),
            }
        });

        let mail_transport = match file.mail.transport.as_deref() {
            None => MailTransport::Files(home.join("mail")),
            Some(t) if t.starts_with("file://") => {
                MailTransport::Files(abs(Path::new(t.trim_start_matches("file://"))))
            }
            Some(t) if t.starts_with("smtp://") || t.starts_with("smtps://") => {
                if let Err(e) = check_url(t) {
                    problem("mail.transport", e);
                }
                MailTransport::Smtp { url: t.to_string() }
            }
            Some(t) => {
                problem(
                    "mail.transport",
                    format!("{t:?} is not smtp://, smtps:// or file://"),
                );
                MailTransport::Files(home.join("mail"))
            }
        };

        let timezone = match file.schedule.timezone.as_deref() {
            None => chrono_tz::UTC,
            Some(tz) => tz.parse().unwrap_or_else(|_| {
                problem(
                    "schedule.timezone",
                    format!("{tz:?} is not an IANA time zone (e.g. Europe/Paris)"),
                );
                chrono_tz::UTC
            }),
        };
        let mut check_cron = |key: &str, expr: &Option<String>| {
            if let Some(e) = expr {
                if let Err(err) = cron::Schedule::from_str(e) {
                    problem(
                        key,
                        format!("{e:?} is not a cron expression with seconds ({err})"),
                    );
                }
            }
        };
        check_cron("schedule.reject_digest", &file.schedule.reject_digest);
        check_cron("schedule.reconcile", &file.schedule.reconcile);
        check_cron("schedule.purge", &file.schedule.purge);

        let limits = Limits::default().overlay(&file.limits);
        let fr_mode = match file.validation.fr_ctc_mode.as_deref() {
            None => FrMode::Fatal,
            Some(m) => FrMode::parse(m).unwrap_or_else(|| {
                problem(
                    "validation.fr_ctc_mode",
                    format!("{m:?} is neither \"fatal\" nor \"warning\""),
                );
                FrMode::Fatal
            }),
        };
        let profiles = match &file.validation.profiles {
            None => Profiles::REFORM,
            Some(names) => {
                Profiles::from_names(names.iter().map(String::as_str)).unwrap_or_else(|e| {
                    problem("validation.profiles", e);
                    Profiles::REFORM
                })
            }
        };
        let mut layers_of = |key: &str, names: &[String]| {
            let mut l = Layers::from_names(names.iter().map(String::as_str), fr_mode)
                .unwrap_or_else(|e| {
                    problem(key, e);
                    Layers::NONE
                });
            l.profiles = profiles;
            l
        };
        let layers = layers_of(
            "validation.layers",
            file.validation.layers.as_deref().unwrap_or_default(),
        );
        let partner_layers: Vec<Layers> = file
            .partners
            .iter()
            .map(|p| match &p.layers {
                Some(names) => layers_of("partner.layers", names),
                None => layers,
            })
            .collect();

        let mut partners = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut seen_as2 = std::collections::HashSet::new();
        let mut seen_address: std::collections::HashMap<String, String> =
            std::collections::HashMap::new();
        for (p, p_layers) in file.partners.iter().zip(&partner_layers) {
            if !valid_partner_id(&p.id) {
                problem(
                    "partner.id",
                    format!(
                        "{:?} is not a valid partner id (letters, digits, - and _)",
                        p.id
                    ),
                );
            }
            if !seen.insert(p.id.clone()) {
                problem("partner.id", format!("partner {:?} is defined twice", p.id));
            }
            // A flow's partner is who the configuration says: one AS2 id
            // names one partner (issue 14).
            if let Some(a) = &p.as2 {
                if !seen_as2.insert(a.as2_id.clone()) {
                    problem(
                        "partner.as2.as2_id",
                        format!("AS2 id {:?} is given to more than one partner", a.as2_id),
                    );
                }
            }
            if let Some(s) = &p.sftp {
                if !s.url.starts_with("sftp://") {
                    problem(
                        "partner.sftp.url",
                        format!("{:?} is not sftp://user@host:port/dir", s.url),
                    );
                } else if let Err(e) = check_url(&s.url) {
                    problem("partner.sftp.url", e);
                }
                if let Some(poll) = &s.poll {
                    if let Err(err) = cron::Schedule::from_str(poll) {
                        problem(
                            "partner.sftp.poll",
                            format!("{poll:?} is not a cron expression ({err})"),
                        );
                    }
                }
                if let Some(a) = &s.after_pickup {
                    if a != "delete" && !a.starts_with("move:") {
                        problem(
                            "partner.sftp.after_pickup",
                            format!("{a:?} is neither \"delete\" nor \"move:/dir\""),
                        );
                    }
                }
            }
            if let Some(a) = &p.as2 {
                check_as2_outbound(a, file.as2.is_some(), &mut problem);
            }
            for address in &p.addresses {
                if let Err(e) = quai_spool::check_address(address) {
                    problem("partner.addresses", format!("partner {:?}: {e}", p.id));
                } else if let Some(other) = seen_address.insert(address.clone(), p.id.clone()) {
                    if other != p.id {
                        problem(
                            "partner.addresses",
                            format!(
                                "{address} is claimed by partner {other:?} and partner {:?}",
                                p.id
                            ),
                        );
                    }
                }
            }
            let syntax = match p.syntax.as_deref() {
                None | Some("original") => RecipientSyntax::Original,
                Some("ubl") => RecipientSyntax::Ubl,
                Some("cii") => RecipientSyntax::Cii,
                Some(other) => {
                    problem(
                        "partner.syntax",
                        format!("{other:?} is none of \"original\", \"ubl\", \"cii\""),
                    );
                    RecipientSyntax::Original
                }
            };
            let statuses = match &p.statuses {
                None => quai_spool::StatusFilter::all(),
                Some(codes) => {
                    let mut wanted = Vec::new();
                    for c in codes {
                        match c.parse::<quai_spool::StatusCode>() {
                            Ok(code) => wanted.push(code),
                            Err(_) => problem(
                                "partner.statuses",
                                format!(
                                    "partner {:?}: {c:?} is not a lifecycle status code (200 to 213)",
                                    p.id
                                ),
                            ),
                        }
                    }
                    quai_spool::StatusFilter::only(wanted)
                }
            };
            let language = match p.language.as_deref() {
                None => crate::language::Language::default(),
                Some(l) => crate::language::Language::parse(l).unwrap_or_else(|| {
                    problem(
                        "partner.language",
                        format!("{l:?} is none of \"en\", \"fr\""),
                    );
                    crate::language::Language::default()
                }),
            };
            partners.push(Partner {
                id: p.id.clone(),
                contacts: p.contacts.clone(),
                inbox: p.dropzone.as_ref().map(|d| abs(&d.inbox)),
                create_inbox: p.dropzone.as_ref().is_some_and(|d| d.create),
                outbox: p
                    .dropzone
                    .as_ref()
                    .and_then(|d| d.outbox.as_deref().map(abs)),
                // Paths in the file are relative to the file's folder.
                sftp: p.sftp.clone().map(|mut s| {
                    s.key = s.key.as_deref().map(abs);
                    s.password_file = s.password_file.as_deref().map(abs);
                    s.known_hosts = s.known_hosts.as_deref().map(abs);
                    s
                }),
                as2: p.as2.clone().map(|mut a| {
                    a.certificate = a.certificate.as_deref().map(abs);
                    a
                }),
                limits: p
                    .limits
                    .as_ref()
                    .map(|l| limits.overlay(l))
                    .unwrap_or_else(|| limits.clone()),
                cdar_per_invoice: p.cdar_per_invoice,
                layers: *p_layers,
                addresses: p.addresses.clone(),
                syntax,
                statuses,
                language,
            });
        }

        let workers = file.processing.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });

        let config = Config {
            source,
            home,
            spool_url,
            store,
            retention_days: file.spool.retention_days.unwrap_or(90),
            inbound_root,
            outbound_root,
            stable_seconds: file.dropzones.stable_seconds.unwrap_or(2),
            http_listen,
            http_token_file: file.http.token_file.as_deref().map(abs),
            http_limits,
            antivirus,
            mail_transport,
            mail_from: file
                .mail
                .from
                .clone()
                .unwrap_or_else(|| "quai <quai@localhost>".to_string()),
            mail_username: file.mail.username.clone(),
            mail_password_file: file.mail.password_file.as_deref().map(abs),
            operations_mail: file.mail.operations.clone().unwrap_or_default(),
            timezone,
            reject_digest: file.schedule.reject_digest.clone(),
            reconcile: file.schedule.reconcile.clone(),
            purge: file.schedule.purge.clone(),
            limits,
            workers: workers.max(1),
            lease_seconds: file.processing.lease_seconds.unwrap_or(60),
            batch_size: file.processing.batch_size.unwrap_or(500).max(1),
            as2: file.as2.map(|a| As2Section {
                as2_id: a.as2_id,
                certificate: abs(&a.certificate),
                key: abs(&a.key),
            }),
            partners,
            layers,
            fr_ctc_mode: fr_mode,
            directory_file: file.directory.file.as_deref().map(abs),
            undelivered_after_minutes: file.exchange.undelivered_after_minutes.unwrap_or(60),
            no_status_after_days: file.exchange.no_status_after_days.unwrap_or(7),
            api,
        };
        (config, problems)
    }

    /// The `[[partner]] addresses`: address → partner (the first partner
    /// claiming an address, when check-config has a complaint).
    pub fn config_addresses(&self) -> std::collections::HashMap<String, String> {
        let mut map = std::collections::HashMap::new();
        for p in &self.partners {
            for a in &p.addresses {
                map.entry(a.clone()).or_insert_with(|| p.id.clone());
            }
        }
        map
    }

    /// The configured partner, if any.
    pub fn partner(&self, id: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.id == id)
    }

    /// The language of what `partner` reads (`[[partner]] language`;
    /// English for a partner no longer configured).
    pub fn language_of(&self, partner: &str) -> crate::language::Language {
        self.partner(partner)
            .map(|p| p.language)
            .unwrap_or_default()
    }

    /// Validation layers for a partner (its own, or the global ones).
    pub fn layers_for(&self, partner: &str) -> Layers {
        self.partner(partner)
            .map(|p| p.layers)
            .unwrap_or(self.layers)
    }

    /// Limits for a partner (its own, or the global ones).
    pub fn limits_for(&self, partner: &str) -> &Limits {
        self.partner(partner)
            .map(|p| &p.limits)
            .unwrap_or(&self.limits)
    }

    /// Where a partner's drop-zone acknowledgements go.
    pub fn outbox_for(&self, partner: &str) -> PathBuf {
        self.partner(partner)
            .and_then(|p| p.outbox.clone())
            .unwrap_or_else(|| self.outbound_root.join(partner))
    }
}

/// Outbound AS2 settings of a partner: usable, and only with a URL and our
/// own `[as2]` identity.
fn check_as2_outbound(a: &PartnerAs2, have_identity: bool, problem: &mut impl FnMut(&str, String)) {
    use quai_connectors::as2::send::{Outbound, OutboundConfigError as E};
    let Some(out) = a.outbound() else {
        let set = [
            ("sign", a.sign.is_some()),
            ("encrypt", a.encrypt.is_some()),
            ("compress", a.compress.is_some()),
            ("encryption", a.encryption.is_some()),
            ("signature", a.signature.is_some()),
            ("mdn", a.mdn.is_some()),
            ("timeout_seconds", a.timeout_seconds.is_some()),
            ("max_send_bytes", a.max_send_bytes.is_some()),
        ];
        for (key, _) in set.iter().filter(|(_, s)| *s) {
            problem(
                &format!("partner.as2.{key}"),
                "an outbound AS2 setting without partner.as2.url".into(),
            );
        }
        return;
    };
    if !have_identity {
        problem(
            "partner.as2.url",
            "sending over AS2 needs quai's own [as2] identity".into(),
        );
    }
    if let Err(errors) = Outbound::resolve(&out, a.certificate.is_some()) {
        for e in errors {
            let key = match e {
                E::BadUrl(_) => "url",
                E::UnknownEncryption(_) => "encryption",
                E::UnknownSignature(_) => "signature",
                E::UnknownMdn(_) => "mdn",
                E::EncryptWithoutCertificate => "encrypt",
                E::SignedMdnWithoutCertificate => "mdn",
                E::ZeroTimeout => "timeout_seconds",
            };
            problem(&format!("partner.as2.{key}"), e.to_string());
        }
    }
}

/// A `scheme://[user@]host[:port][/path]` URL with a host and, when
/// given, a numeric port (the checks a connection would fail on later).
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| format!("{url:?} is not a URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(format!("{url:?}: unclosed [ in the host")),
        },
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if let Some(p) = port {
        if !p.parse::<u16>().is_ok_and(|n| n != 0) {
            return Err(format!("{url:?}: {p:?} is not a port number"));
        }
    }
    Ok(())
}

/// Partner ids become folder names: keep them boring.
pub fn valid_partner_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn toml_problem(text: &str, e: &toml::de::Error) -> ConfigProblem {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    ConfigProblem {
        line,
        key: "toml".to_string(),
        message: e.message().to_string(),
    }
}

/// The line where a dotted key's last segment is first assigned (best effort).
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let last = key.rsplit('.').next()?;
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.starts_with(last) && t[last.len()..].trim_start().starts_with('=')
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("1GiB".parse::<ByteSize>().unwrap(), ByteSize(1 << 30));
        assert_eq!("500 MB".parse::<ByteSize>().unwrap(), ByteSize(500_000_000));
        assert_eq!("42".parse::<ByteSize>().unwrap(), ByteSize(42));
        assert!("12 parsecs".parse::<ByteSize>().is_err());
    }

    #[test]
    fn relative_config_and_home_become_absolute_paths() {
        let c = Config::parse("", Path::new("rel/quai.toml")).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(c.home, cwd.join("rel"));
        assert!(c.store.is_absolute() && c.outbound_root.is_absolute());
        assert!(c.inbound_root.as_ref().is_some_and(|p| p.is_absolute()));
        let e = Config::embedded_at(Path::new("quai-data"));
        assert_eq!(e.home, cwd.join("quai-data"));
        assert!(e.store.starts_with(cwd.join("quai-data")));
    }

    #[test]
    fn partner_statuses() {
        let c = Config::parse(
            "[[partner]]\nid = \"acme\"\nstatuses = [\"210\", \"212\"]\n[[partner]]\nid = \"b\"\n",
            Path::new("/tmp/quai.toml"),
        )
        .unwrap();
        let acme = &c.partner("acme").unwrap().statuses;
        assert!(acme.wants(quai_spool::StatusCode::Refused));
        assert!(!acme.wants(quai_spool::StatusCode::Issued));
        assert!(c
            .partner("b")
            .unwrap()
            .statuses
            .wants(quai_spool::StatusCode::Issued));
        let err = Config::parse(
            "[[partner]]\nid = \"acme\"\nstatuses = [\"299\", \"Refusée\"]\n",
            Path::new("/tmp/quai.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("partner.statuses") && err.contains("\"299\""),
            "{err}"
        );
        assert!(err.contains("\"Refusée\""), "{err}");
    }

    #[test]
    fn embedded_default_layout() {
        let c = Config::embedded_at(Path::new("/tmp/qh"));
        assert_eq!(c.spool_url, "sqlite:///tmp/qh/spool.db");
        assert_eq!(c.store, PathBuf::from("/tmp/qh/flows"));
        assert_eq!(c.inbound_root, Some(PathBuf::from("/tmp/qh/inbound")));
        assert_eq!(c.outbound_root, PathBuf::from("/tmp/qh/outbound"));
        assert_eq!(
            c.mail_transport,
            MailTransport::Files(PathBuf::from("/tmp/qh/mail"))
        );
        assert_eq!(c.limits.max_invoices_per_flow, 500);
    }

    #[test]
    fn validation_layers_globally_and_per_partner() {
        let c = Config::parse(
            "[validation]\nlayers = [\"fr-ctc\"]\nfr_ctc_mode = \"warning\"\n\
             [[partner]]\nid = \"acme\"\nlayers = []\n\
             [[partner]]\nid = \"other\"\n",
            Path::new("/tmp/quai.toml"),
        )
        .unwrap();
        assert_eq!(c.layers.fr_ctc, Some(FrMode::Warning));
        assert_eq!(c.layers_for("acme").fr_ctc, None);
        assert_eq!(c.layers_for("acme").profiles, Profiles::REFORM);
        assert_eq!(c.layers_for("other").fr_ctc, Some(FrMode::Warning));
        assert_eq!(c.layers_for("unknown").fr_ctc, Some(FrMode::Warning));
        let d = Config::parse("", Path::new("/tmp/quai.toml")).unwrap();
        assert_eq!(d.layers.fr_ctc, None);
        assert_eq!(d.layers.profiles, Profiles::REFORM);
        assert_eq!(d.fr_ctc_mode, FrMode::Fatal);
        let p = Config::parse(
            "[validation]\nprofiles = [\"minimum\", \"basic-wl\", \"basic\", \"en16931\", \"extended\"]\n\
             [[partner]]\nid = \"acme\"\n",
            Path::new("/tmp/quai.toml"),
        )
        .unwrap();
        assert_eq!(p.layers_for("acme").profiles, Profiles::ALL);
        let bad = Config::parse(
            "[validation]\nprofiles = [\"comfort\"]\n",
            Path::new("/tmp/quai.toml"),
        )
        .unwrap_err();
        assert!(bad.0.iter().any(|p| p.key == "validation.profiles"));

        let e = Config::parse(
            "[validation]\nlayers = [\"fr\"]\nfr_ctc_mode = \"loud\"\n\
             [[partner]]\nid = \"acme\"\nlayers = [\"x\"]\n",
            Path::new("/tmp/quai.toml"),
        )
        .unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"validation.layers"), "{keys:?}");
        assert!(keys.contains(&"validation.fr_ctc_mode"), "{keys:?}");
        assert!(keys.contains(&"partner.layers"), "{keys:?}");
    }

    #[test]
    fn every_problem_reported_at_once() {
        let text = "[spool]\nurl = \"mysql://x\"\n[schedule]\ntimezone = \"Mars/Olympus\"\nreconcile = \"every day\"\n";
        let err = Config::parse(text, Path::new("/etc/quai/quai.toml")).unwrap_err();
        let keys: Vec<_> = err.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["spool.url", "schedule.timezone", "schedule.reconcile"]
        );
        assert_eq!(err.0[0].line, Some(2));
        assert_eq!(err.0[2].line, Some(5));
    }

    #[test]
    fn unknown_keys_listed_with_lines() {
        let text = "[spool]\nurl = \"sqlite:///x\"\nstorr = \"/x\"\n[http]\nlisten = \"127.0.0.1:1\"\nport = 3\n";
        let err = Config::parse(text, Path::new("/etc/quai/quai.toml")).unwrap_err();
        let lines: Vec<_> = err.0.iter().map(|p| p.line).collect();
        assert_eq!(lines, [Some(3), Some(6)]);
    }

    #[test]
    fn public_listener_needs_token() {
        let err = Config::parse(
            "[http]\nlisten = \"0.0.0.0:8470\"\n",
            Path::new("/q/c.toml"),
        )
        .unwrap_err();
        assert_eq!(err.0[0].key, "http.token_file");
    }

    #[test]
    fn paths_are_relative_to_the_file() {
        let text = "[as2]\nas2_id = \"Q\"\ncertificate = \"as2/q.crt\"\nkey = \"/abs/q.key\"\n\
                    [[partner]]\nid = \"acme\"\n[partner.as2]\nas2_id = \"A\"\ncertificate = \"a.pem\"\n\
                    [partner.sftp]\nurl = \"sftp://u@h/in\"\nkey = \"keys/acme\"\nknown_hosts = \"kh\"\n";
        let c = Config::parse(text, Path::new("/etc/quai/quai.toml")).unwrap();
        let as2 = c.as2.as_ref().unwrap();
        assert_eq!(as2.certificate, PathBuf::from("/etc/quai/as2/q.crt"));
        assert_eq!(as2.key, PathBuf::from("/abs/q.key"));
        let p = c.partner("acme").unwrap();
        assert_eq!(
            p.as2.as_ref().unwrap().certificate,
            Some(PathBuf::from("/etc/quai/a.pem"))
        );
        let sftp = p.sftp.as_ref().unwrap();
        assert_eq!(sftp.key, Some(PathBuf::from("/etc/quai/keys/acme")));
        assert_eq!(sftp.known_hosts, Some(PathBuf::from("/etc/quai/kh")));
    }

    #[test]
    fn one_as2_id_names_one_partner() {
        let text = "[[partner]]\nid = \"acme\"\n[partner.as2]\nas2_id = \"A\"\n\
                    [[partner]]\nid = \"bolt\"\n[partner.as2]\nas2_id = \"A\"\n";
        let err = Config::parse(text, Path::new("/q/c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than one partner"), "{err}");
    }

    #[test]
    fn as2_outbound_settings() {
        let base = "[as2]\nas2_id = \"Q\"\ncertificate = \"q.crt\"\nkey = \"q.key\"\n\
                    [[partner]]\nid = \"acme\"\n[partner.as2]\nas2_id = \"A\"\ncertificate = \"a.pem\"\n";
        let ok = format!(
            "{base}url = \"https://as2.acme.example/as2\"\nencryption = \"aes128-cbc\"\n\
             signature = \"sha512\"\nmdn = \"unsigned\"\ntimeout_seconds = 30\nmax_send_bytes = \"1MiB\"\n\
             sign = true\nencrypt = true\ncompress = true\n"
        );
        let c = Config::parse(&ok, Path::new("/q/c.toml")).unwrap();
        let out = c
            .partner("acme")
            .unwrap()
            .as2
            .as_ref()
            .unwrap()
            .outbound()
            .unwrap();
        assert_eq!(out.url, "https://as2.acme.example/as2");
        assert_eq!(out.max_send_bytes, Some(1 << 20));
        assert_eq!(out.compress, Some(true));

        // Every problem at once, each under its key.
        let bad = format!(
            "{base}url = \"ftp://x\"\nencryption = \"rot13\"\nsignature = \"crc\"\n\
             mdn = \"maybe\"\ntimeout_seconds = 0\n"
        );
        let err = Config::parse(&bad, Path::new("/q/c.toml")).unwrap_err();
        let keys: Vec<_> = err.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "partner.as2.url",
                "partner.as2.encryption",
                "partner.as2.signature",
                "partner.as2.mdn",
                "partner.as2.timeout_seconds"
            ]
        );
        // No identity, no certificate, settings without a URL.
        let text = "[[partner]]\nid = \"acme\"\n[partner.as2]\nas2_id = \"A\"\nurl = \"http://h/as2\"\nencrypt = true\n\
                    [[partner]]\nid = \"b\"\n[partner.as2]\nas2_id = \"B\"\nsign = false\n";
        let err = Config::parse(text, Path::new("/q/c.toml")).unwrap_err();
        let keys: Vec<_> = err.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "partner.as2.url",
                "partner.as2.encrypt",
                "partner.as2.mdn",
                "partner.as2.sign"
            ]
        );
        // An unknown key is reported, and only it: the new keys are known
        // to the scan that lists every unknown key at once.
        let err = Config::parse(
            &format!(
                "{base}signed = true\nurl = \"http://h/as2\"\nmdn = \"signed\"\nuknown_too = 1\n"
            ),
            Path::new("/q/c.toml"),
        )
        .unwrap_err();
        let lines: Vec<_> = err.0.iter().map(|p| p.line).collect();
        assert_eq!(lines, [Some(10), Some(13)], "{err}");
    }

    #[test]
    fn partner_limits_overlay() {
        let text = "[limits]\nmax_invoices_per_flow = 100\n[[partner]]\nid = \"acme\"\n[partner.limits]\nmax_flow_bytes = \"2GiB\"\n";
        let c = Config::parse(text, Path::new("/q/c.toml")).unwrap();
        let l = c.limits_for("acme");
        assert_eq!(l.max_flow_bytes, 2 << 30);
        assert_eq!(l.max_invoices_per_flow, 100);
        assert_eq!(c.limits_for("other").max_flow_bytes, 1 << 30);
    }

    #[test]
    fn http_bounds_and_antivirus_have_safe_defaults_and_are_checked() {
        let c = Config::embedded_at(Path::new("/tmp/qh"));
        assert_eq!(c.http_limits, HttpLimits::default());
        assert_eq!(c.http_limits.header_timeout_seconds, 10);
        assert_eq!(c.http_limits.max_response_bytes, 64 << 20);
        assert!(c.antivirus.is_none());
        let ok = Config::parse(
            "[http]\nbody_min_rate = \"4KiB\"\nallowed_hosts = [\"q.example\"]\n\
             [antivirus]\nclamd = \"tcp://av.lan:3310\"\n",
            Path::new("/etc/quai/quai.toml"),
        )
        .unwrap();
        assert_eq!(ok.http_limits.body_min_rate, 4096);
        assert_eq!(ok.http_limits.allowed_hosts, ["q.example"]);
        let av = ok.antivirus.unwrap();
        assert_eq!((av.timeout_seconds, av.retry_seconds), (60, 30));
        let err = Config::parse(
            "[http]\nheader_timeout_seconds = 0\nmax_connections = 0\n\
             [antivirus]\nclamd = \"clamd.ctl\"\ntimeout_seconds = 0\n",
            Path::new("/etc/quai/quai.toml"),
        )
        .unwrap_err();
        let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "http.header_timeout_seconds",
            "http.max_connections",
            "antivirus.clamd",
            "antivirus.timeout_seconds",
        ] {
            assert!(keys.contains(&k), "{k} not in {keys:?}");
        }
    }
}
