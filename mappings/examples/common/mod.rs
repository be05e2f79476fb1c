//! Shared by the rate examples: the flow files named on the command line.

use std::path::{Path, PathBuf};

/// The files named, a directory standing for its flow files (`.zip`,
/// `.gz`, `.xml`, `.edi`, `.tar`), sorted.
pub fn files(args: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for a in args {
        let p = Path::new(a);
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .expect("readable directory")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p.to_string_lossy();
                    [".zip", ".gz", ".xml", ".edi", ".tar"]
                        .iter()
                        .any(|s| n.ends_with(s))
                })
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p.to_path_buf());
        }
    }
    out
}
