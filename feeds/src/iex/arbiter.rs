//! A/B line arbitration.
//!
//! IEX sends every feed on two lines that carry the same messages in the same order but may cut
//! them into segments differently. The arbiter looks at the next segment of each line and picks
//! which to hand to the [`FeedHandler`](super::FeedHandler) next, so that a message missing on one
//! line but present on the other is never a gap:
//!
//! 1. a head with nothing new ([`Standing::Stale`]) is dropped;
//! 2. a head holding the next expected message ([`Standing::Next`]) is taken; the sequencer then
//!    trims any part of it already delivered;
//! 3. if both heads are ahead of the next expected message (a real gap, a new session or a reset),
//!    the nearer one is taken: the lower sequence number within a stream, else the earlier IEX
//!    send time (never the capture clocks, which differ between two files).
//!
//! It needs one segment of look-ahead per line and keeps no state of its own: the sequencer's
//! state is the truth.

use super::handler::FeedHandler;
use super::sequencer::{Standing, StreamKey};
use super::transport::Segment;

/// One of the two lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LineId {
    /// The A line.
    A,
    /// The B line.
    B,
}

/// What to do with the line heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Hand this line's head to the handler.
    Take(LineId),
    /// Drop this line's head: everything in it was already delivered.
    Drop(LineId),
}

/// Chooses between the heads of the A and B lines. See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Arbiter;

impl Arbiter {
    /// Picks what to do next; `None` when both lines are exhausted.
    #[inline]
    pub fn pick(&self, handler: &FeedHandler, a: Option<&Segment<'_>>, b: Option<&Segment<'_>>) -> Option<Pick> {
        let standing = |h: Option<&Segment<'_>>| h.map(|s| handler.standing(s));
        match (standing(a), standing(b)) {
            (None, None) => None,
            (Some(Standing::Stale), _) => Some(Pick::Drop(LineId::A)),
            (_, Some(Standing::Stale)) => Some(Pick::Drop(LineId::B)),
            (Some(Standing::Next), _) | (Some(_), None) => Some(Pick::Take(LineId::A)),
            (_, Some(Standing::Next)) | (None, Some(_)) => Some(Pick::Take(LineId::B)),
            (Some(Standing::Ahead), Some(Standing::Ahead)) => {
                let (Some(a), Some(b)) = (a, b) else { return Some(Pick::Take(LineId::A)) };
                let (sa, sb) = (a, b);
                // Both lines skipped past the next message: take the nearer one. Within one stream
                // that is the lower sequence number; across streams or sessions, IEX's own send
                // time (the two captures' clocks need not agree).
                let b_first = if StreamKey::of(sa) == StreamKey::of(sb) {
                    sb.first_seq() < sa.first_seq()
                } else {
                    sb.send_time() < sa.send_time()
                };
                Some(Pick::Take(if b_first { LineId::B } else { LineId::A }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iex::builder::SegmentBuilder;
    use crate::iex::handler::{MessageSink, MsgContext};
    use crate::iex::message::Message;

    #[derive(Default)]
    struct Seqs(Vec<i64>);
    impl MessageSink for Seqs {
        fn on_message(&mut self, ctx: &MsgContext, _: &Message<'_>) {
            self.0.push(ctx.seq);
        }
    }

    /// Builds `n` messages cut into segments of the given sizes, cycling.
    fn line(n: usize, sizes: &[usize], skip_segments: &[usize]) -> Vec<(Vec<u8>, i64)> {
        let mut b = SegmentBuilder::new(0x8004, 1, 9);
        let mut out = Vec::new();
        let (mut i, mut k) = (0, 0);
        while i < n {
            let size = sizes[k % sizes.len()].min(n - i);
            for _ in 0..size {
                b.push(&[b'z', i as u8]);
                i += 1;
            }
            let seg = b.finish(i as i64 * 10);
            if !skip_segments.contains(&k) {
                out.push((seg, i as i64 * 10 + 1));
            }
            k += 1;
        }
        out
    }

    fn merge(a: &[(Vec<u8>, i64)], b: &[(Vec<u8>, i64)]) -> (Vec<i64>, FeedHandler) {
        let mut h = FeedHandler::new();
        let mut sink = Seqs::default();
        let (mut ia, mut ib) = (0, 0);
        loop {
            let sa = a.get(ia).map(|(s, t)| (Segment::parse(s).unwrap(), *t));
            let sb = b.get(ib).map(|(s, t)| (Segment::parse(s).unwrap(), *t));
            match Arbiter.pick(&h, sa.as_ref().map(|x| &x.0), sb.as_ref().map(|x| &x.0)) {
                None => break,
                Some(Pick::Drop(LineId::A)) => ia += 1,
                Some(Pick::Drop(LineId::B)) => ib += 1,
                Some(Pick::Take(LineId::A)) => {
                    let (s, t) = sa.unwrap();
                    h.on_segment(&s, a[ia].0.len(), t, &mut sink);
                    ia += 1;
                }
                Some(Pick::Take(LineId::B)) => {
                    let (s, t) = sb.unwrap();
                    h.on_segment(&s, b[ib].0.len(), t, &mut sink);
                    ib += 1;
                }
            }
        }
        (sink.0, h)
    }

    #[test]
    fn holes_on_either_line_are_filled_by_the_other() {
        let a = line(100, &[3, 5], &[2, 7, 8]);
        let b = line(100, &[4, 1, 6], &[0, 5, 11]);
        let (seqs, h) = merge(&a, &b);
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
        assert_eq!(h.seq_stats().gaps, 0);
    }

    #[test]
    fn loss_on_both_lines_is_a_gap() {
        let a = line(30, &[3], &[2]); // misses 7..=9
        let b = line(30, &[3], &[2, 3]); // misses 7..=12
        let (seqs, h) = merge(&a, &b);
        assert_eq!(seqs.len(), 27);
        assert_eq!((h.seq_stats().gaps, h.seq_stats().messages_missing), (1, 3));
    }
}
