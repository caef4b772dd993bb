//! The DPDK backend on DPDK's software devices (feature `dpdk`; no NIC, no hugepages).
//!
//! One EAL per test process (the test preset: `--no-huge --no-shconf --no-pci`), shared by every
//! test here; each test hot-plugs vdevs with names of its own and gets its own small mempool, so
//! the tests run in parallel. Inputs are pcaps the tests write themselves.
//!
//! Run: `cargo test --features dpdk --test dpdk`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use pcap_file::DataLink;
use pcap_file::TsResolution;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use weir::capture::CaptureReader;
use weir::nic::dpdk::{self, DpdkError, Port, PortConfig};
use weir::nic::spec::Group;
use weir::nic::{BURST, RxQueue, TimestampSource, TxQueue};
use weir_feeds::frame::write_udp_frame;

const REAL_CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iex/Sai271828-iex-parser/test.pcap.gz");

/// A vdev name of this test's own: `<driver>_t<n>`.
fn vdev(driver: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    format!("{driver}_t{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// A scratch file of this process's own in the temp directory.
fn scratch(file: &str) -> PathBuf {
    std::env::temp_dir().join(format!("weir-dpdk-test-{}-{file}", std::process::id()))
}

/// A small port: its own pool of `mbufs`, short rings.
fn small(mbufs: u32) -> PortConfig {
    PortConfig { rx_desc: 128, tx_desc: 128, mbufs: Some(mbufs), ..PortConfig::default() }
}

/// A classic pcap of `frames` (timestamp ns, bytes), µs or ns resolution.
fn write_pcap(path: &Path, nanos: bool, frames: &[(i64, Vec<u8>)]) {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: if nanos { TsResolution::NanoSecond } else { TsResolution::MicroSecond },
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(std::io::BufWriter::new(std::fs::File::create(path).unwrap()), header).unwrap();
    for (ts, data) in frames {
        let ts = Duration::from_nanos(*ts as u64);
        w.write_packet(&PcapPacket::new(ts, data.len() as u32, data)).unwrap();
    }
}

/// Everything a capture holds: (timestamp ns, frame).
fn read_capture(path: &Path) -> Vec<(i64, Vec<u8>)> {
    let mut r = CaptureReader::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        out.push((p.ts_ns, p.data.to_vec()));
    }
    out
}

/// What one rx queue delivered: frames, their stamps, and per-burst counts.
#[derive(Default)]
struct Drained {
    frames: Vec<Vec<u8>>,
    stamps: Vec<(i64, TimestampSource)>,
    bursts: Vec<usize>,
}

/// Polls until `want` frames came, then a while longer to see that nothing more comes; gives up
/// after `limit`.
fn drain(rx: &mut impl RxQueue, want: usize, limit: Duration) -> Drained {
    let mut d = Drained::default();
    let start = Instant::now();
    let mut extra_polls = 0;
    while start.elapsed() < limit && extra_polls < 1000 {
        let n = rx.rx_burst();
        assert!(n <= BURST);
        if n > 0 {
            d.bursts.push(n);
        }
        for i in 0..n {
            let f = rx.frame(i);
            d.frames.push(f.data.to_vec());
            d.stamps.push((f.rx_ns, f.ts_source));
        }
        if d.frames.len() >= want {
            extra_polls += 1;
        }
    }
    d
}

fn udp_frames(n: usize, payload_len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut payload = vec![0u8; payload_len.max(8)];
            payload[..8].copy_from_slice(&(i as u64).to_le_bytes());
            for (k, b) in payload[8..].iter_mut().enumerate() {
                *b = (i * 31 + k) as u8;
            }
            let mut f = Vec::new();
            write_udp_frame(&mut f, ([239, 1, 2, 3], 31000), 0, 0, &payload);
            f
        })
        .collect()
}

