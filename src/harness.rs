//! Wire-to-record latency harness (`weir bench latency`).
//!
//! Replays a capture open loop through the pcap backend at a fixed multiple of its recorded pace
//! (1x and 8x by default, as STAC-T1 does), runs the real poll loop over it, and records, per
//! packet that made at least one DBN record, the time from the return of the rx burst that
//! brought it to its last record reaching the sink (quanta raw TSC, converted off the hot path;
//! HdrHistogram, 1 ns .. 10 s at 3 significant digits).
//!
//! The capture is replayed from memory by [`LoopedCapture`]: an endless, gap-free stream (the
//! sequence numbers move on at each wrap), so a case can start warm (one unmeasured pass first:
//! every symbol known, every book sized, as all day after the pre-market spin) or cold (the
//! capture's first pass: start of day).
//!
//! Baselines in the same run, same queue, same clock, same recording:
//! - `clock`: two back-to-back clock reads: the floor of any figure here;
//! - `peel`: the loop stops after the frame peel: the receive path and the measurement;
//! - `decode`: peel, IEX-TP, sequencer and decode (`FeedHandler`), no books or records.
//!
//! So `decode − peel` is the decoder's share and `full − decode` the books' and records'.
//!
//! A frame is handed out when it is due; a burst that returns late (the loop was busy) starts its
//! clock late, so this measures the handler, not the queueing in front of it (a NIC ring's).
//! `max` pace (everything as fast as polled) shows the queueing inside a burst, and `svc` the
//! service time per packet (from the previous packet's end).

use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use weir_feeds::frame::peel_udp;
use weir_feeds::normalize::{NormalizerConfig, RecordSink};

use crate::capture::{CaptureError, CaptureReader};
use crate::lcore::{Observer, PollLoop};
use crate::nic::spec::Pace;
use crate::nic::{BURST, Frame, Framing, QueueStats, RxQueue, TimestampSource};
use weir_feeds::frame::LinkType;
use weir_feeds::iex::handler::MAX_SEQ;
use weir_feeds::iex::{FeedHandler, Protocol, Segment};

/// What a sample measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// From the return of the packet's rx burst (includes waiting behind earlier packets of the
    /// same burst): the latency a packet sees.
    SinceBurst,
    /// From the previous packet's end (or the burst's return, for the first): the handler's
    /// service time per packet.
    Service,
}

/// One histogram of per-packet latencies, in ns.
#[derive(Debug)]
pub struct Latencies {
    clock: quanta::Clock,
    measure: Measure,
    last: (u64, u64),
    /// The samples.
    pub histogram: Histogram<u64>,
}

impl Latencies {
    /// An empty histogram.
    pub fn new(clock: quanta::Clock, measure: Measure) -> Self {
        // 1 ns .. 10 s, 3 significant digits: the ECOSYSTEM.md convention.
        let histogram = Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("static bounds are valid");
        Latencies { clock, measure, last: (u64::MAX, 0), histogram }
    }
}

impl Observer for Latencies {
    const TIMED: bool = true;
    #[inline]
    fn packet_done(&mut self, burst_tsc: u64) {
        let now = self.clock.raw();
        let from = match self.measure {
            Measure::SinceBurst => burst_tsc,
            Measure::Service if self.last.0 == burst_tsc => self.last.1,
            Measure::Service => burst_tsc,
        };
        self.last = (burst_tsc, now);
        self.histogram.saturating_record(self.clock.delta_as_nanos(from, now).max(1));
    }
}

/// Polls until `packets` frames have gone by; the time it took (for throughput benches).
pub fn time_packets(packets: u64, mut poll: impl FnMut() -> usize) -> Duration {
    let start = Instant::now();
    let mut seen = 0;
    while seen < packets {
        seen += poll() as u64;
    }
    start.elapsed()
}

/// Drops records (the sink's cost is the bus's business, measured in its own issue).
#[derive(Debug, Default)]
pub struct Discard;

impl RecordSink for Discard {
    #[inline(always)]
    fn record<R: dbn::Record>(&mut self, rec: &R) {
        std::hint::black_box(rec);
    }
}

/// A capture in memory, replayed in a loop as one endless, gap-free IEX stream: at each wrap the
/// IEX-TP sequence numbers and stream offsets move on by one pass (and the timestamps by the
/// capture's span), so the sequencer sees new messages every pass and the books stay warm: the
/// state of a feed handler all day after the pre-market spin. Frames are lent from memory.
#[derive(Debug)]
pub struct LoopedCapture {
    /// Frames: bytes, link type, timestamp, offset of the IEX-TP header (None: not IEX-TP).
    frames: Vec<(Vec<u8>, LinkType, i64, Option<usize>)>,
    /// Whether frame `k` delivers messages (in a pass of its own).
    delivers: Vec<bool>,
    next: usize,
    pass: u64,
    passes: Option<u64>,
    burst: (usize, usize),
    seq_per_pass: i64,
    bytes_per_pass: i64,
    span_ns: i64,
    pace: Pace,
    /// When pacing started, and the market time it started at.
    origin: Option<(Instant, i64)>,
    stats: QueueStats,
}

