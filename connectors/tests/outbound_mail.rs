//! `render_mail` and `MailOutbound` against a real SMTP server (aiosmtpd,
//! support/smtp.rs, which decodes every message with Python's own `email`
//! parser) and against the `.eml` file transport, which follows the outbox
//! rules (no link followed, nothing overwritten, idempotent on the name).

use quai_test_support::smtp;

use std::fs;
use std::path::{Path, PathBuf};

use quai_connectors::outbound::{
    eml_name, new_message_id, render_mail, MailAttachment, MailError, MailMessage, MailOutbound,
    MailOutboundConfig, MailTransportConfig, Parcel,
};
use smtp::Smtp;

const CSV: &str = "flow;file;reason\n42;a.xml;\"BR-CO-10; sum\"\n";

fn message(to: &[&str]) -> MailMessage {
    MailMessage {
        from: "quai <quai@quai.example>".into(),
        to: to.iter().map(|s| s.to_string()).collect(),
        subject: "quai: 2 flows rejected for acme (café)".into(),
        text: "Two flows were rejected.\n".into(),
        html: "<p>Two flows were <b>rejected</b>.</p>".into(),
        attachments: vec![
            MailAttachment {
                file_name: "rejects.csv".into(),
                content_type: "text/csv; charset=utf-8".into(),
                bytes: CSV.as_bytes().to_vec(),
            },
            MailAttachment {
                file_name: "summary.json".into(),
                content_type: "application/json".into(),
                bytes: b"{\"rejected\":2}".to_vec(),
            },
        ],
        message_id: new_message_id("digest acme"),
    }
}

fn staged(dir: &Path, mail: &MailMessage) -> Parcel {
    let path = dir.join(uuid::Uuid::new_v4().simple().to_string());
    let size = render_mail(mail, &path).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), size);
    Parcel {
        name: eml_name(&mail.message_id),
        staged: path,
        media_type: "message/rfc822",
    }
}

fn smtp_outbound(url: String, to: &[&str], auth: Option<(&str, PathBuf)>) -> MailOutbound {
    MailOutbound::new(MailOutboundConfig {
        transport: MailTransportConfig::Smtp {
            url,
            username: auth.as_ref().map(|(u, _)| u.to_string()),
            password_file: auth.map(|(_, p)| p),
        },
        from: "quai <bounces@quai.example>".into(),
        to: to.iter().map(|s| s.to_string()).collect(),
    })
    .unwrap()
}

#[tokio::test]
async fn a_rendered_mail_goes_through_smtp_as_rendered() {
    let server = Smtp::start();
    let tmp = tempfile::tempdir().unwrap();
    let mail = message(&["Acme Ops <ops@acme.example>", "billing@acme.example"]);
    let p = staged(tmp.path(), &mail);
    let o = smtp_outbound(
        server.url(),
        &["ops@acme.example", "billing@acme.example"],
        None,
    );
    let sent = o.send(&p).await.unwrap();
    assert!(sent
        .destination
        .starts_with("smtp:ops@acme.example,billing@acme.example"));
    assert!(sent
        .destination
        .contains(&format!("127.0.0.1:{}", server.port)));
    assert_eq!(sent.receipt, None);

    let got = server.messages();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.mail_from, "bounces@quai.example");
    assert_eq!(m.rcpt_tos, ["ops@acme.example", "billing@acme.example"]);
    assert_eq!(m.subject, mail.subject);
    assert_eq!(m.message_id, mail.message_id);
    assert!(m.from.contains("quai@quai.example"), "{}", m.from);
    assert!(m.to.contains("ops@acme.example") && m.to.contains("billing@acme.example"));
    assert_eq!(
        m.text.as_deref().map(str::trim_end),
        Some("Two flows were rejected.")
    );
    assert!(m.html.as_deref().unwrap().contains("<b>rejected</b>"));
    assert_eq!(m.attachments.len(), 2);
    assert_eq!(m.attachments[0].filename.as_deref(), Some("rejects.csv"));
    assert_eq!(m.attachments[0].content_type, "text/csv");
    assert_eq!(m.attachments[0].content, CSV);
    assert_eq!(m.attachments[1].content, "{\"rejected\":2}");
    // The relay got the staged bytes, nothing re-rendered.
    let raw = server.raw(0).replace("\r\n", "\n");
    let ours = String::from_utf8(fs::read(&p.staged).unwrap())
        .unwrap()
        .replace("\r\n", "\n");
    assert!(
        raw.trim_end().ends_with(ours.trim_end()),
        "the relay got what was rendered"
    );
}

