//! The layout file: one TOML file that says which CPU does what in a deployment: NICs and their queues,
//! the CPU polling each queue, the DAG workers, the shared-memory rings, the telemetry CPU and the
//! isolation policy.
//!
//! [`Layout::parse`] reads it, keeping each value's byte span so every [`Problem`] can name
//! `file:line:col`; [`check()`] validates it against a [`Machine`](crate::Machine). Nothing here starts a
//! thread: the runtime and the NIC layer take a checked layout.
//!
//! ```toml
//! [runtime]
//! name = "iex-fh-a"
//! isolation = "warn"              # require | warn | ignore
//!
//! [[nic]]
//! name = "feedA"
//! pci = "0000:3b:00.0"
//! driver = "vfio-pci"
//! rx_queues = 1
//!
//! [[core]]
//! cpu = 4
//! role = "rx"
//! nic = "feedA"
//! queues = [0]
//! ```

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub mod check;
mod schema;

pub use check::check;

/// How strictly hot roles must sit on isolated CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// A hot role on a CPU that is not isolated (`isolcpus`/`nohz_full`) is an error.
    Require,
    /// ... a warning.
    #[default]
    Warn,
    /// ... not reported.
    Ignore,
}

/// What a pinned thread does. Every role but `telemetry` is hot: it spins and wants the CPU to itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Polls NIC Rx queues and runs the feed's poll loop.
    Rx,
    /// Normalizes and builds books from another core's packets.
    Normalize,
    /// Publishes records to the rings.
    Publish,
    /// Runs DAG computation.
    DagWorker,
    /// Telemetry and housekeeping (not hot).
    Telemetry,
}

impl Role {
    /// True for the roles that spin.
    pub fn is_hot(self) -> bool {
        !matches!(self, Role::Telemetry)
    }

    /// The name as the layout file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Rx => "rx",
            Role::Normalize => "normalize",
            Role::Publish => "publish",
            Role::DagWorker => "dag-worker",
            Role::Telemetry => "telemetry",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hugepages the deployment needs, per node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HugepageNeed {
    /// Page size: `"2M"` or `"1G"`.
    pub size: Spanned<String>,
    /// Pages needed per node id (TOML keys are strings: `{ 0 = 4 }`).
    pub per_node: Spanned<std::collections::BTreeMap<String, u64>>,
}

/// `"2M"`, `"2MB"`, `"2MiB"`, `"1G"`, `"2048kB"` → KiB.
pub(crate) fn page_size_kib(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "k" | "kb" | "kib" => 1,
        "m" | "mb" | "mib" => 1024,
        "g" | "gb" | "gib" => 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&k| k > 0)
}

impl HugepageNeed {
    /// The page size in KiB (`"2M"`, `"1G"`, `"2048kB"`), when it is a size; `check` reports when not.
    pub fn size_kib(&self) -> Option<u64> {
        page_size_kib(self.size.get_ref())
    }
}

/// `[runtime]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// A name for the deployment (systemd unit description, reports).
    pub name: Option<Spanned<String>>,
    /// Isolation policy for hot roles.
    #[serde(default)]
    pub isolation: Option<Spanned<Isolation>>,
    /// Allow two hot roles on SMT siblings of one core (default false).
    #[serde(default)]
    pub allow_smt_siblings_hot: Option<Spanned<bool>>,
    /// Hugepages needed.
    pub hugepages: Option<HugepageNeed>,
    /// Housekeeping CPUs (kernel list format, `"0-1"`): where IRQs, RCU callbacks and other threads go.
    /// Default: [`Layout::housekeeping`], the machine's housekeeping CPUs (online, neither isolated nor
    /// nohz_full) outside the hot cores ([`Layout::cpus_to_isolate`]); isolated CPUs are not housekeeping, so
    /// IRQ fixes never point at them.
    pub housekeeping: Option<Spanned<String>>,
}

/// `[[nic]]`: one port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nic {
    /// The name cores refer to.
    pub name: Spanned<String>,
    /// PCI address (`0000:3b:00.0`) of a physical port.
    pub pci: Option<Spanned<String>>,
    /// The driver the port must be bound to (`vfio-pci`), checked when given.
    pub driver: Option<Spanned<String>>,
    /// Rx queues to configure (default 1).
    pub rx_queues: Option<Spanned<u32>>,
    /// Rx descriptors per queue.
    pub rx_desc: Option<Spanned<u32>>,
    /// Hardware Rx timestamps: `require`, `prefer` or `off`.
    pub rx_hw_timestamp: Option<Spanned<String>>,
    /// What `weir run` opens for this NIC when it is not a PCI port: a `--nic` spec (`pcap:FILE`,
    /// `udp:GROUP:PORT`, `dpdk:net_pcap0,rx_pcap=F`).
    pub source: Option<Spanned<String>>,
}

