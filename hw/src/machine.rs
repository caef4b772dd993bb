//! The machine as a hardware team sees it, read from `/sys` and `/proc` (or a copy of them under a root
//! directory): packages, NUMA nodes and distances, L3 groups, cores and SMT siblings, online, isolated and
//! nohz_full CPUs, this process's allowed CPUs, hugepages per node, NICs with their PCI address, driver and
//! node, IRQ affinities, and the clock.
//!
//! Everything here is plain data: [`Machine::discover`] fills it, tests build it by hand, and the layout
//! checker ([`crate::layout`]) and the generators ([`crate::generate`]) only read it.

use std::path::PathBuf;

use crate::cpuset::CpuSet;
use crate::topology::{Cpu, Topology};

/// One logical CPU ("PU" in hwloc's vocabulary).
///
/// The kernel removes `topology/` and `cache/` of an offline CPU, so for one [`Machine::discover`] fills
/// placeholders: package and die 0, core = id, siblings = itself, no L3; `node` still comes from its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuInfo {
    /// OS CPU number.
    pub id: u32,
    /// `topology/physical_package_id`.
    pub package: u32,
    /// `topology/die_id` (0 where the kernel does not say).
    pub die: u32,
    /// `topology/core_id`: unique within a package only.
    pub core: u32,
    /// The NUMA node (`cpuN/nodeM` link, or the node whose cpulist holds it); 0 on a non-NUMA kernel.
    pub node: u32,
    /// Id of the L3 cache this CPU uses (`cache/index*/level == 3` → `id`, or the lowest CPU sharing it
    /// when the kernel has no `id` file); `None` without an L3.
    pub l3: Option<u32>,
    /// L3 size in KiB, when known.
    pub l3_kib: Option<u32>,
    /// `topology/thread_siblings_list` (the CPU itself included).
    pub smt_siblings: CpuSet,
    /// `online` (CPU 0 usually has no such file and is always online).
    pub online: bool,
}

/// One size of hugepages on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HugePages {
    /// Page size in KiB (2048, 1048576).
    pub size_kib: u64,
    /// `nr_hugepages`.
    pub total: u64,
    /// `free_hugepages`.
    pub free: u64,
}

/// One NUMA node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node id.
    pub id: u32,
    /// `nodeN/cpulist`.
    pub cpus: CpuSet,
    /// `nodeN/distance`: the distance to each node of [`Machine::nodes`], in the same order.
    pub distances: Vec<u32>,
    /// `MemTotal` of `nodeN/meminfo`, KiB.
    pub mem_total_kib: Option<u64>,
    /// `nodeN/hugepages/hugepages-*kB`, ascending by size.
    pub hugepages: Vec<HugePages>,
}

/// A network device: a PCI network controller (class 0x02), with or without a kernel netdev (a port bound
/// to `vfio-pci` has none), or a netdev that has a device behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicInfo {
    /// PCI address (`0000:3b:00.0`), when the device is on PCI.
    pub pci: Option<String>,
    /// Kernel interface names (`eth0`); empty for a port bound to a DPDK driver.
    pub netdevs: Vec<String>,
    /// The PCI device's driver (`ice`, `mlx5_core`, `vfio-pci`, `virtio-pci`), if bound.
    pub driver: Option<String>,
    /// PCI `vendor:device` ids (`8086:159b`).
    pub ids: Option<String>,
    /// `numa_node`; `None` when the kernel says -1 (no affinity, as in a VM).
    pub numa_node: Option<u32>,
    /// Rx queues the kernel driver exposes (`queues/rx-*` of the netdev, summed over its netdevs), when
    /// there is a netdev.
    pub rx_queues: Option<u32>,
}

/// One IRQ line: what `/proc/interrupts` and `/proc/irq/N/` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrqInfo {
    /// IRQ number.
    pub number: u32,
    /// The action names (`mlx5_comp3@pci:0000:3b:00.0`, `ttyS0`), as `/proc/interrupts` ends the line.
    pub name: String,
    /// `smp_affinity_list`: where it may run.
    pub affinity: CpuSet,
    /// `effective_affinity_list`, when the kernel has it.
    pub effective: Option<CpuSet>,
}

