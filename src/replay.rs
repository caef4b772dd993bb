//! The replay job: a capture (or an A/B pair of captures) through the IEX feed handler.
//!
//! ```text
//! CaptureReader ─▶ frame::peel_udp ─▶ FeedHandler (segment → sequencer → decode) ─▶ sink
//!      │                 │                   │
//!      └ truncated tail  └ other traffic     └ gaps, duplicates, resets, errors: all counted
//! ```
//!
//! Faults never stop a replay: each is counted, and the first few are kept with the file and byte
//! offset where they were found. A capture that stops being one mid-way ends there, with what came
//! before replayed and the fault reported. Only a capture that cannot be opened at all is an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir_feeds::frame::{self, FrameError};
use weir_feeds::iex::{
    Arbiter, FeedError, FeedHandler, LineId, Message, MessageSink, MsgContext, Pick, Segment, SeqEvent,
};

use crate::capture::{CaptureError, CaptureReader, CaptureStats, Packet};

/// How many faults are kept with their location.
const FIRST_ERRORS: usize = 10;

/// Where the packet being handled came from, for error reports.
#[derive(Clone, Copy, Debug, Default)]
struct Locus {
    line: usize,
    packet_offset: u64,
    payload_offset: usize,
}

/// Wraps the caller's sink: counts faults and keeps the first few with their location.
struct Tracking<'s, S> {
    inner: &'s mut S,
    paths: [PathBuf; 2],
    locus: Locus,
    errors: u64,
    first_errors: Vec<String>,
    events: u64,
}

impl<S> Tracking<'_, S> {
    #[cold]
    fn record(&mut self, what: std::fmt::Arguments<'_>) {
        self.errors += 1;
        if self.first_errors.len() < FIRST_ERRORS {
            let l = self.locus;
            self.first_errors.push(format!(
                "{} packet at byte {} (UDP payload at +{}): {what}",
                self.paths[l.line].display(),
                l.packet_offset,
                l.payload_offset
            ));
        }
    }
}

impl<S: MessageSink> MessageSink for Tracking<'_, S> {
    #[inline]
    fn on_message(&mut self, ctx: &MsgContext, msg: &Message<'_>) {
        self.inner.on_message(ctx, msg);
    }
    #[inline]
    fn on_event(&mut self, event: &SeqEvent) {
        self.events += 1;
        self.inner.on_event(event);
    }
    #[cold]
    fn on_error(&mut self, error: &FeedError) {
        self.record(format_args!("{error}"));
        self.inner.on_error(error);
    }
    #[inline]
    fn is_done(&self) -> bool {
        self.inner.is_done()
    }
}

/// Gap summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GapReport {
    /// Gaps opened.
    pub count: u64,
    /// Messages still missing at the end (gaps less late fills).
    pub messages_missing: u64,
}

/// Duplicate summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DuplicateReport {
    /// Segments that held nothing new.
    pub segments: u64,
    /// Messages seen twice.
    pub messages: u64,
}

/// A/B arbitration summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArbitrationReport {
    /// Segments taken from the A line.
    pub taken_a: u64,
    /// Segments taken from the B line.
    pub taken_b: u64,
    /// Segments dropped because the other line had delivered everything in them.
    pub dropped: u64,
}

