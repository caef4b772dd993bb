//! Discovery on the fixture trees, on this machine, and on broken trees.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use weir_hw::machine::HugePages;
use weir_hw::{CpuSet, DiscoverError, Machine};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn set(list: &str) -> CpuSet {
    CpuSet::parse_list(list).unwrap()
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("weir-hw-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Copy a tree, symlinks as symlinks.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if kind.is_dir() {
            copy_tree(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The two-socket fixture copied to a temp dir, with `rel` replaced by `content` (or removed for `None`).
fn broken(tag: &str, rel: &str, content: Option<&str>) -> TempDir {
    let dir = TempDir::new(tag);
    copy_tree(&fixture("two-socket"), &dir.0);
    match content {
        Some(text) => fs::write(dir.0.join(rel), text).unwrap(),
        None => fs::remove_file(dir.0.join(rel)).unwrap(),
    }
    dir
}

#[test]
fn live_machine_agrees_with_other_sources() {
    let m = Machine::discover(Path::new("/")).unwrap();
    assert_eq!(m.root, Path::new("/"));
    // The test thread inherits the process's affinity; sched_getaffinity is a different source than /proc.
    let affinity = CpuSet::new(weir_hw::pin::current_thread_affinity().unwrap());
    assert_eq!(m.allowed, affinity);
    // available_parallelism also honours a cgroup CPU quota, so it may be lower.
    let parallelism = std::thread::available_parallelism().unwrap().get();
    assert!(parallelism <= m.allowed.len(), "{parallelism} > {}", m.allowed);
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Cpus_allowed_list")).unwrap();
    assert_eq!(m.allowed.to_string(), line.split_whitespace().last().unwrap());
    // /proc/cpuinfo lists the online CPUs.
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap();
    let processors = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    assert_eq!(m.online.len(), processors);
    assert_eq!(m.cpus.iter().filter(|c| c.online).count(), processors);
    assert!(m.allowed.is_subset(&m.online));
    assert!(m.cpus.windows(2).all(|w| w[0].id < w[1].id));
    // Every online CPU is in exactly one node, and each node's distance row has one entry per node.
    for cpu in m.online.iter() {
        assert_eq!(m.nodes.iter().filter(|n| n.cpus.contains(cpu)).count(), 1, "cpu {cpu}");
        assert!(m.cpu(cpu).unwrap().smt_siblings.contains(cpu));
    }
    assert!(m.nodes.iter().all(|n| n.distances.len() == m.nodes.len()));
    if let Some(cpu) = weir_hw::pin::current_cpu() {
        assert!(m.online.contains(cpu));
    }
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap();
    assert_eq!(m.cmdline, cmdline.trim());
    let clocksource =
        fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource").unwrap_or_default();
    assert_eq!(m.clock.clocksource, clocksource.trim());
    // Each netdev with a device behind it is in some NIC.
    for entry in fs::read_dir("/sys/class/net").unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if entry.path().join("device").exists() {
            assert!(m.nic(&name).is_some(), "{name} missing from {:?}", m.nics);
        }
    }
}

#[test]
fn fixture_snapshot_round_trips() {
    // Snapshot a fixture (symlinks and all) and discover the copy: the same machine.
    let out = TempDir::new("fixsnap");
    weir_hw::snapshot(&fixture("two-socket"), &out.0).unwrap();
    let a = Machine::discover(&fixture("two-socket")).unwrap();
    let b = Machine::discover(&out.0).unwrap();
    assert_eq!(Machine { root: PathBuf::new(), ..a }, Machine { root: PathBuf::new(), ..b });
    assert!(fs::symlink_metadata(out.0.join("sys/class/net/ens1f0")).unwrap().file_type().is_symlink());
    // Into a directory that is not empty: refused.
    let err = weir_hw::snapshot(&fixture("two-socket"), &out.0).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
}

#[test]
fn sources_are_root_relative_and_cover_the_links() {
    let (_, sources) = Machine::discover_with_sources(&fixture("two-socket")).unwrap();
    assert!(sources.iter().all(|p| p.is_relative()));
    for expected in [
        "sys/devices/system/cpu/online",
        "sys/devices/system/cpu/cpu3/topology/core_id",
        "sys/bus/pci/devices/0000:3b:00.0/driver",
        "sys/class/net/ens2f1/queues/rx-15",
        "proc/irq/154/smp_affinity_list",
    ] {
        assert!(sources.iter().any(|p| p == Path::new(expected)), "{expected} not in sources");
    }
}

#[test]
fn a_bad_file_is_named_with_its_content() {
    let rel = "sys/devices/system/cpu/cpu3/topology/core_id";
    let dir = broken("corrupt", rel, Some("x\n"));
    let err = Machine::discover(&dir.0).unwrap_err();
    assert!(matches!(err, DiscoverError::Parse { .. }), "{err:?}");
    assert_eq!(err.path(), Path::new(rel));
    let msg = err.to_string();
    assert!(msg.starts_with(rel) && msg.contains("\"x\\n\""), "{msg}");

    let rel = "sys/devices/system/node/node1/distance";
    let dir = broken("distance", rel, Some("21\n"));
    let err = Machine::discover(&dir.0).unwrap_err();
    assert_eq!(err.path(), Path::new(rel), "{err}");
    assert!(err.to_string().contains("2 distances"), "{err}");

    let rel = "proc/irq/154/smp_affinity_list";
    let dir = broken("irq", rel, Some("12-x\n"));
    let err = Machine::discover(&dir.0).unwrap_err();
    assert_eq!(err.path(), Path::new(rel), "{err}");
}

#[test]
fn an_online_cpu_without_topology_is_an_error() {
    let rel = "sys/devices/system/cpu/cpu5/topology/physical_package_id";
    let dir = broken("notopo", rel, None);
    let err = Machine::discover(&dir.0).unwrap_err();
    assert!(matches!(err, DiscoverError::Missing { .. }), "{err:?}");
    assert_eq!(err.path(), Path::new(rel));
}

#[test]
fn optional_files_give_defaults() {
    let dir = broken("optional", "sys/devices/system/cpu/isolated", None);
    for rel in [
        "sys/devices/system/cpu/nohz_full",
        "sys/devices/system/cpu/cpu3/topology/die_id",
        "proc/irq/154/effective_affinity_list",
        "sys/devices/system/clocksource/clocksource0/current_clocksource",
    ] {
        fs::remove_file(dir.0.join(rel)).unwrap();
    }
    for rel in ["sys/devices/system/node/node0/hugepages", "sys/devices/system/cpu/cpu3/cache", "sys/bus"] {
        fs::remove_dir_all(dir.0.join(rel)).unwrap();
    }
    let m = Machine::discover(&dir.0).unwrap();
    assert!(m.isolated.is_empty() && m.nohz_full.is_empty());
    assert_eq!(m.cpu(3).unwrap().die, 0);
    assert_eq!(m.cpu(3).unwrap().l3, None);
    assert!(m.node(0).unwrap().hugepages.is_empty());
    assert_eq!(m.irqs.iter().find(|i| i.number == 154).unwrap().effective, None);
    assert_eq!(m.clock.clocksource, "");
    // Without sys/bus the NICs come from their netdevs alone, still with their PCI address.
    assert_eq!(m.nics.iter().map(|n| n.pci.as_deref().unwrap()).collect::<Vec<_>>(), ["0000:3b:00.0", "0000:af:00.1"]);
    assert_eq!(m.nic("ens2f1").unwrap().driver, None);
}

#[test]
fn an_unset_mask_printed_as_null_is_empty() {
    // CONFIG_CPUMASK_OFFSTACK kernels booted without nohz_full= print `(null)`.
    let dir = broken("null", "sys/devices/system/cpu/nohz_full", Some("(null)\n"));
    let m = Machine::discover(&dir.0).unwrap();
    assert!(m.nohz_full.is_empty());
    assert_eq!(m.isolated, set("4-7,12-15"));
}

#[test]
fn l3_without_id_is_named_by_its_lowest_cpu() {
    let dir = broken("l3", "sys/devices/system/cpu/cpu9/cache/index3/id", None);
    fs::write(dir.0.join("sys/devices/system/cpu/cpu9/cache/index3/shared_cpu_list"), "8-15,24-30\n").unwrap();
    let m = Machine::discover(&dir.0).unwrap();
    assert_eq!(m.cpu(9).unwrap().l3, Some(8));
}

#[test]
fn no_node_directory_means_one_node() {
    let dir = TempDir::new("nonuma");
    copy_tree(&fixture("vm-2cpu"), &dir.0);
    fs::remove_dir_all(dir.0.join("sys/devices/system/node")).unwrap();
    let m = Machine::discover(&dir.0).unwrap();
    assert_eq!(m.nodes.len(), 1);
    assert_eq!((m.nodes[0].id, &m.nodes[0].cpus, &m.nodes[0].distances), (0, &set("0-1"), &vec![10]));
    assert!(m.cpus.iter().all(|c| c.node == 0));
}

#[test]
fn a_root_without_sys_is_the_wrong_root() {
    let dir = TempDir::new("empty");
    fs::create_dir_all(dir.0.join("proc")).unwrap();
    let err = Machine::discover(&dir.0).unwrap_err();
    assert!(matches!(err, DiscoverError::WrongRoot { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("sys/devices/system/cpu/online") && msg.contains("--root"), "{msg}");
    let err = Machine::discover(&fixture("does-not-exist")).unwrap_err();
    assert!(err.to_string().contains("wrong directory"), "{err}");
}

#[test]
fn snapshot_of_the_live_machine_discovers_the_same() {
    let out = TempDir::new("snap");
    let n = weir_hw::snapshot(Path::new("/"), &out.0).unwrap();
    assert!(n > 10, "{n}");
    let live = Machine::discover(Path::new("/")).unwrap();
    let copy = Machine::discover(&out.0).unwrap();
    assert_eq!(copy.root, out.0);
    // IRQ affinities and free hugepages may change between the two reads: compared apart, by what is stable.
    let stable = |m: Machine| {
        let irqs: Vec<(u32, String)> = m.irqs.iter().map(|i| (i.number, i.name.clone())).collect();
        let mut m = Machine { root: PathBuf::new(), irqs: Vec::new(), ..m };
        for node in &mut m.nodes {
            node.hugepages.iter_mut().for_each(|h| h.free = 0);
        }
        (m, irqs)
    };
    assert_eq!(stable(copy), stable(live));
}

#[test]
fn two_socket() {
    let m = Machine::discover(&fixture("two-socket")).unwrap();
    assert_eq!(m.cpus.len(), 32);
    assert_eq!(m.online, set("0-30"));
    assert_eq!(m.cpus.iter().filter(|c| c.online).count(), 31);
    assert!(!m.cpu(31).unwrap().online);
    assert_eq!(m.cpu(31).unwrap().node, 1, "from the cpu31/node1 link");

    let c4 = m.cpu(4).unwrap();
    assert_eq!((c4.package, c4.die, c4.core, c4.node), (0, 0, 4, 0));
    assert_eq!(c4.smt_siblings, set("4,20"));
    let c24 = m.cpu(24).unwrap();
    assert_eq!((c24.package, c24.core, c24.node), (1, 0, 1));
    assert_eq!(c24.smt_siblings, set("8,24"));
    assert_eq!(m.cpu(15).unwrap().smt_siblings, set("15"), "cpu31 is offline");
    assert!(m.topology().are_siblings(4, 20));
    assert!(!m.topology().are_siblings(4, 12));

    assert_eq!(m.nodes.iter().map(|n| n.id).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(m.node(0).unwrap().cpus, set("0-7,16-23"));
    assert_eq!(m.node(1).unwrap().cpus, set("8-15,24-30"));
    assert_eq!(m.node(0).unwrap().distances, [10, 21]);
    assert_eq!(m.node(1).unwrap().distances, [21, 10]);
    assert_eq!(m.node(1).unwrap().mem_total_kib, Some(197911852));
    assert_eq!(m.node_cpus(1), set("8-15,24-30"));

    let l3 = |id| m.cpus.iter().filter(|c| c.l3 == Some(id)).map(|c| c.id).collect::<CpuSet>();
    assert_eq!(l3(0), set("0-7,16-23"));
    assert_eq!(l3(1), set("8-15,24-30"));
    assert_eq!(m.cpu(0).unwrap().l3_kib, Some(36608));
    assert_eq!(m.cpu(31).unwrap().l3, None);

    assert_eq!(m.isolated, set("4-7,12-15"));
    assert_eq!(m.nohz_full, set("4-7,12-15"));
    assert_eq!(m.housekeeping(), set("0-3,8-11,16-30"));
    assert_eq!(m.allowed, set("0-30"));
    assert!(m.cmdline.contains("isolcpus=managed_irq,domain,4-7,12-15"), "{}", m.cmdline);
    assert!(m.cmdline.ends_with("iommu=pt"), "trimmed: {:?}", m.cmdline);

    let g = 1 << 20;
    assert_eq!(
        m.node(0).unwrap().hugepages,
        [HugePages { size_kib: 2048, total: 1024, free: 1024 }, HugePages { size_kib: g, total: 4, free: 4 }]
    );
    assert_eq!(
        m.node(1).unwrap().hugepages,
        [HugePages { size_kib: 2048, total: 1024, free: 1024 }, HugePages { size_kib: g, total: 4, free: 2 }]
    );

    let pcis: Vec<_> = m.nics.iter().map(|n| n.pci.as_deref().unwrap()).collect();
    assert_eq!(pcis, ["0000:3b:00.0", "0000:af:00.0", "0000:af:00.1"], "the host bridge is not a NIC");
    let ice = m.nic("ens1f0").unwrap();
    assert_eq!(ice.pci.as_deref(), Some("0000:3b:00.0"));
    assert_eq!(ice.driver.as_deref(), Some("ice"));
    assert_eq!(ice.ids.as_deref(), Some("8086:159b"));
    assert_eq!((ice.numa_node, ice.rx_queues), (Some(0), Some(8)));
    assert_eq!(ice.netdevs, ["ens1f0"]);
    let vfio = m.nic("0000:af:00.0").unwrap();
    assert_eq!(vfio.driver.as_deref(), Some("vfio-pci"));
    assert!(vfio.netdevs.is_empty());
    assert_eq!((vfio.numa_node, vfio.rx_queues), (Some(1), None));
    let mlx = m.nic("0000:af:00.1").unwrap();
    assert_eq!(mlx.driver.as_deref(), Some("mlx5_core"));
    assert_eq!(mlx.netdevs, ["ens2f1"]);
    assert_eq!((mlx.numa_node, mlx.rx_queues), (Some(1), Some(16)));
    assert!(m.nic("lo").is_none());

    assert_eq!(m.irqs.len(), 11);
    let on_isolated: Vec<_> = m.irqs.iter().filter(|i| !i.affinity.intersection(&m.isolated).is_empty()).collect();
    assert_eq!(on_isolated.len(), 1);
    let comp3 = on_isolated[0];
    assert_eq!((comp3.number, comp3.name.as_str()), (154, "mlx5_comp3@pci:0000:af:00.1"));
    assert_eq!(comp3.affinity, set("12"));
    assert_eq!(comp3.effective, Some(set("12")));
    let ttys = m.irqs.iter().find(|i| i.name == "ttyS0").unwrap();
    assert_eq!(ttys.affinity, set("0-3,8-11"));
    let timer = m.irqs.iter().find(|i| i.number == 0).unwrap();
    assert_eq!((timer.name.as_str(), timer.effective.as_ref()), ("timer", None));

    assert_eq!(m.clock.clocksource, "tsc");
    assert_eq!(m.clock.available, ["tsc", "hpet", "acpi_pm"]);
    assert!(m.clock.constant_tsc && m.clock.nonstop_tsc && m.clock.tsc_known_freq);
    assert!(m.clock.is_sane());
}

#[test]
fn vm_2cpu() {
    let m = Machine::discover(&fixture("vm-2cpu")).unwrap();
    assert_eq!(m.cpus.len(), 2);
    assert_eq!(m.online, set("0-1"));
    assert!(m.isolated.is_empty() && m.nohz_full.is_empty());
    assert_eq!(m.allowed, set("0-1"));
    for c in &m.cpus {
        assert_eq!((c.package, c.node, c.l3), (0, 0, Some(0)));
        assert_eq!(c.smt_siblings, CpuSet::new([c.id]), "no SMT");
    }
    assert_eq!(m.nodes.len(), 1);
    assert_eq!(m.nodes[0].cpus, set("0-1"));
    assert_eq!(m.nodes[0].distances, [10]);
    assert_eq!(m.nodes[0].hugepages.iter().map(|h| h.size_kib).collect::<Vec<_>>(), [2048, 1 << 20]);
    assert_eq!(m.nics.len(), 1);
    let eth0 = m.nic("eth0").unwrap();
    assert_eq!(eth0.pci.as_deref(), Some("0000:00:03.0"), "walked up from .../0000:00:03.0/virtio2");
    assert_eq!(eth0.driver.as_deref(), Some("virtio-pci"));
    assert_eq!(eth0.ids.as_deref(), Some("1af4:1041"));
    assert_eq!((eth0.numa_node, eth0.rx_queues), (None, Some(1)));
    let irq = m.irqs.iter().find(|i| i.name == "virtio2-input.0").unwrap();
    assert_eq!(irq.affinity, set("0-1"));
    assert!(irq.effective.is_some());
    assert_eq!(m.clock.clocksource, "tsc");
    assert!(m.clock.available.contains(&"kvm-clock".to_string()));
    assert!(m.clock.constant_tsc && m.clock.nonstop_tsc);
}