impl Nic {
    /// Rx queues configured (default 1).
    pub fn queue_count(&self) -> u32 {
        self.rx_queues.as_ref().map_or(1, |q| *q.get_ref())
    }
}

/// `[[core]]`: one pinned thread.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Core {
    /// The OS CPU number.
    pub cpu: Spanned<u32>,
    /// What it does.
    pub role: Spanned<Role>,
    /// For `rx`: the NIC it polls.
    pub nic: Option<Spanned<String>>,
    /// For `rx`: the queues it polls (default `[0]`).
    pub queues: Option<Spanned<Vec<u32>>>,
}

/// `[[ring]]`: one shared-memory bus.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ring {
    /// Bus name (a file under `$WEIR_BUS_DIR`) .
    pub name: Spanned<String>,
    /// Explicit file path (on tmpfs or hugetlbfs).
    pub file: Option<Spanned<String>>,
    /// Data capacity: `"64MiB"`, `"1G"`, or bytes; a power of two.
    pub capacity: Spanned<toml::Value>,
    /// The node its memory should be on (default: the producer's).
    pub numa_node: Option<Spanned<u32>>,
    /// CPU of the thread that writes it (its first touch places the pages): an `rx`, `normalize` or
    /// `publish` core.
    pub producer: Option<Spanned<u32>>,
    /// Producer heartbeat period (`"1ms"`), as ECOSYSTEM 5.1 writes it. Added: the sketch has it.
    pub heartbeat: Option<Spanned<String>>,
}

/// `[dag]`: `workers = [8, 10]`, or `partitions = { node0 = [8, 10], node1 = [20] }` (ECOSYSTEM 5.1),
/// or both.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "DagToml")]
pub struct Dag {
    /// The CPUs running DAG workers: `workers`, then every partition's CPUs in key order. Its span is
    /// `workers`' (or `partitions`' when there is no `workers`).
    pub workers: Spanned<Vec<Spanned<u32>>>,
    /// Added with `partitions`: the partitions as written (`node0` → CPUs), checked against the nodes.
    pub partitions: Option<Spanned<std::collections::BTreeMap<String, Vec<Spanned<u32>>>>>,
}

/// `[dag]` as written; either key may be missing (the schema walk requires one of them).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DagToml {
    workers: Option<Spanned<Vec<Spanned<u32>>>>,
    partitions: Option<Spanned<std::collections::BTreeMap<String, Vec<Spanned<u32>>>>>,
}

impl From<DagToml> for Dag {
    fn from(t: DagToml) -> Self {
        let span = match (&t.workers, &t.partitions) {
            (Some(w), _) => w.span(),
            (None, Some(p)) => p.span(),
            (None, None) => 0..0,
        };
        let mut workers: Vec<Spanned<u32>> = t.workers.map(|w| w.into_inner()).unwrap_or_default();
        if let Some(p) = &t.partitions {
            workers.extend(p.get_ref().values().flatten().cloned());
        }
        Dag { workers: Spanned::new(span, workers), partitions: t.partitions }
    }
}

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// The housekeeping CPU telemetry runs on.
    pub cpu: Spanned<u32>,
    /// Added (ECOSYSTEM 5.1): the Prometheus endpoint (`"127.0.0.1:9464"`).
    pub prometheus_listen: Option<Spanned<String>>,
    /// Added (ECOSYSTEM 5.1): how often histograms are published (`"1s"`).
    pub histogram_interval: Option<Spanned<String>>,
}

/// A ring capacity in bytes: an integer, or a number with `K`/`M`/`G` (binary, `KiB`/`KB` alike).
pub(crate) fn capacity_bytes(v: &toml::Value) -> Option<u64> {
    match v {
        toml::Value::Integer(n) => u64::try_from(*n).ok(),
        toml::Value::String(s) => {
            let t = s.trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (n, unit) = t.split_at(split);
            let n: u64 = n.parse().ok()?;
            let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1,
                "k" | "kb" | "kib" => 1 << 10,
                "m" | "mb" | "mib" => 1 << 20,
                "g" | "gb" | "gib" => 1 << 30,
                _ => return None,
            };
            n.checked_mul(mult)
        }
        _ => None,
    }
}

impl Ring {
    /// The capacity in bytes (`"64MiB"`, `"1G"`, an integer), when it is a size; `check` reports when not.
    pub fn capacity_bytes(&self) -> Option<u64> {
        capacity_bytes(self.capacity.get_ref())
    }
}

