//! `weir bench bus`: publish → consumer-read latency and throughput of the shared-memory bus,
//! cross-process and cross-core, with two baselines in the same run.
//!
//! The command is the producer; it starts itself again (`--role consumer`, hidden) as the
//! consumer process, pinned to another CPU. Open loop: record `i` is due at `start + i / rate`;
//! the producer spins until then and stamps the *due* instant (raw TSC) into the record's
//! `ts_recv` (its index in `hd.ts_event`), then sends it, late or not, so a stall of the
//! producer or of the transport shows in the figures instead of slowing the offered load
//! (no coordinated omission). The consumer reads the TSC as soon as a record is in its hands and
//! records `now - due` in an HdrHistogram (1 ns .. 10 s, 3 digits), which it sends back on its
//! stdout (V2 serialised, hex) at the end of the stream. At `max` rate each record is stamped
//! just before it is sent: the figure is then the queueing in the transport, and the row's rates
//! are the throughput.
//!
//! The raw TSC is one counter for every core and process when the CPU has an invariant TSC
//! (`constant_tsc` and `nonstop_tsc` in `/proc/cpuinfo`), which the command checks and prints.
//! A receive that reads an earlier TSC than the stamp (cores' TSCs out of step) is counted as
//! `skew` and not recorded.
//!
//! Before the cases, the machine's floors: two back-to-back clock reads; one cache line bounced
//! between the two CPUs (round trip / 2: the least any transport can take to hand a record
//! over; on a VM it moves with where the hypervisor places the vCPUs); and how often a thread
//! spinning on each CPU is interrupted for over 1 µs (interrupts, other tasks, the hypervisor),
//! which is what the tails are made of on a machine without isolated cores.
//!
//! Transports, each carrying whole DBN records (48-byte trades, 80-byte MBP-1, 368-byte MBP-10):
//! - `bus`: `weir::bus` (a file in `/dev/shm`, `Publisher` here, `Subscriber` in the consumer
//!   process busy-polling `poll`); the producer calls `Publisher::tick` after each paced record,
//!   as a poll loop does once per turn (heartbeat, and a `futex` wake at most every 200 µs);
//! - `spsc`: an in-process SPSC ring (`rtrb`) between two pinned threads: the floor of handing a
//!   record to another core, with none of a broadcast's bookkeeping (and back-pressure instead
//!   of loss: the producer waits when it is full);
//! - `uds`: a Unix-domain datagram socket to the consumer process, which busy-polls a
//!   non-blocking `recv`; `uds-block` is the same with a blocking `recv` (a wake-up per record).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::mem::offset_of;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dbn::{Mbp1Msg, Mbp10Msg, TradeMsg};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use weir::bus::{Next, ProducerState, Publisher, PublisherOptions, Subscriber, SubscriberOptions};

/// A record's `ts_recv` that marks a warm-up record (sent, not measured).
const WARMUP: u64 = 0;
/// A record's `ts_recv` that marks the end of the stream (transports without an end of their own).
const END: u64 = u64::MAX;
/// Ticks from the start call to the first record's due instant.
const LEAD: Duration = Duration::from_millis(1);

#[derive(clap::Args, Debug)]
pub(crate) struct BusArgs {
    /// Transports, in the order run for each case.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Transport::DEFAULT)]
    transports: Vec<Transport>,
    /// Record sizes: 48 (trade), 80 (mbp-1), 368 (mbp-10); names work too.
    #[arg(long, value_delimiter = ',', value_parser = parse_kind, default_value = "48,80,368")]
    sizes: Vec<Kind>,
    /// Offered rates in records per second (`100000`, `100k`, `1M`), or `max` (throughput).
    #[arg(long, value_delimiter = ',', value_parser = parse_rate, default_value = "100k,1M,max")]
    rates: Vec<Rate>,
    /// Measured records per case (after the warm-up).
    #[arg(long, default_value_t = 500_000)]
    records: u64,
    /// Unmeasured records sent first, at the case's rate (default: one lap of the ring, 1,000 to
    /// 20,000): first touches of the ring's pages and the caches' fill are not measured.
    #[arg(long)]
    warmup: Option<u64>,
    /// Runs of every case (interleaved: all transports of one case, then again); the summary
    /// gives the median of each figure.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Ring size in bytes (the bus's capacity; the SPSC ring gets as many records as fit).
    #[arg(long, default_value_t = 1 << 20)]
    capacity: u64,
    /// The bus producer's futex wake interval in µs (`PublisherOptions::wake_interval`; 0: never
    /// wake). Default: the bus's default.
    #[arg(long, value_name = "US")]
    bus_wake_us: Option<u64>,
    /// The producer's CPU.
    #[arg(long, default_value_t = 0)]
    producer_cpu: u32,
    /// The consumer's CPU.
    #[arg(long, default_value_t = 1)]
    consumer_cpu: u32,
    /// Consumers re-poll at once instead of executing `pause` between empty polls (a PAUSE loop
    /// may make a KVM guest's vCPU exit to the hypervisor: pause-loop exiting).
    #[arg(long)]
    no_pause: bool,
    /// A short run: the first record size only, rates 100k and max, a 200-record warm-up.
    #[arg(long)]
    quick: bool,
    /// Write every run and the medians as JSON.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Internal: the process's part (the consumer is this command started again).
    #[arg(long, value_enum, hide = true)]
    role: Option<Role>,
    /// Internal: the consumer's end of the transport.
    #[arg(long, hide = true)]
    path: Option<PathBuf>,
    /// Internal: the consumer gives up after this many seconds.
    #[arg(long, hide = true, default_value_t = 120.0)]
    timeout_s: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Role {
    Consumer,
}

/// What carries the records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub(crate) enum Transport {
    /// The shared-memory bus (`weir::bus`), to another process.
    Bus,
    /// In-process SPSC ring (`rtrb`) between two pinned threads.
    Spsc,
    /// Unix-domain datagram socket to another process, busy-polled non-blocking `recv`.
    Uds,
    /// The same, blocking `recv`.
    UdsBlock,
}

