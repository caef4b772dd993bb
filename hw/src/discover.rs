//! Discovery: fill a [`Machine`] from `/sys` and `/proc` under a root directory (`/` for this machine, or a
//! copy of the files discovery reads: a fixture, or the tree [`snapshot`] writes for a user to send).
//!
//! Every file, symlink and directory entry discovery uses is remembered with what it held, so [`snapshot`]
//! can write exactly that, and discovering the snapshot gives the same [`Machine`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::cpuset::CpuSet;
use crate::machine::{ClockInfo, CpuInfo, HugePages, IrqInfo, Machine, NicInfo, NodeInfo};
use crate::pci::is_full_pci_address;

const CPU: &str = "sys/devices/system/cpu";
const NODE: &str = "sys/devices/system/node";
const PCI: &str = "sys/bus/pci/devices";
const NET: &str = "sys/class/net";

/// Why discovery failed. Paths are relative to the root, as in the root's own tree.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// A file every Linux machine has is absent: the root is not a machine's `/` nor a copy of one.
    #[error(
        "{}: not found under {}; --root probably points at the wrong directory (it should be / or a copy \
         holding sys/ and proc/, as `snapshot` writes)",
        path.display(),
        root.display()
    )]
    WrongRoot {
        /// The root given.
        root: PathBuf,
        /// The file that is missing.
        path: PathBuf,
    },
    /// A file needed here (e.g. an online CPU's topology) is absent.
    #[error("{}: not found", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A file is present but does not hold what the kernel writes there.
    #[error("{}: cannot parse {content:?}: {why}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it holds (cut at 200 bytes).
        content: String,
        /// What was expected.
        why: String,
    },
    /// Reading failed for another reason than absence (permissions, I/O).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl DiscoverError {
    /// The file the error is about, relative to the root.
    pub fn path(&self) -> &Path {
        match self {
            DiscoverError::WrongRoot { path, .. }
            | DiscoverError::Missing { path }
            | DiscoverError::Parse { path, .. }
            | DiscoverError::Io { path, .. } => path,
        }
    }
}

type Result<T> = std::result::Result<T, DiscoverError>;

/// The root, and everything read from it (root-relative paths as discovery named them).
#[derive(Debug)]
struct SysRoot {
    root: PathBuf,
    files: BTreeMap<PathBuf, Vec<u8>>,
    links: BTreeSet<PathBuf>,
    entries: BTreeSet<PathBuf>,
}