/// The file's top level, as serde sees it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutToml {
    #[serde(default)]
    runtime: Runtime,
    #[serde(default)]
    nic: Vec<Nic>,
    #[serde(default)]
    core: Vec<Core>,
    #[serde(default)]
    ring: Vec<Ring>,
    dag: Option<Dag>,
    telemetry: Option<Telemetry>,
}

/// A parsed layout file.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// The file it came from (for messages).
    pub path: PathBuf,
    /// Its text (for line and column numbers).
    pub source: String,
    /// `[runtime]`.
    pub runtime: Runtime,
    /// `[[nic]]`.
    pub nics: Vec<Nic>,
    /// `[[core]]`.
    pub cores: Vec<Core>,
    /// `[[ring]]`.
    pub rings: Vec<Ring>,
    /// `[dag]`.
    pub dag: Option<Dag>,
    /// `[telemetry]`.
    pub telemetry: Option<Telemetry>,
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Reported; does not stop a start.
    Warning,
    /// The layout must not start.
    Error,
}

/// One thing wrong with a layout: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// A stable short name of the check (`cpu-exists`, `numa-fit`, ...), for tests and for filtering.
    pub check: &'static str,
    /// The file.
    pub path: PathBuf,
    /// 1-based line and column of the value at fault (`None` for whole-file problems).
    pub line_col: Option<(usize, usize)>,
    /// What is wrong, naming the value (`cpu 47 does not exist (online: 0-31)`).
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}", self.path.display())?;
        if let Some((line, col)) = self.line_col {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": {level}[{}]: {}", self.check, self.message)?;
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of a byte offset into `source`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl Layout {
    /// Read and parse a layout file. An unreadable file is an `io::Error`; a file that does not parse is
    /// a list of problems (syntax, unknown keys with a suggestion, wrong types), each with its position.
    pub fn load(path: &Path) -> std::io::Result<Result<Layout, Vec<Problem>>> {
        let source = std::fs::read_to_string(path)?;
        Ok(Layout::parse(path, source))
    }

    /// Parse layout text; `path` is only used in messages.
    ///
    /// Every syntax error, unknown key (with a "did you mean"), wrong type, missing key and bad enum value
    /// is reported at once, in file order; serde only runs on a tree that passed that walk. Their check
    /// names: `syntax`, `unknown-key`, `wrong-type`, `missing-key`, `invalid-value`.
    pub fn parse(path: &Path, source: String) -> Result<Layout, Vec<Problem>> {
        let error_at = |check: &'static str, span: Option<Range<usize>>, message: String, fix: String| Problem {
            severity: Severity::Error,
            check,
            path: path.to_path_buf(),
            line_col: span.map(|s| line_col(&source, s.start)),
            message,
            fix,
        };
        let (tree, errors) = toml::de::DeTable::parse_recoverable(&source);
        if !errors.is_empty() {
            let fix = "fix the TOML syntax here (strings need quotes, tables are `[name]` or `[[name]]`)";
            let mut problems: Vec<Problem> = errors
                .iter()
                .map(|e| error_at("syntax", e.span(), e.message().trim().to_string(), fix.into()))
                .collect();
            // The parser's recovery cascades (an unclosed array errs on every following token): one per line.
            problems.sort_by_key(|p| p.line_col);
            problems.dedup_by_key(|p| p.line_col.map(|(line, _)| line));
            return Err(problems);
        }
        let mut walker = schema::Walker::new(path, &source);
        walker.document(&tree);
        if !walker.problems.is_empty() {
            let mut problems = walker.problems;
            problems.sort_by_key(|p| p.line_col);
            return Err(problems);
        }
        // The walk passed; serde can still refuse what it does not model (out-of-range numbers).
        let parsed = LayoutToml::deserialize(toml::de::Deserializer::from(tree));
        match parsed {
            Ok(t) => Ok(Layout {
                path: path.to_path_buf(),
                runtime: t.runtime,
                nics: t.nic,
                cores: t.core,
                rings: t.ring,
                dag: t.dag,
                telemetry: t.telemetry,
                source,
            }),
            Err(e) => {
                let fix = "correct this value".to_string();
                Err(vec![error_at("wrong-type", e.span(), e.message().trim().to_string(), fix)])
            }
        }
    }

    /// A problem at a span of this file.
    pub fn problem(
        &self,
        severity: Severity,
        check: &'static str,
        span: Option<Range<usize>>,
        message: String,
        fix: String,
    ) -> Problem {
        Problem {
            severity,
            check,
            path: self.path.clone(),
            line_col: span.map(|s| line_col(&self.source, s.start)),
            message,
            fix,
        }
    }

    /// The isolation policy (default `warn`).
    pub fn isolation(&self) -> Isolation {
        self.runtime.isolation.as_ref().map_or(Isolation::default(), |i| *i.get_ref())
    }

    /// The NIC with this name.
    pub fn nic(&self, name: &str) -> Option<&Nic> {
        self.nics.iter().find(|n| n.name.get_ref() == name)
    }

    /// Every pinned CPU with its role: `[[core]]` tables, then DAG workers, then telemetry.
    pub fn roles(&self) -> Vec<(u32, Role)> {
        let mut roles: Vec<(u32, Role)> = self.cores.iter().map(|c| (*c.cpu.get_ref(), *c.role.get_ref())).collect();
        if let Some(dag) = &self.dag {
            roles.extend(dag.workers.get_ref().iter().map(|w| (*w.get_ref(), Role::DagWorker)));
        }
        if let Some(t) = &self.telemetry {
            roles.push((*t.cpu.get_ref(), Role::Telemetry));
        }
        roles
    }

    /// Housekeeping CPUs (IRQs, RCU callbacks, other threads): `runtime.housekeeping` when it parses; else the
    /// online CPUs that are neither isolated nor nohz_full on `machine` and not [to be
    /// isolated](Self::cpus_to_isolate); else, when isolation covers everything, any online CPU not to be
    /// isolated; else any online CPU without a hot role. The checks and every generator use this one rule,
    /// so an IRQ fix and the generated IRQ script agree.
    pub fn housekeeping(&self, machine: &crate::Machine) -> crate::CpuSet {
        let explicit = self.runtime.housekeeping.as_ref().and_then(|h| crate::CpuSet::parse_list(h.get_ref()).ok());
        explicit.unwrap_or_else(|| {
            let quiet = self.cpus_to_isolate(machine);
            let kernel = machine.housekeeping().difference(&quiet);
            [kernel, machine.online.difference(&quiet), machine.online.difference(&self.hot_cpus())]
                .into_iter()
                .find(|set| !set.is_empty())
                .unwrap_or_default()
        })
    }

    /// CPUs with a hot role.
    pub fn hot_cpus(&self) -> crate::CpuSet {
        self.roles().into_iter().filter(|(_, r)| r.is_hot()).map(|(c, _)| c).collect()
    }

    /// What the kernel should keep to itself for weir: the hot CPUs and the online SMT siblings of each that
    /// the layout gives no role. A task or IRQ on an idle sibling shares the hot core's caches and
    /// pipeline, so the whole core is isolated, as the kernel command line `weir hw gen` writes says.
    pub fn cpus_to_isolate(&self, machine: &crate::Machine) -> crate::CpuSet {
        let hot = self.hot_cpus();
        let used: crate::CpuSet = self.roles().into_iter().map(|(c, _)| c).collect();
        let mut out = hot.clone();
        for cpu in hot.iter() {
            // An offline hot CPU is `cpu-exists`' error; its core is not weir's.
            if let Some(info) = machine.cpu(cpu).filter(|c| c.online) {
                out = out.union(&info.smt_siblings.intersection(&machine.online).difference(&used));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        for (text, kib) in [("1G", 1 << 20), ("2M", 2048), ("2MiB", 2048), ("1gb", 1 << 20), ("2048kB", 2048)] {
            assert_eq!(page_size_kib(text), Some(kib), "{text}");
        }
        for bad in ["1T", "G", "0G", "99999999999999999999G"] {
            assert_eq!(page_size_kib(bad), None, "{bad}");
        }
    }

    #[test]
    fn line_and_column() {
        let s = "a = 1\nbb = 2\n";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 6), (2, 1));
        assert_eq!(line_col(s, 11), (2, 6));
    }

    #[test]
    fn parses_the_sketch() {
        let text = r#"
[runtime]
isolation = "require"
[[nic]]
name = "feedA"
pci = "0000:3b:00.0"
rx_queues = 2
[[core]]
cpu = 4
role = "rx"
nic = "feedA"
queues = [0, 1]
[dag]
workers = [8, 10]
[telemetry]
cpu = 1
"#;
        let layout = Layout::parse(Path::new("l.toml"), text.to_string()).unwrap();
        assert_eq!(layout.isolation(), Isolation::Require);
        assert_eq!(
            layout.roles(),
            vec![(4, Role::Rx), (8, Role::DagWorker), (10, Role::DagWorker), (1, Role::Telemetry)]
        );
        assert_eq!(layout.hot_cpus().to_string(), "4,8,10");
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = Layout::parse(Path::new("l.toml"), "[[core]]\ncpu = \"x\"\nrole = \"rx\"\n".into()).unwrap_err();
        assert_eq!(err[0].line_col, Some((2, 7)), "{}", err[0]);
    }
}
