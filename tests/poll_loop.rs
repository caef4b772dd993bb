//! The poll loop over the pcap backend and the middleware: the same records as `weir replay`, no
//! allocation per packet, faults injected are counted as the feed handler should count them, and
//! a recorded queue replays to the same records.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use weir::lcore::PollLoop;
use weir::nic::fault::{FaultInjection, Faults};
use weir::nic::pcap::PcapRx;
use weir::nic::pcap_writer::PcapWriter;
use weir::nic::spec::{Group, Pace};
use weir::nic::{RxQueue, TimestampSource};
use weir_feeds::normalize::{Normalizer, NormalizerConfig, RecordSink};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the thread whose allocations are being counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; the counter and thread-local flag do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.try_with(|c| c.get()).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.try_with(|c| c.get()).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CAPTURES: &[&str] = &[
    "Sai271828-iex-parser/test.pcap.gz",
    "lvfrazao-IEXTools/example1.pcap",
    "timpalpant-go-iex/TOPS16.pcapng.gz",
    "omi-data-packets/DeepPlus.IexTp.1.0.2/all_message_types.pcap",
];

/// Allocations the loop's thread makes while it runs to the end, after one warm-up burst (which
/// sizes the queue's arena to the capture's frames).
fn allocations_in_run<Q: RxQueue, R: RecordSink>(l: &mut PollLoop<Q, R>) -> u64 {
    l.poll();
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    l.run();
    COUNTING.with(|c| c.set(false));
    ALLOCS.load(Ordering::Relaxed)
}

/// Records into a buffer reserved up front: a sink that never allocates (as the bus will be).
struct Reserved(Vec<u8>);

impl RecordSink for Reserved {
    fn record<R: dbn::Record>(&mut self, rec: &R) {
        let bytes = rec.as_ref();
        assert!(self.0.len() + bytes.len() <= self.0.capacity(), "test sink too small");
        self.0.extend_from_slice(bytes);
    }
}

/// The records `weir replay` makes from a capture.
fn replayed(path: &Path) -> Vec<u8> {
    let mut n = Normalizer::new(NormalizerConfig::default(), Vec::new());
    weir::replay::replay(path, None, &mut n, &mut |_| {}).unwrap();
    n.into_sink()
}

fn polled<Q: RxQueue>(queue: Q) -> (Vec<u8>, weir::lcore::RunReport) {
    let mut l = PollLoop::new(queue, NormalizerConfig::default(), Reserved(Vec::with_capacity(64 << 20)));
    l.run();
    let report = l.report();
    (std::mem::take(&mut l.books_mut().sink_mut().inner.0), report)
}

#[test]
fn same_records_as_replay() {
    for rel in CAPTURES {
        let path = common::data(rel);
        let want = replayed(&path);
        let (got, report) = polled(PcapRx::open(&path, Pace::Max).unwrap());
        assert!(!want.is_empty(), "{rel}");
        assert!(got == want, "{rel}: poll loop made {} record bytes, replay {}", got.len(), want.len());
        assert_eq!(report.records, report.replay.dbn_records.values().sum::<u64>().max(report.records));
        assert_eq!(report.nic[0].stats.packets, report.replay.packets, "{rel}");
        let mut sink = ();
        let replay = weir::replay::replay(&path, None, &mut sink, &mut |_| {}).unwrap();
        assert_eq!(report.replay.errors, replay.errors, "{rel}: {:?}", report.replay.first_errors);
        assert_eq!(report.replay.messages, replay.messages, "{rel}");
    }
}

#[test]
fn no_allocation_per_packet() {
    // Reserve generously so the books never grow; then count every allocation the poll loop's
    // thread makes while it handles four real captures (DEEP, TOPS 1.5, TOPS 1.6, DEEP+).
    let config = NormalizerConfig { levels: 512, orders: 1 << 16, ..NormalizerConfig::default() };
    let mut total_messages = 0;
    for rel in CAPTURES {
        let queue = PcapRx::open(&common::data(rel), Pace::Max).unwrap();
        let mut l = PollLoop::new(queue, config, Reserved(Vec::with_capacity(64 << 20)));
        let allocs = allocations_in_run(&mut l);
        let report = l.report();
        assert!(report.replay.messages > 0, "{rel}");
        assert_eq!(report.replay.books.unwrap().growths, 0, "{rel}: books grew");
        assert_eq!(allocs, 0, "{rel}: {allocs} allocations over {} packets", report.replay.packets);
        total_messages += report.replay.messages;
    }
    assert!(total_messages > 48_000);
}

