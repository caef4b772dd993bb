//! [`FeedHandler`]: one UDP payload in, sequenced and decoded messages out.
//!
//! This is the per-datagram work of the hot path, shared by capture replay and the NIC poll loop:
//! parse the segment, sequence it, walk its blocks, decode each, count everything, and hand each
//! message (with its context) to a [`MessageSink`]. Nothing here allocates, locks or formats.

use super::message::{DecodeError, Message, decode};
use super::sequencer::{SeqEvent, SeqStats, Sequencer, Standing};
use super::transport::{BlockError, Protocol, Segment, SegmentError};

/// Where a message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgContext {
    /// The feed.
    pub protocol: Protocol,
    /// Channel ID.
    pub channel: u32,
    /// Session ID.
    pub session: u32,
    /// IEX-TP sequence number.
    pub seq: i64,
    /// Segment send time (ns since the epoch).
    pub send_time: i64,
    /// Capture or NIC receive time (ns since the epoch).
    pub recv_time: i64,
    /// Offset of the message body inside the datagram.
    pub offset: usize,
    /// Delivered into a gap, after later messages.
    pub late: bool,
}

/// A fault in one datagram. `offset` is from the start of the datagram (the IEX-TP header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedError {
    /// Not an IEX-TP segment.
    Segment(SegmentError),
    /// The datagram is not `40 + payload_length` bytes.
    LengthMismatch {
        /// Payload length in the header.
        declared: usize,
        /// Payload bytes in the datagram (counting bytes lost to capture truncation).
        actual: usize,
    },
    /// A first sequence number outside `1..=2^62`: the segment is not sequenced or delivered.
    BadSequence {
        /// The header's first sequence number.
        first_seq: i64,
    },
    /// The blocks do not tile the payload; the blocks before the fault were delivered.
    Block(BlockError),
    /// A message shorter than its layout, at `offset`; skipped by its length.
    Decode {
        /// What was wrong.
        error: DecodeError,
        /// Its sequence number.
        seq: i64,
        /// Offset of the message body in the datagram.
        offset: usize,
    },
}

impl core::fmt::Display for FeedError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FeedError::Segment(e) => e.fmt(f),
            FeedError::LengthMismatch { declared, actual } => {
                write!(f, "UDP payload holds {actual} bytes after the IEX-TP header, the header declares {declared}")
            }
            FeedError::BadSequence { first_seq } => {
                write!(f, "first sequence number {first_seq} at segment byte 24 is out of range")
            }
            FeedError::Block(e) => e.fmt(f),
            FeedError::Decode { error, seq, offset } => {
                write!(f, "seq {seq} at datagram byte {offset}: {error}")
            }
        }
    }
}

/// Receives what the handler decodes.
pub trait MessageSink {
    /// One message, in delivery order.
    fn on_message(&mut self, ctx: &MsgContext, msg: &Message<'_>);

    /// A sequencing event (gap, reset, ...), before the messages of the segment that caused it.
    #[inline]
    fn on_event(&mut self, _event: &SeqEvent) {}

    /// A fault in the datagram being handled.
    #[inline]
    fn on_error(&mut self, _error: &FeedError) {}

    /// The sink has what it wanted (e.g. a book at a given time): a driver may stop feeding it.
    #[inline]
    fn is_done(&self) -> bool {
        false
    }
}

/// A sink that drops everything (counting only).
impl MessageSink for () {
    #[inline]
    fn on_message(&mut self, _: &MsgContext, _: &Message<'_>) {}
}

/// The highest first sequence number accepted: far above any real run, far below overflow.
pub const MAX_SEQ: i64 = 1 << 62;

/// Counters kept by the handler. Everything is counted; nothing is dropped silently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedStats {
    /// IEX-TP segments handled (heartbeats included).
    pub segments: u64,
    /// Segments without messages.
    pub heartbeats: u64,
    /// Message blocks delivered (decoded, unknown and empty alike).
    pub messages: u64,
    /// Delivered messages by type byte (known types only).
    pub by_type: [u64; 256],
    /// Messages of types the protocol does not define, by type byte.
    pub unknown_by_type: [u64; 256],
    /// Zero-length blocks.
    pub empty_blocks: u64,
    /// Messages shorter than their layout.
    pub decode_errors: u64,
    /// Segments whose blocks do not tile the payload.
    pub block_errors: u64,
    /// Messages announced by a segment header but lost to truncation or a tiling fault.
    pub messages_lost_in_segment: u64,
    /// Datagrams whose length disagrees with the header's payload length.
    pub length_mismatches: u64,
    /// Datagrams that are not IEX-TP segments.
    pub not_iex: u64,
    /// Segments with a protocol id that is not an IEX feed.
    pub unknown_protocol: u64,
    /// Segments whose first sequence number is not in `1..=2^62`.
    pub bad_sequence: u64,
    /// Payload bytes of the segments handled.
    pub bytes: u64,
}

impl Default for FeedStats {
    fn default() -> Self {
        FeedStats {
            segments: 0,
            heartbeats: 0,
            messages: 0,
            by_type: [0; 256],
            unknown_by_type: [0; 256],
            empty_blocks: 0,
            decode_errors: 0,
            block_errors: 0,
            messages_lost_in_segment: 0,
            length_mismatches: 0,
            not_iex: 0,
            unknown_protocol: 0,
            bad_sequence: 0,
            bytes: 0,
        }
    }
}

impl FeedStats {
    /// Unknown-type messages in all.
    pub fn unknown_types(&self) -> u64 {
        self.unknown_by_type.iter().sum()
    }
}

/// Sequencing, decoding and counting for the IEX feeds of one receive path.
#[derive(Clone, Debug, Default)]
pub struct FeedHandler {
    sequencer: Sequencer,
    stats: FeedStats,
}

impl FeedHandler {
    /// A handler with no streams yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters so far.
    pub fn stats(&self) -> &FeedStats {
        &self.stats
    }

