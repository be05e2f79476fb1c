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

use quai_mappings::flow::FlowEnd;
pub use quai_spool::Destination;
use quai_spool::{AckKind, NewAck, Origin};

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

/// Longest part of the original name kept in a report's name: the longest
/// sibling (`<name>.<flow id>.report.json`, `.contrl.edi`) stays well
/// within the 255 bytes of a file name.
const MAX_REPORT_STEM: usize = 200;

/// `<original name>.<flow id>.report` stem, safe as a file name: ASCII
/// letters, digits, `.`, `-`, `_` only, never starting with a dot (a name
/// made only of dots becomes `unnamed`), never longer than a file system
/// takes.
pub fn report_file_name(original: &str, flow_id: i64) -> String {
    let safe: String = original
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
    let safe = &safe[..safe.len().min(MAX_REPORT_STEM)];
    let safe = if safe.is_empty() { "unnamed" } else { safe };
    format!("{safe}.{flow_id}.report")
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