#[test]
fn net_pcap_delivers_a_real_capture_byte_for_byte() {
    // net_pcap reads neither gzip nor pcapng: an uncompressed classic copy, written from what
    // weir's own reader sees in the original.
    let expected = read_capture(Path::new(REAL_CAPTURE));
    assert!(expected.len() > 1000, "the capture has {} frames", expected.len());
    let file = scratch("real.pcap");
    write_pcap(&file, false, &expected);
    // The copy reads back the same through weir's reader (µs resolution: the original is µs).
    assert_eq!(read_capture(&file), expected);

    let group = Group { addr: Ipv4Addr::new(233, 215, 21, 4), port: 10378 };
    let device = format!("{},rx_pcap={}", vdev("net_pcap"), file.display());
    let mut rx = dpdk::open_rx(&device, 0, &[group], &[]).unwrap();
    let port = rx.port();
    assert_eq!(port.driver(), "net_pcap");
    assert_eq!(port.timestamps(), TimestampSource::Capture);
    assert!(port.notes().iter().any(|n| n.contains("multicast")), "{:?}", port.notes());
    assert!(rx.name().starts_with("dpdk:net_pcap_t"), "{}", rx.name());

    // Polled on another thread: the queue is Send, and that thread gets an lcore id of its own.
    let want = expected.len();
    let (rx, got, lcore) = std::thread::spawn(move || {
        assert_eq!(dpdk::lcore_id(), None);
        let got = drain(&mut rx, want, Duration::from_secs(20));
        let lcore = dpdk::lcore_id();
        (rx, got, lcore)
    })
    .join()
    .unwrap();
    assert!(lcore.is_some_and(|id| id > 0), "worker lcore {lcore:?}");
    let mut rx = rx;

    assert_eq!(got.frames.len(), expected.len(), "frame count");
    for (i, (f, (ts, e))) in got.frames.iter().zip(&expected).enumerate() {
        assert_eq!(f, e, "frame {i} differs");
        // net_pcap stamps in µs since the epoch: exact for a µs capture.
        assert_eq!(got.stamps[i], (*ts, TimestampSource::Capture), "frame {i} stamp");
    }
    let stats = rx.stats();
    assert_eq!(stats.packets, expected.len() as u64);
    assert_eq!(stats.bytes, expected.iter().map(|(_, f)| f.len() as u64).sum::<u64>());
    assert_eq!(stats.bursts, got.bursts.len() as u64);
    assert_eq!(got.bursts.iter().sum::<usize>(), expected.len());
    assert!(stats.empty_polls > 0);
    assert_eq!((stats.missed, stats.no_buffer, stats.errors), (0, 0, 0), "{stats:?}");
    let ps = port.stats().unwrap();
    assert_eq!(ps.ipackets, expected.len() as u64, "{ps:?}");
    drop(rx);
    assert_eq!(port.mbufs_in_use(), 0, "every mbuf back in the pool");
    std::fs::remove_file(&file).ok();
}

#[test]
fn net_pcap_stamps_are_microseconds_and_jumbo_frames_come_whole() {
    // A nanosecond pcap: net_pcap opens it at libpcap's default µs precision, so stamps come out
    // truncated to the µs. Frames longer than one mbuf (2048 B of data room) arrive as mbuf
    // chains and are copied whole.
    let base = 1_700_000_000_123_456_789i64;
    let mut frames: Vec<(i64, Vec<u8>)> =
        udp_frames(6, 100).into_iter().enumerate().map(|(i, f)| (base + i as i64 * 1_001, f)).collect();
    frames[2].1 = udp_frames(1, 5000).remove(0);
    frames[4].1 = udp_frames(1, 9000).remove(0);
    let file = scratch("nanos.pcap");
    write_pcap(&file, true, &frames);

    let port = Port::open(&format!("{},rx_pcap={}", vdev("net_pcap"), file.display()), &small(255), &[]).unwrap();
    let mut rx = port.rx(0).unwrap();
    let got = drain(&mut rx, frames.len(), Duration::from_secs(10));
    assert_eq!(got.frames.len(), frames.len());
    for (i, (ts, f)) in frames.iter().enumerate() {
        assert_eq!(got.frames[i].len(), f.len(), "frame {i} length");
        assert_eq!(&got.frames[i], f, "frame {i}");
        assert_eq!(got.stamps[i], (ts / 1000 * 1000, TimestampSource::Capture), "frame {i} stamp");
    }
    let s = rx.stats();
    assert_eq!(s.bytes, frames.iter().map(|(_, f)| f.len() as u64).sum::<u64>());
    std::fs::remove_file(&file).ok();
}

