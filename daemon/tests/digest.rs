//! Reject digests against a real SMTP server (aiosmtpd, see support/smtp.rs):
//! recipients, subject, bodies and the exact CSV rows; SMTP down then up;
//! a process killed between send and mark; authentication; file transport.

mod support;
use quai_test_support::smtp;
use support::seed;

use quai::config::MailTransport;
use quai::jobs::digest::{self, Fault};
use seed::{invoice, reason, seed_flow};
use smtp::Smtp;

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

async fn setup(smtp: &Smtp, home: &std::path::Path) -> std::sync::Arc<quai::App> {
    let mut c = seed::config_at(home);
    c.mail_transport = MailTransport::Smtp { url: smtp.url() };
    c.mail_from = "quai <edi@platform.example>".into();
    c.operations_mail = vec!["ops@platform.example".into()];
    c.partners = vec![
        seed::partner(
            "acme",
            &["edi@acme.example", "Compta ACME <compta@acme.example>"],
        ),
        seed::partner("globex", &[]),
    ];
    seed::daemon(c).await
}

/// Flow 1 of acme: one accepted, two rejected (one unreadable); globex: one reject.
async fn seed_rejects(d: &quai::App) -> (i64, i64) {
    let acme = seed_flow(
        &d.spool,
        "acme",
        "batch-1.zip",
        vec![
            invoice(
                0,
                "batch-1.zip/ok.xml",
                Some("F-1"),
                Some("2026-11-02"),
                Some("120.00"),
                vec![],
            ),
            invoice(
                1,
                "batch-1.zip/bad, \"quoted\".xml",
                Some("=F-2"),
                Some("2026-11-03"),
                Some("-45.10"),
                vec![
                    reason(
                        "BR-CO-15",
                        "BT-112",
                        "Invoice total amount with VAT (BT-112) = 10 + 2, expected \"12\"",
                    ),
                    reason(
                        "BR-16",
                        "BG-25",
                        "An invoice shall have at least one line.\nAdd a line.",
                    ),
                ],
            ),
            invoice(
                2,
                "batch-1.zip/broken.xml",
                None,
                None,
                None,
                vec![reason("SYNTAX", "BG-0", "not well-formed XML at line 3")],
            ),
        ],
    )
    .await;
    let globex = seed_flow(
        &d.spool,
        "globex",
        "g.xml",
        vec![invoice(
            0,
            "g.xml",
            Some("G-7"),
            Some("2026-10-31"),
            Some("9.99"),
            vec![reason("BR-07", "BT-44", "The buyer name is missing")],
        )],
    )
    .await;
    (acme, globex)
}

