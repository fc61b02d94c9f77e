//! Which source files of a crate refer to which: every `crate::`, `super::` and `self::` path,
//! in `use` lines and inline alike, resolved to the file that defines what it names (following
//! `pub use` re-exports). The architecture test fails on a cycle among them, so that each
//! crate's files form layers a reader can take one at a time. A module's references to its
//! own descendants do not count: a parent that declares and re-exports its children is not a
//! loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One source file as a module of its crate.
#[derive(Debug, Clone)]
struct ModFile {
    /// `["lifecycle", "fit"]` for `src/lifecycle/fit.rs`; empty for the crate root.
    module: Vec<String>,
    file: PathBuf,
    tokens: Vec<Tok>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Star,
    Semi,
    Dollar,
    Other,
}

/// A file-level reference graph of one crate.
#[derive(Debug)]
pub struct ModuleGraph {
    files: Vec<ModFile>,
    /// Edges as indices into `files`.
    edges: BTreeMap<usize, BTreeSet<usize>>,
}

/// A set of files that reach each other, with one loop through them as evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// Files of the strongly connected component, relative to the crate's `src`.
    pub files: Vec<String>,
}

impl ModuleGraph {
    /// Reads every `.rs` file under `src` (a crate's source directory).
    ///
    /// # Panics
    /// If the directory cannot be read: this is test support.
    pub fn of_crate(src: &Path) -> ModuleGraph {
        let mut paths = Vec::new();
        collect_rs(src, &mut paths);
        paths.sort();
        let sources = paths
            .into_iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
                let rel = p.strip_prefix(src).unwrap_or(&p).to_path_buf();
                (rel, text)
            })
            .collect::<Vec<_>>();
        ModuleGraph::from_sources(
            &sources
                .iter()
                .map(|(p, t)| (p.as_path(), t.as_str()))
                .collect::<Vec<_>>(),
        )
    }

    /// A graph of the given files (paths relative to `src`, with their text).
    pub fn from_sources(sources: &[(&Path, &str)]) -> ModuleGraph {
        let files = sources
            .iter()
            .filter_map(|(path, text)| {
                let module = module_path(path)?;
                Some(ModFile {
                    module,
                    file: path.to_path_buf(),
                    tokens: tokenize(text),
                })
            })
            .collect::<Vec<_>>();
        let by_module = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect::<BTreeMap<_, _>>();
        let exports = files
            .iter()
            .map(|f| reexports(f, &by_module))
            .collect::<Vec<_>>();
        let mut edges: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for (from, f) in files.iter().enumerate() {
            for leaf in references(f, &by_module) {
                let targets = if leaf.glob {
                    glob_targets(&leaf.path, &by_module, &files, &exports)
                } else {
                    resolve(&leaf.path, &by_module, &files, &exports)
                        .into_iter()
                        .collect()
                };
                for to in targets {
                    let target = &files[to].module;
                    if to == from || target.starts_with(&f.module) {
                        continue;
                    }
                    edges.entry(from).or_default().insert(to);
                }
            }
        }
        ModuleGraph { files, edges }
    }

    /// Files that `file` (relative to `src`) refers to.
    pub fn refers_to(&self, file: &str) -> Vec<String> {
        let Some(i) = self.files.iter().position(|f| f.file == Path::new(file)) else {
            return Vec::new();
        };
        self.edges
            .get(&i)
            .map(|s| s.iter().map(|&j| self.name(j)).collect())
            .unwrap_or_default()
    }

    fn name(&self, i: usize) -> String {
        self.files[i].file.to_string_lossy().replace('\\', "/")
    }

    /// Every strongly connected set of two or more files (Tarjan's algorithm).
    pub fn cycles(&self) -> Vec<Cycle> {
        let n = self.files.len();
        let mut index = vec![usize::MAX; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut next = 0;
        let mut out = Vec::new();
        // Iterative DFS: (node, next edge position).
        for start in 0..n {
            if index[start] != usize::MAX {
                continue;
            }
            let mut work: Vec<(usize, usize)> = vec![(start, 0)];
            index[start] = next;
            low[start] = next;
            next += 1;
            stack.push(start);
            on_stack[start] = true;
            while let Some(&mut (v, ref mut pos)) = work.last_mut() {
                let succ: Vec<usize> = self
                    .edges
                    .get(&v)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                if *pos < succ.len() {
                    let w = succ[*pos];
                    *pos += 1;
                    if index[w] == usize::MAX {
                        index[w] = next;
                        low[w] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w] = true;
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
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        let mut files = component.iter().map(|&i| self.name(i)).collect::<Vec<_>>();
                        files.sort();
                        out.push(Cycle { files });
                    }
                }
            }
        }
        out
    }
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `lib.rs`/`main.rs` → root, `a/mod.rs` and `a.rs` → `a`, `a/b.rs` → `a::b`. Files under
/// `bin/` are crates of their own and are left out.
fn module_path(rel: &Path) -> Option<Vec<String>> {
    let mut parts = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    match (parts.is_empty(), stem) {
        (true, "lib" | "main") => {}
        (_, "mod") => {}
        _ => parts.push(stem.to_owned()),
    }
    Some(parts)
}

