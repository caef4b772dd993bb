//! Graph files: the edge-list text form and (with the `serde` feature) JSON. [`read_path`] and [`write_path`] pick
//! the form by extension (`.json`: JSON, anything else: edge list); errors name the file, line and column.
//!
//! # Edge list
//!
//! ```text
//! # comment: a line whose first non-blank byte is `#` or `%`; blank lines are skipped too, anywhere
//! n m            header: node count, edge count
//! u v            exactly m edge lines: edge u -> v (v takes u as an input), ids in 0..n
//! ...
//! c0 c1 ...      optional: exactly n costs in ns, node 0 first, split over lines as you like
//! ```
//!
//! Numbers are unsigned decimal; fields are split by ASCII whitespace; each header and edge line has exactly two
//! fields. Nodes are named by id (`"0"` .. `"n-1"`), kind `"node"`, no group or pin. Repeated edges are kept (each
//! is an input slot, as `inputs: ["x", "x"]` is in JSON); self-loops and cycles are refused by name. Edge `k` in
//! messages counts from 1. The writer puts edges in input order (grouped by target), so a node's inputs read back
//! in the same order; it writes costs one per line when asked.
//!
//! # JSON
//!
//! ```text
//! {"nodes": [
//! {"name": "A0000/spot", "kind": "source", "inputs": [], "cost_ns": 0, "group": "A0000", "pin": null},
//! {"name": "A0000/p1", "kind": "price", "inputs": ["A0000/spot", "rate"], "cost_ns": 250, "group": "A0000", "pin": 3},
//! ...
//! ]}
//! ```
//!
//! Only `name` is required; `kind` defaults to `"node"`, `inputs` to `[]`, `cost_ns` to 0, `group` and `pin` to
//! `null`. Inputs are names, in input order, and may come before the node they name. Distinct group strings
//! become group ids in first-seen order; the writer writes a group's name, or its number as a string when it has
//! none. Unknown fields are errors, so typos are caught.

#[cfg(feature = "serde")]
use alloc::borrow::Cow;
use core::fmt;
#[cfg(feature = "serde")]
use core::hash::BuildHasherDefault;
#[cfg(feature = "serde")]
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::graph::{Graph, GraphBuilder, GraphError, NodeId};

/// The most nodes a file may declare (2^24, about 16.8 million): nodes (a name each) are allocated when the
/// header is read, about 150 bytes apiece, so a 12-byte file cannot ask for more than a few GB.
pub const MAX_NODES: usize = 1 << 24;

/// Why a graph file could not be read or written.
///
/// `Display` gives the whole story (`graphs/x.txt:12:5: edge 11: node id 900 is not below n = 500`); the inner
/// error is in [`FileError::kind`].
#[derive(Debug)]
pub struct FileError {
    /// The file, when read or written through [`read_path`] or [`write_path`].
    pub path: Option<PathBuf>,
    /// 1-based line of the problem; 0 when it concerns the whole file (I/O, graph validation).
    pub line: usize,
    /// 1-based column (in bytes); 0 when not known.
    pub column: usize,
    /// What went wrong.
    pub kind: FileErrorKind,
}

/// What went wrong in a [`FileError`].
#[derive(Debug)]
#[non_exhaustive]
pub enum FileErrorKind {
    /// Reading or writing failed.
    Io(io::Error),
    /// The edge-list text is malformed, or a JSON value is out of range.
    Format(String),
    /// The JSON is malformed or does not match the schema (its line and column are in the [`FileError`]).
    #[cfg(feature = "serde")]
    Json(serde_json::Error),
    /// The file parsed, but the graph is not valid: a cycle, a duplicate name, an input no node has.
    Graph(GraphError),
}

impl FileError {
    fn new(line: usize, column: usize, kind: FileErrorKind) -> Self {
        Self { path: None, line, column, kind }
    }

    fn format(line: usize, column: usize, what: String) -> Self {
        Self::new(line, column, FileErrorKind::Format(what))
    }

    fn io(error: io::Error) -> Self {
        Self::new(0, 0, FileErrorKind::Io(error))
    }

    fn graph(error: GraphError) -> Self {
        Self::new(0, 0, FileErrorKind::Graph(error))
    }

