//! The shape of the configuration file, key by key, so that every unknown
//! key, every value of the wrong type and every missing required key is
//! reported at once, each with its line — serde stops at the first.
//!
//! [`check`] walks the parsed document ([`toml::Table`]), reports what does
//! not fit [`ROOT`], and removes it, so the strict deserialisation that
//! follows sees only well-typed values and the semantic checks of
//! [`super::Config`] still run on the rest of the file.
//!
//! A section added to [`super::FileConfig`] must be added here too: the
//! unit test `schema_matches_serde` compares both.

use super::ConfigProblem;

/// The type a key's value must have.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Str,
    /// A non-negative integer.
    Int,
    Bool,
    /// A byte count: an integer, or a string like `"1GiB"`.
    Size,
    /// An array of strings.
    StrList,
    Table(&'static [Key]),
    /// An array of tables (`[[partner]]`).
    Tables(&'static [Key]),
}

/// One key of a table.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

const fn opt(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        required: false,
    }
}

const fn req(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        required: true,
    }
}

use Kind::*;

const LIMITS: &[Key] = &[
    opt("max_flow_bytes", Size),
    opt("max_invoices_per_flow", Int),
    opt("max_unpacked_ratio", Int),
    opt("max_unpacked_bytes", Size),
    opt("max_archive_entries", Int),
];

const PARTNER: &[Key] = &[
    req("id", Str),
    opt("contacts", StrList),
    opt(
        "dropzone",
        Table(&[req("inbox", Str), opt("outbox", Str), opt("create", Bool)]),
    ),
    opt(
        "sftp",
        Table(&[
            req("url", Str),
            opt("key", Str),
            opt("password_file", Str),
            opt("known_hosts", Str),
            opt("trust_on_first_use", Bool),
            opt("outbox", Str),
            opt("poll", Str),
            opt("after_pickup", Str),
            opt("min_age_seconds", Int),
        ]),
    ),
    opt(
        "as2",
        Table(&[
            req("as2_id", Str),
            opt("certificate", Str),
            opt("require_signed", Bool),
            opt("require_encrypted", Bool),
            opt("allow_async_mdn", Bool),
            opt("url", Str),
            opt("mdn_url", Str),
            opt("sign", Bool),
            opt("encrypt", Bool),
            opt("compress", Bool),
            opt("encryption", Str),
            opt("signature", Str),
            opt("mdn", Str),
            opt("timeout_seconds", Int),
            opt("max_send_bytes", Size),
        ]),
    ),
    opt("limits", Table(LIMITS)),
    opt("cdar_per_invoice", Bool),
    opt("layers", StrList),
    opt("addresses", StrList),
    opt("syntax", Str),
    opt("statuses", StrList),
    opt("language", Str),
];

/// The whole file.
pub const ROOT: &[Key] = &[
    opt(
        "spool",
        Table(&[
            opt("url", Str),
            opt("store", Str),
            opt("retention_days", Int),
        ]),
    ),
    opt(
        "dropzones",
        Table(&[
            opt("inbound", Str),
            opt("outbound", Str),
            opt("enabled", Bool),
            opt("stable_seconds", Int),
        ]),
    ),
    opt(
        "http",
        Table(&[
            opt("listen", Str),
            opt("token_file", Str),
            opt("header_timeout_seconds", Int),
            opt("body_timeout_seconds", Int),
            opt("body_min_rate", Size),
            opt("send_timeout_seconds", Int),
            opt("max_connections", Int),
            opt("allowed_hosts", StrList),
            opt("max_response_bytes", Size),
        ]),
    ),
    opt(
        "mail",
        Table(&[
            opt("transport", Str),
            opt("from", Str),
            opt("username", Str),
            opt("password_file", Str),
            opt("operations", StrList),
        ]),
    ),
    opt(
        "schedule",
        Table(&[
            opt("timezone", Str),
            opt("reject_digest", Str),
            opt("reconcile", Str),
            opt("purge", Str),
        ]),
    ),
    opt("limits", Table(LIMITS)),
    opt(
        "processing",
        Table(&[
            opt("workers", Int),
            opt("lease_seconds", Int),
            opt("batch_size", Int),
        ]),
    ),
    opt(
        "validation",
        Table(&[
            opt("layers", StrList),
            opt("fr_ctc_mode", Str),
            opt("profiles", StrList),
        ]),
    ),
    opt(
        "as2",
        Table(&[req("as2_id", Str), req("certificate", Str), req("key", Str)]),
    ),
    opt(
        "antivirus",
        Table(&[
            req("clamd", Str),
            opt("timeout_seconds", Int),
            opt("retry_seconds", Int),
        ]),
    ),
    opt("directory", Table(&[opt("file", Str)])),
    opt(
        "exchange",
        Table(&[
            opt("undelivered_after_minutes", Int),
            opt("no_status_after_days", Int),
        ]),
    ),
    opt(
        "api",
        Table(&[
            opt("webhook_urls", StrList),
            opt("max_file_bytes", Size),
            opt("webhook_timeout_seconds", Int),
        ]),
    ),
    opt("partner", Tables(PARTNER)),
];

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number with a fraction",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

