//! The poll loop over arbitrary frames: frame peel, the group filter, IEX-TP, sequencing,
//! decoding, books and DBN records, with faults injected (drop, duplicate, reorder, delay) and an
//! A/B pair, as `weir run` runs them. Nothing may panic; every frame is counted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::lcore::PollLoop;
use weir::nic::fault::{FaultInjection, Faults};
use weir::nic::spec::Group;
use weir::nic::{BURST, Frame, Framing, LinkType, QueueStats, RxQueue, TimestampSource};
use weir_feeds::normalize::NormalizerConfig;

/// Frames cut from the input: a 2-byte little-endian length before each.
struct MemRx {
    frames: Vec<Vec<u8>>,
    next: usize,
    burst: (usize, usize),
}

impl RxQueue for MemRx {
    fn rx_burst(&mut self) -> usize {
        let n = BURST.min(self.frames.len() - self.next);
        self.burst = (self.next, n);
        self.next += n;
        n
    }
    fn frame(&self, i: usize) -> Frame<'_> {
        let k = self.burst.0 + i;
        Frame {
            data: &self.frames[k],
            framing: if k % 7 == 6 { Framing::UdpPayload } else { Framing::Link(LinkType::Ethernet) },
            rx_ns: k as i64,
            ts_source: TimestampSource::Capture,
            locus: k as u64,
        }
    }
    fn stats(&mut self) -> QueueStats {
        QueueStats::default()
    }
    fn is_finished(&self) -> bool {
        self.next == self.frames.len()
    }
    fn name(&self) -> String {
        "fuzz".into()
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (knobs, mut rest) = data.split_at(4);
    let mut frames = Vec::new();
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        frames.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    let total = frames.len() as u64;
    let p = |b: u8| f64::from(b & 0x3f) / 64.0;
    let faults = Faults { drop: p(knobs[0]), duplicate: p(knobs[1]), reorder: p(knobs[2]), delay: p(knobs[3]), ..Faults::default() };
    let queue = |frames| FaultInjection::new(MemRx { frames, next: 0, burst: (0, 0) }, faults);
    let lines = if knobs[0] & 0x80 != 0 { vec![queue(frames.clone()), queue(frames)] } else { vec![queue(frames)] };
    let n_lines = lines.len() as u64;
    let mut l = PollLoop::with_observer(lines, NormalizerConfig { orders: 1024, symbols: 256, ..NormalizerConfig::default() }, Vec::new(), ());
    if knobs[1] & 0x80 != 0 {
        l = l.admit(&[Group { addr: [233, 215, 21, 4].into(), port: 10378 }]);
    }
    l.run();
    let r = l.report();
    let c: u64 = l.lines().iter().map(|q| q.counts().dropped).sum();
    let dup: u64 = l.lines().iter().map(|q| q.counts().duplicated).sum();
    assert_eq!(r.replay.packets, total * n_lines - c + dup);
});
