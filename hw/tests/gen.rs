//! `weir hw gen` targets on two hand-built machines, against golden files.
//!
//! Goldens: `hw/tests/golden/gen/<target>-<case>.txt`, compared byte for byte. After an intended change
//! of a generator, rewrite them and review the diff:
//!
//! ```sh
//! WEIR_BLESS=1 cargo test -p weir-hw --test gen
//! git diff hw/tests/golden/gen
//! ```
//!
//! The other tests check what a golden could hide (every hot CPU isolated, the main lcore in `-l`, the
//! IRQ script accepted by `sh -n` and run against a fake `/proc`, ...).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use weir_hw::CpuSet;
use weir_hw::generate::{GenError, Target, generate};
use weir_hw::layout::Layout;
use weir_hw::machine::{CpuInfo, HugePages, IrqInfo, Machine, NicInfo, NodeInfo};

mod common;

use common::set;

/// The shared two-socket machine, with what these goldens were written against: no nohz_full, a command
/// line with only `isolcpus=4-7`, 32 queues on the ice port, a ttyS0 IRQ on housekeeping CPUs, no clock.
fn two_socket() -> Machine {
    let mut m = common::two_socket();
    m.nohz_full = CpuSet::empty();
    m.cmdline = "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=4f1c ro quiet isolcpus=4-7".into();
    m.nics[0].rx_queues = Some(32);
    m.irqs.insert(0, IrqInfo { number: 30, name: "ttyS0".into(), affinity: set("0-3"), effective: Some(set("0")) });
    m.clock = Default::default();
    m
}

const TWO_SOCKET_LAYOUT: &str = r#"
[runtime]
name = "iex-fh-a"
isolation = "warn"
hugepages = { size = "1G", per_node = { 0 = 2, 1 = 2 } }

[[nic]]
name = "feedA"
pci = "0000:3b:00.0"
driver = "ice"

[[nic]]
name = "feedB"
pci = "0000:af:00.0"
driver = "vfio-pci"

[[core]]
cpu = 4
role = "rx"
nic = "feedA"

[[core]]
cpu = 12
role = "rx"
nic = "feedB"

[dag]
workers = [5, 6, 7]

[telemetry]
cpu = 1
"#;

/// A single-node VM with 2 CPUs, a virtio NIC and no hugepages.
fn vm() -> Machine {
    let cpus = (0..2)
        .map(|id| CpuInfo {
            id,
            package: 0,
            die: 0,
            core: id,
            node: 0,
            l3: Some(0),
            l3_kib: Some(16384),
            smt_siblings: CpuSet::new([id]),
            online: true,
        })
        .collect();
    Machine {
        root: PathBuf::from("/"),
        cpus,
        nodes: vec![NodeInfo {
            id: 0,
            cpus: set("0-1"),
            distances: vec![10],
            mem_total_kib: Some(4 << 20),
            hugepages: vec![HugePages { size_kib: 2048, total: 0, free: 0 }],
        }],
        online: set("0-1"),
        isolated: CpuSet::empty(),
        nohz_full: CpuSet::empty(),
        allowed: set("0-1"),
        cmdline: "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-cloud-amd64 root=/dev/vda1 ro console=ttyS0".into(),
        nics: vec![NicInfo {
            pci: Some("0000:00:03.0".into()),
            netdevs: vec!["eth0".into()],
            driver: Some("virtio-pci".into()),
            ids: Some("1af4:1000".into()),
            numa_node: None,
            rx_queues: Some(2),
        }],
        irqs: vec![
            IrqInfo { number: 4, name: "ttyS0".into(), affinity: set("0-1"), effective: Some(set("0")) },
            IrqInfo { number: 24, name: "virtio0-input.0".into(), affinity: set("1"), effective: Some(set("1")) },
            IrqInfo { number: 25, name: "virtio0-output.0".into(), affinity: set("0"), effective: Some(set("0")) },
        ],
        clock: Default::default(),
    }
}

const VM_LAYOUT: &str = r#"
[runtime]
name = "vm-replay"

[[nic]]
name = "cap"
source = "dpdk:net_pcap0,rx_pcap=x.pcap,queue=0"

[[nic]]
name = "replay"
source = "pcap:/data/iex.pcap"

[[core]]
cpu = 1
role = "rx"
nic = "cap"
"#;

fn layout(path: &str, text: &str) -> Layout {
    Layout::parse(Path::new(path), text.to_owned()).unwrap_or_else(|p| panic!("{p:?}"))
}

