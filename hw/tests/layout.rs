//! The layout file's parse errors and checks, against a hand-built two-socket machine.

use std::path::Path;

use weir_hw::Machine;
use weir_hw::layout::{Layout, Problem, Severity, check};
use weir_hw::machine::IrqInfo;

mod common;

use common::set;

fn machine() -> Machine {
    common::two_socket()
}

/// [`machine`] with whole cores isolated: the SMT siblings of 4-7 and 12-15 too (31 is offline).
fn tuned() -> Machine {
    let mut m = machine();
    m.isolated = set("4-7,12-15,20-23,28-30");
    m.nohz_full = m.isolated.clone();
    m
}

const GOOD: &str = r#"
[runtime]
name = "iex-fh-a"
isolation = "require"
allow_smt_siblings_hot = false
hugepages = { size = "1G", per_node = { 0 = 4, 1 = 2 } }
housekeeping = "0-3,16-19"

[[nic]]
name = "feedA"
pci = "0000:3b:00.0"
driver = "ice"
rx_queues = 2
rx_desc = 4096
rx_hw_timestamp = "prefer"

[[nic]]
name = "feedB"
pci = "0000:af:00.0"
driver = "vfio-pci"
rx_queues = 1

[[core]]
cpu = 4
role = "rx"
nic = "feedA"
queues = [0, 1]

[[core]]
cpu = 5
role = "normalize"

[[core]]
cpu = 6
role = "publish"

[[core]]
cpu = 13
role = "rx"
nic = "feedB"

[[ring]]
name = "iex.deepplus.mbo"
file = "/dev/hugepages/iex.deepplus.mbo"
capacity = "256MiB"
numa_node = 0
producer = 6
heartbeat = "1ms"

[dag]
partitions = { node0 = [7], node1 = [14, 15] }

[telemetry]
cpu = 1
prometheus_listen = "127.0.0.1:9464"
histogram_interval = "1s"
"#;

fn parse(text: &str) -> Layout {
    Layout::parse(Path::new("layout.toml"), text.to_string()).unwrap_or_else(|p| panic!("{}", show(&p)))
}

fn show(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("{p}\n")).collect()
}

fn check_on(text: &str, m: &Machine) -> Vec<Problem> {
    let problems = check(&parse(text), m);
    for p in &problems {
        assert!(!p.fix.is_empty(), "no fix: {p}");
    }
    let mut sorted = problems.clone();
    sorted.sort_by_key(|p| p.line_col);
    assert_eq!(sorted, problems, "not in file order");
    problems
}

/// 1-based line and column of the first `needle` in `text`, after `after` (the first occurrence of it).
fn pos(text: &str, after: &str, needle: &str) -> (usize, usize) {
    let from = text.find(after).unwrap_or_else(|| panic!("no {after:?}"));
    let at = from + text[from..].find(needle).unwrap_or_else(|| panic!("no {needle:?} after {after:?}"));
    weir_hw::layout::line_col(text, at)
}

/// Exactly one problem of `name` on `m`; it sits at `at` and says each of `words`.
fn one_on(m: &Machine, text: &str, name: &str, at: (usize, usize), words: &[&str]) -> Problem {
    let all = check_on(text, m);
    let mine: Vec<&Problem> = all.iter().filter(|p| p.check == name).collect();
    assert_eq!(mine.len(), 1, "expected one {name}, got:\n{}", show(&all));
    let p = mine[0].clone();
    assert_eq!(p.line_col, Some(at), "{p}");
    let text = format!("{} {}", p.message, p.fix);
    for w in words {
        assert!(text.contains(w), "{w:?} not in: {p}");
    }
    p
}

fn one(text: &str, name: &str, at: (usize, usize), words: &[&str]) -> Problem {
    one_on(&machine(), text, name, at, words)
}

fn none_on(m: &Machine, text: &str, name: &str) {
    let all = check_on(text, m);
    assert!(all.iter().all(|p| p.check != name), "unexpected {name}:\n{}", show(&all));
}

fn none(text: &str, name: &str) {
    none_on(&machine(), text, name)
}

#[test]
fn the_good_layout_has_no_problem() {
    let problems = check_on(GOOD, &tuned());
    assert!(problems.is_empty(), "{}", show(&problems));
}