impl Transport {
    const DEFAULT: [Transport; 3] = [Transport::Bus, Transport::Spsc, Transport::Uds];

    fn name(self) -> &'static str {
        match self {
            Transport::Bus => "bus",
            Transport::Spsc => "spsc",
            Transport::Uds => "uds",
            Transport::UdsBlock => "uds-block",
        }
    }
}

/// Which record is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Trade,
    Mbp1,
    Mbp10,
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::Trade => size_of::<TradeMsg>(),
            Kind::Mbp1 => size_of::<Mbp1Msg>(),
            Kind::Mbp10 => size_of::<Mbp10Msg>(),
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Kind::Trade => "trade",
            Kind::Mbp1 => "mbp1",
            Kind::Mbp10 => "mbp10",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B {}", self.size(), self.flag())
    }
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "48" | "trade" | "trades" => Ok(Kind::Trade),
        "80" | "mbp1" | "mbp-1" => Ok(Kind::Mbp1),
        "368" | "mbp10" | "mbp-10" => Ok(Kind::Mbp10),
        _ => Err(format!("{s:?}: a record size: 48 (trade), 80 (mbp1) or 368 (mbp10)")),
    }
}

/// An offered rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rate {
    /// Records per second, open loop.
    Per(u64),
    /// As fast as the producer sends.
    Max,
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Rate::Max => f.write_str("max"),
            Rate::Per(r) if r >= 1_000_000 && r.is_multiple_of(1_000_000) => write!(f, "{}M/s", r / 1_000_000),
            Rate::Per(r) if r >= 1_000 && r.is_multiple_of(1_000) => write!(f, "{}k/s", r / 1_000),
            Rate::Per(r) => write!(f, "{r}/s"),
        }
    }
}

fn parse_rate(s: &str) -> Result<Rate, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    let (num, mult) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 1_000),
        Some(b'M') => (&t[..t.len() - 1], 1_000_000),
        _ => (t, 1),
    };
    match num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)) {
        Some(r) if (1..=1_000_000_000).contains(&r) => Ok(Rate::Per(r)),
        _ => Err(format!("{s:?}: records per second from 1 to 1G (`100000`, `100k`, `1M`) or `max`")),
    }
}

/// A DBN record the harness sends: a place for the due instant.
trait BenchRecord:
    dbn::HasRType + dbn::Record<Header = dbn::RecordHeader> + AsRef<[u8]> + Copy + Default + Send + 'static
{
    /// Offset of `ts_recv` in the record's bytes.
    const TS_OFFSET: usize;
    fn stamp(&mut self, index: u64, ts: u64);
    fn ts(&self) -> u64;
}

macro_rules! bench_record {
    ($($t:ty),*) => {$(
        impl BenchRecord for $t {
            const TS_OFFSET: usize = offset_of!($t, ts_recv);
            #[inline(always)]
            fn stamp(&mut self, index: u64, ts: u64) {
                self.hd.ts_event = index;
                self.ts_recv = ts;
            }
            #[inline(always)]
            fn ts(&self) -> u64 {
                self.ts_recv
            }
        }
    )*};
}
bench_record!(TradeMsg, Mbp1Msg, Mbp10Msg);

/// `ts_recv` of a record received as bytes.
#[inline(always)]
fn ts_in<R: BenchRecord>(bytes: &[u8]) -> Option<u64> {
    let b = bytes.get(R::TS_OFFSET..R::TS_OFFSET + 8)?;
    <[u8; 8]>::try_from(b).ok().map(u64::from_ne_bytes)
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns .. 10 s, 3 significant digits, as `weir bench latency`.
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("static bounds are valid")
}

/// What the consumer saw.
#[derive(Debug)]
struct Received {
    histogram: Histogram<u64>,
    /// Measured records received.
    received: u64,
    /// Received with a TSC earlier than their stamp (not recorded).
    skew: u64,
    /// ns from the first measured record's arrival to the last one's.
    span_ns: u64,
    /// The transport's own count of lost records (the bus's subscriber stats; 0 otherwise).
    lost_stats: u64,
    /// Times the consumer was lapped (the bus only).
    laps: u64,
}

/// The consumer's per-record bookkeeping.
struct Recorder {
    clock: quanta::Clock,
    histogram: Histogram<u64>,
    received: u64,
    skew: u64,
    first: u64,
    last: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    More,
    End,
}

impl Recorder {
    fn new(clock: quanta::Clock) -> Self {
        Recorder { clock, histogram: new_histogram(), received: 0, skew: 0, first: 0, last: 0 }
    }

    /// A record stamped `ts` arrived at `now`.
    #[inline(always)]
    fn on(&mut self, ts: u64, now: u64) -> Flow {
        if ts == END {
            return Flow::End;
        }
        if ts == WARMUP {
            return Flow::More;
        }
        self.received += 1;
        if self.first == 0 {
            self.first = now;
        }
        self.last = now;
        if now < ts {
            self.skew += 1;
        } else {
            self.histogram.saturating_record(self.clock.delta_as_nanos(ts, now).max(1));
        }
        Flow::More
    }

    fn finish(self) -> Received {
        let span_ns = self.clock.delta_as_nanos(self.first, self.last);
        Received {
            histogram: self.histogram,
            received: self.received,
            skew: self.skew,
            span_ns,
            lost_stats: 0,
            laps: 0,
        }
    }
}

