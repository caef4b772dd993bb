//! The machine in hwloc's vocabulary (`lstopo`'s physical view: Machine → Package → NUMANode → L3 → Core →
//! PU, PCI devices under the node they hang off), with weir's roles written on the PUs when a layout is
//! given. Text for people, JSON for scripts.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use crate::CpuSet;
use crate::layout::{Layout, Role};
use crate::machine::{CpuInfo, Machine, NicInfo};

/// What each CPU does in a layout: `rx feedA q0,1`, `dag-worker`, `telemetry`, `housekeeping`.
fn roles_by_cpu(layout: Option<&Layout>) -> BTreeMap<u32, Vec<String>> {
    let mut roles: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let Some(layout) = layout else { return roles };
    for core in &layout.cores {
        let mut text = core.role.get_ref().to_string();
        if let Some(nic) = &core.nic {
            let queues = core.queues.as_ref().map_or(vec![0], |q| q.get_ref().clone());
            let queues: Vec<String> = queues.iter().map(u32::to_string).collect();
            let _ = write!(text, " {} q{}", nic.get_ref(), queues.join(","));
        }
        roles.entry(*core.cpu.get_ref()).or_default().push(text);
    }
    for (cpu, role) in layout.roles() {
        if matches!(role, Role::DagWorker | Role::Telemetry) {
            roles.entry(cpu).or_default().push(role.to_string());
        }
    }
    for ring in &layout.rings {
        if let Some(cpu) = &ring.producer {
            roles.entry(*cpu.get_ref()).or_default().push(format!("writes ring {}", ring.name.get_ref()));
        }
    }
    roles
}

fn size(kib: u64) -> String {
    match kib {
        k if k >= 1 << 20 && k % (1 << 20) == 0 => format!("{}G", k >> 20),
        k if k >= 1 << 10 && k % (1 << 10) == 0 => format!("{}M", k >> 10),
        k if k >= 1 << 10 => format!("{:.1}M", k as f64 / 1024.0),
        k => format!("{k}K"),
    }
}

fn mem(kib: u64) -> String {
    format!("{:.1} GiB", kib as f64 / (1u64 << 20) as f64)
}

fn pu_flags(machine: &Machine, cpu: &CpuInfo) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if !cpu.online {
        flags.push("offline");
    }
    if machine.isolated.contains(cpu.id) {
        flags.push("isolated");
    }
    if machine.nohz_full.contains(cpu.id) {
        flags.push("nohz_full");
    }
    if cpu.online && !machine.allowed.contains(cpu.id) {
        flags.push("not-allowed");
    }
    flags
}

fn nic_line(nic: &NicInfo) -> String {
    let mut line = format!("PCI {}", nic.pci.as_deref().unwrap_or("(none)"));
    if let Some(ids) = &nic.ids {
        let _ = write!(line, " [{ids}]");
    }
    let _ = write!(line, " driver={}", nic.driver.as_deref().unwrap_or("(unbound)"));
    if !nic.netdevs.is_empty() {
        let _ = write!(line, " Net \"{}\"", nic.netdevs.join("\", \""));
    }
    if let Some(q) = nic.rx_queues {
        let _ = write!(line, " rx_queues={q}");
    }
    line
}