    /// Sequencing counters so far.
    pub fn seq_stats(&self) -> &SeqStats {
        self.sequencer.stats()
    }

    /// The sequencer (for arbitration decisions).
    pub fn sequencer(&self) -> &Sequencer {
        &self.sequencer
    }

    /// Where a segment stands against the current sequencing state (see [`Standing`]).
    #[inline]
    pub fn standing(&self, seg: &Segment<'_>) -> Standing {
        self.sequencer.standing(seg)
    }

    /// Handles one UDP payload. `lost` is how many payload bytes the capture cut off (0 live).
    #[inline]
    pub fn on_datagram<S: MessageSink>(&mut self, payload: &[u8], lost: usize, recv_time: i64, sink: &mut S) {
        match Segment::parse(payload) {
            Ok(seg) => self.on_segment(&seg, payload.len() + lost, recv_time, sink),
            Err(e) => {
                self.stats.not_iex += 1;
                sink.on_error(&FeedError::Segment(e));
            }
        }
    }

    /// Handles one parsed segment; `datagram_len` is the full UDP payload length.
    #[inline]
    pub fn on_segment<S: MessageSink>(&mut self, seg: &Segment<'_>, datagram_len: usize, recv_time: i64, sink: &mut S) {
        if let Protocol::Other(_) = seg.protocol() {
            // Not a feed we know: no sequence space to track (and many UDP protocols start with
            // a 1 byte). Counted, never sequenced or delivered.
            self.stats.unknown_protocol += 1;
            return;
        }
        if !(1..=MAX_SEQ).contains(&seg.first_seq()) {
            // IEX numbers every run from 1; anything else cannot be sequenced (and near i64::MAX it
            // would not even fit). Counted and reported, never delivered.
            self.stats.bad_sequence += 1;
            sink.on_error(&FeedError::BadSequence { first_seq: seg.first_seq() });
            return;
        }
        self.stats.segments += 1;
        self.stats.bytes += seg.payload().len() as u64;
        if let Some((declared, actual)) = seg.length_mismatch(datagram_len) {
            self.stats.length_mismatches += 1;
            sink.on_error(&FeedError::LengthMismatch { declared, actual });
        }
        let verdict = self.sequencer.on_segment(seg, &mut |e| sink.on_event(&e));
        if seg.is_heartbeat() {
            self.stats.heartbeats += 1;
            return;
        }
        let protocol = seg.protocol();
        let mut ctx = MsgContext {
            protocol,
            channel: seg.channel(),
            session: seg.session(),
            seq: 0,
            send_time: seg.send_time(),
            recv_time,
            offset: 0,
            late: false,
        };
        let mut blocks = seg.blocks();
        let mut next_seq = seg.first_seq();
        loop {
            let block = match blocks.next() {
                None => return,
                Some(Ok(b)) => b,
                Some(Err(e)) => {
                    self.stats.block_errors += 1;
                    let end = seg.first_seq().saturating_add(i64::from(seg.message_count()));
                    self.stats.messages_lost_in_segment += (end.saturating_sub(next_seq)).max(0) as u64;
                    sink.on_error(&FeedError::Block(e));
                    // What the datagram announced but did not hold may still come from elsewhere.
                    self.sequencer.undelivered(seg, &verdict, next_seq, &mut |e| sink.on_event(&e));
                    return;
                }
            };
            next_seq = block.seq.saturating_add(1);
            let Some(late) = verdict.delivers(block.seq) else { continue };
            ctx.seq = block.seq;
            ctx.offset = block.offset;
            ctx.late = late;
            match decode(protocol, block.bytes) {
                Ok(msg) => {
                    self.stats.messages += 1;
                    match msg {
                        Message::Unknown { msg_type, .. } => self.stats.unknown_by_type[usize::from(msg_type)] += 1,
                        Message::Empty => self.stats.empty_blocks += 1,
                        _ => self.stats.by_type[usize::from(msg.type_byte())] += 1,
                    }
                    sink.on_message(&ctx, &msg);
                }
                Err(error) => {
                    self.stats.decode_errors += 1;
                    sink.on_error(&FeedError::Decode { error, seq: block.seq, offset: block.offset });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iex::builder::SegmentBuilder;

    #[derive(Default)]
    struct Collect {
        msgs: Vec<(i64, u8, bool)>,
        errors: Vec<FeedError>,
        events: Vec<SeqEvent>,
    }

    impl MessageSink for Collect {
        fn on_message(&mut self, ctx: &MsgContext, msg: &Message<'_>) {
            self.msgs.push((ctx.seq, msg.type_byte(), ctx.late));
        }
        fn on_event(&mut self, event: &SeqEvent) {
            self.events.push(*event);
        }
        fn on_error(&mut self, error: &FeedError) {
            self.errors.push(*error);
        }
    }

    fn op_halt() -> Vec<u8> {
        let mut m = vec![b'O', b'N'];
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(b"ZIEXT   ");
        m
    }

    #[test]
    fn counts_unknown_short_and_empty_and_keeps_going() {
        let mut b = SegmentBuilder::new(0x8004, 1, 1);
        b.push(&op_halt());
        b.push(b"z123"); // unknown type
        b.push(b""); // empty
        b.push(&op_halt()[..10]); // too short
        b.push(&op_halt());
        let seg = b.finish(5);
        let mut h = FeedHandler::new();
        let mut c = Collect::default();
        h.on_datagram(&seg, 0, 0, &mut c);
        assert_eq!(c.msgs.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>(), [(1, b'O'), (2, b'z'), (3, 0), (5, b'O')]);
        assert!(matches!(c.errors[..], [FeedError::Decode { seq: 4, offset, .. }] if offset == 40 + 20 + 6 + 2 + 2));
        let st = h.stats();
        assert_eq!((st.messages, st.by_type[usize::from(b'O')], st.unknown_by_type[usize::from(b'z')]), (4, 2, 1));
        assert_eq!((st.empty_blocks, st.decode_errors), (1, 1));
    }

    #[test]
    fn truncated_datagram_delivers_whole_blocks_and_counts_the_rest() {
        let mut b = SegmentBuilder::new(0x8004, 1, 1);
        for _ in 0..3 {
            b.push(&op_halt());
        }
        let seg = b.finish(5);
        let cut = &seg[..seg.len() - 5];
        let mut h = FeedHandler::new();
        let mut c = Collect::default();
        h.on_datagram(cut, 5, 0, &mut c);
        assert_eq!(c.msgs.len(), 2);
        // The datagram itself was whole (the capture lost the bytes): no length mismatch.
        assert!(matches!(c.errors[..], [FeedError::Block(BlockError::Truncated { index: 2, .. })]));
        assert_eq!(h.stats().messages_lost_in_segment, 1);
        // The lost block is an open gap, and a whole copy of the datagram fills it.
        assert_eq!(h.sequencer().open_gaps(0x8004, 1), [(3, 3)]);
        assert_eq!(h.seq_stats().messages_missing, 1);
        let mut c2 = Collect::default();
        h.on_datagram(&seg, 0, 0, &mut c2);
        assert_eq!(c2.msgs, [(3, b'O', true)]);
        assert_eq!(h.seq_stats().messages_missing, 0);
    }

    #[test]
    fn out_of_range_sequence_numbers_are_refused() {
        for first in [0, -5, i64::MAX - 3] {
            let mut b = SegmentBuilder::new(0x8004, 1, 1).starting_at(first, 0);
            b.push(&op_halt());
            let seg = b.finish(5);
            let mut h = FeedHandler::new();
            let mut c = Collect::default();
            h.on_datagram(&seg, 0, 0, &mut c);
            assert!(c.msgs.is_empty());
            assert_eq!(c.errors, [FeedError::BadSequence { first_seq: first }]);
            assert_eq!(h.stats().bad_sequence, 1);
        }
    }

    #[test]
    fn unknown_protocols_are_counted_not_sequenced() {
        let mut b = SegmentBuilder::new(0x9001, 1, 1);
        b.push(&op_halt());
        let mut h = FeedHandler::new();
        h.on_datagram(&b.finish(1), 0, 0, &mut ());
        assert_eq!((h.stats().unknown_protocol, h.stats().segments, h.seq_stats().sessions), (1, 0, 0));
    }

    #[test]
    fn trailing_bytes_are_a_block_error() {
        let mut b = SegmentBuilder::new(0x8004, 1, 1);
        b.push(&op_halt());
        let mut seg = b.finish(5);
        seg.extend_from_slice(&[0, 0]);
        seg[12] += 2; // declared payload covers the extra bytes
        let mut h = FeedHandler::new();
        let mut c = Collect::default();
        h.on_datagram(&seg, 0, 0, &mut c);
        assert_eq!(c.msgs.len(), 1);
        assert!(matches!(c.errors[..], [FeedError::Block(BlockError::TrailingBytes { len: 2, .. })]));
    }
}
