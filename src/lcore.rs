//! The poll loop: the whole per-packet hot path, in one place.
//!
//! ```text
//! rx_burst ─▶ frame peel ─▶ group filter ─▶ IEX-TP segment ─▶ sequencer ─▶ decode ─▶ book ─▶ DBN record ─▶ sink
//!  (nic)       (frame)                        └──────── FeedHandler ───────┘   └── Normalizer ──┘      (R)
//! ```
//!
//! [`PollLoop`] is generic over the receive queue (`Q`), the record sink (`R`) and an observer
//! (`O`, for latency measurement; `()` costs nothing), so each combination compiles to one loop
//! with every call inlined. One [`PollLoop::poll`] is one burst, run to completion: each packet
//! is decoded, applied to the books and published before the next is looked at.
//!
//! Per packet there is no allocation, no lock, no system call and no log line: faults are counted
//! and the first few kept as `Copy` values with where they were found (formatted only when a
//! report is asked for); progress goes out through relaxed atomic stores once per burst. The test
//! `tests/poll_loop.rs` counts allocations across a warm run to hold this.
//!
//! It runs as a poller on a pinned worker of the executor ([`PollLoop::into_poller`]) or on a
//! thread of its own ([`PollLoop::run`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use weir_feeds::frame::{self, FrameError};
use weir_feeds::iex::{FeedError, FeedHandler, Message, MessageSink, MsgContext, SeqEvent};
use weir_feeds::normalize::{Normalizer, NormalizerConfig, RecordSink};

use crate::nic::spec::Group;
use crate::nic::{Framing, QueueStats, RxQueue};
use crate::replay::{ArbitrationReport, BooksReport, ReplayReport, Tally, report_of};

/// Faults kept with their location for the report.
const FIRST_FAULTS: usize = 10;

/// Sees each packet that made at least one record; used by the latency harness.
pub trait Observer {
    /// Whether the loop should read the clock when a burst returns (for `burst_tsc`).
    const TIMED: bool;
    /// A packet of the burst that returned at raw clock `burst_tsc` made its last record.
    fn packet_done(&mut self, burst_tsc: u64);
}

/// No observer: no clock read, nothing recorded.
impl Observer for () {
    const TIMED: bool = false;
    #[inline(always)]
    fn packet_done(&mut self, _: u64) {}
}

/// Counts the records on their way to the sink (so the loop knows a packet made one).
#[derive(Debug)]
pub struct Counted<R> {
    /// The sink.
    pub inner: R,
    /// Records passed on.
    pub records: u64,
}

impl<R: RecordSink> RecordSink for Counted<R> {
    #[inline(always)]
    fn record<T: dbn::Record>(&mut self, rec: &T) {
        self.records += 1;
        self.inner.record(rec);
    }
    #[inline(always)]
    fn flush(&mut self) {
        self.inner.flush();
    }
}

/// A fault, as found: `Copy`, formatted only for the report.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Frame(FrameError),
    Feed(FeedError),
}

/// Counted faults and the first few with (line, frame locus).
#[derive(Debug)]
struct FaultLog {
    count: u64,
    first: [Option<(usize, u64, Fault)>; FIRST_FAULTS],
    /// Where the packet being handled came from.
    line: usize,
    locus: u64,
}

impl FaultLog {
    #[cold]
    fn record(&mut self, fault: Fault) {
        if let Some(slot) = self.first.iter_mut().find(|s| s.is_none()) {
            *slot = Some((self.line, self.locus, fault));
        }
        self.count += 1;
    }
}

/// Passes the handler's output to the books and notes faults with their location.
struct Tracked<'a, S> {
    inner: &'a mut S,
    log: &'a mut FaultLog,
    events: &'a mut u64,
}

impl<S: MessageSink> MessageSink for Tracked<'_, S> {
    #[inline(always)]
    fn on_message(&mut self, ctx: &MsgContext, msg: &Message<'_>) {
        self.inner.on_message(ctx, msg);
    }
    #[inline]
    fn on_event(&mut self, event: &SeqEvent) {
        *self.events += 1;
        self.inner.on_event(event);
    }
    #[cold]
    fn on_error(&mut self, error: &FeedError) {
        self.log.record(Fault::Feed(*error));
        self.inner.on_error(error);
    }
}

