//! Validation of a [`Layout`] against a [`Machine`]: every problem at once, each with its position and fix.
//!
//! One function per check; each pushes problems under one stable name (see [`CHECKS`]). Errors are what
//! makes the deployment wrong (a CPU that is not there, a queue nobody polls); warnings are tuning advice
//! (NUMA fit, IRQs on hot CPUs, the clock).

use std::collections::BTreeMap;
use std::ops::Range;

use super::schema::{quoted, suggest};
use super::{Isolation, Layout, Problem, Role, Severity};
use crate::{CpuSet, Machine};

/// DPDK's default `RTE_MAX_QUEUES_PER_PORT`: more Rx queues than this on one port is a typo.
pub const MAX_RX_QUEUES: u32 = 1024;

/// Every check name this module reports, in the order the checks run.
pub const CHECKS: &[&str] = &[
    "cpu-exists",
    "cpu-allowed",
    "one-hot-role-per-cpu",
    "hot-smt-siblings",
    "isolation",
    "sibling-quiet",
    "duplicate-name",
    "nic-source",
    "nic-present",
    "nic-driver",
    "numa-fit",
    "rx-queues",
    "queue-pollers",
    "rx-hw-timestamp",
    "hugepages",
    "ring-placement",
    "irq-on-hot-cpu",
    "clock",
    "telemetry-off-hot",
    "housekeeping",
    "dag-workers",
    "dag-partitions",
];

/// Every problem of `layout` on `machine`, errors and warnings, in file order (whole-file problems first).
pub fn check(layout: &Layout, machine: &Machine) -> Vec<Problem> {
    let mut cx = Cx { l: layout, m: machine, places: places(layout), out: Vec::new() };
    cpu_exists(&mut cx);
    cpu_allowed(&mut cx);
    one_hot_role_per_cpu(&mut cx);
    hot_smt_siblings(&mut cx);
    isolation(&mut cx);
    sibling_quiet(&mut cx);
    duplicate_name(&mut cx);
    nic_source(&mut cx);
    nic_present(&mut cx);
    nic_driver(&mut cx);
    numa_fit(&mut cx);
    rx_queues(&mut cx);
    queue_pollers(&mut cx);
    rx_hw_timestamp(&mut cx);
    hugepages(&mut cx);
    ring_placement(&mut cx);
    irq_on_hot_cpu(&mut cx);
    clock(&mut cx);
    telemetry_off_hot(&mut cx);
    housekeeping(&mut cx);
    dag_workers(&mut cx);
    dag_partitions(&mut cx);
    let mut out = cx.out;
    // Stable: problems at one position keep the check order above.
    out.sort_by_key(|p| p.line_col);
    out
}

/// One pinned thread as the file places it.
#[derive(Debug, Clone)]
struct Place {
    cpu: u32,
    role: Role,
    /// The CPU value's span.
    span: Range<usize>,
    /// Where it was written: `[[core]]`, `[dag]`, `telemetry.cpu`.
    source: &'static str,
}

/// In [`Layout::roles`]' order: `[[core]]`, DAG workers, telemetry.
fn places(l: &Layout) -> Vec<Place> {
    let mut v: Vec<Place> = l
        .cores
        .iter()
        .map(|c| Place { cpu: *c.cpu.get_ref(), role: *c.role.get_ref(), span: c.cpu.span(), source: "[[core]]" })
        .collect();
    if let Some(dag) = &l.dag {
        v.extend(dag.workers.get_ref().iter().map(|w| Place {
            cpu: *w.get_ref(),
            role: Role::DagWorker,
            span: w.span(),
            source: "[dag]",
        }));
    }
    if let Some(t) = &l.telemetry {
        v.push(Place { cpu: *t.cpu.get_ref(), role: Role::Telemetry, span: t.cpu.span(), source: "telemetry.cpu" });
    }
    v
}

struct Cx<'a> {
    l: &'a Layout,
    m: &'a Machine,
    places: Vec<Place>,
    out: Vec<Problem>,
}

impl Cx<'_> {
    fn push(&mut self, sev: Severity, check: &'static str, span: Option<Range<usize>>, message: String, fix: String) {
        debug_assert!(CHECKS.contains(&check) && !fix.is_empty());
        let p = self.l.problem(sev, check, span, message, fix);
        self.out.push(p);
    }

    fn error(&mut self, check: &'static str, span: Range<usize>, message: String, fix: String) {
        self.push(Severity::Error, check, Some(span), message, fix);
    }

    fn warn(&mut self, check: &'static str, span: Range<usize>, message: String, fix: String) {
        self.push(Severity::Warning, check, Some(span), message, fix);
    }

    /// `line N` of a span, to point at the other half of a conflict.
    fn line(&self, span: &Range<usize>) -> String {
        format!("line {}", super::line_col(&self.l.source, span.start).0)
    }

    fn online(&self, cpu: u32) -> bool {
        self.m.cpu(cpu).is_some_and(|c| c.online)
    }

    /// CPUs the file gives any role.
    fn used(&self) -> CpuSet {
        self.places.iter().map(|p| p.cpu).collect()
    }

    /// Distinct hot CPUs, each with its first hot place.
    fn hot(&self) -> Vec<Place> {
        let mut seen = CpuSet::empty();
        let mut v = Vec::new();
        for p in self.places.iter().filter(|p| p.role.is_hot()) {
            if !seen.contains(p.cpu) {
                seen.insert(p.cpu);
                v.push(p.clone());
            }
        }
        v
    }

    /// Isolated (isolcpus or nohz_full), online, allowed CPUs no role uses: where to move a hot role.
    fn free_isolated(&self, node: Option<u32>) -> CpuSet {
        let mut free = self.m.isolated.union(&self.m.nohz_full).intersection(&self.m.online).difference(&self.used());
        if !self.m.allowed.is_empty() {
            free = free.intersection(&self.m.allowed);
        }
        if let Some(n) = node {
            free = free.intersection(&self.m.node_cpus(n));
        }
        free
    }

    /// Housekeeping CPUs: [`Layout::housekeeping`].
    fn housekeeping(&self) -> CpuSet {
        self.l.housekeeping(self.m)
    }
}

