//! The spool: quai's system of record.
//!
//! Every state change of a flow, an invoice, an acknowledgement or a
//! notification goes through [`Spool`]; nothing else writes spool state. Two
//! backends sit behind the same API (SQLite in WAL mode by default, PostgreSQL
//! for several instances), chosen by the URL scheme. Flow state moves
//! `received → processing → processed | failed`; a flow whose partner + SHA-256
//! (or AS2 Message-ID) was already registered is recorded as `duplicate` and
//! never processed. Processing is idempotent: invoice rows are keyed by
//! (flow, document index), so a flow processed again after a crash replaces
//! its rows instead of adding to them.
//!
//! Layout: `state` owns the transition table (every state change is checked
//! there and logged as an event in the same transaction); `invoices` plans
//! duplicate-invoice detection; `rows` converts rows; `steps` holds the write
//! steps both backends share (written once, behind a small dialect);
//! `sqlite` and `postgres` connect and hold what each does its own way
//! (invoice batches); `jobs` (cron locks and runs), `outbox`
//! (reject notifications), `retention` (purge) and `reads` (history,
//! reconciliation counts) add what the scheduled cycles need. The raw flows
//! themselves live in the connectors' content-addressed store
//! (`quai_connectors::landing`); the spool only records their SHA-256.

use std::sync::Arc;
use std::time::Duration;

/// Run a backend method for a write: on SQLite, writes of one process are
/// serialized on an in-process lock before they reach the database, so
/// concurrent workers queue in memory instead of spinning in SQLite's busy
/// handler (whose sleeps grow to 100 ms). Other processes still meet the
/// busy timeout.
macro_rules! dispatch_write {
    ($self:ident, $b:ident => $e:expr) => {
        match &$self.inner.backend {
            Backend::Sqlite($b) => {
                let _writer = $b.writer.lock().await;
                $e
            }
            Backend::Postgres($b) => $e,
        }
    };
}

/// Run the same code (SQL valid on both backends) on whichever pool this
/// spool uses.
macro_rules! with_pool {
    ($self:ident, $pool:ident => $e:expr) => {
        match &$self.inner.backend {
            Backend::Sqlite(b) => {
                let $pool = &b.pool;
                $e
            }
            Backend::Postgres(b) => {
                let $pool = &b.pool;
                $e
            }
        }
    };
}

/// Run one of the shared write steps (`steps.rs`) in a transaction of its
/// own on whichever backend this spool uses: on SQLite under the
/// in-process writer lock with `BEGIN IMMEDIATE` at the given durability,
/// on PostgreSQL with the database clock. Commits on success, rolls back
/// at once on error.
macro_rules! write_step {
    ($self:ident, $sync:expr, $step:ident($($arg:expr),* $(,)?)) => {
        match &$self.inner.backend {
            Backend::Sqlite(b) => {
                let _writer = b.writer.lock().await;
                let mut tx = b.begin($sync).await?;
                let result = async {
                    let cx = steps::Cx {
                        me: &$self.inner.instance,
                        now: steps::sqlite::clock(&mut tx).await?,
                    };
                    steps::sqlite::$step(&mut tx, &cx, $($arg),*).await
                }
                .await;
                crate::settle(tx, result).await
            }
            Backend::Postgres(b) => {
                let mut tx = b.pool.begin().await?;
                let result = async {
                    let cx = steps::Cx {
                        me: &$self.inner.instance,
                        now: steps::postgres::clock(&mut tx).await?,
                    };
                    steps::postgres::$step(&mut tx, &cx, $($arg),*).await
                }
                .await;
                crate::settle(tx, result).await
            }
        }
    };
    // A step another module compiles for both backends the same way
    // (`module::sqlite::step`, `module::postgres::step`).
    ($self:ident, $sync:expr, $module:ident :: $step:ident($($arg:expr),* $(,)?)) => {
        match &$self.inner.backend {
            Backend::Sqlite(b) => {
                let _writer = b.writer.lock().await;
                let mut tx = b.begin($sync).await?;
                let result = async {
                    let cx = steps::Cx {
                        me: &$self.inner.instance,
                        now: steps::sqlite::clock(&mut tx).await?,
                    };
                    $module::sqlite::$step(&mut tx, &cx, $($arg),*).await
                }
                .await;
                crate::settle(tx, result).await
            }
            Backend::Postgres(b) => {
                let mut tx = b.pool.begin().await?;
                let result = async {
                    let cx = steps::Cx {
                        me: &$self.inner.instance,
                        now: steps::postgres::clock(&mut tx).await?,
                    };
                    $module::postgres::$step(&mut tx, &cx, $($arg),*).await
                }
                .await;
                crate::settle(tx, result).await
            }
        }
    };
}

