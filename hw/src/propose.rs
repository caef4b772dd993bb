//! A layout proposed for a machine: housekeeping and telemetry on the first core, each NIC polled from a
//! core on the NIC's own node, DAG workers on the cores left, one hardware thread per core (SMT siblings
//! of hot CPUs stay idle), isolated CPUs first, cores isolated whole before those with a busy sibling. The
//! proposal is checked with [`crate::layout::check()`] before it is returned: it never carries an error.

use std::fmt::Write;
use std::path::Path;

use crate::CpuSet;
use crate::layout::{Layout, Problem, Severity, check};
use crate::machine::Machine;

/// What to propose a layout for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// NICs by PCI address or interface name, one rx core each.
    pub nics: Vec<String>,
    /// DAG worker threads.
    pub dag_workers: usize,
    /// Deployment name.
    pub name: Option<String>,
}

/// A proposal: the TOML text, and the warnings its check still gives (errors never: those are `Err`).
#[derive(Debug, Clone)]
pub struct Proposal {
    /// The layout file.
    pub toml: String,
    /// Warnings of `weir hw check` on it (e.g. hot CPUs not isolated on a machine without `isolcpus`).
    pub warnings: Vec<Problem>,
}

/// One physical core: its hardware threads, lowest first.
struct PhysCore {
    node: u32,
    threads: Vec<u32>,
    /// The thread weir uses (the first) is isolated.
    isolated: bool,
    /// Every online thread of the core is isolated: nothing else shares it (`sibling-quiet` is silent).
    whole: bool,
}