/// Absent, or a path through something that is not a directory: both mean "not there".
fn is_absent(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

impl SysRoot {
    fn new(root: &Path) -> Self {
        SysRoot { root: root.to_path_buf(), files: BTreeMap::new(), links: BTreeSet::new(), entries: BTreeSet::new() }
    }

    /// The file's text, `None` when absent.
    fn read(&mut self, rel: impl AsRef<Path>) -> Result<Option<String>> {
        let rel = rel.as_ref();
        match fs::read(self.root.join(rel)) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                self.files.insert(rel.to_path_buf(), bytes);
                Ok(Some(text))
            }
            Err(e) if is_absent(&e) => Ok(None),
            Err(source) => Err(DiscoverError::Io { path: rel.to_path_buf(), source }),
        }
    }

    /// A symlink's target, `None` when absent or not a link.
    fn read_link(&mut self, rel: impl AsRef<Path>) -> Result<Option<PathBuf>> {
        let rel = rel.as_ref();
        match fs::read_link(self.root.join(rel)) {
            Ok(target) => {
                self.links.insert(rel.to_path_buf());
                Ok(Some(target))
            }
            Err(e) if is_absent(&e) || e.kind() == io::ErrorKind::InvalidInput => Ok(None),
            Err(source) => Err(DiscoverError::Io { path: rel.to_path_buf(), source }),
        }
    }

    /// Names in a directory that `keep` accepts, sorted; empty when the directory is absent.
    fn list(&mut self, rel: impl AsRef<Path>, keep: impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let rel = rel.as_ref();
        let dir = match fs::read_dir(self.root.join(rel)) {
            Ok(dir) => dir,
            Err(e) if is_absent(&e) => return Ok(Vec::new()),
            Err(source) => return Err(DiscoverError::Io { path: rel.to_path_buf(), source }),
        };
        let mut names = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|source| DiscoverError::Io { path: rel.to_path_buf(), source })?;
            if let Some(name) = entry.file_name().to_str().filter(|n| keep(n)) {
                self.entries.insert(rel.join(name));
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Names `<prefix>N` in a directory, as the numbers N, ascending.
    fn list_numbered(&mut self, rel: impl AsRef<Path>, prefix: &str) -> Result<Vec<u32>> {
        let names = self.list(rel, |n| n.strip_prefix(prefix).is_some_and(|d| d.parse::<u32>().is_ok()))?;
        let mut ids: Vec<u32> = names.iter().filter_map(|n| n[prefix.len()..].parse().ok()).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn parsed<T>(
        &mut self,
        rel: impl AsRef<Path>,
        why: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>> {
        let rel = rel.as_ref();
        match self.read(rel)? {
            None => Ok(None),
            Some(text) => match parse(text.trim()) {
                Some(v) => Ok(Some(v)),
                None => Err(parse_error(rel, &text, why)),
            },
        }
    }

    fn u32(&mut self, rel: impl AsRef<Path>) -> Result<Option<u32>> {
        self.parsed(rel, "expected an unsigned integer", |t| t.parse().ok())
    }

    fn u64(&mut self, rel: impl AsRef<Path>) -> Result<Option<u64>> {
        self.parsed(rel, "expected an unsigned integer", |t| t.parse().ok())
    }

    fn cpulist(&mut self, rel: impl AsRef<Path>) -> Result<Option<CpuSet>> {
        let rel = rel.as_ref();
        match self.read(rel)? {
            None => Ok(None),
            // Kernels built with CONFIG_CPUMASK_OFFSTACK print an unset mask (nohz_full without `nohz_full=`)
            // as `(null)`.
            Some(text) if text.trim() == "(null)" => Ok(Some(CpuSet::empty())),
            Some(text) => CpuSet::parse_list(&text).map(Some).map_err(|e| parse_error(rel, &text, &e.to_string())),
        }
    }

    /// Where `rel` really is in the tree: symlinks with relative targets followed (lexically, so dangling
    /// ones resolve too), with each link passed on the way. `/proc` is taken as named: `proc/self` is this
    /// process, and a copy keeps it as a plain directory.
    fn resolve(&self, rel: &Path) -> io::Result<(PathBuf, Vec<(PathBuf, PathBuf)>)> {
        let mut links = Vec::new();
        if rel.starts_with("proc") {
            return Ok((rel.to_path_buf(), links));
        }
        let mut pending: VecDeque<OsString> = VecDeque::new();
        for c in rel.components() {
            push_component(&mut pending, c, false);
        }
        let mut cur = PathBuf::new();
        let mut hops = 0;
        while let Some(c) = pending.pop_front() {
            if c == ".." {
                cur.pop();
                continue;
            }
            let cand = cur.join(&c);
            let full = self.root.join(&cand);
            let is_link = fs::symlink_metadata(&full).map(|m| m.file_type().is_symlink()).unwrap_or(false);
            let target = if is_link { Some(fs::read_link(&full)?) } else { None };
            match target {
                Some(target) if target.is_relative() => {
                    hops += 1;
                    if hops > 40 {
                        return Err(io::Error::other(format!("{}: too many levels of symlinks", rel.display())));
                    }
                    for c in target.components().rev() {
                        push_component(&mut pending, c, true);
                    }
                    links.push((cand, target));
                }
                _ => cur = cand,
            }
        }
        Ok((cur, links))
    }
}

fn push_component(pending: &mut VecDeque<OsString>, c: Component<'_>, front: bool) {
    let name = match c {
        Component::Normal(n) => n.to_os_string(),
        Component::ParentDir => OsString::from(".."),
        _ => return,
    };
    if front {
        pending.push_front(name);
    } else {
        pending.push_back(name);
    }
}

fn parse_error(rel: &Path, text: &str, why: &str) -> DiscoverError {
    let mut content = text.to_string();
    if content.len() > 200 {
        let mut cut = 200;
        while !content.is_char_boundary(cut) {
            cut -= 1;
        }
        content.truncate(cut);
    }
    DiscoverError::Parse { path: rel.to_path_buf(), content, why: why.to_string() }
}

/// The PCI address of a netdev's (resolved) device: the device itself, or the parent of a virtio device
/// (`.../0000:00:03.0/virtio2`). Not any further ancestor: a USB NIC under `.../0000:00:14.0/usb1/...` or an
/// mlx5 subfunction is not that PCI function.
fn pci_of_device(device: &Path) -> Option<&str> {
    let name = device.file_name()?.to_str()?;
    if is_full_pci_address(name) {
        return Some(name);
    }
    let parent = device.parent()?.file_name()?.to_str()?;
    (name.starts_with("virtio") && is_full_pci_address(parent)).then_some(parent)
}

/// The names `/proc/interrupts` ends a numeric IRQ line with, after the per-CPU counts, the chip name and
/// the hardware IRQ (`5-edge` on x86, `27 Level` on arm64).
fn irq_line(line: &str, ncpus: usize) -> Option<(u32, String)> {
    let (num, rest) = line.trim_start().split_once(':')?;
    let number = num.parse::<u32>().ok()?;
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    let mut i = ncpus.min(tokens.len());
    // The chip name.
    i += 1;
    // The hardware IRQ: `N-edge` in one token, or `N` then `Edge`/`Level`.
    if let Some(hw) = tokens.get(i) {
        if hw.bytes().all(|b| b.is_ascii_digit()) {
            i += 2;
        } else if hw.split_once('-').is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
            i += 1;
        }
    }
    let name = tokens.get(i..).map(|t| t.join(" ")).unwrap_or_default();
    Some((number, name))
}

impl Machine {
    /// Read the machine under `root` (`/` for this one). Files a kernel may lack (isolated, nohz_full,
    /// die_id, caches, hugepages, effective affinities, PCI, the clocksource) give defaults; a file that does
    /// not parse is an error naming it and its content.
    pub fn discover(root: &Path) -> std::result::Result<Machine, DiscoverError> {
        let mut sys = SysRoot::new(root);
        discover(&mut sys)
    }

    /// [`Machine::discover`], and every path it read (files, symlinks and directory entries), relative to
    /// `root`, sorted.
    pub fn discover_with_sources(root: &Path) -> std::result::Result<(Machine, Vec<PathBuf>), DiscoverError> {
        let mut sys = SysRoot::new(root);
        let machine = discover(&mut sys)?;
        let mut paths: BTreeSet<PathBuf> = sys.files.into_keys().collect();
        paths.extend(sys.links);
        paths.extend(sys.entries);
        Ok((machine, paths.into_iter().collect()))
    }
}

fn discover(sys: &mut SysRoot) -> Result<Machine> {
    let essential = |sys: &mut SysRoot, name: &str| -> Result<CpuSet> {
        let rel = Path::new(CPU).join(name);
        sys.cpulist(&rel)?.ok_or_else(|| DiscoverError::WrongRoot { root: sys.root.clone(), path: rel })
    };
    let online = essential(sys, "online")?;
    let present = essential(sys, "present")?;
    let isolated = sys.cpulist(format!("{CPU}/isolated"))?.unwrap_or_default();
    let nohz_full = sys.cpulist(format!("{CPU}/nohz_full"))?.unwrap_or_default();

    let nodes = nodes(sys, &online)?;
    let mut cpus = Vec::with_capacity(present.len());
    for id in present.iter() {
        cpus.push(cpu(sys, id, &online, &nodes)?);
    }

    let allowed = allowed(sys)?.unwrap_or_else(|| online.clone());
    let cmdline = sys.read("proc/cmdline")?.map(|s| s.trim().to_string()).unwrap_or_default();
    let nics = nics(sys)?;
    let irqs = irqs(sys)?;
    let clock = clock(sys)?;
    Ok(Machine {
        root: sys.root.clone(),
        cpus,
        nodes,
        online,
        isolated,
        nohz_full,
        allowed,
        cmdline,
        nics,
        irqs,
        clock,
    })
}

fn nodes(sys: &mut SysRoot, online: &CpuSet) -> Result<Vec<NodeInfo>> {
    let ids = sys.list_numbered(NODE, "node")?;
    if ids.is_empty() {
        // A kernel without NUMA: one node 0 holding the online CPUs, as `nodeN/cpulist` would.
        return Ok(vec![NodeInfo {
            id: 0,
            cpus: online.clone(),
            distances: vec![10],
            mem_total_kib: None,
            hugepages: Vec::new(),
        }]);
    }
    let mut nodes = Vec::with_capacity(ids.len());
    for &id in &ids {
        let dir = PathBuf::from(format!("{NODE}/node{id}"));
        let cpus = sys.cpulist(dir.join("cpulist"))?.unwrap_or_default();
        let distances = sys
            .parsed(dir.join("distance"), &format!("expected {} distances (one per node)", ids.len()), |t| {
                let d: Option<Vec<u32>> = t.split_whitespace().map(|x| x.parse().ok()).collect();
                d.filter(|d| d.len() == ids.len())
            })?
            .unwrap_or_default();
        let mem_total_kib = sys.parsed(dir.join("meminfo"), "expected `Node N MemTotal: <n> kB`", |t| {
            match t.lines().find(|l| l.contains("MemTotal:")) {
                None => Some(None),
                Some(l) => l.split_whitespace().rev().nth(1).and_then(|n| n.parse::<u64>().ok()).map(Some),
            }
        })?;
        let mut hugepages = Vec::new();
        let hp_dir = dir.join("hugepages");
        let sizes = sys.list(&hp_dir, |n| n.strip_prefix("hugepages-").and_then(|s| s.strip_suffix("kB")).is_some())?;
        for name in sizes {
            let size = &name["hugepages-".len()..name.len() - 2];
            let size_kib = size.parse::<u64>().map_err(|_| parse_error(&hp_dir.join(&name), &name, "bad size"))?;
            let total = sys.u64(hp_dir.join(&name).join("nr_hugepages"))?.unwrap_or(0);
            let free = sys.u64(hp_dir.join(&name).join("free_hugepages"))?.unwrap_or(0);
            hugepages.push(HugePages { size_kib, total, free });
        }
        hugepages.sort_by_key(|h| h.size_kib);
        nodes.push(NodeInfo { id, cpus, distances, mem_total_kib: mem_total_kib.flatten(), hugepages });
    }
    Ok(nodes)
}

fn cpu(sys: &mut SysRoot, id: u32, online_set: &CpuSet, nodes: &[NodeInfo]) -> Result<CpuInfo> {
    let dir = PathBuf::from(format!("{CPU}/cpu{id}"));
    let online = match sys.u32(dir.join("online"))? {
        Some(v) => v != 0,
        // CPU 0 usually cannot go offline and has no `online` file.
        None => online_set.contains(id),
    };
    // `cpuN/nodeM` stays for an offline CPU, whose id x86 drops from `nodeM/cpulist`.
    let node = match sys.list_numbered(&dir, "node")?.first() {
        Some(&n) => n,
        None => nodes.iter().find(|n| n.cpus.contains(id)).map_or(0, |n| n.id),
    };
    let topo = dir.join("topology");
    // The kernel removes `topology/` and `cache/` of an offline CPU: those fields are placeholders then.
    let need = |sys: &mut SysRoot, name: &str| -> Result<Option<u32>> {
        let rel = topo.join(name);
        match sys.u32(&rel)? {
            None if online => Err(DiscoverError::Missing { path: rel }),
            v => Ok(v),
        }
    };
    let package = need(sys, "physical_package_id")?.unwrap_or(0);
    let core = need(sys, "core_id")?.unwrap_or(id);
    let die = sys.u32(topo.join("die_id"))?.unwrap_or(0);
    let siblings_rel = topo.join("thread_siblings_list");
    let smt_siblings = match sys.cpulist(&siblings_rel)? {
        Some(s) => s,
        None if online => return Err(DiscoverError::Missing { path: siblings_rel }),
        None => CpuSet::new([id]),
    };
    let (l3, l3_kib) = l3(sys, &dir)?;
    Ok(CpuInfo { id, package, die, core, node, l3, l3_kib, smt_siblings, online })
}

/// The L3 of a CPU: its `id` (or the lowest CPU sharing it) and size.
fn l3(sys: &mut SysRoot, cpu_dir: &Path) -> Result<(Option<u32>, Option<u32>)> {
    let cache = cpu_dir.join("cache");
    for index in sys.list_numbered(&cache, "index")? {
        let dir = cache.join(format!("index{index}"));
        if sys.u32(dir.join("level"))? != Some(3) {
            continue;
        }
        let id = match sys.u32(dir.join("id"))? {
            Some(id) => Some(id),
            None => sys.cpulist(dir.join("shared_cpu_list"))?.and_then(|s| s.iter().next()),
        };
        let kib = sys.parsed(dir.join("size"), "expected a size like `32768K`", |t| {
            let (n, mult) = match t.as_bytes().last()? {
                b'K' => (&t[..t.len() - 1], 1),
                b'M' => (&t[..t.len() - 1], 1024),
                _ => (t, 1),
            };
            n.parse::<u32>().ok()?.checked_mul(mult)
        })?;
        return Ok((id, kib));
    }
    Ok((None, None))
}

fn allowed(sys: &mut SysRoot) -> Result<Option<CpuSet>> {
    let rel = Path::new("proc/self/status");
    let Some(status) = sys.read(rel)? else { return Ok(None) };
    match status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")) {
        None => Err(parse_error(rel, &status, "no `Cpus_allowed_list:` line")),
        Some(list) => CpuSet::parse_list(list).map(Some).map_err(|e| parse_error(rel, list, &e.to_string())),
    }
}

