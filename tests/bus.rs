//! The bus across processes: real producer and consumer processes sharing a ring file in
//! /dev/shm (the in-process tests are in `src/bus/tests.rs`).
//!
//! Every process here is this test binary: a parent test re-executes it as
//! `bus --exact child --nocapture --test-threads=1` with [`CHILD_ENV`] holding the child's
//! [`Role`] as JSON. The `child` test does nothing when that variable is absent (a normal run).
//! Children talk back on stdout in lines `@@WHAT JSON` (everything else, libtest's chatter, is
//! ignored); producers take `go` on stdin.
//!
//! Records are made from their sequence number and the producer's epoch ([`record`]), so every
//! consumer checks every byte of every record it receives, and a record of another epoch (or a
//! torn one) cannot pass.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dbn::{BidAskPair, Mbp1Msg, Mbp10Msg, RecordHeader, SType, SymbolMappingMsg, TradeMsg, rtype};
use serde::{Deserialize, Serialize};
use weir::bus::{
    Join, Next, ProducerState, Publisher, PublisherOptions, Resync, Subscriber, SubscriberOptions, SubscriberStats,
};

/// The environment variable that makes the `child` test play a role.
const CHILD_ENV: &str = "WEIR_BUS_TEST_CHILD";

/// How long any child may run before it gives up (and fails).
const CHILD_DEADLINE: Duration = Duration::from_secs(40);

/// How long the parent waits for any one line from a child.
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Records: a deterministic mix of sizes, every byte a function of (seq, epoch).

/// A splitmix64 step: different bits for every (seq, epoch, field).
fn mix(seq: u64, epoch: u64, field: u64) -> u64 {
    let mut z =
        seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch.rotate_left(40) ^ field.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn header<R: dbn::HasRType>(rtype: u8, seq: u64, epoch: u64) -> RecordHeader {
    // The instrument id carries the epoch, ts_event the sequence: readable in a failure message.
    RecordHeader::new::<R>(rtype, (epoch % 256) as u16, ((epoch as u32) << 24) | (seq % 0xFF_FFFF) as u32, seq)
}

fn levels<const N: usize>(seq: u64, epoch: u64) -> [BidAskPair; N] {
    std::array::from_fn(|i| {
        let m = mix(seq, epoch, 10 + i as u64);
        BidAskPair {
            bid_px: (m >> 1) as i64,
            ask_px: (m >> 2) as i64 + 1,
            bid_sz: m as u32,
            ask_sz: (m >> 32) as u32,
            bid_ct: (m >> 16) as u32,
            ask_ct: (m >> 8) as u32,
        }
    })
}

/// One record of the test stream.
#[derive(Debug)]
enum Rec {
    Trade(TradeMsg),
    Mbp1(Mbp1Msg),
    Mbp10(Box<Mbp10Msg>),
    Mapping(Box<SymbolMappingMsg>),
}

/// The record with sequence `seq` of the producer of epoch `epoch`: 48, 80, 368 or 176 bytes.
fn record(seq: u64, epoch: u64) -> Rec {
    let m = mix(seq, epoch, 0);
    match seq % 16 {
        0 => Rec::Mapping(Box::new(
            SymbolMappingMsg::new(
                ((epoch as u32) << 24) | (seq % 0xFF_FFFF) as u32,
                seq,
                SType::RawSymbol,
                &format!("E{epoch}-S{seq}-{m:x}"),
                SType::InstrumentId,
                &format!("{}", m >> 20),
                m >> 1,
                (m >> 1) | 1,
            )
            .expect("short symbols"),
        )),
        5 | 11 => Rec::Mbp10(Box::new(Mbp10Msg {
            hd: header::<Mbp10Msg>(rtype::MBP_10, seq, epoch),
            price: m as i64,
            size: (m >> 32) as u32,
            action: b'A' as _,
            side: b'B' as _,
            depth: (seq % 10) as u8,
            ts_recv: (epoch << 56) | seq,
            ts_in_delta: (m >> 40) as i32,
            sequence: seq as u32,
            levels: levels(seq, epoch),
            ..Mbp10Msg::default()
        })),
        1 | 3 | 7 | 9 | 13 => Rec::Mbp1(Mbp1Msg {
            hd: header::<Mbp1Msg>(rtype::MBP_1, seq, epoch),
            price: m as i64,
            size: (m >> 32) as u32,
            action: b'M' as _,
            side: b'A' as _,
            ts_recv: (epoch << 56) | seq,
            ts_in_delta: (m >> 40) as i32,
            sequence: seq as u32,
            levels: levels(seq, epoch),
            ..Mbp1Msg::default()
        }),
        _ => Rec::Trade(TradeMsg {
            hd: header::<TradeMsg>(rtype::MBP_0, seq, epoch),
            price: m as i64,
            size: (m >> 32) as u32,
            action: b'T' as _,
            side: b'N' as _,
            ts_recv: (epoch << 56) | seq,
            ts_in_delta: (m >> 40) as i32,
            sequence: seq as u32,
            ..TradeMsg::default()
        }),
    }
}

impl Rec {
    fn bytes(&self) -> &[u8] {
        match self {
            Rec::Trade(r) => r.as_ref(),
            Rec::Mbp1(r) => r.as_ref(),
            Rec::Mbp10(r) => (**r).as_ref(),
            Rec::Mapping(r) => (**r).as_ref(),
        }
    }

    /// Publishes through the typed path real producers use.
    fn publish(&self, p: &mut Publisher) -> u64 {
        match self {
            Rec::Trade(r) => p.publish(r),
            Rec::Mbp1(r) => p.publish(r),
            Rec::Mbp10(r) => p.publish(&**r),
            Rec::Mapping(r) => p.publish(&**r),
        }
    }
}

/// How fast a producer goes: `batch` records, a tick, then `pause_us` of sleep.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Pace {
    batch: u64,
    pause_us: u64,
}