/// The two cases: name, machine, layout.
fn cases() -> Vec<(&'static str, Machine, Layout)> {
    vec![
        ("two-socket", two_socket(), layout("/etc/weir/iex-fh-a.toml", TWO_SOCKET_LAYOUT)),
        ("vm", vm(), layout("/etc/weir/vm-replay.toml", VM_LAYOUT)),
    ]
}

fn gen_ok(target: Target, machine: &Machine, layout: &Layout) -> String {
    generate(target, layout, machine).unwrap_or_else(|e| panic!("{target}: {e}"))
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/gen")
}

#[test]
fn goldens() {
    let bless = std::env::var_os("WEIR_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (case, machine, layout) in cases() {
        for &target in Target::ALL {
            let got = gen_ok(target, &machine, &layout);
            let path = golden_dir().join(format!("{target}-{case}.txt"));
            if bless {
                std::fs::create_dir_all(golden_dir()).unwrap();
                std::fs::write(&path, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path).unwrap_or_default();
            if got != want {
                stale.push(format!("--- {} (want)\n{want}+++ generated\n{got}", path.display()));
            }
        }
    }
    assert!(stale.is_empty(), "goldens differ (WEIR_BLESS=1 rewrites them):\n{}", stale.join("\n"));
}

#[test]
fn every_output_says_where_it_came_from() {
    for (_, machine, layout) in cases() {
        let name = layout.runtime.name.as_ref().unwrap().get_ref().clone();
        for &target in Target::ALL {
            let out = gen_ok(target, &machine, &layout);
            let first = out.lines().find(|l| !l.starts_with("#!")).unwrap();
            assert!(first.starts_with("# Generated by `weir hw gen "), "{target}: {first}");
            assert!(first.contains(&layout.path.display().to_string()), "{target}: {first}");
            assert!(first.contains(&name), "{target}: {first}");
        }
    }
}

/// The value of the first non-comment line starting with `option `.
fn option<'a>(out: &'a str, opt: &str) -> Option<&'a str> {
    out.lines().filter(|l| !l.starts_with('#')).find_map(|l| l.strip_prefix(opt)?.strip_prefix(' '))
}

#[test]
fn eal_two_socket() {
    let (machine, layout) = (two_socket(), layout("/l.toml", TWO_SOCKET_LAYOUT));
    let out = gen_ok(Target::Eal, &machine, &layout);
    let lcores = set(option(&out, "-l").unwrap());
    let main: u32 = option(&out, "--main-lcore").unwrap().parse().unwrap();
    assert_eq!(main, 1, "the main lcore is telemetry.cpu");
    assert!(lcores.contains(main) && lcores.contains(4) && lcores.contains(12), "{lcores}");
    assert!(layout.hot_cpus().intersection(&CpuSet::new([main])).is_empty());
    assert_eq!(option(&out, "--socket-mem"), Some("2048,2048"));
    assert_eq!(option(&out, "--file-prefix"), Some("iex-fh-a"));
    let allowed: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("-a ")).collect();
    assert_eq!(allowed, ["0000:3b:00.0", "0000:af:00.0"]);
    assert!(!out.contains("--no-huge") && !out.contains("--no-pci") && !out.contains("--vdev"), "{out}");
    // What weir run --eal would get: every argument whitespace-separated, no comment left.
    for line in out.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with('-'), "{line:?}");
        assert!(line.split_whitespace().count() <= 2, "{line:?}");
    }
}

#[test]
fn eal_vm() {
    let (machine, layout) = (vm(), layout("/l.toml", VM_LAYOUT));
    let out = gen_ok(Target::Eal, &machine, &layout);
    assert_eq!(option(&out, "--main-lcore"), Some("0"), "no telemetry: the first housekeeping CPU");
    assert_eq!(set(option(&out, "-l").unwrap()), set("0-1"));
    assert_eq!(option(&out, "--vdev"), Some("net_pcap0,rx_pcap=x.pcap"), "weir's queue= is not the driver's");
    assert!(out.lines().any(|l| l == "--no-huge") && option(&out, "-m") == Some("512"), "{out}");
    assert!(out.lines().any(|l| l == "--no-pci"), "{out}");
    assert!(!out.contains("--socket-mem") && !out.contains("\n-a "), "{out}");
    assert!(out.contains("# nic replay: source pcap:/data/iex.pcap is not a DPDK port"), "{out}");
}

#[test]
fn eal_without_hugepages_but_with_a_pci_port_reserves_nothing() {
    let text = TWO_SOCKET_LAYOUT.replace("hugepages = { size = \"1G\", per_node = { 0 = 2, 1 = 2 } }", "");
    let out = gen_ok(Target::Eal, &two_socket(), &layout("/l.toml", &text));
    assert!(!out.contains("--socket-mem") && !out.contains("--no-huge"), "{out}");
    assert!(out.contains("EAL takes hugepages as it needs them"), "{out}");
}