/// End a write transaction: commit on success; on error roll back *now*
/// (a dropped transaction is only rolled back when its connection is next
/// used, and meanwhile it would keep its row locks).
pub(crate) async fn settle<T, DB: sqlx::Database>(
    tx: sqlx::Transaction<'_, DB>,
    result: Result<T>,
) -> Result<T> {
    match result {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

pub mod api;
mod deliveries;
mod delivery_rows;
mod digest_row;
pub mod directory;
pub mod directory_csv;
mod durability;
mod exchange;
mod invoices;
mod jobs;
pub mod lifecycle;
mod lookups;
mod outbox;
mod postgres;
mod reads;
mod retention;
mod rows;
mod sqlite;
mod state;
mod steps;
mod writer_lock;

use durability::Durability;

pub use deliveries::{
    held_until, retry_delay, DeliveryItem, DeliveryRow, NewInvoiceDelivery, StatusRelayRow,
    UndeliveredSummary,
};
pub use directory::{
    candidates, check_address, DirectoryLine, DirectorySource, DirectoryVersion, LineProblem,
    LoadRefused, Loaded, Route,
};
pub use directory_csv::{CsvLines, LineChecks};
pub use exchange::{ExchangeFilter, ExchangedInvoice, RecipientCounts};
pub use jobs::{JobLock, JobRun};
pub use lifecycle::{
    DeliveredItem, Issuer, NewStatus, RecordedStatus, StatusAmount, StatusCode, StatusFilter,
    StatusId, StatusReason, StatusRefusal, StatusRelay, StatusRow,
};
pub use lookups::PurgePreview;
pub use outbox::{FailedFlowRow, NewDigest, RejectRow};
pub use reads::{EventRow, PeriodCounts, Sighting};
pub use retention::PurgeReport;
pub use state::{DeliveryState, NotificationState, UnknownName};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported spool url {0:?} (expected sqlite:// or postgres://)")]
    UnsupportedUrl(String),
    #[error("illegal transition of flow {flow}: {from} -> {to}")]
    IllegalTransition { flow: i64, from: String, to: String },
    #[error("flow {0} not found")]
    FlowNotFound(i64),
    #[error("acknowledgement {0} not found")]
    AckNotFound(i64),
    #[error("delivery {0} not found")]
    DeliveryNotFound(i64),
    /// A state change the transition table refuses (of an acknowledgement,
    /// a delivery or an outbox row; flows have [`SpoolError::IllegalTransition`]).
    #[error("illegal transition of {entity} {id}: {from} -> {to}")]
    IllegalStateChange {
        entity: &'static str,
        id: i64,
        from: String,
        to: String,
    },
    #[error("flow {flow} is leased by another instance ({owner})")]
    LeaseLost { flow: i64, owner: String },
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("invalid invoice batch: {0}")]
    InvalidBatch(String),
    /// A lifecycle status the table or the invoice's parties refuse;
    /// nothing was written.
    #[error("status refused for invoice {flow}/{doc_index}: {why}")]
    StatusRefused {
        flow: i64,
        doc_index: i64,
        why: lifecycle::StatusRefusal,
    },
}

pub type Result<T> = std::result::Result<T, SpoolError>;

pub type FlowId = i64;
pub type AckId = i64;

/// Acknowledgements to create for a flow registered as a duplicate.
pub(crate) type DupAcks<'a> = dyn Fn(FlowId) -> Vec<(AckKind, String, String)> + Send + Sync + 'a;

/// Where a flow came from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Dropzone,
    Sftp,
    As2,
    Cli,
    /// Deposited through the partner API (`POST /v1/flows`).
    Api,
}

