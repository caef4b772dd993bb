//! Fault injection: a receive queue that drops, duplicates, reorders and delays frames of another.
//!
//! For tests and drills of the feed handler's gap, duplicate and late-fill logic against any
//! backend. It copies the frames it passes on into its own arena (it has to hold some back), so
//! it is not for the production hot path. Decisions come from a seeded generator: a run is
//! reproducible from its seed.

use std::collections::VecDeque;

use super::{BURST, Frame, Framing, QueueStats, RxQueue, TimestampSource};

/// Probabilities (0..=1) of each fault, per frame, and the generator's seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    /// Drop the frame.
    pub drop: f64,
    /// Deliver it twice.
    pub duplicate: f64,
    /// Deliver it after the frame that follows it.
    pub reorder: f64,
    /// Hold it back for `delay_polls` polls.
    pub delay: f64,
    /// How long a delayed frame is held, in polls of this queue.
    pub delay_polls: u32,
    /// The generator's seed.
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults { drop: 0.0, duplicate: 0.0, reorder: 0.0, delay: 0.0, delay_polls: 4, seed: 0x5eed }
    }
}

/// What was done, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultCounts {
    /// Frames dropped.
    pub dropped: u64,
    /// Frames delivered twice.
    pub duplicated: u64,
    /// Frames swapped with their successor.
    pub reordered: u64,
    /// Frames held back.
    pub delayed: u64,
}

#[derive(Clone, Copy, Debug)]
struct Held {
    start: usize,
    len: usize,
    framing: Framing,
    rx_ns: i64,
    ts_source: TimestampSource,
    locus: u64,
}

/// A queue with faults injected into another's frames.
#[derive(Debug)]
pub struct FaultInjection<Q> {
    inner: Q,
    faults: Faults,
    rng: u64,
    /// Frames being handed out this burst, and their bytes.
    out: Vec<Held>,
    arena: Vec<u8>,
    /// A frame waiting for its successor (reorder).
    swap: Option<(Held, Vec<u8>)>,
    /// Frames held back, with the poll at which they are due.
    delayed: VecDeque<(u64, Held, Vec<u8>)>,
    polls: u64,
    counts: FaultCounts,
    stats: QueueStats,
}

impl<Q: RxQueue> FaultInjection<Q> {
    /// Wraps `inner`.
    pub fn new(inner: Q, faults: Faults) -> Self {
        FaultInjection {
            inner,
            faults,
            rng: faults.seed ^ 0x9e37_79b9_7f4a_7c15,
            out: Vec::with_capacity(2 * BURST),
            arena: Vec::with_capacity(2 * BURST * 2048),
            swap: None,
            delayed: VecDeque::new(),
            polls: 0,
            counts: FaultCounts::default(),
            stats: QueueStats::default(),
        }
    }

    /// What was injected so far.
    pub fn counts(&self) -> FaultCounts {
        self.counts
    }

    /// The wrapped queue.
    pub fn inner(&self) -> &Q {
        &self.inner
    }

    /// splitmix64: a uniform draw in [0, 1).
    fn draw(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn push(&mut self, h: Held, bytes: &[u8]) {
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        self.out.push(Held { start, len: bytes.len(), ..h });
    }
}

impl<Q: RxQueue> RxQueue for FaultInjection<Q> {
    fn rx_burst(&mut self) -> usize {
        self.out.clear();
        self.arena.clear();
        self.polls += 1;
        while self.delayed.front().is_some_and(|d| d.0 <= self.polls) {
            if let Some((_, h, bytes)) = self.delayed.pop_front() {
                self.push(h, &bytes);
            }
        }
        let n = self.inner.rx_burst();
        for i in 0..n {
            let (held, bytes) = {
                let f = self.inner.frame(i);
                let h = Held {
                    start: 0,
                    len: f.data.len(),
                    framing: f.framing,
                    rx_ns: f.rx_ns,
                    ts_source: f.ts_source,
                    locus: f.locus,
                };
                // One copy out of the inner queue's buffer; faults are for drills, not the hot path.
                (h, f.data.to_vec())
            };
            let f = self.faults;
            if self.draw() < f.drop {
                self.counts.dropped += 1;
                continue;
            }
            if self.draw() < f.delay {
                self.counts.delayed += 1;
                self.delayed.push_back((self.polls + u64::from(f.delay_polls.max(1)), held, bytes));
                continue;
            }
            if let Some((prev, prev_bytes)) = self.swap.take() {
                // Counted once the swap has happened (a held frame may go out alone at the end).
                self.counts.reordered += 1;
                self.push(held, &bytes);
                self.push(prev, &prev_bytes);
                continue;
            }
            if self.draw() < f.reorder {
                self.swap = Some((held, bytes));
                continue;
            }
            self.push(held, &bytes);
            if self.draw() < f.duplicate {
                self.counts.duplicated += 1;
                self.push(held, &bytes);
            }
        }
        // A frame waiting for a successor that is not coming (the input ended) goes out alone.
        if self.inner.is_finished()
            && let Some((prev, prev_bytes)) = self.swap.take()
        {
            self.push(prev, &prev_bytes);
        }
        let n = self.out.len();
        if n == 0 {
            self.stats.empty_polls += 1;
        } else {
            self.stats.bursts += 1;
            self.stats.packets += n as u64;
            self.stats.bytes += self.out.iter().map(|h| h.len as u64).sum::<u64>();
        }
        n
    }

    fn frame(&self, i: usize) -> Frame<'_> {
        let h = self.out[i];
        Frame {
            data: &self.arena[h.start..h.start + h.len],
            framing: h.framing,
            rx_ns: h.rx_ns,
            ts_source: h.ts_source,
            locus: h.locus,
        }
    }

    fn stats(&mut self) -> QueueStats {
        let inner = self.inner.stats();
        QueueStats { missed: inner.missed, no_buffer: inner.no_buffer, errors: inner.errors, ..self.stats }
    }

    fn is_finished(&self) -> bool {
        self.inner.is_finished() && self.swap.is_none() && self.delayed.is_empty()
    }

    fn has_pending(&self) -> bool {
        self.inner.has_pending() || self.swap.is_some() || !self.delayed.is_empty()
    }

    fn source_stats(&self) -> super::SourceStats {
        self.inner.source_stats()
    }

    fn name(&self) -> String {
        format!("{} (faults injected)", self.inner.name())
    }

    fn faults(&self) -> Vec<String> {
        self.inner.faults()
    }
}