#[test]
fn sibling_quiet() {
    // On `machine`, hot cpu 4's sibling 20 is online and not isolated.
    let t = format!("{RX4}{}", rx(4));
    one(
        &t,
        "sibling-quiet",
        (5, 7),
        &["cpu 4 (role=rx) shares its core with cpu 20, which is not isolated", "isolate cpu 20 too"],
    );
    none_on(&tuned(), &t, "sibling-quiet");
    // Telemetry on the sibling shares the core even when it is isolated.
    let with_telemetry = format!("{t}[telemetry]\ncpu = 20\n");
    let p = one_on(
        &tuned(),
        &with_telemetry,
        "sibling-quiet",
        (5, 7),
        &["cpu 20, which runs telemetry (telemetry.cpu at line"],
    );
    assert_eq!(p.severity, Severity::Warning);
    // Named as housekeeping, the sibling takes IRQs and threads: the fix is to take it out, not to isolate
    // it (which the `housekeeping` check would then warn about).
    let named = format!("[runtime]\nname = \"t\"\nhousekeeping = \"0,20\"\n{t}");
    let p = one_on(
        &tuned(),
        &named,
        "sibling-quiet",
        (8, 7),
        &["cpu 20, which runtime.housekeeping names", "take cpu 20 out of runtime.housekeeping"],
    );
    assert!(!p.fix.contains("kernel-cmdline"), "{p}");
    // An offline sibling (31, of 15) cannot share anything; isolation = "ignore" turns the advice off.
    none(&format!("{RX4}{}", rx(15)), "sibling-quiet");
    none(&format!("[runtime]\nisolation = \"ignore\"\n{t}"), "sibling-quiet");
}

#[test]
fn every_check_name_is_listed() {
    for name in weir_hw::layout::check::CHECKS {
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{name}");
    }
}

#[test]
fn display_format() {
    let t = "[[core]]\ncpu = 47\nrole = \"dag-worker\"\n";
    let p = one(t, "cpu-exists", (2, 7), &[]);
    assert_eq!(
        p.to_string(),
        "layout.toml:2:7: error[cpu-exists]: cpu 47 does not exist (online: 0-30)\n  fix: choose an online CPU (0-30)"
    );
}

// ---- parse errors ----

fn parse_err(text: &str) -> Vec<Problem> {
    let problems = Layout::parse(Path::new("layout.toml"), text.to_string()).unwrap_err();
    for p in &problems {
        assert_eq!(p.severity, Severity::Error);
        assert!(!p.fix.is_empty(), "{p}");
    }
    problems
}

#[test]
fn two_typos_two_problems_with_suggestions() {
    let t = "[runtime]\nisolaton = \"warn\"\n\n[[nic]]\nname = \"feedA\"\npci = \"0000:3b:00.0\"\nrx_queus = 2\n";
    let p = parse_err(t);
    assert_eq!(p.len(), 2, "{}", show(&p));
    assert_eq!((p[0].check, p[0].line_col), ("unknown-key", Some((2, 1))));
    assert!(p[0].message.contains("unknown key `isolaton` in [runtime] (did you mean `isolation`?)"), "{}", p[0]);
    assert_eq!((p[1].check, p[1].line_col), ("unknown-key", Some((7, 1))));
    assert!(p[1].message.contains("unknown key `rx_queus` in [[nic]] (did you mean `rx_queues`?)"), "{}", p[1]);
    assert_eq!(p[1].fix, "rename it to `rx_queues`");
}

#[test]
fn unknown_keys_without_a_near_name_list_the_known_ones() {
    let p = parse_err("[telemetry]\ncpu = 1\nzzzz = 3\n[bogus]\n");
    assert_eq!(p.len(), 2, "{}", show(&p));
    assert_eq!(p[0].line_col, Some((3, 1)));
    assert!(p[0].fix.contains("known keys here: cpu, prometheus_listen"), "{}", p[0]);
    assert_eq!(p[1].line_col, Some((4, 2)));
    assert!(p[1].message.contains("`bogus` at the top level"), "{}", p[1]);
}

#[test]
fn invalid_enum_values_name_the_allowed_ones() {
    let p = parse_err("[runtime]\nisolation = \"strict\"\n[[core]]\ncpu = 4\nrole = \"rxx\"\n");
    assert_eq!(p.len(), 2, "{}", show(&p));
    assert_eq!((p[0].check, p[0].line_col), ("invalid-value", Some((2, 13))));
    assert!(p[0].message.contains("`require`, `warn` or `ignore`"), "{}", p[0]);
    assert_eq!((p[1].check, p[1].line_col), ("invalid-value", Some((5, 8))));
    assert!(p[1].message.contains("`rx`, `normalize`, `publish`, `dag-worker` or `telemetry`"), "{}", p[1]);
    assert!(p[1].message.contains("did you mean `rx`?"), "{}", p[1]);
}

