//! The sequencer and the A/B arbiter under arbitrary segment headers: each 12 input bytes make a
//! segment (line, session, first sequence number, message count, offset and send time), with
//! adversarial values included. Fails if a message is delivered twice within a run, or if
//! arbitration leaves a segment behind.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use weir_feeds::iex::{Arbiter, FeedHandler, LineId, Message, MessageSink, MsgContext, Pick, SegmentBuilder, SeqEvent, Segment};

/// Fails if a message is delivered twice within one run of one session (a reset, session change
/// or stream start begins a new run, which may reuse sequence numbers).
#[derive(Default)]
struct Once {
    run: u64,
    seen: HashSet<(u64, u32, i64)>,
}

impl MessageSink for Once {
    fn on_message(&mut self, ctx: &MsgContext, _: &Message<'_>) {
        assert!(self.seen.insert((self.run, ctx.session, ctx.seq)), "seq {} of session {} delivered twice", ctx.seq, ctx.session);
    }
    fn on_event(&mut self, e: &SeqEvent) {
        if matches!(e, SeqEvent::Reset { .. } | SeqEvent::SessionChange { .. } | SeqEvent::StreamStart { .. }) {
            self.run += 1;
        }
    }
}

fn build(chunk: &[u8]) -> (usize, Vec<u8>, i64) {
    let line = usize::from(chunk[0] & 1);
    let session = u32::from(chunk[0] >> 6);
    let seq = match chunk[1] {
        0xff => i64::MAX - i64::from(chunk[2]),
        0xfe => i64::MIN + i64::from(chunk[2]),
        hi => i64::from(hi) * 256 + i64::from(chunk[2]),
    };
    let count = usize::from(chunk[3] % 8);
    let offset = i64::from(u16::from_le_bytes([chunk[4], chunk[5]]));
    let send = i64::from(u32::from_le_bytes([chunk[6], chunk[7], chunk[8], chunk[9]]));
    let recv = i64::from(u16::from_le_bytes([chunk[10], chunk[11]]));
    let mut b = SegmentBuilder::new(0x8004, 1, session).starting_at(seq, offset);
    for i in 0..count {
        b.push(&[b'Z', chunk[i % 12]]);
    }
    let seg = if count == 0 { b.heartbeat(send) } else { b.finish(send) };
    (line, seg, recv)
}

fuzz_target!(|data: &[u8]| {
    let segs: Vec<_> = data.chunks_exact(12).map(build).collect();
    // One line, in input order.
    let mut h = FeedHandler::new();
    let mut once = Once::default();
    for (_, s, t) in &segs {
        h.on_datagram(s, 0, *t, &mut once);
    }
    // Two lines, arbitrated.
    let lines: [Vec<&(usize, Vec<u8>, i64)>; 2] =
        [segs.iter().filter(|s| s.0 == 0).collect(), segs.iter().filter(|s| s.0 == 1).collect()];
    let mut h = FeedHandler::new();
    let mut once = Once::default();
    let mut at = [0usize; 2];
    for _ in 0..segs.len() * 2 + 2 {
        let parsed: Vec<Option<Segment<'_>>> =
            (0..2).map(|i| lines[i].get(at[i]).map(|s| Segment::parse(&s.1).expect("built segments parse"))).collect();
        match Arbiter.pick(&h, parsed[0].as_ref(), parsed[1].as_ref()) {
            None => break,
            Some(Pick::Drop(l)) => at[l as usize] += 1,
            Some(Pick::Take(l)) => {
                let i = if l == LineId::A { 0 } else { 1 };
                let s = &lines[i][at[i]];
                h.on_datagram(&s.1, 0, s.2, &mut once);
                at[i] += 1;
            }
        }
    }
    assert_eq!(at, [lines[0].len(), lines[1].len()], "arbitration must consume both lines");
});