/// Everything a replay counted. Serialises as the `--stats-json` object.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ReplayReport {
    /// Packets read from the capture(s).
    pub packets: u64,
    /// IEX-TP segments handled (heartbeats included).
    pub segments: u64,
    /// Heartbeat segments.
    pub heartbeats: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Delivered messages by one-character IEX type.
    pub messages_by_type: BTreeMap<String, u64>,
    /// Messages of types the protocol does not define.
    pub unknown_types: u64,
    /// Those, by type byte (`0x..` for unprintable ones).
    pub unknown_by_type: BTreeMap<String, u64>,
    /// Records or blocks cut off at the end of a capture.
    pub truncated_records: u64,
    /// Gaps.
    pub gaps: GapReport,
    /// Stream resets (sequence back to 1 under the same session).
    pub resets: u64,
    /// Sessions seen.
    pub sessions: u64,
    /// Duplicates.
    pub duplicates: DuplicateReport,
    /// Messages that arrived late and filled a gap.
    pub late_fill_messages: u64,
    /// Packets captured shorter than on the wire (caplen < origlen).
    pub short_captures: u64,
    /// Datagrams whose UDP length disagrees with the IEX-TP payload length.
    pub udp_length_mismatches: u64,
    /// Frames that are not IPv4/UDP (ARP, IPv6, TCP, fragments, ...).
    pub other_traffic: u64,
    /// Frames cut inside a header or with impossible header fields.
    pub corrupt_frames: u64,
    /// UDP datagrams that are not IEX-TP segments.
    pub non_iex_datagrams: u64,
    /// IEX-TP-shaped segments whose protocol id is no IEX feed (not sequenced, not decoded).
    pub unknown_protocol_segments: u64,
    /// Segments whose first sequence number is out of range (not sequenced, not decoded).
    pub bad_sequence_segments: u64,
    /// Messages shorter than their layout.
    pub decode_errors: u64,
    /// Segments whose blocks do not tile the payload.
    pub block_errors: u64,
    /// Messages announced by a segment but cut off in it.
    pub messages_lost_in_segment: u64,
    /// Zero-length message blocks.
    pub empty_blocks: u64,
    /// In-order segments with an unexpected stream offset.
    pub offset_mismatches: u64,
    /// Sequencing events reported (stream starts, gaps, resets, ...).
    pub sequencing_events: u64,
    /// Uncompressed capture bytes read.
    pub capture_bytes: u64,
    /// IEX-TP payload bytes handled.
    pub payload_bytes: u64,
    /// Wall time.
    pub elapsed_s: f64,
    /// Messages per second of wall time.
    pub messages_per_s: f64,
    /// Uncompressed capture MB (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Faults found (corrupt frames, non-IEX datagrams, short messages, tiling faults, ...).
    pub errors: u64,
    /// The first few, with file and byte offset.
    pub first_errors: Vec<String>,
    /// The inflate backend, when a capture was gzip-compressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip_backend: Option<&'static str>,
    /// A/B arbitration, when two captures were merged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arbitration: Option<ArbitrationReport>,
    /// DBN records made, by schema (`mbo`, `trades`, ...); filled in by the caller that
    /// normalized the messages.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dbn_records: BTreeMap<String, u64>,
    /// Book and normalization counters; filled in by the caller that normalized the messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub books: Option<BooksReport>,
}

/// Book and normalization counters of a replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BooksReport {
    /// Instruments seen.
    pub instruments: u64,
    /// Times reserved capacity was exceeded (an allocation on the message path).
    pub growths: u64,
    /// The normalizer's counters (see `weir_feeds::normalize::NormalizeStats`).
    #[serde(flatten)]
    pub stats: weir_feeds::normalize::NormalizeStats,
}

impl BooksReport {
    /// The counters of a normalizer.
    pub fn of<R>(n: &weir_feeds::normalize::Normalizer<R>) -> Self {
        BooksReport { instruments: n.symbols().len() as u64, growths: n.growths(), stats: *n.stats() }
    }
}

/// Progress, reported about twice a second.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Packets so far.
    pub packets: u64,
    /// Messages so far.
    pub messages: u64,
    /// Uncompressed bytes so far.
    pub bytes: u64,
    /// Time since the start.
    pub elapsed: Duration,
}

const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Replays `path` (and, with `b_feed`, arbitrates it against its B line) into `sink`.
///
/// `progress` is called about twice a second on long files.
pub fn replay<S: MessageSink>(
    path: &Path,
    b_feed: Option<&Path>,
    sink: &mut S,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ReplayReport, CaptureError> {
    let start = Instant::now();
    let mut lines = vec![CaptureReader::open(path)?];
    if let Some(b) = b_feed {
        lines.push(CaptureReader::open(b)?);
    }
    let mut tracking = Tracking {
        inner: sink,
        paths: [path.to_owned(), b_feed.unwrap_or(path).to_owned()],
        locus: Locus::default(),
        errors: 0,
        first_errors: Vec::new(),
        events: 0,
    };
    let mut handler = FeedHandler::new();
    let mut counts = FrameCounts::default();
    let mut arbitration = None;
    let mut ticker = Ticker { last: start, start };

    if lines.len() == 1 {
        let reader = &mut lines[0];
        while let Some(pkt) = next_packet(reader, 0, &mut tracking) {
            tracking.locus.packet_offset = pkt.file_offset;
            match frame::peel_udp(pkt.link, pkt.data) {
                Ok(udp) => {
                    tracking.locus.payload_offset = udp.payload_offset;
                    handler.on_datagram(udp.payload, udp.missing, pkt.ts_ns, &mut tracking);
                }
                Err(e) => counts.frame_error(e, &mut tracking),
            }
            if tracking.is_done() {
                break;
            }
            if counts.tick() {
                let st = reader.stats();
                ticker.maybe(progress, st.packets, handler.stats().messages, st.bytes);
            }
        }
    } else {
        arbitration = Some(merge_lines(&mut lines, &mut handler, &mut tracking, &mut counts, &mut ticker, progress));
    }

    let elapsed = start.elapsed().as_secs_f64();
    let mut capture = CaptureStats::default();
    for (i, r) in lines.iter().enumerate() {
        if let Some(why) = r.truncation() {
            // Always kept, even past the first few: it says where the data stops.
            tracking.errors += 1;
            tracking.first_errors.push(format!("{}: {why}", tracking.paths[i].display()));
        }
        let s = r.stats();
        capture.packets += s.packets;
        capture.short_captures += s.short_captures;
        capture.truncated_records += s.truncated_records;
        capture.bytes += s.bytes;
    }
    let mut report = report_of(
        &handler,
        &Tally {
            packets: capture.packets,
            capture_bytes: capture.bytes,
            short_captures: capture.short_captures,
            truncated_records: capture.truncated_records,
            other_traffic: counts.other_traffic,
            corrupt_frames: counts.corrupt,
            sequencing_events: tracking.events,
            errors: tracking.errors,
        },
        elapsed,
    );
    report.first_errors = tracking.first_errors;
    report.gzip_backend = lines.iter().any(|r| r.is_gzip()).then_some(crate::capture::GZIP_BACKEND);
    report.arbitration = arbitration;
    Ok(report)
}

/// Counts kept outside the feed handler, for [`report_of`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    /// Packets (frames) read.
    pub packets: u64,
    /// Bytes read (uncompressed capture bytes; frame bytes for a NIC).
    pub capture_bytes: u64,
    /// Packets captured shorter than on the wire.
    pub short_captures: u64,
    /// Records cut off at the end of a capture.
    pub truncated_records: u64,
    /// Frames that are not IPv4/UDP.
    pub other_traffic: u64,
    /// Frames cut inside a header or with impossible fields.
    pub corrupt_frames: u64,
    /// Sequencing events seen by the sink.
    pub sequencing_events: u64,
    /// Faults found.
    pub errors: u64,
}

