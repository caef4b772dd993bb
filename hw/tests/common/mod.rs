//! The hand-built two-socket machine the layout and generator tests share (the fixture tree under
//! `fixtures/two-socket` is the same machine as discovery reads it; these tests vary single fields).
#![allow(dead_code)]

use weir_hw::machine::{ClockInfo, CpuInfo, HugePages, IrqInfo, NicInfo, NodeInfo};
use weir_hw::{CpuSet, Machine};

pub(crate) fn set(list: &str) -> CpuSet {
    CpuSet::parse_list(list).unwrap()
}

/// Two sockets, 16 cores each side with SMT siblings N and N+16: node0 = 0-7,16-23, node1 = 8-15,24-31;
/// isolated and nohz_full 4-7,12-15; cpu 31 offline; allowed 0-30; an `ice` port on node 0 with 8 queues
/// and a `vfio-pci` port on node 1; 1G hugepages 4/4 free on node 0, 2 of 4 free on node 1; IRQ 142 on
/// cpu 12; a sane TSC.
pub(crate) fn two_socket() -> Machine {
    let node_of = |id: u32| u32::from(id % 16 >= 8);
    let cpus = (0..32)
        .map(|id| CpuInfo {
            id,
            package: node_of(id),
            die: 0,
            core: id % 16,
            node: node_of(id),
            l3: Some(node_of(id)),
            l3_kib: Some(32768),
            smt_siblings: CpuSet::new([id % 16, id % 16 + 16]),
            online: id != 31,
        })
        .collect();
    let node = |id: u32, cpus: &str, free: u64| NodeInfo {
        id,
        cpus: set(cpus),
        distances: if id == 0 { vec![10, 21] } else { vec![21, 10] },
        mem_total_kib: Some(64 << 20),
        hugepages: vec![HugePages { size_kib: 1 << 20, total: 4, free }],
    };
    Machine {
        root: "/".into(),
        cpus,
        nodes: vec![node(0, "0-7,16-23", 4), node(1, "8-15,24-31", 2)],
        online: set("0-30"),
        isolated: set("4-7,12-15"),
        nohz_full: set("4-7,12-15"),
        allowed: set("0-30"),
        cmdline: "isolcpus=4-7,12-15 nohz_full=4-7,12-15".into(),
        nics: vec![
            NicInfo {
                pci: Some("0000:3b:00.0".into()),
                netdevs: vec!["ens1f0".into()],
                driver: Some("ice".into()),
                ids: Some("8086:159b".into()),
                numa_node: Some(0),
                rx_queues: Some(8),
            },
            NicInfo {
                pci: Some("0000:af:00.0".into()),
                netdevs: vec![],
                driver: Some("vfio-pci".into()),
                ids: Some("15b3:1017".into()),
                numa_node: Some(1),
                rx_queues: None,
            },
        ],
        irqs: vec![IrqInfo {
            number: 142,
            name: "mlx5_comp3@pci:0000:af:00.1".into(),
            affinity: set("12"),
            effective: Some(set("12")),
        }],
        clock: ClockInfo {
            clocksource: "tsc".into(),
            available: vec!["tsc".into(), "hpet".into(), "acpi_pm".into()],
            constant_tsc: true,
            nonstop_tsc: true,
            tsc_known_freq: true,
        },
    }
}
