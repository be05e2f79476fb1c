//! `[[partner]] language` through the daemon (issue 18): a `fr` partner's
//! integration report (JSON and XML), CDAR reasons and digest are French —
//! rule messages, the duplicate and the refused flow included, with the
//! values of each message — and an `en` partner's English (BR-FR's
//! official French included); machine-read fields (rule ids, codes,
//! terms, the CSV header) are the same in both. Real pipeline, real
//! outbox, real SMTP server (aiosmtpd).

mod support;

use std::path::Path;

use quai::jobs::digest;
use quai_test_support::smtp::Smtp;
use serde_json::Value;
use support::common::zip_of;
use support::hostile::ubl_numbered;
use support::http::{fixture, ingest};

fn invoice(number: &str) -> Vec<u8> {
    let template = String::from_utf8(fixture("ubl-tc434-example2.xml")).unwrap();
    ubl_numbered(&template, number)
}

/// Every file of the outbox whose name ends with `suffix`, as text.
fn outbox_files(outbox: &Path, suffix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(outbox)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    out.sort();
    out
}

/// (rule or code, message) pairs.
type Texts = Vec<(String, String)>;

/// (rule, message) of every reason of every JSON report, and the flow
/// rejections' (code, message).
fn report_texts(outbox: &Path) -> (Texts, Texts) {
    let mut reasons = Vec::new();
    let mut refusals = Vec::new();
    for text in outbox_files(outbox, ".report.json") {
        let report: Value = serde_json::from_str(&text).expect("a well-formed JSON report");
        if let Some(r) = report.get("rejection").filter(|r| !r.is_null()) {
            refusals.push((
                r["code"].as_str().unwrap().to_string(),
                r["message"].as_str().unwrap().to_string(),
            ));
        }
        for d in report["documents"].as_array().unwrap() {
            for r in d["reasons"].as_array().unwrap() {
                reasons.push((
                    r["rule"].as_str().unwrap().to_string(),
                    r["message"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    (reasons, refusals)
}

fn message_of<'a>(reasons: &'a [(String, String)], rule: &str) -> &'a str {
    reasons
        .iter()
        .find(|(r, _)| r == rule)
        .map(|(_, m)| m.as_str())
        .unwrap_or_else(|| panic!("no {rule} in {reasons:?}"))
}

/// Each XML report parses (quick-xml, as the mappings read XML) and holds
/// `needle`.
fn xml_reports_hold(outbox: &Path, needle: &str) {
    let xmls = outbox_files(outbox, ".report.xml");
    assert!(!xmls.is_empty());
    let mut found = false;
    for xml in &xmls {
        let mut reader = quick_xml::Reader::from_str(xml);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("XML report not well-formed: {e}\n{xml}"),
            }
        }
        found |= xml.contains(needle);
    }
    assert!(found, "no XML report holds {needle:?}: {xmls:?}");
}

#[tokio::test]
async fn a_french_partner_reads_french_and_an_english_one_english() {
    let server = Smtp::start();
    let home = tempfile::tempdir().unwrap();
    let toml = format!(
        "[mail]\ntransport = \"{}\"\nfrom = \"quai <edi@platform.example>\"\n\
         [[partner]]\nid = \"acme\"\nlanguage = \"fr\"\ncontacts = [\"edi@acme.example\"]\n\
         [[partner]]\nid = \"globex\"\nlanguage = \"en\"\ncontacts = [\"edi@globex.example\"]\n",
        server.url()
    );
    let path = home.path().join("quai.toml");
    std::fs::write(&path, &toml).unwrap();
    let c = quai::config::Config::load(&path).unwrap();
    for (partner, number) in [("acme", "ACME-7"), ("globex", "GLOBEX-7")] {
        ingest(
            &c,
            partner,
            &[
                ("br07.xml", fixture("BR-07__fail__1.xml")),
                ("notes.txt", b"not an invoice\n".to_vec()),
                (
                    "twice.zip",
                    zip_of(&[("a.xml", invoice(number)), ("b.xml", invoice(number))]),
                ),
            ],
        )
        .await;
    }

    // acme (fr): the report's messages are French, with their values.
    let acme = c.outbox_for("acme");
    let (reasons, refusals) = report_texts(&acme);
    assert_eq!(
        message_of(&reasons, "BR-07"),
        "Une facture doit contenir le nom de l'acheteur."
    );
    let dup = message_of(&reasons, "REJ_UNI");
    assert!(
        dup.starts_with("facture en double : le numéro ACME-7 du vendeur ")
            && dup.ends_with(" figure deux fois dans ce flux (DOUBLON)"),
        "{dup}"
    );
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].0, "IRR_TYPE_F");
    assert!(
        refusals[0]
            .1
            .starts_with("Le type du flux ou d'un de ses fichiers n'est pas accepté"),
        "{refusals:?}"
    );
    xml_reports_hold(
        &acme,
        "Une facture doit contenir le nom de l&apos;acheteur.",
    );
    let cdar = outbox_files(&acme, ".xml")
        .into_iter()
        .filter(|x| x.contains("CrossDomainAcknowledgementAndResponse"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(cdar.contains("figure deux fois dans ce flux"), "{cdar}");

    // globex (en): English, the same rule ids and codes.
    let globex = c.outbox_for("globex");
    let (reasons, refusals) = report_texts(&globex);
    let br07 = message_of(&reasons, "BR-07");
    assert!(
        br07.contains("buyer name") && br07.contains("BT-44"),
        "{br07}"
    );
    let dup = message_of(&reasons, "REJ_UNI");
    assert!(
        dup.starts_with("duplicate invoice: number GLOBEX-7 of seller ")
            && dup.ends_with(" appears twice in this flow (DOUBLON)"),
        "{dup}"
    );
    assert_eq!(refusals[0].0, "IRR_TYPE_F");
    assert!(!refusals[0].1.contains("Le "), "{refusals:?}");
    xml_reports_hold(&globex, "appears twice in this flow");

    // The digests: acme's in French (its rule messages too), globex's in
    // English; the CSV header is the same machine-read line for both.
    let d = support::seed::daemon(c).await;
    let s = digest::run(&d).await.unwrap();
    assert_eq!(s.sent.len(), 2, "{s:?}");
    let mails = server.messages();
    let to = |who: &str| {
        mails
            .iter()
            .find(|m| m.to.contains(who))
            .unwrap_or_else(|| panic!("no mail to {who}"))
    };
    let fr = to("edi@acme.example");
    let text = fr.text.as_deref().unwrap();
    assert!(text.starts_with("Bonjour,"), "{text}");
    assert!(
        text.contains("BR-07 (BT-44): Une facture doit contenir le nom de l'acheteur."),
        "{text}"
    );
    assert!(text.contains("figure deux fois dans ce flux"), "{text}");
    assert!(text.contains("Le type du flux"), "{text}");
    let csv = &fr.attachments[0].content;
    assert!(csv.starts_with(digest::CSV_HEADER), "{csv}");
    assert!(
        csv.contains("BR-07: Une facture doit contenir le nom"),
        "{csv}"
    );
    let en = to("edi@globex.example");
    let text = en.text.as_deref().unwrap();
    assert!(text.starts_with("Hello,"), "{text}");
    assert!(text.contains("appears twice in this flow"), "{text}");
    assert!(!text.contains("Une facture"), "{text}");
    assert!(en.attachments[0].content.starts_with(digest::CSV_HEADER));
}