/// Identifiers and the punctuation that paths are made of; comments, strings and char
/// literals are dropped.
fn tokenize(text: &str) -> Vec<Tok> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 1;
            i += 2;
            while i < b.len() && depth > 0 {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
        } else if c == b'r'
            && matches!(b.get(i + 1), Some(b'#') | Some(b'"'))
            && raw_string_end(b, i + 1).is_some()
        {
            i = raw_string_end(b, i + 1).unwrap_or(b.len());
        } else if c == b'b' && b.get(i + 1) == Some(&b'"') {
            i = string_end(b, i + 1);
        } else if c == b'"' {
            i = string_end(b, i);
        } else if c == b'\'' {
            // A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
            if b.get(i + 1) == Some(&b'\\') {
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            } else if b.get(i + 2) == Some(&b'\'') {
                i += 3;
            } else {
                // Lifetime or a multi-byte char: skip the quote; the identifier that follows is
                // harmless.
                let ch_len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                if b.get(i + 1 + ch_len) == Some(&b'\'') {
                    i += 2 + ch_len;
                } else {
                    i += 1;
                }
            }
            out.push(Tok::Other);
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = &text[start..i];
            // r#ident
            if word == "r" && b.get(i) == Some(&b'#') {
                i += 1;
                continue;
            }
            out.push(Tok::Ident(word.to_owned()));
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push(Tok::PathSep);
            i += 2;
        } else {
            out.push(match c {
                b'{' => Tok::Open,
                b'}' => Tok::Close,
                b',' => Tok::Comma,
                b'*' => Tok::Star,
                b';' => Tok::Semi,
                b'$' => Tok::Dollar,
                _ if c.is_ascii_whitespace() => {
                    i += 1;
                    continue;
                }
                _ => Tok::Other,
            });
            i += 1;
        }
    }
    out
}

/// The index after a `"…"` literal starting at `i`.
fn string_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

