//! Sequencing per (protocol, channel, session).
//!
//! For every segment the [`Sequencer`] returns a [`Verdict`] (which blocks are new) and reports
//! what happened to the stream as [`SeqEvent`]s through a callback, so the layers above see gaps,
//! late fills, duplicates, resets and session changes explicitly instead of inferring them.
//!
//! Rules (IEX.md §2):
//! 1. A stream is keyed by (protocol, channel); a new session id on it is a session change, unless
//!    the segment was sent before anything of the current session (a straggler: stale).
//! 2. `first_seq == expected` is in order; then `stream_offset` must equal the expected offset.
//! 3. `first_seq > expected` opens a gap `[expected, first_seq - 1]`; a heartbeat (no messages)
//!    whose sequence is ahead of us is loss at the tail, found the same way.
//! 4. Blocks already seen are duplicates. Blocks that fall into open gaps are late fills:
//!    delivered, flagged, and taken off the gaps; a segment may fill several gaps and extend past
//!    the expected sequence at once.
//! 5. A stream reset (IEX's 2017 DEEP sample does this 11 times under one session id): sequence 1
//!    and offset 0 after progress, sent after everything seen, starting with a different first
//!    message than the current run (so a late copy of the run's first segment is not a reset). If
//!    the new run's first segment was lost, a segment sent more than a second after everything
//!    seen, with its sequence and stream offset both behind, is the new run.
//! 6. A stream first seen past sequence 1 (a late join, or a run whose start was lost) opens the
//!    gap `[1, first_seq - 1]`.
//! 7. Segments sent before the current run began (the previous run's or session's) are stale.
//! 8. Blocks that a damaged datagram announced but did not hold are put back as an open gap
//!    ([`Sequencer::undelivered`]), so the other line or a retransmission can still fill them.
//!
//! State is fixed-size: no allocation, ever. Open gaps are kept in a small array; when it is full
//! the oldest gap is given up on (its messages stay counted as missing).

use super::transport::Segment;

/// Identifies one sequence space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamKey {
    /// Message Protocol ID.
    pub protocol: u16,
    /// Channel ID.
    pub channel: u32,
    /// Session ID.
    pub session: u32,
}

impl StreamKey {
    /// The key of a segment.
    #[inline]
    pub fn of(seg: &Segment<'_>) -> Self {
        StreamKey { protocol: seg.protocol_id(), channel: seg.channel(), session: seg.session() }
    }
}

/// Something that happened to a stream. Sequence ranges are inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqEvent {
    /// The first segment seen for this (protocol, channel).
    StreamStart {
        /// The stream.
        key: StreamKey,
        /// Its first sequence number seen.
        first_seq: i64,
    },
    /// A new session id on a known (protocol, channel): all state for it starts over.
    SessionChange {
        /// The new stream.
        key: StreamKey,
        /// The session it replaces.
        previous_session: u32,
    },
    /// Sequence back to 1 and offset 0 under the same session.
    Reset {
        /// The stream.
        key: StreamKey,
        /// The sequence number that was expected next before the reset.
        expected_seq: i64,
    },
    /// Messages missing.
    Gap {
        /// The stream.
        key: StreamKey,
        /// First missing sequence number.
        first: i64,
        /// Last missing sequence number.
        last: i64,
        /// Found from a heartbeat (loss at the tail) rather than from a data segment.
        from_heartbeat: bool,
    },
    /// Messages that arrived after a later segment and fill (part of) an open gap.
    LateFill {
        /// The stream.
        key: StreamKey,
        /// First sequence number filled.
        first: i64,
        /// Last sequence number filled.
        last: i64,
    },
    /// Messages seen before (a duplicate segment, or the overlapping part of one).
    Duplicate {
        /// The stream.
        key: StreamKey,
        /// First duplicate sequence number.
        first: i64,
        /// Last duplicate sequence number.
        last: i64,
    },
    /// An in-order segment whose stream offset is not where the previous one ended.
    OffsetMismatch {
        /// The stream.
        key: StreamKey,
        /// The segment's first sequence number.
        seq: i64,
        /// Offset expected.
        expected: i64,
        /// Offset found.
        actual: i64,
    },
    /// An open gap given up on because too many were open at once.
    GapAbandoned {
        /// The stream.
        key: StreamKey,
        /// First sequence number of the gap.
        first: i64,
        /// Last sequence number of the gap.
        last: i64,
    },
    /// More (protocol, channel) pairs than the sequencer tracks; this segment was delivered
    /// without sequencing.
    Untracked {
        /// The stream.
        key: StreamKey,
    },
}

