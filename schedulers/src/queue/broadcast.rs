//! A single-writer broadcast ring of variable-length entries (Agrona's broadcast buffer, plus a
//! global sequence): the protocol under `weir::bus`, which places it in a shared file mapping.
//!
//! One [`Writer`] appends; any number of [`Reader`]s follow it, keeping no state in the ring. The
//! writer never waits for a reader and does O(1) work per entry however many read. A reader that
//! falls a whole ring behind is *lapped*: it learns so, resynchronises, and — because every entry
//! carries a 64-bit sequence — knows exactly how many entries it missed.
//!
//! ```text
//! counters: [tail_intent, tail, latest, first_seq] (one 128-byte line) | checkpoints[16] (another)
//! data:     [frame u64: len u32, kind u32][seq u64][payload, zero-padded to 8] ... [padding frame]
//! ```
//!
//! - **Write**: `tail_intent = end` (relaxed), release fence, then the entry's words (relaxed),
//!   then `latest = start`, `tail = end` (release). An entry that would cross the end of the data
//!   is preceded by a padding entry to the end, and `tail_intent` covers both.
//! - **Read**: `tail` (relaxed + acquire fence), copy the entry's words (relaxed), acquire fence,
//!   then `tail_intent` (relaxed): if the writer meant to go past `cursor + capacity`, it may have
//!   written over what was copied, and the copy is thrown away. This is the seqlock read of
//!   Boehm's "Can seqlocks get along with programming language memory models?": a copied word
//!   written after the writer's release fence makes that fence synchronise with the reader's
//!   acquire fence, so the reader's `tail_intent` load sees the intent that preceded it.
//! - Readers only *load*, and only with `Relaxed` ordering (ordering comes from fences), which is
//!   what `core::sync::atomic` allows on read-only memory: `weir::bus` maps the file read-only in
//!   consumer processes.
//! - **Checkpoints**: the writer notes the start of the first entry in each sixteenth of the ring
//!   (one relaxed store when an entry opens a new sixteenth), so a reader can join at, or resync
//!   to, the oldest entry still in the ring instead of only the newest ([`Join::Oldest`]).
//!
//! Every length read from the ring is bounds-checked before use: garbage in the data (a torn read,
//! a corrupt file) gives [`Poll::Corrupt`] and a resynchronisation, never an out-of-bounds access.

use crate::sync::{AtomicU64, CachePadded, Ordering, fence};

/// Bytes of an entry's frame and sequence words.
pub const ENTRY_HEADER: usize = 16;
/// Entries start at multiples of this.
pub const ALIGN: usize = 8;
/// How many checkpoints the counters hold (each covers `capacity / CHECKPOINTS` bytes).
pub const CHECKPOINTS: usize = 16;
/// The smallest ring (bytes): room for two entries of 16-byte payload.
pub const MIN_CAPACITY: usize = 64;

const KIND_ENTRY: u32 = 1;
const KIND_PADDING: u32 = 2;

/// The writer's shared counters: the four a publish writes (`tail_intent`, `tail`, `latest`,
/// `first_seq`) together on one 128-byte line, as Agrona keeps them (one writer: splitting them
/// would only make each publish own, and each read fetch, more lines), and the checkpoints on
/// another. `repr(C)`, 256 bytes, all zero in a new ring: `weir::bus` places one at a fixed
/// offset of its file's header page.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Counters {
    hot: CachePadded<Hot>,
    /// For each sixteenth of the ring, where the first entry the writer started in it begins.
    checkpoints: CachePadded<[AtomicU64; CHECKPOINTS]>,
}

#[repr(C)]
#[derive(Debug, Default)]
struct Hot {
    /// Where the entry being written ends: bumped before any of its bytes are.
    tail_intent: AtomicU64,
    /// Where the last complete entry ends.
    tail: AtomicU64,
    /// Where the last complete entry starts.
    latest: AtomicU64,
    /// The sequence the ring's first entry carries.
    first_seq: AtomicU64,
}