fn expected(kind: Kind) -> &'static str {
    match kind {
        Str => "a string",
        Int => "a non-negative integer",
        Bool => "true or false",
        Size => "a size (a number of bytes, or a string like \"1GiB\")",
        StrList => "an array of strings",
        Table(_) => "a table ([section])",
        Tables(_) => "an array of tables ([[section]])",
    }
}

/// Does `v` have the type `kind` asks for? (Tables are checked by the walk.)
fn fits(kind: Kind, v: &toml::Value) -> bool {
    match (kind, v) {
        (Str, toml::Value::String(_)) => true,
        (Int, toml::Value::Integer(n)) => *n >= 0,
        (Bool, toml::Value::Boolean(_)) => true,
        (Size, toml::Value::Integer(n)) => *n >= 0,
        (Size, toml::Value::String(_)) => true,
        (StrList, toml::Value::Array(a)) => a.iter().all(|x| x.is_str()),
        (Table(_), toml::Value::Table(_)) => true,
        (Tables(_), toml::Value::Array(a)) => a.iter().all(|x| x.is_table()),
        _ => false,
    }
}

/// Where each key and table header is in the text: (table path with the
/// `[[partner]]` index, key) → line. Best effort: dotted keys and inline
/// tables are found under their table's header line.
pub struct Lines {
    keys: Vec<(String, String, usize)>,
    headers: Vec<(String, usize)>,
}

impl Lines {
    pub fn of(text: &str) -> Lines {
        let mut keys = Vec::new();
        let mut headers = Vec::new();
        let mut table = String::new();
        let mut counts: std::collections::HashMap<String, usize> = Default::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some(h) = line.strip_prefix("[[") {
                let name = h.split("]]").next().unwrap_or("").trim().to_string();
                let n = counts.entry(name.clone()).or_insert(0);
                table = format!("{name}[{n}]");
                *n += 1;
                headers.push((table.clone(), i + 1));
                continue;
            }
            if let Some(h) = line.strip_prefix('[') {
                let name = h.split(']').next().unwrap_or("").trim();
                // `[partner.as2]` belongs to the last `[[partner]]`.
                let (first, rest) = name.split_once('.').unwrap_or((name, ""));
                table = match counts.get(first) {
                    Some(n) if *n > 0 => {
                        let t = format!("{first}[{}]", n - 1);
                        if rest.is_empty() {
                            t
                        } else {
                            format!("{t}.{rest}")
                        }
                    }
                    _ => name.to_string(),
                };
                headers.push((table.clone(), i + 1));
                continue;
            }
            if let Some((k, _)) = line.split_once('=') {
                let k = k.trim().trim_matches('"').to_string();
                keys.push((table.clone(), k, i + 1));
            }
        }
        Lines { keys, headers }
    }

    fn key(&self, table: &str, key: &str) -> Option<usize> {
        self.keys
            .iter()
            .find(|(t, k, _)| t == table && k == key)
            .map(|(_, _, l)| *l)
            .or_else(|| self.header(&join(table, key)))
            .or_else(|| self.header(table))
    }

    fn header(&self, table: &str) -> Option<usize> {
        self.headers
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, l)| *l)
    }
}

fn join(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

/// `partner[1].as2` → `partner.as2`: the key as the documentation names it.
fn doc_name(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut skip = false;
    for c in path.chars() {
        match c {
            '[' => skip = true,
            ']' => skip = false,
            c if !skip => out.push(c),
            _ => {}
        }
    }
    out
}

/// Report every key of `doc` that does not fit [`ROOT`], and remove it.
pub fn check(doc: &mut toml::Table, lines: &Lines) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    walk(doc, ROOT, "", lines, &mut out);
    out.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    out
}