#[tokio::test]
async fn digest_per_partner_with_exact_csv_sent_once() {
    let server = Smtp::start();
    let home = tempfile::tempdir().unwrap();
    let d = setup(&server, home.path()).await;
    let (acme, globex) = seed_rejects(&d).await;

    let summary = digest::run(&d).await.unwrap();
    assert_eq!(
        summary.sent,
        vec![("acme".to_string(), 2), ("globex".to_string(), 1)]
    );
    let msgs = server.messages();
    assert_eq!(msgs.len(), 2);

    let m = &msgs[0];
    assert_eq!(m.rcpt_tos, vec!["edi@acme.example", "compta@acme.example"]);
    assert_eq!(m.mail_from, "edi@platform.example");
    assert_eq!(
        m.subject,
        format!("quai: 2 rejected invoices for acme ({})", today())
    );
    let text = m.text.as_deref().unwrap();
    assert!(
        text.contains("2 invoice(s) sent by acme were rejected"),
        "{text}"
    );
    assert!(
        text.contains("invoice =F-2 of 2026-11-03, -45.10 EUR"),
        "{text}"
    );
    assert!(
        text.contains("BR-CO-15 (BT-112): Invoice total amount with VAT"),
        "{text}"
    );
    assert!(text.contains("invoice (no number)"), "{text}");
    assert!(!text.contains("F-1 "), "accepted invoice listed: {text}");
    let html = m.html.as_deref().unwrap();
    assert!(html.contains("bad, &quot;quoted&quot;.xml"), "{html}");
    assert!(html.contains("expected &quot;12&quot;"), "{html}");
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!(
        a.filename.as_deref(),
        Some(format!("rejected-acme-{}.csv", today()).as_str())
    );
    assert_eq!(a.content_type, "text/csv");
    let expected = format!(
        "flow,file,document,invoice_number,issue_date,amount,currency,rules,messages\r\n\
         {acme},batch-1.zip,\"batch-1.zip/bad, \"\"quoted\"\".xml\",'=F-2,2026-11-03,-45.10,EUR,BR-CO-15 BR-16,\
         \"BR-CO-15: Invoice total amount with VAT (BT-112) = 10 + 2, expected \"\"12\"\" | BR-16: An invoice shall have at least one line.\nAdd a line.\"\r\n\
         {acme},batch-1.zip,batch-1.zip/broken.xml,,,,,SYNTAX,SYNTAX: not well-formed XML at line 3\r\n"
    );
    assert_eq!(a.content, expected);

    // A partner without contacts: operations gets it.
    let g = &msgs[1];
    assert_eq!(g.rcpt_tos, vec!["ops@platform.example"]);
    assert_eq!(
        g.subject,
        format!("quai: 1 rejected invoice for globex ({})", today())
    );
    assert!(g.attachments[0].content.contains(&format!(
        "{globex},g.xml,g.xml,G-7,2026-10-31,9.99,EUR,BR-07,BR-07: The buyer name is missing\r\n"
    )));

    // Notified exactly once.
    assert!(d.spool.pending_rejects("acme").await.unwrap().is_empty());
    let again = digest::run(&d).await.unwrap();
    assert!(again.sent.is_empty(), "{again:?}");
    assert_eq!(server.messages().len(), 2);

    // A new reject goes out alone in the next digest.
    seed_flow(
        &d.spool,
        "acme",
        "batch-2.xml",
        vec![invoice(
            0,
            "batch-2.xml",
            Some("F-9"),
            Some("2026-11-20"),
            Some("1.00"),
            vec![reason("BR-01", "BT-24", "no spec id")],
        )],
    )
    .await;
    digest::run(&d).await.unwrap();
    let msgs = server.messages();
    assert_eq!(msgs.len(), 3);
    assert_eq!(
        msgs[2].subject,
        format!("quai: 1 rejected invoice for acme ({})", today())
    );
    let csv = &msgs[2].attachments[0].content;
    assert_eq!(csv.matches("\r\n").count(), 2, "{csv}");
    assert!(csv.contains(",F-9,"));
}

#[tokio::test]
async fn smtp_down_then_up_nothing_lost_nothing_twice() {
    let mut server = Smtp::start();
    let home = tempfile::tempdir().unwrap();
    let d = setup(&server, home.path()).await;
    seed_rejects(&d).await;

    server.stop();
    let s = digest::run(&d).await.unwrap();
    assert!(s.sent.is_empty());
    assert_eq!(s.failed.len(), 2, "{s:?}");
    assert_eq!(d.spool.pending_rejects("acme").await.unwrap().len(), 2);
    assert_eq!(d.spool.pending_rejects("globex").await.unwrap().len(), 1);
    // The failed attempt is recorded, not left "sending".
    let run = d
        .spool
        .last_job_run("digest-send:acme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.outcome.as_deref(), Some("failed"));

    // Still down at the next cycle: still nothing lost.
    let s = digest::run(&d).await.unwrap();
    assert_eq!(s.failed.len(), 2);

    server.restart();
    let s = digest::run(&d).await.unwrap();
    assert_eq!(s.sent.len(), 2, "{s:?}");
    let msgs = server.messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].attachments[0].content.matches("\r\n").count(), 3);
    // And never again.
    digest::run(&d).await.unwrap();
    assert_eq!(server.messages().len(), 2);
}

