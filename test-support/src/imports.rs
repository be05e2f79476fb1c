//! The import-circle check: a crate's modules must import each other one
//! way (issue 13), so that each can be read knowing only what is below it.
//!
//! [`graph`] reads a crate's `src/` tree from its root (`lib.rs` or
//! `main.rs`): the `mod x;` declarations give the modules (one per file:
//! `jobs`, `jobs::digest`, `validate::calc`, ...), and every path naming a
//! module of the crate gives an edge: `use crate::a::B`, `crate::a::f()`,
//! `super::b::C`, `self::x`, a child module by its name (`rows::Row`), or a
//! name bound by a `use` of a module (`use crate::jobs; jobs::digest::run`).
//! A path to an item a module only re-exports (`pub use model::Invoice`) is
//! followed to the module that defines it. [`Graph::circles`] returns every
//! strongly connected component of more than one module, with the edges
//! inside it (each with the file, line and path that make it).
//!
//! Two deliberate blind spots. A module's uses of its own submodules are
//! no edges: the crate root (`lib.rs`) and a folder's `mod.rs` are the
//! front doors of what lies below them, dispatching to and re-exporting
//! their submodules, and what they define (the crate's error type and
//! handle, a folder's shared helpers) is the vocabulary of everything below,
//! so `super::amt` from `validate/calc.rs` is an edge, `calc::check` from
//! `validate.rs` is not; the crate root is no node at all. Code under
//! `#[cfg(test)]` is skipped: a test may reach anywhere.
//!
//! This is a reader of Rust text, not a compiler: comments, strings and
//! char literals are removed first; macros' bodies are read as code.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A module's path below the crate root (`["jobs", "digest"]`).
pub type ModPath = Vec<String>;

/// Where one import is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub file: PathBuf,
    pub line: usize,
    /// The path as written (`crate::jobs::digest::csv_field`).
    pub path: String,
}

/// The modules of one crate tree and the imports between them.
#[derive(Debug, Default)]
pub struct Graph {
    /// Every module, with its file.
    pub modules: BTreeMap<ModPath, PathBuf>,
    /// from -> to -> every site (in file order).
    pub edges: BTreeMap<ModPath, BTreeMap<ModPath, Vec<Site>>>,
}

/// One circle: modules that reach each other, and the imports among them.
#[derive(Debug, Clone)]
pub struct Circle {
    pub modules: Vec<ModPath>,
    /// (from, to, first site, number of sites).
    pub edges: Vec<(ModPath, ModPath, Site, usize)>,
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".to_string()
    } else {
        m.join("::")
    }
}

impl fmt::Display for Circle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.modules.iter().map(|m| name(m)).collect();
        writeln!(f, "circle of {}: {}", names.len(), names.join(", "))?;
        for (from, to, site, n) in &self.edges {
            writeln!(
                f,
                "  {} -> {}  ({}:{} `{}`{})",
                name(from),
                name(to),
                site.file.display(),
                site.line,
                site.path,
                if *n > 1 {
                    format!(", and {} more", n - 1)
                } else {
                    String::new()
                }
            )?;
        }
        Ok(())
    }
}

impl Graph {
    /// Every circle (strongly connected component of two or more modules),
    /// in module order.
    pub fn circles(&self) -> Vec<Circle> {
        let nodes: Vec<&ModPath> = self.modules.keys().collect();
        let index: BTreeMap<&ModPath, usize> =
            nodes.iter().enumerate().map(|(i, m)| (*m, i)).collect();
        let succ: Vec<Vec<usize>> = nodes
            .iter()
            .map(|m| {
                self.edges
                    .get(*m)
                    .map(|t| t.keys().filter_map(|k| index.get(k).copied()).collect())
                    .unwrap_or_default()
            })
            .collect();
        let mut out = Vec::new();
        for scc in tarjan(&succ) {
            if scc.len() < 2 {
                continue;
            }
            let members: BTreeSet<&ModPath> = scc.iter().map(|&i| nodes[i]).collect();
            let mut edges = Vec::new();
            for from in &members {
                for (to, sites) in self.edges.get(*from).into_iter().flatten() {
                    if members.contains(to) {
                        edges.push(((*from).clone(), to.clone(), sites[0].clone(), sites.len()));
                    }
                }
            }
            out.push(Circle {
                modules: members.into_iter().cloned().collect(),
                edges,
            });
        }
        out.sort_by(|a, b| a.modules.cmp(&b.modules));
        out
    }
}

