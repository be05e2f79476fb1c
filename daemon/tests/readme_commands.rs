//! README stays true to the binary (issue 18): its command table lists every
//! command `quai --help` shows (and each subcommand of a command that has
//! them), it lists no command the binary does not have, and its
//! `QUAI_HOME` layout names the folders quai writes, `reports/` included.

use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap()
}

/// The command names of a `--help` text's `Commands:` section (no `help`).
fn commands(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_quai"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The `quai ...` words of the command table's first column.
fn table_rows(readme: &str) -> Vec<String> {
    readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `quai "))
        .map(|rest| rest.split('`').next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn the_command_table_lists_every_command() {
    let readme = readme();
    let rows = table_rows(&readme);
    let top = commands(&[]);
    assert!(top.len() > 10, "{top:?}");
    for c in &top {
        let subs = commands(&[c.as_str()]);
        if subs.is_empty() {
            assert!(
                rows.iter()
                    .any(|r| r == c || r.starts_with(&format!("{c} "))),
                "README's command table lacks `quai {c}`: {rows:?}"
            );
        }
        for s in subs {
            assert!(
                rows.iter().any(|r| r.starts_with(&format!("{c} {s}"))),
                "README's command table lacks `quai {c} {s}`: {rows:?}"
            );
        }
    }
    for r in &rows {
        let name = r.split_whitespace().next().unwrap();
        assert!(
            top.iter().any(|c| c == name),
            "README lists `quai {r}`, which the binary does not have"
        );
    }
}

#[test]
fn the_home_layout_names_every_folder() {
    let readme = readme();
    let start = readme
        .find("### The `QUAI_HOME` layout")
        .expect("layout section");
    let block = &readme[start..];
    let block = &block[..block[4..].find("\n#").map(|i| i + 4).unwrap_or(block.len())];
    for name in [
        "inbound/",
        "outbound/",
        "flows/",
        "mail/",
        "reports/",
        "spool.db",
        "quai.pid",
    ] {
        assert!(block.contains(name), "the layout lacks {name}:\n{block}");
    }
}