/// About 50k records/s at most: an 8 MiB ring then holds over a second of the stream.
const STEADY: Pace = Pace { batch: 100, pause_us: 2000 };
/// As fast as it goes, with a breath now and then.
const BURST: Pace = Pace { batch: 1000, pause_us: 500 };

/// Publishes sequences `from..to` (stopping early at `deadline`); returns where it stopped.
fn pump(p: &mut Publisher, from: u64, to: u64, pace: Pace, deadline: Instant) -> u64 {
    let epoch = p.epoch();
    let mut seq = from;
    while seq < to {
        let end = to.min(seq + pace.batch);
        while seq < end {
            assert_eq!(record(seq, epoch).publish(p), seq, "the publisher numbers records in order");
            seq += 1;
        }
        p.tick();
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_micros(pace.pause_us));
    }
    seq
}

// ---------------------------------------------------------------------------------------------
// Roles.

#[derive(Debug, Serialize, Deserialize)]
enum Role {
    Producer(ProducerSpec),
    Consumer(ConsumerSpec),
}

#[derive(Debug, Serialize, Deserialize)]
struct ProducerSpec {
    path: PathBuf,
    capacity: u64,
    heartbeat_ms: u64,
    /// Published right after creating, before `@@created`.
    pre: u64,
    /// Wait for `go` on stdin (ticking the heartbeat) before publishing the rest.
    wait_go: bool,
    /// Published after `go`; `u64::MAX`: until killed (or the child deadline).
    records: u64,
    pace: Pace,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ConsumerSpec {
    path: PathBuf,
    join_oldest: bool,
    resync_oldest: bool,
    /// `SubscriberOptions::stale_after` (ms); `None`: the default from the header's interval.
    stale_ms: Option<u64>,
    /// Sleep `sleep_us` after every `sleep_every` records (0: never): a slow consumer.
    sleep_every: u64,
    sleep_us: u64,
    /// Say `@@progress` once this many records were received.
    progress_at: Option<u64>,
    /// After this many records, try to write through the subscriber's mapping.
    scribble_at: Option<u64>,
    /// Survive a dead producer (say `@@dead`, and `@@alive` should records come again) and
    /// follow its successor (`@@superseded`, `@@reopened`); otherwise a dead or superseded
    /// producer fails the consumer.
    follow: bool,
    /// The timeout of `Subscriber::wait` when there is nothing to read (ms).
    wait_ms: u64,
    /// Say `@@got SEQ` for every record.
    echo: bool,
}

impl ConsumerSpec {
    fn new(path: &Path) -> Self {
        ConsumerSpec {
            path: path.to_owned(),
            join_oldest: false,
            resync_oldest: false,
            // Only the producer-death test relies on the heartbeat; elsewhere the parent may
            // pause between phases without ticking.
            stale_ms: Some(60_000),
            sleep_every: 0,
            sleep_us: 0,
            progress_at: None,
            scribble_at: None,
            follow: false,
            wait_ms: 5,
            echo: false,
        }
    }
}

/// What a consumer saw of one epoch.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct EpochSeen {
    epoch: u64,
    pid: u32,
    /// Sequence of the first record received, and the loss the subscriber reported with it
    /// (so `first_seq - first_lost` is where it joined).
    first_seq: Option<u64>,
    first_lost: u64,
    last_seq: Option<u64>,
    received: u64,
    /// Sum of `Delivery::lost`.
    lost: u64,
    lapped: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct ConsumerResult {
    epochs: Vec<EpochSeen>,
    stats: Stats,
}

/// [`SubscriberStats`], which is only `Serialize`, as the parent reads it back.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Stats {
    received: u64,
    lost: u64,
    laps: u64,
    overwritten: u64,
    corrupt: u64,
    reopens: u64,
    lost_inexact: bool,
}