/// Propose a layout for `machine`. Errors say what does not fit (an unknown NIC, too few cores on a node).
pub fn propose(machine: &Machine, request: &Request) -> Result<Proposal, String> {
    let usable: CpuSet = machine.online.intersection(&machine.allowed);
    let mut cores: Vec<PhysCore> = Vec::new();
    for cpu in machine.cpus.iter().filter(|c| usable.contains(c.id)) {
        let key = |c: &PhysCore| {
            machine.cpu(c.threads[0]).is_some_and(|first| first.package == cpu.package && first.core == cpu.core)
        };
        match cores.iter_mut().find(|c| key(c)) {
            Some(core) => core.threads.push(cpu.id),
            None => cores.push(PhysCore { node: cpu.node, threads: vec![cpu.id], isolated: true, whole: true }),
        }
    }
    if cores.len() < 2 {
        return Err(format!(
            "this machine offers {} usable core(s) (online and allowed: {usable}); a layout needs one for \
             housekeeping and at least one hot core",
            cores.len()
        ));
    }
    // Only a core's first thread is used. Its siblings stay idle; a core isolated whole is better still
    // (nothing else is scheduled on it), so it sorts first.
    let isolated = machine.isolated.union(&machine.nohz_full);
    for core in &mut cores {
        let first = core.threads[0];
        core.isolated = isolated.contains(first);
        let siblings = machine.cpu(first).map(|c| c.smt_siblings.intersection(&machine.online)).unwrap_or_default();
        core.whole = core.isolated && siblings.difference(&isolated).is_empty();
    }
    // Housekeeping: the core holding the lowest usable CPU (CPU 0 almost always), all its threads.
    let housekeeping_core = cores.remove(0);
    let housekeeping: CpuSet = housekeeping_core.threads.iter().copied().collect();
    let telemetry_cpu = housekeeping_core.threads[0];
    // Isolated cores first (whole ones before those with a busy sibling), then by CPU id.
    cores.sort_by_key(|c| (!c.isolated, !c.whole, c.threads[0]));

    let name = quote(request.name.as_deref().unwrap_or("weir"));
    let mut toml = String::new();
    let _ = writeln!(toml, "# Proposed by `weir hw propose` for the machine at {}.", machine.root.display());
    let _ = writeln!(
        toml,
        "# Housekeeping and telemetry on core of cpu {telemetry_cpu}; one hardware thread per hot core."
    );
    let _ = writeln!(toml, "\n[runtime]\nname = {name}");
    let mut hot = CpuSet::empty();
    let mut body = String::new();
    let mut taken: Vec<&str> = Vec::new();
    for (i, wanted) in request.nics.iter().enumerate() {
        let Some(nic) = machine.nic(wanted) else {
            let found: Vec<String> = machine
                .nics
                .iter()
                .map(|n| n.pci.clone().or_else(|| n.netdevs.first().cloned()).unwrap_or_default())
                .collect();
            return Err(format!("--nics {wanted}: no such NIC on this machine (found: {})", found.join(", ")));
        };
        let id = nic.pci.as_deref().or(nic.netdevs.first().map(String::as_str)).unwrap_or_default();
        if taken.contains(&id) {
            return Err(format!("--nics names {id} twice (as {wanted}); one rx core per NIC"));
        }
        taken.push(id);
        let pos = cores.iter().position(|c| nic.numa_node.is_none_or(|node| c.node == node)).ok_or_else(|| {
            format!(
                "NIC {wanted} is on node {}, and no free core is left there for its rx thread",
                nic.numa_node.map_or("?".to_string(), |n| n.to_string())
            )
        })?;
        let core = cores.remove(pos);
        let cpu = core.threads[0];
        hot.insert(cpu);
        let nic_name = quote(&nic.netdevs.first().cloned().unwrap_or_else(|| format!("nic{i}")));
        let _ = writeln!(body, "\n[[nic]]\nname = {nic_name}");
        if let Some(pci) = &nic.pci {
            let _ = writeln!(body, "pci = {}", quote(pci));
        }
        if let Some(driver) = &nic.driver {
            let _ = writeln!(body, "driver = {}  # as bound now; set vfio-pci for DPDK", quote(driver));
        }
        let _ = writeln!(body, "rx_queues = 1");
        let node = nic.numa_node.map_or("no NUMA affinity".to_string(), |n| format!("node {n}"));
        let _ = writeln!(body, "\n[[core]]  # {node}; siblings {:?} left idle", &core.threads[1..]);
        let _ = writeln!(body, "cpu = {cpu}\nrole = \"rx\"\nnic = {nic_name}\nqueues = [0]");
    }
    if request.dag_workers > 0 {
        if cores.len() < request.dag_workers {
            return Err(format!(
                "--dag-workers {}: only {} free core(s) left after housekeeping and rx (one thread per core; \
                 SMT siblings of hot CPUs stay idle)",
                request.dag_workers,
                cores.len()
            ));
        }
        let workers: Vec<String> = cores.drain(..request.dag_workers).map(|c| c.threads[0].to_string()).collect();
        for w in &workers {
            hot.insert(w.parse().unwrap_or_default());
        }
        let _ = writeln!(body, "\n[dag]\nworkers = [{}]", workers.join(", "));
    }
    let _ = writeln!(body, "\n[telemetry]\ncpu = {telemetry_cpu}");
    let isolated_all = hot.iter().all(|c| machine.isolated.contains(c) || machine.nohz_full.contains(c));
    let isolation = if isolated_all { "require" } else { "warn" };
    let _ = writeln!(
        toml,
        "isolation = \"{isolation}\"{}",
        if isolated_all { "" } else { "  # not every hot CPU is isolated on this machine" }
    );
    let _ = writeln!(toml, "housekeeping = \"{housekeeping}\"");
    toml.push_str(&body);

    let layout = Layout::parse(Path::new("proposed.toml"), toml.clone())
        .map_err(|p| format!("internal: the proposal does not parse: {}", p[0]))?;
    let problems = check(&layout, machine);
    if let Some(error) = problems.iter().find(|p| p.severity == Severity::Error) {
        return Err(format!("internal: the proposal fails its own check: {error}"));
    }
    Ok(Proposal { toml, warnings: problems })
}

/// A TOML string literal (quotes and escapes as TOML wants them).
fn quote(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}
