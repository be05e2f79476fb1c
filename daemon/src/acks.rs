//! Acknowledgements: what a finished flow is owed, and their delivery.
//!
//! Per flow: the integration report (JSON + XML), the CDAR lifecycle
//! statuses of its invoices (one CDV MULTI file per flow, see
//! docs/acknowledgements.md) when it held documents, and an EDIFACT CONTRL
//! when the flow is an EDIFACT interchange. Each goes back the way the flow
//! came: `dropzone` → the partner's local outbox, `sftp` → the partner's SFTP
//! outbox (`[partner.sftp] outbox`). Contents are rendered at delivery time
//! from the spool (and, for CONTRL, the stored raw interchange) with
//! timestamps taken from the flow, so rendering again gives the same bytes.
//!
//! The spool holds one pending acknowledgement row per report owed (created
//! in the same transaction that finished the flow). The deliverer renders
//! each from spool data into staged files under `$QUAI_HOME/tmp` — a page of
//! invoices at a time, so a flow of a million invoices is answered in
//! bounded memory — fsyncs them, renames them into the partner's outbox (or
//! uploads them, or sends them over AS2), and only then marks it delivered. A crash
//! between the write and the mark rewrites the same file under the same name:
//! a partner never sees a half-written or a second, different report.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use quai_mappings::ack::report::{
    FlowRejection, JsonReportWriter, ReportCounts, ReportDocument, ReportFlow, ReportHead,
    ReportReason, XmlReportWriter,
};
use quai_mappings::ack::{cdar, contrl};
use quai_mappings::edifact;
use quai_spool::{AckKind, AckRow, FlowRow, FlowState, InvoiceRow, Verdict};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::App;
use crate::reasons::is_fatal;
use crate::routing::{sibling_name, Destination};