/// Progress counters another thread may read while the loop runs (relaxed; updated per burst).
#[derive(Debug, Default)]
pub struct Live {
    /// Frames received.
    pub packets: AtomicU64,
    /// IEX messages decoded.
    pub messages: AtomicU64,
    /// DBN records made.
    pub records: AtomicU64,
    /// Set by anyone to end the run at the next poll.
    pub stop: AtomicBool,
}

/// When a run ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StopWhen {
    /// After this long without a frame (ns); `None`: never for want of frames.
    pub idle_ns: Option<u64>,
}

/// One feed's poll loop over one queue (or an A/B pair): see the module docs.
#[derive(Debug)]
pub struct PollLoop<Q, R, O = ()> {
    lines: Vec<Q>,
    handler: FeedHandler,
    books: Normalizer<Counted<R>>,
    observer: O,
    /// Admitted (group, port) pairs; empty admits everything.
    groups: Vec<Group>,
    clock: quanta::Clock,
    log: FaultLog,
    events: u64,
    packets: u64,
    bytes: u64,
    other_traffic: u64,
    corrupt_frames: u64,
    filtered: u64,
    taken: [u64; 2],
    arbitration_dropped: (u64, u64),
    last_frame_tsc: u64,
    start_tsc: u64,
    /// When the run was decided over (for the report's rates).
    end_tsc: Option<u64>,
    stop_when: StopWhen,
    live: Arc<Live>,
}

impl<Q: RxQueue, R: RecordSink> PollLoop<Q, R, ()> {
    /// A loop over `queue`, publishing records to `sink`.
    pub fn new(queue: Q, config: NormalizerConfig, sink: R) -> Self {
        PollLoop::with_observer(vec![queue], config, sink, ())
    }
}

impl<Q: RxQueue, R: RecordSink, O: Observer> PollLoop<Q, R, O> {
    /// A loop over one queue, or two carrying the A and B lines of the same feed (the first copy
    /// of each segment wins), with an observer.
    pub fn with_observer(lines: Vec<Q>, config: NormalizerConfig, sink: R, observer: O) -> Self {
        assert!(matches!(lines.len(), 1 | 2), "a poll loop takes one line or an A/B pair");
        let clock = quanta::Clock::new();
        let now = clock.raw();
        PollLoop {
            lines,
            handler: FeedHandler::new(),
            books: Normalizer::new(config, Counted { inner: sink, records: 0 }),
            observer,
            groups: Vec::new(),
            clock,
            log: FaultLog { count: 0, first: [None; FIRST_FAULTS], line: 0, locus: 0 },
            events: 0,
            packets: 0,
            bytes: 0,
            other_traffic: 0,
            corrupt_frames: 0,
            filtered: 0,
            taken: [0; 2],
            arbitration_dropped: (0, 0),
            last_frame_tsc: now,
            start_tsc: now,
            end_tsc: None,
            stop_when: StopWhen::default(),
            live: Arc::new(Live::default()),
        }
    }

    /// Admits only datagrams to these groups (others are counted as filtered); the DPDK backend
    /// needs this, since a NIC's multicast MAC filter lets 32 groups through per MAC.
    pub fn admit(mut self, groups: &[Group]) -> Self {
        self.groups = groups.to_vec();
        self
    }

    /// Ends the run per `stop_when` (besides the queue finishing or [`Live::stop`]).
    pub fn stop_when(mut self, stop_when: StopWhen) -> Self {
        self.stop_when = stop_when;
        self
    }

    /// The progress counters (share with a reporting thread).
    pub fn live(&self) -> Arc<Live> {
        self.live.clone()
    }

    /// The books and the sink.
    pub fn books(&self) -> &Normalizer<Counted<R>> {
        &self.books
    }

    /// The books and the sink, mutably (e.g. to take the sink at the end).
    pub fn books_mut(&mut self) -> &mut Normalizer<Counted<R>> {
        &mut self.books
    }

    /// The observer.
    pub fn observer(&self) -> &O {
        &self.observer
    }

    /// The observer, mutably (e.g. to reset it after a warm-up).
    pub fn observer_mut(&mut self) -> &mut O {
        &mut self.observer
    }

    /// The feed handler (its counters).
    pub fn handler(&self) -> &FeedHandler {
        &self.handler
    }

    /// The queues.
    pub fn lines(&self) -> &[Q] {
        &self.lines
    }

