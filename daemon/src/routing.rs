//! The one routing rule: which answers a flow is owed, what they are named,
//! and where they go.
//!
//! Every answer goes back the way its flow came (docs/acknowledgements.md):
//! a flow taken from a partner's SFTP server is answered in its SFTP outbox;
//! an AS2 flow of a partner with `[partner.as2] url` (and quai an `[as2]`
//! identity) is answered over AS2; drop-zone, CLI and other AS2 flows in the
//! partner's local outbox; a flow deposited through the partner API
//! (`/v1/flows`) is answered there, one acknowledgement per flow
//! (`Destination::Api`: readable with `GET /v1/flows/{flowId}` and
//! announced to the partner's webhooks, never written to an outbox).
//! An asynchronous MDN goes to the URL its sender
//! asked for, when the configuration allows it. Intake (duplicates) and the
//! pipeline (finished flows) ask [`destination_for`]; the spool stores the
//! typed [`Destination`] (kind and target columns) and the deliverer reads
//! it back from there, never comparing names.
//!
//! Invoices routed to a recipient (the exchange, issue 15) go the
//! recipient's own way ([`invoice_destination`]): as a flow `In` of the
//! partner API when the API is its only channel ([`api_only`]), over AS2
//! when it has a
//! `[partner.as2] url` (and quai an `[as2]` identity), else to its SFTP
//! outbox when `[partner.sftp] outbox` is set, else to its local outbox;
//! in the form its `syntax` asks for ([`invoice_form`]) and under the name
//! [`invoice_file_name`] gives.

use quai_mappings::flow::FlowEnd;
pub use quai_spool::Destination;
use quai_spool::{AckKind, NewAck, Origin};

use crate::config::{Config, RecipientSyntax};

/// Does this partner take its acknowledgements as outbound AS2 messages?
/// Yes when quai has an `[as2]` identity and the partner an AS2 `url`.
pub fn sends_over_as2(config: &Config, partner: &str) -> bool {
    config.as2.is_some()
        && config
            .partner(partner)
            .and_then(|p| p.as2.as_ref())
            .is_some_and(|a| a.url.is_some())
}

/// Is `partner` reached only through the partner API? Yes when the API is
/// served (`[http] listen`) and the partner has no other way to be
/// delivered to: the partner-root drop zones are off (`[dropzones]
/// enabled = false`), and it has no `[partner.dropzone]` inbox or outbox,
/// no `[partner.sftp]` and no `[partner.as2]`. Invoices routed to it and
/// statuses relayed to it then become its flows `In` (`Destination::Api`,
/// [`crate::outbound_api`]), never files in an outbox.
pub fn api_only(config: &Config, partner: &str) -> bool {
    let Some(p) = config.partner(partner) else {
        return false;
    };
    config.http_listen.is_some()
        && config.inbound_root.is_none()
        && p.inbox.is_none()
        && p.outbox.is_none()
        && p.sftp.is_none()
        && p.as2.is_none()
}

/// Where the answers to a flow of `partner` that came by `origin` go.
pub fn destination_for(config: &Config, partner: &str, origin: Origin) -> Destination {
    let partner = partner.to_string();
    match origin {
        Origin::Sftp => Destination::SftpOutbox { partner },
        Origin::As2 if sends_over_as2(config, &partner) => Destination::As2 { partner },
        Origin::Dropzone | Origin::Cli | Origin::As2 => Destination::LocalOutbox { partner },
        // Deposited through the partner API: answered there (readable with
        // `GET /v1/flows/{flowId}`, announced by webhook), never in an outbox.
        Origin::Api => Destination::Api { partner },
    }
}

/// One acknowledgement owed, in the spool's registration form (kind,
/// channel name, file name): the form `Spool::register_flow_with_acks`
/// takes; the channel name is the destination's (`Destination::legacy_name`).
pub type Owed = (AckKind, String, String);

/// The integration report owed by a flow registered as a duplicate.
pub fn owed_by_duplicate(
    config: &Config,
    partner: &str,
    origin: Origin,
    original_name: &str,
    flow_id: i64,
) -> Vec<Owed> {
    vec![(
        AckKind::IntegrationReport,
        destination_for(config, partner, origin)
            .legacy_name()
            .to_string(),
        report_file_name(original_name, flow_id),
    )]
}

