//! Acknowledgements: rendering what a finished flow is owed.
//!
//! Per flow: the integration report (JSON + XML), the CDAR lifecycle
//! statuses of its invoices (one CDV MULTI file per flow, see
//! docs/acknowledgements.md) when it held documents, and an EDIFACT CONTRL
//! when the flow is an EDIFACT interchange. Contents are rendered from the
//! spool (and, for CONTRL, the stored raw interchange) with timestamps taken
//! from the flow, so rendering again gives the same bytes: a resend after a
//! crash publishes the same file under the same name.
//!
//! [`render`] writes an acknowledgement's files into a private staging
//! folder under `$QUAI_HOME/tmp`, a page of invoices at a time (a flow of a
//! million invoices is answered in bounded memory), and fsyncs them. Sending
//! them is the deliverer's (`deliverer.rs`); where they go, the routing
//! rule's (`routing.rs`). Asynchronous AS2 MDNs are queued here
//! ([`queue_async_mdn`]) as their own staged file.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use quai_mappings::ack::report::{
    FlowRejection, JsonReportWriter, ReportCounts, ReportDocument, ReportFlow, ReportHead,
    ReportReason, XmlReportWriter,
};
use quai_mappings::ack::{cdar, contrl};
use quai_mappings::edifact;
use quai_spool::{AckKind, AckRow, FlowRow, FlowState, InvoiceRow, Verdict};