impl From<SubscriberStats> for Stats {
    fn from(s: SubscriberStats) -> Self {
        let SubscriberStats { received, lost, laps, overwritten, corrupt, reopens, lost_inexact } = s;
        Stats { received, lost, laps, overwritten, corrupt, reopens, lost_inexact }
    }
}

/// A line for the parent.
fn say(what: &str, value: impl Serialize) {
    println!("@@{what} {}", serde_json::to_string(&value).unwrap());
}

#[test]
fn child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    match serde_json::from_str::<Role>(&spec).expect("a role") {
        Role::Producer(p) => produce(&p),
        Role::Consumer(c) => consume(&c),
    }
}

fn produce(spec: &ProducerSpec) {
    let deadline = Instant::now() + CHILD_DEADLINE;
    let opts = PublisherOptions {
        capacity: spec.capacity,
        heartbeat_interval: Duration::from_millis(spec.heartbeat_ms),
        ..PublisherOptions::default()
    };
    let mut p = Publisher::create(&spec.path, &opts).unwrap();
    let pre = pump(&mut p, 0, spec.pre, BURST, deadline);
    say("created", (p.epoch(), std::process::id()));
    if spec.wait_go {
        let go = Arc::new(AtomicBool::new(false));
        let flag = go.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                if line.as_deref().is_ok_and(|l| l.trim() == "go") {
                    flag.store(true, Ordering::Release);
                    return;
                }
            }
        });
        while !go.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "no `go` from the parent");
            p.tick();
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let end = pump(&mut p, pre, pre.saturating_add(spec.records), spec.pace, deadline);
    assert_eq!(p.published(), end);
    assert_eq!(p.refused(), 0);
    p.finish();
    say("done", end);
}

fn consume(spec: &ConsumerSpec) {
    let deadline = Instant::now() + CHILD_DEADLINE;
    let opts = SubscriberOptions {
        join: if spec.join_oldest { Join::Oldest } else { Join::Tail },
        resync: if spec.resync_oldest { Resync::Oldest } else { Resync::Latest },
        stale_after: spec.stale_ms.map(Duration::from_millis),
    };
    say("opening", ());
    let mut sub = Subscriber::open_wait(&spec.path, &opts, Duration::from_secs(10)).unwrap();
    let info = *sub.info();
    let mut epochs = vec![EpochSeen { epoch: info.epoch, pid: info.pid, ..EpochSeen::default() }];
    say("ready", info.epoch);
    let mut total = 0u64;
    let mut dead_said = false;
    loop {
        assert!(Instant::now() < deadline, "consumer ran out of time: {epochs:?}");
        let seen = epochs.last_mut().expect("an epoch");
        match sub.poll() {
            Next::Record(d) => {
                let expected = record(d.seq, seen.epoch);
                assert!(
                    d.bytes() == expected.bytes(),
                    "epoch {} seq {}: record differs from what the producer made\n got {:?}\nwant {:?}",
                    seen.epoch,
                    d.seq,
                    d.record,
                    expected
                );
                match seen.last_seq {
                    None => (seen.first_seq, seen.first_lost) = (Some(d.seq), d.lost),
                    // The loss reported is exactly the gap in the sequence.
                    Some(last) => assert_eq!(d.seq, last + 1 + d.lost, "epoch {}: seq after {last}", seen.epoch),
                }
                seen.last_seq = Some(d.seq);
                seen.received += 1;
                seen.lost += d.lost;
                total += 1;
                if spec.echo {
                    say("got", d.seq);
                }
                if dead_said {
                    dead_said = false;
                    say("alive", d.seq);
                }
                if spec.progress_at == Some(total) {
                    say("progress", total);
                }
                if spec.scribble_at == Some(total) {
                    scribble(&spec.path);
                }
                if spec.sleep_every > 0 && total.is_multiple_of(spec.sleep_every) {
                    std::thread::sleep(Duration::from_micros(spec.sleep_us));
                }
            }
            Next::Lapped => seen.lapped += 1,
            Next::Corrupt { position, what } => panic!("corrupt entry at {position}: {what} ({epochs:?})"),
            Next::Empty => match sub.producer() {
                ProducerState::Ended => break,
                ProducerState::Superseded => {
                    assert!(spec.follow, "producer superseded: {epochs:?}");
                    say("superseded", seen.epoch);
                    let info = sub.reopen().unwrap().expect("a superseded bus has a successor file");
                    say("reopened", (info.epoch, info.pid));
                    epochs.push(EpochSeen { epoch: info.epoch, pid: info.pid, ..EpochSeen::default() });
                    dead_said = false;
                }
                ProducerState::Dead { heartbeat_age_ns } => {
                    assert!(spec.follow, "producer dead (heartbeat {heartbeat_age_ns} ns old): {epochs:?}");
                    if !dead_said {
                        dead_said = true;
                        say("dead", heartbeat_age_ns);
                    }
                    sub.wait(Duration::from_millis(spec.wait_ms));
                }
                ProducerState::Live | ProducerState::Quiet { .. } => sub.wait(Duration::from_millis(spec.wait_ms)),
            },
        }
    }
    say("result", ConsumerResult { epochs, stats: sub.stats().into() });
}