/// Check one table; false when it lacks a required key (the caller drops it).
fn walk(
    table: &mut toml::Table,
    keys: &'static [Key],
    path: &str,
    lines: &Lines,
    out: &mut Vec<ConfigProblem>,
) -> bool {
    let mut problem = |at: &str, key: &str, message: String| {
        out.push(ConfigProblem {
            line: lines.key(at, key),
            key: doc_name(&join(at, key)),
            message,
        })
    };
    let names: Vec<String> = table.keys().cloned().collect();
    let mut nested = Vec::new();
    for name in names {
        let Some(spec) = keys.iter().find(|k| k.name == name) else {
            let what = if table[&name].is_table() {
                "unknown section"
            } else {
                "unknown key"
            };
            let known: Vec<&str> = keys.iter().map(|k| k.name).collect();
            problem(
                path,
                &name,
                format!("{what} (known here: {})", known.join(", ")),
            );
            table.remove(&name);
            continue;
        };
        if !fits(spec.kind, &table[&name]) {
            problem(
                path,
                &name,
                format!(
                    "expected {}, found {}",
                    expected(spec.kind),
                    type_name(&table[&name])
                ),
            );
            table.remove(&name);
            continue;
        }
        if let Size = spec.kind {
            if let Some(s) = table[&name].as_str() {
                if let Err(e) = s.parse::<super::ByteSize>() {
                    problem(path, &name, e);
                    table.remove(&name);
                    continue;
                }
            }
        }
        if matches!(spec.kind, Table(_) | Tables(_)) {
            nested.push((name, spec.kind));
        }
    }
    let mut complete = true;
    for k in keys.iter().filter(|k| k.required) {
        if !table.contains_key(k.name) {
            complete = false;
            out.push(ConfigProblem {
                line: lines.header(path),
                key: doc_name(&join(path, k.name)),
                message: "missing (this key is required)".into(),
            });
        }
    }
    for (name, kind) in nested {
        match (kind, table.get_mut(&name)) {
            (Table(inner), Some(toml::Value::Table(t))) => {
                // A section missing a required key is dropped whole.
                let complete = walk(t, inner, &join(path, &name), lines, out);
                if !complete {
                    table.remove(&name);
                }
            }
            (Tables(inner), Some(toml::Value::Array(items))) => {
                let mut keep = Vec::new();
                for (i, item) in std::mem::take(items).into_iter().enumerate() {
                    let toml::Value::Table(mut t) = item else {
                        continue;
                    };
                    let at = format!("{}[{i}]", join(path, &name));
                    if walk(&mut t, inner, &at, lines, out) {
                        keep.push(toml::Value::Table(t));
                    }
                }
                *items = keep;
            }
            _ => {}
        }
    }
    complete
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys serde knows for the section at `path` (from the error of
    /// `deny_unknown_fields`, which lists them).
    fn serde_keys(path: &[&str]) -> Vec<String> {
        let mut doc = String::new();
        if path == ["partner"] {
            doc.push_str("[[partner]]\nid = \"p\"\nzzz_unknown = 1\n");
        } else if path.first() == Some(&"partner") {
            doc.push_str(&format!(
                "[[partner]]\nid = \"p\"\n[partner.{}]\nzzz_unknown = 1\n",
                path[1]
            ));
        } else if path.is_empty() {
            doc.push_str("zzz_unknown = 1\n");
        } else {
            doc.push_str(&format!("[{}]\nzzz_unknown = 1\n", path.join(".")));
        }
        let err = toml::from_str::<super::super::FileConfig>(&doc).unwrap_err();
        let msg = err.message().to_string();
        let list = msg
            .split("expected one of ")
            .nth(1)
            .or_else(|| msg.split("expected ").nth(1))
            .unwrap_or_else(|| panic!("{path:?}: {msg}"));
        list.split(", ")
            .flat_map(|s| s.split(" or "))
            .map(|s| s.trim().trim_matches('`').to_string())
            .collect()
    }

    fn schema_keys(path: &[&str]) -> Vec<String> {
        let mut keys = ROOT;
        for p in path {
            keys = match keys.iter().find(|k| k.name == *p).unwrap().kind {
                Table(k) | Tables(k) => k,
                _ => panic!("{p} is not a table"),
            };
        }
        keys.iter().map(|k| k.name.to_string()).collect()
    }

    #[test]
    fn schema_matches_serde() {
        let mut sections: Vec<Vec<&str>> = vec![vec![]];
        for k in ROOT {
            if let Table(inner) | Tables(inner) = k.kind {
                sections.push(vec![k.name]);
                for i in inner {
                    if let Table(_) = i.kind {
                        sections.push(vec![k.name, i.name]);
                    }
                }
            }
        }
        for s in sections {
            let mut a = serde_keys(&s);
            let mut b = schema_keys(&s);
            a.sort();
            b.sort();
            assert_eq!(a, b, "section {s:?}: serde knows {a:?}, the schema {b:?}");
        }
    }

    #[test]
    fn every_kind_of_mistake_at_once() {
        let text =
            "[spool]\nretention_days = \"ninety\"\n[limits]\nmax_flow_bytes = \"12 parsecs\"\n\
                    max_invoices_per_flow = -1\n[http]\nport = 1\n[[partner]]\ncontacts = [1]\n\
                    [[partner]]\nid = \"b\"\n[partner.dropzone]\ncreate = \"yes\"\n";
        let mut doc: toml::Table = text.parse().unwrap();
        let problems = check(&mut doc, &Lines::of(text));
        let got: Vec<_> = problems.iter().map(|p| (p.line, p.key.as_str())).collect();
        assert_eq!(
            got,
            [
                (Some(2), "spool.retention_days"),
                (Some(4), "limits.max_flow_bytes"),
                (Some(5), "limits.max_invoices_per_flow"),
                (Some(7), "http.port"),
                (Some(8), "partner.id"),
                (Some(9), "partner.contacts"),
                (Some(12), "partner.dropzone.inbox"),
                (Some(13), "partner.dropzone.create"),
            ],
            "{problems:#?}"
        );
        // What remains deserialises strictly.
        let file: super::super::FileConfig = toml::Value::Table(doc).try_into().unwrap();
        assert_eq!(file.partners.len(), 1);
        assert!(file.partners[0].dropzone.is_none());
    }
}