/// Deliver pending acknowledgements until `stop`. An acknowledgement that
/// failed waits before its next attempt ([`RetryBackoff`]), so a partner
/// whose server is down or refusing is not called every few seconds.
pub async fn deliverer(daemon: Arc<App>, stop: CancellationToken) {
    let tmp = daemon.config().home.join("tmp");
    let removed = tokio::task::spawn_blocking(move || remove_stale_staging(&tmp))
        .await
        .unwrap_or(0);
    if removed > 0 {
        info!(
            removed,
            "removed acknowledgement files staged by a process that is gone"
        );
    }
    let mut backoff = RetryBackoff::default();
    loop {
        let notified = daemon.acks.notified();
        let delivered = deliver_due(&daemon, &mut backoff).await;
        if stop.is_cancelled() {
            break;
        }
        if delivered == 0 {
            tokio::select! {
                _ = stop.cancelled() => {
                    // One last pass so reports of flows finished during
                    // shutdown are not left for the next start.
                    deliver_due(&daemon, &mut backoff).await;
                    break;
                }
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

/// When each failed acknowledgement may be tried again: 5 s after its
/// first failure, doubling per attempt (the spool counts them) up to 15
/// minutes. Kept in memory: after a restart every pending one is tried once
/// at once.
#[derive(Default)]
pub struct RetryBackoff {
    not_before: std::collections::HashMap<i64, std::time::Instant>,
}

impl RetryBackoff {
    const FIRST: Duration = Duration::from_secs(5);
    const MAX: Duration = Duration::from_secs(15 * 60);

    /// The wait after the `attempts`-th failed attempt.
    pub fn delay(attempts: i32) -> Duration {
        let doublings = attempts.saturating_sub(1).clamp(0, 16) as u32;
        Self::FIRST.saturating_mul(1u32 << doublings).min(Self::MAX)
    }

    fn is_due(&self, ack: i64) -> bool {
        match self.not_before.get(&ack) {
            Some(t) => std::time::Instant::now() >= *t,
            None => true,
        }
    }

    fn failed(&mut self, ack: i64, attempts: i32) {
        self.not_before
            .insert(ack, std::time::Instant::now() + Self::delay(attempts));
    }

    fn delivered(&mut self, ack: i64) {
        self.not_before.remove(&ack);
    }
}

/// One pass over every pending acknowledgement (no backoff: `quai
/// resend-ack` and one-shot jobs); returns how many were delivered.
pub async fn deliver_pending(daemon: &App) -> usize {
    deliver_due(daemon, &mut RetryBackoff::default()).await
}

/// One pass over the pending acknowledgements that are due.
async fn deliver_due(daemon: &App, backoff: &mut RetryBackoff) -> usize {
    let pending = match daemon.spool.pending_acks(200).await {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "cannot list pending acknowledgements");
            return 0;
        }
    };
    let mut delivered = 0;
    let due: Vec<AckRow> = pending
        .into_iter()
        .filter(|a| backoff.is_due(a.id))
        .collect();
    for ack in due {
        match deliver(daemon, &ack).await {
            Ok(()) => {
                backoff.delivered(ack.id);
                if let Err(e) = daemon.spool.ack_delivered(ack.id).await {
                    warn!(ack = ack.id, error = %e, "acknowledgement written but not marked delivered");
                } else {
                    delivered += 1;
                    crate::metrics::ack_delivered(ack.kind.as_str());
                    info!(partner = %ack.partner, flow_id = ack.flow_id, stage = "acknowledged", kind = ack.kind.as_str(), file = %ack.file_name, "acknowledgement delivered");
                }
            }
            Err(e) => {
                let attempts = ack.attempts.saturating_add(1);
                let retry_in = RetryBackoff::delay(attempts);
                warn!(partner = %ack.partner, flow_id = ack.flow_id, ack = ack.id, attempts, retry_in_s = retry_in.as_secs(), error = %e, "acknowledgement delivery failed; will retry");
                crate::metrics::ack_failed(ack.kind.as_str());
                backoff.failed(ack.id, attempts);
                let _ = daemon.spool.ack_failed(ack.id, &e.to_string()).await;
            }
        }
    }
    delivered
}

/// Invoices are read from the spool this many at a time while an
/// acknowledgement is written, so memory does not grow with the flow.
const PAGE: i64 = 1000;

/// The rendered files of one acknowledgement, staged (written and fsynced)
/// in a private folder under `$QUAI_HOME/tmp`; the folder is removed when
/// this is dropped, so files not published are not left behind.
pub struct Staged {
    dir: PathBuf,
    /// (name the partner sees, staged path), in delivery order.
    pub files: Vec<(String, PathBuf)>,
}

impl Staged {
    fn new(daemon: &App) -> std::io::Result<Staged> {
        let root = daemon.config().home.join("tmp");
        std::fs::create_dir_all(&root)?;
        Ok(Staged {
            dir: tempfile_dir(&root)?,
            files: Vec::new(),
        })
    }

    /// A new staged file named `name` (buffered; see [`close`]).
    fn create(&mut self, name: &str) -> std::io::Result<BufWriter<File>> {
        let path = self.dir.join(name);
        let file = File::create(&path)?;
        self.files.push((name.to_string(), path));
        Ok(BufWriter::with_capacity(256 * 1024, file))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Flush and fsync a staged file.
fn close(w: BufWriter<File>) -> std::io::Result<()> {
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// Render the files of one acknowledgement from the spool (and, for
/// CONTRL, the stored interchange), streaming: a page of invoices at a time.
pub async fn render(daemon: &App, ack: &AckRow) -> anyhow::Result<Staged> {
    let mut staged = Staged::new(daemon)?;
    match ack.kind {
        AckKind::IntegrationReport => {
            ensure_contrl(daemon, ack).await?;
            write_report(daemon, ack, &mut staged).await?;
        }
        AckKind::Cdar => {
            let per_invoice = daemon
                .config()
                .partner(&ack.partner)
                .map(|p| p.cdar_per_invoice)
                .unwrap_or(false);
            write_cdar(daemon, ack, per_invoice, &mut staged).await?;
        }
        AckKind::Contrl => write_contrl(daemon, ack, &mut staged).await?,
        AckKind::Mdn => anyhow::bail!("MDNs are sent by the AS2 endpoint, not from the outbox"),
    }
    Ok(staged)
}

async fn deliver(daemon: &App, ack: &AckRow) -> anyhow::Result<()> {
    if ack.kind == AckKind::Mdn {
        return deliver_async_mdn(ack).await;
    }
    let staged = render(daemon, ack).await?;
    match Destination::of_row(ack) {
        Destination::SftpOutbox => {
            let config = daemon.config();
            let partner = config.partner(&ack.partner).ok_or_else(|| {
                anyhow::anyhow!("partner {} is no longer configured", ack.partner)
            })?;
            let src = crate::connect::sftp_source(&config, partner)?;
            for (name, local) in &staged.files {
                src.deliver(local, name).await?;
            }
            Ok(())
        }
        Destination::As2Message => crate::as2_out::deliver(daemon, ack, &staged.files).await,
        Destination::Mail => anyhow::bail!("acknowledgements are not sent by mail"),
        Destination::Outbox | Destination::As2Mdn { .. } => {
            let outbox = daemon.config().outbox_for(&ack.partner);
            tokio::task::spawn_blocking(move || publish(&outbox, &staged)).await??;
            Ok(())
        }
    }
}

/// Move staged files into `outbox` under their names: a rename, atomic
/// for whoever watches the outbox; across file systems a copy to a
/// dot-file, fsync, then rename. The folder is fsynced last.
fn publish(outbox: &Path, staged: &Staged) -> std::io::Result<()> {
    std::fs::create_dir_all(outbox)?;
    for (name, local) in &staged.files {
        let target = outbox.join(name);
        if std::fs::rename(local, &target).is_err() {
            let part = outbox.join(format!(".{name}.part"));
            {
                let mut from = File::open(local)?;
                let mut to = File::create(&part)?;
                std::io::copy(&mut from, &mut to)?;
                to.sync_all()?;
            }
            std::fs::rename(&part, &target)?;
        }
    }
    quai_connectors::landing::sync_dir(outbox)
}

/// Page through a flow's invoices, in doc_index order.
async fn each_page<F>(daemon: &App, flow_id: i64, mut f: F) -> anyhow::Result<()>
where
    F: FnMut(Vec<InvoiceRow>) -> anyhow::Result<()>,
{
    let mut after = None;
    loop {
        let page = daemon
            .spool
            .invoices_of_flow_page(flow_id, after, PAGE)
            .await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(last.doc_index);
        let full = page.len() as i64 == PAGE;
        f(page)?;
        if !full {
            return Ok(());
        }
    }
}

/// Persist an asynchronous AS2 MDN and owe its delivery in the spool: the
/// AS2 endpoint hands it over right after its flow is registered, and the
/// deliverer POSTs it to the partner's Receipt-Delivery-Option URL, retrying
/// on each pass until it is taken (attempts and errors tracked like any
/// acknowledgement).
pub async fn queue_async_mdn(
    daemon: &App,
    pending: quai_connectors::as2::PendingMdn,
) -> anyhow::Result<()> {
    let flow_id = pending
        .flow_id
        .ok_or_else(|| anyhow::anyhow!("asynchronous MDN without a registered flow"))?;
    let dir = daemon.config().home.join("as2-mdn").join("outbox");
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        pending.original_message_id.hash(&mut h);
        h.finish()
    };
    let name = format!("{flow_id}-{digest:016x}.json");
    let bytes = serde_json::to_vec(&pending)?;
    let d = dir.clone();
    let n = name.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        quai_connectors::landing::create_private_dir(&d)?;
        crate::text::write_atomically(&d, &n, &bytes)
    })
    .await??;
    let path = dir.join(&name).to_string_lossy().into_owned();
    daemon
        .spool
        .add_acks(flow_id, &[(AckKind::Mdn, pending.url.clone(), path)])
        .await?;
    daemon.acks.notify_one();
    Ok(())
}

/// POST a queued asynchronous MDN (its file is the ack's `file_name`).
async fn deliver_async_mdn(ack: &AckRow) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(&ack.file_name).await?;
    let pending: quai_connectors::as2::PendingMdn = serde_json::from_slice(&bytes)?;
    quai_connectors::as2::send_async_mdn(&pending).await?;
    Ok(())
}

/// A fresh private folder under `root` for staging uploads.
fn tempfile_dir(root: &Path) -> std::io::Result<std::path::PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = root.join(format!(
        "ack-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Remove the staging folders (`ack-<pid>-<n>`) of processes that no longer
/// run: a crash while rendering leaves them behind, and a report of a
/// million invoices is tens of megabytes. Folders of live processes (this
/// one, or another instance sharing the home) are kept. Returns how many
/// were removed.
pub fn remove_stale_staging(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("ack-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The stored bytes of a flow as a stream: gunzipped when the flow is a
/// gzip file (an interchange sent as `.edi.gz` is still an interchange),
/// as they are otherwise. The flow was read under its limits before, so
/// reading it again is bounded.
fn open_stored(path: &Path) -> std::io::Result<Box<dyn std::io::BufRead + Send>> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 2];
    let gz = file.read(&mut magic)? == 2 && magic == [0x1f, 0x8b];
    let file = File::open(path)?;
    Ok(if gz {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::new(file),
        )))
    } else {
        Box::new(std::io::BufReader::new(file))
    })
}