/// A PCI device's driver, `vendor:device` ids and node.
fn pci_attrs(sys: &mut SysRoot, addr: &str) -> Result<(Option<String>, Option<String>, Option<u32>)> {
    let dir = PathBuf::from(format!("{PCI}/{addr}"));
    let driver = driver_name(sys, &dir)?;
    let hex = |sys: &mut SysRoot, name: &str| {
        sys.parsed(dir.join(name), "expected a hex id like `0x8086`", |t| {
            let h = t.strip_prefix("0x")?;
            u16::from_str_radix(h, 16).ok().map(|_| h.to_string())
        })
    };
    let ids = match (hex(sys, "vendor")?, hex(sys, "device")?) {
        (Some(v), Some(d)) => Some(format!("{v}:{d}")),
        _ => None,
    };
    let numa_node = sys
        .parsed(dir.join("numa_node"), "expected a node number or -1", |t| t.parse::<i64>().ok())?
        .and_then(|n| u32::try_from(n).ok());
    Ok((driver, ids, numa_node))
}

/// The last component of `<dir>/driver`'s target.
fn driver_name(sys: &mut SysRoot, dir: &Path) -> Result<Option<String>> {
    Ok(sys.read_link(dir.join("driver"))?.and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned())))
}

fn nics(sys: &mut SysRoot) -> Result<Vec<NicInfo>> {
    let mut nics: Vec<NicInfo> = Vec::new();
    for addr in sys.list(PCI, is_full_pci_address)? {
        let class = sys.parsed(format!("{PCI}/{addr}/class"), "expected a class like `0x020000`", |t| {
            u32::from_str_radix(t.strip_prefix("0x")?, 16).ok()
        })?;
        if class.is_some_and(|c| c >> 16 == 0x02) {
            let (driver, ids, numa_node) = pci_attrs(sys, &addr)?;
            nics.push(NicInfo { pci: Some(addr), netdevs: Vec::new(), driver, ids, numa_node, rx_queues: None });
        }
    }
    for name in sys.list(NET, |_| true)? {
        let dev = PathBuf::from(format!("{NET}/{name}/device"));
        // lo, veth, ifb, bridges: no device behind them.
        if sys.read_link(&dev)?.is_none() {
            continue;
        }
        let (real, _) = sys.resolve(&dev).map_err(|source| DiscoverError::Io { path: dev.clone(), source })?;
        let pci = pci_of_device(&real);
        let queues = sys.list(format!("{NET}/{name}/queues"), |n| {
            n.strip_prefix("rx-").is_some_and(|d| d.parse::<u32>().is_ok())
        })?;
        let rx = u32::try_from(queues.len()).unwrap_or(u32::MAX);
        let existing = pci.and_then(|p| nics.iter().position(|n| n.pci.as_deref() == Some(p)));
        let i = match existing {
            Some(i) => i,
            None => {
                let nic = match pci {
                    Some(addr) => {
                        let (driver, ids, numa_node) = pci_attrs(sys, addr)?;
                        NicInfo {
                            pci: Some(addr.to_string()),
                            netdevs: Vec::new(),
                            driver,
                            ids,
                            numa_node,
                            rx_queues: None,
                        }
                    }
                    None => {
                        let driver = driver_name(sys, &dev)?;
                        NicInfo { pci: None, netdevs: Vec::new(), driver, ids: None, numa_node: None, rx_queues: None }
                    }
                };
                nics.push(nic);
                nics.len() - 1
            }
        };
        let nic = &mut nics[i];
        nic.netdevs.push(name);
        // Several netdevs on one PCI function (mlx4 ports): their queues add up.
        nic.rx_queues = Some(nic.rx_queues.unwrap_or(0).saturating_add(rx));
    }
    nics.sort_by(|a, b| (&a.pci, a.netdevs.first()).cmp(&(&b.pci, b.netdevs.first())));
    Ok(nics)
}

