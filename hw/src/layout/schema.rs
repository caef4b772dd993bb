//! The layout file's keys, walked over toml's spanned parse tree before serde sees it: serde stops at its
//! first error, this walk reports every unknown key (with a suggestion), wrong type, missing key and bad
//! enum value at once, each at its own position.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{Problem, Severity, line_col};

/// What a key's value must be.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    /// A non-negative integer that fits a `u32`.
    Int,
    Bool,
    /// A string, one of these.
    Enum(&'static [&'static str]),
    IntArray,
    /// A string with a unit or an integer (ring capacity).
    StrOrInt,
    /// A table of integers under free-form keys (`per_node = { 0 = 4 }`).
    IntMap,
    /// A table of integer arrays under free-form keys (`partitions = { node0 = [8] }`).
    IntArrayMap,
    Table(&'static [Key]),
    /// An array of tables (`[[nic]]`).
    Tables(&'static [Key]),
}

#[derive(Debug)]
struct Key {
    name: &'static str,
    kind: Kind,
    required: bool,
}

const fn opt(name: &'static str, kind: Kind) -> Key {
    Key { name, kind, required: false }
}

const fn req(name: &'static str, kind: Kind) -> Key {
    Key { name, kind, required: true }
}

/// `Isolation`'s spellings.
pub(super) const ISOLATION: &[&str] = &["require", "warn", "ignore"];
/// `Role`'s spellings.
pub(super) const ROLES: &[&str] = &["rx", "normalize", "publish", "dag-worker", "telemetry"];

const HUGEPAGES: &[Key] = &[req("size", Kind::Str), req("per_node", Kind::IntMap)];
const RUNTIME: &[Key] = &[
    opt("name", Kind::Str),
    opt("isolation", Kind::Enum(ISOLATION)),
    opt("allow_smt_siblings_hot", Kind::Bool),
    opt("hugepages", Kind::Table(HUGEPAGES)),
    opt("housekeeping", Kind::Str),
];
const NIC: &[Key] = &[
    req("name", Kind::Str),
    opt("pci", Kind::Str),
    opt("driver", Kind::Str),
    opt("rx_queues", Kind::Int),
    opt("rx_desc", Kind::Int),
    // A string, not an enum here: the `rx-hw-timestamp` check names the allowed values.
    opt("rx_hw_timestamp", Kind::Str),
    opt("source", Kind::Str),
];
const CORE: &[Key] =
    &[req("cpu", Kind::Int), req("role", Kind::Enum(ROLES)), opt("nic", Kind::Str), opt("queues", Kind::IntArray)];
const RING: &[Key] = &[
    req("name", Kind::Str),
    opt("file", Kind::Str),
    req("capacity", Kind::StrOrInt),
    opt("numa_node", Kind::Int),
    opt("producer", Kind::Int),
    opt("heartbeat", Kind::Str),
];
const DAG: &[Key] = &[opt("workers", Kind::IntArray), opt("partitions", Kind::IntArrayMap)];
const TELEMETRY: &[Key] =
    &[req("cpu", Kind::Int), opt("prometheus_listen", Kind::Str), opt("histogram_interval", Kind::Str)];
const TOP: &[Key] = &[
    opt("runtime", Kind::Table(RUNTIME)),
    opt("nic", Kind::Tables(NIC)),
    opt("core", Kind::Tables(CORE)),
    opt("ring", Kind::Tables(RING)),
    opt("dag", Kind::Table(DAG)),
    opt("telemetry", Kind::Table(TELEMETRY)),
];

/// The closest of `candidates` to `word`, when close enough to be a typo.
pub(super) fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (c, strsim::jaro_winkler(word, c), strsim::levenshtein(word, c)))
        .filter(|&(_, jw, lev)| jw >= 0.85 || lev <= 2)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _, _)| c)
}

/// Walks the tree and collects problems.
#[derive(Debug)]
pub(super) struct Walker<'a> {
    path: &'a Path,
    source: &'a str,
    pub(super) problems: Vec<Problem>,
}

impl<'a> Walker<'a> {
    /// A walker for the file at `path` holding `source`.
    pub(super) fn new(path: &'a Path, source: &'a str) -> Self {
        Walker { path, source, problems: Vec::new() }
    }

    /// Check the whole document.
    pub(super) fn document(&mut self, root: &Spanned<DeTable<'_>>) {
        self.table("", root.span(), root.get_ref(), TOP);
    }

    fn push(&mut self, check: &'static str, span: Range<usize>, message: String, fix: String) {
        self.problems.push(Problem {
            severity: Severity::Error,
            check,
            path: self.path.to_path_buf(),
            line_col: Some(line_col(self.source, span.start)),
            message,
            fix,
        });
    }

    /// `ctx` is the table as the file names it (`[runtime]`, `[[nic]]`, `` for the top level).
    fn table(&mut self, ctx: &str, span: Range<usize>, table: &DeTable<'_>, keys: &[Key]) {
        for (k, v) in table.iter() {
            let name: &str = k.get_ref();
            match keys.iter().find(|key| key.name == name) {
                Some(key) => self.value(ctx, key, v),
                None => self.unknown(ctx, k.span(), name, keys),
            }
        }
        for key in keys.iter().filter(|k| k.required) {
            if !table.iter().any(|(k, _)| k.get_ref() == key.name) {
                self.push(
                    "missing-key",
                    span.clone(),
                    format!("{ctx} has no `{}`", key.name),
                    format!("add `{} = ...` to this table", key.name),
                );
            }
        }
        if ctx == "[dag]" && !table.iter().any(|(k, _)| matches!(k.get_ref().as_ref(), "workers" | "partitions")) {
            self.push(
                "missing-key",
                span,
                "[dag] has neither `workers` nor `partitions`".into(),
                "add `workers = [8, 10]` or `partitions = { node0 = [8, 10] }`, or remove [dag]".into(),
            );
        }
    }

