//! DPDK 22.11 EAL arguments.
//!
//! # Format
//!
//! `#` comment lines, then one option per line with its value after a space (`-l 1,4,12`). No shell
//! quoting: no value may contain whitespace or quotes (a [`GenError`] otherwise), so both readers of the
//! file split it the same way:
//!
//! ```sh
//! weir run --eal "$(grep -v '^#' eal.args)" ...        # weir splits --eal on whitespace
//! dpdk-testpmd $(grep -v '^#' eal.args) -- -i          # the shell's word splitting
//! ```
//!
//! # Decisions
//!
//! - **Lcores**: the main lcore and every `rx` core. The main lcore is `telemetry.cpu` when the layout
//!   has one, else the first housekeeping CPU (never a hot CPU: EAL pins its own thread there). It is
//!   always written out with `--main-lcore`, since EAL would otherwise take the lowest CPU of the list.
//!   Lcore ids equal CPU ids (`-l`) while every CPU is below 128 (`RTE_MAX_LCORE` of Debian's build);
//!   above that, `--lcores 0@MAIN,1@RX...` maps small lcore ids onto the CPUs. (weir's rx threads are
//!   its own, registered with `rte_thread_register`; the EAL worker threads of the rx lcores only wait,
//!   blocked, for work weir never sends them.)
//! - **Devices**: `-a BDF` for every `[[nic]]` with `pci`, after a comment with the port's node and
//!   current driver on this machine (the layout check judges them; this only shows them). A
//!   `source = "dpdk:DEVICE,..."` becomes `-a` for a PCI address, else `--vdev DEVICE,args` with weir's
//!   own `queue=`/`group=` options taken out (a comment says to open it by name in weir then: weir
//!   hot-plugs a vdev given with arguments itself, and a second creation fails). `pcap:` and `udp:`
//!   sources are not DPDK ports: a comment says they were skipped. Without any PCI port, `--no-pci` (EAL
//!   would otherwise probe every DPDK-bound device on the host).
//! - **Memory**: `runtime.hugepages` → `--socket-mem` in MiB per node, in node order from 0 up to the
//!   highest node of the machine or of the layout, `0` for a node without need. Without
//!   `runtime.hugepages`: a layout with a PCI port gets no memory option (EAL's dynamic mode takes
//!   hugepages as it needs them; a comment says so), a layout of vdevs only gets `--no-huge -m 512`
//!   (anonymous memory, enough for a pcap or null device's mempool, and no hugepages needed on a VM).
//! - **`--file-prefix`**: `runtime.name`, else `weir`, so two deployments on one host keep apart.

use std::fmt::Write;

use super::{GenError, Target, at, header, housekeeping};
use crate::layout::Role;
use crate::pci::{full_pci_address, is_pci_address};
use crate::{CpuSet, Layout, Machine};

/// Lcore ids at or above this do not exist in Debian's DPDK 22.11 build (`RTE_MAX_LCORE`).
const MAX_LCORE: u32 = 128;

/// Anonymous memory (MiB) for a layout without hugepages and without a PCI port.
const NO_HUGE_MIB: u32 = 512;