/// `none` for an empty set, so messages never end in a bare colon.
fn list(set: &CpuSet) -> String {
    if set.is_empty() { "none".into() } else { set.to_string() }
}

/// Every placed CPU is present and online.
fn cpu_exists(cx: &mut Cx<'_>) {
    let online = list(&cx.m.online);
    for p in cx.places.clone() {
        match cx.m.cpu(p.cpu) {
            None => cx.error(
                "cpu-exists",
                p.span,
                format!("cpu {} does not exist (online: {online})", p.cpu),
                format!("choose an online CPU ({online})"),
            ),
            Some(c) if !c.online => cx.error(
                "cpu-exists",
                p.span,
                format!("cpu {} is offline (online: {online})", p.cpu),
                format!(
                    "bring it online (echo 1 > /sys/devices/system/cpu/cpu{}/online) or choose an online CPU",
                    p.cpu
                ),
            ),
            Some(_) => {}
        }
    }
}

/// Every placed CPU is in this process's allowed set (affinity and cgroup cpuset). An empty `allowed` means
/// discovery could not tell, and is not checked.
fn cpu_allowed(cx: &mut Cx<'_>) {
    if cx.m.allowed.is_empty() {
        return;
    }
    let allowed = cx.m.allowed.to_string();
    for p in cx.places.clone() {
        if cx.online(p.cpu) && !cx.m.allowed.contains(p.cpu) {
            cx.error(
                "cpu-allowed",
                p.span,
                format!("cpu {} is outside this process's allowed set {allowed} (container cpuset or taskset?)", p.cpu),
                format!(
                    "widen the container's cpuset (docker --cpuset-cpus, systemd AllowedCPUs=) or the taskset mask, \
                     or choose from {allowed}"
                ),
            );
        }
    }
}

/// Two hot roles on one CPU. Telemetry sharing a hot CPU is `telemetry-off-hot`; a CPU listed twice in
/// `[dag]` is `dag-workers`.
fn one_hot_role_per_cpu(cx: &mut Cx<'_>) {
    let places = cx.places.clone();
    for (j, b) in places.iter().enumerate() {
        let first = places[..j].iter().find(|a| {
            a.cpu == b.cpu && a.role.is_hot() && b.role.is_hot() && !(a.source == "[dag]" && b.source == "[dag]")
        });
        if let Some(a) = first {
            let free = list(&cx.free_isolated(None));
            cx.error(
                "one-hot-role-per-cpu",
                b.span.clone(),
                format!(
                    "cpu {} has two hot roles: {} ({} at {}) and {} ({} at {})",
                    b.cpu,
                    a.role,
                    a.source,
                    cx.line(&a.span),
                    b.role,
                    b.source,
                    cx.line(&b.span)
                ),
                format!("give each hot role a CPU of its own (unused isolated CPUs: {free})"),
            );
        }
    }
}

/// Two hot CPUs that are SMT siblings share one core's pipeline, unless `runtime.allow_smt_siblings_hot`.
fn hot_smt_siblings(cx: &mut Cx<'_>) {
    if cx.l.runtime.allow_smt_siblings_hot.as_ref().is_some_and(|a| *a.get_ref()) {
        return;
    }
    let hot = cx.hot();
    for (j, b) in hot.iter().enumerate() {
        for a in &hot[..j] {
            let siblings = cx.m.cpu(a.cpu).is_some_and(|c| c.smt_siblings.contains(b.cpu));
            if siblings {
                let (x, y) = if a.cpu < b.cpu { (a, b) } else { (b, a) };
                cx.error(
                    "hot-smt-siblings",
                    b.span.clone(),
                    format!(
                        "cpu {} and cpu {} are SMT siblings; both host hot roles ({}, {})",
                        x.cpu, y.cpu, x.role, y.role
                    ),
                    format!(
                        "move cpu {}'s role to another core (unused isolated CPUs: {}), or set \
                         runtime.allow_smt_siblings_hot = true",
                        b.cpu,
                        list(&cx.free_isolated(None))
                    ),
                );
            }
        }
    }
}

/// Hot roles on CPUs outside isolcpus/nohz_full: an error under `require`, a warning under `warn`.
fn isolation(cx: &mut Cx<'_>) {
    let policy = cx.l.isolation();
    if policy == Isolation::Ignore {
        return;
    }
    let isolated = cx.m.isolated.union(&cx.m.nohz_full);
    for p in cx.hot() {
        if !cx.online(p.cpu) || isolated.contains(p.cpu) {
            continue;
        }
        let message =
            format!("cpu {} (role={}) is not in isolcpus/nohz_full (isolated: {})", p.cpu, p.role, list(&isolated));
        let free = list(&cx.free_isolated(cx.m.cpu(p.cpu).map(|c| c.node)));
        let fix = match policy {
            Isolation::Require => format!(
                "add it to isolcpus= and nohz_full= on the kernel command line, move the role to an unused \
                 isolated CPU of its node ({free}), or set runtime.isolation = \"warn\""
            ),
            _ => format!(
                "add it to isolcpus= and nohz_full= on the kernel command line, or move the role to an unused \
                 isolated CPU of its node ({free})"
            ),
        };
        let sev = if policy == Isolation::Require { Severity::Error } else { Severity::Warning };
        cx.push(sev, "isolation", Some(p.span), message, fix);
    }
}

