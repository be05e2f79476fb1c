//! Partner digests list flows refused whole (issue 18), through the real
//! pipeline and a real SMTP server (aiosmtpd): a text file, a truncated UBL
//! document, and beside them a zip with a text file inside and a zip holding
//! one invoice twice. Each refused flow is mailed exactly once, also when
//! the process dies between the SMTP send and the mark.

mod support;
use quai_test_support::smtp;
use support::common::zip_of;
use support::hostile::ubl_numbered;
use support::http::{fixture, ingest};

use quai::config::MailTransport;
use quai::jobs::digest::{self, Fault};
use quai_spool::FlowState;
use smtp::Smtp;

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

fn invoice(number: &str) -> Vec<u8> {
    let template = String::from_utf8(fixture("ubl-tc434-example2.xml")).unwrap();
    ubl_numbered(&template, number)
}

/// The id of acme's flow named `name`.
async fn flow_id(d: &quai::App, name: &str) -> i64 {
    let flows = d
        .spool
        .list_flows(&quai_spool::FlowFilter::default())
        .await
        .unwrap();
    flows
        .iter()
        .find(|f| f.original_name == name)
        .unwrap_or_else(|| panic!("no flow {name}"))
        .id
}

#[tokio::test]
async fn refused_flows_are_mailed_once_and_duplicates_in_one_flow_say_so() {
    let server = Smtp::start();
    let home = tempfile::tempdir().unwrap();
    let mut c = support::seed::config_at(home.path());
    c.mail_transport = MailTransport::Smtp { url: server.url() };
    c.mail_from = "quai <edi@platform.example>".into();
    c.partners = vec![support::seed::partner("acme", &["edi@acme.example"])];

    let cut = invoice("ACME-9");
    let cut = cut[..cut.len() / 2].to_vec();
    ingest(
        &c,
        "acme",
        &[
            ("notes.txt", b"see you at the meeting\n".to_vec()),
            ("cut.xml", cut),
            (
                "mixed.zip",
                zip_of(&[
                    ("ok.xml", invoice("ACME-1")),
                    ("readme.txt", b"not an invoice\n".to_vec()),
                ]),
            ),
            (
                "twice.zip",
                zip_of(&[
                    ("one.xml", invoice("ACME-2")),
                    ("two.xml", invoice("ACME-2")),
                ]),
            ),
        ],
    )
    .await;
    let d = support::seed::daemon(c.clone()).await;
    let notes = flow_id(&d, "notes.txt").await;
    let cut = flow_id(&d, "cut.xml").await;
    let twice = flow_id(&d, "twice.zip").await;
    for id in [notes, cut] {
        assert_eq!(d.spool.flow(id).await.unwrap().state, FlowState::Failed);
    }

    let s = digest::run(&d).await.unwrap();
    assert_eq!(s.sent, vec![("acme".to_string(), 2)], "{s:?}");
    assert_eq!(s.sent_flows, vec![("acme".to_string(), 2)], "{s:?}");
    let msgs = server.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(
        m.subject,
        format!(
            "quai: 2 rejected invoices and 2 refused flows for acme ({})",
            today()
        )
    );
    let text = m.text.as_deref().unwrap();
    assert!(
        text.contains("2 flow(s) sent by acme were refused whole"),
        "{text}"
    );
    assert!(
        text.contains(&format!("- flow {notes} notes.txt, received ")),
        "{text}"
    );
    assert!(
        text.contains(&format!("- flow {cut} cut.xml, received ")),
        "{text}"
    );
    assert!(text.contains("IRR_TYPE_F: unknown format"), "{text}");
    assert!(
        text.contains("IRR_SYNTAX: the UBL document cannot be read"),
        "{text}"
    );
    // The text file inside the zip is a rejected document of its flow.
    assert!(text.contains("mixed.zip/readme.txt"), "{text}");
    // One invoice twice in one flow: said so, no flow number.
    assert!(
        text.contains("appears twice in this flow (DOUBLON)"),
        "{text}"
    );
    assert!(!text.contains(&format!("in flow {twice}")), "{text}");
    let html = m.html.as_deref().unwrap();
    assert!(html.contains("<td>notes.txt</td>"), "{html}");
    assert!(html.contains("<td>IRR_SYNTAX</td>"), "{html}");
    let csv = &m.attachments[0].content;
    assert!(
        csv.contains(&format!(
            "{notes},notes.txt,,,,,,IRR_TYPE_F,\"IRR_TYPE_F: unknown format"
        )),
        "{csv}"
    );
    assert!(
        csv.contains(&format!("{cut},cut.xml,,,,,,IRR_SYNTAX,")),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + 2 + 2, "{csv}");

    // The next cycle has nothing to say.
    let s = digest::run(&d).await.unwrap();
    assert!(s.sent.is_empty() && s.sent_flows.is_empty(), "{s:?}");
    assert_eq!(server.messages().len(), 1);
    drop(d);

    // A new refused flow; the process dies right after the relay took the
    // mail: the next cycle resolves it as sent, never mails it twice.
    ingest(&c, "acme", &[("later.txt", b"again\n".to_vec())]).await;
    let d = support::seed::daemon(c.clone()).await;
    let later = flow_id(&d, "later.txt").await;
    digest::run_with(&d, Fault::StopAfterSend).await.unwrap();
    let msgs = server.messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        msgs[1].subject,
        format!("quai: 1 refused flow for acme ({})", today())
    );
    assert!(msgs[1]
        .text
        .as_deref()
        .unwrap()
        .contains(&format!("- flow {later} later.txt")));
    assert_eq!(d.spool.pending_failed_flows("acme").await.unwrap().len(), 1);
    let s = digest::run(&d).await.unwrap();
    assert!(
        s.resolved
            .iter()
            .any(|(p, r)| p == "acme" && r == "assumed sent: 1 marked"),
        "{s:?}"
    );
    assert!(s.sent.is_empty(), "{s:?}");
    assert!(d
        .spool
        .pending_failed_flows("acme")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(server.messages().len(), 2);
    assert!(d
        .spool
        .partners_with_pending_rejects()
        .await
        .unwrap()
        .is_empty());
}