#[test]
fn eal_socket_mem_covers_every_node_of_the_machine() {
    let text = TWO_SOCKET_LAYOUT.replace("per_node = { 0 = 2, 1 = 2 }", "per_node = { 0 = 3 }");
    let out = gen_ok(Target::Eal, &two_socket(), &layout("/l.toml", &text));
    assert_eq!(option(&out, "--socket-mem"), Some("3072,0"));
    let text = TWO_SOCKET_LAYOUT
        .replace("size = \"1G\", per_node = { 0 = 2, 1 = 2 }", "size = \"2M\", per_node = { 1 = 512 }");
    let out = gen_ok(Target::Eal, &two_socket(), &layout("/l.toml", &text));
    assert_eq!(option(&out, "--socket-mem"), Some("0,1024"));
}

#[test]
fn eal_maps_lcores_above_128() {
    let mut machine = vm();
    machine.cpus = (0..256)
        .map(|id| CpuInfo {
            id,
            package: 0,
            die: 0,
            core: id,
            node: 0,
            l3: None,
            l3_kib: None,
            smt_siblings: CpuSet::new([id]),
            online: true,
        })
        .collect();
    machine.online = set("0-255");
    let text = VM_LAYOUT.replace("cpu = 1\n", "cpu = 200\n") + "\n[telemetry]\ncpu = 130\n";
    let out = gen_ok(Target::Eal, &machine, &layout("/l.toml", &text));
    assert_eq!(option(&out, "--lcores"), Some("0@130,1@200"), "{out}");
    assert_eq!(option(&out, "--main-lcore"), Some("0"));
    assert_eq!(option(&out, "-l"), None);
}

#[test]
fn kernel_cmdline_isolates_every_hot_cpu() {
    for (case, machine, layout) in cases() {
        let out = gen_ok(Target::KernelCmdline, &machine, &layout);
        let hot = layout.hot_cpus();
        let params = out.lines().find(|l| !l.starts_with('#')).unwrap();
        let value = |key: &str| {
            params.split(' ').find_map(|w| w.strip_prefix(key)?.strip_prefix('=')).unwrap_or_else(|| panic!("{key}"))
        };
        let iso = value("isolcpus");
        assert!(iso.starts_with("managed_irq,domain,"), "{case}: {iso}");
        // The whole hot core: every hot CPU, and every online SMT sibling of one that has no role.
        let quiet = set(iso.trim_start_matches("managed_irq,domain,"));
        let roles: CpuSet = layout.roles().into_iter().map(|(c, _)| c).collect();
        assert_eq!(quiet.intersection(&hot), hot, "{case}: {quiet}");
        for cpu in hot.iter() {
            let idle = machine.cpu(cpu).unwrap().smt_siblings.intersection(&machine.online).difference(&roles);
            assert_eq!(quiet.intersection(&idle), idle, "{case}: cpu {cpu}'s idle siblings {idle} not in {quiet}");
        }
        assert_eq!(set(value("nohz_full")), quiet, "{case}");
        assert_eq!(set(value("rcu_nocbs")), quiet, "{case}");
        let irq = set(value("irqaffinity"));
        assert!(!irq.is_empty() && irq.intersection(&quiet).is_empty(), "{case}: {irq}");
        // Default housekeeping: online, not to be isolated, and not isolated by the running kernel either.
        assert_eq!(
            irq,
            machine.online.difference(&quiet).difference(&machine.isolated),
            "{case}: default housekeeping"
        );
        if case == "two-socket" {
            // Hot 4-7 and 12; their siblings 20-23 and 28 are online and idle.
            assert_eq!(quiet, set("4-7,12,20-23,28"));
        }
    }
}

#[test]
fn kernel_cmdline_compares_with_the_running_kernel() {
    let (mut machine, layout) = (two_socket(), layout("/l.toml", TWO_SOCKET_LAYOUT));
    let out = gen_ok(Target::KernelCmdline, &machine, &layout);
    let now = out.lines().last().unwrap();
    assert_eq!(
        now,
        "# now (/proc/cmdline): isolcpus=4-7 (differs), nohz_full (not set), rcu_nocbs (not set), \
         irqaffinity (not set)"
    );
    machine.cmdline =
        "ro isolcpus=domain,managed_irq,4-7,12,20-23,28 nohz_full=4,5,6,7,12,20,21,22,23,28 rcu_nocbs=1".into();
    let out = gen_ok(Target::KernelCmdline, &machine, &layout);
    let now = out.lines().last().unwrap();
    assert!(now.contains("isolcpus=domain,managed_irq,4-7,12,20-23,28 (same)"), "{now}");
    assert!(now.contains("nohz_full=4,5,6,7,12,20,21,22,23,28 (same)"), "{now}");
    assert!(now.contains("rcu_nocbs=1 (differs)"), "{now}");
}