impl Counters {
    /// Stream position where the last complete entry ends (total bytes written).
    pub fn tail(&self) -> u64 {
        let t = self.hot.tail.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        t
    }
}

/// Shared memory holding one ring.
///
/// # Safety
/// `counters` and `data` return the same memory every time for as long as the value lives, and
/// `data().len()` is a power of two, at least `MIN_CAPACITY / 8` words.
pub unsafe trait RingMemory {
    /// The counters.
    fn counters(&self) -> &Counters;
    /// The data area, as words.
    fn data(&self) -> &[AtomicU64];
}

// SAFETY: forwards to `T`, which upholds the contract.
unsafe impl<T: RingMemory + ?Sized> RingMemory for crate::sync::Arc<T> {
    fn counters(&self) -> &Counters {
        (**self).counters()
    }
    fn data(&self) -> &[AtomicU64] {
        (**self).data()
    }
}

/// A ring on the heap, for readers and a writer in one process (and for the models).
#[derive(Debug)]
pub struct HeapRing {
    counters: alloc::boxed::Box<Counters>,
    data: alloc::boxed::Box<[AtomicU64]>,
}

impl HeapRing {
    /// A ring of `capacity` bytes (a power of two, at least [`MIN_CAPACITY`]).
    ///
    /// # Panics
    /// If `capacity` is not such a number.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity.is_power_of_two() && capacity >= MIN_CAPACITY, "ring capacity {capacity}");
        HeapRing {
            counters: alloc::boxed::Box::default(),
            data: (0..capacity / ALIGN).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

// SAFETY: both boxes live as long as the value; `new` checks the length.
unsafe impl RingMemory for HeapRing {
    fn counters(&self) -> &Counters {
        &self.counters
    }
    fn data(&self) -> &[AtomicU64] {
        &self.data
    }
}

#[inline(always)]
fn align_up(n: usize) -> usize {
    (n + ALIGN - 1) & !(ALIGN - 1)
}

#[inline(always)]
fn frame(kind: u32, len: u32) -> u64 {
    u64::from(len) | (u64::from(kind) << 32)
}

/// The payload is larger than this ring takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge {
    /// The payload's length.
    pub len: usize,
    /// The most the ring takes.
    pub max: usize,
}

/// The one writer of a ring.
#[derive(Debug)]
pub struct Writer<M: RingMemory> {
    mem: M,
    /// Stream position of the next entry (bytes ever written, padding included).
    tail: u64,
    seq: u64,
    mask: u64,
    checkpoint_shift: u32,
    /// Stream chunk (`position >> checkpoint_shift`) of the last checkpoint written.
    last_chunk: u64,
    max_payload: usize,
}

impl<M: RingMemory> Writer<M> {
    /// Writes to `mem` after whatever it holds, numbering entries from `first_seq`.
    pub fn new(mem: M, first_seq: u64) -> Self {
        let capacity = mem.data().len() * ALIGN;
        let tail = mem.counters().hot.tail.load(Ordering::Relaxed);
        if tail == 0 {
            mem.counters().hot.first_seq.store(first_seq, Ordering::Relaxed);
        }
        Writer {
            tail,
            seq: first_seq,
            mask: capacity as u64 - 1,
            checkpoint_shift: (capacity / CHECKPOINTS).trailing_zeros(),
            last_chunk: u64::MAX,
            // Half the ring, so that an entry and the padding before it always fit.
            max_payload: capacity / 2 - ENTRY_HEADER,
            mem,
        }
    }

    /// The largest payload [`publish`](Self::publish) takes.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// The sequence number the next entry gets.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// Bytes written so far (the stream position of the next entry).
    pub fn position(&self) -> u64 {
        self.tail
    }