/// The other half of a hot core: an online SMT sibling that the kernel may schedule on (not isolated) or
/// that telemetry uses shares the hot CPU's caches and pipeline. A warning, unless `isolation = "ignore"`;
/// two hot siblings are [`hot_smt_siblings`]'s.
fn sibling_quiet(cx: &mut Cx<'_>) {
    if cx.l.isolation() == Isolation::Ignore {
        return;
    }
    let isolated = cx.m.isolated.union(&cx.m.nohz_full);
    let hot = cx.hot_set();
    let hk = cx.housekeeping();
    let places = cx.places.clone();
    for p in cx.hot() {
        let Some(info) = cx.m.cpu(p.cpu).filter(|c| c.online) else { continue };
        let siblings = info.smt_siblings.intersection(&cx.m.online).difference(&hot);
        for sib in siblings.iter().filter(|&s| s != p.cpu) {
            let at = format!("cpu {} (role={}) shares its core with cpu {sib}", p.cpu, p.role);
            let (message, fix) = match places.iter().find(|q| q.cpu == sib) {
                Some(q) => (
                    format!("{at}, which runs {} ({} at {})", q.role, q.source, cx.line(&q.span)),
                    format!("move {} to a housekeeping CPU on another core and leave cpu {sib} idle", q.role),
                ),
                // Named or left as housekeeping, the generators send IRQs and other threads there.
                None if hk.contains(sib) && cx.l.runtime.housekeeping.is_some() => (
                    format!("{at}, which runtime.housekeeping names: IRQs and other threads run there"),
                    format!("take cpu {sib} out of runtime.housekeeping, then isolate it and leave it idle"),
                ),
                None if hk.contains(sib) => (
                    format!(
                        "{at}, which housekeeping needs: no CPU outside the hot cores is left for IRQs and other threads"
                    ),
                    "leave a whole core without a hot role for housekeeping, or turn SMT off".into(),
                ),
                None if !isolated.contains(sib) => (
                    format!(
                        "{at}, which is not isolated: the kernel runs other tasks there, on the same caches and pipeline"
                    ),
                    format!(
                        "isolate cpu {sib} too and leave it idle (`weir hw gen --target kernel-cmdline` does), take \
                         it offline (echo 0 > /sys/devices/system/cpu/cpu{sib}/online), or turn SMT off"
                    ),
                ),
                None => continue,
            };
            cx.warn("sibling-quiet", p.span.clone(), message, fix);
        }
    }
}

/// NIC and ring names are what cores and consumers refer to: each must be unique.
fn duplicate_name(cx: &mut Cx<'_>) {
    let names: Vec<(&str, &str, Range<usize>)> =
        cx.l.nics
            .iter()
            .map(|n| ("nic", n.name.get_ref().as_str(), n.name.span()))
            .chain(cx.l.rings.iter().map(|r| ("ring", r.name.get_ref().as_str(), r.name.span())))
            .collect();
    let mut problems = Vec::new();
    for (j, (kind, name, span)) in names.iter().enumerate() {
        if let Some((_, _, first)) = names[..j].iter().find(|(k, n, _)| k == kind && n == name) {
            problems.push((span.clone(), format!("{kind} {name} is declared twice (first at {})", cx.line(first))));
        }
    }
    for (span, message) in problems {
        cx.error("duplicate-name", span, message, "rename or remove one of them".into());
    }
}

/// A NIC needs a `pci` address or a `source` to open.
fn nic_source(cx: &mut Cx<'_>) {
    let l = cx.l;
    for nic in &l.nics {
        if nic.pci.is_none() && nic.source.is_none() {
            let name = nic.name.get_ref();
            cx.error(
                "nic-source",
                nic.name.span(),
                format!("nic {name} has neither `pci` nor `source`: weir cannot open it"),
                "add pci = \"0000:3b:00.0\" (a port) or source = \"pcap:FILE\" / \"udp:GROUP:PORT\"".into(),
            );
        }
    }
}

/// Describe the machine's NICs for a "not found" message.
fn machine_nics(m: &Machine) -> String {
    if m.nics.is_empty() {
        return "none".into();
    }
    let v: Vec<String> = m
        .nics
        .iter()
        .map(|n| {
            let mut s = n.pci.clone().unwrap_or_else(|| "(no pci)".into());
            if let Some(d) = &n.driver {
                s += &format!(" {d}");
            }
            for d in &n.netdevs {
                s += &format!(" {d}");
            }
            s
        })
        .collect();
    v.join(", ")
}

/// A NIC's PCI address is on the machine.
fn nic_present(cx: &mut Cx<'_>) {
    let l = cx.l;
    let found = machine_nics(cx.m);
    for nic in &l.nics {
        let Some(pci) = &nic.pci else { continue };
        if !crate::pci::is_pci_address(pci.get_ref()) {
            let fix = match cx.m.nic(pci.get_ref()).and_then(|n| n.pci.as_deref()) {
                Some(bdf) => format!("use pci = \"{bdf}\" ({}'s address)", pci.get_ref()),
                None => "write it as DDDD:BB:DD.F (`lspci -D | grep -i ether`)".into(),
            };
            cx.error(
                "nic-present",
                pci.span(),
                format!("nic {}: pci = \"{}\" is not a PCI address", nic.name.get_ref(), pci.get_ref()),
                fix,
            );
            continue;
        }
        if cx.m.nic(pci.get_ref()).is_none() {
            cx.error(
                "nic-present",
                pci.span(),
                format!("nic {}: no NIC at {} (found: {found})", nic.name.get_ref(), pci.get_ref()),
                "check the address with `dpdk-devbind.py --status` or `lspci -D | grep -i ether`".into(),
            );
        }
    }
}