/// Lifecycle state of a flow.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowState {
    Received,
    Processing,
    Processed,
    Failed,
    Duplicate,
}

impl FlowState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            FlowState::Processed | FlowState::Failed | FlowState::Duplicate
        )
    }
}

/// A flow as the intake registers it, after its bytes are durably stored.
#[derive(Debug, Clone)]
pub struct NewFlow {
    pub partner: String,
    pub origin: Origin,
    pub original_name: String,
    pub size: i64,
    /// Lower-case hex SHA-256 of the raw bytes; also the name in the store.
    pub sha256: String,
    pub as2_message_id: Option<String>,
}

/// Result of registering a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// A new flow, in state `received`.
    New(FlowId),
    /// Already seen (same partner + hash, or same AS2 Message-ID): a row in
    /// state `duplicate` was recorded, pointing at `original`.
    Duplicate { id: FlowId, original: FlowId },
}

/// A flow claimed for processing by this instance (state `processing`,
/// lease held until `lease_expires_at`).
#[derive(Debug, Clone)]
pub struct ClaimedFlow {
    pub id: FlowId,
    pub partner: String,
    pub origin: Origin,
    pub original_name: String,
    pub size: i64,
    pub sha256: String,
    pub attempts: i32,
}

/// Verdict of one invoice.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accepted,
    Rejected,
}

/// One reason an invoice was rejected (or warned about).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// `BR-CO-10`, `SYNTAX`, `REJ_UNI`...
    pub rule: String,
    /// `BT-106`...
    pub term: String,
    /// `fatal` or `warning`
    pub severity: String,
    pub message: String,
}

/// One document of a flow, mapped and validated, ready to store.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    /// Position of the document in the flow (0-based, stable across reprocessing).
    pub doc_index: i64,
    /// Archive entry name (or the flow's own name).
    pub entry: String,
    pub syntax: Option<String>,
    pub profile: Option<String>,
    /// Seller key for duplicate detection (BT-31, else BT-30, else BT-29, else BT-27).
    pub seller_id: Option<String>,
    pub number: Option<String>,
    pub issue_date: Option<NaiveDate>,
    pub type_code: Option<String>,
    pub currency: Option<String>,
    pub total_without_vat: Option<Decimal>,
    pub total_with_vat: Option<Decimal>,
    pub amount_due: Option<Decimal>,
    /// Verdict from the mappings (before the spool's duplicate check).
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
    /// Canonical invoice as JSON (None when the document could not be read).
    pub canonical_json: Option<String>,
}

/// What the spool decided for one stored invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInvoice {
    pub doc_index: i64,
    pub verdict: Verdict,
    /// True when the spool rejected it as a duplicate (REJ_UNI / DOUBLON).
    pub duplicate: bool,
    /// Reasons as stored (the mapping's, plus the duplicate reason if any).
    pub reasons: Vec<Reason>,
}

/// How a flow ended.
#[derive(Debug, Clone)]
pub enum FlowOutcome {
    /// Read to the end; its invoices are stored.
    Processed,
    /// Could not be read as a whole: `code` is an IRR_* reason.
    Failed { code: String, message: String },
}

/// Kind of acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckKind {
    IntegrationReport,
    Cdar,
    Contrl,
    Mdn,
}

/// Where something quai sends goes: the kind of channel and its target.
/// Stored as two columns (`destination_kind`, `destination`: the partner
/// for its outboxes and AS2 endpoint, the URL of an MDN, the address of a
/// mail), beside the delivery's recipient `partner`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destination {
    /// The partner's local outbox folder.
    LocalOutbox { partner: String },
    /// The partner's SFTP outbox (`[partner.sftp] outbox`).
    SftpOutbox { partner: String },
    /// An AS2 message to the partner's `[partner.as2] url`.
    As2 { partner: String },
    /// An asynchronous MDN, posted to the URL the partner's message asked for.
    As2Mdn { partner: String, url: String },
    /// A mail.
    Mail { address: String },
    /// The partner API: the acknowledgement is made readable there
    /// (`GET /v1/flows/{flowId}`) and announced to the partner's webhooks.
    Api { partner: String },
}