fn irqs(sys: &mut SysRoot) -> Result<Vec<IrqInfo>> {
    let Some(text) = sys.read("proc/interrupts")? else { return Ok(Vec::new()) };
    let mut lines = text.lines();
    let ncpus = lines.next().map_or(0, |h| h.split_whitespace().filter(|t| t.starts_with("CPU")).count());
    let mut irqs = Vec::new();
    for (number, name) in lines.filter_map(|l| irq_line(l, ncpus)) {
        let dir = PathBuf::from(format!("proc/irq/{number}"));
        // Unreadable affinity (a container masking /proc/irq): leave the IRQ out rather than guess.
        let Some(affinity) = sys.cpulist(dir.join("smp_affinity_list"))? else { continue };
        let effective = sys.cpulist(dir.join("effective_affinity_list"))?;
        irqs.push(IrqInfo { number, name, affinity, effective });
    }
    irqs.sort_by_key(|i| i.number);
    Ok(irqs)
}

fn clock(sys: &mut SysRoot) -> Result<ClockInfo> {
    let dir = "sys/devices/system/clocksource/clocksource0";
    let clocksource = sys.read(format!("{dir}/current_clocksource"))?.map(|s| s.trim().to_string()).unwrap_or_default();
    let available = sys
        .read(format!("{dir}/available_clocksource"))?
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let cpuinfo = sys.read("proc/cpuinfo")?.unwrap_or_default();
    let flag_lines: Vec<Vec<&str>> = cpuinfo
        .lines()
        .filter_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == "flags").then(|| value.split_whitespace().collect())
        })
        .collect();
    let everywhere = |flag: &str| !flag_lines.is_empty() && flag_lines.iter().all(|f| f.contains(&flag));
    Ok(ClockInfo {
        clocksource,
        available,
        constant_tsc: everywhere("constant_tsc"),
        nonstop_tsc: everywhere("nonstop_tsc"),
        tsc_known_freq: everywhere("tsc_known_freq"),
    })
}