    /// The memory.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Appends one entry and returns its sequence number. Never waits.
    #[inline]
    pub fn publish(&mut self, payload: &[u8]) -> Result<u64, TooLarge> {
        if payload.len() > self.max_payload {
            return Err(TooLarge { len: payload.len(), max: self.max_payload });
        }
        let counters = self.mem.counters();
        let data = self.mem.data();
        let entry = align_up(ENTRY_HEADER + payload.len()) as u64;
        let mut start = self.tail;
        let mut word = ((start & self.mask) / ALIGN as u64) as usize;
        let to_end = (self.mask + 1) - (start & self.mask);
        if to_end < entry {
            counters.hot.tail_intent.store(start + to_end + entry, Ordering::Relaxed);
            fence(Ordering::Release);
            data[word].store(frame(KIND_PADDING, (to_end - ALIGN as u64) as u32), Ordering::Relaxed);
            start += to_end;
            word = 0;
        } else {
            counters.hot.tail_intent.store(start + entry, Ordering::Relaxed);
            fence(Ordering::Release);
        }
        data[word].store(frame(KIND_ENTRY, payload.len() as u32), Ordering::Relaxed);
        data[word + 1].store(self.seq, Ordering::Relaxed);
        let words = &data[word + 2..];
        let mut chunks = payload.chunks_exact(ALIGN);
        for (slot, chunk) in words.iter().zip(&mut chunks) {
            let mut w = [0u8; ALIGN];
            w.copy_from_slice(chunk);
            slot.store(u64::from_ne_bytes(w), Ordering::Relaxed);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; ALIGN];
            w[..rest.len()].copy_from_slice(rest);
            words[payload.len() / ALIGN].store(u64::from_ne_bytes(w), Ordering::Relaxed);
        }
        let chunk = start >> self.checkpoint_shift;
        if chunk != self.last_chunk {
            self.last_chunk = chunk;
            counters.checkpoints[(chunk % CHECKPOINTS as u64) as usize].store(start, Ordering::Release);
        }
        let end = start + entry;
        counters.hot.latest.store(start, Ordering::Release);
        counters.hot.tail.store(end, Ordering::Release);
        self.tail = end;
        let seq = self.seq;
        self.seq += 1;
        Ok(seq)
    }
}

/// Where a new reader starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Join {
    /// At the next entry written (nothing old).
    #[default]
    Tail,
    /// At the oldest entry still in the ring (within a sixteenth of the ring of it).
    Oldest,
}

/// Where a lapped reader goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resync {
    /// The newest entry (Agrona's choice: the most headroom before the next lap).
    #[default]
    Latest,
    /// The oldest entry still in the ring (the fewest entries lost, if the reader now keeps up).
    Oldest,
}

/// What one [`Reader::poll`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Nothing new.
    Empty,
    /// An entry, copied whole and validated: `len` payload bytes at the start of the buffer.
    Entry {
        /// Its sequence number.
        seq: u64,
        /// Entries missed just before it (lapped, or joined on a resync).
        lost: u64,
        /// Payload bytes.
        len: usize,
    },
    /// The reader was lapped (or the entry was overwritten while being copied); it has
    /// resynchronised and the next poll reads on. How many entries were lost shows on the next
    /// entry read ([`Poll::Entry::lost`]).
    Lapped,
    /// The ring held something that is not an entry, though the writer had not gone past it (a
    /// corrupt or foreign ring, or a writer that restarted in place); the reader resynchronised.
    Corrupt {
        /// Stream position of the bad frame.
        position: u64,
        /// The frame word found there.
        frame: u64,
    },
    /// The entry's payload is larger than the buffer given to [`Reader::poll`]; it was skipped
    /// (and counts as lost).
    TooLarge {
        /// Its sequence number.
        seq: u64,
        /// Entries missed just before it (as in [`Poll::Entry::lost`]).
        lost: u64,
        /// Its payload length.
        len: usize,
    },
}

/// Counters of one reader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Entries delivered.
    pub received: u64,
    /// Entries missed (sequence gaps), whether lapped or skipped.
    pub lost: u64,
    /// Times the reader was lapped.
    pub laps: u64,
    /// Entries copied and then found overwritten during the copy (thrown away; also in `laps`).
    pub overwritten: u64,
    /// Corrupt frames met.
    pub corrupt: u64,
}

