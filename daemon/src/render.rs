//! Rendering a routed invoice for its recipient (issue 15), at delivery.
//!
//! The form follows the delivery's file name (fixed when the delivery was
//! owed, `routing::invoice_file_name`): `.ubl.xml` and `.cii.xml` are the
//! canonical invoice the spool holds written out by
//! `quai_mappings::convert` (streaming into the staged file), anything
//! else is the supplier's own bytes of that document, read again from the
//! stored flow (`quai_mappings::flow::copy_document`). Both are the same
//! bytes every time, so a send repeated after a crash offers the recipient
//! the same file under the same name, which every channel takes as already
//! delivered. Files are staged (written and fsynced) under
//! `$QUAI_HOME/tmp` like acknowledgements (`acks::Staged`).

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use quai_mappings::convert::{self, Syntax};
use quai_mappings::model::Invoice;

use crate::acks::{self, Staged};
use crate::app::App;
use crate::routing::InvoiceForm;

/// The form a delivery's file name says.
pub fn form_of(file_name: &str) -> InvoiceForm {
    if file_name.ends_with(".ubl.xml") {
        InvoiceForm::Ubl
    } else if file_name.ends_with(".cii.xml") {
        InvoiceForm::Cii
    } else {
        InvoiceForm::Original
    }
}

/// The media type of a delivered invoice, by its name.
pub fn media_type(file_name: &str) -> &'static str {
    let lower = file_name.to_ascii_lowercase();
    if lower.ends_with(".pdf") {
        "application/pdf"
    } else if lower.ends_with(".edi") || lower.ends_with(".edifact") {
        "application/EDIFACT"
    } else {
        "application/xml"
    }
}

/// One invoice staged for its recipient.
pub struct StagedInvoice {
    /// Keeps the staging folder until the send is over.
    _staged: Staged,
    pub path: PathBuf,
}

/// Render invoice `doc_index` of flow `flow_id` as `file_name` says, into
/// a staged file of its own (fsynced).
pub async fn render_invoice(
    app: &App,
    flow_id: i64,
    doc_index: i64,
    file_name: &str,
) -> anyhow::Result<StagedInvoice> {
    let mut staged = Staged::new(app)?;
    let out = staged.create(file_name)?;
    let path = staged
        .files
        .last()
        .map(|(_, p)| p.clone())
        .expect("just created");
    write_invoice(app, flow_id, doc_index, file_name, out, true).await?;
    Ok(StagedInvoice {
        _staged: staged,
        path,
    })
}

/// Render invoice `doc_index` of flow `flow_id` as `file_name` says into
/// `out`, flushed, and fsynced when `durable` (a batch's staged files are
/// not: the outbox makes its own copies durable, and a crash renders
/// them again).
pub async fn write_invoice(
    app: &App,
    flow_id: i64,
    doc_index: i64,
    file_name: &str,
    out: BufWriter<File>,
    durable: bool,
) -> anyhow::Result<()> {
    let finish = move |out: BufWriter<File>| -> std::io::Result<()> {
        if durable {
            acks::close(out)
        } else {
            out.into_inner().map_err(|e| e.into_error()).map(drop)
        }
    };
    match form_of(file_name) {
        form @ (InvoiceForm::Ubl | InvoiceForm::Cii) => {
            let syntax = if form == InvoiceForm::Ubl {
                Syntax::Ubl
            } else {
                Syntax::Cii
            };
            let json = app
                .spool
                .canonical_invoice_reader(flow_id, doc_index)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!("invoice {flow_id}/{doc_index} has no canonical form")
                })?;
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let invoice: Invoice =
                    serde_json::from_reader(std::io::BufReader::new(json.reader))?;
                let out = convert::write(&invoice, syntax, out)?;
                finish(out)?;
                Ok(())
            })
            .await??;
        }
        InvoiceForm::Original => {
            let flow = app.spool.flow(flow_id).await?;
            let row = app
                .spool
                .invoices_of_flow_page(flow_id, Some(doc_index - 1), 1)
                .await?
                .into_iter()
                .find(|i| i.doc_index == doc_index)
                .ok_or_else(|| {
                    anyhow::anyhow!("invoice {flow_id}/{doc_index} is not in the spool")
                })?;
            let occurrence = app
                .spool
                .entry_ordinal(flow_id, doc_index, &row.entry)
                .await?;
            let config = app.config();
            let stored = quai_connectors::landing::stored_path(&config.store, &flow.sha256);
            let limits = crate::pipeline::flow_limits(config.limits_for(&flow.partner));
            let name = flow.original_name.clone();
            let entry = row.entry.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let mut out = out;
                let found = quai_mappings::flow::copy_document(
                    &stored,
                    &name,
                    &limits,
                    &entry,
                    occurrence.max(0) as u64,
                    &mut out,
                )?;
                anyhow::ensure!(
                    found,
                    "document {entry:?} is no longer in the stored flow {}",
                    stored.display()
                );
                finish(out)?;
                Ok(())
            })
            .await??;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_types_by_name() {
        assert_eq!(form_of("S_N_1-0.ubl.xml"), InvoiceForm::Ubl);
        assert_eq!(form_of("S_N_1-0.cii.xml"), InvoiceForm::Cii);
        assert_eq!(form_of("S_N_1-0.xml"), InvoiceForm::Original);
        assert_eq!(media_type("S_N_1-0.PDF"), "application/pdf");
        assert_eq!(media_type("S_N_1-0.cii.xml"), "application/xml");
    }
}