/// The index after a raw string `r#"…"#` whose `#`s or quote start at `i`.
fn raw_string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut hashes = 0;
    let mut j = i;
    while b.get(j) == Some(&b'#') {
        hashes += 1;
        j += 1;
    }
    if b.get(j) != Some(&b'"') {
        return None;
    }
    j += 1;
    while j < b.len() {
        if b[j] == b'"'
            && b[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == b'#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(b.len())
}

/// One path a file names: absolute, from a use tree or inline.
#[derive(Debug, Clone)]
struct Leaf {
    path: Vec<String>,
    /// `a::*`: everything module `a` holds or re-exports.
    glob: bool,
    /// `a::B as C`: the name it is bound to, when not its last segment.
    alias: Option<String>,
}

impl Leaf {
    fn plain(path: Vec<String>) -> Self {
        Leaf {
            path,
            glob: false,
            alias: None,
        }
    }

    /// The name this leaf binds in a `use` item.
    fn binding(&self) -> Option<&String> {
        self.alias.as_ref().or(self.path.last())
    }
}

/// Every absolute path the file names through `crate::`, `super::` or `self::`, expanded from
/// use trees (`crate::{a, b::{c, d}}` gives `a`, `b::c`, `b::d`), and every path that starts
/// with a module the file imported by name (`use crate::cleanroom;` … `cleanroom::Session`).
fn references(f: &ModFile, by_module: &BTreeMap<Vec<String>, usize>) -> Vec<Leaf> {
    let t = &f.tokens;
    let mut out: Vec<Leaf> = Vec::new();
    // The inline modules (`mod tests { … }`) around each position, by brace depth.
    let mut depth = 0usize;
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut modules: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut i = 0;
    while i < t.len() {
        let before = i.checked_sub(1).map(|p| &t[p]);
        let after_path = matches!(before, Some(Tok::Dollar) | Some(Tok::PathSep));
        match &t[i] {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(w) if w == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Open)) = (t.get(i + 1), t.get(i + 2)) {
                    inline.push((name.clone(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(w)
                if (w == "crate" || w == "super" || w == "self")
                    && t.get(i + 1) == Some(&Tok::PathSep)
                    && !after_path
                    && !matches!(before, Some(Tok::Ident(x)) if x == "in") =>
            {
                let mut here = f.module.clone();
                here.extend(inline.iter().map(|(n, _)| n.clone()));
                let (leaves, end) = parse_path(t, i, &here);
                // A module imported by name: later paths may start with that name.
                for leaf in &leaves {
                    if !leaf.glob && by_module.contains_key(&leaf.path) {
                        if let Some(name) = leaf.binding() {
                            modules.insert(name.clone(), leaf.path.clone());
                        }
                    }
                }
                out.extend(leaves);
                i = end;
                continue;
            }
            Tok::Ident(w) if !after_path && t.get(i + 1) == Some(&Tok::PathSep) => {
                if let Some(module) = modules.get(w) {
                    let mut leaves = Vec::new();
                    let end = parse_tree(t, i + 2, module.clone(), &mut leaves);
                    out.extend(leaves);
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Parses a path (or use tree) starting at `t[i]` (`crate`, `super` or `self`) inside module
/// `here`; returns the absolute paths and the index after it.
fn parse_path(t: &[Tok], mut i: usize, here: &[String]) -> (Vec<Leaf>, usize) {
    let mut base: Vec<String> = Vec::new();
    let mut first = true;
    loop {
        match t.get(i) {
            Some(Tok::Ident(w)) if first && w == "crate" => base.clear(),
            Some(Tok::Ident(w)) if first && w == "self" => base = here.to_vec(),
            Some(Tok::Ident(w)) if w == "super" && (first || base.len() <= here.len()) => {
                if first {
                    base = here.to_vec();
                }
                base.pop();
            }
            _ => break,
        }
        first = false;
        i += 1;
        if t.get(i) == Some(&Tok::PathSep) {
            i += 1;
        } else {
            return (vec![Leaf::plain(base)], i);
        }
    }
    let mut out = Vec::new();
    let end = parse_tree(t, i, base, &mut out);
    (out, end)
}

/// A use tree (or plain path) after a prefix: `a::b`, `a::{b as c, d::*}`, `*`.
fn parse_tree(t: &[Tok], mut i: usize, mut prefix: Vec<String>, out: &mut Vec<Leaf>) -> usize {
    loop {
        match t.get(i) {
            Some(Tok::Ident(w)) if w != "as" => {
                prefix.push(w.clone());
                i += 1;
                if t.get(i) == Some(&Tok::PathSep) {
                    i += 1;
                    continue;
                }
                let mut leaf = Leaf::plain(prefix);
                if let (Some(Tok::Ident(a)), Some(Tok::Ident(name))) = (t.get(i), t.get(i + 1)) {
                    if a == "as" {
                        leaf.alias = Some(name.clone());
                        i += 2;
                    }
                }
                out.push(leaf);
                return i;
            }
            Some(Tok::Star) => {
                out.push(Leaf {
                    path: prefix,
                    glob: true,
                    alias: None,
                });
                return i + 1;
            }
            Some(Tok::Open) => {
                i += 1;
                loop {
                    match t.get(i) {
                        Some(Tok::Close) => return i + 1,
                        Some(Tok::Comma) => i += 1,
                        Some(Tok::Ident(w)) if w == "self" => {
                            out.push(Leaf::plain(prefix.clone()));
                            i += 1;
                        }
                        Some(_) => {
                            let next = parse_tree(t, i, prefix.clone(), out);
                            if next == i {
                                i += 1;
                            } else {
                                i = next;
                            }
                        }
                        None => return i,
                    }
                }
            }
            _ => {
                out.push(Leaf::plain(prefix));
                return i;
            }
        }
    }
}

/// What a file makes reachable through itself with `pub use`/`pub(crate) use`: exported
/// name → absolute path, and the modules it re-exports whole (`pub use a::*`).
#[derive(Debug, Default)]
struct Exports {
    named: BTreeMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
}

fn reexports(f: &ModFile, by_module: &BTreeMap<Vec<String>, usize>) -> Exports {
    let t = &f.tokens;
    let mut out = Exports::default();
    let mut i = 0;
    while i < t.len() {
        let is_pub = matches!(&t[i], Tok::Ident(w) if w == "pub");
        if !is_pub {
            i += 1;
            continue;
        }
        // pub(crate) / pub(super)
        let mut j = i + 1;
        if t.get(j) == Some(&Tok::Other) {
            while j < t.len() && !matches!(&t[j], Tok::Ident(w) if w == "use") {
                if matches!(t[j], Tok::Semi | Tok::Open) {
                    break;
                }
                j += 1;
            }
        }
        if !matches!(t.get(j), Some(Tok::Ident(w)) if w == "use") {
            i += 1;
            continue;
        }
        j += 1;
        // Relative `pub use child::X` (2018 paths) or absolute `crate::`/`super::`/`self::`.
        let (leaves, end) = use_tree(t, j, &f.module, by_module);
        for leaf in leaves {
            if leaf.glob {
                out.globs.push(leaf.path);
            } else if let Some(name) = leaf.binding().cloned() {
                out.named.insert(name, leaf.path);
            }
        }
        i = end.max(i + 1);
    }
    out
}

/// The leaves of a `use` item's tree, absolute or relative to a child module of `here`.
fn use_tree(
    t: &[Tok],
    i: usize,
    here: &[String],
    by_module: &BTreeMap<Vec<String>, usize>,
) -> (Vec<Leaf>, usize) {
    match t.get(i) {
        Some(Tok::Ident(w)) if w == "crate" || w == "super" || w == "self" => {
            parse_path(t, i, here)
        }
        Some(Tok::Ident(w)) => {
            let mut child = here.to_vec();
            child.push(w.clone());
            if by_module.contains_key(&child) {
                let mut out = Vec::new();
                let end = parse_tree(t, i, here.to_vec(), &mut out);
                (out, end)
            } else {
                (Vec::new(), i + 1)
            }
        }
        _ => (Vec::new(), i + 1),
    }
}

/// Whether `f` itself defines an item called `name`.
fn defines(f: &ModFile, name: &str) -> bool {
    const KINDS: [&str; 9] = [
        "struct", "enum", "fn", "trait", "type", "const", "static", "mod", "union",
    ];
    f.tokens.windows(2).any(|w| {
        matches!((&w[0], &w[1]), (Tok::Ident(k), Tok::Ident(n)) if KINDS.contains(&k.as_str()) && n == name)
    })
}

/// The file that defines what `path` names: the deepest module on the path, then through its
/// re-exports, named or whole.
fn resolve(
    path: &[String],
    by_module: &BTreeMap<Vec<String>, usize>,
    files: &[ModFile],
    exports: &[Exports],
) -> Option<usize> {
    let mut path = path.to_vec();
    for _ in 0..8 {
        let (file, rest) = (0..=path.len())
            .rev()
            .find_map(|n| by_module.get(&path[..n]).map(|&i| (i, &path[n..])))?;
        let Some(name) = rest.first() else {
            return Some(file);
        };
        let next = match exports[file].named.get(name) {
            Some(target) => Some(target.clone()),
            None if !defines(&files[file], name) => exports[file]
                .globs
                .iter()
                .find(|g| {
                    by_module.get(*g).is_some_and(|&gf| {
                        defines(&files[gf], name) || exports[gf].named.contains_key(name)
                    })
                })
                .map(|g| {
                    let mut p = g.clone();
                    p.push(name.clone());
                    p
                }),
            None => None,
        };
        let Some(next) = next else {
            return Some(file);
        };
        let mut followed = next;
        followed.extend(rest[1..].iter().cloned());
        if followed == path {
            return Some(file);
        }
        path = followed;
    }
    None
}

/// Every file a glob import of `module` reaches: the module and whatever it re-exports.
fn glob_targets(
    module: &[String],
    by_module: &BTreeMap<Vec<String>, usize>,
    files: &[ModFile],
    exports: &[Exports],
) -> Vec<usize> {
    let Some(&file) = by_module.get(module) else {
        return Vec::new();
    };
    let mut out = vec![file];
    for target in exports[file].named.values() {
        out.extend(resolve(target, by_module, files, exports));
    }
    for g in &exports[file].globs {
        out.extend(by_module.get(g).copied());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> ModuleGraph {
        let owned = files
            .iter()
            .map(|(p, t)| (Path::new(*p), *t))
            .collect::<Vec<_>>();
        ModuleGraph::from_sources(&owned)
    }

    #[test]
    fn a_use_line_cycle_is_found() {
        let g = graph(&[
            ("lib.rs", "mod a; mod b;"),
            ("a.rs", "use crate::b::B; pub struct A;"),
            ("b.rs", "use crate::a::A; pub struct B;"),
        ]);
        assert_eq!(g.cycles().len(), 1);
        assert_eq!(g.cycles()[0].files, vec!["a.rs", "b.rs"]);
    }

    #[test]
    fn inline_paths_and_use_trees_count() {
        let g = graph(&[
            ("lib.rs", "mod a; mod b; mod c;"),
            ("a.rs", "fn f() { let x = crate::b::make(); }"),
            ("b.rs", "use crate::{c::{self, C}};"),
            ("c.rs", "fn g() -> super::a::A { todo!() }"),
        ]);
        assert_eq!(g.refers_to("a.rs"), vec!["b.rs"]);
        assert_eq!(g.refers_to("b.rs"), vec!["c.rs"]);
        assert_eq!(g.refers_to("c.rs"), vec!["a.rs"]);
        assert_eq!(g.cycles()[0].files, vec!["a.rs", "b.rs", "c.rs"]);
    }

    #[test]
    fn reexports_are_followed_to_the_defining_file() {
        let g = graph(&[
            ("lib.rs", "mod engine; mod dsr; pub use engine::Engine;"),
            ("engine.rs", "use crate::dsr::Settings; pub struct Engine;"),
            ("dsr.rs", "use crate::Engine;"),
        ]);
        assert_eq!(g.refers_to("dsr.rs"), vec!["engine.rs"]);
        assert_eq!(g.cycles().len(), 1);
    }

    #[test]
    fn children_comments_strings_and_tests_do_not_count() {
        let g = graph(&[
            ("lib.rs", "mod p; pub use p::X;"),
            ("p/mod.rs", "mod q; pub use q::Y; pub struct X;"),
            (
                "p/q.rs",
                "use super::X; // crate::p::q::Y\n const S: &str = \"crate::p::q\";\n\
                 #[cfg(test)] mod tests { use super::*; fn t(_: &'static str) {} }",
            ),
        ]);
        // p/q.rs → p/mod.rs counts; p/mod.rs → p/q.rs is a parent naming its child.
        assert_eq!(g.refers_to("p/q.rs"), vec!["p/mod.rs"]);
        assert!(g.refers_to("p/mod.rs").is_empty());
        assert!(g.cycles().is_empty());
    }

    #[test]
    fn globs_aliases_and_imported_modules_are_followed() {
        // A glob of the crate root reaches what the root re-exports.
        let g = graph(&[
            (
                "lib.rs",
                "mod engine; mod dsr; pub use dsr::View; pub use engine::Engine;",
            ),
            (
                "engine.rs",
                "use crate::*; pub struct Engine; fn f(_: View) {}",
            ),
            ("dsr.rs", "use crate::Engine; pub struct View;"),
        ]);
        let mut refers = g.refers_to("engine.rs");
        refers.sort();
        assert_eq!(refers, vec!["dsr.rs", "lib.rs"]);
        assert_eq!(g.cycles().len(), 1);
        // A re-export under another name, and a glob re-export.
        let g = graph(&[
            ("lib.rs", "mod a; mod p;"),
            (
                "p/mod.rs",
                "mod x; mod y; pub use x::Thing as Other; pub use y::*;",
            ),
            ("p/x.rs", "pub struct Thing;"),
            ("p/y.rs", "pub struct Whole;"),
            ("a.rs", "use crate::p::{Other, Whole};"),
        ]);
        let mut refers = g.refers_to("a.rs");
        refers.sort();
        assert_eq!(refers, vec!["p/x.rs", "p/y.rs"]);
        // A module imported by name, then used as a path's start.
        let g = graph(&[
            ("lib.rs", "mod a; mod m;"),
            ("m/mod.rs", "mod inner; pub use inner::Item;"),
            ("m/inner.rs", "pub struct Item; fn g() { crate::a::f(); }"),
            ("a.rs", "use crate::m; pub fn f() -> m::Item { todo!() }"),
        ]);
        let mut refers = g.refers_to("a.rs");
        refers.sort();
        assert_eq!(refers, vec!["m/inner.rs", "m/mod.rs"]);
        assert_eq!(g.cycles().len(), 1);
    }

    #[test]
    fn super_inside_an_inline_module_is_the_file_itself() {
        let g = graph(&[
            ("lib.rs", "mod a; mod b;"),
            (
                "a.rs",
                "mod inner { use super::helper; } fn helper() {} use crate::b::B;",
            ),
            ("b.rs", "pub struct B;"),
        ]);
        assert_eq!(g.refers_to("a.rs"), vec!["b.rs"]);
    }
}

/// The architecture invariant, for every crate of the workspace: no two files refer to each
/// other, directly or around a loop.
#[cfg(test)]
mod workspace {
    use super::ModuleGraph;
    use std::path::Path;

    #[test]
    fn no_crate_has_an_import_cycle() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut found = Vec::new();
        let mut entries = std::fs::read_dir(&crates)
            .expect("the workspace's crates")
            .flatten()
            .map(|e| e.path())
            .collect::<Vec<_>>();
        entries.sort();
        let mut checked = 0;
        for krate in entries {
            let src = krate.join("src");
            if !src.is_dir() {
                continue;
            }
            checked += 1;
            let graph = ModuleGraph::of_crate(&src);
            for cycle in graph.cycles() {
                let name = krate
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                found.push(format!("{name}: {}", cycle.files.join(" ⇄ ")));
                for file in &cycle.files {
                    let within = graph
                        .refers_to(file)
                        .into_iter()
                        .filter(|f| cycle.files.contains(f))
                        .collect::<Vec<_>>();
                    found.push(format!("    {file} → {}", within.join(", ")));
                }
            }
        }
        assert!(
            checked >= 10,
            "only {checked} crates found under {}",
            crates.display()
        );
        assert!(
            found.is_empty(),
            "files that import each other in a loop:\n{}",
            found.join("\n")
        );
    }
}