#[test]
fn publishing_to_the_bus_allocates_nothing_and_delivers_the_replay_records() {
    use weir::bus::{Join, Next, Publisher, PublisherOptions, Subscriber, SubscriberOptions};
    let config = NormalizerConfig { levels: 512, orders: 1 << 16, ..NormalizerConfig::default() };
    let rel = CAPTURES[0];
    let path = std::path::PathBuf::from(format!("/dev/shm/weir-test-poll-loop-bus-{}", std::process::id()));
    let publisher =
        Publisher::create(&path, &PublisherOptions { capacity: 64 << 20, ..PublisherOptions::default() }).unwrap();
    let mut sub = Subscriber::open(&path, &SubscriberOptions { join: Join::Oldest, ..Default::default() }).unwrap();
    let queue = PcapRx::open(&common::data(rel), Pace::Max).unwrap();
    let mut l = PollLoop::new(queue, config, publisher);
    let allocs = allocations_in_run(&mut l);
    assert_eq!(allocs, 0, "{rel}: {allocs} allocations publishing to the bus");
    let mut got = Vec::new();
    while let Next::Record(d) = sub.poll() {
        assert_eq!(d.lost, 0);
        got.extend_from_slice(d.bytes());
    }
    let _ = std::fs::remove_file(&path);
    assert_eq!(sub.stats().lost, 0);
    assert!(got == replayed(&common::data(rel)), "{rel}: the bus carried {} record bytes", got.len());
}

#[test]
fn the_counter_sees_an_allocating_sink() {
    // The allocation test above must be able to fail: a sink that grows a Vec is caught.
    let queue = PcapRx::open(&common::data(CAPTURES[0]), Pace::Max).unwrap();
    let mut l = PollLoop::new(queue, NormalizerConfig::default(), Vec::new());
    assert!(allocations_in_run(&mut l) > 0);
}

#[test]
fn duplicated_frames_are_counted_and_change_nothing() {
    let path = common::data(CAPTURES[0]);
    let want = replayed(&path);
    let faults = Faults { duplicate: 1.0, ..Faults::default() };
    let queue = FaultInjection::new(PcapRx::open(&path, Pace::Max).unwrap(), faults);
    let mut l = PollLoop::new(queue, NormalizerConfig::default(), Reserved(Vec::with_capacity(64 << 20)));
    l.run();
    let r = l.report();
    assert_eq!(l.lines()[0].counts(), weir::nic::fault::FaultCounts { duplicated: 5000, ..Default::default() });
    assert_eq!(r.replay.packets, 10_000);
    // Heartbeats carry no messages: a repeated one is not a duplicate.
    assert_eq!(r.replay.duplicates.segments, (r.replay.segments - r.replay.heartbeats) / 2);
    assert_eq!(r.replay.duplicates.messages, r.replay.messages);
    assert_eq!(r.replay.gaps.count, 0);
    assert!(l.books().sink().inner.0 == want, "duplicates must not change the records");
}

#[test]
fn dropped_frames_open_gaps_that_account_for_every_message() {
    let path = common::data(CAPTURES[0]);
    let total = polled(PcapRx::open(&path, Pace::Max).unwrap()).1.replay.messages;
    let faults = Faults { drop: 0.1, seed: 7, ..Faults::default() };
    let queue = FaultInjection::new(PcapRx::open(&path, Pace::Max).unwrap(), faults);
    let mut l = PollLoop::new(queue, NormalizerConfig::default(), Reserved(Vec::with_capacity(64 << 20)));
    l.run();
    let r = l.report();
    let dropped = l.lines()[0].counts().dropped;
    assert!((300..700).contains(&dropped), "10% of 5000 frames: {dropped}");
    assert_eq!(r.replay.packets, 5000 - dropped);
    assert!(r.replay.gaps.count > 0);
    // Every message is either delivered or known missing (a dropped frame at the very end is
    // invisible: nothing follows it to reveal the gap).
    let missing = r.replay.gaps.messages_missing;
    assert!(r.replay.messages + missing <= total && r.replay.messages + missing + 20 >= total);
}