/// True when the stored bytes (gunzipped if need be) are an EDIFACT
/// interchange, as `quai_mappings::detect` tells formats apart.
pub fn looks_like_edifact(path: &Path) -> bool {
    use quai_mappings::detect::{self, Format};
    let mut head = Vec::with_capacity(detect::SNIFF_LEN);
    let read =
        open_stored(path).and_then(|r| r.take(detect::SNIFF_LEN as u64).read_to_end(&mut head));
    read.is_ok() && detect::sniff(&head) == Format::Edifact
}

/// When a finished flow is an EDIFACT interchange and owes no CONTRL yet,
/// add one (pending, same destination as its report).
pub async fn ensure_contrl(daemon: &App, report: &AckRow) -> anyhow::Result<()> {
    let flow = daemon.spool.flow(report.flow_id).await?;
    if !matches!(flow.state, FlowState::Processed | FlowState::Failed) {
        return Ok(());
    }
    let path = quai_connectors::landing::stored_path(&daemon.config().store, &flow.sha256);
    if !tokio::task::spawn_blocking(move || looks_like_edifact(&path)).await? {
        return Ok(());
    }
    let acks = daemon.spool.acks_of_flow(flow.id).await?;
    if acks.iter().any(|a| a.kind == AckKind::Contrl) {
        return Ok(());
    }
    daemon
        .spool
        .add_acks(
            flow.id,
            &[(
                AckKind::Contrl,
                report.destination.clone(),
                sibling_name(&report.file_name, "contrl.edi"),
            )],
        )
        .await?;
    daemon.acks.notify_one();
    Ok(())
}