#[test]
fn kernel_cmdline_honours_runtime_housekeeping() {
    let text = TWO_SOCKET_LAYOUT.replace("isolation = \"warn\"", "housekeeping = \"0-1,16-17\"");
    let out = gen_ok(Target::KernelCmdline, &two_socket(), &layout("/l.toml", &text));
    assert!(out.contains(" irqaffinity=0-1,16-17\n"), "{out}");
}

#[test]
fn systemd_fragment() {
    for (case, machine, layout) in cases() {
        let out = gen_ok(Target::Systemd, &machine, &layout);
        let value = |key: &str| {
            out.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).unwrap_or_else(|| panic!("{case}: {key}"))
        };
        assert!(out.contains("\n[Service]\n"), "{case}");
        let affinity = set(&value("CPUAffinity").replace(' ', ","));
        for (cpu, role) in layout.roles() {
            assert!(affinity.contains(cpu), "{case}: cpu {cpu} ({role}) outside CPUAffinity {affinity}");
        }
        assert_eq!(value("NUMAPolicy"), "bind");
        assert_eq!(value("LimitMEMLOCK"), "infinity");
        assert_eq!(value("Environment"), format!("WEIR_LAYOUT={}", layout.path.display()));
        let nodes = set(&value("NUMAMask").replace(' ', ","));
        assert_eq!(nodes, if case == "vm" { set("0") } else { set("0-1") }, "{case}");
    }
}

#[test]
fn systemd_affinity_is_space_separated() {
    let text = TWO_SOCKET_LAYOUT.replace("isolation = \"warn\"", "housekeeping = \"0-1\"");
    let out = gen_ok(Target::Systemd, &two_socket(), &layout("/l.toml", &text));
    assert!(out.contains("\nCPUAffinity=0-1 4-7 12\n"), "{out}");
}

#[test]
fn irq_script_passes_sh_n() {
    for (case, machine, layout) in cases() {
        let script = gen_ok(Target::Irq, &machine, &layout);
        let mut sh = Command::new("sh").arg("-n").stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        sh.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let done = sh.wait_with_output().unwrap();
        assert!(done.status.success(), "{case}: sh -n: {}\n{script}", String::from_utf8_lossy(&done.stderr));
        assert!(script.starts_with("#!/bin/sh\n") && script.contains("\nset -eu\n"), "{case}");
        assert!(script.contains(&format!("IRQBALANCE_BANNED_CPULIST={}", layout.cpus_to_isolate(&machine))), "{case}");
    }
}

#[test]
fn irq_script_moves_only_irqs_on_hot_cpus() {
    let (mut machine, layout) = (two_socket(), layout("/l.toml", TWO_SOCKET_LAYOUT));
    // Only on cpu 20, the idle SMT sibling of hot cpu 4: it interrupts the hot core all the same.
    machine.irqs.push(IrqInfo { number: 144, name: "nvme0q3".into(), affinity: set("20"), effective: None });
    let script = gen_ok(Target::Irq, &machine, &layout);
    assert!(script.contains("# IRQ 144: nvme0q3 (now on CPUs 20, hot: 20)"), "{script}");
    assert!(script.contains("/irq/142/smp_affinity_list"), "{script}");
    assert!(script.contains("# IRQ 142: mlx5_comp3@pci:0000:af:00.1"), "{script}");
    assert!(!script.contains("/irq/30/"), "ttyS0 is on 0-3 already: {script}");
    let mask =
        script.lines().find_map(|l| l.strip_prefix("echo ")?.strip_suffix(" > \"$proc/irq/default_smp_affinity\""));
    // Never onto an isolated CPU (13-15 are isolated and unused here), nor onto the hot CPUs' idle
    // siblings 20-23 and 28.
    assert_eq!(CpuSet::parse_mask(mask.unwrap()).unwrap(), set("0-3,8-11,16-19,24-27,29-30"));
}

