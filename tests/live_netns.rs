//! The live path end to end, on a veth pair between two network namespaces: `weir send` replays a
//! real capture as multicast UDP out of one end, `weir run` receives it on the other (through a
//! kernel socket; with `--features dpdk`, also through DPDK's `net_af_packet`), and every message
//! of the capture must arrive: the same counts as `weir replay` of the file, no gap, no drop.
//!
//! ```text
//!   netns weir-<pid>-<t>a                      netns weir-<pid>-<t>b
//!   weir send --iface wv<n><t>a  ── veth ──▶  wv<n><t>b  weir run --nic udp:GROUP:PORT,iface=...
//!   10.77.<s>.1/24                              10.77.<s>.2/24
//! ```
//!
//! Two namespaces, so the receiver's kernel does not drop the datagrams as coming from one of its
//! own addresses. IPv6 is off in both (no ND/MLD frames on the wire). The namespaces go away when a
//! test ends, panic or not (a drop guard).
//!
//! Needs root and iproute2's `ip`, so the tests are `#[ignore]`d in a plain `cargo test` (a
//! newcomer's machine); CI runs them as root with `--include-ignored`, where a missing `ip` or
//! privilege fails them with a message saying so.
//! Run: `sudo cargo test --test live_netns -- --include-ignored`; the DPDK one adds `--features dpdk`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use weir::capture::CaptureReader;
use weir_feeds::frame::peel_udp;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");
/// IEX DEEP, 5000 datagrams, 48325 messages, all to one group.
const DEEP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iex/Sai271828-iex-parser/test.pcap.gz");
/// IEX TOPS 1.6, 13022 datagrams to another group: traffic the DPDK receiver must filter out.
#[cfg(feature = "dpdk")]
const TOPS16: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iex/timpalpant-go-iex/TOPS16.pcapng.gz");
/// The receiver ends this long after the last frame.
const IDLE_EXIT_MS: &str = "1500";
/// Pause between datagrams: keeps the receiving socket buffer from overflowing when the machine
/// is busy (a whole capture at once would not fit).
const GAP_US: &str = "20";
/// Largest UDP payload that fits a 1500-byte MTU unfragmented.
const MAX_PAYLOAD: usize = 1500 - 20 - 8;

/// Both tests busy-poll a core each: on a 2-core machine, running them at once would starve the
/// senders and the kernel. One live test at a time in this process.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LIVE: Mutex<()> = Mutex::new(());
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Fails (never skips) when the machine cannot run these tests.
fn require_root_and_ip() {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_owned();
    assert_eq!(
        euid, "0",
        "live_netns needs root (it creates network namespaces and a veth pair); effective uid is {euid}. \
         Run as root (CI does), e.g. `sudo -E cargo test --test live_netns`"
    );
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("live_netns needs iproute2's `ip`: `ip -V` failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("live_netns needs iproute2's `ip` on PATH (apt-get install iproute2): {e}"),
    }
}

/// Runs a command to completion; panics with its stderr unless it succeeds. Returns stdout.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("`{program} {}`: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) -> String {
    run("ip", args)
}

/// Two namespaces joined by a veth pair, deleted on drop (which also deletes the pair).
#[derive(Debug)]
struct Netns {
    /// Sender side.
    ns_a: String,
    va: String,
    /// Receiver side.
    ns_b: String,
    vb: String,
}