/// The CDAR message of a flow without its statuses (one per invoice, see
/// [`cdar_status`]).
pub fn cdar_head(flow: &FlowRow) -> cdar::CdarMessage {
    cdar::CdarMessage {
        id: format!("quai-{}-cdv", flow.id),
        name: format!("{}-CDV", flow.original_name),
        issued_at: flow.updated_at,
        recipient: cdar::CdarParty {
            global_id: None,
            name: Some(flow.partner.clone()),
            role: "SE".into(),
        },
        statuses: Vec::new(),
    }
}

/// The lifecycle status of one stored invoice: 200 when accepted, 213 with
/// its fatal reasons (all reasons when none is fatal) when rejected.
pub fn cdar_status(flow: &FlowRow, i: &InvoiceRow) -> cdar::CdarStatus {
    let reasons = if i.verdict == Verdict::Rejected {
        let fatal: Vec<_> = i.reasons.iter().filter(|r| is_fatal(r)).collect();
        let chosen = if fatal.is_empty() {
            i.reasons.iter().collect()
        } else {
            fatal
        };
        let mut v: Vec<cdar::CdarReason> = chosen
            .into_iter()
            .map(|r| cdar::CdarReason {
                reason_code: cdar::reason_code_for(&r.rule).to_string(),
                rule: r.rule.clone(),
                term: r.term.clone(),
                message: r.message.clone(),
            })
            .collect();
        if v.is_empty() {
            v.push(cdar::CdarReason {
                reason_code: "REJ_COH".into(),
                rule: "REJECTED".into(),
                term: String::new(),
                message: "rejected".into(),
            });
        }
        v
    } else {
        Vec::new()
    };
    cdar::CdarStatus {
        invoice_number: i.number.clone().unwrap_or_else(|| i.entry.clone()),
        type_code: i.type_code.clone().unwrap_or_else(|| "380".into()),
        received_at: flow.received_at,
        issue_date: i.issue_date,
        seller_id: i.seller_id.clone(),
        reasons,
    }
}