#[test]
fn wrong_types_and_missing_keys_keep_their_positions() {
    let t = "[[core]]\ncpu = \"x\"\nrole = \"rx\"\nqueues = [0, -1]\n[[core]]\nrole = \"publish\"\n[runtime]\nallow_smt_siblings_hot = 1\n";
    let p = parse_err(t);
    let got: Vec<_> = p.iter().map(|p| (p.check, p.line_col.unwrap())).collect();
    assert_eq!(
        got,
        [("wrong-type", (2, 7)), ("wrong-type", (4, 14)), ("missing-key", (5, 1)), ("wrong-type", (8, 26))],
        "{}",
        show(&p)
    );
    assert!(p[0].message.contains("`cpu` in [[core]] must be a non-negative integer, found string"), "{}", p[0]);
    assert!(p[2].message.contains("[[core]] has no `cpu`"), "{}", p[2]);
}

#[test]
fn syntax_errors_keep_their_positions() {
    let p = parse_err("[runtime]\nname = iex\n[[core]]\ncpu = 4\nrole = rx\n");
    let got: Vec<_> = p.iter().map(|p| (p.check, p.line_col.unwrap())).collect();
    assert_eq!(got, [("syntax", (2, 8)), ("syntax", (5, 8))], "{}", show(&p));
}

#[test]
fn an_empty_dag_is_refused() {
    let p = parse_err("[dag]\n");
    assert_eq!((p[0].check, p[0].line_col), ("missing-key", Some((1, 1))), "{}", show(&p));
}

// ---- checks: one layout that triggers each, and its fix ----

const RX4: &str = "[[nic]]\nname = \"feedA\"\npci = \"0000:3b:00.0\"\n";

fn rx(cpu: u32) -> String {
    format!("[[core]]\ncpu = {cpu}\nrole = \"rx\"\nnic = \"feedA\"\n")
}

#[test]
fn cpu_exists() {
    let t = "[[core]]\ncpu = 47\nrole = \"dag-worker\"\n";
    one(t, "cpu-exists", (2, 7), &["cpu 47 does not exist", "online: 0-30"]);
    let t = "[dag]\nworkers = [8, 31]\n";
    one(
        t,
        "cpu-exists",
        pos(t, "workers", "31"),
        &["cpu 31 is offline", "echo 1 > /sys/devices/system/cpu/cpu31/online"],
    );
    none("[dag]\nworkers = [8, 9]\n", "cpu-exists");
}

#[test]
fn cpu_allowed() {
    let mut m = machine();
    m.allowed = set("0-29");
    let t = "[telemetry]\ncpu = 30\n";
    one_on(
        &m,
        t,
        "cpu-allowed",
        (2, 7),
        &["cpu 30 is outside this process's allowed set 0-29", "container cpuset", "taskset"],
    );
    none_on(&m, "[telemetry]\ncpu = 29\n", "cpu-allowed");
}

#[test]
fn one_hot_role_per_cpu() {
    let t = format!("{RX4}{}[[core]]\ncpu = 4\nrole = \"normalize\"\n[dag]\nworkers = [4]\n", rx(4));
    let all = check_on(&t, &machine());
    let mine: Vec<_> = all.iter().filter(|p| p.check == "one-hot-role-per-cpu").collect();
    assert_eq!(mine.len(), 2, "{}", show(&all));
    assert_eq!(mine[0].line_col, Some((9, 7)));
    assert!(
        mine[0].message.contains("cpu 4 has two hot roles: rx ([[core]] at line 5) and normalize ([[core]] at line 9)"),
        "{}",
        mine[0]
    );
    assert_eq!(mine[1].line_col, Some((12, 12)));
    assert!(mine[1].message.contains("and dag-worker ([dag] at line 12)"), "{}", mine[1]);
    none(
        &format!("{RX4}{}[[core]]\ncpu = 5\nrole = \"normalize\"\n[dag]\nworkers = [6]\n", rx(4)),
        "one-hot-role-per-cpu",
    );
}

#[test]
fn hot_smt_siblings() {
    let t = format!("{RX4}{}[[core]]\ncpu = 20\nrole = \"normalize\"\n", rx(4));
    let p = one(
        &t,
        "hot-smt-siblings",
        (9, 7),
        &["cpu 4 and cpu 20 are SMT siblings; both host hot roles (rx, normalize)"],
    );
    assert_eq!(p.severity, Severity::Error);
    none(&format!("[runtime]\nallow_smt_siblings_hot = true\n{t}"), "hot-smt-siblings");
    none(&format!("{RX4}{}[[core]]\ncpu = 5\nrole = \"normalize\"\n", rx(4)), "hot-smt-siblings");
}