#[test]
fn net_ring_sends_back_what_tx_sent_in_order() {
    let port = Port::open(&vdev("net_ring"), &small(1023), &[]).unwrap();
    let mut tx = port.tx(0).unwrap();
    let mut rx = port.rx(0).unwrap();
    assert_eq!(port.timestamps(), TimestampSource::Host);

    // Distinct frames, one of them longer than an mbuf (sent as a chain).
    let mut frames = udp_frames(1000, 64);
    frames[500] = udp_frames(1, 3000).remove(0);
    let mut sent = 0;
    let mut got: Vec<Vec<u8>> = Vec::new();
    let start = Instant::now();
    while (sent < frames.len() || got.len() < frames.len()) && start.elapsed() < Duration::from_secs(10) {
        if sent < frames.len() {
            let batch: Vec<&[u8]> = frames[sent..(sent + 50).min(frames.len())].iter().map(Vec::as_slice).collect();
            sent += tx.tx_burst(&batch);
        }
        let n = rx.rx_burst();
        for i in 0..n {
            let f = rx.frame(i);
            assert_eq!(f.ts_source, TimestampSource::Host);
            got.push(f.data.to_vec());
        }
    }
    assert_eq!(sent, frames.len());
    assert_eq!(tx.sent(), frames.len() as u64);
    assert_eq!(got.len(), frames.len());
    for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(g, f, "frame {i}");
    }
    assert_eq!(rx.rx_burst(), 0);
    assert_eq!(port.mbufs_in_use(), 0, "every mbuf back in the pool");
    assert_eq!(rx.stats().packets, frames.len() as u64);
}