    /// The queues, mutably (e.g. to change a replay's pace between phases).
    pub fn lines_mut(&mut self) -> &mut [Q] {
        &mut self.lines
    }

    /// One burst from each line, through the whole pipeline. Returns the frames handled.
    #[inline]
    pub fn poll(&mut self) -> usize {
        let mut frames = 0;
        for line in 0..self.lines.len() {
            frames += self.poll_line(line);
        }
        // The sink's housekeeping (the bus's heartbeat): once per turn, busy or idle.
        self.books.sink_mut().flush();
        if frames > 0 {
            self.live.packets.store(self.packets, Ordering::Relaxed);
            self.live.messages.store(self.handler.stats().messages, Ordering::Relaxed);
            self.live.records.store(self.books.sink().records, Ordering::Relaxed);
        }
        frames
    }

    #[inline]
    fn poll_line(&mut self, line: usize) -> usize {
        let two_lines = self.lines.len() == 2;
        let PollLoop { lines, handler, books, observer, log, events, .. } = self;
        let queue = &mut lines[line];
        let n = queue.rx_burst();
        if n == 0 {
            return 0;
        }
        let burst_tsc = if O::TIMED { self.clock.raw() } else { 0 };
        log.line = line;
        for i in 0..n {
            let f = queue.frame(i);
            self.packets += 1;
            self.bytes += f.data.len() as u64;
            log.locus = f.locus;
            let (payload, missing) = match f.framing {
                Framing::UdpPayload => (f.data, 0),
                Framing::Link(link) => match frame::peel_udp(link, f.data) {
                    Ok(udp) => {
                        if !self.groups.is_empty()
                            && !self.groups.iter().any(|g| g.addr.octets() == udp.dst_ip && g.port == udp.dst_port)
                        {
                            self.filtered += 1;
                            continue;
                        }
                        (udp.payload, udp.missing)
                    }
                    Err(e) => {
                        frame_fault(e, &mut self.other_traffic, &mut self.corrupt_frames, log);
                        continue;
                    }
                },
            };
            let records_before = books.sink().records;
            let before = two_lines.then(|| {
                let seq = handler.seq_stats();
                (handler.stats().messages, seq.segments_duplicate, seq.messages_duplicate)
            });
            handler.on_datagram(payload, missing, f.rx_ns, &mut Tracked { inner: books, log, events });
            if let Some((messages, dup_segments, dup_messages)) = before {
                // A/B: a segment that delivered messages was taken from this line; one that
                // delivered nothing new was dropped (the sequencer counted it a duplicate). A
                // line's own repeats count here too: with two lines they cannot be told apart
                // from the other line's copies.
                let now = handler.seq_stats();
                if handler.stats().messages != messages {
                    self.taken[line] += 1;
                } else if now.segments_duplicate != dup_segments {
                    self.arbitration_dropped.0 += 1;
                    self.arbitration_dropped.1 += now.messages_duplicate - dup_messages;
                }
            }
            if O::TIMED && books.sink().records != records_before {
                observer.packet_done(burst_tsc);
            }
        }
        self.last_frame_tsc = if O::TIMED { burst_tsc } else { self.clock.raw() };
        n
    }

    /// Whether the run is over: every line finished, or idle too long (not counting time a line
    /// holds a frame that is not due yet). Reads the clock: call it after an empty poll, not per
    /// packet. [`Live::stop`] is looked at on every poll by [`run`](Self::run) and the poller.
    pub fn should_stop(&self) -> bool {
        if self.lines.iter().all(|q| q.is_finished()) {
            return true;
        }
        match self.stop_when.idle_ns {
            Some(idle) if !self.lines.iter().any(|q| q.has_pending()) => {
                self.clock.delta_as_nanos(self.last_frame_tsc, self.clock.raw()) >= idle
            }
            _ => false,
        }
    }

    /// Whether someone asked the run to end ([`Live::stop`]): one relaxed load.
    #[inline]
    fn stop_requested(&self) -> bool {
        self.live.stop.load(Ordering::Relaxed)
    }

    /// Polls until [`should_stop`](Self::should_stop) or [`Live::stop`], on the calling thread
    /// (busy-polling).
    pub fn run(&mut self) {
        self.start_tsc = self.clock.raw();
        self.last_frame_tsc = self.start_tsc;
        loop {
            let idle = self.poll() == 0;
            if self.stop_requested() || (idle && self.should_stop()) {
                break;
            }
        }
        self.end_tsc = Some(self.clock.raw());
    }