/// The kind of a [`Destination`] (its `destination_kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationKind {
    LocalOutbox,
    SftpOutbox,
    As2,
    As2Mdn,
    Mail,
    Api,
}

impl Destination {
    pub fn kind(&self) -> DestinationKind {
        match self {
            Destination::LocalOutbox { .. } => DestinationKind::LocalOutbox,
            Destination::SftpOutbox { .. } => DestinationKind::SftpOutbox,
            Destination::As2 { .. } => DestinationKind::As2,
            Destination::As2Mdn { .. } => DestinationKind::As2Mdn,
            Destination::Mail { .. } => DestinationKind::Mail,
            Destination::Api { .. } => DestinationKind::Api,
        }
    }

    /// The `destination` column: partner, URL or address.
    pub fn target(&self) -> &str {
        match self {
            Destination::LocalOutbox { partner }
            | Destination::SftpOutbox { partner }
            | Destination::As2 { partner }
            | Destination::Api { partner } => partner,
            Destination::As2Mdn { url, .. } => url,
            Destination::Mail { address } => address,
        }
    }

    /// Read back from the columns (`partner`: the delivery's recipient).
    pub(crate) fn from_columns(kind: &str, partner: &str, target: &str) -> Result<Destination> {
        let target = target.to_owned();
        Ok(match state::parse::<DestinationKind>(kind)? {
            DestinationKind::LocalOutbox => Destination::LocalOutbox { partner: target },
            DestinationKind::SftpOutbox => Destination::SftpOutbox { partner: target },
            DestinationKind::As2 => Destination::As2 { partner: target },
            DestinationKind::As2Mdn => Destination::As2Mdn {
                partner: partner.to_owned(),
                url: target,
            },
            DestinationKind::Mail => Destination::Mail { address: target },
            DestinationKind::Api => Destination::Api { partner: target },
        })
    }

    /// The destination an acknowledgement row of the earlier API named by
    /// channel (`dropzone`, `sftp`, `as2`; an MDN by its URL).
    pub fn for_ack(kind: AckKind, partner: &str, legacy: &str) -> Destination {
        let partner = partner.to_owned();
        match (kind, legacy) {
            (AckKind::Mdn, url) => Destination::As2Mdn {
                partner,
                url: url.to_owned(),
            },
            (_, "sftp") => Destination::SftpOutbox { partner },
            (_, "as2") => Destination::As2 { partner },
            (_, "api") => Destination::Api { partner },
            _ => Destination::LocalOutbox { partner },
        }
    }

    /// The channel name of the earlier API ([`AckRow::destination`]):
    /// `dropzone`, `sftp`, `as2`, an MDN's URL, `mail`.
    pub fn legacy_name(&self) -> &str {
        match self {
            Destination::LocalOutbox { .. } => "dropzone",
            Destination::SftpOutbox { .. } => "sftp",
            Destination::As2 { .. } => "as2",
            Destination::As2Mdn { url, .. } => url,
            Destination::Mail { .. } => "mail",
            Destination::Api { .. } => "api",
        }
    }
}

/// An acknowledgement to owe: what, where it goes, under which name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAck {
    pub kind: AckKind,
    pub to: Destination,
    pub file_name: String,
}

impl NewAck {
    /// From the (kind, channel name, file name) rows of the earlier API.
    pub fn from_legacy(
        partner: &str,
        (kind, destination, file_name): &(AckKind, String, String),
    ) -> NewAck {
        NewAck {
            kind: *kind,
            to: Destination::for_ack(*kind, partner, destination),
            file_name: file_name.clone(),
        }
    }
}