/// A NIC is bound to the driver the file expects.
fn nic_driver(cx: &mut Cx<'_>) {
    let l = cx.l;
    for nic in &l.nics {
        let (Some(pci), Some(want)) = (&nic.pci, &nic.driver) else { continue };
        let Some(found) = cx.m.nic(pci.get_ref()) else { continue };
        if found.driver.as_deref() != Some(want.get_ref().as_str()) {
            let bdf = found.pci.as_deref().unwrap_or(pci.get_ref());
            let bound = found.driver.as_deref().map_or("no driver".to_string(), |d| d.to_string());
            cx.error(
                "nic-driver",
                want.span(),
                format!("nic {} {bdf} is bound to {bound}, expected {}", nic.name.get_ref(), want.get_ref()),
                format!("run dpdk-devbind.py -b {} {bdf}", want.get_ref()),
            );
        }
    }
}

/// An rx core on another node than its NIC crosses the interconnect for every packet (a warning: it works).
fn numa_fit(cx: &mut Cx<'_>) {
    let mut problems = Vec::new();
    for core in cx.l.cores.iter().filter(|c| *c.role.get_ref() == Role::Rx) {
        let Some(name) = &core.nic else { continue };
        let Some(nic) = cx.l.nic(name.get_ref()) else { continue };
        let Some(node) = nic.pci.as_ref().and_then(|p| cx.m.nic(p.get_ref())).and_then(|n| n.numa_node) else {
            continue;
        };
        let cpu = *core.cpu.get_ref();
        let Some(info) = cx.m.cpu(cpu) else { continue };
        if info.node != node {
            let right = list(&cx.m.node_cpus(node));
            problems.push((
                core.cpu.span(),
                format!(
                    "cpu {cpu} (role=rx, nic={}) is on node {} but {} is on node {node}; choose from cpus {right}",
                    name.get_ref(),
                    info.node,
                    name.get_ref()
                ),
                format!(
                    "move the rx core to a CPU of node {node}: {right} (isolated and unused: {})",
                    list(&cx.free_isolated(Some(node)))
                ),
            ));
        }
    }
    for (span, message, fix) in problems {
        cx.warn("numa-fit", span, message, fix);
    }
}

/// Queue numbers fit `rx_queues`, `rx_queues` fits what the kernel exposes, rx cores name a declared NIC.
fn rx_queues(cx: &mut Cx<'_>) {
    let l = cx.l;
    for nic in &l.nics {
        let Some(q) = &nic.rx_queues else { continue };
        let name = nic.name.get_ref();
        if *q.get_ref() == 0 {
            cx.error("rx-queues", q.span(), format!("nic {name}: rx_queues = 0"), "use 1 or more".into());
            continue;
        }
        if *q.get_ref() > MAX_RX_QUEUES {
            cx.error(
                "rx-queues",
                q.span(),
                format!("nic {name}: rx_queues = {} is above DPDK's {MAX_RX_QUEUES} queues per port", q.get_ref()),
                format!("use at most {MAX_RX_QUEUES} (RTE_MAX_QUEUES_PER_PORT)"),
            );
            continue;
        }
        let found = nic.pci.as_ref().and_then(|p| cx.m.nic(p.get_ref()));
        if let Some((max, found)) = found.and_then(|f| f.rx_queues.map(|m| (m, f)))
            && *q.get_ref() > max
        {
            let dev = found.netdevs.first().cloned().unwrap_or_else(|| "the netdev".into());
            cx.warn(
                "rx-queues",
                q.span(),
                format!(
                    "nic {name}: rx_queues = {} exceeds the {max} rx queues the kernel netdev {dev} exposes",
                    q.get_ref()
                ),
                format!(
                    "check the hardware maximum with `ethtool -l {dev}` (raise with `ethtool -L {dev} combined {}`), \
                         or lower rx_queues",
                    q.get_ref()
                ),
            );
        }
    }
    let declared: Vec<&str> = l.nics.iter().map(|n| n.name.get_ref().as_str()).collect();
    for core in &l.cores {
        let cpu = *core.cpu.get_ref();
        let role = *core.role.get_ref();
        if role != Role::Rx {
            for span in core.nic.as_ref().map(|n| n.span()).into_iter().chain(core.queues.as_ref().map(|q| q.span())) {
                cx.warn(
                    "rx-queues",
                    span,
                    format!("cpu {cpu} (role={role}) names a nic or queues, which only rx cores poll; ignored"),
                    "remove `nic`/`queues` from this core, or make it role = \"rx\"".into(),
                );
            }
            continue;
        }
        let Some(name) = &core.nic else {
            cx.error(
                "rx-queues",
                core.role.span(),
                format!("cpu {cpu} (role=rx) has no `nic`"),
                format!(
                    "add nic = \"NAME\" (declared: {})",
                    if declared.is_empty() { "none".into() } else { declared.join(", ") }
                ),
            );
            continue;
        };
        let Some(nic) = l.nic(name.get_ref()) else {
            let fix = match suggest(name.get_ref(), declared.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? (declared: {})", declared.join(", ")),
                None => format!("declare it in a [[nic]] table (declared: {})", list_names(&declared)),
            };
            cx.error(
                "rx-queues",
                name.span(),
                format!("cpu {cpu} polls nic {}, which no [[nic]] declares", name.get_ref()),
                fix,
            );
            continue;
        };
        let count = nic.queue_count();
        if count == 0 || count > MAX_RX_QUEUES {
            continue; // reported above; nothing to compare the queues with
        }
        if let Some(qs) = &core.queues {
            if qs.get_ref().is_empty() {
                cx.error(
                    "rx-queues",
                    qs.span(),
                    format!("cpu {cpu} (role=rx) polls no queue"),
                    "list its queues, e.g. queues = [0]".into(),
                );
            }
            let over: CpuSet = qs.get_ref().iter().copied().filter(|&q| q >= count).collect();
            if !over.is_empty() {
                cx.error(
                    "rx-queues",
                    qs.span(),
                    format!("queue {over} assigned but nic {} has rx_queues={count}", name.get_ref()),
                    format!("raise rx_queues on nic {} or use queues 0-{}", name.get_ref(), count - 1),
                );
            }
        }
    }
}