    /// Seconds from the start of the run to its end (or to now, while it runs).
    pub fn elapsed_s(&self) -> f64 {
        let end = self.end_tsc.unwrap_or_else(|| self.clock.raw());
        self.clock.delta_as_nanos(self.start_tsc, end) as f64 / 1e9
    }

    /// Everything counted so far, with `weir replay`'s keys, plus the queues' own counters.
    pub fn report(&mut self) -> RunReport {
        let elapsed = self.elapsed_s();
        let mut errors = self.log.count;
        let mut first_errors = Vec::new();
        let names: Vec<String> = self.lines.iter().map(|q| q.name()).collect();
        for slot in self.log.first.iter().flatten() {
            let (line, locus, fault) = *slot;
            let what = match fault {
                Fault::Frame(e) => e.to_string(),
                Fault::Feed(e) => e.to_string(),
            };
            let at = if names[line].starts_with("pcap:") { "packet at byte" } else { "packet" };
            first_errors.push(format!("{} {at} {locus}: {what}", names[line]));
        }
        let mut nic = Vec::new();
        let (mut short_captures, mut truncated_records) = (0, 0);
        for (q, name) in self.lines.iter_mut().zip(names) {
            let src = q.source_stats();
            short_captures += src.short_captures;
            truncated_records += src.truncated_records;
            for f in q.faults() {
                errors += 1;
                first_errors.push(f);
            }
            nic.push(QueueReport { name, stats: q.stats() });
        }
        let mut replay = report_of(
            &self.handler,
            &Tally {
                packets: self.packets,
                capture_bytes: self.bytes,
                short_captures,
                truncated_records,
                other_traffic: self.other_traffic,
                corrupt_frames: self.corrupt_frames,
                sequencing_events: self.events,
                errors,
            },
            elapsed,
        );
        replay.first_errors = first_errors;
        if self.lines.len() == 2 {
            replay.duplicates.segments -= self.arbitration_dropped.0;
            replay.duplicates.messages -= self.arbitration_dropped.1;
            replay.arbitration = Some(ArbitrationReport {
                taken_a: self.taken[0],
                taken_b: self.taken[1],
                dropped: self.arbitration_dropped.0,
            });
        }
        replay.books = Some(BooksReport::of(&self.books));
        RunReport { replay, filtered: self.filtered, records: self.books.sink().records, nic }
    }
}

#[cold]
fn frame_fault(e: FrameError, other: &mut u64, corrupt: &mut u64, log: &mut FaultLog) {
    if e.is_other_traffic() {
        *other += 1;
    } else {
        *corrupt += 1;
        log.record(Fault::Frame(e));
    }
}

impl<Q, R, O> PollLoop<Q, R, O>
where
    Q: RxQueue + Send + 'static,
    R: RecordSink + Send + 'static,
    O: Observer + Send + 'static,
{
    /// This loop as a poller for an executor worker. When the run ends (see
    /// [`should_stop`](Self::should_stop)) the loop sends itself to `done`
    /// and the poller goes quiet.
    pub fn into_poller(mut self, done: mpsc::Sender<Self>) -> impl FnMut() -> bool + Send + 'static {
        self.start_tsc = self.clock.raw();
        self.last_frame_tsc = self.start_tsc;
        let mut slot = Some(self);
        move || {
            let Some(l) = slot.as_mut() else { return false };
            let busy = l.poll() > 0;
            if (l.stop_requested() || (!busy && l.should_stop()))
                && let Some(mut l) = slot.take()
            {
                l.end_tsc = Some(l.clock.raw());
                let _ = done.send(l);
            }
            busy
        }
    }
}

/// What `weir run` reports: `weir replay`'s keys, plus the loop's and the queues' counters.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunReport {
    /// The same counters as a replay.
    #[serde(flatten)]
    pub replay: ReplayReport,
    /// Datagrams to groups not admitted.
    pub filtered: u64,
    /// DBN records published.
    pub records: u64,
    /// Per queue.
    pub nic: Vec<QueueReport>,
}

/// One queue's counters.
#[derive(Clone, Debug, serde::Serialize)]
pub struct QueueReport {
    /// The queue.
    pub name: String,
    /// Its counters.
    #[serde(flatten)]
    pub stats: QueueStats,
}
