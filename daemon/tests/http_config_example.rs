//! `examples/quai.toml` loads with `Config::load`, and documents every key
//! the configuration accepts: the keys are read from the `Deserialize`
//! structs of `daemon/src/config.rs`, so a key added there without being
//! documented in the example fails this test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use quai::config::{Config, MailTransport};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quai.toml")
}

#[test]
fn example_configuration_loads() {
    let c = Config::load(&example()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.spool_url, "sqlite:///var/lib/quai/spool.db");
    assert_eq!(c.store, PathBuf::from("/var/lib/quai/flows"));
    assert_eq!(c.http_listen.as_deref(), Some("0.0.0.0:8470"));
    assert_eq!(
        c.http_token_file.as_deref(),
        Some(Path::new("/etc/quai/ops.token"))
    );
    assert_eq!(
        c.mail_transport,
        MailTransport::Smtp {
            url: "smtp://relay.example:587".into()
        }
    );
    assert_eq!(c.timezone, chrono_tz::Europe::Paris);
    let ids: Vec<&str> = c.partners.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["acme", "globex", "initech"]);
    assert_eq!(c.limits_for("acme").max_flow_bytes, 2 << 30);
    assert_eq!(c.limits_for("globex").max_flow_bytes, 1 << 30);
    assert_eq!(c.limits.max_unpacked_bytes, 4 << 30);
    assert_eq!(
        c.partner("acme").unwrap().inbox.as_deref(),
        Some(Path::new("/srv/edi/acme/in"))
    );
    assert!(
        c.partner("initech")
            .unwrap()
            .as2
            .as_ref()
            .unwrap()
            .require_signed
    );
}

/// Dotted paths of every key set in a TOML document (arrays of tables merged).
fn toml_paths(v: &toml::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                toml_paths(v, &p, out);
            }
        }
        toml::Value::Array(a) => {
            for item in a {
                if item.is_table() {
                    toml_paths(item, prefix, out);
                }
            }
        }
        _ => {}
    }
}

/// `struct name -> [(key, field type)]` for the serde structs of config.rs.
fn serde_structs(src: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut rename: Option<String> = None;
    let mut fields = Vec::new();
    for line in src.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("pub struct ") {
            if let Some(name) = rest.strip_suffix(" {") {
                current = Some(name.trim().to_string());
                fields.clear();
            }
            continue;
        }
        let Some(name) = &current else { continue };
        if t == "}" {
            out.insert(name.clone(), std::mem::take(&mut fields));
            current = None;
            continue;
        }
        if t.starts_with("#[serde(") {
            if let Some(i) = t.find("rename = \"") {
                let r = &t[i + 10..];
                rename = r.split('"').next().map(str::to_string);
            }
            continue;
        }
        if let Some(rest) = t.strip_prefix("pub ") {
            if let Some((field, ty)) = rest.split_once(':') {
                let key = rename.take().unwrap_or_else(|| field.trim().to_string());
                fields.push((key, ty.trim().trim_end_matches(',').to_string()));
            }
        }
    }
    out
}

fn inner_type(ty: &str) -> String {
    let mut t = ty.to_string();
    for w in ["Option<", "Vec<"] {
        if let Some(rest) = t.strip_prefix(w) {
            t = rest.strip_suffix('>').unwrap_or(rest).to_string();
        }
    }
    t
}

fn expected_paths(
    structs: &BTreeMap<String, Vec<(String, String)>>,
    name: &str,
    prefix: &str,
    out: &mut BTreeSet<String>,
) {
    for (key, ty) in structs.get(name).map(Vec::as_slice).unwrap_or(&[]) {
        let p = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        out.insert(p.clone());
        let inner = inner_type(ty);
        if structs.contains_key(&inner) && inner != "ByteSize" {
            expected_paths(structs, &inner, &p, out);
        }
    }
}

#[test]
fn example_documents_every_key() {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config.rs"))
        .unwrap();
    let structs = serde_structs(&src);
    assert!(
        structs.contains_key("FileConfig"),
        "config.rs layout changed"
    );
    let mut expected = BTreeSet::new();
    expected_paths(&structs, "FileConfig", "", &mut expected);
    // Sanity: the walk found the nested sections.
    for p in [
        "spool.url",
        "partner.sftp.known_hosts",
        "partner.limits.max_flow_bytes",
    ] {
        assert!(expected.contains(p), "walk missed {p}: {expected:?}");
    }

    let text = std::fs::read_to_string(example()).unwrap();
    let doc: toml::Value = toml::from_str(&text).unwrap();
    let mut present = BTreeSet::new();
    toml_paths(&doc, "", &mut present);
    let missing: Vec<_> = expected.difference(&present).collect();
    assert!(
        missing.is_empty(),
        "examples/quai.toml does not document: {missing:?}"
    );

    // Every key line is preceded by a comment (documented, not just set).
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with('[') {
            continue;
        }
        let key = t.split('=').next().unwrap().trim();
        // Keys of [partner] blocks after the first are documented once, above.
        let first = lines
            .iter()
            .position(|x| x.trim().split('=').next().map(str::trim) == Some(key))
            .unwrap();
        if first != i {
            continue;
        }
        assert!(
            i > 0 && lines[i - 1].trim().starts_with('#'),
            "line {}: key {key:?} has no comment above it",
            i + 1
        );
    }
}