/// One reader of a ring: a cursor and an expected sequence, nothing shared.
#[derive(Debug)]
pub struct Reader<M: RingMemory> {
    mem: M,
    cursor: u64,
    /// The sequence the next entry should carry; `None` until the first entry.
    expected: Option<u64>,
    mask: u64,
    resync: Resync,
    stats: ReaderStats,
}

impl<M: RingMemory> Reader<M> {
    /// A reader of `mem`, starting per `join`; lapped, it resynchronises per `resync`.
    pub fn new(mem: M, join: Join, resync: Resync) -> Self {
        let mask = (mem.data().len() * ALIGN) as u64 - 1;
        let mut reader = Reader { mem, cursor: 0, expected: None, mask, resync, stats: ReaderStats::default() };
        reader.join(join);
        reader
    }

    /// Places the cursor per `join` and learns the sequence expected there, so that even a lap
    /// before the first entry read is counted exactly.
    fn join(&mut self, join: Join) {
        let counters = self.mem.counters();
        for _ in 0..4 {
            let tail = counters.tail();
            if tail == 0 {
                self.cursor = 0;
                self.expected = Some(counters.hot.first_seq.load(Ordering::Relaxed));
                return;
            }
            let oldest = if join == Join::Oldest { self.oldest() } else { tail };
            if oldest < tail {
                if let Some((seq, _)) = self.entry_at(oldest) {
                    (self.cursor, self.expected) = (oldest, Some(seq));
                    return;
                }
            } else {
                let latest = counters.hot.latest.load(Ordering::Relaxed);
                fence(Ordering::Acquire);
                if let Some((seq, end)) = self.entry_at(latest) {
                    (self.cursor, self.expected) = (end, Some(seq.wrapping_add(1)));
                    return;
                }
            }
        }
        // Overwritten four times while looking: join blind at the tail.
        (self.cursor, self.expected) = (counters.tail(), None);
    }

    /// The sequence and end of the entry starting at `position`, if it is still there and whole.
    fn entry_at(&self, position: u64) -> Option<(u64, u64)> {
        let data = self.mem.data();
        let word = ((position & self.mask) / ALIGN as u64) as usize;
        let head = data[word].load(Ordering::Relaxed);
        let seq = data.get(word + 1)?.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        let len = (head as u32) as usize;
        let room = (self.mask + 1 - (position & self.mask)) as usize;
        if self.overrun(position) || (head >> 32) as u32 != KIND_ENTRY || ENTRY_HEADER + len > room {
            return None;
        }
        Some((seq, position.wrapping_add(align_up(ENTRY_HEADER + len) as u64)))
    }

    /// The counters.
    pub fn stats(&self) -> &ReaderStats {
        &self.stats
    }

    /// Stream position of the next entry to read.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The sequence the next entry should carry (`None` before the first).
    pub fn expected_seq(&self) -> Option<u64> {
        self.expected
    }

    /// The memory.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Entries written but not yet read, from the sequence of the newest entry: what a reader
    /// that leaves now (for a newer ring) must count as lost. `None` when the newest entry cannot
    /// be read (overwritten while looking) or no sequence is known yet.
    pub fn unread(&self) -> Option<u64> {
        let counters = self.mem.counters();
        if counters.tail() <= self.cursor {
            return Some(0);
        }
        let latest = counters.hot.latest.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        let (seq, _) = self.entry_at(latest)?;
        Some(seq.wrapping_add(1).saturating_sub(self.expected?))
    }

    /// The sequence the ring's first entry carries (what a reader that joined late missed
    /// counts from).
    pub fn first_seq(&self) -> u64 {
        self.mem.counters().hot.first_seq.load(Ordering::Relaxed)
    }

    /// Bytes written but not yet read (0 when caught up).
    pub fn lag_bytes(&self) -> u64 {
        self.mem.counters().tail().saturating_sub(self.cursor)
    }