/// The integration report owed by an entry refused before landing (a
/// link, a FIFO...), registered as a failed flow without content.
pub fn owed_by_refused(
    config: &Config,
    partner: &str,
    origin: Origin,
    original_name: &str,
    flow_id: i64,
) -> Vec<Owed> {
    owed_by_duplicate(config, partner, origin, original_name, flow_id)
}

/// The acknowledgements a finished flow is owed, created in the same
/// transaction that finishes it: the integration report always, CDAR
/// statuses when the flow held documents, a CONTRL when its stored bytes
/// are an EDIFACT interchange (`edifact`, see `stored::is_edifact`).
pub fn owed_by_finished(
    config: &Config,
    partner: &str,
    origin: Origin,
    original_name: &str,
    flow_id: i64,
    end: &FlowEnd,
    edifact: bool,
) -> Vec<NewAck> {
    let report_name = report_file_name(original_name, flow_id);
    let to = destination_for(config, partner, origin);
    let mut acks = vec![NewAck {
        kind: AckKind::IntegrationReport,
        to: to.clone(),
        file_name: report_name.clone(),
    }];
    if matches!(to, Destination::Api { .. }) {
        // The API's acknowledgement is one per flow (its status and
        // details carry the report and the invoices' statuses).
        return acks;
    }
    if let FlowEnd::Done(summary) = end {
        if summary.documents > 0 {
            acks.push(NewAck {
                kind: AckKind::Cdar,
                to: to.clone(),
                file_name: sibling_name(&report_name, "cdar.xml"),
            });
        }
    }
    if edifact && matches!(end, FlowEnd::Done(_) | FlowEnd::Rejected(_)) {
        acks.push(NewAck {
            kind: AckKind::Contrl,
            to,
            file_name: sibling_name(&report_name, "contrl.edi"),
        });
    }
    acks
}

/// Does this configuration route invoices? Yes when it has a directory:
/// a `[directory] file`, or a partner with `addresses`. Without one quai
/// is an intake only, as before the exchange: accepted invoices stay in
/// the spool, none is rejected `REJ_ADR`.
pub fn routes_invoices(config: &Config) -> bool {
    config.directory_file.is_some() || config.partners.iter().any(|p| !p.addresses.is_empty())
}

/// Where invoices routed to `recipient` are delivered (see the module doc).
pub fn invoice_destination(config: &Config, recipient: &str) -> Destination {
    let partner = recipient.to_string();
    if api_only(config, recipient) {
        return Destination::Api { partner };
    }
    if sends_over_as2(config, recipient) {
        return Destination::As2 { partner };
    }
    let sftp_outbox = config
        .partner(recipient)
        .and_then(|p| p.sftp.as_ref())
        .is_some_and(|s| s.outbox.is_some());
    if sftp_outbox {
        Destination::SftpOutbox { partner }
    } else {
        Destination::LocalOutbox { partner }
    }
}

/// The form an invoice is delivered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceForm {
    /// The supplier's bytes of the document.
    Original,
    Ubl,
    Cii,
}

impl InvoiceForm {
    /// The file name's extension (after the stem), for an original: the
    /// entry's own extension (`xml` when it has none).
    pub fn extension(self, entry: &str) -> String {
        match self {
            InvoiceForm::Ubl => "ubl.xml".to_owned(),
            InvoiceForm::Cii => "cii.xml".to_owned(),
            InvoiceForm::Original => {
                let base = entry.rsplit('/').next().unwrap_or(entry);
                match base.rsplit_once('.') {
                    Some((stem, ext))
                        if !stem.is_empty()
                            && !ext.is_empty()
                            && ext.len() <= 8
                            && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
                    {
                        ext.to_ascii_lowercase()
                    }
                    _ => "xml".to_owned(),
                }
            }
        }
    }
}

/// The form `recipient` receives an invoice read from `source_syntax` in:
/// its `[[partner]] syntax`. One message of an EDIFACT interchange has no
/// bytes of its own (the interchange holds other invoices, perhaps for
/// other recipients), so an `original` recipient gets it as UBL.
pub fn invoice_form(config: &Config, recipient: &str, source_syntax: Option<&str>) -> InvoiceForm {
    let wanted = config
        .partner(recipient)
        .map(|p| p.syntax)
        .unwrap_or_default();
    match wanted {
        RecipientSyntax::Ubl => InvoiceForm::Ubl,
        RecipientSyntax::Cii => InvoiceForm::Cii,
        RecipientSyntax::Original if source_syntax == Some("edifact") => InvoiceForm::Ubl,
        RecipientSyntax::Original => InvoiceForm::Original,
    }
}