/// The CDAR statuses of a processed flow: one file, or one per invoice
/// (`<name>.<flow>.cdar.<n>.xml`, each a CDAR message of its own).
async fn write_cdar(
    daemon: &App,
    ack: &AckRow,
    per_invoice: bool,
    staged: &mut Staged,
) -> anyhow::Result<()> {
    let flow = daemon.spool.flow(ack.flow_id).await?;
    anyhow::ensure!(
        flow.state == FlowState::Processed,
        "flow {} is {}: no invoice statuses",
        flow.id,
        flow.state.as_str()
    );
    let head = cdar_head(&flow);
    let expected = (flow.invoices_accepted + flow.invoices_rejected) as u64;
    let mut written = 0u64;
    if per_invoice {
        let stem = ack
            .file_name
            .strip_suffix(".xml")
            .unwrap_or(&ack.file_name)
            .to_string();
        each_page(daemon, flow.id, |page| {
            for inv in &page {
                written += 1;
                let one = cdar::CdarMessage {
                    id: format!("{}-{written}", head.id),
                    ..head.clone()
                };
                let out = staged.create(&format!("{stem}.{written}.xml"))?;
                let mut w = cdar::CdarWriter::start(out, &one, 1)?;
                w.status(&cdar_status(&flow, inv))?;
                close(w.finish()?)?;
            }
            Ok(())
        })
        .await?;
    } else {
        let out = staged.create(&ack.file_name)?;
        let mut w = cdar::CdarWriter::start(out, &head, expected)?;
        each_page(daemon, flow.id, |page| {
            for inv in &page {
                w.status(&cdar_status(&flow, inv))?;
                written += 1;
            }
            Ok(())
        })
        .await?;
        close(w.finish()?)?;
    }
    anyhow::ensure!(
        written == expected,
        "flow {}: {written} invoices stored, {expected} counted; statuses not sent",
        flow.id
    );
    Ok(())
}

/// The CONTRL of an EDIFACT flow, from its stored bytes (read again,
/// streaming) and the spool: a UCM per message, rejected when the message
/// could not be read or its invoice failed on syntax.
async fn write_contrl(daemon: &App, ack: &AckRow, staged: &mut Staged) -> anyhow::Result<()> {
    let flow = daemon.spool.flow(ack.flow_id).await?;
    let processed = flow.state == FlowState::Processed;
    // References (UNH 0062) of messages whose invoice failed on syntax:
    // the entry of such an invoice ends with `#<reference>`.
    let mut syntax_failed = std::collections::HashSet::new();
    if processed {
        each_page(daemon, flow.id, |page| {
            for i in page {
                let failed = i
                    .reasons
                    .iter()
                    .any(|r| is_fatal(r) && (r.rule == "SYNTAX" || r.rule.starts_with("EDIFACT")));
                if failed {
                    for (at, _) in i.entry.match_indices('#') {
                        syntax_failed.insert(i.entry[at + 1..].to_string());
                    }
                }
            }
            Ok(())
        })
        .await?;
    }
    let path = quai_connectors::landing::stored_path(&daemon.config().store, &flow.sha256);
    let out = staged.create(&ack.file_name)?;
    let flow_id = flow.id;
    let reference = format!("Q{}", flow.id);
    let prepared = flow.updated_at.naive_utc();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut ic = edifact::Interchange::new(open_stored(&path)?);
        let head = |header: Option<&edifact::InterchangeHeader>, interchange| {
            let original = header.cloned().ok_or_else(|| {
                anyhow::anyhow!(
                    "flow {flow_id}: no readable UNB segment, no CONTRL can be addressed"
                )
            })?;
            anyhow::Ok(contrl::Contrl {
                original,
                reference: reference.clone(),
                prepared,
                interchange,
                messages: Vec::new(),
            })
        };
        let writer = if processed {
            // The UNB is known once the first message has been read.
            let mut next = match ic.next() {
                Some(Ok(m)) => Some(m),
                _ => None,
            };
            let mut w =
                contrl::ContrlWriter::start(out, &head(ic.header(), contrl::Action::Accepted)?)?;
            while let Some(m) = next {
                let action = if m.result.is_err() || syntax_failed.contains(&m.reference) {
                    contrl::Action::Rejected {
                        code: contrl::error_code::UNSPECIFIED.into(),
                    }
                } else {
                    contrl::Action::Accepted
                };
                w.message(&contrl::MessageAck {
                    reference: m.reference,
                    message_type: m.message_type,
                    version: m.version,
                    action,
                })?;
                next = match ic.next() {
                    Some(Ok(m)) => Some(m),
                    _ => None,
                };
            }
            w
        } else {
            while let Some(Ok(_)) = ic.next() {}
            let count_wrong = ic
                .envelope_issues()
                .iter()
                .any(|i| i.kind == edifact::EnvelopeIssueKind::UnzCount);
            let code = if count_wrong {
                contrl::error_code::CONTROL_COUNT
            } else {
                contrl::error_code::UNSPECIFIED
            };
            contrl::ContrlWriter::start(
                out,
                &head(ic.header(), contrl::Action::Rejected { code: code.into() })?,
            )?
        };
        close(writer.finish()?)?;
        Ok(())
    })
    .await??;
    Ok(())
}