/// The EAL arguments of `layout` on `machine`; see the [module documentation](self) for the format.
pub fn generate(layout: &Layout, machine: &Machine) -> Result<String, GenError> {
    let mut out = header("#", Target::Eal, layout);
    let mut args: Vec<String> = Vec::new();
    let hot = layout.hot_cpus();
    let hk = housekeeping(layout, machine)?;

    // Lcores.
    let (main, why) = match &layout.telemetry {
        Some(t) => {
            let cpu = *t.cpu.get_ref();
            if hot.contains(cpu) {
                return Err(GenError(format!(
                    "{}telemetry.cpu {cpu} also has a hot role; the main lcore goes there, so it must be a \
                     housekeeping CPU",
                    at(layout, t.cpu.span())
                )));
            }
            (cpu, "telemetry.cpu")
        }
        None => (hk.as_slice()[0], "the first housekeeping CPU"),
    };
    let rx: CpuSet = layout.cores.iter().filter(|c| *c.role.get_ref() == Role::Rx).map(|c| *c.cpu.get_ref()).collect();
    let mut lcores = rx.clone();
    lcores.insert(main);
    let rx_text = if rx.is_empty() { "none".to_owned() } else { rx.to_string() };
    let _ = writeln!(out, "# Main lcore: CPU {main} ({why}). Rx lcores: CPUs {rx_text}.");
    if lcores.iter().all(|c| c < MAX_LCORE) {
        args.push(format!("-l {lcores}"));
        args.push(format!("--main-lcore {main}"));
    } else {
        let mut map = vec![format!("0@{main}")];
        map.extend(rx.iter().filter(|&c| c != main).enumerate().map(|(i, cpu)| format!("{}@{cpu}", i + 1)));
        let _ = writeln!(out, "# CPUs at or above {MAX_LCORE}: lcore ids 0.. mapped onto them.");
        args.push(format!("--lcores {}", map.join(",")));
        args.push("--main-lcore 0".to_owned());
    }

    let name = match &layout.runtime.name {
        Some(n) => {
            let name = n.get_ref();
            if name.is_empty() || name.contains('/') || !plain(name) {
                return Err(GenError(format!(
                    "{}runtime.name {name:?} cannot be a --file-prefix (no '/', whitespace or quotes)",
                    at(layout, n.span())
                )));
            }
            name.clone()
        }
        None => "weir".to_owned(),
    };
    args.push(format!("--file-prefix {name}"));

    // Devices (collected first: the memory decision depends on whether there is a PCI port).
    let mut devices: Vec<String> = Vec::new();
    for nic in &layout.nics {
        let nic_name = super::one_line(nic.name.get_ref());
        if let Some(pci) = &nic.pci {
            let addr = arg_value(layout, pci.get_ref(), pci.span(), "nic pci")?;
            let addr = full_pci_address(&addr);
            devices.push(format!("# nic {nic_name}: PCI port{}", port_state(machine, &addr)));
            devices.push(format!("-a {addr}"));
            continue;
        }
        let Some(source) = &nic.source else {
            devices.push(format!("# nic {nic_name}: neither pci nor source, so no EAL argument"));
            continue;
        };
        match source.get_ref().split_once(':') {
            Some(("dpdk", spec)) => {
                let device: Vec<&str> = spec
                    .split(',')
                    .filter(|part| !matches!(part.split_once('='), Some(("queue" | "group", _))))
                    .collect();
                let device = arg_value(layout, &device.join(","), source.span(), "nic source")?;
                let dev_name = device.split(',').next().unwrap_or_default();
                if dev_name.is_empty() {
                    return Err(GenError(format!(
                        "{}nic {nic_name}: source {:?} names no device",
                        at(layout, source.span()),
                        source.get_ref()
                    )));
                }
                if is_pci_address(dev_name) {
                    let addr = full_pci_address(dev_name);
                    devices.push(format!("# nic {nic_name}: PCI port (from its source){}", port_state(machine, &addr)));
                    devices.push(format!("-a {addr}"));
                } else {
                    devices.push(format!(
                        "# nic {nic_name}: vdev {dev_name}, created by EAL at start; weir then opens it by name \
                         (source dpdk:{dev_name}), since hot-plugging it again with its arguments would fail"
                    ));
                    devices.push(format!("--vdev {device}"));
                }
            }
            _ => devices.push(format!(
                "# nic {nic_name}: source {} is not a DPDK port (weir opens it itself), so no EAL argument",
                super::one_line(source.get_ref())
            )),
        }
    }
    let has_pci = devices.iter().any(|d| d.starts_with("-a "));

    // Memory.
    match &layout.runtime.hugepages {
        Some(need) => {
            let size = need.size.get_ref();
            let page_mib = need.size_kib().map(|kib| kib / 1024).filter(|&mib| mib > 0).ok_or_else(|| {
                GenError(format!(
                    "{}runtime.hugepages.size {size:?}: expected a page size such as \"2M\" or \"1G\"",
                    at(layout, need.size.span())
                ))
            })?;
            let mut per_node: Vec<(u32, u64)> = Vec::new();
            for (node, pages) in need.per_node.get_ref() {
                let id = node.parse::<u32>().map_err(|_| {
                    GenError(format!(
                        "{}runtime.hugepages.per_node: key {node:?} is not a NUMA node number",
                        at(layout, need.per_node.span())
                    ))
                })?;
                if machine.node(id).is_none() {
                    return Err(GenError(format!(
                        "{}runtime.hugepages.per_node: node {id} is not on this machine",
                        at(layout, need.per_node.span())
                    )));
                }
                per_node.push((id, pages.saturating_mul(page_mib)));
            }
            let top = machine.nodes.iter().map(|n| n.id).chain(per_node.iter().map(|&(n, _)| n)).max().unwrap_or(0);
            let mib: Vec<String> = (0..=top)
                .map(|node| per_node.iter().filter(|&&(n, _)| n == node).map(|&(_, m)| m).sum::<u64>().to_string())
                .collect();
            let _ = writeln!(out, "# Memory: {size} hugepages reserved per NUMA node (MiB, node 0 first).");
            args.push(format!("--socket-mem {}", mib.join(",")));
        }
        None if has_pci => {
            let _ = writeln!(
                out,
                "# Memory: runtime.hugepages is not set, so no reservation: EAL takes hugepages as it needs them."
            );
        }
        None => {
            let _ = writeln!(out, "# Memory: no hugepages and no PCI port: {NO_HUGE_MIB} MiB of ordinary memory.");
            args.push("--no-huge".to_owned());
            args.push(format!("-m {NO_HUGE_MIB}"));
        }
    }
    if !has_pci {
        args.push("--no-pci".to_owned());
    }

    for arg in args.iter().chain(devices.iter()) {
        out.push_str(arg);
        out.push('\n');
    }
    Ok(out)
}

/// `, node N, bound to DRIVER now` for a port this machine has (empty for one it does not have).
fn port_state(machine: &Machine, addr: &str) -> String {
    let Some(nic) = machine.nic(addr) else { return ", not on this machine".to_owned() };
    let node = nic.numa_node.map_or_else(|| "no NUMA node".to_owned(), |n| format!("node {n}"));
    let driver = nic.driver.as_deref().map_or_else(|| "no driver".to_owned(), |d| format!("bound to {d}"));
    format!(", {node}, {} now", super::one_line(&driver))
}

/// True when `text` survives whitespace splitting and shell word splitting unchanged.
fn plain(text: &str) -> bool {
    !text.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '\'' | '"' | '\\' | '`' | '$'))
}

/// `text` as one EAL argument value, or an error naming the layout value.
fn arg_value(layout: &Layout, text: &str, span: std::ops::Range<usize>, what: &str) -> Result<String, GenError> {
    if plain(text) {
        Ok(text.to_owned())
    } else {
        Err(GenError(format!(
            "{}{what} {text:?} contains whitespace, quotes or `$`, which EAL arguments here cannot carry",
            at(layout, span)
        )))
    }
}