/// Discover the machine under `root` and write every file, symlink and directory entry discovery read into
/// `out` (absent or empty), as it was read: symlinks stay symlinks with their relative targets, and each
/// file goes where the links lead, so `Machine::discover(out)` equals `Machine::discover(root)` but for
/// [`Machine::root`]. `proc/self` becomes a plain directory. Returns the number of files and links written.
pub fn snapshot(root: &Path, out: &Path) -> io::Result<usize> {
    let mut sys = SysRoot::new(root);
    discover(&mut sys).map_err(io::Error::other)?;
    if out.exists() && fs::read_dir(out)?.next().is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{}: not empty; snapshot writes into a new or empty directory", out.display()),
        ));
    }
    fs::create_dir_all(out)?;
    let mut links: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let mut written = 0;
    let at = |rel: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", rel.display()));
    for (rel, bytes) in &sys.files {
        let (real, via) = sys.resolve(rel).map_err(|e| at(rel, e))?;
        links.extend(via);
        let dest = out.join(&real);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| at(rel, e))?;
        }
        fs::write(&dest, bytes).map_err(|e| at(rel, e))?;
        written += 1;
    }
    // Directory entries (an `rx-0` queue, an `lo` netdev) and link targets: their place in the tree, even
    // where no file inside was read.
    for rel in sys.entries.iter().chain(&sys.links) {
        let (real, via) = sys.resolve(rel).map_err(|e| at(rel, e))?;
        links.extend(via);
        fs::create_dir_all(out.join(&real)).map_err(|e| at(rel, e))?;
    }
    for (link, target) in &links {
        let dest = out.join(link);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| at(link, e))?;
        }
        std::os::unix::fs::symlink(target, &dest).map_err(|e| at(link, e))?;
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irq_names() {
        assert_eq!(
            irq_line(" 24:          1          0  IO-APIC   5-edge      ACPI:Ged", 2),
            Some((24, "ACPI:Ged".to_string()))
        );
        assert_eq!(
            irq_line(" 38:   0  20149 PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0", 2),
            Some((38, "virtio2-input.0".to_string()))
        );
        assert_eq!(irq_line(" 11:  1234  GICv3  27 Level     arch_timer", 1), Some((11, "arch_timer".to_string())));
        assert_eq!(
            irq_line("  1:  9  0  IO-APIC   1-edge      i8042, timer", 2),
            Some((1, "i8042, timer".to_string()))
        );
        assert_eq!(irq_line("LOC:   12467696   14548340   Local timer interrupts", 2), None);
    }

    #[test]
    fn pci_of_a_netdev_device() {
        let pci = |p: &str| pci_of_device(Path::new(p)).map(str::to_string);
        assert_eq!(pci("sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0").as_deref(), Some("0000:3b:00.0"));
        assert_eq!(pci("sys/devices/pci0000:00/0000:00:03.0/virtio2").as_deref(), Some("0000:00:03.0"));
        assert_eq!(pci("sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0"), None);
        assert_eq!(pci("sys/devices/pci0000:ae/0000:ae:00.0/0000:af:00.1/mlx5_core.sf.2"), None);
    }
}