/// The machine as an indented tree, roles from `layout` on each PU.
pub fn text(machine: &Machine, layout: Option<&Layout>) -> String {
    let roles = roles_by_cpu(layout);
    let mut out = String::new();
    // Offline CPUs have no topology files (the kernel removes them): listed apart, not in the tree.
    let placed: Vec<&CpuInfo> = machine.cpus.iter().filter(|c| c.online).collect();
    let packages: CpuSet = placed.iter().map(|c| c.package).collect();
    let cores: std::collections::BTreeSet<(u32, u32)> = placed.iter().map(|c| (c.package, c.core)).collect();
    let mut nics_shown = CpuSet::empty();
    let _ = writeln!(
        out,
        "Machine ({} PUs, {} online, {} cores online, {} packages, {} NUMA nodes) root={}",
        machine.cpus.len(),
        machine.online.len(),
        cores.len(),
        packages.len(),
        machine.nodes.len(),
        machine.root.display()
    );
    for package in packages.iter() {
        let _ = writeln!(out, "  Package P#{package}");
        let nodes: CpuSet = placed.iter().filter(|c| c.package == package).map(|c| c.node).collect();
        for node_id in nodes.iter() {
            let mut line = format!("    NUMANode P#{node_id}");
            if let Some(node) = machine.node(node_id) {
                if let Some(kib) = node.mem_total_kib {
                    let _ = write!(line, " ({})", mem(kib));
                }
                for hp in &node.hugepages {
                    let _ = write!(line, " hugepages-{}: {}/{} free", size(hp.size_kib), hp.free, hp.total);
                }
            }
            let _ = writeln!(out, "{line}");
            let here: Vec<&CpuInfo> =
                placed.iter().copied().filter(|c| c.package == package && c.node == node_id).collect();
            let l3s: Vec<Option<u32>> = {
                let mut v: Vec<Option<u32>> = here.iter().map(|c| c.l3).collect();
                v.sort_unstable();
                v.dedup();
                v
            };
            for l3 in l3s {
                let indent = if l3.is_some() { "        " } else { "      " };
                if let Some(id) = l3 {
                    let kib = here.iter().find(|c| c.l3 == Some(id)).and_then(|c| c.l3_kib);
                    let size = kib.map(|k| format!(" ({})", size(u64::from(k)))).unwrap_or_default();
                    let _ = writeln!(out, "      L3 #{id}{size}");
                }
                let mut core_ids: Vec<u32> = here.iter().filter(|c| c.l3 == l3).map(|c| c.core).collect();
                core_ids.sort_unstable();
                core_ids.dedup();
                for core in core_ids {
                    let _ = writeln!(out, "{indent}Core P#{core}");
                    for cpu in here.iter().filter(|c| c.l3 == l3 && c.core == core) {
                        let mut line = format!("{indent}  PU P#{}", cpu.id);
                        let flags = pu_flags(machine, cpu);
                        if !flags.is_empty() {
                            let _ = write!(line, " ({})", flags.join(", "));
                        }
                        if let Some(r) = roles.get(&cpu.id) {
                            let _ = write!(line, "  <- {}", r.join("; "));
                        }
                        let _ = writeln!(out, "{line}");
                    }
                }
            }
            // A node spanning packages lists its NICs once, under the first.
            if !nics_shown.contains(node_id) {
                nics_shown.insert(node_id);
                for nic in machine.nics.iter().filter(|n| n.numa_node == Some(node_id)) {
                    let _ = writeln!(out, "      {}", nic_line(nic));
                }
            }
        }
    }
    let unplaced: Vec<&NicInfo> = machine.nics.iter().filter(|n| n.numa_node.is_none()).collect();
    if !unplaced.is_empty() {
        let _ = writeln!(out, "  NICs with no NUMA affinity (numa_node -1):");
        for nic in unplaced {
            let _ = writeln!(out, "    {}", nic_line(nic));
        }
    }
    if machine.nodes.len() > 1 {
        let _ = writeln!(out, "NUMA distances:");
        let header: Vec<String> = machine.nodes.iter().map(|n| format!("{:>5}", n.id)).collect();
        let _ = writeln!(out, "  node{}", header.join(""));
        for node in &machine.nodes {
            let row: Vec<String> = node.distances.iter().map(|d| format!("{d:>5}")).collect();
            let _ = writeln!(out, "  {:>4}{}", node.id, row.join(""));
        }
    }
    let none = |s: &CpuSet| if s.is_empty() { "(none)".to_string() } else { s.to_string() };
    let _ = writeln!(out, "Online: {}", none(&machine.online));
    for cpu in machine.cpus.iter().filter(|c| !c.online) {
        let _ = writeln!(out, "Offline: PU P#{} (NUMANode P#{})", cpu.id, cpu.node);
    }
    let _ = writeln!(out, "Isolated: {}   nohz_full: {}", none(&machine.isolated), none(&machine.nohz_full));
    let _ = writeln!(out, "Allowed for this process: {}", none(&machine.allowed));
    let c = &machine.clock;
    let _ = writeln!(
        out,
        "Clock: clocksource={} (available: {}); constant_tsc={} nonstop_tsc={} tsc_known_freq={}",
        c.clocksource,
        c.available.join(" "),
        c.constant_tsc,
        c.nonstop_tsc,
        c.tsc_known_freq
    );
    if let Some(layout) = layout {
        let hot = layout.hot_cpus();
        let irqs: Vec<String> = machine
            .irqs
            .iter()
            .filter(|irq| !irq.affinity.intersection(&hot).is_empty())
            .map(|irq| format!("{} ({}) -> {}", irq.number, irq.name, irq.affinity))
            .collect();
        let _ = writeln!(
            out,
            "IRQs that may run on hot CPUs {}: {}",
            hot,
            if irqs.is_empty() { "none".to_string() } else { irqs.len().to_string() }
        );
        for irq in irqs {
            let _ = writeln!(out, "  {irq}");
        }
    }
    out
}

/// The same as JSON: `{ "cpus": [...], "nodes": [...], "nics": [...], ... }`, roles included per CPU.
pub fn json(machine: &Machine, layout: Option<&Layout>) -> Value {
    let roles = roles_by_cpu(layout);
    let set = |s: &CpuSet| Value::String(s.to_string());
    json!({
        "root": machine.root.display().to_string(),
        "cpus": machine.cpus.iter().map(|c| json!({
            "id": c.id, "package": c.package, "die": c.die, "core": c.core, "node": c.node,
            "l3": c.l3, "l3_kib": c.l3_kib, "smt_siblings": set(&c.smt_siblings), "online": c.online,
            "isolated": machine.isolated.contains(c.id), "nohz_full": machine.nohz_full.contains(c.id),
            "allowed": machine.allowed.contains(c.id),
            "roles": roles.get(&c.id).cloned().unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "nodes": machine.nodes.iter().map(|n| json!({
            "id": n.id, "cpus": set(&n.cpus), "distances": n.distances, "mem_total_kib": n.mem_total_kib,
            "hugepages": n.hugepages.iter().map(|h| json!({"size_kib": h.size_kib, "total": h.total, "free": h.free})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "online": set(&machine.online),
        "isolated": set(&machine.isolated),
        "nohz_full": set(&machine.nohz_full),
        "allowed": set(&machine.allowed),
        "cmdline": machine.cmdline,
        "nics": machine.nics.iter().map(|n| json!({
            "pci": n.pci, "netdevs": n.netdevs, "driver": n.driver, "ids": n.ids, "numa_node": n.numa_node,
            "rx_queues": n.rx_queues,
        })).collect::<Vec<_>>(),
        "irqs": machine.irqs.iter().map(|i| json!({
            "number": i.number, "name": i.name, "affinity": set(&i.affinity),
            "effective": i.effective.as_ref().map(|e| e.to_string()),
        })).collect::<Vec<_>>(),
        "clock": {
            "clocksource": machine.clock.clocksource, "available": machine.clock.available,
            "constant_tsc": machine.clock.constant_tsc, "nonstop_tsc": machine.clock.nonstop_tsc,
            "tsc_known_freq": machine.clock.tsc_known_freq, "sane": machine.clock.is_sane(),
        },
    })
}