/// Whether consumers spin with `pause` (`spin_loop`) between empty polls: see `--no-pause`.
static PAUSE: AtomicBool = AtomicBool::new(true);

/// Between two empty polls of a consumer.
#[inline(always)]
fn relax() {
    if PAUSE.load(Ordering::Relaxed) {
        std::hint::spin_loop();
    }
}

/// Gives up a busy-poll loop after a deadline (the clock is read every 64k empty polls).
struct Deadline {
    at: Instant,
    polls: u32,
}

impl Deadline {
    fn new(timeout: Duration) -> Self {
        Deadline { at: Instant::now() + timeout, polls: 0 }
    }

    #[inline(always)]
    fn passed(&mut self) -> bool {
        self.polls = self.polls.wrapping_add(1);
        self.polls.is_multiple_of(1 << 16) && Instant::now() >= self.at
    }
}

/// What the producer did.
#[derive(Debug, Default)]
struct Sent {
    /// Measured records sent.
    sent: u64,
    /// ns from the first measured send to the last one's.
    span_ns: u64,
    /// Records sent later than due by more than 1 µs (the producer or the transport stalled).
    late: u64,
}

/// Sends `warmup` unmeasured records and then `n` measured ones at `rate`, then the end marker
/// when `end_marker`. `send` hands one record to the transport.
fn produce<R: BenchRecord>(
    clock: &quanta::Clock,
    ticks_per_ns: f64,
    rate: Rate,
    warmup: u64,
    n: u64,
    end_marker: bool,
    mut send: impl FnMut(&R) -> Result<(), String>,
) -> Result<Sent, String> {
    let mut rec = R::default();
    let period = match rate {
        Rate::Per(r) => Some(1e9 / r as f64 * ticks_per_ns),
        Rate::Max => None,
    };
    let late_ticks = (1_000.0 * ticks_per_ns) as u64;
    let start = clock.raw() + (LEAD.as_nanos() as f64 * ticks_per_ns) as u64;
    let (mut first, mut last, mut late) = (0, 0, 0);
    for i in 0..warmup + n {
        if i == warmup {
            late = 0;
        }
        let ts = match period {
            Some(p) => {
                let due = start + (i as f64 * p) as u64;
                let mut now = clock.raw();
                while now < due {
                    std::hint::spin_loop();
                    now = clock.raw();
                }
                if now - due > late_ticks {
                    late += 1;
                }
                due
            }
            None => clock.raw(),
        };
        let measured = i >= warmup;
        rec.stamp(i, if measured { ts.max(1) } else { WARMUP });
        send(&rec)?;
        if i == warmup {
            first = ts;
        }
        last = ts;
    }
    if end_marker {
        rec.stamp(warmup + n, END);
        send(&rec)?;
    }
    Ok(Sent { sent: n, span_ns: clock.delta_as_nanos(first, last), late })
}

/// One run of one case.
#[derive(Debug)]
struct Run {
    transport: Transport,
    kind: Kind,
    rate: Rate,
    sent: Sent,
    got: Received,
}

impl Run {
    fn figures(&self) -> Figures {
        let h = &self.got.histogram;
        let q = |p: f64| h.value_at_quantile(p);
        let per_s = |n: u64, ns: u64| if ns == 0 { 0.0 } else { n.saturating_sub(1) as f64 * 1e9 / ns as f64 };
        Figures {
            count: h.len(),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: h.max(),
            sent_per_s: per_s(self.sent.sent, self.sent.span_ns),
            recv_per_s: per_s(self.got.received, self.got.span_ns),
            lost: self.sent.sent.saturating_sub(self.got.received),
            late: self.sent.late,
            skew: self.got.skew,
        }
    }
}

/// The figures of a run (or the medians of several).
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    count: u64,
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
    sent_per_s: f64,
    recv_per_s: f64,
    lost: u64,
    late: u64,
    skew: u64,
}

const TABLE_HEADER: &str = "transport  record      rate       count     p50     p90     p99   p99.9       max     sent/s     recv/s     lost     late   (ns)";

impl Figures {
    fn row(&self, transport: Transport, kind: Kind, rate: Rate) -> String {
        format!(
            "{:<10} {:<11} {:<7} {:>9} {:>7} {:>7} {:>7} {:>7} {:>9} {:>10} {:>10} {:>8} {:>8}",
            transport.name(),
            kind.to_string(),
            rate.to_string(),
            self.count,
            self.p50,
            self.p90,
            self.p99,
            self.p999,
            self.max,
            si(self.sent_per_s),
            si(self.recv_per_s),
            self.lost,
            self.late,
        )
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "p99_9": self.p999,
            "max": self.max,
            "sent_per_s": self.sent_per_s,
            "recv_per_s": self.recv_per_s,
            "lost": self.lost,
            "late": self.late,
            "skew": self.skew,
        })
    }

    /// The lower median of each figure over `runs`.
    fn median(runs: &[Figures]) -> Figures {
        fn med<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            v[(v.len() - 1) / 2]
        }
        if runs.is_empty() {
            return Figures::default();
        }
        let f = |g: fn(&Figures) -> u64| med(runs.iter().map(g).collect());
        let x = |g: fn(&Figures) -> f64| med(runs.iter().map(g).collect());
        Figures {
            count: f(|r| r.count),
            p50: f(|r| r.p50),
            p90: f(|r| r.p90),
            p99: f(|r| r.p99),
            p999: f(|r| r.p999),
            max: f(|r| r.max),
            sent_per_s: x(|r| r.sent_per_s),
            recv_per_s: x(|r| r.recv_per_s),
            lost: f(|r| r.lost),
            late: f(|r| r.late),
            skew: f(|r| r.skew),
        }
    }
}