/// Tries to write into this process's (read-only) mapping of the bus file: first by making it
/// writable, which must be refused, then by storing into the ring's `tail` counter, which must
/// kill the process with SIGSEGV. Says `@@wrote` and exits 0 if the store went through.
fn scribble(path: &Path) {
    // No core file for the expected crash.
    let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain system call with a valid rlimit.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let ours: Vec<&str> = maps.lines().filter(|l| l.ends_with(path.to_str().unwrap())).collect();
    assert_eq!(ours.len(), 1, "one mapping of the bus file (the subscriber's): {ours:?}");
    let fields: Vec<&str> = ours[0].split_whitespace().collect();
    let (start, end) = fields[0].split_once('-').unwrap();
    let (start, end) = (usize::from_str_radix(start, 16).unwrap(), usize::from_str_radix(end, 16).unwrap());
    say("mapping", (fields[1], end - start));
    // SAFETY: asks to make our own mapping writable; changes no memory either way.
    let rc = unsafe { libc::mprotect(start as *mut libc::c_void, end - start, libc::PROT_READ | libc::PROT_WRITE) };
    let err = std::io::Error::last_os_error();
    say("mprotect", (rc, err.raw_os_error()));
    // The ring's `tail` counter (layout: counters at 256, `tail` the second word).
    // SAFETY: `start + 264` is inside the mapping and 8-aligned, and the header is only ever
    // accessed through atomics, so a reference to an AtomicU64 there is valid. The store is the
    // point of the test: on a read-only mapping the kernel kills this process (SIGSEGV) and the
    // parent checks that it did.
    let tail = unsafe { &*((start + 264) as *const AtomicU64) };
    say("scribbling", tail.load(Ordering::Relaxed));
    tail.store(u64::MAX / 2, Ordering::Relaxed);
    say("wrote", ());
    std::process::exit(0);
}

// ---------------------------------------------------------------------------------------------
// The parent's side.

/// One test at a time: each already runs several processes on a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh directory under /dev/shm, removed on drop.
struct ShmDir(PathBuf);

impl ShmDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!("/dev/shm/weir-bus-mp-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ShmDir(dir)
    }

    fn bus(&self) -> PathBuf {
        self.0.join("bus")
    }
}

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process playing a role; killed on drop if still running.
struct Kid {
    name: String,
    child: Child,
    lines: Receiver<(Instant, String)>,
}