impl Netns {
    /// A fresh pair for this process and this test (`tag`), on 10.77.`subnet`.0/24.
    fn new(tag: char, subnet: u8) -> Netns {
        let pid = std::process::id();
        // Interface names stay well under IFNAMSIZ (15): `wv` + 4 digits + tag + side.
        let n = Netns {
            ns_a: format!("weir-{pid}-{tag}a"),
            va: format!("wv{}{tag}a", pid % 10_000),
            ns_b: format!("weir-{pid}-{tag}b"),
            vb: format!("wv{}{tag}b", pid % 10_000),
        };
        // Left over by an earlier process that had the same pid and was killed: not ours to keep.
        n.delete();
        for ns in [&n.ns_a, &n.ns_b] {
            ip(&["netns", "add", ns]);
            // Before any link exists, so the veth ends never get IPv6 (no ND/MLD frames). A kernel
            // without IPv6 has no such keys: nothing to disable then.
            for key in ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"] {
                let _ = Command::new("ip").args(["netns", "exec", ns, "sysctl", "-qw", key]).output();
            }
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&["-n", &n.ns_a, "link", "add", &n.va, "type", "veth", "peer", "name", &n.vb, "netns", &n.ns_b]);
        ip(&["-n", &n.ns_a, "addr", "add", &format!("10.77.{subnet}.1/24"), "dev", &n.va]);
        ip(&["-n", &n.ns_b, "addr", "add", &format!("10.77.{subnet}.2/24"), "dev", &n.vb]);
        ip(&["-n", &n.ns_a, "link", "set", &n.va, "up"]);
        ip(&["-n", &n.ns_b, "link", "set", &n.vb, "up"]);
        // Egress for every group (weir send also names the interface: IP_MULTICAST_IF).
        ip(&["-n", &n.ns_a, "route", "add", "224.0.0.0/4", "dev", &n.va]);
        let deadline = Instant::now() + Duration::from_secs(10);
        for (ns, dev) in [(&n.ns_a, &n.va), (&n.ns_b, &n.vb)] {
            loop {
                let link = ip(&["-n", ns, "-o", "link", "show", "dev", dev]);
                if link.contains("LOWER_UP") && link.contains("state UP") {
                    break;
                }
                assert!(Instant::now() < deadline, "{dev} in {ns} did not come up: {link}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        n
    }

    fn delete(&self) {
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).output();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.delete();
    }
}

/// What the test needs to know about a capture.
#[derive(Debug)]
struct Capture {
    path: &'static str,
    /// Its frames, all IPv4/UDP.
    packets: u64,
    /// The one group and port they all go to.
    group: Ipv4Addr,
    port: u16,
    /// `weir replay --stats-json -` of it: the reference counts.
    reference: Value,
}

fn capture(path: &'static str) -> Capture {
    let mut reader = CaptureReader::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut dests = BTreeSet::new();
    let mut packets = 0u64;
    while let Some(p) = reader.next_packet().unwrap_or_else(|e| panic!("{path}: {e}")) {
        let udp = peel_udp(p.link, p.data).unwrap_or_else(|e| panic!("{path} frame {packets}: {e}"));
        assert!(
            udp.payload.len() <= MAX_PAYLOAD,
            "{path} frame {packets}: a {}-byte datagram would be fragmented on the veth",
            udp.payload.len()
        );
        dests.insert((Ipv4Addr::from(udp.dst_ip), udp.dst_port));
        packets += 1;
    }
    assert_eq!(dests.len(), 1, "{path}: expected one destination group:port, found {dests:?}");
    let (group, port) = dests.pop_first().unwrap();
    assert!(group.is_multicast(), "{path}: {group} is not a multicast group");
    let reference = stats_json(&run(WEIR, &["replay", path, "--stats-json", "-"]));
    assert_eq!(reference["packets"], packets, "{path}: weir replay and the capture reader disagree");
    Capture { path, packets, group, port, reference }
}

/// The JSON object `--stats-json -` printed on stdout.
fn stats_json(stdout: &str) -> Value {
    let start = if stdout.starts_with('{') { Some(0) } else { stdout.find("\n{").map(|i| i + 1) };
    let Some(start) = start else { panic!("no JSON object on stdout: {stdout:?}") };
    if start > 0 {
        eprintln!("note: stdout held more than the stats JSON; before it: {:?}", &stdout[..start]);
    }
    serde_json::from_str(&stdout[start..]).unwrap_or_else(|e| panic!("stats JSON: {e}: {stdout}"))
}

/// A `weir run` inside the receiver namespace, its output collected as it comes.
#[derive(Debug)]
struct Receiver {
    child: Child,
    stderr_lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
    stdout_reader: Option<JoinHandle<String>>,
}

impl Receiver {
    fn start(ns: &str, nic: &str) -> Receiver {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, WEIR, "run", "--nic", nic, "--idle-exit", IDLE_EXIT_MS])
            .args(["--stats-json", "-", "--progress-every", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting weir run: {e}"));
        let mut out: ChildStdout = child.stdout.take().unwrap();
        let err: ChildStderr = child.stderr.take().unwrap();
        let stdout_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let (tx, stderr_lines) = mpsc::channel();
        let stderr = Arc::new(Mutex::new(String::new()));
        let all = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut all = all.lock().unwrap_or_else(|p| p.into_inner());
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
        });
        Receiver { child, stderr_lines, stderr, stderr_reader: Some(stderr_reader), stdout_reader: Some(stdout_reader) }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits for `weir run`'s start line (printed once the queue is open and the poll loop's
    /// worker runs); panics if the process ends first or takes longer than `timeout`.
    fn wait_started(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.starts_with("weir run: ") && line.ends_with(" on an unpinned worker") => return,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("weir run did not start within {timeout:?}; stderr so far:\n{}", self.stderr())
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!("weir run ended before starting ({status:?}); stderr:\n{}", self.stderr())
                }
            }
        }
    }

    /// Waits for the process to end by itself (idle exit), at most `timeout`; returns its exit
    /// status, stdout and stderr.
    fn finish(mut self, timeout: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for weir run") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "weir run did not exit within {timeout:?} (--idle-exit {IDLE_EXIT_MS}); stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self.stdout_reader.take().unwrap().join().unwrap_or_default();
        let _ = self.stderr_reader.take().unwrap().join();
        (status, stdout, self.stderr())
    }
}