/// Runs the script against a fake `/proc` where IRQ 142 refuses (its `smp_affinity_list` is a directory):
/// the script goes on, says so, and writes the rest.
#[test]
fn irq_script_runs_and_tolerates_a_refusal() {
    let (mut machine, layout) = (two_socket(), layout("/l.toml", TWO_SOCKET_LAYOUT));
    machine.irqs.push(IrqInfo { number: 143, name: "mlx5_comp4".into(), affinity: set("4-5"), effective: None });
    let script = gen_ok(Target::Irq, &machine, &layout);
    let proc = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("weir-gen-proc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&proc);
    std::fs::create_dir_all(proc.join("irq/142/smp_affinity_list")).unwrap();
    std::fs::create_dir_all(proc.join("irq/143")).unwrap();
    std::fs::write(proc.join("irq/143/smp_affinity_list"), "4-5\n").unwrap();
    let mut sh = Command::new("sh")
        .env("WEIR_PROC", &proc)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sh.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let done = sh.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains("IRQ 142: kernel refused (managed IRQ?)"), "{stderr}");
    let hk = set("0-3,8-11,16-19,24-27,29-30");
    assert_eq!(std::fs::read_to_string(proc.join("irq/143/smp_affinity_list")).unwrap(), format!("{hk}\n"));
    assert_eq!(std::fs::read_to_string(proc.join("irq/default_smp_affinity")).unwrap(), format!("{}\n", hk.to_mask()));
    assert!(String::from_utf8_lossy(&done.stdout).contains("IRQBALANCE_BANNED_CPULIST=4-7,12,20-23,28"));
    std::fs::remove_dir_all(&proc).unwrap();
}

fn gen_err(target: Target, machine: &Machine, layout: &Layout) -> GenError {
    match generate(target, layout, machine) {
        Ok(out) => panic!("{target}: expected an error, got\n{out}"),
        Err(e) => e,
    }
}

#[test]
fn no_housekeeping_cpu_is_an_error_for_every_target() {
    let text = VM_LAYOUT.to_owned() + "\n[dag]\nworkers = [0]\n";
    let (machine, layout) = (vm(), layout("/l.toml", &text));
    for &target in Target::ALL {
        let err = gen_err(target, &machine, &layout).to_string();
        assert!(err.starts_with(&format!("{target}: no housekeeping CPU would remain")), "{err}");
        assert!(err.contains("0-1"), "{err}");
    }
}

#[test]
fn housekeeping_must_stay_off_hot_cpus() {
    let text = VM_LAYOUT.replace("name = \"vm-replay\"", "name = \"vm-replay\"\nhousekeeping = \"0-1\"");
    let layout = layout("/l.toml", &text);
    for &target in Target::ALL {
        let err = gen_err(target, &vm(), &layout).to_string();
        assert!(err.contains("/l.toml:4:16: runtime.housekeeping 0-1 includes hot CPU 1"), "{err}");
    }
    let text = VM_LAYOUT.replace("name = \"vm-replay\"", "name = \"vm-replay\"\nhousekeeping = \"\"");
    let err = gen_err(Target::Irq, &vm(), &layout_of(&text)).to_string();
    assert!(err.contains("no housekeeping CPU"), "{err}");
}

fn layout_of(text: &str) -> Layout {
    layout("/l.toml", text)
}

#[test]
fn other_errors_name_the_value() {
    let bad_size = TWO_SOCKET_LAYOUT.replace("size = \"1G\"", "size = \"1T\"");
    let err = gen_err(Target::Eal, &two_socket(), &layout_of(&bad_size)).to_string();
    assert!(err.contains("runtime.hugepages.size \"1T\""), "{err}");
    let bad_node = TWO_SOCKET_LAYOUT.replace("1 = 2 }", "one = 2 }");
    let err = gen_err(Target::Eal, &two_socket(), &layout_of(&bad_node)).to_string();
    assert!(err.contains("key \"one\" is not a NUMA node number"), "{err}");
    let hot_telemetry = TWO_SOCKET_LAYOUT.replace("[telemetry]\ncpu = 1", "[telemetry]\ncpu = 4");
    let err = gen_err(Target::Eal, &two_socket(), &layout_of(&hot_telemetry)).to_string();
    assert!(err.contains("telemetry.cpu 4 also has a hot role"), "{err}");
    let no_hot = "[telemetry]\ncpu = 0\n";
    let err = gen_err(Target::KernelCmdline, &vm(), &layout_of(no_hot)).to_string();
    assert!(err.contains("no hot CPU"), "{err}");
    let missing_cpu = VM_LAYOUT.replace("cpu = 1\n", "cpu = 7\n");
    let err = gen_err(Target::Systemd, &vm(), &layout_of(&missing_cpu)).to_string();
    assert!(err.contains("hot CPU 7 does not exist on this machine (CPUs: 0-1)"), "{err}");
}
