//! `weir hw show | check | gen | propose | snapshot`, and `weir run` / `weir dag run` starting from a layout, as
//! a hardware team runs them: on the fixture machines (`--root`) and on this one.

use std::path::Path;
use std::process::{Command, Output};

mod common;

fn weir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir")).args(args).output().unwrap()
}

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel).display().to_string()
}

fn two_socket() -> String {
    repo("hw/tests/fixtures/two-socket")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exit code, stdout, stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = weir(args);
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[test]
fn show_on_this_machine_and_on_a_fixture_with_roles() {
    let (code, out, err) = run(&["hw", "show"]);
    assert_eq!(code, 0, "{err}");
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    assert!(out.starts_with("Machine ("), "{out}");
    assert!(out.contains(&format!("Online: {}", online.trim())), "{out}");
    assert!(out.contains("PU P#0"), "{out}");

    let layout = repo("examples/layouts/two-socket.toml");
    let (code, out, err) = run(&["hw", "show", "--root", &two_socket(), "--layout", &layout]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("PU P#12 (isolated, nohz_full)  <- rx feedA q0"), "{out}");
    let (code, json, err) = run(&["hw", "show", "--root", &two_socket(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["isolated"], "4-7,12-15");
    assert_eq!(json["nics"][1]["driver"], "vfio-pci");

    let (code, _, err) = run(&["hw", "show", "--root", "/nonexistent-root"]);
    assert_eq!(code, 2);
    assert!(err.contains("--root"), "{err}");
}

#[test]
fn check_accepts_the_examples_and_lists_every_problem_with_its_position() {
    let (code, out, err) = run(&["hw", "check", &repo("examples/layouts/two-socket.toml"), "--root", &two_socket()]);
    assert_eq!(code, 0, "{out}{err}");
    // The fixture's real mistakes: an mlx5 IRQ on the rx CPU, and isolcpus leaving out the hot CPUs' SMT
    // siblings. Warnings: exit 0 unless --deny-warnings.
    assert!(err.contains("warning[irq-on-hot-cpu]: IRQ 154"), "{err}");
    assert!(err.contains("24:7: warning[sibling-quiet]: cpu 12 (role=rx) shares its core with cpu 28"), "{err}");
    assert!(err.contains("0 error(s), 8 warning(s)"), "{err}");
    let (code, _, _) =
        run(&["hw", "check", &repo("examples/layouts/two-socket.toml"), "--root", &two_socket(), "--deny-warnings"]);
    assert_eq!(code, 1);
    let (code, out, err) =
        run(&["hw", "check", &repo("examples/layouts/vm-2cpu.toml"), "--root", &repo("hw/tests/fixtures/vm-2cpu")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("0 error(s)"), "{err}");

    let dir = common::scratch("hw-check");
    let bad = write(
        &dir,
        "bad.toml",
        "[runtime]\nisolation = \"require\"\n\n[[nic]]\nname = \"feedA\"\npci = \"0000:3b:00.0\"\nrx_queus = 2\n\n\
         [[core]]\ncpu = 47\nrole = \"rx\"\nnic = \"feedA\"\n",
    );
    let (code, _, err) = run(&["hw", "check", &bad, "--root", &two_socket()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("bad.toml:7:1: error[unknown-key]") && err.contains("rx_queues"), "{err}");
    // An unknown key stops the semantic checks (the file is not what its author meant); fixed, they run.
    let fixed = write(
        &dir,
        "fixed.toml",
        "[runtime]\nisolation = \"require\"\n\n[[nic]]\nname = \"feedA\"\npci = \"0000:3b:00.0\"\nrx_queues = 1\n\n\
         [[core]]\ncpu = 47\nrole = \"rx\"\nnic = \"feedA\"\n",
    );
    let (code, _, err) = run(&["hw", "check", &fixed, "--root", &two_socket()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("fixed.toml:10:7: error[cpu-exists]: cpu 47 does not exist"), "{err}");
    let (code, _, err) = run(&["hw", "check", &dir.join("missing.toml").display().to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn gen_writes_every_target_and_refuses_a_layout_with_errors() {
    let layout = repo("examples/layouts/two-socket.toml");
    for (target, expect) in [
        ("eal", "-a 0000:af:00.0"),
        ("systemd", "CPUAffinity="),
        ("kernel-cmdline", "isolcpus=managed_irq,domain,4-7,12-15,20-23,28-30 nohz_full=4-7,12-15,20-23,28-30"),
        ("irq", "echo 0-3,8-11 > \"$proc/irq/154/smp_affinity_list\""),
    ] {
        let (code, out, err) = run(&["hw", "gen", &layout, "--root", &two_socket(), "--target", target]);
        assert_eq!(code, 0, "{target}: {err}");
        assert!(out.contains(expect), "{target}: {out}");
        assert!(out.contains("Generated by `weir hw gen"), "{target}: {out}");
    }
    let (code, _, err) = run(&["hw", "gen", &layout, "--root", &two_socket(), "--target", "grub"]);
    assert_eq!(code, 2);
    assert!(err.contains("kernel-cmdline"), "{err}");
    // On this VM fixture the two-socket layout names CPUs that do not exist.
    let vm = repo("hw/tests/fixtures/vm-2cpu");
    let (code, out, err) = run(&["hw", "gen", &layout, "--root", &vm, "--target", "eal"]);
    assert_eq!(code, 1);
    assert!(out.is_empty() && err.contains("error[cpu-exists]") && err.contains("--force"), "{err}");
}

#[test]
fn propose_gives_a_layout_that_check_accepts() {
    let dir = common::scratch("hw-propose");
    let out_path = dir.join("proposed.toml").display().to_string();
    let (code, _, err) = run(&[
        "hw",
        "propose",
        "--root",
        &two_socket(),
        "--nics",
        "0000:3b:00.0,0000:af:00.0",
        "--dag-workers",
        "4",
        "-o",
        &out_path,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["hw", "check", &out_path, "--root", &two_socket()]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = run(&["hw", "propose", "--root", &two_socket(), "--nics", "eth7"]);
    assert_eq!(code, 2);
    assert!(err.contains("eth7"), "{err}");
}

#[test]
fn a_snapshot_reads_back_as_this_machine() {
    let dir = common::scratch("hw-snapshot").join("machine");
    let (code, _, err) = run(&["hw", "snapshot", &dir.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let (_, live, _) = run(&["hw", "show", "--json"]);
    let (code, copy, err) = run(&["hw", "show", "--json", "--root", &dir.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let mut live: serde_json::Value = serde_json::from_str(&live).unwrap();
    let mut copy: serde_json::Value = serde_json::from_str(&copy).unwrap();
    live["root"] = serde_json::Value::Null;
    copy["root"] = serde_json::Value::Null;
    // IRQ affinities and counts can move between the two reads; everything else is identical.
    live["irqs"] = serde_json::Value::Null;
    copy["irqs"] = serde_json::Value::Null;
    assert_eq!(live, copy);
}

fn allowed() -> Vec<u32> {
    weir_hw::pin::current_thread_affinity().unwrap()
}

#[test]
fn run_starts_from_the_layout_and_refuses_one_with_errors() {
    let dir = common::scratch("hw-run");
    let cpus = allowed();
    let (house, rx) = (cpus[0], *cpus.last().unwrap());
    assert_ne!(house, rx, "this test needs two CPUs");
    let capture = repo("tests/data/iex/Sai271828-iex-parser/test.pcap.gz");
    let layout = write(
        &dir,
        "run.toml",
        &format!(
            "[runtime]\nisolation = \"warn\"\nhousekeeping = \"{house}\"\n[[nic]]\nname = \"iex\"\nsource = \"pcap:{capture}\"\n\
             [[core]]\ncpu = {rx}\nrole = \"rx\"\nnic = \"iex\"\n[[ring]]\nname = \"layout-ring\"\ncapacity = \"1MiB\"\n\
             producer = {rx}\n"
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "--layout", &layout, "--progress-every", "0"])
        .env("WEIR_BUS_DIR", &dir)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("on cpu {rx}")), "{stderr}");
    assert!(stdout.contains("packets 5000") && stdout.contains("layout-ring"), "{stdout}");
    // The poll loop's thread was watched for the run: pinned to the layout's CPU, and ran there.
    assert!(stdout.contains(&format!("on cpu {rx} (allowed {rx}, last ran on {rx})")), "{stdout}");
    // The ring's capacity came from the layout: 1 MiB of data after the 4 KiB header.
    let len = std::fs::metadata(dir.join("layout-ring")).unwrap().len();
    assert!((1 << 20..2 << 20).contains(&len), "{len}");

    let broken = write(
        &dir,
        "broken.toml",
        &std::fs::read_to_string(&layout).unwrap().replace(&format!("cpu = {rx}"), "cpu = 4000"),
    );
    let (code, _, err) = run(&["run", "--layout", &broken]);
    assert_eq!(code, 2);
    assert!(err.contains("nothing started") && err.contains("error[cpu-exists]: cpu 4000"), "{err}");
    let (code, _, err) = run(&["run", "--layout", &layout, "--nic", &format!("pcap:{capture}")]);
    assert_eq!(code, 2);
    assert!(err.contains("one or the other"), "{err}");
}

#[test]
fn dag_run_takes_its_workers_from_the_layout() {
    let dir = common::scratch("hw-dag");
    let cpus = allowed();
    let worker = *cpus.last().unwrap();
    let layout = write(
        &dir,
        "dag.toml",
        &format!("[runtime]\nisolation = \"ignore\"\nhousekeeping = \"{}\"\n[dag]\nworkers = [{worker}]\n", cpus[0]),
    );
    let graph = dir.join("g.txt").display().to_string();
    assert_eq!(run(&["dag", "gen", "chain", "50", "-o", &graph]).0, 0);
    let (code, out, err) = run(&["dag", "run", "--graph", &graph, "--layout", &layout, "--repeat", "1", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["workers"], 1, "{out}");
    let broken = write(&dir, "broken.toml", "[dag]\nworkers = [4000]\n");
    let (code, _, err) = run(&["dag", "run", "--graph", &graph, "--layout", &broken]);
    assert_eq!(code, 2);
    assert!(err.contains("cpu 4000"), "{err}");
}
