//! Sequencing per (protocol, channel, session).
//!
//! For every segment the [`Sequencer`] returns a [`Verdict`] (which blocks are new) and reports
//! what happened to the stream as [`SeqEvent`]s through a callback, so the layers above see gaps,
//! late fills, duplicates, resets and session changes explicitly instead of inferring them.
//!
//! Rules (IEX.md §2):
//! 1. A stream is keyed by (protocol, channel); a new session id on it is a session change.
//! 2. `first_seq == expected` is in order; then `stream_offset` must equal the expected offset.
//! 3. `first_seq > expected` opens a gap `[expected, first_seq - 1]`; a heartbeat (no messages)
//!    whose sequence is ahead of us is loss at the tail, found the same way.
//! 4. Blocks already seen are duplicates; a segment that overlaps the end of what we have is
//!    trimmed. Blocks that fall into an open gap are a late fill: delivered, flagged, and taken off
//!    the gap.
//! 5. `first_seq == 1 && stream_offset == 0` after progress, under the same session, with a later
//!    send time than the current run's first segment, is a stream reset (IEX's 2017 DEEP sample
//!    does this 11 times). The send-time test tells a reset from a duplicate of the first segment.
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

/// Which blocks of a segment to deliver: `take` blocks starting after the first `skip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Blocks to skip from the start of the segment.
    pub skip: u16,
    /// Blocks to deliver after those.
    pub take: u16,
    /// The delivered blocks fill a gap: they are older than messages already delivered.
    pub late: bool,
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
    /// Send time of the first segment of the current run (session start or last reset).
    run_first_send: i64,
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

    fn start(seg: &Segment<'_>) -> Self {
        Stream {
            protocol: seg.protocol_id(),
            channel: seg.channel(),
            session: seg.session(),
            next_seq: seg.first_seq(),
            next_offset: seg.stream_offset(),
            run_first_send: seg.send_time(),
            last_send: seg.send_time(),
            run_first_msg: if seg.first_seq() == 1 { fingerprint(seg) } else { None },
            gaps: [(0, 0); MAX_OPEN_GAPS],
            open_gaps: 0,
        }
    }

    /// Is `seg` the first segment of a new run of this session (rule 5)? A new run is sent after
    /// everything of the old one, and starts with a new message; a copy of the run's first segment
    /// (a late duplicate, or the other line's, perhaps cut differently) fails one test or both.
    #[inline]
    fn is_reset(&self, seg: &Segment<'_>) -> bool {
        if seg.first_seq() != 1 || seg.stream_offset() != 0 || self.next_seq <= 1 {
            return false;
        }
        // A new run is sent after everything of the old one.
        if seg.send_time() <= self.last_send {
            return false;
        }
        seg.is_heartbeat() || self.run_first_msg.is_none_or(|first| fingerprint(seg) != Some(first))
    }
}

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

    #[inline]
    fn find(&self, protocol: u16, channel: u32) -> Option<usize> {
        self.streams.iter().position(|s| matches!(s, Some(s) if s.protocol == protocol && s.channel == channel))
    }

    /// Where `seg` stands against the current state of its stream.
    #[inline]
    pub fn standing(&self, seg: &Segment<'_>) -> Standing {
        let Some(s) = self.find(seg.protocol_id(), seg.channel()).and_then(|i| self.streams[i].as_ref()) else {
            return Standing::Ahead;
        };
        if seg.send_time() < s.run_first_send {
            return Standing::Stale;
        }
        if seg.session() != s.session || s.is_reset(seg) {
            return Standing::Ahead;
        }
        let (first, end) = (seg.first_seq(), seg.first_seq().saturating_add(i64::from(seg.message_count())));
        if first > s.next_seq {
            Standing::Ahead
        } else if end > s.next_seq
            || (seg.is_heartbeat() && first == s.next_seq)
            || s.gaps[..s.open_gaps].iter().any(|&(gf, gl)| gf < end && gl >= first)
        {
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
        let idx = match self.find(seg.protocol_id(), seg.channel()) {
            Some(i) => i,
            None => return self.new_stream(seg, on_event),
        };
        let Some(s) = self.streams[idx].as_mut() else {
            return Verdict::default();
        };
        if seg.session() != s.session {
            let previous_session = s.session;
            // Open gaps of the old session stay counted as missing: they cannot be filled any more.
            let fresh = Stream::start(seg);
            *s = fresh;
            s.next_seq = end;
            s.next_offset = seg.stream_offset().saturating_add(i64::from(seg.payload_len()));
            self.stats.sessions += 1;
            on_event(SeqEvent::SessionChange { key: s.key(), previous_session });
            Self::late_join(s, &mut self.stats, first, on_event);
            return Verdict { skip: 0, take: count, late: false };
        }
        if s.is_reset(seg) {
            let expected_seq = s.next_seq;
            *s = Stream::start(seg);
            s.next_seq = end;
            s.next_offset = seg.payload_len().into();
            self.stats.resets += 1;
            on_event(SeqEvent::Reset { key: s.key(), expected_seq });
            return Verdict { skip: 0, take: count, late: false };
        }
        let key = s.key();
        s.last_send = s.last_send.max(seg.send_time());
        if first == s.next_seq {
            if first == 1 && count > 0 && s.run_first_msg.is_none() {
                s.run_first_msg = fingerprint(seg);
            }
            if seg.stream_offset() != s.next_offset {
                self.stats.offset_mismatches += 1;
                on_event(SeqEvent::OffsetMismatch {
                    key,
                    seq: first,
                    expected: s.next_offset,
                    actual: seg.stream_offset(),
                });
            }
            s.next_seq = end;
            s.next_offset = seg.stream_offset().saturating_add(i64::from(seg.payload_len()));
            return Verdict { skip: 0, take: count, late: false };
        }
        if first > s.next_seq {
            let (gap_first, gap_last) = (s.next_seq, first - 1);
            self.stats.gaps += 1;
            self.stats.messages_missing = self.stats.messages_missing.saturating_add(span(gap_first, gap_last));
            on_event(SeqEvent::Gap { key, first: gap_first, last: gap_last, from_heartbeat: count == 0 });
            if s.open_gaps == MAX_OPEN_GAPS {
                let (f, l) = s.gaps[0];
                s.gaps.copy_within(1.., 0);
                s.open_gaps -= 1;
                self.stats.gaps_abandoned += 1;
                on_event(SeqEvent::GapAbandoned { key, first: f, last: l });
            }
            s.gaps[s.open_gaps] = (gap_first, gap_last);
            s.open_gaps += 1;
            s.next_seq = end;
            s.next_offset = seg.stream_offset().saturating_add(i64::from(seg.payload_len()));
            return Verdict { skip: 0, take: count, late: false };
        }
        // first < next_seq: some or all of it was seen, unless it falls into an open gap.
        if count == 0 {
            self.stats.segments_duplicate += 1;
            return Verdict::default();
        }
        let seen_end = end.min(s.next_seq); // [first, seen_end) lies in the past
        if let Some(g) = s.gaps[..s.open_gaps].iter().position(|&(gf, gl)| gf < seen_end && gl >= first) {
            let (gf, gl) = s.gaps[g];
            let (fill_first, fill_last) = (gf.max(first), gl.min(seen_end - 1));
            // Shrink or split the gap.
            match (fill_first == gf, fill_last == gl) {
                (true, true) => {
                    s.gaps.copy_within(g + 1..s.open_gaps, g);
                    s.open_gaps -= 1;
                }
                (true, false) => s.gaps[g].0 = fill_last + 1,
                (false, true) => s.gaps[g].1 = fill_first - 1,
                (false, false) => {
                    s.gaps[g].1 = fill_first - 1;
                    if s.open_gaps < MAX_OPEN_GAPS {
                        s.gaps.copy_within(g + 1..s.open_gaps, g + 2);
                        s.gaps[g + 1] = (fill_last + 1, gl);
                        s.open_gaps += 1;
                    } else {
                        self.stats.gaps_abandoned += 1;
                        on_event(SeqEvent::GapAbandoned { key, first: fill_last + 1, last: gl });
                    }
                }
            }
            let filled = span(fill_first, fill_last);
            self.stats.messages_missing = self.stats.messages_missing.saturating_sub(filled);
            self.stats.messages_recovered += filled;
            on_event(SeqEvent::LateFill { key, first: fill_first, last: fill_last });
            let dup_before = (fill_first - first) as u64;
            let dup_after = (seen_end - 1 - fill_last) as u64;
            if dup_before + dup_after > 0 {
                self.stats.messages_duplicate += dup_before + dup_after;
                on_event(SeqEvent::Duplicate { key, first, last: seen_end - 1 });
            }
            return Verdict { skip: (fill_first - first) as u16, take: filled as u16, late: true };
        }
        let dup = (seen_end - first) as u64;
        self.stats.messages_duplicate += dup;
        on_event(SeqEvent::Duplicate { key, first, last: seen_end - 1 });
        if end <= s.next_seq {
            self.stats.segments_duplicate += 1;
            return Verdict::default();
        }
        // Overlaps the end of what we have: trim. The offset of the first new block is unknown
        // without walking the blocks, so the offset check resumes at the next segment.
        let skip = (s.next_seq - first) as u16;
        s.next_seq = end;
        s.next_offset = seg.stream_offset().saturating_add(i64::from(seg.payload_len()));
        Verdict { skip, take: count - skip, late: false }
    }

    #[cold]
    fn new_stream(&mut self, seg: &Segment<'_>, on_event: &mut impl FnMut(SeqEvent)) -> Verdict {
        let count = seg.message_count();
        let key = StreamKey::of(seg);
        let Some(slot) = self.streams.iter_mut().find(|s| s.is_none()) else {
            self.stats.untracked_segments += 1;
            on_event(SeqEvent::Untracked { key });
            return Verdict { skip: 0, take: count, late: false };
        };
        let mut s = Stream::start(seg);
        s.next_seq = seg.first_seq().saturating_add(i64::from(count));
        s.next_offset = seg.stream_offset().saturating_add(i64::from(seg.payload_len()));
        self.stats.sessions += 1;
        on_event(SeqEvent::StreamStart { key, first_seq: seg.first_seq() });
        Self::late_join(&mut s, &mut self.stats, seg.first_seq(), on_event);
        *slot = Some(s);
        Verdict { skip: 0, take: count, late: false }
    }

    /// A session starts at 1: joining it later means messages `1..first_seq` were missed, which is
    /// an open gap like any other (a late arrival fills it).
    fn late_join(s: &mut Stream, stats: &mut SeqStats, first_seq: i64, on_event: &mut impl FnMut(SeqEvent)) {
        if first_seq > 1 {
            stats.gaps += 1;
            stats.messages_missing = stats.messages_missing.saturating_add(span(1, first_seq - 1));
            s.gaps[0] = (1, first_seq - 1);
            s.open_gaps = 1;
            on_event(SeqEvent::Gap { key: s.key(), first: 1, last: first_seq - 1, from_heartbeat: false });
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

    fn run(seq: &mut Sequencer, segs: &[&[u8]]) -> (Vec<Verdict>, Vec<SeqEvent>) {
        let mut events = Vec::new();
        let verdicts =
            segs.iter().map(|s| seq.on_segment(&Segment::parse(s).unwrap(), &mut |e| events.push(e))).collect();
        (verdicts, events)
    }

    #[test]
    fn in_order_stream_has_no_events_but_start() {
        let f = Feed::new(10, 3);
        let mut s = Sequencer::new();
        let segs: Vec<&[u8]> = f.segs.iter().map(|v| v.as_slice()).collect();
        let (v, e) = run(&mut s, &segs);
        assert_eq!(e.len(), 1);
        assert!(matches!(e[0], SeqEvent::StreamStart { first_seq: 1, .. }));
        assert_eq!(v.iter().map(|v| v.take).sum::<u16>(), 10);
        assert_eq!(s.stats().sessions, 1);
        assert_eq!(s.stats().offset_mismatches, 0);
    }

    #[test]
    fn gap_then_late_fill_then_duplicate() {
        let f = Feed::new(9, 3); // segments [1-3] [4-6] [7-9]
        let mut s = Sequencer::new();
        let (v, e) = run(&mut s, &[&f.segs[0], &f.segs[2], &f.segs[1], &f.segs[1]]);
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
        assert_eq!(v[2], Verdict { skip: 0, take: 3, late: true });
        assert_eq!(v[3], Verdict::default());
        let st = s.stats();
        assert_eq!((st.gaps, st.messages_missing, st.messages_recovered, st.messages_duplicate), (1, 0, 3, 3));
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
        let (v, e) = run(&mut s, &[&head, &whole]);
        assert_eq!(v[1], Verdict { skip: 3, take: 2, late: false });
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
        let (_, e) = run(&mut s, &[&f.segs[0], &f.segs[1], &f.segs[0], &reset, &new_session]);
        // Re-sending the first segment is a duplicate, not a reset: same send time.
        assert!(matches!(e[1], SeqEvent::Duplicate { first: 1, last: 3, .. }));
        assert!(matches!(e[2], SeqEvent::Reset { expected_seq: 7, .. }));
        assert!(matches!(e[3], SeqEvent::SessionChange { previous_session: 7, .. }));
        assert_eq!((s.stats().resets, s.stats().sessions), (1, 2));
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

    mod prop {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeSet;

        proptest! {
            /// Any loss, duplication and adjacent reordering of a stream: every message is
            /// delivered at most once, and delivered + missing accounts for every sequence number
            /// up to the highest one seen.
            #[test]
            fn accounting_holds(
                sizes in proptest::collection::vec(0u16..6, 1..80),
                fate in proptest::collection::vec(0u8..10, 80),
            ) {
                let mut b = SegmentBuilder::new(0x8004, 1, 3);
                let mut segs = Vec::new();
                for (i, &n) in sizes.iter().enumerate() {
                    for k in 0..n {
                        b.push(&[b'Z', i as u8, k as u8]);
                    }
                    segs.push(if n == 0 { b.heartbeat(i as i64) } else { b.finish(i as i64) });
                }
                // fate: 0 = lost, 1 = duplicated, 2 = swapped with the next one, else delivered.
                let mut wire: Vec<Vec<u8>> = Vec::new();
                let mut i = 0;
                let mut dup_msgs = 0u64;
                while i < segs.len() {
                    match fate[i] {
                        0 => {}
                        1 => {
                            wire.push(segs[i].clone());
                            wire.push(segs[i].clone());
                            dup_msgs += u64::from(Segment::parse(&segs[i]).unwrap().message_count());
                        }
                        2 if i + 1 < segs.len() => {
                            wire.push(segs[i + 1].clone());
                            wire.push(segs[i].clone());
                            i += 1;
                        }
                        _ => wire.push(segs[i].clone()),
                    }
                    i += 1;
                }
                let mut s = Sequencer::new();
                let mut delivered = BTreeSet::new();
                let mut highest_next = 1i64;
                for w in &wire {
                    let seg = Segment::parse(w).unwrap();
                    let v = s.on_segment(&seg, &mut |_| {});
                    prop_assert!(u32::from(v.skip) + u32::from(v.take) <= u32::from(seg.message_count()));
                    for k in 0..v.take {
                        let seq = seg.first_seq() + i64::from(v.skip + k);
                        prop_assert!(delivered.insert(seq), "seq {} delivered twice", seq);
                    }
                    highest_next = highest_next.max(seg.first_seq() + i64::from(seg.message_count()));
                }
                let st = s.stats();
                prop_assert_eq!(delivered.len() as u64 + st.messages_missing, (highest_next - 1) as u64);
                prop_assert!(st.messages_duplicate >= dup_msgs.min(st.messages_duplicate));
                prop_assert_eq!(st.resets, 0);
            }
        }
    }
}
