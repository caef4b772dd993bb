//! Where task memory comes from.
//!
//! - [`Storage::Heap`]: the global allocator, one allocation per spawn.
//! - [`Storage::Slab`]: `slots` fixed-size slots reserved at start-up; `spawn` takes one or fails with
//!   [`SpawnError::Full`] (or [`SpawnError::TooLarge`] for a future that does not fit a slot). Nothing is allocated
//!   after start-up. Free slots form a lock-free stack whose head carries a 32-bit tag against ABA.

use alloc::alloc::{alloc, dealloc, handle_alloc_error};
use alloc::boxed::Box;
use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// Slot alignment: enough for anything short of an over-aligned future, and a cache line.
pub(crate) const SLOT_ALIGN: usize = 64;

const NIL: u32 = u32::MAX;

/// Why a spawn was refused. Small and `Copy`: it is returned on the spawn path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnError {
    /// Bounded storage: every task slot is in use.
    Full {
        /// Slots reserved at start-up.
        slots: usize,
    },
    /// Bounded storage: this task (future, output and header) needs more than a slot.
    TooLarge {
        /// Bytes the task needs.
        size: usize,
        /// Alignment the task needs.
        align: usize,
        /// Bytes per slot.
        slot_size: usize,
    },
    /// The runtime is shutting down.
    ShuttingDown,
    /// `spawn_local` or `spawn_on` named no worker of this runtime (or was not called on one).
    NoSuchWorker,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SpawnError::Full { slots } => write!(f, "all {slots} task slots are in use"),
            SpawnError::TooLarge { size, align, slot_size } => write!(
                f,
                "task needs {size} bytes aligned to {align}, but slots are {slot_size} bytes aligned to {SLOT_ALIGN}"
            ),
            SpawnError::ShuttingDown => write!(f, "the runtime is shutting down"),
            SpawnError::NoSuchWorker => write!(f, "not on (or not naming) a worker of this runtime"),
        }
    }
}

impl core::error::Error for SpawnError {}

#[derive(Debug)]
pub(crate) enum Storage {
    Heap,
    Slab(Slab),
}

impl Storage {
    pub(crate) fn alloc(&self, layout: Layout) -> Result<NonNull<u8>, SpawnError> {
        match self {
            Storage::Heap => {
                // SAFETY: task cells always have a non-zero size (the header alone is larger than zero).
                let ptr = unsafe { alloc(layout) };
                Ok(NonNull::new(ptr).unwrap_or_else(|| handle_alloc_error(layout)))
            }
            Storage::Slab(slab) => slab.alloc(layout),
        }
    }

    /// # Safety
    /// `ptr` came from `self.alloc(layout)` and is no longer used.
    pub(crate) unsafe fn dealloc(&self, ptr: NonNull<u8>, layout: Layout) {
        match self {
            // SAFETY: allocated by `alloc` with this layout.
            Storage::Heap => unsafe { dealloc(ptr.as_ptr(), layout) },
            // SAFETY: forwarded contract.
            Storage::Slab(slab) => unsafe { slab.dealloc(ptr) },
        }
    }
}

/// Fixed-size task slots reserved up front.
pub(crate) struct Slab {
    base: NonNull<u8>,
    layout: Layout,
    slot_size: usize,
    slots: usize,
    /// Free-stack head: `tag << 32 | index` (index `NIL` = empty).
    head: AtomicU64,
    next: Box<[AtomicU32]>,
}

// SAFETY: the slab hands out disjoint slots; its own bookkeeping is atomic.
unsafe impl Send for Slab {}
// SAFETY: as above.
unsafe impl Sync for Slab {}

impl fmt::Debug for Slab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slab").field("slots", &self.slots).field("slot_size", &self.slot_size).finish()
    }
}

impl Slab {
    /// Reserve `slots` slots of `slot_size` bytes (rounded up to [`SLOT_ALIGN`]).
    pub(crate) fn new(slots: usize, slot_size: usize) -> Slab {
        assert!(slots > 0 && slots < NIL as usize, "slab slots must be in 1..{NIL}");
        let slot_size = slot_size.max(1).next_multiple_of(SLOT_ALIGN);
        let layout = Layout::from_size_align(slot_size * slots, SLOT_ALIGN).expect("slab size overflows");
        // SAFETY: non-zero size.
        let base = NonNull::new(unsafe { alloc(layout) }).unwrap_or_else(|| handle_alloc_error(layout));
        let next = (0..slots).map(|i| AtomicU32::new(if i + 1 < slots { i as u32 + 1 } else { NIL })).collect();
        Slab { base, layout, slot_size, slots, head: AtomicU64::new(0), next }
    }

    fn alloc(&self, layout: Layout) -> Result<NonNull<u8>, SpawnError> {
        if layout.size() > self.slot_size || layout.align() > SLOT_ALIGN {
            return Err(SpawnError::TooLarge { size: layout.size(), align: layout.align(), slot_size: self.slot_size });
        }
        let index = self.pop().ok_or(SpawnError::Full { slots: self.slots })?;
        // SAFETY: index < slots, so the slot lies inside the reservation.
        Ok(unsafe { self.base.add(index as usize * self.slot_size) })
    }

    /// # Safety
    /// `ptr` is a slot returned by `alloc` and no longer used.
    unsafe fn dealloc(&self, ptr: NonNull<u8>) {
        // SAFETY: both pointers are in the same reservation.
        let offset = unsafe { ptr.as_ptr().offset_from(self.base.as_ptr()) } as usize;
        debug_assert_eq!(offset % self.slot_size, 0);
        self.push((offset / self.slot_size) as u32);
    }

    fn pop(&self) -> Option<u32> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let index = head as u32;
            if index == NIL {
                return None;
            }
            // A stale read here (another thread popped `index` meanwhile) is caught by the tag in the CAS below.
            let next = self.next[index as usize].load(Ordering::Relaxed);
            let tagged = ((head >> 32).wrapping_add(1) << 32) | next as u64;
            match self.head.compare_exchange_weak(head, tagged, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return Some(index),
                Err(actual) => head = actual,
            }
        }
    }

    fn push(&self, index: u32) {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            self.next[index as usize].store(head as u32, Ordering::Relaxed);
            let tagged = ((head >> 32).wrapping_add(1) << 32) | index as u64;
            match self.head.compare_exchange_weak(head, tagged, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => head = actual,
            }
        }
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; every task (and so every slot user) is gone, since each task
        // keeps the runtime (which owns the slab) alive.
        unsafe { dealloc(self.base.as_ptr(), self.layout) };
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn slab_hands_out_every_slot_once_then_refuses() {
        let slab = Slab::new(3, 100);
        assert_eq!(slab.slot_size, 128);
        let layout = Layout::from_size_align(128, 8).unwrap();
        let storage = Storage::Slab(slab);
        let a = storage.alloc(layout).unwrap();
        let b = storage.alloc(layout).unwrap();
        let c = storage.alloc(layout).unwrap();
        assert!(a != b && b != c && a != c);
        assert_eq!(storage.alloc(layout), Err(SpawnError::Full { slots: 3 }));
        // SAFETY: `b` came from this storage and is unused.
        unsafe { storage.dealloc(b, layout) };
        assert_eq!(storage.alloc(layout), Ok(b));
        let big = Layout::from_size_align(129, 8).unwrap();
        assert!(matches!(storage.alloc(big), Err(SpawnError::TooLarge { size: 129, .. })));
    }
}