/// Longest seller id or invoice number kept in a delivered invoice's name.
const MAX_NAME_PART: usize = 80;

/// `<seller id>_<invoice number>_<flow id>-<document index>.<ext>`, each
/// part made safe as [`report_file_name`] does (a missing part is
/// `unknown`).
pub fn invoice_file_name(
    seller_id: Option<&str>,
    number: Option<&str>,
    flow_id: i64,
    doc_index: i64,
    ext: &str,
) -> String {
    let part = |s: Option<&str>| {
        let safe = safe_part(s.unwrap_or(""), MAX_NAME_PART);
        if safe.is_empty() {
            "unknown".to_owned()
        } else {
            safe
        }
    };
    format!(
        "{}_{}_{flow_id}-{doc_index}.{ext}",
        part(seller_id),
        part(number)
    )
}

/// ASCII letters, digits, `.`, `-`, `_` only (others become `_`), no
/// leading dot, at most `max` bytes.
fn safe_part(s: &str, max: usize) -> String {
    let safe: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    // ASCII only by now: any byte index is a char boundary.
    safe[..safe.len().min(max)].to_owned()
}

/// Longest part of the original name kept in a report's name: the longest
/// sibling (`<name>.<flow id>.report.json`, `.contrl.edi`) stays well
/// within the 255 bytes of a file name.
const MAX_REPORT_STEM: usize = 200;

/// `<original name>.<flow id>.report` stem, safe as a file name: ASCII
/// letters, digits, `.`, `-`, `_` only, never starting with a dot (a name
/// made only of dots becomes `unnamed`), never longer than a file system
/// takes.
pub fn report_file_name(original: &str, flow_id: i64) -> String {
    let safe = safe_part(original, MAX_REPORT_STEM);
    let safe = if safe.is_empty() { "unnamed" } else { &safe };
    format!("{safe}.{flow_id}.report")
}

/// Where a lifecycle status relayed to `partner` goes (it answers no flow
/// of that partner's): a flow `In` when the API is its only channel
/// ([`api_only`]), over AS2 when the partner takes AS2, to its SFTP
/// outbox when it has one, else its local outbox.
pub fn relay_destination(config: &Config, partner: &str) -> Destination {
    let partner_cfg = config.partner(partner);
    let partner = partner.to_string();
    if api_only(config, &partner) {
        Destination::Api { partner }
    } else if sends_over_as2(config, &partner) {
        Destination::As2 { partner }
    } else if partner_cfg
        .and_then(|p| p.sftp.as_ref())
        .is_some_and(|s| s.outbox.is_some())
    {
        Destination::SftpOutbox { partner }
    } else {
        Destination::LocalOutbox { partner }
    }
}

/// The name of a relayed status's CDAR file:
/// `<invoice number>.<flow id>-<document index>.<code>.<status flow id>.cdar.xml`
/// (status flow 0 for quai's own statuses), safe as a file name (as
/// [`report_file_name`]).
pub fn status_file_name(number: &str, flow: i64, doc: i64, code: &str, from_flow: i64) -> String {
    let stem = report_file_name(number, flow);
    let stem = stem
        .strip_suffix(&format!(".{flow}.report"))
        .unwrap_or(&stem);
    format!("{stem}.{flow}-{doc}.{code}.{from_flow}.cdar.xml")
}