impl Kid {
    fn spawn(name: &str, role: &Role) -> Kid {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, serde_json::to_string(role).unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                // libtest's `test child ... ` may precede the first line on the same line.
                if let Some(at) = line.find("@@")
                    && tx.send((Instant::now(), line[at + 2..].to_owned())).is_err()
                {
                    return;
                }
            }
        });
        Kid { name: name.to_owned(), child, lines }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's next `@@` line, which must be `@@what`: when it arrived, and its JSON.
    fn expect(&mut self, what: &str) -> (Instant, serde_json::Value) {
        self.expect_within(what, LINE_TIMEOUT, || {})
    }

    /// Same, calling `idle` (e.g. a publisher's tick) every millisecond while waiting.
    fn expect_within(&mut self, what: &str, timeout: Duration, mut idle: impl FnMut()) -> (Instant, serde_json::Value) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.lines.recv_timeout(Duration::from_millis(1)) {
                Ok((at, line)) => {
                    let (head, json) = line.split_once(' ').unwrap_or((&line, "null"));
                    assert_eq!(head, what, "{}: expected @@{what}, got @@{line}", self.name);
                    return (at, serde_json::from_str(json).unwrap());
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => idle(),
                Err(e) => {
                    let status = self.wait_for(Duration::from_secs(5));
                    panic!("{}: no @@{what} ({e:?}); the child ended with {status:?}", self.name)
                }
            }
        }
    }

    fn result(&mut self) -> ConsumerResult {
        let (_, v) = self.expect("result");
        let r: ConsumerResult = serde_json::from_value(v).unwrap();
        let status = self.wait_for(Duration::from_secs(10));
        assert!(status.is_some_and(|s| s.success()), "{}: {status:?}", self.name);
        r
    }

    fn send(&mut self, line: &str) {
        writeln!(self.child.stdin.as_mut().unwrap(), "{line}").unwrap();
    }

    /// Waits up to `timeout` for the child to end (`None` if it does not).
    fn wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGKILL, and the status showing it.
    fn kill9(&mut self) -> ExitStatus {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{}: {status:?}", self.name);
        status
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A consumer process, past its `@@opening`.
fn consumer(name: &str, spec: &ConsumerSpec) -> Kid {
    let mut kid = Kid::spawn(name, &Role::Consumer(spec.clone()));
    kid.expect("opening");
    kid
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// One epoch seen whole: `first..first + n`, nothing lost, never lapped.
fn assert_everything(name: &str, r: &ConsumerResult, first: u64, n: u64) {
    assert_eq!(r.epochs.len(), 1, "{name}: {r:?}");
    let e = &r.epochs[0];
    assert_eq!((e.first_seq, e.first_lost), (Some(first), 0), "{name} joined where it should: {e:?}");
    assert_eq!(e.last_seq, Some(first + n - 1), "{name}: {e:?}");
    assert_eq!((e.received, e.lost, e.lapped), (n, 0, 0), "{name}: {e:?}");
    let s = r.stats;
    assert_eq!((s.received, s.lost, s.laps, s.overwritten, s.corrupt, s.reopens), (n, 0, 0, 0, 0, 0), "{name}: {s:?}");
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// Three consumer processes that keep up get every record, in order, byte for byte, across
/// several wraps of the ring.
#[test]
fn fast_consumers_receive_every_record_in_order() {
    let _serial = serial();
    let dir = ShmDir::new("fast");
    let path = dir.bus();
    // 8 MiB; the stream is about 24 MB of entries, so the ring wraps three times.
    let mut p =
        Publisher::create(&path, &PublisherOptions { capacity: 8 << 20, ..PublisherOptions::default() }).unwrap();
    // Some history the consumers join after (at the tail).
    const PRE: u64 = 777;
    pump(&mut p, 0, PRE, BURST, far());
    let mut kids: Vec<Kid> = (0..3).map(|i| consumer(&format!("consumer {i}"), &ConsumerSpec::new(&path))).collect();
    for k in &mut kids {
        k.expect_within("ready", LINE_TIMEOUT, || p.tick());
    }
    const N: u64 = 200_000;
    let t = Instant::now();
    assert_eq!(pump(&mut p, PRE, PRE + N, STEADY, far()), PRE + N);
    let bytes = p.bytes_written();
    p.finish();
    for k in &mut kids {
        let r = k.result();
        assert_everything(&k.name, &r, PRE, N);
    }
    eprintln!("{N} records, {bytes} bytes through an 8 MiB ring in {:?}", t.elapsed());
    assert!(bytes > 2 * (8 << 20), "the ring wrapped");
}

/// A consumer too slow for its ring (sleeping between reads) is lapped, and knows exactly how
/// many records it missed; what it does receive is intact. Both resync policies.
#[test]
fn a_slow_consumer_reports_exactly_what_it_missed() {
    let _serial = serial();
    let dir = ShmDir::new("slow");
    let path = dir.bus();
    // 16 KiB: about 130 entries.
    let mut p =
        Publisher::create(&path, &PublisherOptions { capacity: 16 << 10, ..PublisherOptions::default() }).unwrap();
    // Published before the consumers join: not theirs to count.
    const PRE: u64 = 1000;
    pump(&mut p, 0, PRE, BURST, far());
    let slow =
        |resync_oldest| ConsumerSpec { resync_oldest, sleep_every: 10, sleep_us: 1000, ..ConsumerSpec::new(&path) };
    let mut kids = [consumer("slow, resync latest", &slow(false)), consumer("slow, resync oldest", &slow(true))];
    for k in &mut kids {
        k.expect_within("ready", LINE_TIMEOUT, || p.tick());
    }
    const N: u64 = 30_000;
    assert_eq!(pump(&mut p, PRE, PRE + N, STEADY, far()), PRE + N);
    p.finish();
    for k in &mut kids {
        let r = k.result();
        assert_eq!(r.epochs.len(), 1);
        let e = &r.epochs[0];
        let s = r.stats;
        eprintln!("{}: {e:?} {s:?}", k.name);
        // Joined exactly at the tail: the first record's seq minus the loss reported with it.
        let first = e.first_seq.unwrap();
        assert_eq!(first - e.first_lost, PRE, "{}: {e:?}", k.name);
        assert_eq!(e.last_seq, Some(PRE + N - 1), "{}: read to the end: {e:?}", k.name);
        assert_eq!(e.received + e.lost, N, "{}: every record published after the join accounted for: {e:?}", k.name);
        assert!(e.lost > 0 && s.laps > 0, "{}: slow enough to be lapped: {e:?} {s:?}", k.name);
        assert_eq!((s.received, s.lost, s.corrupt), (e.received, e.lost, 0), "{}: stats agree", k.name);
    }
}

/// SIGKILL of a consumer in mid-stream: the producer carries on and the other consumers still
/// get everything.
#[test]
fn a_killed_consumer_affects_no_one() {
    let _serial = serial();
    let dir = ShmDir::new("killc");
    let path = dir.bus();
    let mut p =
        Publisher::create(&path, &PublisherOptions { capacity: 8 << 20, ..PublisherOptions::default() }).unwrap();
    let mut kids = [
        consumer("consumer a", &ConsumerSpec::new(&path)),
        consumer("consumer b", &ConsumerSpec::new(&path)),
        consumer("victim", &ConsumerSpec { progress_at: Some(20_000), ..ConsumerSpec::new(&path) }),
    ];
    for k in &mut kids {
        k.expect_within("ready", LINE_TIMEOUT, || p.tick());
    }
    const N: u64 = 100_000;
    assert_eq!(pump(&mut p, 0, 30_000, STEADY, far()), 30_000);
    // The victim is mid-stream: it has read 20,000 and more is being published.
    kids[2].expect_within("progress", LINE_TIMEOUT, || p.tick());
    kids[2].kill9();
    assert_eq!(pump(&mut p, 30_000, N, STEADY, far()), N);
    assert_eq!((p.published(), p.refused()), (N, 0));
    p.finish();
    for k in &mut kids[..2] {
        let r = k.result();
        assert_everything(&k.name, &r, 0, N);
    }
}

/// SIGKILL of the producer (a child process): a consumer sees `Dead` within the stale bound the
/// header's heartbeat interval implies; a new producer process re-creating the bus supersedes the
/// old file, and the consumer follows it to the new epoch, reading only whole records of that
/// epoch from its first one.
#[test]
fn a_killed_producer_is_detected_and_its_successor_followed() {
    let _serial = serial();
    let dir = ShmDir::new("killp");
    let path = dir.bus();
    const HEARTBEAT_MS: u64 = 25;
    // SubscriberOptions::stale_after's default: ten intervals, at least 100 ms.
    let stale = Duration::from_millis(10 * HEARTBEAT_MS);
    let producer = |wait_go, records| ProducerSpec {
        path: path.clone(),
        capacity: 4 << 20,
        heartbeat_ms: HEARTBEAT_MS,
        pre: 100,
        wait_go,
        records,
        pace: Pace { batch: 50, pause_us: 2000 },
    };
    let mut first = Kid::spawn("producer 1", &Role::Producer(producer(false, u64::MAX)));
    let (_, created) = first.expect("created");
    assert_eq!(created[0], 1, "a new bus starts at epoch 1");
    let mut c = consumer(
        "consumer",
        &ConsumerSpec { stale_ms: None, progress_at: Some(2000), follow: true, ..ConsumerSpec::new(&path) },
    );
    c.expect("ready");
    c.expect("progress");
    let killed_at = Instant::now();
    first.kill9();
    let (dead_at, age) = c.expect("dead");
    let age = Duration::from_nanos(age.as_u64().unwrap());
    let detected = dead_at.saturating_duration_since(killed_at);
    eprintln!("producer killed; consumer said dead {detected:?} later, heartbeat {age:?} old");
    assert!(dead_at > killed_at, "not dead before it was killed");
    assert!(age > stale, "dead means a heartbeat older than {stale:?}: {age:?}");
    // A live producer beats every interval; once it is gone the consumer needs `stale` plus at
    // most an interval, plus its own 5 ms waits; one second of slack for a busy machine.
    let bound = stale + Duration::from_millis(HEARTBEAT_MS) + Duration::from_secs(1);
    assert!(detected < bound, "dead detected {detected:?} after the kill; bound {bound:?}");

    // The restarted producer.
    const M: u64 = 20_000;
    let mut second = Kid::spawn("producer 2", &Role::Producer(producer(true, M)));
    let (_, created) = second.expect("created");
    assert_eq!(created[0], 2, "re-creating bumps the epoch");
    assert_eq!(created[1], second.pid());
    assert_eq!(c.expect("superseded").1, 1);
    let (_, reopened) = c.expect("reopened");
    assert_eq!((reopened[0].as_u64(), reopened[1].as_u64()), (Some(2), Some(u64::from(second.pid()))));
    second.send("go");
    assert_eq!(second.expect("done").1, 100 + M);
    assert!(second.wait_for(Duration::from_secs(10)).is_some_and(|s| s.success()));
    let r = c.result();
    assert_eq!(r.epochs.len(), 2, "{r:?}");
    let (old, new) = (&r.epochs[0], &r.epochs[1]);
    assert_eq!(old.epoch, 1);
    assert!(old.received >= 2000 && old.lost == 0 && old.lapped == 0, "{old:?}");
    // The new epoch from its very first record (joined at the oldest), every record checked
    // against epoch 2's content by the consumer.
    assert_eq!((new.epoch, new.first_seq, new.first_lost), (2, Some(0), 0), "{new:?}");
    assert_eq!((new.last_seq, new.received, new.lost, new.lapped), (Some(100 + M - 1), 100 + M, 0, 0), "{new:?}");
    assert_eq!((r.stats.reopens, r.stats.lost, r.stats.corrupt), (1, 0, 0), "{:?}", r.stats);
    assert_eq!(r.stats.received, old.received + new.received);
}

/// A header damaged while everyone runs: a consumer already reading carries on with the mapping
/// it has (its records all intact), while a new open is refused, naming the field.
#[test]
fn a_header_damaged_mid_run_refuses_new_opens_only() {
    use std::os::unix::fs::FileExt;
    let _serial = serial();
    let dir = ShmDir::new("magic");
    let path = dir.bus();
    let mut p =
        Publisher::create(&path, &PublisherOptions { capacity: 1 << 20, ..PublisherOptions::default() }).unwrap();
    let mut c = consumer("consumer", &ConsumerSpec { progress_at: Some(5000), ..ConsumerSpec::new(&path) });
    c.expect_within("ready", LINE_TIMEOUT, || p.tick());
    const N: u64 = 40_000;
    assert_eq!(pump(&mut p, 0, 10_000, STEADY, far()), 10_000);
    c.expect_within("progress", LINE_TIMEOUT, || p.tick());
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(b"NOTABUS!", 0).unwrap();
    let e = Subscriber::open(&path, &SubscriberOptions::default()).unwrap_err().to_string();
    assert!(e.contains("not a weir bus file: magic (offset 0)") && e.contains("NOTABUS!"), "{e}");
    assert_eq!(pump(&mut p, 10_000, N, STEADY, far()), N);
    p.finish();
    let r = c.result();
    assert_everything("consumer", &r, 0, N);
}

/// A consumer process cannot write to the bus: its mapping is read-only and cannot be made
/// writable, and a store through it kills the consumer (SIGSEGV) while the producer and another
/// consumer carry on untouched.
#[test]
fn a_consumer_cannot_write_to_the_bus() {
    let _serial = serial();
    let dir = ShmDir::new("scribble");
    let path = dir.bus();
    let mut p =
        Publisher::create(&path, &PublisherOptions { capacity: 1 << 20, ..PublisherOptions::default() }).unwrap();
    let mut good = consumer("consumer", &ConsumerSpec::new(&path));
    let mut bad = consumer("scribbler", &ConsumerSpec { scribble_at: Some(1000), ..ConsumerSpec::new(&path) });
    good.expect_within("ready", LINE_TIMEOUT, || p.tick());
    bad.expect_within("ready", LINE_TIMEOUT, || p.tick());
    const N: u64 = 40_000;
    assert_eq!(pump(&mut p, 0, 5000, STEADY, far()), 5000);
    let (_, mapping) = bad.expect_within("mapping", LINE_TIMEOUT, || p.tick());
    assert_eq!(mapping[0], "r--s", "the subscriber maps the file shared and read-only");
    let (_, mprotect) = bad.expect_within("mprotect", LINE_TIMEOUT, || p.tick());
    assert_eq!(
        (mprotect[0].as_i64(), mprotect[1].as_i64()),
        (Some(-1), Some(i64::from(libc::EACCES))),
        "made writable?"
    );
    let (_, tail) = bad.expect_within("scribbling", LINE_TIMEOUT, || p.tick());
    assert!(tail.as_u64().is_some_and(|t| t > 0 && t <= p.bytes_written()), "{tail}");
    let mut status = None;
    let deadline = Instant::now() + LINE_TIMEOUT;
    while status.is_none() && Instant::now() < deadline {
        p.tick();
        status = bad.child.try_wait().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let status = status.expect("the scribbler ended");
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}");
    assert!(bad.lines.try_recv().is_err(), "the store did not go through");
    assert_eq!(pump(&mut p, 5000, N, STEADY, far()), N);
    p.finish();
    assert_everything("consumer", &good.result(), 0, N);
    // The header is as the producer left it.
    let sub = Subscriber::open(&path, &SubscriberOptions::default()).unwrap();
    assert_eq!(sub.producer(), ProducerState::Ended);
}

/// A consumer process blocked in `Subscriber::wait` (a futex in its read-only mapping, 30 s
/// timeout) is woken by the producer process: for each record, and for the end of the stream. It
/// was started before the producer and waited for the bus to appear.
#[test]
fn a_waiting_consumer_is_woken_by_the_producer_process() {
    let _serial = serial();
    let dir = ShmDir::new("wake");
    let path = dir.bus();
    const WAIT: Duration = Duration::from_secs(30);
    let mut c =
        consumer("waiter", &ConsumerSpec { wait_ms: WAIT.as_millis() as u64, echo: true, ..ConsumerSpec::new(&path) });
    // The consumer is in `open_wait`: the bus does not exist yet.
    std::thread::sleep(Duration::from_millis(50));
    assert!(!path.exists());
    let mut p =
        Publisher::create(&path, &PublisherOptions { capacity: 64 << 10, ..PublisherOptions::default() }).unwrap();
    c.expect_within("ready", LINE_TIMEOUT, || p.tick());
    // Far less than the wait's timeout: only a wake explains a record seen this soon.
    let soon = Duration::from_secs(5);
    for seq in 0..5 {
        // Long enough for the consumer to block again.
        let until = Instant::now() + Duration::from_millis(100);
        while Instant::now() < until {
            p.tick();
            std::thread::sleep(Duration::from_millis(1));
        }
        let published = Instant::now();
        assert_eq!(record(seq, p.epoch()).publish(&mut p), seq);
        p.tick();
        let (at, got) = c.expect_within("got", WAIT / 2, || p.tick());
        assert_eq!(got, seq);
        let waited = at.saturating_duration_since(published);
        assert!(waited < soon, "record {seq} seen {waited:?} after it was published");
    }
    std::thread::sleep(Duration::from_millis(100));
    let ended = Instant::now();
    p.finish();
    let r = c.result();
    assert!(ended.elapsed() < soon + Duration::from_secs(10), "the end woke the waiter: {:?}", ended.elapsed());
    assert_everything("waiter", &r, 0, 5);
}

/// A producer process that stops (SIGSTOP: hung, not dead) is reported `Dead` once its heartbeat
/// is stale, and the consumer picks up where it was, without a gap, when it resumes (SIGCONT).
#[test]
fn a_stopped_producer_is_dead_until_it_resumes() {
    let _serial = serial();
    let dir = ShmDir::new("stop");
    let path = dir.bus();
    const N: u64 = 20_000;
    let spec = ProducerSpec {
        path: path.clone(),
        capacity: 4 << 20,
        heartbeat_ms: 10,
        pre: 0,
        wait_go: true,
        records: N,
        pace: Pace { batch: 50, pause_us: 2000 },
    };
    let mut p = Kid::spawn("producer", &Role::Producer(spec));
    p.expect("created");
    let mut c = consumer(
        "consumer",
        &ConsumerSpec { stale_ms: Some(200), progress_at: Some(3000), follow: true, ..ConsumerSpec::new(&path) },
    );
    c.expect("ready");
    p.send("go");
    c.expect("progress");
    let pid = p.pid() as libc::pid_t;
    // SAFETY: signals a child this test started and still holds (not yet reaped).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let (_, age) = c.expect("dead");
    assert!(age.as_u64().is_some_and(|a| a > 200_000_000), "{age}");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let (_, resumed) = c.expect("alive");
    // The consumer had all of 0..3000 when the producer was stopped.
    assert!(resumed.as_u64().is_some_and(|s| (3000..N).contains(&s)), "{resumed}");
    assert_eq!(p.expect("done").1, N);
    let r = c.result();
    assert_everything("consumer", &r, 0, N);
    assert!(p.wait_for(Duration::from_secs(10)).is_some_and(|s| s.success()));
}

/// A consumer behind a producer that is killed and restarted still has records of the old
/// epoch to read. A loop that asks `producer()` each turn must not be told `Superseded` before it
/// has read them (it once was, and `reopen()` then dropped them uncounted): `received + lost` is
/// what both epochs published.
#[test]
fn records_left_in_a_superseded_epoch_are_read_or_counted_as_lost() {
    let _serial = serial();
    let dir = ShmDir::new("backlog");
    let path = dir.bus();
    const K: u64 = 1000;
    const M: u64 = 500;
    // The first producer publishes K records, then keeps its heartbeat (waiting for a `go` that
    // never comes) until it is killed.
    let mut first = Kid::spawn(
        "producer 1",
        &Role::Producer(ProducerSpec {
            path: path.clone(),
            capacity: 1 << 20,
            heartbeat_ms: 10,
            pre: K,
            wait_go: true,
            records: 0,
            pace: BURST,
        }),
    );
    first.expect("created");
    let opts = SubscriberOptions { join: Join::Oldest, ..SubscriberOptions::default() };
    let mut sub = Subscriber::open(&path, &opts).unwrap();
    first.kill9();
    let mut second =
        Publisher::create(&path, &PublisherOptions { capacity: 1 << 20, ..PublisherOptions::default() }).unwrap();
    assert_eq!(pump(&mut second, 0, M, BURST, far()), M);
    second.finish();
    // A consumer loop that checks on its producer every turn.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "{:?}", sub.stats());
        match sub.producer() {
            ProducerState::Superseded => {
                sub.reopen().unwrap().expect("the new file");
            }
            ProducerState::Ended => break,
            _ => {}
        }
        if let Next::Corrupt { what, .. } = sub.poll() {
            panic!("{what}");
        }
    }
    let s = sub.stats();
    assert_eq!(s.reopens, 1);
    assert_eq!(s.received + s.lost, K + M, "every record of both epochs read or counted lost: {s:?}");
}