/// The clock weir stamps latencies with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClockInfo {
    /// `current_clocksource` (`tsc`, `kvm-clock`, `hpet`).
    pub clocksource: String,
    /// `available_clocksource`.
    pub available: Vec<String>,
    /// `constant_tsc` in every CPU's flags.
    pub constant_tsc: bool,
    /// `nonstop_tsc` in every CPU's flags.
    pub nonstop_tsc: bool,
    /// `tsc_known_freq`.
    pub tsc_known_freq: bool,
}

impl ClockInfo {
    /// Invariant TSC (`constant_tsc` and `nonstop_tsc`) and a TSC-based clocksource: stamps can be trusted.
    pub fn is_sane(&self) -> bool {
        self.constant_tsc && self.nonstop_tsc && matches!(self.clocksource.as_str(), "tsc" | "kvm-clock")
    }
}

/// Everything weir knows about the machine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Machine {
    /// Where it was read from (`/` for the live machine).
    pub root: PathBuf,
    /// Every present CPU, online or not, ascending by id.
    pub cpus: Vec<CpuInfo>,
    /// NUMA nodes, ascending; one node 0 holding every CPU on a kernel without NUMA.
    pub nodes: Vec<NodeInfo>,
    /// `cpu/online`. Discovery fails without it (or `cpu/present`): the root is not a machine's.
    pub online: CpuSet,
    /// `cpu/isolated` (from `isolcpus=`).
    pub isolated: CpuSet,
    /// `cpu/nohz_full`.
    pub nohz_full: CpuSet,
    /// The CPUs this process may run on (`Cpus_allowed_list` of `/proc/self/status`: affinity and cgroup
    /// cpuset together); the online CPUs when that file is absent.
    pub allowed: CpuSet,
    /// `/proc/cmdline`.
    pub cmdline: String,
    /// NICs, by PCI address then name.
    pub nics: Vec<NicInfo>,
    /// IRQs, by number; one whose `smp_affinity_list` cannot be read (a container masking `/proc/irq`) is
    /// left out rather than guessed.
    pub irqs: Vec<IrqInfo>,
    /// The clock.
    pub clock: ClockInfo,
}

impl Machine {
    /// The CPU with this id.
    pub fn cpu(&self, id: u32) -> Option<&CpuInfo> {
        self.cpus.binary_search_by_key(&id, |c| c.id).ok().map(|i| &self.cpus[i])
    }

    /// The node with this id.
    pub fn node(&self, id: u32) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The NIC at this PCI address (any form: `3b:00.0`, `0000:3B:00.0`) or with this interface name.
    pub fn nic(&self, pci_or_name: &str) -> Option<&NicInfo> {
        if crate::pci::is_pci_address(pci_or_name) {
            let full = crate::pci::full_pci_address(pci_or_name).to_ascii_lowercase();
            return self.nics.iter().find(|n| n.pci.as_deref() == Some(full.as_str()));
        }
        self.nics.iter().find(|n| n.netdevs.iter().any(|d| d == pci_or_name))
    }

    /// The online CPUs of one node.
    pub fn node_cpus(&self, node: u32) -> CpuSet {
        self.cpus.iter().filter(|c| c.node == node && c.online).map(|c| c.id).collect()
    }

    /// Housekeeping CPUs: online and neither isolated nor nohz_full.
    pub fn housekeeping(&self) -> CpuSet {
        self.online.difference(&self.isolated.union(&self.nohz_full))
    }

    /// The scheduler's view: online CPUs with core, package and node.
    pub fn topology(&self) -> Topology {
        Topology::new(
            self.cpus
                .iter()
                .filter(|c| c.online)
                .map(|c| Cpu { id: c.id, core: c.core, package: c.package, node: c.node })
                .collect(),
        )
    }
}