#[test]
fn isolation() {
    let t = format!("[runtime]\nisolation = \"require\"\n{RX4}{}", rx(0));
    let p = one(
        &t,
        "isolation",
        (7, 7),
        &[
            "cpu 0 (role=rx) is not in isolcpus/nohz_full (isolated: 4-7,12-15)",
            "kernel command line",
            "runtime.isolation = \"warn\"",
        ],
    );
    assert_eq!(p.severity, Severity::Error);
    let t = format!("{RX4}{}", rx(0));
    let p = one(&t, "isolation", (5, 7), &["not in isolcpus/nohz_full", "4-7"]);
    assert_eq!(p.severity, Severity::Warning);
    none(&format!("[runtime]\nisolation = \"ignore\"\n{RX4}{}", rx(0)), "isolation");
    none(&format!("[runtime]\nisolation = \"require\"\n{RX4}{}", rx(4)), "isolation");
}

#[test]
fn duplicate_name() {
    let t = format!("{RX4}{RX4}{}", rx(4));
    one(&t, "duplicate-name", (5, 8), &["nic feedA is declared twice (first at line 2)"]);
    none(&format!("{RX4}{}", rx(4)), "duplicate-name");
    let r = "[[ring]]\nname = \"mbo\"\ncapacity = \"64MiB\"\n";
    one(&format!("{r}{r}"), "duplicate-name", (5, 8), &["ring mbo is declared twice (first at line 2)"]);
    none(r, "duplicate-name");
}

#[test]
fn nic_source() {
    let t = "[[nic]]\nname = \"feedA\"\n";
    one(t, "nic-source", (2, 8), &["nic feedA has neither `pci` nor `source`"]);
    none("[[nic]]\nname = \"feedA\"\nsource = \"pcap:feed.pcap\"\n", "nic-source");
}

#[test]
fn nic_present() {
    let t = "[[nic]]\nname = \"feedA\"\npci = \"0000:3b:00.1\"\n";
    one(
        t,
        "nic-present",
        (3, 7),
        &[
            "nic feedA: no NIC at 0000:3b:00.1",
            "found: 0000:3b:00.0 ice ens1f0, 0000:af:00.0 vfio-pci",
            "dpdk-devbind.py --status",
        ],
    );
    // The short and the upper-case forms of a present address find the port.
    none("[[nic]]\nname = \"feedA\"\npci = \"3b:00.0\"\n", "nic-present");
    none("[[nic]]\nname = \"feedA\"\npci = \"0000:3B:00.0\"\n", "nic-present");
}

#[test]
fn nic_driver() {
    let t = "[[nic]]\nname = \"feedA\"\npci = \"0000:3b:00.0\"\ndriver = \"vfio-pci\"\n";
    let p = one(t, "nic-driver", (4, 10), &["nic feedA 0000:3b:00.0 is bound to ice, expected vfio-pci"]);
    assert_eq!(p.fix, "run dpdk-devbind.py -b vfio-pci 0000:3b:00.0");
    none("[[nic]]\nname = \"feedB\"\npci = \"0000:af:00.0\"\ndriver = \"vfio-pci\"\n", "nic-driver");
}

#[test]
fn numa_fit() {
    let t = format!("{RX4}{}", rx(12));
    let p = one(
        &t,
        "numa-fit",
        (5, 7),
        &[
            "cpu 12 (role=rx, nic=feedA) is on node 1 but feedA is on node 0; choose from cpus 0-7,16-23",
            "isolated and unused: 4-7",
        ],
    );
    assert_eq!(p.severity, Severity::Warning);
    none(&format!("{RX4}{}", rx(4)), "numa-fit");
    // A NIC without a known node is not judged.
    let mut m = machine();
    m.nics[0].numa_node = None;
    none_on(&m, &t, "numa-fit");
}