/// Tarjan's strongly connected components (iterative, so deep module
/// trees cannot overflow the stack).
fn tarjan(succ: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = succ.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut out = Vec::new();
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(&mut (v, ref mut i)) = work.last_mut() {
            if *i == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if *i < succ[v].len() {
                let w = succ[v][*i];
                *i += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut scc = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(scc);
            }
        }
    }
    out
}

// ------------------------------------------------------------------ text

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

/// Tokens with their line, comments, strings and char literals removed.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == 'r' && (b.get(i + 1) == Some(&'"') || b.get(i + 1) == Some(&'#')) && {
            // r"..." or r#"..."# (not the raw identifier r#name)
            let mut j = i + 1;
            while b.get(j) == Some(&'#') {
                j += 1;
            }
            b.get(j) == Some(&'"')
        } {
            let mut j = i + 1;
            let mut hashes = 0;
            while b[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '\n' {
                    line += 1;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
        } else if c == '"' || (c == 'b' && b.get(i + 1) == Some(&'"')) {
            let mut j = if c == 'b' { i + 2 } else { i + 1 };
            while j < b.len() && b[j] != '"' {
                if b[j] == '\\' {
                    j += 1;
                }
                if b.get(j) == Some(&'\n') {
                    line += 1;
                }
                j += 1;
            }
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if b.get(i + 1) == Some(&'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if is_ident(c) {
            let mut j = i;
            while j < b.len() && is_ident(b[j]) {
                j += 1;
            }
            let word: String = b[i..j].iter().collect();
            i = j;
            if word == "r" && b.get(i) == Some(&'#') {
                // raw identifier
                i += 1;
                let mut j = i;
                while j < b.len() && is_ident(b[j]) {
                    j += 1;
                }
                out.push((Tok::Ident(b[i..j].iter().collect()), line));
                i = j;
            } else if word.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                out.push((Tok::Punct('0'), line));
            } else {
                out.push((Tok::Ident(word), line));
            }
        } else if c == '$' && b.get(i + 1).is_some_and(|&c| is_ident(c)) {
            i += 1; // `$crate` reads as `crate`
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

// ------------------------------------------------------------------ files

/// What one file says: its child modules, its imports, its re-exports and
/// the names it defines.
#[derive(Debug, Default)]
struct FileScan {
    /// `mod x;` (not under `#[cfg(test)]`), with an optional `#[path]`.
    children: Vec<(String, Option<String>)>,
    /// Paths as written, absolute or not yet resolved: (segments, scope,
    /// line, text, is_use_of_module_only). `scope` is the inline module
    /// path inside the file.
    paths: Vec<Raw>,
    /// `pub use` bindings: name -> (segments, scope).
    reexports: BTreeMap<String, (Vec<String>, Vec<String>)>,
    /// `pub use x::*` targets.
    globs: Vec<(Vec<String>, Vec<String>)>,
    /// Names of items defined here.
    defines: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct Raw {
    segs: Vec<String>,
    scope: Vec<String>,
    line: usize,
    /// A `use` statement binding (not a glob): a use of a module binds a
    /// name and is no edge by itself.
    binding: Option<String>,
    glob: bool,
}

const ITEM_KEYWORDS: &[&str] = &[
    "fn", "struct", "enum", "trait", "type", "const", "static", "union", "mod",
];

fn is_cfg_test(toks: &[(Tok, usize)], at: usize) -> Option<usize> {
    // `# [ cfg ( test ) ]` starting at `at`; returns the index after `]`.
    let want = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    (toks.len() >= at + want.len()
        && toks[at..at + want.len()]
            .iter()
            .map(|t| &t.0)
            .eq(want.iter()))
    .then_some(at + want.len())
}

/// The index just after the item starting at `i` (ends at a `;` outside
/// brackets, or at the `}` closing its first top-level brace).
fn skip_item(toks: &[(Tok, usize)], mut i: usize) -> usize {
    // attributes first
    while i < toks.len() && toks[i].0 == Tok::Punct('#') {
        i = skip_group(toks, i + 1);
    }
    let mut depth = 0i32;
    while i < toks.len() {
        match toks[i].0 {
            Tok::Punct('(') | Tok::Punct('[') => depth += 1,
            Tok::Punct(')') | Tok::Punct(']') => depth -= 1,
            Tok::Punct(';') if depth == 0 => return i + 1,
            Tok::Punct('{') if depth == 0 => return skip_group(toks, i),
            _ => {}
        }
        i += 1;
    }
    i
}

/// From an opening bracket at `i`, the index after its match.
fn skip_group(toks: &[(Tok, usize)], mut i: usize) -> usize {
    let mut depth = 0i32;
    while i < toks.len() {
        match toks[i].0 {
            Tok::Punct('(') | Tok::Punct('[') | Tok::Punct('{') => depth += 1,
            Tok::Punct(')') | Tok::Punct(']') | Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

/// A `use` tree from `i` (after `use`) to its `;`: (segments, binding or
/// None for a glob) for every leaf.
fn use_tree(
    toks: &[(Tok, usize)],
    i: &mut usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut segs = prefix.to_vec();
    if toks.get(*i).map(|t| &t.0) == Some(&Tok::Path) {
        *i += 1; // leading `::`
    }
    loop {
        match toks.get(*i).map(|t| &t.0) {
            Some(Tok::Ident(s)) if s == "self" && !segs.is_empty() => {
                // `use a::b::{self}`: binds `b`
                *i += 1;
                let mut binding = segs.last().cloned();
                if ident(toks.get(*i)) == Some("as") {
                    binding = ident(toks.get(*i + 1)).map(String::from);
                    *i += 2;
                }
                out.push((segs, binding));
                return;
            }
            Some(Tok::Ident(s)) => {
                segs.push(s.clone());
                *i += 1;
                match toks.get(*i).map(|t| &t.0) {
                    Some(Tok::Path) => {
                        *i += 1;
                        continue;
                    }
                    Some(Tok::Ident(a)) if a == "as" => {
                        *i += 1;
                        let alias = ident(toks.get(*i)).unwrap_or("_").to_string();
                        *i += 1;
                        out.push((segs, Some(alias)));
                    }
                    _ => {
                        let last = segs.last().cloned();
                        out.push((segs, last));
                    }
                }
                return;
            }
            Some(Tok::Punct('*')) => {
                *i += 1;
                out.push((segs, None));
                return;
            }
            Some(Tok::Punct('{')) => {
                *i += 1;
                loop {
                    match toks.get(*i).map(|t| &t.0) {
                        Some(Tok::Punct('}')) => {
                            *i += 1;
                            return;
                        }
                        Some(Tok::Punct(',')) => *i += 1,
                        None => return,
                        _ => {
                            let before = *i;
                            use_tree(toks, i, &segs, out);
                            if *i == before {
                                *i += 1;
                            }
                        }
                    }
                }
            }
            _ => return,
        }
    }
}

fn scan(src: &str) -> FileScan {
    let toks = tokens(src);
    let mut s = FileScan::default();
    // Open braces: Some(name) for an inline module, None for any block.
    let mut braces: Vec<Option<String>> = Vec::new();
    let mut pending_path: Option<String> = None;
    let scope =
        |braces: &[Option<String>]| -> Vec<String> { braces.iter().flatten().cloned().collect() };
    let mut i = 0;
    while i < toks.len() {
        if let Some(after) = is_cfg_test(&toks, i) {
            i = skip_item(&toks, after);
            continue;
        }
        let (tok, line) = &toks[i];
        match tok {
            Tok::Punct('#') => {
                // `#[path = "x.rs"]` before a `mod`
                let end = skip_group(&toks, i + 1);
                if ident(toks.get(i + 2)) == Some("path") {
                    // the string was removed; keep a marker
                    pending_path = Some(String::new());
                }
                i = end;
                continue;
            }
            Tok::Punct('{') => braces.push(None),
            Tok::Punct('}') => {
                braces.pop();
            }
            Tok::Ident(w) if w == "mod" => {
                if let Some(name) = ident(toks.get(i + 1)) {
                    let name = name.to_string();
                    match toks.get(i + 2).map(|t| &t.0) {
                        Some(Tok::Punct(';')) => {
                            if braces.iter().all(|b| b.is_some()) {
                                s.children.push((name.clone(), pending_path.take()));
                            }
                            s.defines.insert(name);
                            i += 3;
                            continue;
                        }
                        Some(Tok::Punct('{')) => {
                            braces.push(Some(name.clone()));
                            s.defines.insert(name);
                            i += 3;
                            continue;
                        }
                        _ => {}
                    }
                }
            }
            Tok::Ident(w) if w == "macro_rules" => {
                if let Some(name) = ident(toks.get(i + 2)) {
                    s.defines.insert(name.to_string());
                }
            }
            Tok::Ident(w) if ITEM_KEYWORDS.contains(&w.as_str()) => {
                if let Some(name) = ident(toks.get(i + 1)) {
                    s.defines.insert(name.to_string());
                }
            }
            Tok::Ident(w) if w == "use" => {
                let public = i > 0
                    && (ident(toks.get(i - 1)) == Some("pub")
                        || (toks[i - 1].0 == Tok::Punct(')')
                            && (1..=5)
                                .any(|k| i > k && ident(toks.get(i - 1 - k)) == Some("pub"))));
                let mut j = i + 1;
                let mut leaves = Vec::new();
                use_tree(&toks, &mut j, &[], &mut leaves);
                let sc = scope(&braces);
                for (segs, binding) in leaves {
                    if public {
                        match &binding {
                            Some(b) => {
                                s.reexports.insert(b.clone(), (segs.clone(), sc.clone()));
                            }
                            None => s.globs.push((segs.clone(), sc.clone())),
                        }
                    }
                    s.paths.push(Raw {
                        segs,
                        scope: sc.clone(),
                        line: *line,
                        glob: binding.is_none(),
                        binding,
                    });
                }
                while j < toks.len() && toks[j].0 != Tok::Punct(';') {
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            Tok::Ident(first) if toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Path) => {
                let starts = i == 0 || toks[i - 1].0 != Tok::Path;
                if starts {
                    let mut segs = vec![first.clone()];
                    let mut j = i + 1;
                    while toks.get(j).map(|t| &t.0) == Some(&Tok::Path) {
                        match ident(toks.get(j + 1)) {
                            Some(n) => {
                                segs.push(n.to_string());
                                j += 2;
                            }
                            None => break,
                        }
                    }
                    s.paths.push(Raw {
                        segs,
                        scope: scope(&braces),
                        line: *line,
                        binding: None,
                        glob: false,
                    });
                    i = j;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    s
}

// ------------------------------------------------------------------ graph

struct Tree {
    files: BTreeMap<ModPath, (PathBuf, FileScan)>,
}

impl Tree {
    fn load(root: &Path) -> io::Result<Tree> {
        let mut files = BTreeMap::new();
        let mut todo: Vec<(ModPath, PathBuf)> = vec![(Vec::new(), root.to_path_buf())];
        while let Some((path, file)) = todo.pop() {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
            let scan = scan(&text);
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let parent = file.parent().unwrap_or(Path::new("."));
            let dir = if path.is_empty() || stem == "mod" {
                parent.to_path_buf()
            } else {
                parent.join(stem)
            };
            for (child, explicit) in &scan.children {
                if explicit.is_some() {
                    // `#[path]`: the string is not kept; such a module is
                    // not followed (the workspace has none left).
                    continue;
                }
                let a = dir.join(format!("{child}.rs"));
                let b = dir.join(child).join("mod.rs");
                let f = if a.is_file() { a } else { b };
                if f.is_file() {
                    let mut p = path.clone();
                    p.push(child.clone());
                    todo.push((p, f));
                }
            }
            files.insert(path, (file, scan));
        }
        Ok(Tree { files })
    }

    /// The longest module prefix of `segs`.
    fn module_of(&self, segs: &[String]) -> usize {
        (0..=segs.len())
            .rev()
            .find(|&n| self.files.contains_key(&segs[..n]))
            .unwrap_or(0)
    }

    /// The absolute form of a path written in module `at` (inline `scope`
    /// inside it), or None for a path outside the crate.
    fn absolute(
        &self,
        at: &ModPath,
        scope: &[String],
        segs: &[String],
        bindings: &BTreeMap<String, Vec<String>>,
    ) -> Option<Vec<String>> {
        let mut here: Vec<String> = at.iter().chain(scope).cloned().collect();
        let first = segs.first()?;
        match first.as_str() {
            "crate" => Some(segs[1..].to_vec()),
            "self" => {
                here.extend(segs[1..].iter().cloned());
                Some(here)
            }
            "super" => {
                let mut k = 0;
                while segs.get(k).map(String::as_str) == Some("super") {
                    here.pop();
                    k += 1;
                }
                here.extend(segs[k..].iter().cloned());
                Some(here)
            }
            name => {
                let mut child = here.clone();
                child.push(name.to_string());
                if self.files.contains_key(&child) {
                    child.extend(segs[1..].iter().cloned());
                    Some(child)
                } else if let Some(target) = bindings.get(name) {
                    let mut t = target.clone();
                    t.extend(segs[1..].iter().cloned());
                    Some(t)
                } else {
                    None
                }
            }
        }
    }

    /// The module defining what the absolute path `segs` names, following
    /// re-exports.
    fn resolve(&self, segs: &[String], depth: usize) -> ModPath {
        let n = self.module_of(segs);
        let module = segs[..n].to_vec();
        if n == segs.len() || depth > 8 {
            return module;
        }
        let (_, scan) = &self.files[&module];
        let item = &segs[n];
        if scan.defines.contains(item) {
            return module;
        }
        if let Some((target, scope)) = scan.reexports.get(item) {
            if let Some(mut abs) = self.absolute(&module, scope, target, &BTreeMap::new()) {
                abs.extend(segs[n + 1..].iter().cloned());
                return self.resolve(&abs, depth + 1);
            }
            return module;
        }
        for (glob, scope) in &scan.globs {
            if let Some(mut abs) = self.absolute(&module, scope, glob, &BTreeMap::new()) {
                abs.extend(segs[n..].iter().cloned());
                let m = self.resolve(&abs, depth + 1);
                if self.files[&m].1.defines.contains(item) {
                    return m;
                }
            }
        }
        module
    }
}

/// The import graph of the crate tree whose root file is `root`
/// (`src/lib.rs` or `src/main.rs`).
pub fn graph(root: &Path) -> io::Result<Graph> {
    let tree = Tree::load(root)?;
    let base = root
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let mut g = Graph::default();
    for (path, (file, _)) in &tree.files {
        if !path.is_empty() {
            g.modules.insert(path.clone(), file.clone());
        }
    }
    for (from, (file, scan)) in &tree.files {
        if from.is_empty() {
            continue; // the front door: see the module docs
        }
        // Names bound by `use` to modules of the crate, for later paths.
        let mut bindings = BTreeMap::new();
        for raw in &scan.paths {
            if let Some(b) = &raw.binding {
                if let Some(abs) = tree.absolute(from, &raw.scope, &raw.segs, &BTreeMap::new()) {
                    if tree.module_of(&abs) == abs.len() && !abs.is_empty() {
                        bindings.insert(b.clone(), abs);
                    }
                }
            }
        }
        for raw in &scan.paths {
            let Some(abs) = tree.absolute(from, &raw.scope, &raw.segs, &bindings) else {
                continue;
            };
            let is_module = tree.module_of(&abs) == abs.len();
            if raw.binding.is_some() && is_module {
                continue; // `use crate::jobs;` alone says nothing yet
            }
            let to = if raw.glob || is_module {
                abs[..tree.module_of(&abs)].to_vec()
            } else {
                tree.resolve(&abs, 0)
            };
            if to.is_empty() || to.starts_with(from) {
                continue; // the root, itself, or one of its own submodules
            }
            let site = Site {
                file: file.strip_prefix(base).unwrap_or(file).to_path_buf(),
                line: raw.line,
                path: raw.segs.join("::") + if raw.glob { "::*" } else { "" },
            };
            g.edges
                .entry(from.clone())
                .or_default()
                .entry(to)
                .or_default()
                .push(site);
        }
    }
    Ok(g)
}

/// Every circle of the crate at `crate_dir` (its `src/lib.rs` tree, and
/// its `src/main.rs` tree when it has one).
pub fn crate_circles(crate_dir: &Path) -> io::Result<Vec<Circle>> {
    let mut out = Vec::new();
    for root in ["src/lib.rs", "src/main.rs"] {
        let f = crate_dir.join(root);
        if f.is_file() {
            out.extend(graph(&f)?.circles());
        }
    }
    Ok(out)
}

/// Panics, printing every circle found, unless none of these crates
/// (folders under the repository root: `"spool"`, `"daemon"`, ...) has one.
pub fn assert_no_circles(crates: &[&str]) {
    let mut report = String::new();
    let mut count = 0;
    for c in crates {
        let dir = crate::repo_root().join(c);
        let circles = crate_circles(&dir).unwrap_or_else(|e| panic!("reading {c}: {e}"));
        for circle in circles {
            count += 1;
            report.push_str(&format!("{c}: {circle}"));
        }
    }
    assert!(
        count == 0,
        "{count} import circle(s): imports must run one way (ARCHITECTURE.md)\n{report}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crate tree in a temp folder: (relative path, text).
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (p, text) in files {
            let p = dir.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn names(c: &Circle) -> Vec<String> {
        c.modules.iter().map(|m| name(m)).collect()
    }

    #[test]
    fn a_planted_circle_is_found_with_the_edges_that_close_it() {
        let d = tree(&[
            (
                "src/lib.rs",
                "pub mod a;\npub mod b;\npub mod c;\npub mod leaf;\n",
            ),
            ("src/a.rs", "use crate::b::B;\npub struct A;\n"),
            ("src/b.rs", "pub struct B;\nfn f() { super::c::g(); }\n"),
            (
                "src/c.rs",
                "pub fn g() { let _ = crate::a::A; crate::leaf::h(); }\n",
            ),
            ("src/leaf.rs", "pub fn h() {}\n"),
        ]);
        let circles = crate_circles(d.path()).unwrap();
        assert_eq!(circles.len(), 1, "{circles:?}");
        assert_eq!(names(&circles[0]), ["a", "b", "c"]);
        let text = circles[0].to_string();
        assert!(
            text.contains("a -> b  (src/a.rs:1 `crate::b::B`)"),
            "{text}"
        );
        assert!(
            text.contains("b -> c  (src/b.rs:2 `super::c::g`)"),
            "{text}"
        );
        assert!(
            text.contains("c -> a  (src/c.rs:1 `crate::a::A`)"),
            "{text}"
        );
        assert!(!text.contains("leaf"), "{text}");
    }

    #[test]
    fn one_way_imports_are_no_circle() {
        let d = tree(&[
            (
                "src/lib.rs",
                "pub mod jobs;\npub mod leaf;\npub use leaf::Thing;\n",
            ),
            ("src/leaf.rs", "pub struct Thing;\n"),
            (
                "src/jobs/mod.rs",
                "pub mod digest;\npub mod reconcile;\npub use digest::run;\n",
            ),
            ("src/jobs/digest.rs", "use crate::Thing;\npub fn run() {}\n"),
            (
                "src/jobs/reconcile.rs",
                "use super::digest;\nfn f() { digest::run(); let _ = crate::Thing; }\n",
            ),
        ]);
        let g = graph(&d.path().join("src/lib.rs")).unwrap();
        assert!(g.circles().is_empty(), "{:?}", g.circles());
        let s = |p: &str| p.split("::").map(String::from).collect::<Vec<_>>();
        // the root's re-export is followed to where Thing lives
        assert!(g.edges[&s("jobs::digest")].contains_key(&s("leaf")));
        // a module bound by `use` then used by name
        assert!(g.edges[&s("jobs::reconcile")].contains_key(&s("jobs::digest")));
    }

    #[test]
    fn siblings_of_a_folder_in_a_circle_are_found_through_reexports() {
        let d = tree(&[
            ("src/lib.rs", "pub mod validate;\n"),
            (
                "src/validate/mod.rs",
                "mod calc;\nmod vat;\npub use vat::Rate;\npub fn round() { calc::total(); }\n",
            ),
            // `super::Rate` is vat's (re-exported), `super::round` the folder's own
            (
                "src/validate/calc.rs",
                "use super::Rate;\npub fn total() { super::round(); }\n",
            ),
            (
                "src/validate/vat.rs",
                "pub struct Rate;\nfn f() { super::calc::total(); }\n",
            ),
        ]);
        let circles = crate_circles(d.path()).unwrap();
        assert_eq!(circles.len(), 1, "{circles:?}");
        assert_eq!(names(&circles[0]), ["validate::calc", "validate::vat"]);
        let text = circles[0].to_string();
        assert!(
            text.contains(
                "validate::calc -> validate::vat  (src/validate/calc.rs:1 `super::Rate`)"
            ),
            "{text}"
        );
        let g = graph(&d.path().join("src/lib.rs")).unwrap();
        let s = |p: &str| p.split("::").map(String::from).collect::<Vec<_>>();
        // the folder's helpers are open to what is below it ...
        assert!(g.edges[&s("validate::calc")].contains_key(&s("validate")));
        // ... and its dispatching to its submodules is no edge
        assert!(!g.edges.contains_key(&s("validate")), "{:?}", g.edges);
    }

    #[test]
    fn comments_strings_and_test_code_are_not_imports() {
        let d = tree(&[
            ("src/lib.rs", "pub mod a;\npub mod b;\n"),
            ("src/a.rs", "use crate::b::B;\npub struct A;\n"),
            (
                "src/b.rs",
                "//! see `crate::a::A`\npub struct B;\n/* crate::a::A */\n\
                 const S: &str = \"crate::a::A\";\nconst R: &str = r#\"crate::a::A\"#;\n\
                 const C: char = '\"';\n\
                 #[cfg(test)]\nmod tests { use crate::a::A; }\n\
                 #[cfg(test)]\nfn helper() { let _ = crate::a::A; }\n",
            ),
        ]);
        assert!(crate_circles(d.path()).unwrap().is_empty());
        // the same import outside test code does close the circle
        std::fs::write(
            d.path().join("src/b.rs"),
            "pub struct B;\nfn f() { let _ = crate::a::A; }\n",
        )
        .unwrap();
        assert_eq!(crate_circles(d.path()).unwrap().len(), 1);
    }
}