fn list_names(names: &[&str]) -> String {
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

/// Every queue `0..rx_queues` of every NIC is polled by exactly one rx core.
fn queue_pollers(cx: &mut Cx<'_>) {
    let l = cx.l;
    for nic in &l.nics {
        let name = nic.name.get_ref();
        let count = nic.queue_count();
        if count > MAX_RX_QUEUES {
            continue; // `rx-queues` reports it
        }
        // queue → (cpu, span of its `queues` or `cpu`).
        let mut pollers: BTreeMap<u32, Vec<(u32, Range<usize>)>> = BTreeMap::new();
        for core in l.cores.iter().filter(|c| *c.role.get_ref() == Role::Rx) {
            if core.nic.as_ref().is_none_or(|n| n.get_ref() != name) {
                continue;
            }
            let span = core.queues.as_ref().map_or(core.cpu.span(), |q| q.span());
            let queues = core.queues.as_ref().map_or(vec![0], |q| q.get_ref().clone());
            for q in queues.into_iter().filter(|&q| q < count) {
                pollers.entry(q).or_default().push((*core.cpu.get_ref(), span.clone()));
            }
        }
        let idle: CpuSet = (0..count).filter(|q| !pollers.contains_key(q)).collect();
        if !idle.is_empty() {
            let span = nic.rx_queues.as_ref().map_or(nic.name.span(), |q| q.span());
            let s = if idle.len() > 1 { "s" } else { "" };
            cx.error(
                "queue-pollers",
                span,
                format!("nic {name} queue{s} {idle} ha{} no rx core", if idle.len() > 1 { "ve" } else { "s" }),
                format!("add queue{s} {idle} to an rx core's queues (nic = \"{name}\"), or lower rx_queues"),
            );
        }
        for (q, cores) in pollers {
            for (cpu, span) in cores.iter().skip(1) {
                let (first, _) = cores[0];
                let message = if first == *cpu {
                    format!("cpu {cpu} lists nic {name} queue {q} twice")
                } else {
                    format!("nic {name} queue {q} polled by cpu {first} and {cpu}")
                };
                cx.error("queue-pollers", span.clone(), message, format!("poll queue {q} from one rx core only"));
            }
        }
    }
}

/// `rx_hw_timestamp` is `require`, `prefer` or `off`; `require` cannot be verified without DPDK running.
fn rx_hw_timestamp(cx: &mut Cx<'_>) {
    let l = cx.l;
    const ALLOWED: &[&str] = &["require", "prefer", "off"];
    for nic in &l.nics {
        let Some(ts) = &nic.rx_hw_timestamp else { continue };
        let v = ts.get_ref().as_str();
        let name = nic.name.get_ref();
        if !ALLOWED.contains(&v) {
            let hint = suggest(v, ALLOWED.iter().copied()).map_or(String::new(), |s| format!("; did you mean `{s}`?"));
            cx.error(
                "rx-hw-timestamp",
                ts.span(),
                format!("nic {name}: rx_hw_timestamp is `{v}`, expected one of {}{hint}", quoted(ALLOWED)),
                format!("use one of {}", quoted(ALLOWED)),
            );
        } else if v == "require" {
            cx.warn(
                "rx-hw-timestamp",
                ts.span(),
                format!(
                    "nic {name}: rx_hw_timestamp=require cannot be checked here: the driver's \
                     RTE_ETH_RX_OFFLOAD_TIMESTAMP is checked at port start, which fails without it"
                ),
                "use \"prefer\" to fall back to software stamps, or keep \"require\" on a driver known to stamp (mlx5, ice)"
                    .into(),
            );
        }
    }
}

/// `2M`, `1G`: a page size as people write it.
fn kib_name(kib: u64) -> String {
    if kib.is_multiple_of(1024 * 1024) {
        format!("{}G", kib / (1024 * 1024))
    } else if kib.is_multiple_of(1024) {
        format!("{}M", kib / 1024)
    } else {
        format!("{kib}K")
    }
}

/// The hugepages the file needs are free on each node.
fn hugepages(cx: &mut Cx<'_>) {
    let Some(need) = &cx.l.runtime.hugepages else { return };
    let mut sizes: Vec<u64> = cx.m.nodes.iter().flat_map(|n| n.hugepages.iter().map(|h| h.size_kib)).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let sizes_text = if sizes.is_empty() {
        "none".to_string()
    } else {
        sizes.iter().map(|&s| kib_name(s)).collect::<Vec<_>>().join(", ")
    };
    let size_text = need.size.get_ref();
    let Some(kib) = super::page_size_kib(size_text) else {
        cx.error(
            "hugepages",
            need.size.span(),
            format!("hugepage size `{size_text}` is not a size (sizes on this machine: {sizes_text})"),
            "write it as \"2M\" or \"1G\"".into(),
        );
        return;
    };
    let size = kib_name(kib);
    if !sizes.contains(&kib) {
        cx.error(
            "hugepages",
            need.size.span(),
            format!("this machine has no {size} hugepages (sizes: {sizes_text})"),
            format!("use one of {sizes_text}, or add hugepagesz={size} hugepages=N to the kernel command line"),
        );
        return;
    }
    let nodes: CpuSet = cx.m.nodes.iter().map(|n| n.id).collect();
    let span = need.per_node.span();
    for (key, &pages) in need.per_node.get_ref() {
        let Ok(id) = key.trim().parse::<u32>() else {
            cx.error(
                "hugepages",
                span.clone(),
                format!("hugepages.per_node key `{key}` is not a node number (nodes: {})", list(&nodes)),
                "key it by node number: per_node = { 0 = 4 }".into(),
            );
            continue;
        };
        let Some(node) = cx.m.node(id) else {
            cx.error(
                "hugepages",
                span.clone(),
                format!("hugepages.per_node names node {id}, which does not exist (nodes: {})", list(&nodes)),
                format!("use one of nodes {}", list(&nodes)),
            );
            continue;
        };
        let have = node.hugepages.iter().find(|h| h.size_kib == kib).copied();
        let (free, total) = have.map_or((0, 0), |h| (h.free, h.total));
        if pages > free {
            // dpdk-hugepages.py --reserve sets the node's total: what others hold plus what we need.
            let target = total.saturating_sub(free).saturating_add(pages);
            cx.error(
                "hugepages",
                span.clone(),
                format!("need {pages}×{size} hugepages on node {id}, {free} free ({total} total)"),
                format!(
                    "reserve more: dpdk-hugepages.py -p {size} -n {id} -r {} (the node's new total), or free pages \
                     other processes hold",
                    kib_name(target.saturating_mul(kib))
                ),
            );
        }
    }
}

/// Paths on tmpfs or hugetlbfs by convention: the machine's mounts are not modelled, so this goes by prefix.
const MEMORY_PATHS: &[&str] = &["/dev/shm/", "/dev/hugepages", "/mnt/huge", "/run/", "/hugepages"];

/// Ring capacity, node and producer, and its file's filesystem.
fn ring_placement(cx: &mut Cx<'_>) {
    let l = cx.l;
    for ring in &l.rings {
        let name = ring.name.get_ref();
        let cap = ring.capacity.get_ref();
        let shown = match cap {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            other => format!("{other:?}"),
        };
        match super::capacity_bytes(cap) {
            None => cx.error(
                "ring-placement",
                ring.capacity.span(),
                format!("ring {name}: capacity `{shown}` is not a size"),
                "write bytes or a size with a unit: \"64MiB\", \"1G\", 268435456".into(),
            ),
            Some(b) if b < 4096 || !b.is_power_of_two() => {
                let up = b.max(4096).checked_next_power_of_two().unwrap_or(1 << 62);
                let down = if b < 4096 { 4096 } else { up / 2 };
                let why = if b < 4096 { "is below 4KiB" } else { "is not a power of two" };
                cx.error(
                    "ring-placement",
                    ring.capacity.span(),
                    format!("ring {name}: capacity {shown} ({b} bytes) {why}"),
                    format!("use a power of two of at least 4KiB: {} or {}", bytes_name(down), bytes_name(up)),
                );
            }
            Some(_) => {}
        }
        let nodes: CpuSet = cx.m.nodes.iter().map(|n| n.id).collect();
        if let Some(n) = &ring.numa_node
            && cx.m.node(*n.get_ref()).is_none()
        {
            cx.error(
                "ring-placement",
                n.span(),
                format!("ring {name}: numa_node {} does not exist (nodes: {})", n.get_ref(), list(&nodes)),
                format!("use one of nodes {}, or drop numa_node to follow the producer", list(&nodes)),
            );
        }
        if let Some(p) = &ring.producer {
            let cpu = *p.get_ref();
            let writes = l.cores.iter().any(|c| {
                *c.cpu.get_ref() == cpu && matches!(c.role.get_ref(), Role::Rx | Role::Normalize | Role::Publish)
            });
            if cx.m.cpu(cpu).is_none() {
                cx.error(
                    "ring-placement",
                    p.span(),
                    format!("ring {name}: producer cpu {cpu} does not exist (online: {})", list(&cx.m.online)),
                    "set producer to the CPU of the core that writes the ring".into(),
                );
            } else if !writes {
                cx.error(
                    "ring-placement",
                    p.span(),
                    format!("ring {name}: producer cpu {cpu} runs no rx, normalize or publish core"),
                    "set producer to the cpu of the [[core]] that writes this ring".into(),
                );
            } else if let (Some(n), Some(info)) = (&ring.numa_node, cx.m.cpu(cpu))
                && info.node != *n.get_ref()
                && cx.m.node(*n.get_ref()).is_some()
            {
                cx.warn(
                    "ring-placement",
                    n.span(),
                    format!(
                        "ring {name}: numa_node {} but its producer cpu {cpu} is on node {}: every write crosses nodes",
                        n.get_ref(),
                        info.node
                    ),
                    format!("set numa_node = {} (or drop it), or move the producer to node {}", info.node, n.get_ref()),
                );
            }
        }
        if let Some(f) = &ring.file {
            let path = f.get_ref();
            if !MEMORY_PATHS.iter().any(|p| path.starts_with(p)) {
                cx.warn(
                    "ring-placement",
                    f.span(),
                    format!(
                        "ring {name}: file {path} is not under /dev/shm, /run or a hugetlbfs mount (/dev/hugepages, \
                         /mnt/huge): a disk-backed file writes pages back"
                    ),
                    format!("put it on tmpfs or hugetlbfs, e.g. file = \"/dev/shm/{name}\""),
                );
            }
        }
    }
}

/// `256MiB`, `4KiB`, or bytes.
fn bytes_name(b: u64) -> String {
    if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
        format!("{}GiB", b >> 30)
    } else if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
        format!("{}MiB", b >> 20)
    } else if b >= 1 << 10 && b.is_multiple_of(1 << 10) {
        format!("{}KiB", b >> 10)
    } else {
        b.to_string()
    }
}