#[test]
fn rx_queues() {
    let nic = "[[nic]]\nname = \"feedA\"\npci = \"0000:3b:00.0\"\nrx_queues = 2\n";
    let t = format!("{nic}{}queues = [0, 3]\n", rx(4));
    one(&t, "rx-queues", (9, 10), &["queue 3 assigned but nic feedA has rx_queues=2"]);
    none(&format!("{nic}{}queues = [0, 1]\n", rx(4)), "rx-queues");

    let t = "[[nic]]\nname = \"feedA\"\npci = \"0000:3b:00.0\"\nrx_queues = 16\n";
    let p = one(
        t,
        "rx-queues",
        (4, 13),
        &["rx_queues = 16 exceeds the 8 rx queues the kernel netdev ens1f0 exposes", "ethtool -L ens1f0 combined 16"],
    );
    assert_eq!(p.severity, Severity::Warning);
    none("[[nic]]\nname = \"feedA\"\npci = \"0000:3b:00.0\"\nrx_queues = 8\n", "rx-queues");

    let t = format!("{RX4}[[core]]\ncpu = 4\nrole = \"rx\"\nnic = \"feedB\"\n");
    one(&t, "rx-queues", (7, 7), &["cpu 4 polls nic feedB, which no [[nic]] declares", "did you mean `feedA`?"]);

    let t = format!("{RX4}[[core]]\ncpu = 4\nrole = \"rx\"\n");
    one(&t, "rx-queues", (6, 8), &["cpu 4 (role=rx) has no `nic`", "declared: feedA"]);
    none(&format!("{RX4}{}", rx(4)), "rx-queues");

    let t = format!("{RX4}{}[[core]]\ncpu = 5\nrole = \"normalize\"\nqueues = [1]\n", rx(4));
    let p = one(&t, "rx-queues", (11, 10), &["only rx cores poll"]);
    assert_eq!(p.severity, Severity::Warning);
}

#[test]
fn queue_pollers() {
    let nic = "[[nic]]\nname = \"feedA\"\npci = \"0000:3b:00.0\"\nrx_queues = 2\n";
    let t = format!("{nic}{}queues = [0]\n", rx(4));
    one(&t, "queue-pollers", (4, 13), &["nic feedA queue 1 has no rx core"]);
    let t = format!("{nic}{}queues = [0, 1]\n{}queues = [0]\n", rx(4), rx(5));
    one(&t, "queue-pollers", (14, 10), &["nic feedA queue 0 polled by cpu 4 and 5"]);
    let t = format!("{nic}{}queues = [0, 0, 1]\n", rx(4));
    one(&t, "queue-pollers", (9, 10), &["cpu 4 lists nic feedA queue 0 twice"]);
    none(&format!("{nic}{}queues = [0]\n{}queues = [1]\n", rx(4), rx(5)), "queue-pollers");
    // The default is queue 0 of one queue.
    none(&format!("{RX4}{}", rx(4)), "queue-pollers");
}

#[test]
fn rx_hw_timestamp() {
    let t = format!("{RX4}rx_hw_timestamp = \"always\"\n{}", rx(4));
    let p = one(&t, "rx-hw-timestamp", (4, 19), &["`require`, `prefer` or `off`"]);
    assert_eq!(p.severity, Severity::Error);
    let t = format!("{RX4}rx_hw_timestamp = \"require\"\n{}", rx(4));
    let p = one(&t, "rx-hw-timestamp", (4, 19), &["checked at port start"]);
    assert_eq!(p.severity, Severity::Warning);
    none(&format!("{RX4}rx_hw_timestamp = \"prefer\"\n{}", rx(4)), "rx-hw-timestamp");
}

#[test]
fn hugepages() {
    let t = "[runtime]\nhugepages = { size = \"1G\", per_node = { 0 = 4, 1 = 4 } }\n";
    let p = one(
        t,
        "hugepages",
        (2, 39),
        &["need 4×1G hugepages on node 1, 2 free (4 total)", "dpdk-hugepages.py -p 1G -n 1 -r 6G"],
    );
    assert_eq!(p.severity, Severity::Error);
    let t = "[runtime]\nhugepages = { size = \"16M\", per_node = { 0 = 1 } }\n";
    one(t, "hugepages", (2, 22), &["no 16M hugepages (sizes: 1G)"]);
    let t = "[runtime]\nhugepages = { size = \"1G\", per_node = { 2 = 1 } }\n";
    one(t, "hugepages", (2, 39), &["node 2, which does not exist (nodes: 0-1)"]);
    none("[runtime]\nhugepages = { size = \"1G\", per_node = { 0 = 4, 1 = 2 } }\n", "hugepages");
}

const PUBLISH6: &str = "[[core]]\ncpu = 6\nrole = \"publish\"\n";

fn ring(extra: &str) -> String {
    format!("{PUBLISH6}[[ring]]\nname = \"mbo\"\nproducer = 6\n{extra}")
}