/// A report from a feed handler's counters and the caller's own; `first_errors`, `gzip_backend`,
/// `arbitration`, `dbn_records` and `books` are left for the caller.
pub fn report_of(handler: &FeedHandler, tally: &Tally, elapsed: f64) -> ReplayReport {
    let fs = handler.stats();
    let ss = handler.seq_stats();
    let mut messages_by_type = BTreeMap::new();
    let mut unknown_by_type = BTreeMap::new();
    for t in 0..=255u8 {
        let key = || {
            if t.is_ascii_graphic() { (t as char).to_string() } else { format!("0x{t:02x}") }
        };
        if fs.by_type[usize::from(t)] > 0 {
            messages_by_type.insert(key(), fs.by_type[usize::from(t)]);
        }
        if fs.unknown_by_type[usize::from(t)] > 0 {
            unknown_by_type.insert(key(), fs.unknown_by_type[usize::from(t)]);
        }
    }
    let rate = |x: f64| if elapsed > 0.0 { x / elapsed } else { 0.0 };
    ReplayReport {
        packets: tally.packets,
        segments: fs.segments,
        heartbeats: fs.heartbeats,
        messages: fs.messages,
        messages_by_type,
        unknown_types: fs.unknown_types(),
        unknown_by_type,
        truncated_records: tally.truncated_records,
        gaps: GapReport { count: ss.gaps, messages_missing: ss.messages_missing },
        resets: ss.resets,
        sessions: ss.sessions,
        duplicates: DuplicateReport { segments: ss.segments_duplicate, messages: ss.messages_duplicate },
        late_fill_messages: ss.messages_recovered,
        short_captures: tally.short_captures,
        udp_length_mismatches: fs.length_mismatches,
        other_traffic: tally.other_traffic,
        corrupt_frames: tally.corrupt_frames,
        non_iex_datagrams: fs.not_iex,
        unknown_protocol_segments: fs.unknown_protocol,
        bad_sequence_segments: fs.bad_sequence,
        decode_errors: fs.decode_errors,
        block_errors: fs.block_errors,
        messages_lost_in_segment: fs.messages_lost_in_segment,
        empty_blocks: fs.empty_blocks,
        offset_mismatches: ss.offset_mismatches,
        sequencing_events: tally.sequencing_events,
        capture_bytes: tally.capture_bytes,
        payload_bytes: fs.bytes,
        elapsed_s: elapsed,
        messages_per_s: rate(fs.messages as f64),
        mb_per_s: rate(tally.capture_bytes as f64 / 1e6),
        errors: tally.errors,
        first_errors: Vec::new(),
        gzip_backend: None,
        arbitration: None,
        dbn_records: BTreeMap::new(),
        books: None,
    }
}

#[derive(Default)]
struct FrameCounts {
    other_traffic: u64,
    corrupt: u64,
    since_tick: u32,
}

impl FrameCounts {
    #[cold]
    fn frame_error<S>(&mut self, e: FrameError, tracking: &mut Tracking<'_, S>) {
        if e.is_other_traffic() {
            self.other_traffic += 1;
        } else {
            self.corrupt += 1;
            tracking.locus.payload_offset = 0;
            tracking.record(format_args!("{e}"));
        }
    }