    /// Whether the writer has written past `position + capacity` (so `position` may be gone).
    #[inline(always)]
    fn overrun(&self, position: u64) -> bool {
        let intent = self.mem.counters().hot.tail_intent.load(Ordering::Relaxed);
        // Saturating: positions come from shared memory, which a corrupt file fills with anything.
        intent > position.saturating_add(self.mask + 1)
    }

    /// The start of the oldest entry still in the ring that a checkpoint knows of; the tail when
    /// none is.
    fn oldest(&self) -> u64 {
        let counters = self.mem.counters();
        let tail = counters.tail();
        let intent = counters.hot.tail_intent.load(Ordering::Relaxed);
        // Not the very oldest: the writer may be about to overwrite it.
        let floor = intent.saturating_sub(self.mask + 1);
        counters.checkpoints.iter().map(|c| c.load(Ordering::Relaxed)).filter(|&p| p >= floor && p < tail).min().map_or(
            tail,
            |p| {
                fence(Ordering::Acquire);
                p
            },
        )
    }

    #[cold]
    fn lapped(&mut self) {
        self.stats.laps += 1;
        self.cursor = match self.resync {
            Resync::Latest => {
                let latest = self.mem.counters().hot.latest.load(Ordering::Relaxed);
                fence(Ordering::Acquire);
                latest
            }
            Resync::Oldest => self.oldest(),
        };
    }

    #[cold]
    fn corrupt(&mut self, position: u64, frame: u64) -> Poll {
        self.stats.corrupt += 1;
        self.cursor = self.mem.counters().tail();
        Poll::Corrupt { position, frame }
    }

    /// Reads the next entry into `out` (its payload, from `out[0]`), if there is one.
    #[inline]
    pub fn poll(&mut self, out: &mut [u64]) -> Poll {
        let counters = self.mem.counters();
        let data = self.mem.data();
        let tail = counters.hot.tail.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        // The cursor may be ahead of the tail this load saw: a join or resync placed it after an
        // entry found through `latest`, which can be newer than the tail read before it.
        if self.cursor >= tail {
            return Poll::Empty;
        }
        if self.overrun(self.cursor) {
            self.lapped();
            return Poll::Lapped;
        }
        let mut position = self.cursor;
        let mut word = ((position & self.mask) / ALIGN as u64) as usize;
        let mut head = data[word].load(Ordering::Relaxed);
        if (head >> 32) as u32 == KIND_PADDING {
            let to_end = (self.mask + 1) - (position & self.mask);
            if u64::from(head as u32) + ALIGN as u64 != to_end {
                return self.check_corrupt(position, head);
            }
            position = position.wrapping_add(to_end);
            word = 0;
            if position >= tail {
                // The padding is complete but the entry after it is not yet.
                self.cursor = position;
                return Poll::Empty;
            }
            head = data[0].load(Ordering::Relaxed);
        }
        let len = (head as u32) as usize;
        let room = (self.mask + 1 - (position & self.mask)) as usize;
        if (head >> 32) as u32 != KIND_ENTRY || ENTRY_HEADER + len > room {
            return self.check_corrupt(position, head);
        }
        let seq = data[word + 1].load(Ordering::Relaxed);
        let words = len.div_ceil(ALIGN);
        let fits = words <= out.len();
        if fits {
            for (dst, src) in out.iter_mut().zip(&data[word + 2..word + 2 + words]) {
                *dst = src.load(Ordering::Relaxed);
            }
        }
        fence(Ordering::Acquire);
        if self.overrun(position) {
            self.stats.overwritten += 1;
            self.lapped();
            return Poll::Lapped;
        }
        self.cursor = position.wrapping_add(align_up(ENTRY_HEADER + len) as u64);
        let lost = match self.expected {
            Some(e) if seq > e => seq - e,
            _ => 0,
        };
        self.expected = Some(seq.wrapping_add(1));
        self.stats.lost = self.stats.lost.saturating_add(lost);
        if !fits {
            self.stats.lost += 1;
            return Poll::TooLarge { seq, lost, len };
        }
        self.stats.received += 1;
        Poll::Entry { seq, lost, len }
    }