/// Which blocks of a segment to deliver: every block numbered `new_from` or above (new, in
/// order), and every block inside a late range (filling a gap). Anything else was seen before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Blocks with a sequence number at or above this are new.
    pub new_from: i64,
    late: [(i64, i64); MAX_OPEN_GAPS],
    late_len: u8,
}

impl Verdict {
    /// Deliver nothing.
    pub const NOTHING: Verdict = Verdict { new_from: i64::MAX, late: [(0, 0); MAX_OPEN_GAPS], late_len: 0 };

    /// Deliver every block from `first` on.
    #[inline]
    pub const fn from(first: i64) -> Verdict {
        Verdict { new_from: first, ..Verdict::NOTHING }
    }

    /// `Some(late)` if the block numbered `seq` is to be delivered (`late` when it fills a gap).
    #[inline]
    pub fn delivers(&self, seq: i64) -> Option<bool> {
        if seq >= self.new_from {
            return Some(false);
        }
        self.late().iter().any(|&(lo, hi)| lo <= seq && seq <= hi).then_some(true)
    }

    /// The inclusive ranges of old sequence numbers this segment fills.
    #[inline]
    pub fn late(&self) -> &[(i64, i64)] {
        &self.late[..usize::from(self.late_len)]
    }

    fn push_late(&mut self, lo: i64, hi: i64) {
        if usize::from(self.late_len) < MAX_OPEN_GAPS {
            self.late[usize::from(self.late_len)] = (lo, hi);
            self.late_len += 1;
        }
    }
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict::NOTHING
    }
}

/// Counters kept by the sequencer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqStats {
    /// Gaps opened.
    pub gaps: u64,
    /// Messages in gaps, less those later filled.
    pub messages_missing: u64,
    /// Messages delivered late into a gap.
    pub messages_recovered: u64,
    /// Duplicate messages dropped.
    pub messages_duplicate: u64,
    /// Segments dropped whole as duplicates (heartbeats included).
    pub segments_duplicate: u64,
    /// Stream resets.
    pub resets: u64,
    /// Sessions seen (the first of each stream counts).
    pub sessions: u64,
    /// In-order segments with an unexpected stream offset.
    pub offset_mismatches: u64,
    /// Gaps given up on for lack of room.
    pub gaps_abandoned: u64,
    /// Segments of streams beyond capacity.
    pub untracked_segments: u64,
    /// Segments sent before the current run or session began (stragglers), dropped.
    pub segments_stale: u64,
}

const MAX_STREAMS: usize = 32;
const MAX_OPEN_GAPS: usize = 16;

#[derive(Clone, Copy, Debug)]
struct Stream {
    protocol: u16,
    channel: u32,
    session: u32,
    next_seq: i64,
    next_offset: i64,
    /// Segments sent before this belong to an earlier run or session.
    run_floor: i64,
    /// Earliest send time seen in the current run.
    run_min_send: i64,
    /// Latest send time seen.
    last_send: i64,
    /// The first 10 bytes (type, flags, timestamp) of the run's message 1, once seen.
    run_first_msg: Option<[u8; 10]>,
    gaps: [(i64, i64); MAX_OPEN_GAPS],
    open_gaps: usize,
}

impl Stream {
    fn key(&self) -> StreamKey {
        StreamKey { protocol: self.protocol, channel: self.channel, session: self.session }
    }

    /// A new run starting with `seg`; `run_floor` separates it from what came before.
    fn start(seg: &Segment<'_>, run_floor: i64) -> Self {
        Stream {
            protocol: seg.protocol_id(),
            channel: seg.channel(),
            session: seg.session(),
            next_seq: seg.first_seq().saturating_add(i64::from(seg.message_count())),
            next_offset: seg.stream_offset().saturating_add(i64::from(seg.payload_len())),
            run_floor,
            run_min_send: seg.send_time(),
            last_send: seg.send_time(),
            run_first_msg: if seg.first_seq() == 1 { fingerprint(seg) } else { None },
            gaps: [(0, 0); MAX_OPEN_GAPS],
            open_gaps: 0,
        }
    }

    /// The floor for a run that starts after everything seen so far.
    fn next_floor(&self) -> i64 {
        self.last_send.saturating_add(1)
    }

    /// A segment of another session: a straggler of an earlier one (sent before anything of the
    /// current run), or the start of a new session?
    #[inline]
    fn is_straggler(&self, seg: &Segment<'_>) -> bool {
        seg.send_time() < self.run_min_send
    }