#[test]
fn ring_placement() {
    let t = ring("capacity = \"300MiB\"\n");
    one(
        &t,
        "ring-placement",
        (7, 12),
        &["capacity 300MiB (314572800 bytes) is not a power of two", "256MiB or 512MiB"],
    );
    let t = ring("capacity = 1024\n");
    one(&t, "ring-placement", (7, 12), &["below 4KiB"]);
    let t = ring("capacity = \"64 parsecs\"\n");
    one(&t, "ring-placement", (7, 12), &["is not a size"]);
    for ok in ["\"64MiB\"", "\"1G\"", "\"256M\"", "4096"] {
        none(&ring(&format!("capacity = {ok}\nnuma_node = 0\nfile = \"/dev/shm/mbo\"\n")), "ring-placement");
    }

    let t = format!("{PUBLISH6}[[ring]]\nname = \"mbo\"\ncapacity = \"64MiB\"\nproducer = 9\n");
    one(&t, "ring-placement", (7, 12), &["producer cpu 9 runs no rx, normalize or publish core"]);
    let t = format!("{PUBLISH6}[[ring]]\nname = \"mbo\"\ncapacity = \"64MiB\"\nproducer = 64\n");
    one(&t, "ring-placement", (7, 12), &["producer cpu 64 does not exist"]);

    let t = ring("capacity = \"64MiB\"\nnuma_node = 1\n");
    let p = one(&t, "ring-placement", (8, 13), &["numa_node 1 but its producer cpu 6 is on node 0"]);
    assert_eq!(p.severity, Severity::Warning);
    let t = ring("capacity = \"64MiB\"\nnuma_node = 3\n");
    one(&t, "ring-placement", (8, 13), &["numa_node 3 does not exist"]);

    let t = ring("capacity = \"64MiB\"\nfile = \"/var/lib/weir/mbo\"\n");
    let p = one(&t, "ring-placement", (8, 8), &["file /var/lib/weir/mbo is not under /dev/shm", "hugetlbfs"]);
    assert_eq!(p.severity, Severity::Warning);
}

#[test]
fn irq_on_hot_cpu() {
    let nic = "[[nic]]\nname = \"feedB\"\npci = \"0000:af:00.0\"\n";
    let t = format!("{nic}[[core]]\ncpu = 12\nrole = \"rx\"\nnic = \"feedB\"\n");
    let p = one(
        &t,
        "irq-on-hot-cpu",
        (5, 7),
        &["IRQ 142 (mlx5_comp3@pci:0000:af:00.1) may run on cpu 12", "/proc/irq/142/smp_affinity_list", "irqbalance"],
    );
    assert_eq!(p.severity, Severity::Warning);
    none(&format!("{nic}[[core]]\ncpu = 13\nrole = \"rx\"\nnic = \"feedB\"\n"), "irq-on-hot-cpu");

    // Many IRQs on one hot CPU: one problem listing them.
    let mut m = machine();
    for n in 30..36 {
        m.irqs.push(IrqInfo {
            number: n,
            name: format!("ice-ens1f0-TxRx-{n}"),
            affinity: set("0-30"),
            effective: None,
        });
    }
    let t = format!("{RX4}{}", rx(4));
    let all = check_on(&t, &m);
    let irq: Vec<String> = all.iter().filter(|p| p.check == "irq-on-hot-cpu").map(|p| p.message.clone()).collect();
    // 0-30 also covers cpu 20, cpu 4's idle sibling: the same core is interrupted there.
    assert_eq!(
        irq,
        [
            "6 IRQs may run on cpu 4 (role=rx): 30-35",
            "6 IRQs may run on cpu 20, the idle SMT sibling of cpu 4 (role=rx): 30-35"
        ],
        "{}",
        show(&all)
    );

    // An IRQ only on the idle sibling is found even where the sibling is isolated (isolcpus does not move
    // IRQs), and is silent once the layout gives that sibling to housekeeping.
    let mut m = tuned();
    m.irqs.push(IrqInfo { number: 144, name: "nvme0q3".into(), affinity: set("20"), effective: None });
    let p = one_on(
        &m,
        &t,
        "irq-on-hot-cpu",
        (5, 7),
        &["IRQ 144 (nvme0q3) may run on cpu 20, the idle SMT sibling of cpu 4 (role=rx)"],
    );
    assert!(p.fix.contains("echo 0-3,8-11,16-19,24-27 > /proc/irq/144/smp_affinity_list"), "{p}");
    none_on(&m, &format!("[runtime]\nname = \"t\"\nhousekeeping = \"0,20\"\n{t}"), "irq-on-hot-cpu");
}

#[test]
fn clock() {
    let mut m = tuned();
    m.clock.clocksource = "hpet".into();
    m.clock.nonstop_tsc = false;
    let all = check_on(GOOD, &m);
    assert_eq!(all.len(), 1, "{}", show(&all));
    let p = &all[0];
    assert_eq!((p.check, p.severity, p.line_col), ("clock", Severity::Warning, None));
    assert!(p.message.contains("no nonstop_tsc") && p.message.contains("clocksource is hpet"), "{p}");
    assert!(p.to_string().starts_with("layout.toml: warning[clock]: "), "{p}");
    none(GOOD, "clock");
}