    fn unknown(&mut self, ctx: &str, span: Range<usize>, name: &str, keys: &[Key]) {
        let known: Vec<&str> = keys.iter().map(|k| k.name).collect();
        let place = if ctx.is_empty() { "at the top level".to_string() } else { format!("in {ctx}") };
        let (hint, fix) = match suggest(name, known.iter().copied()) {
            Some(s) => (format!(" (did you mean `{s}`?)"), format!("rename it to `{s}`")),
            None => (String::new(), format!("remove it; known keys here: {}", known.join(", "))),
        };
        self.push("unknown-key", span, format!("unknown key `{name}` {place}{hint}"), fix);
    }

    fn value(&mut self, ctx: &str, key: &Key, v: &Spanned<DeValue<'_>>) {
        let what = if ctx.is_empty() { key.name.to_string() } else { format!("`{}` in {ctx}", key.name) };
        match (key.kind, v.get_ref()) {
            (Kind::Str, DeValue::String(_)) | (Kind::Bool, DeValue::Boolean(_)) => {}
            (Kind::Int, DeValue::Integer(_)) => self.int(&what, v),
            // Units, range and power of two: the `ring-placement` check.
            (Kind::StrOrInt, DeValue::String(_) | DeValue::Integer(_)) => {}
            (Kind::Enum(allowed), DeValue::String(s)) => {
                if !allowed.contains(&s.as_ref()) {
                    let hint =
                        suggest(s, allowed.iter().copied()).map_or(String::new(), |s| format!("; did you mean `{s}`?"));
                    self.push(
                        "invalid-value",
                        v.span(),
                        format!("{what} is `{s}`, expected one of {}{hint}", quoted(allowed)),
                        format!("use one of {}", quoted(allowed)),
                    );
                }
            }
            (Kind::IntArray, DeValue::Array(items)) => self.int_array(&what, items),
            (Kind::IntMap, DeValue::Table(t)) => {
                for (k, item) in t.iter() {
                    self.expect_int(&format!("{what} key `{}`", k.get_ref()), item);
                }
            }
            (Kind::IntArrayMap, DeValue::Table(t)) => {
                for (k, item) in t.iter() {
                    let what = format!("{what} key `{}`", k.get_ref());
                    match item.get_ref() {
                        DeValue::Array(items) => self.int_array(&what, items),
                        other => self.wrong_type(&what, item.span(), "an array of CPU numbers", other),
                    }
                }
            }
            (Kind::Table(keys), DeValue::Table(t)) => {
                let inner = if ctx.is_empty() { format!("[{}]", key.name) } else { format!("{ctx}.{}", key.name) };
                self.table(&inner, v.span(), t, keys);
            }
            (Kind::Tables(_), DeValue::Table(_)) => self.push(
                "wrong-type",
                v.span(),
                format!("`{}` is a list of tables, written [[{}]], not [{}]", key.name, key.name, key.name),
                format!("write [[{}]] (double brackets), one per item", key.name),
            ),
            (Kind::Tables(keys), DeValue::Array(items)) => {
                let inner = format!("[[{}]]", key.name);
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::Table(t) => self.table(&inner, item.span(), t, keys),
                        other => self.wrong_type(&what, item.span(), "a table", other),
                    }
                }
            }
            (kind, other) => self.wrong_type(&what, v.span(), expected(kind), other),
        }
    }

    fn int_array(&mut self, what: &str, items: &[Spanned<DeValue<'_>>]) {
        for item in items {
            self.expect_int(&format!("an item of {what}"), item);
        }
    }

    fn expect_int(&mut self, what: &str, v: &Spanned<DeValue<'_>>) {
        match v.get_ref() {
            DeValue::Integer(_) => self.int(what, v),
            other => self.wrong_type(what, v.span(), "a non-negative integer", other),
        }
    }

    /// Integers must fit a `u32` (CPU, node, queue and page counts).
    fn int(&mut self, what: &str, v: &Spanned<DeValue<'_>>) {
        let Some(i) = v.get_ref().as_integer() else { return };
        let fits = u64::from_str_radix(i.as_str(), i.radix()).is_ok_and(|n| n <= u64::from(u32::MAX));
        if !fits {
            self.push(
                "wrong-type",
                v.span(),
                format!("{what} is {}, expected an integer from 0 to {}", i.as_str(), u32::MAX),
                "use a non-negative number".into(),
            );
        }
    }

    fn wrong_type(&mut self, what: &str, span: Range<usize>, expected: &str, found: &DeValue<'_>) {
        self.push(
            "wrong-type",
            span,
            format!("{what} must be {expected}, found {}", found.type_str()),
            format!("write {expected} here"),
        );
    }
}

fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Str | Kind::Enum(_) => "a string",
        Kind::Int => "a non-negative integer",
        Kind::Bool => "true or false",
        Kind::IntArray => "an array of integers",
        Kind::StrOrInt => "a size (\"64MiB\") or a number of bytes",
        Kind::IntMap | Kind::IntArrayMap | Kind::Table(_) => "a table",
        Kind::Tables(_) => "an array of tables",
    }
}

/// `` `a`, `b` or `c` ``.
pub(super) fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match q.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => q.join(""),
    }
}
