//! `weir run` as a user runs it: the same DBN bytes and counters as `weir replay` for a capture,
//! A/B lines, per-queue NIC stats, `--idle-exit`, and clear errors for bad `--nic` values.

use std::process::Command;
use std::time::{Duration, Instant};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iex");

fn weir(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weir")).args(args).output().unwrap()
}

fn path(rel: &str) -> String {
    format!("{DATA}/{rel}")
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-cli-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn run_over_pcap_writes_the_same_dbn_and_counters_as_replay() {
    let dir = scratch("same");
    for (i, rel) in ["Sai271828-iex-parser/test.pcap.gz", "timpalpant-go-iex/TOPS16.pcapng.gz"].iter().enumerate() {
        let (a, b) = (dir.join(format!("run{i}.dbn.zst")), dir.join(format!("replay{i}.dbn.zst")));
        let nic = format!("pcap:{}", path(rel));
        let run = json(&weir(&["run", "--nic", &nic, "--out", a.to_str().unwrap(), "--stats-json", "-", "-q"]));
        let replay = json(&weir(&["replay", &path(rel), "--out", b.to_str().unwrap(), "--stats-json", "-", "-q"]));
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "{rel}: DBN files differ");
        // Every key of replay's report is in run's, with the same value (timings aside).
        for (k, v) in replay.as_object().unwrap() {
            if ["elapsed_s", "messages_per_s", "mb_per_s", "capture_bytes", "gzip_backend"].contains(&k.as_str()) {
                continue;
            }
            assert_eq!(run.get(k), Some(v), "{rel}: key {k}");
        }
        let nic = &run["nic"][0];
        assert_eq!(nic["packets"], replay["packets"]);
        assert_eq!(nic["missed"], 0);
        assert!(nic["name"].as_str().unwrap().starts_with("pcap:"));
        assert!(run["records"].as_u64().unwrap() > 0);
    }
}

#[test]
fn a_b_lines_of_the_same_capture_deliver_each_message_once() {
    let nic = format!("pcap:{}", path("Sai271828-iex-parser/test.pcap.gz"));
    let v = json(&weir(&["run", "--nic", &nic, "--b-nic", &nic, "--stats-json", "-", "-q"]));
    assert_eq!(v["messages"], 48325);
    assert_eq!(v["packets"], 10000);
    assert_eq!(v["duplicates"]["messages"], 0, "the B copies are arbitration drops, not duplicates");
    let a = &v["arbitration"];
    let data_segments = (v["segments"].as_u64().unwrap() - v["heartbeats"].as_u64().unwrap()) / 2;
    assert_eq!(a["taken_a"].as_u64().unwrap() + a["taken_b"].as_u64().unwrap(), data_segments);
    // Every data segment's second copy is dropped (and some heartbeats the sequencer saw twice).
    assert!(a["dropped"].as_u64().unwrap() >= data_segments);
    assert_eq!(v["duplicates"]["segments"], 0);
    assert_eq!(v["nic"].as_array().unwrap().len(), 2);
}

#[test]
fn paced_run_on_a_pinned_cpu() {
    // 13,022 packets over 376 s of market time, at 2000x: about 0.19 s.
    let nic = format!("pcap:{},pace=x2000", path("timpalpant-go-iex/TOPS16.pcapng.gz"));
    let start = Instant::now();
    let v = json(&weir(&["run", "--nic", &nic, "--cpu", "0", "--stats-json", "-", "-q"]));
    assert!(start.elapsed() >= Duration::from_millis(180), "{:?}", start.elapsed());
    assert_eq!(v["messages"], 57674);
}

#[test]
fn idle_exit_ends_a_quiet_live_queue() {
    // A multicast group nobody sends to: the run ends after --idle-exit.
    let start = Instant::now();
    let out =
        weir(&["run", "--nic", "udp:239.255.91.17:41999,iface=lo", "--idle-exit", "300", "--stats-json", "-", "-q"]);
    let took = start.elapsed();
    let v = json(&out);
    assert_eq!(v["packets"], 0);
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(10), "{took:?}");
    assert_eq!(v["nic"][0]["name"], "udp:239.255.91.17:41999,iface=lo");
}

#[test]
fn bad_nic_values_exit_2_with_what_is_wrong() {
    for (spec, says) in [
        ("pcap:/nonexistent/x.pcap", "/nonexistent/x.pcap"),
        ("pcap:x,pace=fast", "pace=fast"),
        ("tcp:1.2.3.4:5", "unknown backend"),
        ("udp:10.0.0.1:5", "not a multicast address"),
        ("udp:239.1.1.1:5,iface=nosuchif9", "interface nosuchif9"),
    ] {
        let out = weir(&["run", "--nic", spec]);
        assert_eq!(out.status.code(), Some(2), "{spec}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{spec}: {err}");
    }
    let out = weir(&["run", "--nic", &format!("pcap:{}", path("Sai271828-iex-parser/test.pcap.gz")), "--cpu", "4096"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cpu 4096"));
}

#[cfg(not(feature = "dpdk"))]
#[test]
fn dpdk_without_the_feature_says_how_to_get_it() {
    let out = weir(&["run", "--nic", "dpdk:net_null0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features dpdk") && err.contains("libdpdk-dev"), "{err}");
}

#[test]
fn sigterm_ends_a_live_run_cleanly() {
    // No --idle-exit: only a signal ends this run; it must still write the DBN header and stats.
    let dir = scratch("sigterm");
    let out = dir.join("live.dbn");
    let child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "--nic", "udp:239.255.91.19:41997,iface=lo", "--stats-json", "-", "-q", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let start = Instant::now();
    let result = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?} to stop", start.elapsed());
    let v = json(&result);
    assert_eq!(v["packets"], 0);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..3], b"DBN", "a finished DBN file, header first");
    assert!(!dir.join("live.dbn.partial").exists());
}