/// `[[partner]] language = "fr"`: the digest speaks French (the CSV header
/// and codes stay as they are: machines read them; the rule messages are
/// French too, see `partner_language.rs`); a language quai does not have
/// is a configuration problem.
#[tokio::test]
async fn a_french_partner_gets_a_french_digest() {
    let server = Smtp::start();
    let home = tempfile::tempdir().unwrap();
    let toml = format!(
        "[mail]\ntransport = \"{}\"\nfrom = \"quai <edi@platform.example>\"\n\
         [[partner]]\nid = \"acme\"\nlanguage = \"fr\"\ncontacts = [\"edi@acme.example\"]\n",
        server.url()
    );
    let path = home.path().join("quai.toml");
    std::fs::write(&path, &toml).unwrap();
    let c = quai::config::Config::load(&path).unwrap();
    assert_eq!(
        c.partner("acme").unwrap().language,
        quai::language::Language::Fr
    );
    ingest(
        &c,
        "acme",
        &[
            ("notes.txt", b"pas une facture\n".to_vec()),
            ("br07.xml", fixture("BR-07__fail__1.xml")),
        ],
    )
    .await;
    let d = support::seed::daemon(c).await;
    let notes = flow_id(&d, "notes.txt").await;
    let s = digest::run(&d).await.unwrap();
    assert_eq!(s.sent, vec![("acme".to_string(), 1)], "{s:?}");
    let m = &server.messages()[0];
    assert_eq!(
        m.subject,
        format!(
            "quai : 1 facture rejetée et 1 flux refusé pour acme ({})",
            today()
        )
    );
    let text = m.text.as_deref().unwrap();
    assert!(
        text.starts_with("Bonjour,")
            && text.contains("1 facture(s) envoyée(s) par acme ont été rejetées"),
        "{text}"
    );
    assert!(
        text.contains("Chaque facture rejetée doit être corrigée"),
        "{text}"
    );
    assert!(
        text.contains(&format!("- flux {notes} notes.txt, reçu le ")),
        "{text}"
    );
    assert!(text.contains("ont été refusés en entier"), "{text}");
    assert!(text.contains("BR-07"), "{text}");
    let html = m.html.as_deref().unwrap();
    assert!(html.contains("<html lang=\"fr\">"), "{html}");
    assert!(
        html.contains("<th>Fichier</th>") && html.contains("<th>Motif</th>"),
        "{html}"
    );
    assert!(m.attachments[0].content.starts_with(
        "flow,file,document,invoice_number,issue_date,amount,currency,rules,messages\r\n"
    ));

    std::fs::write(&path, toml.replace("\"fr\"", "\"de\"")).unwrap();
    let e = quai::config::Config::load(&path).unwrap_err();
    assert!(format!("{e:#}").contains("partner.language"), "{e:#}");
}