impl LoopedCapture {
    /// Loads every frame of a capture.
    pub fn load(path: &Path) -> Result<LoopedCapture, CaptureError> {
        let mut r = CaptureReader::open(path)?;
        let mut frames = Vec::new();
        let (mut first, mut end, mut first_off, mut end_off) = (i64::MAX, 0i64, i64::MAX, 0i64);
        while let Some(p) = r.next_packet()? {
            // Only well-formed IEX-TP segments of a known feed are renumbered (anything else in
            // the capture goes round unchanged, as the same traffic every pass).
            let header = peel_udp(p.link, p.data).ok().and_then(|u| {
                let seg = Segment::parse(u.payload).ok()?;
                if matches!(seg.protocol(), Protocol::Other(_)) || !(1..=MAX_SEQ).contains(&seg.first_seq()) {
                    return None;
                }
                first = first.min(seg.first_seq());
                end = end.max(seg.first_seq().checked_add(i64::from(seg.message_count()))?);
                first_off = first_off.min(seg.stream_offset());
                end_off = end_off.max(seg.stream_offset().checked_add(seg.payload().len() as i64)?);
                Some(u.payload_offset)
            });
            frames.push((p.data.to_vec(), p.link, p.ts_ns, header));
        }
        if frames.is_empty() {
            return Err(CaptureError::NotACapture {
                path: path.to_owned(),
                magic: "(a capture with no packets: nothing to replay)".into(),
            });
        }
        // Which frames deliver messages: the baselines time the same packets as the full loop.
        let mut handler = FeedHandler::new();
        let delivers = frames
            .iter()
            .map(|(data, link, ts, _)| {
                let before = handler.stats().messages;
                if let Ok(u) = peel_udp(*link, data) {
                    handler.on_datagram(u.payload, u.missing, *ts, &mut ());
                }
                handler.stats().messages != before
            })
            .collect();
        let span_ns = match (frames.first(), frames.last()) {
            (Some(a), Some(b)) => b.2 - a.2 + 1,
            _ => 1,
        };
        Ok(LoopedCapture {
            frames,
            delivers,
            next: 0,
            pass: 0,
            passes: None,
            burst: (0, 0),
            seq_per_pass: (end - first).max(0),
            bytes_per_pass: (end_off - first_off).max(0),
            span_ns,
            pace: Pace::Max,
            origin: None,
            stats: QueueStats::default(),
        })
    }

    /// Replays at `pace` from the next poll on (the clock starts at the current frame).
    pub fn set_pace(&mut self, pace: Pace) {
        self.pace = pace;
        self.origin = None;
    }

    /// Ends after `passes` more passes.
    pub fn stop_after(&mut self, passes: u64) {
        self.passes = Some(self.pass + passes);
    }

    /// Passes begun so far (0 during the first).
    pub fn pass(&self) -> u64 {
        self.pass
    }

    /// Frames per pass.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the capture held no frame.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The next `n` frames (at most to the end of the pass; the next pass starts at a wrap), by
    /// index, for a sender: see [`LoopedCapture::frame_bytes`]. Ignores the pace.
    pub fn take(&mut self, n: usize) -> std::ops::Range<usize> {
        if self.next == self.frames.len() {
            self.wrap();
        }
        let n = n.min(self.frames.len() - self.next);
        self.next += n;
        self.next - n..self.next
    }

    /// Whether frame `k` of the current burst delivers messages (heartbeats and other traffic do
    /// not).
    pub fn delivers(&self, i: usize) -> bool {
        self.delivers[self.burst.0 + i]
    }

    /// Frame `k`'s bytes, as the current pass numbers it.
    pub fn frame_bytes(&self, k: usize) -> &[u8] {
        &self.frames[k].0
    }

    fn ts(&self, k: usize) -> i64 {
        self.frames[k].2 + self.pass as i64 * self.span_ns
    }

    fn wrap(&mut self) {
        self.next = 0;
        self.pass += 1;
        for (f, _, _, header) in &mut self.frames {
            if let Some(at) = *header {
                let h = &mut f[at..];
                let seq = i64::from_le_bytes(h[24..32].try_into().unwrap_or([0; 8])).saturating_add(self.seq_per_pass);
                let off =
                    i64::from_le_bytes(h[16..24].try_into().unwrap_or([0; 8])).saturating_add(self.bytes_per_pass);
                h[24..32].copy_from_slice(&seq.to_le_bytes());
                h[16..24].copy_from_slice(&off.to_le_bytes());
            }
        }
    }
}