    fn at(mut self, path: &Path) -> Self {
        self.path = Some(path.to_path_buf());
        self
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.line, self.column) {
            (Some(p), 0, _) => write!(f, "{}: ", p.display())?,
            (Some(p), l, 0) => write!(f, "{}:{l}: ", p.display())?,
            (Some(p), l, c) => write!(f, "{}:{l}:{c}: ", p.display())?,
            (None, 0, _) => {}
            (None, l, 0) => write!(f, "line {l}: ")?,
            (None, l, c) => write!(f, "line {l}, column {c}: ")?,
        }
        match &self.kind {
            FileErrorKind::Io(e) => write!(f, "{e}"),
            FileErrorKind::Format(what) => f.write_str(what),
            #[cfg(feature = "serde")]
            FileErrorKind::Json(e) => {
                // serde_json appends the position we already printed in front.
                let text = e.to_string();
                let suffix = format!(" at line {} column {}", e.line(), e.column());
                f.write_str(text.strip_suffix(&suffix).unwrap_or(&text))
            }
            FileErrorKind::Graph(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for FileError {}

/// Reads a graph from `path`: JSON if the extension is `.json` (any case), the edge list otherwise.
pub fn read_path(path: impl AsRef<Path>) -> Result<Graph, FileError> {
    let path = path.as_ref();
    let read = || {
        let file = File::open(path).map_err(FileError::io)?;
        let input = BufReader::with_capacity(1 << 16, file);
        if is_json(path) { read_json_from(input) } else { read_edge_list(input) }
    };
    read().map_err(|e| e.at(path))
}

/// Writes `graph` to `path`: JSON if the extension is `.json`, else the edge list, with costs when it has any.
pub fn write_path(graph: &Graph, path: impl AsRef<Path>) -> Result<(), FileError> {
    let path = path.as_ref();
    let write = || {
        let mut out = BufWriter::with_capacity(1 << 16, File::create(path).map_err(FileError::io)?);
        if is_json(path) {
            write_json_to(graph, &mut out)?;
        } else {
            write_edge_list(graph, &mut out, graph.has_costs()).map_err(FileError::io)?;
        }
        out.flush().map_err(FileError::io)
    };
    write().map_err(|e| e.at(path))
}

fn is_json(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

#[cfg(feature = "serde")]
fn read_json_from(input: impl io::Read) -> Result<Graph, FileError> {
    read_json(input)
}

#[cfg(not(feature = "serde"))]
fn read_json_from(_: impl io::Read) -> Result<Graph, FileError> {
    Err(FileError::format(0, 0, "reading JSON needs weir-schedulers' `serde` feature".into()))
}

#[cfg(feature = "serde")]
fn write_json_to(graph: &Graph, out: impl Write) -> Result<(), FileError> {
    write_json(graph, out).map_err(FileError::io)
}

#[cfg(not(feature = "serde"))]
fn write_json_to(_: &Graph, _: impl Write) -> Result<(), FileError> {
    Err(FileError::format(0, 0, "writing JSON needs weir-schedulers' `serde` feature".into()))
}

/// Reads the edge-list form (see the [module docs](self)).
pub fn read_edge_list(input: impl BufRead) -> Result<Graph, FileError> {
    let mut lines = Lines { input, buf: Vec::new(), number: 0 };
    let Some((at, line)) = lines.next()? else {
        return Err(FileError::format(lines.end(), 0, "header: expected `n m`, found end of file".into()));
    };
    let [n, m] = two_fields(line)
        .ok_or_else(|| FileError::format(at, 0, format!("header: expected `n m`, found `{}`", shown(line))))?;
    let header_number = |(column, field): (usize, &[u8]), what: &str| {
        let value = number(field).ok_or_else(|| {
            FileError::format(
                at,
                column,
                format!("header: {what} must be a non-negative integer, found `{}`", shown(field)),
            )
        })?;
        // u32 ids, u32::MAX reserved.
        if value >= u64::from(u32::MAX) {
            return Err(FileError::format(at, column, format!("header: {what} = {value} is over {}", u32::MAX - 1)));
        }
        Ok(value as usize)
    };
    let (n, m) = (header_number(n, "n")?, header_number(m, "m")?);
    // Nodes are allocated up front (a name each), so a typo'd header must not ask for a terabyte.
    if n > MAX_NODES {
        return Err(FileError::format(at, 1, format!("header: n = {n} is over the limit of {MAX_NODES} nodes")));
    }

    let mut b = GraphBuilder::new();
    b.add_numbered(n).map_err(FileError::graph)?;
    for k in 1..=m {
        let Some((at, line)) = lines.next()? else {
            return Err(FileError::format(lines.end(), 0, format!("expected {m} edges, found {}", k - 1)));
        };
        let [u, v] = two_fields(line)
            .ok_or_else(|| FileError::format(at, 0, format!("edge {k}: expected `u v`, found `{}`", shown(line))))?;
        let id = |(column, field): (usize, &[u8])| match number(field) {
            Some(id) if id < n as u64 => Ok(id as NodeId),
            Some(id) => Err(FileError::format(at, column, format!("edge {k}: node id {id} is not below n = {n}"))),
            None => {
                Err(FileError::format(at, column, format!("edge {k}: expected a node id, found `{}`", shown(field))))
            }
        };
        b.add_edge(id(u)?, id(v)?);
    }

    let mut costs = 0;
    while let Some((at, line)) = lines.next()? {
        for (column, field) in fields(line) {
            if costs == n {
                let what = format!("expected {n} costs after the edges, found more: `{}`", shown(field));
                return Err(FileError::format(at, column, what));
            }
            let cost = number(field).ok_or_else(|| {
                let what = format!("cost {}: expected a non-negative integer, found `{}`", costs + 1, shown(field));
                FileError::format(at, column, what)
            })?;
            b.set_cost(costs as NodeId, cost);
            costs += 1;
        }
    }
    if costs != 0 && costs != n {
        return Err(FileError::format(lines.end(), 0, format!("expected {n} costs after the edges, found {costs}")));
    }
    b.build().map_err(FileError::graph)
}

/// Writes the edge-list form: a comment, `n m`, the edges in input order (grouped by target), then with
/// `with_costs` every node's cost, one a line. Names, kinds, groups and pins are not kept.
pub fn write_edge_list(graph: &Graph, out: impl Write, with_costs: bool) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let (n, m) = (graph.len(), graph.edge_count());
    let costs = if with_costs { ", then a cost in ns per node" } else { "" };
    writeln!(out, "# weir DAG: `n m`, then `u v` per edge u -> v{costs}")?;
    writeln!(out, "{n} {m}")?;
    for v in 0..n as NodeId {
        for &u in graph.predecessors(v) {
            writeln!(out, "{u} {v}")?;
        }
    }
    if with_costs {
        for &cost in graph.costs() {
            writeln!(out, "{cost}")?;
        }
    }
    out.flush()
}

/// Lines with content (comments and blank lines skipped), by 1-based number, without the line ending; one buffer.
struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    number: usize,
}

impl<R: BufRead> Lines<R> {
    fn next(&mut self) -> Result<Option<(usize, &[u8])>, FileError> {
        loop {
            self.buf.clear();
            let read = self.input.read_until(b'\n', &mut self.buf);
            let read = read.map_err(|e| FileError { line: self.number + 1, ..FileError::io(e) })?;
            if read == 0 {
                return Ok(None);
            }
            self.number += 1;
            match self.buf.iter().find(|b| !b.is_ascii_whitespace()) {
                None | Some(b'#' | b'%') => continue,
                Some(_) => break,
            }
        }
        let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
        Ok(Some((self.number, line.strip_suffix(b"\r").unwrap_or(line))))
    }

    /// The line to blame for "ended too soon": the last one.
    fn end(&self) -> usize {
        self.number.max(1)
    }
}

/// Whitespace-separated fields with their 1-based columns.
fn fields(line: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut at = 0;
    core::iter::from_fn(move || {
        while at < line.len() && line[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while at < line.len() && !line[at].is_ascii_whitespace() {
            at += 1;
        }
        (at > start).then(|| (start + 1, &line[start..at]))
    })
}

fn two_fields(line: &[u8]) -> Option<[(usize, &[u8]); 2]> {
    let mut f = fields(line);
    match (f.next(), f.next(), f.next()) {
        (Some(a), Some(b), None) => Some([a, b]),
        _ => None,
    }
}

fn number(field: &[u8]) -> Option<u64> {
    if field.is_empty() {
        return None;
    }
    field.iter().try_fold(0u64, |acc, &d| {
        let digit = d.checked_sub(b'0').filter(|&d| d < 10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A field or line as text for a message, cut short.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.into_owned(),
    }
}

// Strings borrow from the file's bytes where they have no escapes: no allocation per name or input.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonGraph<'a> {
    #[serde(borrow)]
    nodes: Vec<JsonNode<'a>>,
}

#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonNode<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default = "default_kind")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    inputs: Vec<Cow<'a, str>>,
    #[serde(default)]
    cost_ns: u64,
    #[serde(borrow, default)]
    group: Option<Cow<'a, str>>,
    #[serde(default)]
    pin: Option<u32>,
}

#[cfg(feature = "serde")]
fn default_kind() -> Cow<'static, str> {
    Cow::Borrowed("node")
}

/// FNV-1a: names are short and the file is ours to trust, so SipHash's DoS resistance buys nothing here.
#[cfg(feature = "serde")]
struct Fnv(u64);

#[cfg(feature = "serde")]
impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

#[cfg(feature = "serde")]
impl core::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

#[cfg(feature = "serde")]
#[derive(serde::Serialize)]
struct JsonNodeOut<'a> {
    name: &'a str,
    kind: &'a str,
    inputs: Vec<&'a str>,
    cost_ns: u64,
    group: Option<Cow<'a, str>>,
    pin: Option<u32>,
}

/// Reads the JSON form (see the [module docs](self)).
#[cfg(feature = "serde")]
pub fn read_json(mut input: impl io::Read) -> Result<Graph, FileError> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).map_err(FileError::io)?;
    let file: JsonGraph =
        serde_json::from_slice(&bytes).map_err(|e| FileError::new(e.line(), e.column(), FileErrorKind::Json(e)))?;
    let mut b = GraphBuilder::new();
    for node in &file.nodes {
        let v = b.add_node(&node.name, &node.kind).map_err(FileError::graph)?;
        b.set_cost(v, node.cost_ns);
        if let Some(group) = &node.group {
            let group = b.group_id(group);
            b.set_group(v, group);
        }
        match node.pin {
            // u32::MAX means "not pinned" inside the graph.
            Some(u32::MAX) => {
                let what = format!("node {:?}: pin {} is out of range", node.name, u32::MAX);
                return Err(FileError::format(0, 0, what));
            }
            Some(worker) => b.set_pin(v, worker),
            None => {}
        }
    }
    // Resolved here rather than by `add_input_by_name`: a hash lookup, no allocation per edge.
    let ids: HashMap<&str, NodeId, BuildHasherDefault<Fnv>> =
        file.nodes.iter().zip(0..).map(|(node, v)| (&*node.name, v)).collect();
    for (node, v) in file.nodes.iter().zip(0..) {
        for input in &node.inputs {
            let Some(&u) = ids.get(&**input) else {
                let missing = GraphError::MissingInput { node: node.name.to_string(), input: input.to_string() };
                return Err(FileError::graph(missing));
            };
            b.add_edge(u, v);
        }
    }
    b.build().map_err(FileError::graph)
}