/// An acknowledgement still to deliver (or delivered), with the state of
/// its delivery row.
#[derive(Debug, Clone)]
pub struct AckRow {
    pub id: AckId,
    pub flow_id: FlowId,
    pub partner: String,
    pub kind: AckKind,
    /// Where it goes, as the earlier API named it: `dropzone`, `sftp`,
    /// `as2` (an MDN: its URL). See [`AckRow::to`].
    pub destination: String,
    /// Where it goes.
    pub to: Destination,
    /// Its delivery row.
    pub delivery_id: i64,
    pub state: DeliveryState,
    pub file_name: String,
    pub generated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// When the next attempt is due (the stored backoff).
    pub next_attempt_at: DateTime<Utc>,
}

/// Counts per state / verdict.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    /// flows by state name
    pub flows: std::collections::BTreeMap<String, i64>,
    /// invoices: always has "accepted" and "rejected"
    pub invoices: std::collections::BTreeMap<String, i64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartnerCounts {
    pub partner: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// `quai status --json`: `{"totals": {...}, "partners": [...]}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusSummary {
    pub totals: Counts,
    pub partners: Vec<PartnerCounts>,
}

/// A flow row as listed by `quai flows`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowRow {
    pub id: FlowId,
    pub partner: String,
    pub origin: Origin,
    pub original_name: String,
    pub size: i64,
    pub sha256: String,
    pub state: FlowState,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attempts: i32,
    pub duplicate_of: Option<FlowId>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub invoices_accepted: i64,
    pub invoices_rejected: i64,
}

/// A stored canonical invoice, streamed ([`Spool::canonical_invoice_reader`]).
pub struct CanonicalJson {
    /// Bytes of JSON the reader yields.
    pub len: u64,
    pub reader: Box<dyn std::io::Read + Send>,
}

impl std::fmt::Debug for CanonicalJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanonicalJson")
            .field("len", &self.len)
            .finish()
    }
}

/// An invoice row of a flow, as stored.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvoiceRow {
    pub id: i64,
    pub flow_id: FlowId,
    pub doc_index: i64,
    pub entry: String,
    pub syntax: Option<String>,
    pub profile: Option<String>,
    pub seller_id: Option<String>,
    pub number: Option<String>,
    pub issue_date: Option<NaiveDate>,
    pub type_code: Option<String>,
    pub currency: Option<String>,
    pub total_with_vat: Option<Decimal>,
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
}

/// Filter for `quai flows`.
#[derive(Debug, Clone, Default)]
pub struct FlowFilter {
    pub partner: Option<String>,
    pub state: Option<FlowState>,
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
}

/// Lease settings for claiming work.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub duration: Duration,
}

/// The spool handle; cheap to clone (a connection pool inside).
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

struct Inner {
    instance: String,
    backend: Backend,
}

enum Backend {
    Sqlite(sqlite::SqliteBackend),
    Postgres(Box<postgres::PgBackend>),
}