/// More IRQs than this on one hot CPU are reported as one problem listing their numbers.
const IRQS_ONE_BY_ONE: usize = 3;

/// IRQs whose affinity lets them run on a hot CPU (a warning: the kernel may still move managed ones).
fn irq_on_hot_cpu(cx: &mut Cx<'_>) {
    let housekeeping = cx.housekeeping();
    let hk = list(&housekeeping);
    // Each hot CPU, then the idle SMT siblings the generators isolate with it (an IRQ there interrupts
    // the same core), each reported at the hot CPU's position.
    let hot = cx.hot();
    let idle_siblings = cx.l.cpus_to_isolate(cx.m).difference(&housekeeping).difference(&cx.hot_set());
    let mut targets: Vec<(u32, String, Range<usize>)> =
        hot.iter().map(|p| (p.cpu, format!("cpu {} (role={})", p.cpu, p.role), p.span.clone())).collect();
    for p in &hot {
        let Some(info) = cx.m.cpu(p.cpu) else { continue };
        for sib in info.smt_siblings.intersection(&idle_siblings).iter() {
            targets.push((
                sib,
                format!("cpu {sib}, the idle SMT sibling of cpu {} (role={})", p.cpu, p.role),
                p.span.clone(),
            ));
        }
    }
    for (cpu, what, span) in targets {
        let irqs: Vec<_> = cx.m.irqs.iter().filter(|i| i.affinity.contains(cpu)).collect();
        if irqs.is_empty() {
            continue;
        }
        let ban = format!("or ban cpu {cpu} in irqbalance (IRQBALANCE_BANNED_CPULIST)");
        if irqs.len() <= IRQS_ONE_BY_ONE {
            let found: Vec<(String, String)> = irqs
                .iter()
                .map(|i| {
                    (
                        format!("IRQ {} ({}) may run on {what}", i.number, i.name),
                        format!("echo {hk} > /proc/irq/{}/smp_affinity_list, {ban}", i.number),
                    )
                })
                .collect();
            for (message, fix) in found {
                cx.warn("irq-on-hot-cpu", span.clone(), message, fix);
            }
        } else {
            let numbers: CpuSet = irqs.iter().map(|i| i.number).collect();
            cx.warn(
                "irq-on-hot-cpu",
                span,
                format!("{} IRQs may run on {what}: {numbers}", irqs.len()),
                format!(
                    "for n in {}; do echo {hk} > /proc/irq/$n/smp_affinity_list; done (or `weir hw gen --target irq`), {ban}",
                    numbers.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" ")
                ),
            );
        }
    }
}