impl Drop for Receiver {
    /// A test that panics mid-way does not leave a busy-polling receiver behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `weir send` of the whole capture out of the sender end; checks every datagram went out.
fn send(net: &Netns, cap: &Capture) -> Duration {
    let t0 = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &net.ns_a, WEIR, "send", cap.path, "--iface", &net.va, "--gap-us", GAP_US])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("starting weir send: {e}"));
    let took = t0.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "weir send failed ({}): {err}", out.status);
    assert!(
        err.contains(&format!("weir send: {} datagrams sent, 0 frames skipped", cap.packets)),
        "weir send did not send the whole capture: {err}"
    );
    took
}

/// Asserts `got[key] == want[key]`, showing both sides and the context on failure.
fn same(got: &Value, want: &Value, key: &str, context: &str) {
    assert_eq!(got[key], want[key], "{key}: received vs `weir replay`\n{context}");
}

#[test]
#[ignore = "needs root and iproute2 (network namespaces): cargo test --test live_netns -- --include-ignored"]
fn udp_multicast_over_veth_delivers_every_message() {
    let _live = one_at_a_time();
    require_root_and_ip();
    let cap = capture(DEEP);
    let group = format!("{}:{}", cap.group, cap.port);
    let t0 = Instant::now();
    let net = Netns::new('u', 1);
    let setup = t0.elapsed();

    let mut rx = Receiver::start(&net.ns_b, &format!("udp:{group},iface={}", net.vb));
    rx.wait_started(Duration::from_secs(20));
    // The kernel has the membership on the receiver end (IP_ADD_MEMBERSHIP on the interface).
    let maddr = ip(&["-n", &net.ns_b, "maddr", "show", "dev", &net.vb]);
    let joined = maddr.lines().any(|l| l.split_whitespace().eq(["inet", cap.group.to_string().as_str()]));
    assert!(joined, "{} has not joined {}: {maddr}", net.vb, cap.group);

    let sending = send(&net, &cap);
    let (status, stdout, stderr) = rx.finish(Duration::from_secs(60));
    assert!(status.success(), "weir run failed ({status}): {stderr}");
    let got = stats_json(&stdout);
    let context = format!("weir run stderr:\n{stderr}");
    let want = &cap.reference;

    assert_eq!(got["packets"], cap.packets, "{context}");
    for key in ["messages", "segments", "heartbeats", "messages_by_type", "dbn_records"] {
        same(&got, want, key, &context);
    }
    assert_eq!(got["messages"], 48_325, "{context}");
    assert_eq!(got["gaps"]["count"], 0, "{context}");
    assert_eq!(got["gaps"]["messages_missing"], 0, "{context}");
    for key in ["errors", "filtered", "other_traffic", "corrupt_frames"] {
        assert_eq!(got[key], 0, "{key}\n{context}");
    }
    let nic = &got["nic"][0];
    assert_eq!(nic["name"], format!("udp:{group},iface={}", net.vb), "{context}");
    assert_eq!(nic["packets"], cap.packets, "{context}");
    for key in ["missed", "no_buffer", "errors"] {
        assert_eq!(nic[key], 0, "nic {key}\n{context}");
    }
    eprintln!(
        "udp: {} packets, {} messages over {group}; setup {setup:?}, send {sending:?}, total {:?}",
        got["packets"],
        got["messages"],
        t0.elapsed()
    );
}