    /// A frame that does not parse: overwritten under us (a lap), or really corrupt.
    #[cold]
    fn check_corrupt(&mut self, position: u64, frame: u64) -> Poll {
        fence(Ordering::Acquire);
        if self.overrun(position) {
            self.stats.overwritten += 1;
            self.lapped();
            return Poll::Lapped;
        }
        self.corrupt(position, frame)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use alloc::vec::Vec;

    fn payload(seq: u64, len: usize) -> Vec<u8> {
        (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
    }

    fn bytes(words: &[u64], len: usize) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_ne_bytes()).take(len).collect()
    }

    #[test]
    fn entries_come_out_in_order_across_wraps() {
        let ring = Arc::new(HeapRing::new(256));
        let mut w = Writer::new(ring.clone(), 0);
        let mut r = Reader::new(ring, Join::Tail, Resync::Latest);
        let mut out = [0u64; 16];
        for seq in 0..200u64 {
            let len = (seq as usize * 7) % 60 + 1;
            assert_eq!(w.publish(&payload(seq, len)), Ok(seq));
            match r.poll(&mut out) {
                Poll::Entry { seq: s, lost: 0, len: l } => {
                    assert_eq!((s, l), (seq, len));
                    assert_eq!(bytes(&out, l), payload(seq, len));
                }
                other => panic!("seq {seq}: {other:?}"),
            }
            assert_eq!(r.poll(&mut out), Poll::Empty);
        }
        assert_eq!(r.stats().received, 200);
        assert_eq!(r.stats().lost, 0);
    }

    #[test]
    fn a_lapped_reader_counts_exactly_what_it_lost() {
        for resync in [Resync::Latest, Resync::Oldest] {
            let ring = Arc::new(HeapRing::new(512));
            let mut w = Writer::new(ring.clone(), 100);
            let mut r = Reader::new(ring, Join::Tail, resync);
            let mut out = [0u64; 16];
            let mut seen = Vec::new();
            for round in 0..20u64 {
                // A burst much larger than the ring, then a drain.
                for i in 0..(round * 13 % 50 + 1) {
                    let seq = w.next_seq();
                    w.publish(&payload(seq, (i as usize % 40) + 8)).unwrap();
                }
                loop {
                    match r.poll(&mut out) {
                        Poll::Entry { seq, len, .. } => {
                            assert_eq!(bytes(&out, len), payload(seq, len), "{resync:?} seq {seq}");
                            seen.push(seq);
                        }
                        Poll::Lapped => {}
                        Poll::Empty => break,
                        other => panic!("{other:?}"),
                    }
                }
            }
            assert!(seen.windows(2).all(|p| p[0] < p[1]));
            let s = r.stats();
            assert!(s.laps > 0, "{resync:?}: never lapped");
            assert_eq!(s.received + s.lost, w.next_seq() - 100, "{resync:?}: {s:?}");
            assert_eq!(s.received, seen.len() as u64);
        }
    }

    #[test]
    fn a_reader_lapped_before_its_first_entry_still_counts_exactly() {
        for join in [Join::Tail, Join::Oldest] {
            let ring = Arc::new(HeapRing::new(256));
            let mut w = Writer::new(ring.clone(), 7);
            for seq in 7..30 {
                w.publish(&payload(seq, 16)).unwrap();
            }
            let mut r = Reader::new(ring.clone(), join, Resync::Latest);
            let joined_at = r.expected_seq().unwrap();
            for seq in 30..100 {
                w.publish(&payload(seq, 16)).unwrap();
            }
            let mut out = [0u64; 4];
            while r.poll(&mut out) != Poll::Empty {}
            let s = r.stats();
            assert_eq!(s.received + s.lost, 100 - joined_at, "{join:?}: {s:?}");
            assert_eq!(s.received, 1, "{join:?}: resynced to the latest");
        }
    }