/// Latency stamps need an invariant TSC and a TSC-based clocksource (whole-file: no position).
fn clock(cx: &mut Cx<'_>) {
    let c = &cx.m.clock;
    if c.is_sane() {
        return;
    }
    let missing: Vec<&str> = [("constant_tsc", c.constant_tsc), ("nonstop_tsc", c.nonstop_tsc)]
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(f, _)| *f)
        .collect();
    let mut why = Vec::new();
    if !missing.is_empty() {
        why.push(format!("TSC not invariant (no {})", missing.join("/")));
    }
    if !matches!(c.clocksource.as_str(), "tsc" | "kvm-clock") {
        let cs = if c.clocksource.is_empty() { "unknown" } else { c.clocksource.as_str() };
        why.push(format!("clocksource is {cs}"));
    }
    let fix = if c.available.iter().any(|a| a == "tsc") && missing.is_empty() {
        "switch to the TSC: echo tsc > /sys/devices/system/clocksource/clocksource0/current_clocksource \
         (or clocksource=tsc on the kernel command line)"
            .to_string()
    } else {
        "run on a host with an invariant TSC (constant_tsc and nonstop_tsc) and clocksource=tsc".to_string()
    };
    let message = format!("{}: latency stamps unreliable", why.join(", "));
    cx.push(Severity::Warning, "clock", None, message, fix);
}