impl Spool {
    /// Open (creating if needed) the spool at `url` (`sqlite://PATH` or
    /// `postgres://...`), run the embedded migrations, and identify this
    /// process as `instance` in leases and event history.
    pub async fn connect(url: &str, instance: &str) -> Result<Spool> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite(sqlite::SqliteBackend::connect(url, instance).await?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres(Box::new(postgres::PgBackend::connect(url, instance).await?))
        } else {
            return Err(SpoolError::UnsupportedUrl(url.to_owned()));
        };
        Ok(Spool {
            inner: Arc::new(Inner {
                instance: instance.to_owned(),
                backend,
            }),
        })
    }

    /// Name of this instance (lease owner, event history).
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Make sure a partner row exists (idempotent).
    pub async fn ensure_partner(&self, partner: &str) -> Result<()> {
        write_step!(self, Durability::Full, ensure_partner(partner))
    }

    /// Register a durably stored flow. A flow already seen (same partner
    /// and same hash or same AS2 Message-ID) is recorded as a duplicate;
    /// another partner's flow never is.
    pub async fn register_flow(&self, flow: &NewFlow) -> Result<Registration> {
        write_step!(self, Durability::Full, register_flow(flow, &|_| Vec::new()))
    }

    /// [`Spool::register_flow`], and when the flow turns out to be a
    /// duplicate, create the pending acknowledgements `duplicate_acks(id)`
    /// returns (`id`: the duplicate's flow id) in the same transaction, so a
    /// duplicate is always answered, even after a crash.
    pub async fn register_flow_with_acks<F>(
        &self,
        flow: &NewFlow,
        duplicate_acks: F,
    ) -> Result<Registration>
    where
        F: Fn(FlowId) -> Vec<(AckKind, String, String)> + Send + Sync,
    {
        write_step!(self, Durability::Full, register_flow(flow, &duplicate_acks))
    }

    /// Record an entry a connector refused before landing anything (a
    /// link, a FIFO, ...) as a `failed` flow without content, with its
    /// reason (`code`, `message`) and the acknowledgements `acks(id)`
    /// returns, in one transaction: it is answered like any failed flow,
    /// after this commit. `flow.sha256` names the refusal (not content):
    /// the same refusal told again registers nothing and returns `None`.
    pub async fn register_refused<F>(
        &self,
        flow: &NewFlow,
        code: &str,
        message: &str,
        acks: F,
    ) -> Result<Option<FlowId>>
    where
        F: Fn(FlowId) -> Vec<(AckKind, String, String)> + Send + Sync,
    {
        write_step!(
            self,
            Durability::Full,
            register_refused(flow, code, message, &acks)
        )
    }

    /// Create pending acknowledgements for a flow in a terminal state
    /// (processed, failed or duplicate), e.g. an answer generated again.
    /// Flows being processed get theirs from [`Spool::finish_flow`]; only
    /// MDNs (which answer the receipt) may be added to an unfinished flow.
    pub async fn add_acks(
        &self,
        flow: FlowId,
        acks: &[(AckKind, String, String)],
    ) -> Result<Vec<AckId>> {
        write_step!(
            self,
            Durability::Full,
            add_acks(flow, steps::Acks::Legacy(acks))
        )
    }

    /// Claim the oldest `received` flow, or a `processing` flow whose lease
    /// has expired, moving it to `processing` under this instance's lease
    /// (attempts + 1). `FOR UPDATE SKIP LOCKED` on PostgreSQL.
    pub async fn claim_flow(&self, lease: Lease) -> Result<Option<ClaimedFlow>> {
        write_step!(self, Durability::Relaxed, claim_flow(lease))
    }

    /// Claim one given flow (used by `quai replay`): a terminal flow other
    /// than `duplicate` goes back to `processing`, its invoice rows replaced
    /// when it is processed again.
    pub async fn claim_for_replay(&self, flow: FlowId, lease: Lease) -> Result<ClaimedFlow> {
        write_step!(self, Durability::Relaxed, claim_for_replay(flow, lease))
    }

    /// Extend this instance's lease on a flow it is processing.
    pub async fn renew_lease(&self, flow: FlowId, lease: Lease) -> Result<()> {
        write_step!(self, Durability::Relaxed, renew_lease(flow, lease))
    }

    /// Store a batch of invoices of a claimed flow in one transaction,
    /// replacing rows with the same (flow, doc_index). Accepted invoices whose
    /// (seller, number, year) is already held by another document are turned
    /// into rejects with rule `REJ_UNI` (business reason DOUBLON).
    pub async fn store_invoices(
        &self,
        flow: FlowId,
        batch: &[NewInvoice],
    ) -> Result<Vec<StoredInvoice>> {
        dispatch_write!(self, b => b.store_invoices(flow, batch).await)
    }

    /// Finish a claimed flow: `processed` or `failed`. In the same
    /// transaction, delete invoice rows with doc_index >= `documents` (left
    /// from an earlier attempt), and create one pending acknowledgement per
    /// entry of `acks` (kind, destination, file name).
    pub async fn finish_flow(
        &self,
        flow: FlowId,
        outcome: &FlowOutcome,
        documents: i64,
        acks: &[(AckKind, String, String)],
    ) -> Result<Vec<AckId>> {
        write_step!(
            self,
            Durability::Full,
            finish_flow(flow, outcome, documents, steps::Acks::Legacy(acks))
        )
    }

    /// [`Spool::finish_flow`] with typed destinations: the acknowledgements
    /// owed (each with its pending delivery row) are created in the same
    /// transaction that finishes the flow.
    pub async fn finish_flow_owing(
        &self,
        flow: FlowId,
        outcome: &FlowOutcome,
        documents: i64,
        acks: &[NewAck],
    ) -> Result<Vec<AckId>> {
        write_step!(
            self,
            Durability::Full,
            finish_flow(flow, outcome, documents, steps::Acks::Typed(acks))
        )
    }

    /// Acknowledgements generated but not yet delivered (oldest first).
    pub async fn pending_acks(&self, limit: i64) -> Result<Vec<AckRow>> {
        self.pending_acks_shared(limit).await
    }

    /// Mark an acknowledgement delivered (its delivery `pending →
    /// delivered`; refused when it is not pending).
    pub async fn ack_delivered(&self, ack: AckId) -> Result<()> {
        write_step!(self, Durability::Full, ack_delivered(ack))
    }

    /// Record a failed delivery attempt (attempts + 1, last_error, the next
    /// attempt after [`retry_delay`]).
    pub async fn ack_failed(&self, ack: AckId, error: &str) -> Result<()> {
        write_step!(self, Durability::Full, ack_failed(ack, error))
    }

    /// Acknowledgements of a flow.
    pub async fn acks_of_flow(&self, flow: FlowId) -> Result<Vec<AckRow>> {
        self.acks_of_flow_shared(flow).await
    }

    /// Per-partner and total counts of flows by state and invoices by verdict.
    pub async fn status(&self) -> Result<StatusSummary> {
        self.status_shared().await
    }

    /// Flows matching a filter, newest first.
    pub async fn list_flows(&self, filter: &FlowFilter) -> Result<Vec<FlowRow>> {
        self.list_flows_shared(filter).await
    }

    /// One flow.
    pub async fn flow(&self, flow: FlowId) -> Result<FlowRow> {
        self.flow_shared(flow).await
    }

    /// The invoices of a flow, by doc_index.
    pub async fn invoices_of_flow(&self, flow: FlowId) -> Result<Vec<InvoiceRow>> {
        self.invoices_of_flow_shared(flow).await
    }

    /// The canonical EN 16931 invoice (JSON) of one stored document, as the
    /// pipeline serialised it (stored compressed; `None` for a document that
    /// could not be read).
    pub async fn canonical_invoice(&self, flow: FlowId, doc_index: i64) -> Result<Option<String>> {
        self.canonical_invoice_shared(flow, doc_index).await
    }

    /// [`Spool::canonical_invoice`] as a stream: its length (from the
    /// frame's header) and a reader decompressing it a piece at a time, so
    /// a large invoice is never held whole (the HTTP API streams it).
    pub async fn canonical_invoice_reader(
        &self,
        flow: FlowId,
        doc_index: i64,
    ) -> Result<Option<CanonicalJson>> {
        self.canonical_invoice_reader_shared(flow, doc_index).await
    }

    /// One page of a flow's invoices, by doc_index: at most `limit` rows
    /// whose doc_index is above `after` (all from the first when `None`).
    /// Acknowledgements of large flows are written page by page with this,
    /// so memory does not grow with the flow.
    pub async fn invoices_of_flow_page(
        &self,
        flow: FlowId,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<InvoiceRow>> {
        self.invoices_of_flow_page_shared(flow, after, limit).await
    }

    /// Give a flow this instance is processing back to the queue
    /// (`processing → received`, lease released), e.g. at shutdown. Rows
    /// already stored stay; they are replaced when the flow is processed again.
    pub async fn abandon_flow(&self, flow: FlowId, reason: &str) -> Result<()> {
        write_step!(self, Durability::Relaxed, abandon_flow(flow, reason))
    }

    /// Put a delivered acknowledgement back to pending (`quai resend-ack`;
    /// refused when it is still pending).
    pub async fn requeue_ack(&self, ack: AckId) -> Result<()> {
        write_step!(self, Durability::Full, requeue_ack(ack))
    }
}