#[test]
fn telemetry_off_hot() {
    let t = format!("{RX4}{}[telemetry]\ncpu = 4\n", rx(4));
    let p = one(&t, "telemetry-off-hot", (9, 7), &["telemetry.cpu 4 is also role rx"]);
    assert_eq!(p.severity, Severity::Error);
    let t = format!("{RX4}{}[telemetry]\ncpu = 5\n", rx(4));
    let p = one(&t, "telemetry-off-hot", (9, 7), &["telemetry.cpu 5 is not a housekeeping CPU"]);
    assert_eq!(p.severity, Severity::Warning);
    none(&format!("[runtime]\nhousekeeping = \"0-3\"\n{RX4}{}[telemetry]\ncpu = 1\n", rx(4)), "telemetry-off-hot");
}

#[test]
fn housekeeping() {
    let body = format!("{RX4}{}", rx(4));
    let t = format!("[runtime]\nhousekeeping = \"0-4\"\n{body}");
    one(&t, "housekeeping", (2, 16), &["runtime.housekeeping 0-4 includes hot CPUs 4"]);
    let t = format!("[runtime]\nhousekeeping = \"0-1,31\"\n{body}");
    one(&t, "housekeeping", (2, 16), &["not online: 31"]);
    let t = format!("[runtime]\nhousekeeping = \"0-1,x\"\n{body}");
    one(&t, "housekeeping", (2, 21), &["is not a CPU list"]);
    let t = format!("[runtime]\nhousekeeping = \"\"\n{body}");
    one(&t, "housekeeping", (2, 16), &["leaves no online CPU without a hot role"]);
    none(&format!("[runtime]\nhousekeeping = \"0-3\"\n{body}"), "housekeeping");
    let t = format!("[runtime]\nhousekeeping = \"0-3,12\"\n{body}");
    let p = one(&t, "housekeeping", (2, 16), &["includes isolated CPUs 12"]);
    assert_eq!(p.severity, Severity::Warning);

    // Without runtime.housekeeping: every online CPU hot leaves none.
    let mut m = machine();
    m.online = set("4-5");
    m.allowed = set("4-5");
    let t = "[dag]\nworkers = [4, 5]\n";
    one_on(&m, t, "housekeeping", pos(t, "workers", "5"), &["every online CPU (4-5) has a hot role"]);
    none_on(&m, "[dag]\nworkers = [4]\n", "housekeeping");
}

#[test]
fn dag_workers() {
    let t = "[dag]\nworkers = [12, 13, 12]\n";
    one(t, "dag-workers", (2, 20), &["dag lists cpu 12 twice (first at line 2)"]);
    none("[dag]\nworkers = [12, 13]\n", "dag-workers");
    none(t, "one-hot-role-per-cpu");
}

#[test]
fn dag_partitions() {
    let t = "[dag]\npartitions = { node0 = [4, 5], node1 = [12, 6] }\n";
    one(
        t,
        "dag-partitions",
        pos(t, "node1", "6"),
        &["dag.partitions.node1 lists cpu 6, which is on node 0", "partition node0"],
    );
    let t = "[dag]\npartitions = { socket0 = [4] }\n";
    one(t, "dag-partitions", (2, 14), &["key `socket0` is not a node of this machine (nodes: 0-1)"]);
    none("[dag]\npartitions = { node0 = [4, 5], node1 = [12, 13] }\n", "dag-partitions");
    // Partitions are DAG workers too.
    assert_eq!(parse("[dag]\nworkers = [7]\npartitions = { node1 = [12] }\n").hot_cpus().to_string(), "7,12");
}

/// ECOSYSTEM.md 5.1's sketch, verbatim: it parses, and on this machine the checks say what is off.
const SKETCH: &str = r#"[runtime]
name          = "iex-fh-a"
isolation     = "require"          # require | warn | ignore
allow_smt_siblings_hot = false
hugepages     = { size = "1G", per_node = { 0 = 4 } }

[[nic]]
name      = "feedA"
pci       = "0000:3b:00.0"
driver    = "vfio-pci"             # the binding we expect to find
rx_queues = 2
rx_desc   = 4096
rx_hw_timestamp = "require"        # require | prefer | off

[[core]]                           # one table per pinned thread
cpu  = 4
role = "rx"                        # rx | normalize | publish | dag-worker | telemetry
nic  = "feedA"
queues = [0, 1]