impl RxQueue for LoopedCapture {
    fn rx_burst(&mut self) -> usize {
        if self.is_finished() || self.frames.is_empty() {
            self.burst = (0, 0);
            return 0;
        }
        if self.next == self.frames.len() {
            self.wrap();
        }
        let mut n = BURST.min(self.frames.len() - self.next);
        if let Pace::Times(factor) = self.pace {
            // Frame k is due when (its time − the first paced frame's) / factor has passed.
            let now = Instant::now();
            let first = self.ts(self.next);
            let (t0, ts0) = *self.origin.get_or_insert((now, first));
            let market_ns = now.duration_since(t0).as_nanos() as f64 * factor;
            n = (0..n).take_while(|&i| (self.ts(self.next + i) - ts0) as f64 <= market_ns).count();
        }
        self.burst = (self.next, n);
        self.next += n;
        if matches!(self.pace, Pace::Times(_)) {
            // A NIC's DMA leaves a new frame in the last-level cache (Intel DDIO) and a driver's
            // rx_burst reads its descriptor: a frame comes in warm. A replayed frame from memory
            // untouched since the last pass would come in cold, a cost no NIC path pays; touch it
            // here, before the burst (and the clock) starts.
            for (data, ..) in &self.frames[self.burst.0..self.next] {
                for line in data.chunks(64) {
                    std::hint::black_box(line[0]);
                }
            }
        }
        if n == 0 {
            self.stats.empty_polls += 1;
        } else {
            self.stats.bursts += 1;
            self.stats.packets += n as u64;
        }
        n
    }

    #[inline]
    fn frame(&self, i: usize) -> Frame<'_> {
        let k = self.burst.0 + i;
        let (data, link, _, _) = &self.frames[k];
        Frame {
            data,
            framing: Framing::Link(*link),
            rx_ns: self.ts(k),
            ts_source: TimestampSource::Capture,
            locus: k as u64,
        }
    }

    fn stats(&mut self) -> QueueStats {
        self.stats
    }

    fn is_finished(&self) -> bool {
        // Pass `p` is the (p+1)-th; after `stop_after(k)` the run ends when pass `self.passes`
        // would begin.
        self.passes.is_some_and(|p| self.pass + 1 >= p && self.next == self.frames.len())
    }

    fn name(&self) -> String {
        "looped capture".into()
    }
}

/// One measured configuration.
#[derive(Debug)]
pub struct Case {
    /// `full x1`, `peel x8`, `clock`, ...
    pub name: String,
    /// Latencies, ns.
    pub histogram: Histogram<u64>,
    /// Wall time of the run.
    pub wall: Duration,
    /// Packets received.
    pub packets: u64,
}

impl Case {
    /// `count p50 p90 p99 p99.9 p99.99 max` as a table row.
    pub fn row(&self) -> String {
        let h = &self.histogram;
        let q = |p: f64| h.value_at_quantile(p);
        format!(
            "{:<12} {:>9} {:>7} {:>7} {:>7} {:>8} {:>9} {:>9}",
            self.name,
            h.len(),
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            q(0.9999),
            h.max()
        )
    }

    /// The percentiles as JSON.
    pub fn json(&self) -> serde_json::Value {
        let h = &self.histogram;
        serde_json::json!({
            "name": self.name,
            "count": h.len(),
            "p50": h.value_at_quantile(0.5),
            "p90": h.value_at_quantile(0.9),
            "p99": h.value_at_quantile(0.99),
            "p99_9": h.value_at_quantile(0.999),
            "p99_99": h.value_at_quantile(0.9999),
            "max": h.max(),
            "mean": h.mean(),
            "wall_s": self.wall.as_secs_f64(),
            "packets": self.packets,
        })
    }
}

/// The header of [`Case::row`].
pub const HEADER: &str = "case             count     p50     p90     p99    p99.9   p99.99       max   (ns)";

/// Whether a case starts from cold books or after one warm-up pass over the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The capture's first pass is measured: new symbols, books being built (start of day).
    Cold,
    /// One unmeasured pass at max pace first; the measured passes carry on the same stream
    /// (sequence numbers moved on), so every symbol is known and every book sized.
    Warm,
}

/// Runs the full poll loop over `capture` at `pace` for at most `limit`.
pub fn full(
    capture: &Path,
    pace: Pace,
    limit: Duration,
    measure: Measure,
    start: Start,
    name: &str,
) -> Result<Case, CaptureError> {
    let clock = quanta::Clock::new();
    let queue = LoopedCapture::load(capture)?;
    let observer = Latencies::new(clock, measure);
    let mut l = PollLoop::with_observer(vec![queue], NormalizerConfig::default(), Discard, observer);
    if start == Start::Warm {
        while l.lines()[0].pass() == 0 {
            l.poll();
        }
        l.observer_mut().histogram.reset();
    }
    run_paced(&mut l, pace, limit, start);
    let wall = l.elapsed_s();
    let packets = l.observer().histogram.len();
    let histogram = l.observer().histogram.clone();
    Ok(Case { name: name.to_owned(), histogram, wall: Duration::from_secs_f64(wall), packets })
}