use crate::app::App;
use crate::language::Language;
use crate::partner_text;
use crate::reasons::is_fatal;

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
    pub fn new(daemon: &App) -> std::io::Result<Staged> {
        let root = daemon.config().home.join("tmp");
        std::fs::create_dir_all(&root)?;
        Ok(Staged {
            dir: tempfile_dir(&root)?,
            files: Vec::new(),
        })
    }

    /// A new staged file for `name`, staged as `n-name` (a batch may
    /// hold one name twice, for two destinations): its writer and path.
    pub fn create_numbered(
        &mut self,
        n: usize,
        name: &str,
    ) -> std::io::Result<(BufWriter<File>, PathBuf)> {
        let path = self.dir.join(format!("{n}-{name}"));
        let file = File::create(&path)?;
        self.files.push((name.to_string(), path.clone()));
        Ok((BufWriter::with_capacity(64 * 1024, file), path))
    }

    /// A new staged file named `name` (buffered; see [`close`]).
    pub fn create(&mut self, name: &str) -> std::io::Result<BufWriter<File>> {
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
pub fn close(w: BufWriter<File>) -> std::io::Result<()> {
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// Render the CDAR relay of one lifecycle status (a delivery row of item
/// `status`) for `to` under `file_name`: the status from the spool, the
/// invoice it is about, the parties from the configuration. Dated by the
/// status, so rendering again gives the same bytes.
pub async fn render_status(
    daemon: &App,
    status: quai_spool::StatusId,
    flow: i64,
    doc: i64,
    to: &str,
    file_name: &str,
) -> anyhow::Result<Staged> {
    let xml = status_xml(daemon, status, flow, doc, to, file_name).await?;
    let mut staged = Staged::new(daemon)?;
    let mut w = staged.create(file_name)?;
    std::io::Write::write_all(&mut w, xml.as_bytes())?;
    close(w)?;
    Ok(staged)
}

/// The CDAR relay of one lifecycle status (see [`render_status`]), as text.
pub async fn status_xml(
    daemon: &App,
    status: quai_spool::StatusId,
    flow: i64,
    doc: i64,
    to: &str,
    file_name: &str,
) -> anyhow::Result<String> {
    // The relay group this row is one of (itself alone, when none).
    let mut members: Vec<(quai_spool::StatusId, i64)> = daemon
        .spool
        .status_relays_of_flow(flow, to)
        .await?
        .into_iter()
        .filter(|r| r.file_name == file_name)
        .map(|r| (r.status, r.doc_index))
        .collect();
    if !members.iter().any(|&(s, _)| s == status) {
        members.push((status, doc));
    }
    members.sort_by_key(|&(s, d)| (d, s));
    let mut rows = Vec::with_capacity(members.len());
    for (status, doc) in members {
        let st = daemon.spool.status_row(status).await?;
        let inv = daemon
            .spool
            .invoices_of_flow_page(flow, Some(doc - 1), 1)
            .await?
            .into_iter()
            .find(|i| i.doc_index == doc)
            .ok_or_else(|| anyhow::anyhow!("invoice {flow}/{doc} is gone"))?;
        rows.push((status, st, inv));
    }
    let members: Vec<_> = rows.iter().map(|(s, st, inv)| (*s, st, inv)).collect();
    Ok(status_relays_xml(&daemon.config(), &members, to, file_name))
}

/// The CDAR relay of status `status` (`st`, about invoice `inv`) for `to`
/// under `file_name` (pure: the batched path reads the rows in bulk).
pub fn status_relay_xml(
    config: &crate::config::Config,
    status: quai_spool::StatusId,
    st: &quai_spool::StatusRow,
    inv: &InvoiceRow,
    to: &str,
    file_name: &str,
) -> String {
    status_relays_xml(config, &[(status, st, inv)], to, file_name)
}

/// The CDAR relay of several statuses of one code (a relay group: the
/// platform's 201 or 203 of the invoices of one flow delivered together,
/// `deliver_batch`), one `ram:ReferenceReferencedDocument` each, in the
/// order given; the document's id, date and parties are the first one's.
/// `members` is not empty.
pub fn status_relays_xml(
    config: &crate::config::Config,
    members: &[(quai_spool::StatusId, &quai_spool::StatusRow, &InvoiceRow)],
    to: &str,
    file_name: &str,
) -> String {
    use quai_spool::Issuer;
    let Some(&(status, st, inv)) = members.first() else {
        return String::new();
    };
    let seller = inv.seller_id.clone();
    let seller_party = |name: &str| cdar::CdarParty {
        global_id: seller
            .as_deref()
            .and_then(cdar::siren_of)
            .map(|s| ("0002".to_owned(), s)),
        name: Some(name.to_owned()),
        role: "SE".into(),
    };
    // A buyer's global id: its first electronic address (scheme:id).
    let buyer_party = |partner: &str| cdar::CdarParty {
        global_id: Some(
            config
                .partner(partner)
                .and_then(|p| p.addresses.first())
                .and_then(|a| a.split_once(':'))
                .map(|(scheme, id)| (scheme.to_owned(), id.to_owned()))
                .unwrap_or_else(|| ("0225".to_owned(), partner.to_owned())),
        ),
        name: Some(partner.to_owned()),
        role: "BY".into(),
    };
    let from = st.from_partner.clone().unwrap_or_default();
    let (issuer, recipient) = match st.issuer {
        Issuer::Supplier => (seller_party(&from), buyer_party(to)),
        Issuer::Recipient => (buyer_party(&from), seller_party(to)),
        Issuer::Platform => (
            cdar::CdarParty {
                global_id: None,
                name: None,
                role: "WK".into(),
            },
            seller_party(to),
        ),
    };
    let relay = cdar::CdarRelay {
        id: format!("quai-status-{status}"),
        name: file_name.to_owned(),
        issued_at: st.at,
        issuer,
        recipient,
        status: relayed_status(st, inv),
    };
    let statuses: Vec<cdar::RelayedStatus> = members
        .iter()
        .map(|(_, st, inv)| relayed_status(st, inv))
        .collect();
    cdar::relays_xml(&relay, &statuses)
}

/// One status as a CDAR relay carries it.
fn relayed_status(st: &quai_spool::StatusRow, inv: &InvoiceRow) -> cdar::RelayedStatus {
    cdar::RelayedStatus {
        invoice_number: inv.number.clone().unwrap_or_default(),
        type_code: inv.type_code.clone().unwrap_or_else(|| "380".into()),
        issue_date: inv.issue_date.unwrap_or_else(|| st.at.date_naive()),
        seller_id: inv.seller_id.clone(),
        code: st.code.code(),
        label: st.code.label().to_owned(),
        at: st.at,
        reasons: st
            .reasons
            .iter()
            .map(|r| (r.code.clone(), r.text.clone()))
            .collect(),
        amounts: st
            .amounts
            .iter()
            .map(|a| {
                (
                    a.kind.clone(),
                    a.amount.to_string(),
                    a.currency.clone(),
                    a.vat_rate.map(|r| r.to_string()),
                )
            })
            .collect(),
    }
}

/// Render the files of one acknowledgement from the spool (and, for
/// CONTRL, the stored interchange), streaming: a page of invoices at a time.
pub async fn render(daemon: &App, ack: &AckRow) -> anyhow::Result<Staged> {
    let mut staged = Staged::new(daemon)?;
    match ack.kind {
        AckKind::IntegrationReport => write_report(daemon, ack, &mut staged).await?,
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
pub fn cdar_status(flow: &FlowRow, i: &InvoiceRow, lang: Language) -> cdar::CdarStatus {
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
                message: partner_text::reason_message(lang, &r.rule, &r.message).into_owned(),
            })
            .collect();
        if v.is_empty() {
            v.push(cdar::CdarReason {
                reason_code: "REJ_COH".into(),
                rule: "REJECTED".into(),
                term: String::new(),
                message: partner_text::rejected(lang).into(),
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
    let lang = daemon.config().language_of(&flow.partner);
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
                w.status(&cdar_status(&flow, inv, lang))?;
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
                w.status(&cdar_status(&flow, inv, lang))?;
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
        let mut ic = edifact::Interchange::new(crate::stored::open(&path)?);
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
pub fn report_head(flow: &FlowRow, lang: Language) -> anyhow::Result<ReportHead> {
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
            message: partner_text::refusal_message(
                lang,
                flow.failure_code.as_deref().unwrap_or("IRR_SYNTAX"),
                flow.failure_message.as_deref().unwrap_or_default(),
            )
            .into_owned(),
        });
    }
    head.duplicate_of = flow.duplicate_of;
    Ok(head)
}

/// One stored invoice as a document of the report.
pub fn report_document(i: InvoiceRow, lang: Language) -> ReportDocument {
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
            .map(|r| {
                let message = partner_text::reason_message(lang, &r.rule, &r.message).into_owned();
                ReportReason {
                    rule: r.rule,
                    term: r.term,
                    severity: r.severity,
                    message,
                }
            })
            .collect(),
    }
}

/// The integration report of a flow, `<file>.xml` and `<file>.json`, written
/// a page of invoices at a time. The counts at the top come from the flow;
/// if the documents listed do not add up to them, nothing is sent.
async fn write_report(daemon: &App, ack: &AckRow, staged: &mut Staged) -> anyhow::Result<()> {
    let flow = daemon.spool.flow(ack.flow_id).await?;
    let lang = daemon.config().language_of(&flow.partner);
    let head = report_head(&flow, lang)?;
    let mut xml = XmlReportWriter::start(staged.create(&format!("{}.xml", ack.file_name))?, &head)?;
    let mut json =
        JsonReportWriter::start(staged.create(&format!("{}.json", ack.file_name))?, &head)?;
    let mut written = 0i64;
    if flow.state == FlowState::Processed {
        each_page(daemon, flow.id, |page| {
            for inv in page {
                let d = report_document(inv, lang);
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
}