/// `1.23M`, `456.7k`.
fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// Whether `/proc/cpuinfo` shows an invariant TSC, and the flags found.
fn tsc_flags() -> (bool, String) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    let found: Vec<&str> = ["constant_tsc", "nonstop_tsc", "tsc_reliable"].into_iter().filter(|f| has(f)).collect();
    let ok = has("constant_tsc") && has("nonstop_tsc");
    (ok, if found.is_empty() { "none".into() } else { found.join(" ") })
}

/// The machine's floor for handing anything to another core: one cache line bounced between
/// the two CPUs (`iters` round trips); round trip / 2, in ns.
fn handoff_floor(clock: &quanta::Clock, consumer_cpu: u32, iters: u64) -> Result<Histogram<u64>, String> {
    /// One line of its own (128 bytes: the adjacent-line prefetcher pairs lines on x86).
    #[repr(align(128))]
    struct Line(std::sync::atomic::AtomicU64);
    let line = Line(std::sync::atomic::AtomicU64::new(0));
    let mut h = new_histogram();
    std::thread::scope(|s| {
        let peer = s.spawn(|| {
            weir_hw::pin::pin_current_thread(consumer_cpu)
                .map_err(|e| format!("--consumer-cpu {consumer_cpu}: {e}"))?;
            for k in 0..iters {
                while line.0.load(Ordering::Acquire) != 2 * k + 1 {
                    std::hint::spin_loop();
                }
                line.0.store(2 * k + 2, Ordering::Release);
            }
            Ok::<(), String>(())
        });
        for k in 0..iters {
            let t0 = clock.raw();
            line.0.store(2 * k + 1, Ordering::Release);
            while line.0.load(Ordering::Acquire) != 2 * k + 2 {
                if peer.is_finished() {
                    break;
                }
                std::hint::spin_loop();
            }
            let t1 = clock.raw();
            h.saturating_record((clock.delta_as_nanos(t0, t1) / 2).max(1));
        }
        peer.join().map_err(|_| "the ping-pong thread panicked".to_string())?
    })?;
    Ok(h)
}

