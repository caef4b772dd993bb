//! The ring file: a 4 KiB header page, then the data area (a power of two bytes).
//!
//! Offsets are fixed (layout version 1) so that readers in other languages can follow them:
//!
//! | offset | field | written |
//! |---|---|---|
//! | 0 | magic `WEIRBUS\0` (8 bytes) | at creation |
//! | 8 | layout version (u32, 1) | at creation |
//! | 12 | DBN version (u32, 3) | at creation |
//! | 16 | header length (u64, 4096) | at creation |
//! | 24 | capacity of the data area, bytes (u64, power of two) | at creation |
//! | 32 | epoch (u64; 1 for a new name, +1 on every re-creation) | at creation |
//! | 40 | producer pid (u32) | at creation |
//! | 48 | creation time (u64, ns since the Unix epoch) | at creation |
//! | 56 | heartbeat interval (u64, ns) | at creation |
//! | 128 | heartbeat (u64, `CLOCK_MONOTONIC` ns) | by the producer, every interval |
//! | 136 | state (u32: 1 live, 2 ended, 3 superseded by a newer epoch) | by the producer; 3 by its successor |
//! | 140 | wake word (u32, a futex: bumped when records were published and waiters are served) | by the producer |
//! | 256 | ring counters, one 128-byte line: `tail_intent` @256, `tail` @264, `latest` @272, `first_seq` @280 | by the producer |
//! | 384 | 16 checkpoints (u64 stream positions) | by the producer |
//! | 4096 | data: entries `[len u32, kind u32 (1 entry, 2 padding)][seq u64][DBN record, padded to 8]` | by the producer |
//!
//! All multi-byte fields are little-endian (native on the machines weir runs on).

use std::sync::atomic::{AtomicU32, AtomicU64};

use weir_schedulers::queue::broadcast::{Counters, RingMemory};

/// The file's first eight bytes.
pub const MAGIC: [u8; 8] = *b"WEIRBUS\0";
/// The layout this code reads and writes.
pub const LAYOUT_VERSION: u32 = 1;
/// Bytes before the data area.
pub const HEADER_LEN: usize = 4096;
/// Records on the bus are DBN version 3.
pub const DBN_VERSION: u32 = 3;

/// The producer is running.
pub const STATE_LIVE: u32 = 1;
/// The producer marked the end of its stream.
pub const STATE_ENDED: u32 = 2;
/// A newer producer re-created the file under the same name.
pub const STATE_SUPERSEDED: u32 = 3;

/// The header page (the first 512 bytes of it; the rest is zero).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) magic: [u8; 8],
    pub(crate) layout_version: u32,
    pub(crate) dbn_version: u32,
    pub(crate) header_len: u64,
    pub(crate) capacity: u64,
    pub(crate) epoch: u64,
    pub(crate) producer_pid: u32,
    _pad0: u32,
    pub(crate) created_unix_ns: u64,
    pub(crate) heartbeat_interval_ns: u64,
    _line0: [u8; 64],
    pub(crate) heartbeat_ns: AtomicU64,
    pub(crate) state: AtomicU32,
    pub(crate) wake: AtomicU32,
    _line1: [u8; 112],
    pub(crate) ring: Counters,
}

const _: () = {
    assert!(std::mem::offset_of!(Header, heartbeat_ns) == 128);
    assert!(std::mem::offset_of!(Header, state) == 136);
    assert!(std::mem::offset_of!(Header, wake) == 140);
    assert!(std::mem::offset_of!(Header, ring) == 256);
    assert!(std::mem::size_of::<Header>() == 512);
    assert!(std::mem::size_of::<Header>() <= HEADER_LEN);
};

/// A mapped ring file: the header and the data area as atomics.
///
/// Built only by [`Mapping::new`], which checks that the mapping is large enough and aligned;
/// readers map the file read-only and only ever *load* through these atomics, with `Relaxed`
/// ordering (see `weir_schedulers::queue::broadcast`), which `core::sync::atomic` allows on
/// read-only memory.
#[derive(Debug)]
pub(crate) struct Mapping {
    base: *const u8,
    capacity: usize,
    /// Keeps the memory mapped (read-only or read-write).
    _map: MapKind,
}

#[derive(Debug)]
#[allow(dead_code)] // held for its Drop (the unmap)
pub(crate) enum MapKind {
    ReadOnly(memmap2::Mmap),
    ReadWrite(memmap2::MmapMut),
}

// SAFETY: the mapping is shared memory accessed only through atomics; the raw pointer is just
// its address, valid for as long as `_map` lives, and `_map` lives in the same value.
unsafe impl Send for Mapping {}
// SAFETY: as above: all access through `&Mapping` is by atomic operations.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Wraps a mapping of `HEADER_LEN + capacity` bytes or more.
    ///
    /// # Panics
    /// If the mapping is shorter or not page-aligned (callers check the file length first).
    pub(crate) fn new(map: MapKind, capacity: usize) -> Self {
        let (base, len) = match &map {
            MapKind::ReadOnly(m) => (m.as_ptr(), m.len()),
            MapKind::ReadWrite(m) => (m.as_ptr(), m.len()),
        };
        assert!(len >= HEADER_LEN + capacity && (base as usize).is_multiple_of(4096), "mapping too short");
        assert!(capacity.is_power_of_two() && capacity >= weir_schedulers::queue::broadcast::MIN_CAPACITY);
        Mapping { base, capacity, _map: map }
    }

    /// The header.
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the mapping is at least HEADER_LEN (> size_of::<Header>()) bytes from `base`,
        // page-aligned (Header needs 128), and lives as long as `self`. Header's plain fields are
        // written only before the file is published (renamed into place); the rest are atomics.
        // Every bit pattern is a valid Header.
        unsafe { &*self.base.cast::<Header>() }
    }

    /// The mapping's writable base, for the creator to fill in the header before publishing.
    pub(crate) fn header_mut(&mut self) -> Option<&mut Header> {
        match &mut self._map {
            // SAFETY: as in `header`; the mapping is writable and `&mut self` is exclusive (the
            // file is not yet visible to anyone else when the creator calls this).
            MapKind::ReadWrite(m) => Some(unsafe { &mut *m.as_mut_ptr().cast::<Header>() }),
            MapKind::ReadOnly(_) => None,
        }
    }
}

// SAFETY: `counters` and `data` point into the same mapping for as long as it lives; `new`
// checked the capacity is a power of two of at least MIN_CAPACITY and that the mapping holds it.
unsafe impl RingMemory for Mapping {
    fn counters(&self) -> &Counters {
        &self.header().ring
    }
    fn data(&self) -> &[AtomicU64] {
        // SAFETY: HEADER_LEN..HEADER_LEN + capacity lies inside the mapping; the offset keeps
        // 8-byte alignment; AtomicU64 has u64's layout and every bit pattern is valid.
        unsafe { std::slice::from_raw_parts(self.base.add(HEADER_LEN).cast::<AtomicU64>(), self.capacity / 8) }
    }
}