/// Everything of a finished flow's integration report but its documents.
pub fn report_head(flow: &FlowRow) -> anyhow::Result<ReportHead> {
    let status = match flow.state {
        FlowState::Processed => "processed",
        FlowState::Failed => "rejected",
        FlowState::Duplicate => "duplicate",
        FlowState::Received | FlowState::Processing => {
            anyhow::bail!("flow {} is not finished", flow.id)
        }
    };
    let (accepted, rejected) = if flow.state == FlowState::Processed {
        (flow.invoices_accepted, flow.invoices_rejected)
    } else {
        (0, 0)
    };
    let mut head = ReportHead::new(
        ReportFlow {
            id: flow.id,
            partner: flow.partner.clone(),
            file: flow.original_name.clone(),
            sha256: flow.sha256.clone(),
            size: flow.size,
            received_at: flow.received_at.to_rfc3339(),
            processed_at: flow.updated_at.to_rfc3339(),
        },
        status,
        ReportCounts {
            documents: accepted + rejected,
            accepted,
            rejected,
        },
    );
    if flow.state == FlowState::Failed {
        head.rejection = Some(FlowRejection {
            code: flow
                .failure_code
                .clone()
                .unwrap_or_else(|| "IRR_SYNTAX".to_string()),
            message: flow.failure_message.clone().unwrap_or_default(),
        });
    }
    head.duplicate_of = flow.duplicate_of;
    Ok(head)
}

/// One stored invoice as a document of the report.
pub fn report_document(i: InvoiceRow) -> ReportDocument {
    ReportDocument {
        index: i.doc_index,
        entry: i.entry,
        invoice_number: i.number,
        issue_date: i.issue_date.map(|d| d.to_string()),
        status: match i.verdict {
            Verdict::Accepted => "accepted".to_string(),
            Verdict::Rejected => "rejected".to_string(),
        },
        reasons: i
            .reasons
            .into_iter()
            .map(|r| ReportReason {
                rule: r.rule,
                term: r.term,
                severity: r.severity,
                message: r.message,
            })
            .collect(),
    }
}

/// The integration report of a flow, `<file>.xml` and `<file>.json`, written
/// a page of invoices at a time. The counts at the top come from the flow;
/// if the documents listed do not add up to them, nothing is sent.
async fn write_report(daemon: &App, ack: &AckRow, staged: &mut Staged) -> anyhow::Result<()> {
    let flow = daemon.spool.flow(ack.flow_id).await?;
    let head = report_head(&flow)?;
    let mut xml = XmlReportWriter::start(staged.create(&format!("{}.xml", ack.file_name))?, &head)?;
    let mut json =
        JsonReportWriter::start(staged.create(&format!("{}.json", ack.file_name))?, &head)?;
    let mut written = 0i64;
    if flow.state == FlowState::Processed {
        each_page(daemon, flow.id, |page| {
            for inv in page {
                let d = report_document(inv);
                xml.document(&d)?;
                json.document(&d)?;
                written += 1;
            }
            Ok(())
        })
        .await?;
    }
    close(xml.finish()?)?;
    close(json.finish()?)?;
    anyhow::ensure!(
        written == head.counts.documents,
        "flow {}: {written} invoices stored, {} counted; report not sent",
        flow.id,
        head.counts.documents
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_from_five_seconds_up_to_fifteen_minutes() {
        let secs: Vec<u64> = (0..=12).map(|a| RetryBackoff::delay(a).as_secs()).collect();
        assert_eq!(
            secs,
            vec![5, 5, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900, 900]
        );
        assert_eq!(RetryBackoff::delay(i32::MAX), Duration::from_secs(900));
    }

    #[test]
    fn staging_of_gone_processes_is_removed_and_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let gone = root.path().join("ack-4294967295-3");
        let mine = root.path().join(format!("ack-{}-7", std::process::id()));
        let other = root.path().join("reports");
        for d in [&gone, &mine, &other] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("f.xml"), b"x").unwrap();
        }
        assert_eq!(remove_stale_staging(root.path()), 1);
        assert!(!gone.exists());
        assert!(mine.join("f.xml").exists() && other.exists());
        assert_eq!(remove_stale_staging(&root.path().join("missing")), 0);
    }

    #[test]
    fn a_failed_ack_waits_and_a_delivered_one_is_forgotten() {
        let mut b = RetryBackoff::default();
        assert!(b.is_due(7));
        b.failed(7, 1);
        assert!(!b.is_due(7));
        assert!(b.is_due(8));
        b.delivered(7);
        assert!(b.is_due(7));
    }
}