/// Polls one pass (a cold start) or until `limit` (warm) at `pace`.
fn run_paced<R: RecordSink, O: Observer>(
    l: &mut PollLoop<LoopedCapture, R, O>,
    pace: Pace,
    limit: Duration,
    start: Start,
) {
    let q = &mut l.lines_mut()[0];
    q.set_pace(pace);
    if start == Start::Cold {
        q.stop_after(1);
    }
    let began = Instant::now();
    let mut polls = 0u32;
    loop {
        let idle = l.poll() == 0;
        polls = polls.wrapping_add(1);
        // At max pace a poll is never empty: look at the clock every 1024 polls too.
        if (idle || polls.is_multiple_of(1024)) && (l.lines()[0].is_finished() || began.elapsed() >= limit) {
            break;
        }
    }
}

/// How far a baseline case goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Frame peel only.
    Peel,
    /// Peel, IEX-TP segment, sequencer and message decode (`FeedHandler`, messages discarded):
    /// everything but books and records.
    Decode,
}

/// A baseline that goes as far as `depth`.
pub fn partial(
    capture: &Path,
    pace: Pace,
    limit: Duration,
    measure: Measure,
    depth: Depth,
    name: &str,
) -> Result<Case, CaptureError> {
    let mut handler = FeedHandler::new();
    let clock = quanta::Clock::new();
    let mut queue = LoopedCapture::load(capture)?;
    // Warm, like the full case: one unmeasured pass at max pace.
    while queue.pass() == 0 {
        let n = queue.rx_burst();
        for i in 0..n {
            let f = queue.frame(i);
            if let Framing::Link(link) = f.framing
                && let Ok(udp) = peel_udp(link, f.data)
            {
                handler.on_datagram(udp.payload, udp.missing, f.rx_ns, &mut ());
            }
        }
    }
    queue.set_pace(pace);
    let mut lat = Latencies::new(clock.clone(), measure);
    let began = Instant::now();
    let mut polls = 0u32;
    loop {
        let n = queue.rx_burst();
        polls = polls.wrapping_add(1);
        if (n == 0 || polls.is_multiple_of(1024)) && (queue.is_finished() || began.elapsed() >= limit) {
            break;
        }
        if n == 0 {
            continue;
        }
        let burst_tsc = clock.raw();
        for i in 0..n {
            let f = queue.frame(i);
            let (payload, missing) = match f.framing {
                Framing::Link(link) => match std::hint::black_box(peel_udp(link, f.data)) {
                    Ok(udp) => (udp.payload, udp.missing),
                    Err(_) => continue,
                },
                Framing::UdpPayload => (f.data, 0),
            };
            if depth == Depth::Decode {
                handler.on_datagram(payload, missing, f.rx_ns, &mut ());
            }
            // The same packets the full case times: those that deliver messages.
            if queue.delivers(i) {
                lat.packet_done(burst_tsc);
            }
        }
    }
    let wall = began.elapsed();
    Ok(Case { name: name.to_owned(), histogram: lat.histogram, wall, packets: queue.stats().packets })
}

/// The floor: back-to-back clock reads, recorded the same way.
pub fn clock_floor(samples: usize) -> Case {
    let clock = quanta::Clock::new();
    let mut lat = Latencies::new(clock.clone(), Measure::SinceBurst);
    let start = Instant::now();
    for _ in 0..samples {
        let t = clock.raw();
        lat.packet_done(t);
    }
    Case { name: "clock".into(), histogram: lat.histogram, wall: start.elapsed(), packets: 0 }
}

/// Writes the cases as an HdrHistogram interval log (`.hlog`), one tagged interval per case.
pub fn write_hlog(path: &Path, cases: &[Case]) -> std::io::Result<()> {
    use hdrhistogram::serialization::V2DeflateSerializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
    let mut out = Vec::new();
    let mut ser = V2DeflateSerializer::new();
    {
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment("weir bench latency: ns from rx burst return to a packet's last DBN record")
            .with_start_time(std::time::SystemTime::now())
            .begin_log_with(&mut out, &mut ser)?;
        let mut at = Duration::ZERO;
        for c in cases {
            let tag = c.name.replace([' ', ','], "_");
            log.write_histogram(&c.histogram, at, c.wall, Tag::new(&tag))
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            at += c.wall;
        }
    }
    std::fs::write(path, out)
}
