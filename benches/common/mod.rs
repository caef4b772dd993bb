//! Shared by the benches: the TOPS 1.6 sample as an endless, gap-free IEX stream in memory.
#![allow(dead_code, unreachable_pub)]

use weir::capture::CaptureReader;
use weir::nic::{BURST, Frame, Framing, QueueStats, RxQueue, TimestampSource};
use weir_feeds::frame::{LinkType, peel_udp};

pub const TOPS16: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iex/timpalpant-go-iex/TOPS16.pcapng.gz");

/// Frames in memory, lent in bursts, looped with the sequence numbers moved on at each wrap.
pub struct LoopRx {
    /// Frames and the offset of their IEX-TP header.
    pub frames: Vec<(Vec<u8>, usize)>,
    ts: Vec<i64>,
    next: usize,
    burst: (usize, usize),
    seq_per_pass: i64,
    bytes_per_pass: i64,
    packets: u64,
}

impl LoopRx {
    pub fn tops16() -> LoopRx {
        let mut r = CaptureReader::open(TOPS16).unwrap();
        let (mut frames, mut ts) = (Vec::new(), Vec::new());
        let (mut first, mut end, mut first_off, mut end_off) = (None, 0i64, None, 0i64);
        while let Some(p) = r.next_packet().unwrap() {
            let udp = peel_udp(p.link, p.data).unwrap();
            let h = udp.payload;
            let seq = i64::from_le_bytes(h[24..32].try_into().unwrap());
            let off = i64::from_le_bytes(h[16..24].try_into().unwrap());
            let count = i64::from(u16::from_le_bytes([h[14], h[15]]));
            let len = i64::from(u16::from_le_bytes([h[12], h[13]]));
            first.get_or_insert(seq);
            first_off.get_or_insert(off);
            end = end.max(seq + count);
            end_off = end_off.max(off + len);
            frames.push((p.data.to_vec(), udp.payload_offset));
            ts.push(p.ts_ns);
        }
        LoopRx {
            frames,
            ts,
            next: 0,
            burst: (0, 0),
            seq_per_pass: end - first.unwrap(),
            bytes_per_pass: end_off - first_off.unwrap(),
            packets: 0,
        }
    }

    /// Moves every frame's sequence numbers and offsets on by one pass.
    pub fn next_pass(&mut self) {
        for (f, at) in &mut self.frames {
            let h = &mut f[*at..];
            let seq = i64::from_le_bytes(h[24..32].try_into().unwrap()) + self.seq_per_pass;
            let off = i64::from_le_bytes(h[16..24].try_into().unwrap()) + self.bytes_per_pass;
            h[24..32].copy_from_slice(&seq.to_le_bytes());
            h[16..24].copy_from_slice(&off.to_le_bytes());
        }
    }
}

impl LoopRx {
    /// The next `n` frames (at most to the end of the pass), moving to the next pass at a wrap.
    pub fn take(&mut self, n: usize) -> std::ops::Range<usize> {
        if self.next == self.frames.len() {
            self.next_pass();
            self.next = 0;
        }
        let n = n.min(self.frames.len() - self.next);
        self.next += n;
        self.next - n..self.next
    }
}

impl RxQueue for LoopRx {
    #[inline]
    fn rx_burst(&mut self) -> usize {
        let r = self.take(BURST);
        self.burst = (r.start, r.len());
        self.packets += r.len() as u64;
        r.len()
    }
    #[inline]
    fn frame(&self, i: usize) -> Frame<'_> {
        let k = self.burst.0 + i;
        Frame {
            data: &self.frames[k].0,
            framing: Framing::Link(LinkType::Ethernet),
            rx_ns: self.ts[k],
            ts_source: TimestampSource::Capture,
            locus: k as u64,
        }
    }
    fn stats(&mut self) -> QueueStats {
        QueueStats { packets: self.packets, ..QueueStats::default() }
    }
    fn name(&self) -> String {
        "loop:TOPS16".into()
    }
}