/// Interruptions of a spinning thread on `cpu` over `over` (gaps over 1 µs between two clock
/// reads: interrupts, other tasks, the hypervisor): per second, and the longest in ns.
fn interruptions(clock: &quanta::Clock, cpu: u32, over: Duration) -> Result<(f64, u64, f64), String> {
    weir_hw::pin::pin_current_thread(cpu).map_err(|e| format!("CPU {cpu}: {e}"))?;
    let gap = (1_000.0 * ticks_per_ns(clock, Duration::from_millis(5))) as u64;
    let start = Instant::now();
    let (mut n, mut longest, mut lost) = (0u64, 0u64, 0u64);
    let mut last = clock.raw();
    while start.elapsed() < over {
        for _ in 0..1024 {
            let now = clock.raw();
            if now - last > gap {
                let ns = clock.delta_as_nanos(last, now);
                n += 1;
                lost += ns;
                longest = longest.max(ns);
            }
            last = now;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((n as f64 / secs, longest, lost as f64 / (secs * 1e9)))
}

/// Raw clock ticks per ns, measured over `over`.
fn ticks_per_ns(clock: &quanta::Clock, over: Duration) -> f64 {
    let (r0, t0) = (clock.raw(), Instant::now());
    while t0.elapsed() < over {
        std::hint::spin_loop();
    }
    let (r1, t1) = (clock.raw(), Instant::now());
    (r1 - r0) as f64 / (t1 - t0).as_nanos().max(1) as f64
}

pub(crate) fn run(args: BusArgs) -> ExitCode {
    PAUSE.store(!args.no_pause, Ordering::Relaxed);
    if args.role == Some(Role::Consumer) {
        return consumer_main(&args);
    }
    match producer_main(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("weir bench bus: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("weir bench bus: {e}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    /// Bad arguments or an unusable machine setup (exit 2).
    Usage(String),
    /// The benchmark failed (exit 1).
    Run(String),
}

/// The cases, in the order run.
struct Plan {
    kinds: Vec<Kind>,
    rates: Vec<Rate>,
    transports: Vec<Transport>,
    repeat: u32,
}

fn producer_main(args: &BusArgs) -> Result<(), Failure> {
    if args.records == 0 {
        return Err(Failure::Usage("--records 0: at least one record per case".into()));
    }
    if args.repeat == 0 {
        return Err(Failure::Usage("--repeat 0: at least one run per case".into()));
    }
    if !args.capacity.is_power_of_two() || args.capacity < 4096 || args.capacity > 1 << 34 {
        return Err(Failure::Usage(format!("--capacity {}: a power of two from 4096 to 2^34 bytes", args.capacity)));
    }
    if args.transports.is_empty() || args.sizes.is_empty() || args.rates.is_empty() {
        return Err(Failure::Usage("--transports, --sizes and --rates each need a value".into()));
    }
    let mut plan = Plan {
        kinds: dedup(&args.sizes),
        rates: dedup(&args.rates),
        transports: dedup(&args.transports),
        repeat: args.repeat,
    };
    if args.quick {
        plan.kinds.truncate(1);
        plan.rates = vec![Rate::Per(100_000), Rate::Max];
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    weir_hw::pin::pin_current_thread(args.producer_cpu)
        .map_err(|e| Failure::Usage(format!("--producer-cpu {}: {e}", args.producer_cpu)))?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Run(format!("cannot find this program to start the consumer: {e}")))?;

    let clock = quanta::Clock::new();
    let tpn = ticks_per_ns(&clock, Duration::from_millis(if args.quick { 20 } else { 100 }));
    let (invariant, flags) = tsc_flags();
    let tsc = clock.delta_as_nanos(0, 1 << 40) != 1 << 40;
    println!(
        "clock: {} ({tpn:.3} ticks/ns); /proc/cpuinfo: {flags}{}",
        if tsc { "raw TSC" } else { "CLOCK_MONOTONIC (quanta found no invariant TSC)" },
        if invariant || !tsc {
            ": one clock for every core and process"
        } else {
            ": NO invariant TSC: cross-core figures may be skewed"
        }
    );
    let floor = weir::harness::clock_floor(200_000);
    println!(
        "clock floor (back-to-back reads): p50 {} ns, p99 {} ns",
        floor.histogram.value_at_quantile(0.5),
        floor.histogram.value_at_quantile(0.99)
    );
    let handoff =
        handoff_floor(&clock, args.consumer_cpu, if args.quick { 10_000 } else { 200_000 }).map_err(Failure::Usage)?;
    println!(
        "cross-core handoff floor (one cache line, CPU {} <-> {}, round trip / 2): p50 {} ns, p99 {} ns",
        args.producer_cpu,
        args.consumer_cpu,
        handoff.value_at_quantile(0.5),
        handoff.value_at_quantile(0.99)
    );
    let over = Duration::from_millis(if args.quick { 20 } else { 500 });
    let noise = std::thread::scope(|s| {
        let c = s.spawn(|| interruptions(&clock, args.consumer_cpu, over));
        let p = interruptions(&clock, args.producer_cpu, over);
        (p, c.join().unwrap_or_else(|_| Err("the noise probe panicked".into())))
    });
    let mut noise_json = Vec::new();
    for (cpu, r) in [(args.producer_cpu, noise.0), (args.consumer_cpu, noise.1)] {
        let (per_s, longest, share) = r.map_err(Failure::Usage)?;
        println!(
            "CPU {cpu} interruptions over 1 us while spinning: {per_s:.0}/s, longest {:.1} us, {:.2}% of the time",
            longest as f64 / 1e3,
            share * 100.0
        );
        noise_json.push(serde_json::json!({"cpu": cpu, "per_s": per_s, "longest_ns": longest, "share": share}));
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let one: f64 = load.split_whitespace().next().and_then(|x| x.parse().ok()).unwrap_or(0.0);
        println!(
            "load average {one:.2} on {cpus} CPUs{}",
            if one >= 0.5 { ": other work is running; expect it in the tails (see `late`)" } else { "" }
        );
    }
    let cross = if args.producer_cpu == args.consumer_cpu { "SAME CPU: not cross-core" } else { "cross-core" };
    println!(
        "producer on CPU {}, consumer on CPU {} ({cross}); ring {} bytes; {} measured records per case{}",
        args.producer_cpu,
        args.consumer_cpu,
        args.capacity,
        args.records,
        if plan.repeat > 1 { format!(", {} runs each", plan.repeat) } else { String::new() }
    );
    println!("latency: due instant (open loop) -> the consumer holds the record; sent/s, recv/s: achieved rates;");
    println!("lost: measured records never received; late: records sent over 1 us after due (producer held up)");
    println!();
    println!("run {TABLE_HEADER}");

    let mut runs: Vec<Run> = Vec::new();
    for &kind in &plan.kinds {
        for &rate in &plan.rates {
            for rep in 0..plan.repeat {
                for &transport in &plan.transports {
                    let warmup = args.warmup.unwrap_or_else(|| {
                        if args.quick { 200 } else { (args.capacity / (kind.size() as u64 + 16)).clamp(1_000, 20_000) }
                    });
                    let case = Case {
                        exe: &exe,
                        clock: &clock,
                        ticks_per_ns: tpn,
                        transport,
                        kind,
                        rate,
                        warmup,
                        records: args.records,
                        capacity: args.capacity,
                        producer_cpu: args.producer_cpu,
                        bus_wake_us: args.bus_wake_us,
                        consumer_cpu: args.consumer_cpu,
                    };
                    let run = case
                        .run()
                        .map_err(|e| Failure::Run(format!("{} {} at {}: {e}", transport.name(), kind, rate)))?;
                    println!("{:<3} {}", rep + 1, run.figures().row(transport, kind, rate));
                    runs.push(run);
                }
            }
        }
    }

    // Medians per case.
    let mut by_case: BTreeMap<(Kind, Rate, Transport), Vec<Figures>> = BTreeMap::new();
    for r in &runs {
        by_case.entry((r.kind, r.rate, r.transport)).or_default().push(r.figures());
    }
    let medians: BTreeMap<(Kind, Rate, Transport), Figures> =
        by_case.iter().map(|(k, v)| (*k, Figures::median(v))).collect();
    if plan.repeat > 1 {
        println!();
        println!("median of {} runs", plan.repeat);
        println!("    {TABLE_HEADER}");
        for &kind in &plan.kinds {
            for &rate in &plan.rates {
                for &t in &plan.transports {
                    if let Some(f) = medians.get(&(kind, rate, t)) {
                        println!("    {}", f.row(t, kind, rate));
                    }
                }
            }
        }
    }
    print_ratios(&plan, &medians);

    if let Some(path) = &args.json {
        let runs_json: Vec<_> = runs
            .iter()
            .map(|r| {
                let mut v = r.figures().json();
                v["transport"] = r.transport.name().into();
                v["record_bytes"] = r.kind.size().into();
                v["rate"] = r.rate.to_string().into();
                v["stats_lost"] = r.got.lost_stats.into();
                v["laps"] = r.got.laps.into();
                v
            })
            .collect();
        let medians_json: Vec<_> = medians
            .iter()
            .map(|((kind, rate, t), f)| {
                let mut v = f.json();
                v["transport"] = t.name().into();
                v["record_bytes"] = kind.size().into();
                v["rate"] = rate.to_string().into();
                v
            })
            .collect();
        let doc = serde_json::json!({
            "clock": { "tsc": tsc, "ticks_per_ns": tpn, "cpuinfo": flags,
                       "floor_p50": floor.histogram.value_at_quantile(0.5) },
            "handoff": { "p50": handoff.value_at_quantile(0.5), "p99": handoff.value_at_quantile(0.99) },
            "interruptions": noise_json,
            "bus_wake_us": args.bus_wake_us,
            "producer_cpu": args.producer_cpu,
            "consumer_cpu": args.consumer_cpu,
            "capacity": args.capacity,
            "runs": runs_json,
            "medians": medians_json,
        });
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(|e| Failure::Run(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

fn dedup<T: Copy + PartialEq>(v: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    for &x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// Ratios of the medians: the first transport given over each other one.
fn print_ratios(plan: &Plan, medians: &BTreeMap<(Kind, Rate, Transport), Figures>) {
    let Some((&subject, others)) = plan.transports.split_first() else { return };
    if others.is_empty() {
        return;
    }
    println!();
    println!("{} / baseline, p50 and p99 (medians)", subject.name());
    for &kind in &plan.kinds {
        for &rate in &plan.rates {
            let Some(s) = medians.get(&(kind, rate, subject)) else { continue };
            let mut line = format!("    {:<11} {:<7}", kind.to_string(), rate.to_string());
            for &o in others {
                if let Some(b) = medians.get(&(kind, rate, o)) {
                    let r = |a: u64, b: u64| if b == 0 { f64::NAN } else { a as f64 / b as f64 };
                    line += &format!("  vs {}: p50 {:.2}x p99 {:.2}x", o.name(), r(s.p50, b.p50), r(s.p99, b.p99));
                    if let Rate::Per(offered) = rate
                        && b.recv_per_s < 0.95 * offered as f64
                    {
                        line += " (overloaded: it does not keep up)";
                    }
                }
            }
            println!("{line}");
        }
    }
}

/// One case to run.
struct Case<'a> {
    exe: &'a Path,
    clock: &'a quanta::Clock,
    ticks_per_ns: f64,
    transport: Transport,
    kind: Kind,
    rate: Rate,
    warmup: u64,
    records: u64,
    capacity: u64,
    producer_cpu: u32,
    consumer_cpu: u32,
    bus_wake_us: Option<u64>,
}

impl Case<'_> {
    fn run(&self) -> Result<Run, String> {
        let (sent, got) = match self.kind {
            Kind::Trade => self.run_as::<TradeMsg>()?,
            Kind::Mbp1 => self.run_as::<Mbp1Msg>()?,
            Kind::Mbp10 => self.run_as::<Mbp10Msg>()?,
        };
        Ok(Run { transport: self.transport, kind: self.kind, rate: self.rate, sent, got })
    }

    fn run_as<R: BenchRecord>(&self) -> Result<(Sent, Received), String> {
        match self.transport {
            Transport::Bus => self.bus::<R>(),
            Transport::Spsc => self.spsc::<R>(),
            Transport::Uds | Transport::UdsBlock => self.uds::<R>(),
        }
    }

    /// How long the consumer waits before giving up.
    fn timeout(&self) -> Duration {
        let total = (self.warmup + self.records) as f64;
        let secs = match self.rate {
            Rate::Per(r) => total / r as f64,
            Rate::Max => total * 1e-6,
        };
        Duration::from_secs_f64(30.0 + 4.0 * secs)
    }

    fn produce<R: BenchRecord>(
        &self,
        end_marker: bool,
        send: impl FnMut(&R) -> Result<(), String>,
    ) -> Result<Sent, String> {
        produce(self.clock, self.ticks_per_ns, self.rate, self.warmup, self.records, end_marker, send)
    }

    fn bus<R: BenchRecord>(&self) -> Result<(Sent, Received), String> {
        let dir = Path::new("/dev/shm");
        let dir = if dir.is_dir() { dir.to_owned() } else { std::env::temp_dir() };
        let path = dir.join(format!("weir-bench-{}", std::process::id()));
        let mut opts = PublisherOptions {
            capacity: self.capacity,
            first_touch_cpu: Some(self.producer_cpu),
            ..PublisherOptions::default()
        };
        if let Some(us) = self.bus_wake_us {
            opts.wake_interval = (us > 0).then(|| Duration::from_micros(us));
        }
        // The bus's creation lock (`PATH.lock`) stays after the publisher: ours to remove too.
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        let _lock_cleanup = RemoveOnDrop(lock.into());
        let mut publisher = Publisher::create(&path, &opts).map_err(|e| e.to_string())?;
        let cleanup = RemoveOnDrop(path.clone());
        let mut child = self.spawn_consumer(&path)?;
        // Starting the consumer took a while: a fresh heartbeat before the first record.
        publisher.heartbeat();
        let paced = matches!(self.rate, Rate::Per(_));
        let sent = self.produce::<R>(false, |r| {
            if publisher.publish(r) == u64::MAX {
                return Err(format!("{}: publish refused a {}-byte record", path.display(), size_of::<R>()));
            }
            if paced {
                publisher.tick();
            }
            Ok(())
        });
        publisher.finish();
        let got = child.collect(sent.is_ok());
        drop(cleanup);
        Ok((sent?, got?))
    }

    fn spsc<R: BenchRecord>(&self) -> Result<(Sent, Received), String> {
        let slots = (self.capacity as usize / size_of::<R>()).max(2);
        let (mut tx, mut rx) = rtrb::RingBuffer::<R>::new(slots);
        let ready = AtomicBool::new(false);
        let failed = AtomicBool::new(false);
        let clock = self.clock.clone();
        let (cpu, timeout) = (self.consumer_cpu, self.timeout());
        std::thread::scope(|s| {
            let consumer = std::thread::Builder::new()
                .name("bench-consumer".into())
                .spawn_scoped(s, || {
                    let result = (|| {
                        weir_hw::pin::pin_current_thread(cpu).map_err(|e| format!("--consumer-cpu {cpu}: {e}"))?;
                        let mut rec = Recorder::new(clock);
                        let mut deadline = Deadline::new(timeout);
                        ready.store(true, Ordering::Release);
                        loop {
                            match rx.pop() {
                                Ok(r) => {
                                    let now = rec.clock.raw();
                                    if rec.on(r.ts(), now) == Flow::End {
                                        break;
                                    }
                                }
                                Err(_) => {
                                    if deadline.passed() {
                                        return Err(format!("consumer: no end of stream after {timeout:?}"));
                                    }
                                    relax();
                                }
                            }
                        }
                        Ok(rec.finish())
                    })();
                    if result.is_err() {
                        failed.store(true, Ordering::Release);
                    }
                    result
                })
                .map_err(|e| format!("cannot start the consumer thread: {e}"))?;
            while !ready.load(Ordering::Acquire) {
                if failed.load(Ordering::Acquire) || consumer.is_finished() {
                    break;
                }
                std::hint::spin_loop();
            }
            let sent = if ready.load(Ordering::Acquire) {
                self.produce::<R>(true, |r| {
                    let mut item = *r;
                    loop {
                        match tx.push(item) {
                            Ok(()) => return Ok(()),
                            Err(rtrb::PushError::Full(back)) => {
                                if failed.load(Ordering::Relaxed) {
                                    return Err("the consumer thread stopped".into());
                                }
                                item = back;
                                std::hint::spin_loop();
                            }
                        }
                    }
                })
            } else {
                Err("the consumer thread did not start".into())
            };
            let got = consumer.join().map_err(|_| "the consumer thread panicked".to_string())?;
            // The consumer's error says more than the producer's.
            let got = got?;
            Ok((sent?, got))
        })
    }

    fn uds<R: BenchRecord>(&self) -> Result<(Sent, Received), String> {
        let path = std::env::temp_dir().join(format!("weir-bench-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let cleanup = RemoveOnDrop(path.clone());
        let mut child = self.spawn_consumer(&path)?;
        let sock = UnixDatagram::unbound().map_err(|e| format!("unix datagram socket: {e}"))?;
        sock.connect(&path).map_err(|e| format!("connect to the consumer's socket {}: {e}", path.display()))?;
        let sent = self.produce::<R>(true, |r| {
            sock.send(r.as_ref()).map(drop).map_err(|e| format!("send to {}: {e}", path.display()))
        });
        let got = child.collect(sent.is_ok());
        drop(cleanup);
        Ok((sent?, got?))
    }

    fn spawn_consumer(&self, path: &Path) -> Result<Consumer, String> {
        let mut cmd = Command::new(self.exe);
        cmd.args(["bench", "bus", "--role", "consumer", "--transports", self.transport.name(), "--sizes"])
            .arg(self.kind.flag())
            .arg("--path")
            .arg(path)
            .arg("--consumer-cpu")
            .arg(self.consumer_cpu.to_string())
            .args((!PAUSE.load(Ordering::Relaxed)).then_some("--no-pause"))
            .arg("--timeout-s")
            .arg(format!("{:.1}", self.timeout().as_secs_f64()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(|e| format!("cannot start the consumer {}: {e}", self.exe.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the consumer's stdout is not a pipe".into());
        };
        let mut consumer = Consumer { child, out: BufReader::new(stdout) };
        let mut line = String::new();
        match consumer.out.read_line(&mut line) {
            Ok(_) if line.trim_end() == "ready" => Ok(consumer),
            Ok(_) => {
                let status = consumer.stop();
                Err(format!("the consumer stopped before it was ready ({status}){}", said(&line)))
            }
            Err(e) => {
                let status = consumer.stop();
                Err(format!("reading the consumer's stdout: {e} ({status})"))
            }
        }
    }
}

fn said(line: &str) -> String {
    if line.trim().is_empty() { String::new() } else { format!(": it said {:?}", line.trim_end()) }
}

/// Removes a path when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A consumer process.
struct Consumer {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Consumer {
    /// Kills the process (if still running) and reaps it; how it ended.
    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(s) => s.to_string(),
            Err(e) => format!("wait: {e}"),
        }
    }

    /// Reads the consumer's result and reaps it; `ok` false: the producer failed, kill it.
    fn collect(&mut self, ok: bool) -> Result<Received, String> {
        if !ok {
            self.stop();
            return Err("the producer failed; consumer stopped".into());
        }
        let mut text = String::new();
        let read = self.out.read_to_string(&mut text);
        let status = self.child.wait().map_err(|e| format!("wait for the consumer: {e}"))?;
        read.map_err(|e| format!("reading the consumer's result: {e}"))?;
        if !status.success() {
            return Err(format!("the consumer failed ({status})"));
        }
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("result "))
            .ok_or_else(|| format!("the consumer gave no result{}", said(&text)))?;
        decode_result(line)
    }
}

// ---- the consumer process ----

fn consumer_main(args: &BusArgs) -> ExitCode {
    match consumer(args) {
        Ok(got) => {
            println!("result {}", encode_result(&got));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weir bench bus (consumer): {e}");
            ExitCode::from(1)
        }
    }
}

fn consumer(args: &BusArgs) -> Result<Received, String> {
    let (&[transport], &[kind]) = (args.transports.as_slice(), args.sizes.as_slice()) else {
        return Err("the consumer takes one transport and one record size".into());
    };
    let path = args.path.as_deref().ok_or("the consumer needs --path")?;
    weir_hw::pin::pin_current_thread(args.consumer_cpu)
        .map_err(|e| format!("--consumer-cpu {}: {e}", args.consumer_cpu))?;
    if !(args.timeout_s.is_finite() && args.timeout_s > 0.0) {
        return Err(format!("--timeout-s {}: a positive number", args.timeout_s));
    }
    let timeout = Duration::from_secs_f64(args.timeout_s);
    match kind {
        Kind::Trade => consume::<TradeMsg>(transport, path, timeout),
        Kind::Mbp1 => consume::<Mbp1Msg>(transport, path, timeout),
        Kind::Mbp10 => consume::<Mbp10Msg>(transport, path, timeout),
    }
}

fn ready() {
    println!("ready");
}

fn consume<R: BenchRecord>(transport: Transport, path: &Path, timeout: Duration) -> Result<Received, String> {
    let mut rec = Recorder::new(quanta::Clock::new());
    let mut deadline = Deadline::new(timeout);
    match transport {
        Transport::Spsc => Err("spsc runs in one process".into()),
        Transport::Bus => {
            // A producer held up by other work on the machine is not dead: trust it as long as
            // the whole run may take.
            let opts = SubscriberOptions { stale_after: Some(timeout), ..SubscriberOptions::default() };
            let mut sub = Subscriber::open(path, &opts).map_err(|e| e.to_string())?;
            let mut empty = 0u32;
            ready();
            loop {
                match sub.poll() {
                    Next::Record(d) => {
                        let now = rec.clock.raw();
                        let ts = d.record.get::<R>().map(R::ts).ok_or_else(|| {
                            format!("{}: record {} is not a {}-byte record", path.display(), d.seq, size_of::<R>())
                        })?;
                        if rec.on(ts, now) == Flow::End {
                            break;
                        }
                    }
                    Next::Empty => {
                        // The producer's state costs a clock read: not on every empty poll.
                        empty = empty.wrapping_add(1);
                        if empty.is_multiple_of(256) {
                            match sub.producer() {
                                ProducerState::Ended => break,
                                ProducerState::Dead { heartbeat_age_ns } => {
                                    return Err(format!(
                                        "{}: the producer died (heartbeat {} ms old)",
                                        path.display(),
                                        heartbeat_age_ns / 1_000_000
                                    ));
                                }
                                ProducerState::Superseded => {
                                    return Err(format!("{}: superseded by another producer", path.display()));
                                }
                                ProducerState::Live | ProducerState::Quiet { .. } => {}
                            }
                        }
                        if deadline.passed() {
                            return Err(format!("no end of stream after {timeout:?}"));
                        }
                        relax();
                    }
                    // Counted in the subscriber's stats; the next record says how many were lost.
                    Next::Lapped | Next::Corrupt { .. } => {}
                }
            }
            let stats = sub.stats();
            let mut got = rec.finish();
            got.lost_stats = stats.lost;
            got.laps = stats.laps;
            Ok(got)
        }
        Transport::Uds | Transport::UdsBlock => {
            let sock = UnixDatagram::bind(path).map_err(|e| format!("bind {}: {e}", path.display()))?;
            let blocking = transport == Transport::UdsBlock;
            if blocking {
                sock.set_read_timeout(Some(timeout)).map_err(|e| format!("socket timeout: {e}"))?;
            } else {
                sock.set_nonblocking(true).map_err(|e| format!("non-blocking socket: {e}"))?;
            }
            let mut buf = vec![0u8; size_of::<R>() + 64];
            ready();
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) => {
                        let now = rec.clock.raw();
                        let ts = ts_in::<R>(&buf[..n]).ok_or_else(|| format!("a {n}-byte datagram: not a record"))?;
                        if rec.on(ts, now) == Flow::End {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && !blocking => {
                        if deadline.passed() {
                            return Err(format!("no end of stream after {timeout:?}"));
                        }
                        relax();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("recv on {}: {e}", path.display())),
                }
            }
            Ok(rec.finish())
        }
    }
}

fn encode_result(r: &Received) -> String {
    let mut bytes = Vec::new();
    let hist = match V2Serializer::new().serialize(&r.histogram, &mut bytes) {
        Ok(_) => bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        Err(e) => format!("error: {e:?}"),
    };
    serde_json::json!({
        "received": r.received,
        "skew": r.skew,
        "span_ns": r.span_ns,
        "lost_stats": r.lost_stats,
        "laps": r.laps,
        "histogram": hist,
    })
    .to_string()
}

fn decode_result(line: &str) -> Result<Received, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("the consumer's result: {e}"))?;
    let n = |k: &str| {
        v.get(k).and_then(serde_json::Value::as_u64).ok_or_else(|| format!("the consumer's result has no {k}"))
    };
    let hex = v.get("histogram").and_then(serde_json::Value::as_str).ok_or("the consumer's result has no histogram")?;
    if let Some(e) = hex.strip_prefix("error: ") {
        return Err(format!("the consumer could not serialise its histogram: {e}"));
    }
    let bytes = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|e| format!("the consumer's histogram is not hex: {e}"))?;
    let histogram: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("the consumer's histogram: {e:?}"))?;
    Ok(Received {
        histogram,
        received: n("received")?,
        skew: n("skew")?,
        span_ns: n("span_ns")?,
        lost_stats: n("lost_stats")?,
        laps: n("laps")?,
    })
}