    /// Is `seg` the first segment of a new run of this session (rule 5)?
    #[inline]
    fn is_reset(&self, seg: &Segment<'_>) -> bool {
        if seg.send_time() <= self.last_send || self.next_seq <= 1 {
            return false;
        }
        let first = seg.first_seq();
        if first == 1 && seg.stream_offset() == 0 {
            return seg.is_heartbeat() || self.run_first_msg.is_none_or(|m| fingerprint(seg) != Some(m));
        }
        // The new run's first segment was lost: behind in both sequence and offset, and sent well
        // after everything seen (IEX's runs are separate test sessions, not a network reorder).
        let end = first.saturating_add(i64::from(seg.message_count()));
        first < self.next_seq
            && seg.stream_offset() < self.next_offset
            && seg.send_time() > self.last_send.saturating_add(RESET_QUIET_NS)
            && !self.overlaps_gap(first, end)
    }

    /// Whether `[first, end)` meets an open gap.
    #[inline]
    fn overlaps_gap(&self, first: i64, end: i64) -> bool {
        self.gaps[..self.open_gaps].iter().any(|&(lo, hi)| lo < end && hi >= first)
    }
}

/// How long a stream must have been quiet before a segment behind it counts as a new run.
const RESET_QUIET_NS: i64 = 1_000_000_000;

/// Messages in the inclusive range `[first, last]`, without overflow for any pair of i64.
#[inline]
fn span(first: i64, last: i64) -> u64 {
    (i128::from(last) - i128::from(first) + 1).clamp(0, i128::from(u64::MAX)) as u64
}

/// Type, flag byte and timestamp of a segment's first message (zero-padded if shorter).
#[inline]
fn fingerprint(seg: &Segment<'_>) -> Option<[u8; 10]> {
    let block = seg.blocks().next()?.ok()?;
    let mut fp = [0u8; 10];
    let n = block.bytes.len().min(10);
    fp[..n].copy_from_slice(&block.bytes[..n]);
    Some(fp)
}

/// Where a segment stands against a stream's state; used by the sequencer and by the A/B
/// [`Arbiter`](super::Arbiter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Nothing in it is new: every block was seen, or it belongs to an earlier run or session.
    Stale,
    /// It holds the next expected message (or is a heartbeat exactly at it).
    Next,
    /// It starts past the next expected message, or starts a new run or session, or its stream is
    /// unknown.
    Ahead,
}

/// Sequencing state for every stream seen. See the module docs for the rules.
#[derive(Clone, Debug)]
pub struct Sequencer {
    streams: [Option<Stream>; MAX_STREAMS],
    /// The stream used last: almost every segment belongs to it.
    last: usize,
    stats: SeqStats,
}