#[cfg(feature = "dpdk")]
#[test]
#[ignore = "needs root and iproute2 (network namespaces): cargo test --test live_netns -- --include-ignored"]
fn dpdk_af_packet_over_veth_delivers_every_message() {
    let _live = one_at_a_time();
    require_root_and_ip();
    let cap = capture(DEEP);
    let decoy = capture(TOPS16);
    assert_ne!((decoy.group, decoy.port), (cap.group, cap.port), "the decoy must go to another group");
    let group = format!("{}:{}", cap.group, cap.port);
    let t0 = Instant::now();
    let net = Netns::new('d', 2);
    let setup = t0.elapsed();

    // DPDK speaks no IGMP: nothing joins, af_packet takes every frame on the end and the poll
    // loop admits the group's datagrams only.
    let mut rx = Receiver::start(&net.ns_b, &format!("dpdk:net_af_packet0,iface={},group={group}", net.vb));
    rx.wait_started(Duration::from_secs(30));

    // Another feed on the same wire first: the poll loop must count it as filtered and decode
    // none of it.
    let sending = send(&net, &decoy) + send(&net, &cap);
    let (status, stdout, stderr) = rx.finish(Duration::from_secs(60));
    assert!(status.success(), "weir run failed ({status}): {stderr}");
    let got = stats_json(&stdout);
    let context = format!("weir run stats:\n{got:#}\nweir run stderr:\n{stderr}");
    let want = &cap.reference;

    for key in ["messages", "segments", "heartbeats", "messages_by_type", "dbn_records"] {
        same(&got, want, key, &context);
    }
    assert_eq!(got["messages"], 48_325, "{context}");
    assert_eq!(got["gaps"]["count"], 0, "{context}");
    assert_eq!(got["gaps"]["messages_missing"], 0, "{context}");
    assert_eq!(got["corrupt_frames"], 0, "{context}");
    assert_eq!(got["errors"], 0, "{context}");
    // af_packet takes every frame on the wire: the decoy feed, and the kernel's own (ARP, IGMP;
    // IPv6 if it could not be disabled). Every frame is one of the capture's, or counted as
    // filtered (IPv4/UDP to another group) or as other traffic (not IPv4/UDP).
    let count = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}\n{context}"));
    let nic = &got["nic"][0];
    let (frames, filtered, other) = (count(&got["packets"]), count(&got["filtered"]), count(&got["other_traffic"]));
    assert_eq!(count(&nic["packets"]), frames, "every frame the queue delivered went through the loop\n{context}");
    assert_eq!(frames, cap.packets + filtered + other, "frames = capture + filtered + other traffic\n{context}");
    assert_eq!(filtered, decoy.packets, "the decoy feed, filtered\n{context}");
    for key in ["missed", "no_buffer", "errors"] {
        assert_eq!(nic[key], 0, "nic {key}\n{context}");
    }
    eprintln!(
        "dpdk af_packet: {frames} frames ({filtered} filtered, {other} other traffic), {} messages over {group}; \
         setup {setup:?}, send (decoy + capture) {sending:?}, total {:?}",
        got["messages"],
        t0.elapsed()
    );
}