[[core]]
cpu  = 6
role = "normalize"

[[ring]]
name      = "iex.deepplus.mbo"
file      = "/dev/hugepages/iex.deepplus.mbo"   # on a hugetlbfs mount
capacity  = "256MiB"               # power of two
numa_node = 0
producer  = 6                      # cpu of the writing thread
heartbeat = "1ms"

[dag]
partitions = { node0 = [8, 10, 12], node1 = [20, 22] }

[telemetry]
cpu               = 1              # must be a housekeeping CPU
prometheus_listen = "127.0.0.1:9464"
histogram_interval = "1s"
"#;

#[test]
fn the_ecosystem_sketch_parses_and_is_checked() {
    let all = check_on(SKETCH, &machine());
    let count = |name: &str| all.iter().filter(|p| p.check == name).count();
    let driver = all.iter().find(|p| p.check == "nic-driver").expect("nic-driver");
    assert_eq!(driver.line_col, Some(pos(SKETCH, "driver", "\"vfio-pci\"")));
    // node0 = [8, 10, 12] sits on node 1 and node1 = [20, 22] on node 0 here; 20 and 22 are siblings of 4 and 6.
    assert_eq!(count("dag-partitions"), 5, "{}", show(&all));
    assert_eq!(count("hot-smt-siblings"), 2, "{}", show(&all));
    assert_eq!(count("unknown-key") + count("queue-pollers") + count("ring-placement"), 0, "{}", show(&all));
}

#[test]
fn single_bracket_array_tables_are_explained() {
    let p = parse_err("[nic]\nname = \"feedA\"\n");
    assert_eq!((p[0].check, p[0].line_col), ("wrong-type", Some((1, 1))), "{}", show(&p));
    assert!(p[0].message.contains("written [[nic]], not [nic]"), "{}", p[0]);
}

/// Inputs a review found crashing, hanging or misjudged: each now gives its one problem (or none).
#[test]
fn review_regressions() {
    // rx_queues = 0 with a queue listed: the rx-queues error, no underflow in the fix.
    let t = "[[nic]]\nname = \"feedA\"\npci = \"0000:3b:00.0\"\nrx_queues = 0\n[[core]]\ncpu = 4\nrole = \"rx\"\nnic = \"feedA\"\nqueues = [0]\n";
    one(t, "rx-queues", (4, 13), &["rx_queues = 0"]);
    // A huge rx_queues is refused at once instead of walking four billion queues.
    let t = "[[nic]]\nname = \"feedB\"\npci = \"0000:af:00.0\"\nrx_queues = 4000000000\n";
    one(t, "rx-queues", (4, 13), &["above DPDK's 1024"]);
    // A tree claiming more free hugepages than total: a shortfall, no underflow.
    let mut m = machine();
    m.nodes[0].hugepages = vec![weir_hw::machine::HugePages { size_kib: 1 << 20, total: 0, free: 2 }];
    one_on(
        &m,
        "[runtime]\nhugepages = { size = \"1G\", per_node = { 0 = 3 } }\n",
        "hugepages",
        (2, 39),
        &["need 3×1G", "2 free"],
    );
    // The kernel's own page-size spelling is accepted by the check and by the EAL generator alike.
    let t = "[runtime]\nhousekeeping = \"0-3\"\nhugepages = { size = \"1048576kB\", per_node = { 0 = 2 } }\n[[nic]]\nname = \"feedA\"\npci = \"0000:3b:00.0\"\n[[core]]\ncpu = 4\nrole = \"rx\"\nnic = \"feedA\"\n";
    none(t, "hugepages");
    let eal = weir_hw::generate::generate(weir_hw::generate::Target::Eal, &parse(t), &machine()).unwrap();
    assert!(eal.contains("--socket-mem 2048,0"), "{eal}");
    // Short and upper-case PCI addresses name the same port.
    for pci in ["af:00.0", "0000:AF:00.0"] {
        let t = format!("[[nic]]\nname = \"feedB\"\npci = \"{pci}\"\ndriver = \"ice\"\n");
        none(&t, "nic-present");
        one(&t, "nic-driver", (4, 10), &["bound to vfio-pci, expected ice"]);
    }
    // A netdev name is not a PCI address (EAL's -a would refuse it): the fix gives the address.
    let t = "[[nic]]\nname = \"feedA\"\npci = \"ens1f0\"\n";
    one(t, "nic-present", (3, 7), &["not a PCI address", "use pci = \"0000:3b:00.0\" (ens1f0's address)"]);
}