/// Telemetry sleeps and wakes: never on a hot CPU, and best on a housekeeping one.
fn telemetry_off_hot(cx: &mut Cx<'_>) {
    let hk = cx.housekeeping();
    let places = cx.places.clone();
    for t in places.iter().filter(|p| p.role == Role::Telemetry) {
        let what = if t.source == "telemetry.cpu" { "telemetry.cpu".to_string() } else { "telemetry core: cpu".into() };
        if let Some(hot) = places.iter().find(|p| p.cpu == t.cpu && p.role.is_hot()) {
            cx.error(
                "telemetry-off-hot",
                t.span.clone(),
                format!("{what} {} is also role {} ({})", t.cpu, hot.role, cx.line(&hot.span)),
                format!("move telemetry to a housekeeping CPU ({})", list(&hk.difference(&cx.hot_set()))),
            );
        } else if cx.online(t.cpu) && !hk.contains(t.cpu) {
            cx.warn(
                "telemetry-off-hot",
                t.span.clone(),
                format!("{what} {} is not a housekeeping CPU (housekeeping: {})", t.cpu, list(&hk)),
                "move telemetry to a housekeeping CPU, or add this CPU to runtime.housekeeping".into(),
            );
        }
    }
}

impl Cx<'_> {
    fn hot_set(&self) -> CpuSet {
        self.hot().iter().map(|p| p.cpu).collect()
    }
}

/// `runtime.housekeeping` parses, is online and off the hot CPUs, and some housekeeping CPU is left.
fn housekeeping(cx: &mut Cx<'_>) {
    let hot = cx.hot_set();
    let fix_default = "leave at least one online CPU without a hot role for the kernel, IRQs and other threads";
    let Some(h) = &cx.l.runtime.housekeeping else {
        if cx.m.online.difference(&hot).is_empty() && !cx.m.online.is_empty() {
            let span = cx.hot().last().map(|p| p.span.clone());
            cx.push(
                Severity::Error,
                "housekeeping",
                span,
                format!("every online CPU ({}) has a hot role: no housekeeping CPU is left", cx.m.online),
                fix_default.into(),
            );
        }
        return;
    };
    let span = h.span();
    let set = match CpuSet::parse_list(h.get_ref()) {
        Ok(set) => set,
        Err(e) => {
            // +1: the span starts at the opening quote.
            let at = span.start + 1 + e.offset;
            cx.error(
                "housekeeping",
                at..at,
                format!("runtime.housekeeping `{}` is not a CPU list: {e}", h.get_ref()),
                "write it in the kernel's list format: \"0-1,16-17\"".into(),
            );
            return;
        }
    };
    let overlap = set.intersection(&hot);
    if !overlap.is_empty() {
        cx.error(
            "housekeeping",
            span.clone(),
            format!("runtime.housekeeping {set} includes hot CPUs {overlap}"),
            format!("remove {overlap} from runtime.housekeeping"),
        );
    }
    let offline = set.difference(&cx.m.online);
    if !offline.is_empty() {
        cx.error(
            "housekeeping",
            span.clone(),
            format!(
                "runtime.housekeeping {set} names CPUs that are not online: {offline} (online: {})",
                list(&cx.m.online)
            ),
            format!("remove {offline} from runtime.housekeeping"),
        );
    }
    // Not wrong, but the kernel's own housekeeping (isolcpus) avoids them: say so.
    let isolated = set.difference(&hot).intersection(&cx.m.isolated.union(&cx.m.nohz_full));
    if !isolated.is_empty() {
        cx.warn(
            "housekeeping",
            span.clone(),
            format!("runtime.housekeeping {set} includes isolated CPUs {isolated} (isolcpus/nohz_full)"),
            format!("remove {isolated} from runtime.housekeeping, or from isolcpus= and nohz_full="),
        );
    }
    if set.difference(&hot).intersection(&cx.m.online).is_empty() {
        cx.error(
            "housekeeping",
            span,
            format!("runtime.housekeeping {} leaves no online CPU without a hot role", list(&set)),
            format!("{fix_default} (free: {})", list(&cx.m.online.difference(&hot))),
        );
    }
}

/// A CPU listed twice in `[dag]`.
fn dag_workers(cx: &mut Cx<'_>) {
    let Some(dag) = &cx.l.dag else { return };
    let workers = dag.workers.get_ref();
    for (j, w) in workers.iter().enumerate() {
        if let Some(first) = workers[..j].iter().find(|a| a.get_ref() == w.get_ref()) {
            let message = format!("dag lists cpu {} twice (first at {})", w.get_ref(), cx.line(&first.span()));
            cx.error("dag-workers", w.span(), message, "remove one of them: one DAG worker per CPU".into());
        }
    }
}

/// `dag.partitions.nodeN` lists CPUs of node N.
fn dag_partitions(cx: &mut Cx<'_>) {
    let Some(parts) = cx.l.dag.as_ref().and_then(|d| d.partitions.as_ref()) else { return };
    let nodes: CpuSet = cx.m.nodes.iter().map(|n| n.id).collect();
    for (key, cpus) in parts.get_ref() {
        let node = key.strip_prefix("node").and_then(|n| n.parse::<u32>().ok());
        let Some(node) = node.filter(|&n| cx.m.node(n).is_some()) else {
            cx.error(
                "dag-partitions",
                parts.span(),
                format!("dag.partitions key `{key}` is not a node of this machine (nodes: {})", list(&nodes)),
                format!("key partitions by node: node{}", nodes.iter().next().unwrap_or(0)),
            );
            continue;
        };
        for c in cpus {
            let Some(info) = cx.m.cpu(*c.get_ref()) else { continue };
            if info.node != node {
                cx.error(
                    "dag-partitions",
                    c.span(),
                    format!("dag.partitions.{key} lists cpu {}, which is on node {}", c.get_ref(), info.node),
                    format!(
                        "move it to partition node{}, or choose from {key}'s cpus {}",
                        info.node,
                        list(&cx.m.node_cpus(node))
                    ),
                );
            }
        }
    }
}