impl Default for Sequencer {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequencer {
    /// An empty sequencer.
    pub const fn new() -> Self {
        Sequencer {
            streams: [None; MAX_STREAMS],
            last: 0,
            stats: SeqStats {
                gaps: 0,
                messages_missing: 0,
                messages_recovered: 0,
                messages_duplicate: 0,
                segments_duplicate: 0,
                resets: 0,
                sessions: 0,
                offset_mismatches: 0,
                gaps_abandoned: 0,
                untracked_segments: 0,
                segments_stale: 0,
            },
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &SeqStats {
        &self.stats
    }

    /// The next expected sequence number of a (protocol, channel), and its session.
    pub fn expected(&self, protocol: u16, channel: u32) -> Option<(u32, i64)> {
        let s = self.streams[self.find(protocol, channel)?].as_ref()?;
        Some((s.session, s.next_seq))
    }

    /// The open gaps of a (protocol, channel), oldest first.
    pub fn open_gaps(&self, protocol: u16, channel: u32) -> &[(i64, i64)] {
        match self.find(protocol, channel).and_then(|i| self.streams[i].as_ref()) {
            Some(s) => &s.gaps[..s.open_gaps],
            None => &[],
        }
    }

    #[inline]
    fn find(&self, protocol: u16, channel: u32) -> Option<usize> {
        let hit = |s: &Option<Stream>| matches!(s, Some(s) if s.protocol == protocol && s.channel == channel);
        if hit(&self.streams[self.last]) {
            return Some(self.last);
        }
        self.streams.iter().position(hit)
    }

    /// Where `seg` stands against the current state of its stream (the same rules as
    /// [`Sequencer::on_segment`], without changing anything).
    #[inline]
    pub fn standing(&self, seg: &Segment<'_>) -> Standing {
        let Some(s) = self.find(seg.protocol_id(), seg.channel()).and_then(|i| self.streams[i].as_ref()) else {
            return Standing::Ahead;
        };
        if seg.session() != s.session {
            return if s.is_straggler(seg) { Standing::Stale } else { Standing::Ahead };
        }
        if s.is_reset(seg) {
            return Standing::Ahead;
        }
        if seg.send_time() < s.run_floor {
            return Standing::Stale;
        }
        let (first, end) = (seg.first_seq(), seg.first_seq().saturating_add(i64::from(seg.message_count())));
        if first > s.next_seq {
            Standing::Ahead
        } else if end > s.next_seq || (seg.is_heartbeat() && first == s.next_seq) || s.overlaps_gap(first, end) {
            // New messages, or old ones that fill a gap.
            Standing::Next
        } else {
            Standing::Stale
        }
    }

    /// Sequences one segment: returns which of its blocks are new and reports events to `on_event`.
    #[inline]
    pub fn on_segment(&mut self, seg: &Segment<'_>, on_event: &mut impl FnMut(SeqEvent)) -> Verdict {
        let count = seg.message_count();
        let first = seg.first_seq();
        let end = first.saturating_add(i64::from(count));
        let Some(idx) = self.find(seg.protocol_id(), seg.channel()) else {
            return self.new_stream(seg, on_event);
        };
        self.last = idx;
        let stats = &mut self.stats;
        let Some(s) = self.streams[idx].as_mut() else {
            return Verdict::NOTHING;
        };
        if seg.session() != s.session {
            if s.is_straggler(seg) {
                stats.segments_stale += 1;
                return Verdict::NOTHING;
            }
            let previous_session = s.session;
            // Open gaps of the old session stay counted as missing: they cannot be filled any more.
            *s = Stream::start(seg, s.next_floor());
            stats.sessions += 1;
            on_event(SeqEvent::SessionChange { key: s.key(), previous_session });
            late_join(s, stats, first, on_event);
            return Verdict::from(first);
        }
        if s.is_reset(seg) {
            let expected_seq = s.next_seq;
            *s = Stream::start(seg, s.next_floor());
            stats.resets += 1;
            on_event(SeqEvent::Reset { key: s.key(), expected_seq });
            late_join(s, stats, first, on_event);
            return Verdict::from(first);
        }
        if seg.send_time() < s.run_floor {
            stats.segments_stale += 1;
            return Verdict::NOTHING;
        }
        let key = s.key();
        s.last_send = s.last_send.max(seg.send_time());
        s.run_min_send = s.run_min_send.min(seg.send_time());
        if first == s.next_seq {
            if first == 1 && count > 0 && s.run_first_msg.is_none() {
                s.run_first_msg = fingerprint(seg);
            }
            if seg.stream_offset() != s.next_offset {
                stats.offset_mismatches += 1;
                on_event(SeqEvent::OffsetMismatch {
                    key,
                    seq: first,
                    expected: s.next_offset,
                    actual: seg.stream_offset(),
                });
            }
            s.next_seq = end;
            s.next_offset = seg.stream_offset().saturating_add(i64::from(seg.payload_len()));
            return Verdict::from(first);
        }
        if first > s.next_seq {
            let (gap_first, gap_last) = (s.next_seq, first - 1);
            stats.gaps += 1;
            stats.messages_missing = stats.messages_missing.saturating_add(span(gap_first, gap_last));
            on_event(SeqEvent::Gap { key, first: gap_first, last: gap_last, from_heartbeat: count == 0 });
            add_gap(s, stats, gap_first, gap_last, on_event);
            s.next_seq = end;
            s.next_offset = seg.stream_offset().saturating_add(i64::from(seg.payload_len()));
            return Verdict::from(first);
        }
        // first < next_seq: part or all of it lies in the past.
        if count == 0 {
            stats.segments_duplicate += 1;
            return Verdict::NOTHING;
        }
        let past_end = end.min(s.next_seq); // [first, past_end) was due before
        let mut v = Verdict::NOTHING;
        let mut filled = 0u64;
        for &(lo, hi) in &s.gaps[..s.open_gaps] {
            let (lo, hi) = (lo.max(first), hi.min(past_end - 1));
            if lo <= hi {
                v.push_late(lo, hi);
                filled += span(lo, hi);
            }
        }
        for &(lo, hi) in v.late() {
            take_from_gaps(s, stats, lo, hi, on_event);
            on_event(SeqEvent::LateFill { key, first: lo, last: hi });
        }
        stats.messages_missing = stats.messages_missing.saturating_sub(filled);
        stats.messages_recovered += filled;
        let dup = span(first, past_end - 1) - filled;
        if dup > 0 {
            stats.messages_duplicate += dup;
            on_event(SeqEvent::Duplicate { key, first, last: past_end - 1 });
        }
        if end > s.next_seq {
            // Runs past what we have: the rest is new. The offset check resumes at the next segment.
            v.new_from = s.next_seq;
            s.next_seq = end;
            s.next_offset = seg.stream_offset().saturating_add(i64::from(seg.payload_len()));
        } else if filled == 0 {
            stats.segments_duplicate += 1;
        }
        v
    }

    /// Blocks `[from_seq, …)` of `seg` were to be delivered under `verdict` but were not (the
    /// datagram was cut short, or its blocks did not tile): put them back as open gaps so another
    /// copy can still fill them.
    pub fn undelivered(
        &mut self,
        seg: &Segment<'_>,
        verdict: &Verdict,
        from_seq: i64,
        on_event: &mut impl FnMut(SeqEvent),
    ) {
        let end = seg.first_seq().saturating_add(i64::from(seg.message_count()));
        let Some(idx) = self.find(seg.protocol_id(), seg.channel()) else { return };
        let stats = &mut self.stats;
        let Some(s) = self.streams[idx].as_mut() else { return };
        if s.session != seg.session() {
            return;
        }
        let key = s.key();
        let mut reopen = |lo: i64, hi: i64| {
            if lo <= hi {
                stats.gaps += 1;
                stats.messages_missing = stats.messages_missing.saturating_add(span(lo, hi));
                on_event(SeqEvent::Gap { key, first: lo, last: hi, from_heartbeat: false });
                add_gap(s, stats, lo, hi, on_event);
            }
        };
        for &(lo, hi) in verdict.late() {
            reopen(lo.max(from_seq), hi);
        }
        if verdict.new_from < end {
            reopen(verdict.new_from.max(from_seq), end - 1);
        }
    }

    #[cold]
    fn new_stream(&mut self, seg: &Segment<'_>, on_event: &mut impl FnMut(SeqEvent)) -> Verdict {
        let key = StreamKey::of(seg);
        let Some(slot) = self.streams.iter().position(|s| s.is_none()) else {
            self.stats.untracked_segments += 1;
            on_event(SeqEvent::Untracked { key });
            return Verdict::from(seg.first_seq());
        };
        let mut s = Stream::start(seg, i64::MIN);
        self.stats.sessions += 1;
        on_event(SeqEvent::StreamStart { key, first_seq: seg.first_seq() });
        late_join(&mut s, &mut self.stats, seg.first_seq(), on_event);
        self.streams[slot] = Some(s);
        self.last = slot;
        Verdict::from(seg.first_seq())
    }
}

/// A run starts at 1: starting to follow it later means messages `1..first_seq` were missed, an
/// open gap like any other (a late arrival fills it).
fn late_join(s: &mut Stream, stats: &mut SeqStats, first_seq: i64, on_event: &mut impl FnMut(SeqEvent)) {
    if first_seq > 1 {
        stats.gaps += 1;
        stats.messages_missing = stats.messages_missing.saturating_add(span(1, first_seq - 1));
        on_event(SeqEvent::Gap { key: s.key(), first: 1, last: first_seq - 1, from_heartbeat: false });
        add_gap(s, stats, 1, first_seq - 1, on_event);
    }
}

/// Records an open gap, giving up on the oldest one when there is no room.
fn add_gap(s: &mut Stream, stats: &mut SeqStats, lo: i64, hi: i64, on_event: &mut impl FnMut(SeqEvent)) {
    if s.open_gaps == MAX_OPEN_GAPS {
        let (f, l) = s.gaps[0];
        s.gaps.copy_within(1.., 0);
        s.open_gaps -= 1;
        stats.gaps_abandoned += 1;
        on_event(SeqEvent::GapAbandoned { key: s.key(), first: f, last: l });
    }
    s.gaps[s.open_gaps] = (lo, hi);
    s.open_gaps += 1;
}

/// Takes `[lo, hi]`, which lies inside one open gap, off it: shrinking, removing or splitting it.
fn take_from_gaps(s: &mut Stream, stats: &mut SeqStats, lo: i64, hi: i64, on_event: &mut impl FnMut(SeqEvent)) {
    let Some(g) = s.gaps[..s.open_gaps].iter().position(|&(gf, gl)| gf <= lo && hi <= gl) else { return };
    let (gf, gl) = s.gaps[g];
    match (lo == gf, hi == gl) {
        (true, true) => {
            s.gaps.copy_within(g + 1..s.open_gaps, g);
            s.open_gaps -= 1;
        }
        (true, false) => s.gaps[g].0 = hi + 1,
        (false, true) => s.gaps[g].1 = lo - 1,
        (false, false) => {
            s.gaps[g].1 = lo - 1;
            if s.open_gaps < MAX_OPEN_GAPS {
                s.gaps.copy_within(g + 1..s.open_gaps, g + 2);
                s.gaps[g + 1] = (hi + 1, gl);
                s.open_gaps += 1;
            } else {
                stats.gaps_abandoned += 1;
                on_event(SeqEvent::GapAbandoned { key: s.key(), first: hi + 1, last: gl });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iex::builder::SegmentBuilder;

    /// A stream of single-message segments, seq 1..=n, plus helpers to feed them.
    struct Feed {
        segs: Vec<Vec<u8>>,
    }

    impl Feed {
        fn new(n: usize, per_segment: usize) -> Self {
            let mut b = SegmentBuilder::new(0x8004, 1, 7);
            let mut segs = Vec::new();
            for i in 0..n {
                b.push(&[b'Z', i as u8, 0, 0]);
                if b.pending() as usize == per_segment {
                    segs.push(b.finish(1000 + i as i64));
                }
            }
            if b.pending() > 0 {
                segs.push(b.finish(1000 + n as i64));
            }
            Feed { segs }
        }
    }

    /// The sequence numbers a verdict delivers from a segment.
    fn delivered(seg: &Segment<'_>, v: &Verdict) -> Vec<i64> {
        (0..i64::from(seg.message_count())).map(|k| seg.first_seq() + k).filter(|&q| v.delivers(q).is_some()).collect()
    }

    fn run(seq: &mut Sequencer, segs: &[&[u8]]) -> (Vec<Vec<i64>>, Vec<SeqEvent>) {
        let mut events = Vec::new();
        let delivered = segs
            .iter()
            .map(|s| {
                let seg = Segment::parse(s).unwrap();
                let v = seq.on_segment(&seg, &mut |e| events.push(e));
                delivered(&seg, &v)
            })
            .collect();
        (delivered, events)
    }

    #[test]
    fn in_order_stream_has_no_events_but_start() {
        let f = Feed::new(10, 3);
        let mut s = Sequencer::new();
        let segs: Vec<&[u8]> = f.segs.iter().map(|v| v.as_slice()).collect();
        let (d, e) = run(&mut s, &segs);
        assert_eq!(e.len(), 1);
        assert!(matches!(e[0], SeqEvent::StreamStart { first_seq: 1, .. }));
        assert_eq!(d.concat(), (1..=10).collect::<Vec<_>>());
        assert_eq!(s.stats().sessions, 1);
        assert_eq!(s.stats().offset_mismatches, 0);
    }

    #[test]
    fn gap_then_late_fill_then_duplicate() {
        let f = Feed::new(9, 3); // segments [1-3] [4-6] [7-9]
        let mut s = Sequencer::new();
        let (d, e) = run(&mut s, &[&f.segs[0], &f.segs[2], &f.segs[1], &f.segs[1]]);
        assert_eq!(
            e[1],
            SeqEvent::Gap {
                key: StreamKey { protocol: 0x8004, channel: 1, session: 7 },
                first: 4,
                last: 6,
                from_heartbeat: false
            }
        );
        assert!(matches!(e[2], SeqEvent::LateFill { first: 4, last: 6, .. }));
        assert!(matches!(e[3], SeqEvent::Duplicate { first: 4, last: 6, .. }));
        assert_eq!(d[2], [4, 5, 6]);
        assert!(d[3].is_empty());
        let st = s.stats();
        assert_eq!((st.gaps, st.messages_missing, st.messages_recovered, st.messages_duplicate), (1, 0, 3, 3));
    }

    #[test]
    fn one_segment_fills_two_gaps_and_runs_past_the_end() {
        // Line A cut 3,3,3,3 loses [4-6] and [10-12]; line B cut 4,8 loses [1-4] and brings [5-12].
        let f = Feed::new(15, 3);
        let mut b = SegmentBuilder::new(0x8004, 1, 7).starting_at(5, 4 * 6);
        for i in 4..12u8 {
            b.push(&[b'Z', i, 0, 0]);
        }
        let b5_12 = b.finish(1010);
        let mut s = Sequencer::new();
        let (d, _) = run(&mut s, &[&f.segs[0], &f.segs[2], &b5_12, &f.segs[4]]);
        assert_eq!(d[2], [5, 6, 10, 11, 12]);
        assert_eq!(d[3], [13, 14, 15]);
        let st = s.stats();
        assert_eq!((st.gaps, st.messages_missing, st.messages_recovered, st.messages_duplicate), (1, 1, 2, 3));
        assert_eq!(s.open_gaps(0x8004, 1), [(4, 4)]);
    }

    #[test]
    fn partial_overlap_is_trimmed() {
        let mut b = SegmentBuilder::new(0x8003, 1, 7);
        for i in 0..5u8 {
            b.push(&[b'Q', i]);
        }
        let whole = b.finish(10); // 1..=5
        let mut b2 = SegmentBuilder::new(0x8003, 1, 7);
        for i in 0..3u8 {
            b2.push(&[b'Q', i]);
        }
        let head = b2.finish(9); // 1..=3
        let mut s = Sequencer::new();
        let (d, e) = run(&mut s, &[&head, &whole]);
        assert_eq!(d[1], [4, 5]);
        assert!(matches!(e[1], SeqEvent::Duplicate { first: 1, last: 3, .. }));
    }

    #[test]
    fn heartbeat_reveals_tail_loss() {
        let f = Feed::new(3, 3);
        let mut b = SegmentBuilder::new(0x8004, 1, 7).starting_at(10, 500);
        let hb = b.heartbeat(5000);
        let mut s = Sequencer::new();
        let (_, e) = run(&mut s, &[&f.segs[0], &hb]);
        assert!(matches!(e[1], SeqEvent::Gap { first: 4, last: 9, from_heartbeat: true, .. }));
        assert_eq!(s.stats().messages_missing, 6);
    }

    #[test]
    fn reset_and_session_change_and_duplicate_first_segment() {
        let f = Feed::new(6, 3);
        let mut again = SegmentBuilder::new(0x8004, 1, 7);
        again.push(b"Zx");
        let reset = again.finish(99_999); // seq 1, offset 0, later send time
        let mut other = SegmentBuilder::new(0x8004, 1, 8);
        other.push(b"Zy");
        let new_session = other.finish(100_000);
        let mut s = Sequencer::new();
        let (_, e) = run(&mut s, &[&f.segs[0], &f.segs[1], &f.segs[0], &reset, &new_session, &f.segs[1]]);
        // Re-sending the first segment is a duplicate, not a reset: same send time.
        assert!(matches!(e[1], SeqEvent::Duplicate { first: 1, last: 3, .. }));
        assert!(matches!(e[2], SeqEvent::Reset { expected_seq: 7, .. }));
        assert!(matches!(e[3], SeqEvent::SessionChange { previous_session: 7, .. }));
        // A straggler of the old session after the change does not flip it back.
        assert_eq!(e.len(), 4);
        assert_eq!((s.stats().resets, s.stats().sessions, s.stats().segments_stale), (1, 2, 1));
    }

    #[test]
    fn reset_whose_first_segment_was_lost() {
        let f = Feed::new(30, 3);
        // A new run, much later; its first segment (1-3) is lost, (4-6) arrives.
        let mut b = SegmentBuilder::new(0x8004, 1, 7);
        b.push(b"Za");
        b.push(b"Zb");
        b.push(b"Zc");
        let _lost = b.finish(5_000_000_000);
        for m in [b"Zd", b"Ze", b"Zf"] {
            b.push(m);
        }
        let second = b.finish(5_000_000_001);
        let mut s = Sequencer::new();
        let segs: Vec<&[u8]> = f.segs.iter().map(|v| v.as_slice()).chain([second.as_slice()]).collect();
        let (d, e) = run(&mut s, &segs);
        assert_eq!(d.last().unwrap(), &[4, 5, 6]);
        assert!(e.iter().any(|e| matches!(e, SeqEvent::Reset { expected_seq: 31, .. })));
        assert!(matches!(e.last(), Some(SeqEvent::Gap { first: 1, last: 3, .. })));
    }

    #[test]
    fn offset_mismatch_is_reported() {
        let f = Feed::new(6, 3);
        let mut bad = f.segs[1].clone();
        bad[16] ^= 1;
        let mut s = Sequencer::new();
        let (_, e) = run(&mut s, &[&f.segs[0], &bad]);
        assert!(matches!(e[1], SeqEvent::OffsetMismatch { seq: 4, .. }));
    }

    #[test]
    fn many_gaps_are_bounded() {
        let f = Feed::new(100, 1);
        let odd: Vec<&[u8]> = f.segs.iter().step_by(2).map(|v| v.as_slice()).collect();
        let mut s = Sequencer::new();
        let (_, e) = run(&mut s, &odd);
        assert_eq!(s.stats().gaps, 49);
        assert_eq!(s.stats().gaps_abandoned, 49 - MAX_OPEN_GAPS as u64);
        assert_eq!(s.stats().messages_missing, 49);
        assert!(e.iter().any(|e| matches!(e, SeqEvent::GapAbandoned { .. })));
    }

    #[test]
    fn undelivered_blocks_become_a_gap_that_a_copy_fills() {
        let f = Feed::new(6, 3);
        let mut s = Sequencer::new();
        let seg = Segment::parse(&f.segs[0]).unwrap();
        let v = s.on_segment(&seg, &mut |_| {});
        // Only block 1 made it.
        s.undelivered(&seg, &v, 2, &mut |_| {});
        assert_eq!(s.open_gaps(0x8004, 1), [(2, 3)]);
        let (d, _) = run(&mut s, &[&f.segs[0], &f.segs[1]]);
        assert_eq!(d, [vec![2, 3], vec![4, 5, 6]]);
        assert_eq!(s.stats().messages_missing, 0);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeSet;

        /// One line: the messages `1..=n` cut by `cuts` (cycled), segments lost where `lose` says.
        fn line(n: usize, cuts: &[u16], lose: &[bool]) -> Vec<(Vec<u8>, BTreeSet<i64>)> {
            let mut b = SegmentBuilder::new(0x8004, 1, 3);
            let (mut out, mut i, mut k) = (Vec::new(), 0usize, 0usize);
            while i < n {
                // A cut of 0 is a heartbeat; all-zero cuts would never finish.
                let cut = if cuts.iter().all(|&c| c == 0) { 1 } else { cuts[k % cuts.len()] };
                let size = usize::from(cut).min(n - i);
                let first = i as i64 + 1;
                for _ in 0..size {
                    b.push(&[b'Z', (i % 251) as u8]);
                    i += 1;
                }
                // Send time: the first message's number, the same on both lines.
                let seg = if size == 0 { b.heartbeat(first) } else { b.finish(first) };
                if !lose[k % lose.len()] {
                    out.push((seg, (first..first + size as i64).collect()));
                }
                k += 1;
            }
            out
        }

        proptest! {
            /// Two lines cut differently, each losing segments, merged in any order that keeps
            /// each line's own order: every message that arrived on either line is delivered
            /// exactly once, and delivered + missing accounts for every sequence number up to the
            /// highest one seen.
            #[test]
            fn every_arrived_message_is_delivered_once(
                n in 1usize..120,
                cuts_a in proptest::collection::vec(0u16..7, 1..6),
                cuts_b in proptest::collection::vec(0u16..9, 1..6),
                lose_a in proptest::collection::vec(proptest::bool::weighted(0.2), 1..9),
                lose_b in proptest::collection::vec(proptest::bool::weighted(0.2), 1..9),
                order in proptest::collection::vec(any::<bool>(), 300),
            ) {
                let (a, b) = (line(n, &cuts_a, &lose_a), line(n, &cuts_b, &lose_b));
                let arrived: BTreeSet<i64> = a.iter().chain(&b).flat_map(|s| s.1.iter().copied()).collect();
                let mut s = Sequencer::new();
                let mut got = BTreeSet::new();
                let mut highest_next = 1i64;
                let (mut ia, mut ib, mut k) = (0, 0, 0);
                while ia < a.len() || ib < b.len() {
                    let take_a = ib == b.len() || (ia < a.len() && order[k % order.len()]);
                    k += 1;
                    let raw = if take_a { ia += 1; &a[ia - 1].0 } else { ib += 1; &b[ib - 1].0 };
                    let seg = Segment::parse(raw).unwrap();
                    let v = s.on_segment(&seg, &mut |_| {});
                    for q in delivered(&seg, &v) {
                        prop_assert!(got.insert(q), "seq {} delivered twice", q);
                    }
                    highest_next = highest_next.max(seg.first_seq() + i64::from(seg.message_count()));
                }
                let st = s.stats();
                prop_assert_eq!(st.resets, 0);
                if st.gaps_abandoned == 0 {
                    prop_assert_eq!(&got, &arrived);
                }
                prop_assert_eq!(got.len() as u64 + st.messages_missing, (highest_next - 1) as u64);
            }
        }
    }
}