#[test]
fn net_null_recycles_mbufs_from_a_tiny_pool() {
    // 127 mbufs, four bursts' worth: a queue that did not give its mbufs back would run the pool
    // dry within a few bursts and receive nothing after.
    let port = Port::open(&vdev("net_null"), &small(127), &[]).unwrap();
    assert_eq!(port.mbufs(), 127);
    let mut rx = port.rx(0).unwrap();
    let (mut packets, mut bytes, mut bursts, mut empty) = (0u64, 0u64, 0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(200) {
        let n = rx.rx_burst();
        if n == 0 {
            empty += 1;
            continue;
        }
        bursts += 1;
        packets += n as u64;
        for i in 0..n {
            let f = rx.frame(i);
            bytes += f.data.len() as u64;
            assert_eq!(f.locus, packets - n as u64 + i as u64);
        }
        if bursts % 1024 == 0 {
            let in_use = port.mbufs_in_use();
            assert!(in_use as usize <= n, "{in_use} mbufs out with a burst of {n} held");
        }
    }
    assert!(bursts > 1000, "only {bursts} bursts in 0.2 s");
    let s = rx.stats();
    assert_eq!((s.packets, s.bytes, s.bursts, s.empty_polls), (packets, bytes, bursts, empty));
    assert_eq!(s.no_buffer, 0, "{s:?}");
    assert!(empty * 100 <= bursts, "{empty} empty polls for {bursts} bursts");
    drop(rx);
    assert_eq!(port.mbufs_in_use(), 0);
}

#[test]
fn errors_name_the_device() {
    // No such driver.
    let name = vdev("net_nosuchdriver");
    let e = Port::open(&name, &PortConfig::default(), &[]).unwrap_err();
    assert!(matches!(e, DpdkError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains(&name), "{e}");
    eprintln!("{e}");

    // A PCI address EAL was not given.
    let e = Port::open("0000:99:00.0", &PortConfig::default(), &[]).unwrap_err();
    assert!(matches!(e, DpdkError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("0000:99:00.0") && e.to_string().contains("-a 0000:99:00.0"), "{e}");

    // Bad vdev arguments: a missing file, an unknown key.
    let device = format!("{},rx_pcap=/nonexistent/weir.pcap", vdev("net_pcap"));
    let e = Port::open(&device, &PortConfig::default(), &[]).unwrap_err();
    assert!(matches!(e, DpdkError::Call { call: "rte_vdev_init", .. }), "{e:?}");
    assert!(e.to_string().contains(&device), "{e}");
    // The driver's own reason, from DPDK's log, names the file.
    assert!(matches!(&e, DpdkError::Call { log, .. } if log.contains("/nonexistent/weir.pcap")), "{e:?}");
    eprintln!("{e}");
    let device = format!("{},no_such_key=1", vdev("net_null"));
    let e = Port::open(&device, &PortConfig::default(), &[]).unwrap_err();
    assert!(e.to_string().contains(&device) && e.to_string().contains("rte_vdev_init"), "{e}");
    eprintln!("{e}");

    // A queue the device does not have (net_pcap: one per rx_pcap); the failed open, after the
    // hot-plug, leaves nothing behind: the same name opens.
    let file = scratch("errors.pcap");
    write_pcap(&file, false, &[(1_000, udp_frames(1, 10).remove(0))]);
    let device = format!("{},rx_pcap={}", vdev("net_pcap"), file.display());
    let four = PortConfig { rx_queues: 4, unsteered_rx_queues: true, ..small(63) };
    let e = Port::open(&device, &four, &[]).unwrap_err();
    assert!(matches!(e, DpdkError::Invalid { .. }) && e.to_string().contains("queue 3"), "{e}");
    eprintln!("{e}");
    let port = Port::open(&device, &small(63), &[]).unwrap();

    // One owner per queue.
    let rx = port.rx(0).unwrap();
    let e = port.rx(0).unwrap_err();
    assert!(e.to_string().contains("already in use") && e.to_string().contains(&device), "{e}");
    drop(rx);
    let _rx = port.rx(0).unwrap();
    assert!(port.rx(1).unwrap_err().to_string().contains("receive queue 1"));

    // One EAL per process.
    let e = dpdk::init_eal(&["-l".into(), "1".into()]).unwrap_err();
    assert!(matches!(e, DpdkError::EalMismatch { .. }), "{e:?}");
    dpdk::init_eal(&[]).unwrap();
    let preset = dpdk::eal_preset("test").unwrap();
    dpdk::init_eal(&preset).unwrap();
    std::fs::remove_file(&file).ok();
}

#[test]
fn queues_other_than_0_need_steering_which_weir_lacks() {
    // `dpdk:DEV,queue=Q`: refused for Q > 0, before anything is opened (on a NIC, with no RSS and
    // no flow rules, queue Q would receive nothing).
    let name = vdev("net_ring");
    let e = dpdk::open_rx(&name, 1, &[], &[]).unwrap_err();
    assert!(matches!(e, DpdkError::Invalid { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains(&name) && text.contains("queue=1"), "{e}");
    assert!(text.contains("steering") && text.contains("not implemented") && text.contains("use queue=0"), "{e}");
    eprintln!("{e}");
    let rx = dpdk::open_rx(&name, 0, &[], &[]).unwrap();
    assert_eq!((rx.queue(), rx.port().rx_queues()), (0, 1));
    drop(rx);

    // Port::open: more than one receive queue only when asked for without steering.
    let two = PortConfig { rx_queues: 2, tx_queues: 2, ..small(255) };
    let e = Port::open(&vdev("net_ring"), &two, &[]).unwrap_err();
    assert!(matches!(e, DpdkError::Invalid { .. }) && e.to_string().contains("not implemented"), "{e}");

    // Unsteered, as documented: net_ring has a ring per queue, so rx queue q gets exactly what tx
    // queue q sent (a NIC would put everything on queue 0).
    let port = Port::open(&vdev("net_ring"), &PortConfig { unsteered_rx_queues: true, ..two.clone() }, &[]).unwrap();
    assert_eq!((port.rx_queues(), port.tx_queues()), (2, 2));
    let (mut rx0, mut rx1) = (port.rx(0).unwrap(), port.rx(1).unwrap());
    let (mut tx0, mut tx1) = (port.tx(0).unwrap(), port.tx(1).unwrap());
    let frames = udp_frames(20, 64);
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    assert_eq!(tx1.tx_burst(&refs[..12]), 12);
    assert_eq!(tx0.tx_burst(&refs[12..]), 8);
    let (got0, got1) = (drain(&mut rx0, 8, Duration::from_secs(5)), drain(&mut rx1, 12, Duration::from_secs(5)));
    assert_eq!(got1.frames, frames[..12]);
    assert_eq!(got0.frames, frames[12..]);

    // net_null makes frames on every queue.
    let port = Port::open(&vdev("net_null"), &PortConfig { unsteered_rx_queues: true, ..two }, &[]).unwrap();
    for q in 0..2 {
        let mut rx = port.rx(q).unwrap();
        assert!((0..100).map(|_| rx.rx_burst()).sum::<usize>() > 0, "net_null queue {q}");
    }
}

#[test]
fn opens_closes_and_stats_from_several_threads() {
    // Opens, failed opens (unwound after the hot-plug) and closes on several threads at once,
    // with stats read from every holder of a port meanwhile: no deadlock, nothing left behind.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..10 {
                    let port = Port::open(&vdev("net_null"), &small(127), &[]).unwrap();
                    let mut rx = port.rx(0).unwrap();
                    let other = port.clone();
                    let reader = std::thread::spawn(move || (0..50).all(|_| other.stats().is_ok()));
                    for _ in 0..50 {
                        rx.rx_burst();
                        let _ = rx.stats();
                    }
                    assert!(reader.join().unwrap());
                    let too_many = PortConfig { rx_queues: u16::MAX, unsteered_rx_queues: true, ..small(127) };
                    let e = Port::open(&vdev("net_null"), &too_many, &[]).unwrap_err();
                    assert!(matches!(e, DpdkError::Invalid { .. }), "{e:?}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Set in the child process of [`eal_failures_before_rte_eal_init_are_not_remembered`].
const EAL_CHILD: &str = "WEIR_DPDK_TEST_EAL_CHILD";

#[test]
fn eal_failures_before_rte_eal_init_are_not_remembered() {
    // The EAL must not be running yet: in a process of its own, this test alone.
    if std::env::var_os(EAL_CHILD).is_none() {
        let name = "eal_failures_before_rte_eal_init_are_not_remembered";
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture"])
            .env(EAL_CHILD, "1")
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "child: {stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "the child did not run the test: {stdout}");
        return;
    }
    // No EAL: register_thread says so, naming the thread (the test's).
    let e = dpdk::register_thread().unwrap_err();
    assert!(matches!(e, DpdkError::Thread { errno: 0, .. }), "{e:?}");
    let me = std::thread::current().name().map(str::to_owned).unwrap();
    assert!(e.to_string().contains(&format!("thread {me:?}")) && e.to_string().contains("not running"), "{e}");
    eprintln!("{e}");
    // An argument with a NUL: refused before rte_eal_init, not remembered.
    let mut bad = dpdk::eal_preset("test").unwrap();
    bad[1] = "0\0".into();
    let e = dpdk::init_eal(&bad).unwrap_err();
    assert!(matches!(e, DpdkError::EalInit { .. }) && e.to_string().contains("NUL"), "{e}");
    // The corrected call starts the EAL (the same arguments as other tests: the preset).
    dpdk::init_eal(&dpdk::eal_preset("test").unwrap()).unwrap();
    dpdk::register_thread().unwrap();
    assert!(dpdk::lcore_id().is_some());
    assert!(matches!(dpdk::init_eal(&bad).unwrap_err(), DpdkError::EalInit { .. }));
    dpdk::init_eal(&[]).unwrap();
}

/// `weir run` in its own process (one EAL per process): stats JSON on stdout.
fn weir_run(args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir")).arg("run").args(args).output().unwrap();
    assert!(out.status.success(), "weir run {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn net_pcap_and_the_pcap_backend_make_the_same_dbn_bytes() {
    // The acceptance check: one capture, two paths (DPDK's net_pcap driver, weir's own pcap
    // reader), the same DBN file byte for byte and the same counters.
    let file = scratch("same-dbn.pcap");
    write_pcap(&file, false, &read_capture(Path::new(REAL_CAPTURE)));
    let (a, b) = (scratch("via-dpdk.dbn"), scratch("via-pcap.dbn"));
    let nic = format!("dpdk:net_pcap_cli0,rx_pcap={},group=233.215.21.4:10378", file.display());
    let via_dpdk =
        weir_run(&["--nic", &nic, "--idle-exit", "500", "--out", a.to_str().unwrap(), "--stats-json", "-", "-q"]);
    let nic = format!("pcap:{}", file.display());
    let via_pcap = weir_run(&["--nic", &nic, "--out", b.to_str().unwrap(), "--stats-json", "-", "-q"]);
    let (da, db) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(da.len() > 1_000_000, "{} DBN bytes", da.len());
    assert!(da == db, "DBN output differs: {} vs {} bytes", da.len(), db.len());
    for key in ["packets", "messages", "segments", "gaps", "dbn_records", "errors", "records"] {
        assert_eq!(via_dpdk[key], via_pcap[key], "{key}");
    }
    assert_eq!(via_dpdk["messages"], 48325);
    let q = &via_dpdk["nic"][0];
    assert!(q["name"].as_str().unwrap().starts_with("dpdk:net_pcap_cli0"), "{q}");
    assert_eq!((q["packets"].as_u64(), q["missed"].as_u64(), q["no_buffer"].as_u64()), (Some(5000), Some(0), Some(0)));
    for f in [&file, &a, &b] {
        let _ = std::fs::remove_file(f);
    }
}