    #[inline]
    fn tick(&mut self) -> bool {
        self.since_tick += 1;
        if self.since_tick == 1 << 14 {
            self.since_tick = 0;
            true
        } else {
            false
        }
    }
}

struct Ticker {
    last: Instant,
    start: Instant,
}

impl Ticker {
    fn maybe(&mut self, progress: &mut dyn FnMut(&Progress), packets: u64, messages: u64, bytes: u64) {
        let now = Instant::now();
        if now.duration_since(self.last) >= PROGRESS_EVERY {
            self.last = now;
            progress(&Progress { packets, messages, bytes, elapsed: now.duration_since(self.start) });
        }
    }
}

/// A line's next IEX segment, copied out of its reader so both lines can be looked at at once.
#[derive(Default)]
struct LineHead {
    payload: Vec<u8>,
    missing: usize,
    ts: i64,
    locus: Locus,
    present: bool,
}

/// Reads the line until its next UDP datagram (counting everything else), into `head`.
fn advance<S>(
    reader: &mut CaptureReader,
    line: usize,
    head: &mut LineHead,
    counts: &mut FrameCounts,
    tracking: &mut Tracking<'_, S>,
) {
    head.present = false;
    while let Some(pkt) = next_packet(reader, line, tracking) {
        match frame::peel_udp(pkt.link, pkt.data) {
            Ok(udp) => {
                head.payload.clear();
                head.payload.extend_from_slice(udp.payload);
                head.missing = udp.missing;
                head.ts = pkt.ts_ns;
                head.locus = Locus { line, packet_offset: pkt.file_offset, payload_offset: udp.payload_offset };
                head.present = true;
                return;
            }
            Err(e) => {
                tracking.locus = Locus { line, packet_offset: pkt.file_offset, payload_offset: 0 };
                counts.frame_error(e, tracking);
            }
        }
    }
}

/// The line's next packet. A capture that stops being one mid-way ends that line: the fault is
/// recorded with its offset, and everything before it has been replayed.
fn next_packet<'r, S>(
    reader: &'r mut CaptureReader,
    line: usize,
    tracking: &mut Tracking<'_, S>,
) -> Option<Packet<'r>> {
    match reader.next_packet() {
        Ok(p) => p,
        Err(e) => {
            tracking.errors += 1;
            tracking.first_errors.push(format!("{e} (line {} stops here)", if line == 0 { "A" } else { "B" }));
            None
        }
    }
}

fn merge_lines<S: MessageSink>(
    lines: &mut [CaptureReader],
    handler: &mut FeedHandler,
    tracking: &mut Tracking<'_, S>,
    counts: &mut FrameCounts,
    ticker: &mut Ticker,
    progress: &mut dyn FnMut(&Progress),
) -> ArbitrationReport {
    let mut report = ArbitrationReport::default();
    let mut heads = [LineHead::default(), LineHead::default()];
    for (i, (reader, head)) in lines.iter_mut().zip(heads.iter_mut()).enumerate() {
        advance(reader, i, head, counts, tracking);
    }
    loop {
        // A datagram that is not an IEX segment goes straight to the handler, which counts it.
        for i in 0..2 {
            while heads[i].present && Segment::parse(&heads[i].payload).is_err() {
                tracking.locus = heads[i].locus;
                handler.on_datagram(&heads[i].payload, heads[i].missing, heads[i].ts, tracking);
                advance(&mut lines[i], i, &mut heads[i], counts, tracking);
            }
        }
        fn seg(h: &LineHead) -> Option<Segment<'_>> {
            if h.present { Segment::parse(&h.payload).ok() } else { None }
        }
        let (sa, sb) = (seg(&heads[0]), seg(&heads[1]));
        let Some(pick) = Arbiter.pick(handler, sa.as_ref(), sb.as_ref()) else {
            break;
        };
        let line = match pick {
            Pick::Drop(l) => {
                report.dropped += 1;
                l
            }
            Pick::Take(l) => {
                let (i, s) = match l {
                    LineId::A => (0, sa),
                    LineId::B => (1, sb),
                };
                if let Some(s) = s {
                    let h = &heads[i];
                    tracking.locus = h.locus;
                    handler.on_segment(&s, h.payload.len() + h.missing, h.ts, tracking);
                }
                if i == 0 {
                    report.taken_a += 1;
                } else {
                    report.taken_b += 1;
                }
                l
            }
        };
        if tracking.is_done() {
            break;
        }
        let i = if line == LineId::A { 0 } else { 1 };
        advance(&mut lines[i], i, &mut heads[i], counts, tracking);
        if counts.tick() {
            let (a, b) = (lines[0].stats(), lines[1].stats());
            ticker.maybe(progress, a.packets + b.packets, handler.stats().messages, a.bytes + b.bytes);
        }
    }
    report
}