    /// A writer thread and two reader threads at full speed (also run under Miri, which checks
    /// the accesses): every entry delivered is whole, in order, and received + lost adds up.
    #[cfg(feature = "std")]
    #[test]
    fn concurrent_readers_never_see_a_torn_entry() {
        extern crate std;
        let n: u64 = if cfg!(miri) { 300 } else { 200_000 };
        let ring = Arc::new(HeapRing::new(256));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let mut r = Reader::new(ring.clone(), Join::Tail, Resync::Latest);
                std::thread::spawn(move || {
                    let joined = r.expected_seq().unwrap();
                    let mut out = [0u64; 8];
                    let mut last = None;
                    while last != Some(n - 1) {
                        if let Poll::Entry { seq, len, .. } = r.poll(&mut out) {
                            assert_eq!(bytes(&out, len), payload(seq, len), "torn entry {seq}");
                            assert!(last.is_none_or(|l| l < seq));
                            last = Some(seq);
                        }
                    }
                    (joined, *r.stats())
                })
            })
            .collect();
        let mut w = Writer::new(ring, 0);
        for seq in 0..n {
            w.publish(&payload(seq, (seq as usize % 5) * 8 + 3)).unwrap();
        }
        for r in readers {
            let (joined, s) = r.join().unwrap();
            assert_eq!(s.received + s.lost, n - joined, "{s:?}");
            assert_eq!(s.corrupt, 0);
        }
    }

    #[test]
    fn join_oldest_starts_within_the_ring() {
        let ring = Arc::new(HeapRing::new(1024));
        let mut w = Writer::new(ring.clone(), 0);
        for seq in 0..10 {
            w.publish(&payload(seq, 24)).unwrap();
        }
        // Nothing wrapped yet: the oldest is the first.
        let mut r = Reader::new(ring.clone(), Join::Oldest, Resync::Latest);
        let mut out = [0u64; 8];
        assert!(matches!(r.poll(&mut out), Poll::Entry { seq: 0, .. }));
        for seq in 10..1000 {
            w.publish(&payload(seq, 24)).unwrap();
        }
        let mut r = Reader::new(ring.clone(), Join::Oldest, Resync::Latest);
        let Poll::Entry { seq: first, .. } = r.poll(&mut out) else { panic!() };
        // 40-byte entries, 1024-byte ring: 25 fit; a checkpoint every 64 bytes.
        assert!((1000 - 26..1000 - 22).contains(&first), "joined at {first}");
        let mut n = 1;
        while let Poll::Entry { .. } = r.poll(&mut out) {
            n += 1;
        }
        assert_eq!(first + n, 1000);
        let mut tail = Reader::new(ring, Join::Tail, Resync::Latest);
        assert_eq!(tail.poll(&mut out), Poll::Empty);
    }

    #[test]
    fn oversized_payloads_are_refused_and_garbage_is_not_read() {
        let ring = Arc::new(HeapRing::new(256));
        let mut w = Writer::new(ring.clone(), 0);
        assert_eq!(w.publish(&[0; 113]), Err(TooLarge { len: 113, max: 112 }));
        let mut r = Reader::new(ring.clone(), Join::Tail, Resync::Latest);
        w.publish(&[1; 100]).unwrap();
        let mut small = [0u64; 4];
        assert_eq!(r.poll(&mut small), Poll::TooLarge { seq: 0, lost: 0, len: 100 });
        // A frame claiming more than the ring holds, where the writer never went past.
        ring.data()[16].store(frame(KIND_ENTRY, 4000), Ordering::Relaxed);
        ring.counters().hot.tail.store(256, Ordering::Relaxed);
        let mut r = Reader::new(ring.clone(), Join::Tail, Resync::Latest);
        r.cursor = 128;
        assert!(matches!(r.poll(&mut small), Poll::Corrupt { position: 128, .. }));
        assert_eq!(r.stats().corrupt, 1);
    }
}