#[test]
fn reordered_and_delayed_frames_fill_their_gaps_late() {
    let path = common::data(CAPTURES[0]);
    let want_messages = polled(PcapRx::open(&path, Pace::Max).unwrap()).1.replay.messages;
    let faults = Faults { reorder: 0.05, delay: 0.02, delay_polls: 3, seed: 11, ..Faults::default() };
    let queue = FaultInjection::new(PcapRx::open(&path, Pace::Max).unwrap(), faults);
    let mut l = PollLoop::new(queue, NormalizerConfig::default(), Reserved(Vec::with_capacity(64 << 20)));
    l.run();
    let r = l.report();
    let c = l.lines()[0].counts();
    assert!(c.reordered > 100 && c.delayed > 40, "{c:?}");
    assert_eq!(r.replay.packets, 5000, "nothing lost");
    assert!(r.replay.late_fill_messages > 0);
    assert_eq!(r.replay.messages, want_messages, "every message delivered, late or not");
    assert_eq!(r.replay.gaps.messages_missing, 0);
}

#[test]
fn a_recorded_queue_replays_to_the_same_records() {
    let path = common::data(CAPTURES[2]); // pcapng, gzip: written back as plain pcap
    let out = common::scratch("recorded").join("recorded.pcap");
    let queue = PcapWriter::create(
        PcapRx::open(&path, Pace::Max).unwrap(),
        &out,
        Group { addr: [233, 215, 21, 4].into(), port: 10378 },
    )
    .unwrap();
    let mut l = PollLoop::new(queue, NormalizerConfig::default(), Reserved(Vec::with_capacity(64 << 20)));
    l.run();
    let first = std::mem::take(&mut l.books_mut().sink_mut().inner.0);
    let r1 = l.report();
    drop(l);
    let (again, report) = polled(PcapRx::open(&out, Pace::Max).unwrap());
    assert!(report.replay.messages > 0);
    assert_eq!((r1.replay.packets, r1.replay.messages), (report.replay.packets, report.replay.messages));
    assert_eq!(again.len(), first.len());
    let at = again.iter().zip(&first).position(|(a, b)| a != b);
    assert_eq!(at, None, "{:?} vs {:?}", &again[at.unwrap_or(0)..][..64], &first[at.unwrap_or(0)..][..64]);
    assert!(again == first, "records from the recorded file differ");
}

#[test]
fn recorded_pace_spreads_the_capture_over_its_time_span() {
    // TOPS 1.6 sample: find its time span, replay at 500x, and check the wall time.
    let path = common::data(CAPTURES[2]);
    let frames = common::load(CAPTURES[2]);
    let span_ns = (frames.last().unwrap().ts_ns - frames[0].ts_ns) as f64;
    let factor = (span_ns / 0.3e9).max(1.0); // aim for about 0.3 s
    let mut queue = PcapRx::open(&path, Pace::Times(factor)).unwrap();
    let start = Instant::now();
    let mut got = 0;
    let mut stamps = Vec::new();
    while !queue.is_finished() {
        let n = queue.rx_burst();
        for i in 0..n {
            let f = queue.frame(i);
            assert_eq!(f.ts_source, TimestampSource::Capture);
            stamps.push((start.elapsed().as_nanos() as f64, f.rx_ns));
        }
        got += n;
    }
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(got, frames.len());
    assert!(wall >= 0.95 * span_ns / factor / 1e9, "{wall} s for a {} s span at x{factor}", span_ns / 1e9);
    // No frame is released early.
    let t0 = stamps[0].1;
    for (at, ts) in &stamps {
        assert!(*at + 1e6 >= (ts - t0) as f64 / factor, "released at {at} ns, due at {}", (ts - t0) as f64 / factor);
    }
}