/// `<name>.<id>.report` → `<name>.<id>.<ext>`.
pub fn sibling_name(report_name: &str, ext: &str) -> String {
    let stem = report_name.strip_suffix(".report").unwrap_or(report_name);
    format!("{stem}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CONFIG: &str = "[as2]\nas2_id = \"Q\"\ncertificate = \"q.crt\"\nkey = \"q.key\"\n\
        [[partner]]\nid = \"acme\"\n[partner.as2]\nas2_id = \"A\"\nurl = \"http://h/as2\"\nmdn = \"unsigned\"\n\
        [[partner]]\nid = \"b\"\n[partner.as2]\nas2_id = \"B\"\n";

    #[test]
    fn only_partners_with_a_url_and_an_identity() {
        let c = Config::parse(CONFIG, Path::new("/q/c.toml")).unwrap();
        assert!(sends_over_as2(&c, "acme"));
        assert!(!sends_over_as2(&c, "b"));
        assert!(!sends_over_as2(&c, "nobody"));
    }

    #[test]
    fn answers_go_back_the_way_the_flow_came() {
        let c = Config::parse(CONFIG, Path::new("/q/c.toml")).unwrap();
        let acme = || "acme".to_string();
        assert_eq!(
            destination_for(&c, "acme", Origin::As2),
            Destination::As2 { partner: acme() }
        );
        assert_eq!(
            destination_for(&c, "b", Origin::As2),
            Destination::LocalOutbox {
                partner: "b".into()
            }
        );
        assert_eq!(
            destination_for(&c, "acme", Origin::Dropzone),
            Destination::LocalOutbox { partner: acme() }
        );
        assert_eq!(
            destination_for(&c, "acme", Origin::Sftp),
            Destination::SftpOutbox { partner: acme() }
        );
        assert_eq!(
            destination_for(&c, "acme", Origin::Cli),
            Destination::LocalOutbox { partner: acme() }
        );
    }

    #[test]
    fn a_duplicate_as2_flow_is_answered_over_as2() {
        // The defect of issue 13: duplicates were answered in the local outbox.
        let c = Config::parse(CONFIG, Path::new("/q/c.toml")).unwrap();
        let owed = owed_by_duplicate(&c, "acme", Origin::As2, "inv.xml", 7);
        assert_eq!(
            owed,
            vec![(
                AckKind::IntegrationReport,
                "as2".to_string(),
                "inv.xml.7.report".to_string()
            )]
        );
        let owed = owed_by_duplicate(&c, "b", Origin::As2, "inv.xml", 8);
        assert_eq!(owed[0].1, "dropzone");
    }

    #[test]
    fn invoices_go_the_recipients_way() {
        let c = Config::parse(
            &format!("{CONFIG}[[partner]]\nid = \"s\"\nsyntax = \"cii\"\n[partner.sftp]\nurl = \"sftp://u@h/in\"\noutbox = \"out\"\n"),
            Path::new("/q/c.toml"),
        )
        .unwrap();
        assert_eq!(
            invoice_destination(&c, "acme"),
            Destination::As2 {
                partner: "acme".into()
            }
        );
        assert_eq!(
            invoice_destination(&c, "s"),
            Destination::SftpOutbox {
                partner: "s".into()
            }
        );
        assert_eq!(
            invoice_destination(&c, "b"),
            Destination::LocalOutbox {
                partner: "b".into()
            }
        );
        assert_eq!(invoice_form(&c, "s", Some("ubl")), InvoiceForm::Cii);
        assert_eq!(invoice_form(&c, "b", Some("ubl")), InvoiceForm::Original);
        assert_eq!(invoice_form(&c, "b", Some("edifact")), InvoiceForm::Ubl);
    }

    #[test]
    fn invoice_names() {
        assert_eq!(
            invoice_file_name(Some("FR123"), Some("F/2026 01"), 7, 3, "ubl.xml"),
            "FR123_F_2026_01_7-3.ubl.xml"
        );
        assert_eq!(
            invoice_file_name(None, Some("..x"), 1, 0, "cii.xml"),
            "unknown_x_1-0.cii.xml"
        );
        assert_eq!(InvoiceForm::Original.extension("a.zip/b/INV.PDF"), "pdf");
        assert_eq!(InvoiceForm::Original.extension("a.zip/noext"), "xml");
        assert_eq!(InvoiceForm::Original.extension("x.ed$i"), "xml");
        let long = invoice_file_name(
            Some(&"S".repeat(300)),
            Some(&"N".repeat(300)),
            1,
            1,
            "ubl.xml",
        );
        assert!(long.len() < 255, "{long}");
    }

    #[test]
    fn names() {
        assert_eq!(report_file_name("../a b.xml", 3), "_a_b.xml.3.report");
        assert_eq!(report_file_name(".hidden", 1), "hidden.1.report");
        // Issue 14, class 6: never a hidden file, never too long.
        for dots in [".", "..", "...", "...."] {
            assert_eq!(report_file_name(dots, 2), "unnamed.2.report");
        }
        assert_eq!(report_file_name("", 2), "unnamed.2.report");
        let long = report_file_name(&"é".repeat(200), 3);
        assert!(long.len() <= MAX_REPORT_STEM + 20, "{long}");
        assert!(sibling_name(&long, "report.json").len() < 255);
        assert_eq!(
            sibling_name("x.zip.4.report", "cdar.xml"),
            "x.zip.4.cdar.xml"
        );
    }
}