#[tokio::test]
async fn credentials_come_from_the_password_file_and_never_show() {
    let password = "s3cret-mail-pw";
    let server = Smtp::start_with_auth("quai", password);
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("smtp.password");
    fs::write(&pw, format!("{password}\n")).unwrap();
    let mail = message(&["ops@acme.example"]);
    let o = smtp_outbound(
        server.url(),
        &["ops@acme.example"],
        Some(("quai", pw.clone())),
    );
    assert!(!format!("{o:?}").contains(password));
    assert!(!o.describe().contains(password));
    o.send(&staged(tmp.path(), &mail)).await.unwrap();
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].auth_login.as_deref(), Some("quai"));

    // No server auth configured on our side: the server refuses the mail.
    let o = smtp_outbound(server.url(), &["ops@acme.example"], None);
    let err = o.send(&staged(tmp.path(), &mail)).await.unwrap_err();
    assert!(!err.transient, "a 5xx refusal is permanent: {err:?}");
    assert!(err.message.contains("ops@acme.example"), "{err:?}");
    assert!(!err.message.contains(password));
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn a_relay_that_is_down_is_a_transient_failure() {
    let mut server = Smtp::start();
    let tmp = tempfile::tempdir().unwrap();
    let o = smtp_outbound(server.url(), &["ops@acme.example"], None);
    let mail = message(&["ops@acme.example"]);
    server.stop();
    let err = o.send(&staged(tmp.path(), &mail)).await.unwrap_err();
    assert!(err.transient, "{err:?}");
    assert!(
        err.destination
            .contains(&format!("127.0.0.1:{}", server.port)),
        "{err:?}"
    );
    server.restart();
    o.send(&staged(tmp.path(), &mail)).await.unwrap();
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn the_file_transport_follows_the_outbox_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("home/mail");
    let o = MailOutbound::new(MailOutboundConfig {
        transport: MailTransportConfig::Files(dir.clone()),
        from: "quai@quai.example".into(),
        to: vec!["ops@acme.example".into()],
    })
    .unwrap();
    assert_eq!(o.files_dir(), Some(dir.as_path()));
    let mail = message(&["ops@acme.example"]);
    let p = staged(tmp.path(), &mail);
    assert_eq!(o.holds(&p.name), Some(false));
    let sent = o.send(&p).await.unwrap();
    let file = dir.join(eml_name(&mail.message_id));
    assert_eq!(sent.destination, file.display().to_string());
    assert_eq!(o.holds(&p.name), Some(true));
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(text.as_bytes(), fs::read(&p.staged).unwrap());
    assert!(
        text.contains(&format!("Message-ID: {}", mail.message_id)),
        "{text}"
    );
    assert!(text.contains("Content-Type: multipart/mixed"));
    // Idempotent: the same message again is Ok and still one file.
    o.send(&p).await.unwrap();
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    // Another message under that name is refused, the first one kept.
    let mut other = message(&["ops@acme.example"]);
    other.message_id = mail.message_id.clone();
    other.subject = "something else".into();
    let err = o.send(&staged(tmp.path(), &other)).await.unwrap_err();
    assert!(!err.transient, "{err:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), text);
    // A link at the name is not written through.
    let victim = tmp.path().join("victim");
    fs::write(&victim, b"keep").unwrap();
    let next = message(&["ops@acme.example"]);
    std::os::unix::fs::symlink(&victim, dir.join(eml_name(&next.message_id))).unwrap();
    assert!(o.send(&staged(tmp.path(), &next)).await.is_err());
    assert_eq!(fs::read(&victim).unwrap(), b"keep");
    assert_eq!(o.holds(&eml_name(&next.message_id)), Some(false));
}

#[test]
fn render_mail_creates_its_staged_file_and_never_replaces_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mail = message(&["ops@acme.example"]);
    let existing = tmp.path().join("existing");
    fs::write(&existing, b"keep").unwrap();
    assert!(matches!(
        render_mail(&mail, &existing),
        Err(MailError::Io(_))
    ));
    assert_eq!(fs::read(&existing).unwrap(), b"keep");
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(tmp.path().join("target"), &link).unwrap();
    assert!(render_mail(&mail, &link).is_err());
    assert!(!tmp.path().join("target").exists());
    // Bad input is a clear error, not a panic.
    let mut bad = mail.clone();
    bad.to = vec!["not an address".into()];
    assert!(
        matches!(render_mail(&bad, &tmp.path().join("b")), Err(MailError::Build(m)) if m.contains("not an address"))
    );
    bad.to.clear();
    assert!(matches!(
        render_mail(&bad, &tmp.path().join("c")),
        Err(MailError::Build(_))
    ));
    let mut bad = mail;
    bad.attachments[0].content_type = "no type".into();
    assert!(matches!(
        render_mail(&bad, &tmp.path().join("d")),
        Err(MailError::Build(_))
    ));
}

#[test]
fn unusable_configurations_are_refused() {
    let cfg = |transport, from: &str, to: &[&str]| MailOutboundConfig {
        transport,
        from: from.into(),
        to: to.iter().map(|s| s.to_string()).collect(),
    };
    let smtp = |url: &str| MailTransportConfig::Smtp {
        url: url.into(),
        username: None,
        password_file: None,
    };
    for c in [
        cfg(smtp("http://relay"), "q@x.example", &["o@x.example"]),
        cfg(smtp("smtp://user@relay"), "q@x.example", &["o@x.example"]),
        cfg(smtp("smtp://relay:port"), "q@x.example", &["o@x.example"]),
        cfg(smtp("smtp://relay"), "not an address", &["o@x.example"]),
        cfg(smtp("smtp://relay"), "q@x.example", &[]),
        cfg(smtp("smtp://relay"), "q@x.example", &["nobody"]),
        cfg(
            MailTransportConfig::Smtp {
                url: "smtp://relay".into(),
                username: Some("quai".into()),
                password_file: None,
            },
            "q@x.example",
            &["o@x.example"],
        ),
        cfg(
            MailTransportConfig::Smtp {
                url: "smtp://relay".into(),
                username: Some("quai".into()),
                password_file: Some("/nonexistent/pw".into()),
            },
            "q@x.example",
            &["o@x.example"],
        ),
    ] {
        let shown = format!("{c:?}");
        assert!(
            matches!(MailOutbound::new(c), Err(MailError::Config(_))),
            "{shown}"
        );
    }
    assert!(MailOutbound::new(cfg(smtp("smtps://relay"), "q@x.example", &["o@x.example"])).is_ok());
}