/// Writes the JSON form, one node a line, every field present.
#[cfg(feature = "serde")]
pub fn write_json(graph: &Graph, out: impl Write) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, out);
    out.write_all(b"{\"nodes\": [")?;
    for v in 0..graph.len() as NodeId {
        out.write_all(if v == 0 { b"\n" } else { b",\n" })?;
        let node = JsonNodeOut {
            name: graph.name(v),
            kind: graph.kind(v),
            inputs: graph.predecessors(v).iter().map(|&u| graph.name(u)).collect(),
            cost_ns: graph.cost_ns(v),
            group: graph.group(v).map(|g| match graph.group_name(g) {
                Some(name) => Cow::Borrowed(name),
                None => Cow::Owned(g.to_string()),
            }),
            pin: graph.pin(v),
        };
        serde_json::to_writer(&mut out, &node)?;
    }
    out.write_all(b"\n]}\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::shapes::{Shape, random};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("weir-dag-file-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn file(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Everything a graph carries, for round-trip comparison.
    fn summary(g: &Graph) -> Vec<String> {
        (0..g.len() as NodeId)
            .map(|v| {
                let inputs: Vec<&str> = g.predecessors(v).iter().map(|&u| g.name(u)).collect();
                let group = g.group(v).map(|x| g.group_name(x).map_or(x.to_string(), str::to_string));
                format!("{} {} {:?} {} {:?} {:?}", g.name(v), g.kind(v), inputs, g.cost_ns(v), group, g.pin(v))
            })
            .collect()
    }

    fn text(input: &str) -> Result<Graph, FileError> {
        read_edge_list(input.as_bytes())
    }

    fn error(input: &str) -> String {
        text(input).unwrap_err().to_string()
    }

    #[test]
    fn edge_list_round_trip_without_costs() {
        let dir = TempDir::new("plain");
        for shape in [Shape::Grid { width: 9, height: 4 }, Shape::TreeIn { depth: 5 }, Shape::Chain { n: 1 }] {
            let g = shape.build();
            let path = dir.0.join(format!("{shape}.txt"));
            write_path(&g, &path).unwrap();
            let written = std::fs::read_to_string(&path).unwrap();
            let first = written.lines().find(|l| !l.starts_with('#')).unwrap();
            assert_eq!(first, format!("{} {}", g.len(), g.edge_count()));
            assert_eq!(written.lines().count(), 2 + g.edge_count(), "no cost lines");
            let back = read_path(&path).unwrap();
            assert_eq!(summary(&back), summary(&g), "{shape}");
            assert!(!back.has_costs());
        }
    }

    #[test]
    fn edge_list_round_trip_with_costs_and_input_order() {
        // Inputs out of id order, a repeated edge, comments, CRLF, blank lines, costs over several lines.
        let input = "% matrix-market style comment\r\n\n  # indented comment\n4 5\n2 3\n0 3\n1 3\n0 1\n0 1\n\n\
                     10 20\n30\r\n  40\n";
        let g = text(input).unwrap();
        assert_eq!(g.predecessors(3), &[2, 0, 1]);
        assert_eq!(g.predecessors(1), &[0, 0]);
        assert_eq!(g.costs(), &[10, 20, 30, 40]);
        assert_eq!((g.name(2), g.kind(2)), ("2", "node"));

        let dir = TempDir::new("costs");
        let path = dir.0.join("g.edges");
        write_path(&g, &path).unwrap();
        let back = read_path(&path).unwrap();
        assert_eq!(summary(&back), summary(&g));
        assert_eq!(back.costs(), &[10, 20, 30, 40]);

        let mut plain = Vec::new();
        write_edge_list(&g, &mut plain, false).unwrap();
        assert!(!text(core::str::from_utf8(&plain).unwrap()).unwrap().has_costs());
    }

    #[test]
    fn edge_list_errors_name_line_and_field() {
        let dir = TempDir::new("errors");
        // Header on line 1, edges on lines 2..: line 12 holds edge 11.
        let mut body = String::from("500 20\n");
        for k in 0..10 {
            body += &format!("{k} {}\n", k + 1);
        }
        body += "3 900\n";
        let path = dir.file("x.txt", &body);
        let err = read_path(&path).unwrap_err();
        assert_eq!((err.line, err.column), (12, 3));
        assert!(matches!(err.kind, FileErrorKind::Format(_)));
        assert_eq!(err.to_string(), format!("{}:12:3: edge 11: node id 900 is not below n = 500", path.display()));

        assert_eq!(error(""), "line 1: header: expected `n m`, found end of file");
        assert_eq!(error("# only\n\n"), "line 2: header: expected `n m`, found end of file");
        assert_eq!(error("# c\n5\n"), "line 2: header: expected `n m`, found `5`");
        assert_eq!(error("5 6 7\n"), "line 1: header: expected `n m`, found `5 6 7`");
        assert_eq!(error("5  x6\n"), "line 1, column 4: header: m must be a non-negative integer, found `x6`");
        assert_eq!(error("-5 1\n"), "line 1, column 1: header: n must be a non-negative integer, found `-5`");
        assert_eq!(error("4294967295 0\n"), "line 1, column 1: header: n = 4294967295 is over 4294967294");
        assert_eq!(
            error("100000000 0\n"),
            "line 1, column 1: header: n = 100000000 is over the limit of 16777216 nodes"
        );
        assert_eq!(error("3 2\n0 1\n\n1\n"), "line 4: edge 2: expected `u v`, found `1`");
        assert_eq!(error("3 2\n0 1\n1 2x\n"), "line 3, column 3: edge 2: expected a node id, found `2x`");
        assert_eq!(error("3 3\n0 1\n# c\n1 2\n"), "line 4: expected 3 edges, found 2");
        assert_eq!(error("3 1\n0 1\n5 6\n"), "line 3: expected 3 costs after the edges, found 2");
        assert_eq!(
            error("3 1\n0 1\n5 6\n7 8\n"),
            "line 4, column 3: expected 3 costs after the edges, found more: `8`"
        );
        assert_eq!(
            error("3 1\n0 1\n5 6\n7.5\n"),
            "line 4, column 1: cost 3: expected a non-negative integer, found `7.5`"
        );
        assert_eq!(
            error("3 1\n0 1\n1 2 99999999999999999999\n"),
            "line 3, column 5: cost 3: expected a non-negative integer, found `99999999999999999999`"
        );
    }

    #[test]
    fn cycle_in_a_file_is_named() {
        let dir = TempDir::new("cycle");
        let path = dir.file("loop.txt", "4 4\n0 1\n1 2\n2 3\n3 1\n");
        let err = read_path(&path).unwrap_err();
        let FileErrorKind::Graph(GraphError::Cycle { nodes }) = &err.kind else { panic!("{err}") };
        let mut sorted = nodes.clone();
        sorted.sort();
        assert_eq!(sorted, ["1", "2", "3"]);
        assert_eq!(err.line, 0);
        assert!(err.to_string().starts_with(&format!("{}: the graph has a cycle: ", path.display())), "{err}");
        assert_eq!(error("2 1\n1 1\n"), "the graph has a cycle: 1 -> 1");
    }

    #[test]
    fn big_edge_list_round_trips() {
        let g = random(20_000, 2, 7);
        let mut bytes = Vec::new();
        write_edge_list(&g, &mut bytes, false).unwrap();
        let back = read_edge_list(&bytes[..]).unwrap();
        assert_eq!(back.len(), 20_000);
        assert!(back.edges().eq(g.edges()));
    }

    /// 200k nodes, ~400k edges survive both forms. (How fast they load is `weir dag run`'s "loaded in" line.)
    #[test]
    fn big_file_round_trips() {
        let g = random(200_000, 2, 11);
        let dir = TempDir::new("big");
        let path = dir.0.join("big.txt");
        write_path(&g, &path).unwrap();
        let back = read_path(&path).unwrap();
        assert_eq!(back.edge_count(), g.edge_count());
        assert!(back.edges().eq(g.edges()));
        assert!(g.edge_count() > 350_000);
        #[cfg(feature = "serde")]
        {
            let path = dir.0.join("big.json");
            write_path(&g, &path).unwrap();
            let back = read_path(&path).unwrap();
            assert!(back.edges().eq(g.edges()));
        }
    }

    #[cfg(feature = "serde")]
    mod json {
        use super::*;

        fn json(input: &str) -> Result<Graph, FileError> {
            read_json(input.as_bytes())
        }

        fn error(input: &str) -> String {
            json(input).unwrap_err().to_string()
        }

        #[test]
        fn round_trip_with_groups_kinds_pins() {
            let mut b = GraphBuilder::new();
            let late = b.add_node("late", "node").unwrap();
            let x = b.add_node("x \"quoted\"", "source").unwrap();
            let y = b.add_node("y", "price").unwrap();
            b.set_cost(y, 250);
            b.set_pin(y, 3);
            let g1 = b.group_id("IBM");
            b.set_group(x, g1);
            b.set_group(y, g1);
            b.set_group(late, 9); // a group without a name
            b.add_edge(x, y);
            b.add_edge(late, y);
            b.add_edge(x, y);
            let g = b.build().unwrap();

            let dir = TempDir::new("json");
            for (name, g) in
                [("small.json", g), ("fanout.JSON", Shape::FanOut { assets: 4, per_asset: 5, roots: 3 }.build())]
            {
                let path = dir.0.join(name);
                write_path(&g, &path).unwrap();
                let back = read_path(&path).unwrap();
                assert_eq!(summary(&back), summary(&g), "{name}");
                assert_eq!(back.len(), g.len());
            }
            let text = std::fs::read_to_string(dir.0.join("small.json")).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[0], "{\"nodes\": [");
            assert_eq!(
                lines[3],
                concat!(
                    r#"{"name":"y","kind":"price","inputs":["x \"quoted\"","late","x \"quoted\""],"#,
                    r#""cost_ns":250,"group":"IBM","pin":3}"#
                )
            );
            // The nameless group comes back under its number, as a name; first seen, so id 0.
            let back = read_path(dir.0.join("small.json")).unwrap();
            assert_eq!((back.group(0), back.group_name(0)), (Some(0), Some("9")));
            assert_eq!((back.group(2), back.group_name(1)), (Some(1), Some("IBM")));

            let fan = read_path(dir.0.join("fanout.JSON")).unwrap();
            let spot = fan.find("A0003/spot").unwrap();
            assert_eq!((fan.kind(spot), fan.group(spot)), ("source", Some(3)));
            assert_eq!(fan.group_name(3), Some("A0003"));
        }

        #[test]
        fn defaults_and_forward_inputs() {
            let g = json(r#"{"nodes": [{"name": "b", "inputs": ["a"]}, {"name": "a", "pin": 0}]}"#).unwrap();
            assert_eq!((g.kind(0), g.cost_ns(0), g.group(0), g.pin(0)), ("node", 0, None, None));
            assert_eq!((g.pin(1), g.predecessors(0)), (Some(0), &[1][..]));
        }

        #[test]
        fn errors_keep_position_or_name() {
            let dir = TempDir::new("json-errors");
            let path =
                dir.file("typo.json", "{\"nodes\": [\n{\"name\": \"a\"},\n{\"name\": \"b\", \"cots_ns\": 5}\n]}\n");
            let err = read_path(&path).unwrap_err();
            assert!(matches!(err.kind, FileErrorKind::Json(_)), "{err:?}");
            assert_eq!(err.line, 3);
            let shown = err.to_string();
            let prefix = format!("{}:3:{}: unknown field `cots_ns`", path.display(), err.column);
            assert!(shown.starts_with(&prefix), "{shown}");
            assert!(!shown.contains(" at line "), "position printed once: {shown}");

            assert!(error("{\"nodes\": [\n  {\"name\": \"a\",}\n]}").starts_with("line 2, column "));
            assert!(error("{\"nodes\": [{\"name\": \"a\", \"pin\": -1}]}").starts_with("line 1, column "));
            assert!(error(r#"{"nodes": [{"kind": "x"}]}"#).contains("missing field `name`"));
            assert_eq!(
                error(r#"{"nodes": [{"name": "a", "inputs": ["nope"]}]}"#),
                "node \"a\" takes input \"nope\", which no node has"
            );
            assert_eq!(error(r#"{"nodes": [{"name": "a"}, {"name": "a"}]}"#), "two nodes are named \"a\"");
            assert_eq!(
                error(r#"{"nodes": [{"name": "a", "pin": 4294967295}]}"#),
                "node \"a\": pin 4294967295 is out of range"
            );
            let cyclic = dir
                .file("cycle.json", r#"{"nodes": [{"name": "a", "inputs": ["b"]}, {"name": "b", "inputs": ["a"]}]}"#);
            let err = read_path(&cyclic).unwrap_err();
            let shown = err.to_string();
            assert!(
                shown.ends_with("the graph has a cycle: a -> b -> a")
                    || shown.ends_with("the graph has a cycle: b -> a -> b"),
                "{shown}"
            );
            assert!(shown.starts_with(&format!("{}: ", cyclic.display())), "{shown}");
        }
    }
}
