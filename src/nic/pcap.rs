//! Capture replay as a receive queue: the default backend, and the one every test and bench can run.
//!
//! Each burst copies up to [`BURST`] packets from the capture reader into the queue's own arena
//! (the stand-in for a NIC's receive buffers: a driver's DMA lands there too), and the poll loop
//! reads them in place. The arena is sized at open and reused, so a warm queue does not allocate.
//!
//! Pace: [`Pace::Max`] hands out packets as fast as they are polled; [`Pace::Times`] releases each
//! packet when `(its timestamp − the first's) / factor` has passed since the first poll, so a
//! poll loop sees the capture's gaps and bursts as they were recorded (or N times faster).

use std::path::Path;
use std::time::Instant;

use super::spec::Pace;
use super::{BURST, Frame, Framing, QueueStats, RxQueue, TimestampSource};
use crate::capture::{CaptureError, CaptureReader, CaptureStats};
use weir_feeds::frame::LinkType;

#[derive(Clone, Copy, Debug)]
struct Slot {
    start: usize,
    len: usize,
    ts_ns: i64,
    locus: u64,
    link: LinkType,
}

/// A capture replayed as a receive queue.
#[derive(Debug)]
pub struct PcapRx {
    reader: CaptureReader,
    pace: Pace,
    arena: Vec<u8>,
    slots: Vec<Slot>,
    /// A packet read from the capture but not yet due (paced replay), and its bytes.
    carry: Option<Slot>,
    carry_bytes: Vec<u8>,
    /// The first packet's timestamp and the instant it was released (paced replay).
    origin: Option<(i64, Instant)>,
    finished: bool,
    faults: Vec<String>,
    stats: QueueStats,
}

impl PcapRx {
    /// Opens a capture (pcap or pcapng, gzip or not).
    pub fn open(path: &Path, pace: Pace) -> Result<PcapRx, CaptureError> {
        Ok(PcapRx::from_reader(CaptureReader::open(path)?, pace))
    }

    /// Replays an opened capture.
    pub fn from_reader(reader: CaptureReader, pace: Pace) -> PcapRx {
        PcapRx {
            reader,
            pace,
            // 32 full-size Ethernet frames; a capture of jumbo frames grows it once.
            arena: Vec::with_capacity(BURST * 2048),
            slots: Vec::with_capacity(BURST),
            carry: None,
            carry_bytes: Vec::with_capacity(2048),
            origin: None,
            finished: false,
            faults: Vec::new(),
            stats: QueueStats::default(),
        }
    }

    /// The capture reader's counters (packets read, short captures, truncated records, bytes).
    pub fn capture_stats(&self) -> CaptureStats {
        self.reader.stats()
    }

    /// The capture reader (its path, format, truncation).
    pub fn reader(&self) -> &CaptureReader {
        &self.reader
    }

    /// Whether a packet stamped `ts_ns` is due now.
    #[inline]
    fn due(&mut self, ts_ns: i64, now: &mut Option<Instant>) -> bool {
        let Pace::Times(factor) = self.pace else {
            return true;
        };
        let now = *now.get_or_insert_with(Instant::now);
        let (ts0, t0) = *self.origin.get_or_insert((ts_ns, now));
        let wanted_ns = (ts_ns.saturating_sub(ts0)).max(0) as f64 / factor;
        now.duration_since(t0).as_nanos() as f64 >= wanted_ns
    }

    #[cold]
    fn fault(&mut self, e: CaptureError) {
        self.faults.push(format!("{e} (replay stops here)"));
        self.finished = true;
    }
}

impl RxQueue for PcapRx {
    fn rx_burst(&mut self) -> usize {
        self.arena.clear();
        self.slots.clear();
        let mut now = None;
        if let Some(c) = self.carry.take() {
            if !self.due(c.ts_ns, &mut now) {
                self.carry = Some(c);
                self.stats.empty_polls += 1;
                return 0;
            }
            self.slots.push(Slot { start: 0, ..c });
            self.arena.extend_from_slice(&self.carry_bytes);
        }
        while self.slots.len() < BURST && !self.finished {
            let pkt = match self.reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.finished = true;
                    break;
                }
                Err(e) => {
                    self.fault(e);
                    break;
                }
            };
            let slot = Slot {
                start: self.arena.len(),
                len: pkt.data.len(),
                ts_ns: pkt.ts_ns,
                locus: pkt.file_offset,
                link: pkt.link,
            };
            self.arena.extend_from_slice(pkt.data);
            if !self.due(slot.ts_ns, &mut now) {
                // Not yet: keep it for a later poll.
                self.carry_bytes.clear();
                self.carry_bytes.extend_from_slice(&self.arena[slot.start..]);
                self.arena.truncate(slot.start);
                self.carry = Some(slot);
                break;
            }
            self.slots.push(slot);
        }
        let n = self.slots.len();
        if n == 0 {
            self.stats.empty_polls += 1;
        } else {
            self.stats.bursts += 1;
            self.stats.packets += n as u64;
            self.stats.bytes += self.slots.iter().map(|s| s.len as u64).sum::<u64>();
        }
        n
    }

    #[inline]
    fn frame(&self, i: usize) -> Frame<'_> {
        let s = self.slots[i];
        Frame {
            data: &self.arena[s.start..s.start + s.len],
            framing: Framing::Link(s.link),
            rx_ns: s.ts_ns,
            ts_source: TimestampSource::Capture,
            locus: s.locus,
        }
    }

    fn stats(&mut self) -> QueueStats {
        self.stats
    }

    fn is_finished(&self) -> bool {
        self.finished && self.carry.is_none()
    }

    fn name(&self) -> String {
        format!("pcap:{}", self.reader.path().display())
    }

    fn has_pending(&self) -> bool {
        self.carry.is_some()
    }

    fn source_stats(&self) -> super::SourceStats {
        let c = self.reader.stats();
        super::SourceStats { short_captures: c.short_captures, truncated_records: c.truncated_records }
    }

    fn faults(&self) -> Vec<String> {
        let mut f = self.faults.clone();
        if let Some(why) = self.reader.truncation() {
            f.push(format!("{}: {why}", self.reader.path().display()));
        }
        f
    }
}