#[tokio::test]
async fn killed_between_send_and_mark_is_not_sent_twice() {
    let server = Smtp::start();
    let home = tempfile::tempdir().unwrap();
    let d = setup(&server, home.path()).await;
    seed_rejects(&d).await;

    // The process "dies" right after the relay accepted the acme digest.
    digest::run_with(&d, Fault::StopAfterSend).await.unwrap();
    assert_eq!(server.messages().len(), 1);
    assert_eq!(
        d.spool.pending_rejects("acme").await.unwrap().len(),
        2,
        "not marked yet"
    );
    let run = d
        .spool
        .last_job_run("digest-send:acme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.outcome.as_deref(), Some("sending"));
    let recorded_id = server.messages()[0].message_id.clone();
    assert!(run
        .detail
        .unwrap()
        .contains(recorded_id.trim_matches(|c| c == '<' || c == '>')));

    // Restart: a new daemon value over the same spool.
    drop(d);
    let d = setup(&server, home.path()).await;
    let s = digest::run(&d).await.unwrap();
    assert_eq!(
        s.resolved,
        vec![("acme".to_string(), "assumed sent: 2 marked".to_string())]
    );
    // acme is not mailed again; globex (never sent) is.
    let msgs = server.messages();
    assert_eq!(
        msgs.len(),
        2,
        "{:?}",
        msgs.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(msgs[1].subject.contains("globex"));
    assert!(d.spool.pending_rejects("acme").await.unwrap().is_empty());
    let run = d
        .spool
        .last_job_run("digest-send:acme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.outcome.as_deref(), Some("sent-assumed"));
    digest::run(&d).await.unwrap();
    assert_eq!(server.messages().len(), 2);
}

#[tokio::test]
async fn authenticates_with_the_password_file() {
    let server = Smtp::start_with_auth("quai", "s3cret pass");
    let home = tempfile::tempdir().unwrap();
    let pw = home.path().join("smtp.password");
    std::fs::write(&pw, "s3cret pass\n").unwrap();
    let mut c = seed::config_at(home.path());
    c.mail_transport = MailTransport::Smtp { url: server.url() };
    c.mail_username = Some("quai".into());
    c.mail_password_file = Some(pw.clone());
    c.partners = vec![seed::partner("acme", &["edi@acme.example"])];
    let d = seed::daemon(c.clone()).await;
    seed_rejects(&d).await;
    let s = digest::run(&d).await.unwrap();
    assert_eq!(s.sent.len(), 1, "{s:?}");
    assert_eq!(server.messages()[0].auth_login.as_deref(), Some("quai"));

    // An unreadable password file fails the cycle; the rejects stay pending.
    std::fs::remove_file(&pw).unwrap();
    seed_flow(
        &d.spool,
        "acme",
        "again.xml",
        vec![invoice(
            0,
            "again.xml",
            Some("X"),
            None,
            None,
            vec![reason("BR-01", "BT-24", "m")],
        )],
    )
    .await;
    let err = digest::run(&d).await.unwrap_err();
    assert!(format!("{err:#}").contains("password_file"), "{err:#}");
    assert_eq!(d.spool.pending_rejects("acme").await.unwrap().len(), 1);
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn file_transport_resolves_interrupted_digests_by_the_file() {
    let home = tempfile::tempdir().unwrap();
    let mut c = seed::config_at(home.path());
    c.partners = vec![seed::partner("acme", &["edi@acme.example"])];
    c.operations_mail = vec!["ops@platform.example".into()];
    let maildir = match &c.mail_transport {
        MailTransport::Files(d) => d.clone(),
        other => panic!("{other:?}"),
    };
    let d = seed::daemon(c).await;
    seed_rejects(&d).await;
    let eml = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        v.sort();
        v
    };

    // Interrupted after the file was written: resolved as sent, not rewritten.
    digest::run_with(&d, Fault::StopAfterSend).await.unwrap();
    assert_eq!(eml(&maildir).len(), 1);
    let s = digest::run(&d).await.unwrap();
    assert!(
        s.resolved
            .iter()
            .any(|(p, r)| p == "acme" && r == "written: 2 marked"),
        "{s:?}"
    );
    assert_eq!(eml(&maildir).len(), 2, "globex only");
    let text = std::fs::read_to_string(&eml(&maildir)[0]).unwrap();
    assert!(text.contains("Subject: quai: "), "{text}");

    // Interrupted before anything was written: the rejects go out again.
    seed_flow(
        &d.spool,
        "acme",
        "late.xml",
        vec![invoice(
            0,
            "late.xml",
            Some("L-1"),
            None,
            None,
            vec![reason("BR-01", "BT-24", "m")],
        )],
    )
    .await;
    let ids: Vec<i64> = d
        .spool
        .pending_rejects("acme")
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    let record = digest::SendingRecord {
        message_id: "<never-written@test>".into(),
        recipients: vec!["edi@acme.example".into()],
        ids,
        flows: vec![],
    };
    let now = chrono::Utc::now();
    d.spool
        .record_job_run(
            "digest-send:acme",
            now,
            now,
            "sending",
            Some(&serde_json::to_string(&record).unwrap()),
        )
        .await
        .unwrap();
    let s = digest::run(&d).await.unwrap();
    assert!(
        s.resolved
            .iter()
            .any(|(_, r)| r == "not sent: rows left pending"),
        "{s:?}"
    );
    assert_eq!(s.sent, vec![("acme".to_string(), 1)]);
    assert_eq!(eml(&maildir).len(), 3);
}