#[test]
fn max_pace_needs_no_waiting() {
    let (_, r) = polled(PcapRx::open(&common::data(CAPTURES[0]), Pace::Max).unwrap());
    assert_eq!(r.nic[0].stats.packets, 5000);
    assert!(r.nic[0].stats.bursts >= 5000 / 32);
}

#[test]
fn a_looped_capture_is_one_gap_free_stream() {
    let path = common::data(CAPTURES[0]);
    let once = polled(PcapRx::open(&path, Pace::Max).unwrap()).1.replay;
    let mut q = weir::harness::LoopedCapture::load(&path).unwrap();
    q.stop_after(3);
    let (_, r) = polled(q);
    assert_eq!(r.replay.packets, 3 * once.packets);
    assert_eq!(r.replay.messages, 3 * once.messages);
    assert_eq!((r.replay.gaps.count, r.replay.duplicates.messages, r.replay.resets), (0, 0, 0));
    assert_eq!(r.replay.errors, 0, "{:?}", r.replay.first_errors);
}

#[test]
fn bench_latency_writes_percentiles_and_an_hlog() {
    let dir = common::scratch("latency");
    let (json, hlog) = (dir.join("lat.json"), dir.join("lat.hlog"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["bench", "latency", "--pace", "20000", "--seconds", "1", "--max"])
        .args(["--json", json.to_str().unwrap(), "--hlog", hlog.to_str().unwrap()])
        .arg(common::data(CAPTURES[2]))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cases: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let names: Vec<&str> = cases.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    for want in ["clock", "cold x20000", "peel x20000", "decode x20000", "full x20000", "full max", "full svc"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for c in cases.as_array().unwrap() {
        if c["name"] == "clock" || c["name"].as_str().unwrap().starts_with("cold") {
            continue;
        }
        assert!(c["count"].as_u64().unwrap() > 1000, "{c}");
        let (p50, p99, max) = (c["p50"].as_u64().unwrap(), c["p99"].as_u64().unwrap(), c["max"].as_u64().unwrap());
        assert!(0 < p50 && p50 <= p99 && p99 <= max, "{c}");
    }
    // The hlog has one tagged interval per case, readable by HdrHistogram's tools.
    let text = std::fs::read_to_string(&hlog).unwrap();
    assert!(text.contains("Tag=full_x20000,"), "{}", &text[..text.len().min(400)]);
    assert_eq!(text.lines().filter(|l| l.starts_with("Tag=")).count(), cases.as_array().unwrap().len());
}

#[test]
fn writing_a_dbn_file_costs_the_loop_no_allocation() {
    // The file is written by a thread of its own: the loop's thread only fills chunks. Every
    // allocation it makes must be a chunk the writer was too far behind to recycle (counted).
    let dir = common::scratch("dbn-offload");
    let out = dir.join("out.dbn");
    let config = NormalizerConfig { levels: 512, orders: 1 << 16, ..NormalizerConfig::default() };
    let queue = PcapRx::open(&common::data(CAPTURES[0]), Pace::Max).unwrap();
    let mut l = PollLoop::new(queue, config, weir::dbn_out::DbnFile::create(&out).unwrap());
    let allocs = allocations_in_run(&mut l);
    let extra = l.books().sink().inner.extra_chunks();
    assert_eq!(allocs, extra, "{allocs} allocations, {extra} of them extra output chunks");
    let records = std::mem::replace(&mut l.books_mut().sink_mut().inner, weir::dbn_out::DbnFile::counting());
    records.finish(l.books()).unwrap();
    let mut want =
        Normalizer::new(NormalizerConfig::default(), weir::dbn_out::DbnFile::create(&dir.join("want.dbn")).unwrap());
    weir::replay::replay(&common::data(CAPTURES[0]), None, &mut want, &mut |_| {}).unwrap();
    let w = std::mem::replace(want.sink_mut(), weir::dbn_out::DbnFile::counting());
    w.finish(&want).unwrap();
    assert!(std::fs::read(&out).unwrap() == std::fs::read(dir.join("want.dbn")).unwrap());
}
