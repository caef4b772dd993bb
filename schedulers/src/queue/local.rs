//! A worker's local run queue: a bounded single-producer ring that any thread may steal half of.
//!
//! tokio's design (`runtime/scheduler/multi_thread/queue.rs`), generic over the item:
//!
//! 1. `tail` is written only by the owner. `head` packs two `u32` positions: `real` (the next item to pop) and
//!    `steal` (where the stealer currently copying started). `steal == real` means nobody is stealing.
//! 2. The owner pops from the front by advancing `real` (and `steal` with it when nobody steals) with a CAS, and
//!    pushes at `tail`: a plain store with `Release` when there is room.
//! 3. A stealer claims the older half by advancing `real` only (CAS), copies the claimed items out, then closes the
//!    claim by setting `steal = real` (CAS). One stealer at a time: another one seeing `steal != real` backs off.
//! 4. Full ring: if nobody steals, the owner claims half of it (CAS) and hands that half plus the new item to the
//!    overflow (the injector) in one batch; if someone steals, just the new item goes there.
//!
//! Positions wrap at `u32`; the capacity is a power of two far below that, so `tail - steal` is the occupancy.

use alloc::boxed::Box;
use core::mem::MaybeUninit;

use crate::sync::{Arc, AtomicU32, AtomicU64, Ordering, UnsafeCell};

/// Default capacity of a worker's ring (tokio uses 256 too); 4 under loom to reach the full-ring paths.
#[cfg(not(loom))]
pub const DEFAULT_CAPACITY: usize = 256;
/// Default capacity of a worker's ring (tokio uses 256 too); 4 under loom to reach the full-ring paths.
#[cfg(loom)]
pub const DEFAULT_CAPACITY: usize = 4;

/// Where items go when the ring is full.
pub trait Overflow<T> {
    /// Take a batch of items, in order.
    fn push_batch(&self, items: impl Iterator<Item = T>);
}

struct Inner<T> {
    head: AtomicU64,
    tail: AtomicU32,
    mask: u32,
    buffer: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: items move between threads through the ring (hence `T: Send`); every slot access is ordered by the
// head/tail protocol above, so no slot is read and written at once.
unsafe impl<T: Send> Send for Inner<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Inner<T> {}

/// The owner's end: push and pop. Not `Clone`; one per worker.
pub struct Local<T> {
    inner: Arc<Inner<T>>,
}

/// The other workers' end: steal half.
pub struct Stealer<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Stealer<T> {
    fn clone(&self) -> Self {
        Stealer { inner: self.inner.clone() }
    }
}

impl<T> core::fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Local").field("len", &self.inner.len()).finish()
    }
}

impl<T> core::fmt::Debug for Stealer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stealer").field("len", &self.inner.len()).finish()
    }
}

fn unpack(head: u64) -> (u32, u32) {
    ((head >> 32) as u32, head as u32)
}

fn pack(steal: u32, real: u32) -> u64 {
    ((steal as u64) << 32) | real as u64
}

/// A ring of `capacity` slots (a power of two, at least 2): the owner's end and a stealer.
pub fn new<T>(capacity: usize) -> (Local<T>, Stealer<T>) {
    assert!(capacity.is_power_of_two() && (2..=1 << 30).contains(&capacity), "bad local queue capacity {capacity}");
    let buffer = (0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect();
    let inner = Arc::new(Inner { head: AtomicU64::new(0), tail: AtomicU32::new(0), mask: capacity as u32 - 1, buffer });
    (Local { inner: inner.clone() }, Stealer { inner })
}

impl<T> Inner<T> {
    fn len(&self) -> usize {
        let (steal, _) = unpack(self.head.load(Ordering::Acquire));
        let tail = self.tail.load(Ordering::Acquire);
        tail.wrapping_sub(steal) as usize
    }

    fn capacity(&self) -> u32 {
        self.mask + 1
    }

    /// # Safety
    /// The slot at `position` holds an item claimed by the caller.
    unsafe fn take(&self, position: u32) -> T {
        // SAFETY: per the caller; the claim (a CAS on `head`) made the slot ours.
        self.buffer[(position & self.mask) as usize].with(|slot| unsafe { (*slot).assume_init_read() })
    }

    /// # Safety
    /// The slot at `position` is free and only the caller may write it.
    unsafe fn put(&self, position: u32, item: T) {
        // SAFETY: per the caller.
        self.buffer[(position & self.mask) as usize].with_mut(|slot| unsafe { (*slot).write(item) });
    }
}

impl<T> Local<T> {
    /// Capacity.
    pub fn capacity(&self) -> usize {
        self.inner.capacity() as usize
    }

    /// Items in the ring (a snapshot).
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// No items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room for at least one more item without overflowing.
    pub fn has_room(&self) -> bool {
        self.inner.len() < self.capacity()
    }

    /// Push at the back; a full ring sends half of itself (and `item`) to `overflow`.
    pub fn push_back(&mut self, mut item: T, overflow: &impl Overflow<T>) {
        let inner = &*self.inner;
        let tail = inner.tail.load(Ordering::Relaxed); // only we write it
        loop {
            let head = inner.head.load(Ordering::Acquire);
            let (steal, real) = unpack(head);
            if tail.wrapping_sub(steal) < inner.capacity() {
                // SAFETY: `tail` is past every claimed or readable position and within capacity of `steal`, so the
                // slot is free, and only the owner writes slots.
                unsafe { inner.put(tail, item) };
                inner.tail.store(tail.wrapping_add(1), Ordering::Release);
                return;
            }
            if steal != real {
                // A stealer is freeing room right now; do not wait for it.
                overflow.push_batch(core::iter::once(item));
                return;
            }
            match Self::push_overflow(inner, item, real, tail, overflow) {
                Ok(()) => return,
                // A stealer got in between; there may be room now.
                Err(back) => item = back,
            }
        }
    }

    /// Move the older half plus `item` to `overflow`. Fails (returning `item`) if a stealer moved `head` first.
    fn push_overflow(inner: &Inner<T>, item: T, head: u32, tail: u32, overflow: &impl Overflow<T>) -> Result<(), T> {
        let half = inner.capacity() / 2;
        debug_assert_eq!(tail.wrapping_sub(head), inner.capacity());
        let claimed = pack(head.wrapping_add(half), head.wrapping_add(half));
        if inner.head.compare_exchange(pack(head, head), claimed, Ordering::Release, Ordering::Relaxed).is_err() {
            return Err(item);
        }
        // SAFETY: the CAS claimed positions head..head+half for us; each is read once.
        let batch = (0..half).map(|i| unsafe { inner.take(head.wrapping_add(i)) });
        overflow.push_batch(batch.chain(core::iter::once(item)));
        Ok(())
    }

    /// Pop from the front.
    pub fn pop(&mut self) -> Option<T> {
        let inner = &*self.inner;
        let mut head = inner.head.load(Ordering::Acquire);
        let position = loop {
            let (steal, real) = unpack(head);
            let tail = inner.tail.load(Ordering::Relaxed); // only we write it
            if real == tail {
                return None;
            }
            let next_real = real.wrapping_add(1);
            // Nobody stealing: move both together. Otherwise leave `steal` for the stealer to close.
            let next = if steal == real { pack(next_real, next_real) } else { pack(steal, next_real) };
            match inner.head.compare_exchange(head, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break real,
                Err(actual) => head = actual,
            }
        };
        // SAFETY: the CAS claimed `position`.
        Some(unsafe { inner.take(position) })
    }
}

impl<T> Drop for Local<T> {
    fn drop(&mut self) {
        // Items left behind are dropped with the owner's end (the runtime drains it first on shutdown).
        while self.pop().is_some() {}
    }
}

impl<T> Stealer<T> {
    /// Items in the victim's ring (a snapshot).
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// No items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Steal half of this queue into `dst` (which must be another queue's owner end), returning one of the stolen
    /// items to run now. `None` if there was nothing (or another stealer was busy, or `dst` lacks room).
    pub fn steal_into(&self, dst: &mut Local<T>) -> Option<T> {
        let dst_inner = &*dst.inner;
        let dst_tail = dst_inner.tail.load(Ordering::Relaxed); // dst's owner is the caller
        let (dst_steal, _) = unpack(dst_inner.head.load(Ordering::Acquire));
        if dst_tail.wrapping_sub(dst_steal) > dst_inner.capacity() / 2 {
            // Not enough room for half of a full victim; the caller has work anyway.
            return None;
        }
        let mut count = self.steal_into_inner(dst_inner, dst_tail);
        if count == 0 {
            return None;
        }
        count -= 1;
        let last = dst_tail.wrapping_add(count);
        // SAFETY: `steal_into_inner` wrote `count + 1` items at dst_tail.. into slots only dst's owner (us) may
        // publish; the last one is taken back out before publishing.
        let item = unsafe { dst_inner.take(last) };
        if count > 0 {
            dst_inner.tail.store(last, Ordering::Release);
        }
        Some(item)
    }

    fn steal_into_inner(&self, dst: &Inner<T>, dst_tail: u32) -> u32 {
        let src = &*self.inner;
        let mut head = src.head.load(Ordering::Acquire);
        let (first, count) = loop {
            let (steal, real) = unpack(head);
            if steal != real {
                return 0; // another stealer is at work
            }
            let tail = src.tail.load(Ordering::Acquire);
            let available = tail.wrapping_sub(real);
            let count = available - available / 2;
            if count == 0 {
                return 0;
            }
            let claimed = pack(steal, real.wrapping_add(count));
            match src.head.compare_exchange(head, claimed, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break (real, count),
                Err(actual) => head = actual,
            }
        };
        for i in 0..count {
            // SAFETY: the CAS claimed src positions first..first+count; dst's slots past its tail are free (room was
            // checked) and unpublished, so only we touch them.
            unsafe { dst.put(dst_tail.wrapping_add(i), src.take(first.wrapping_add(i))) };
        }
        // Close the claim: `steal` catches up with `real` (the owner may have popped meanwhile).
        let mut head = src.head.load(Ordering::Acquire);
        loop {
            let (_, real) = unpack(head);
            match src.head.compare_exchange(head, pack(real, real), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return count,
                Err(actual) => head = actual,
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use core::cell::RefCell;

    struct Sink(RefCell<Vec<u32>>);
    impl Overflow<u32> for Sink {
        fn push_batch(&self, items: impl Iterator<Item = u32>) {
            self.0.borrow_mut().extend(items);
        }
    }

    #[test]
    fn fifo_and_overflow_keep_every_item() {
        let (mut local, _stealer) = new::<u32>(8);
        let sink = Sink(RefCell::new(Vec::new()));
        for i in 0..9 {
            local.push_back(i, &sink);
        }
        // The ninth push found the ring full: the older half and the new item overflowed, in order.
        assert_eq!(*sink.0.borrow(), [0, 1, 2, 3, 8]);
        let rest: Vec<u32> = core::iter::from_fn(|| local.pop()).collect();
        assert_eq!(rest, [4, 5, 6, 7]);
    }

    #[test]
    fn steal_takes_the_older_half() {
        let (mut victim, stealer) = new::<u32>(16);
        let (mut thief, _) = new::<u32>(16);
        let sink = Sink(RefCell::new(Vec::new()));
        for i in 0..7 {
            victim.push_back(i, &sink);
        }
        // 7 items: the thief takes 4 (0..4), runs the last one and queues the rest.
        assert_eq!(stealer.steal_into(&mut thief), Some(3));
        assert_eq!(thief.len(), 3);
        assert_eq!(core::iter::from_fn(|| thief.pop()).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(core::iter::from_fn(|| victim.pop()).collect::<Vec<_>>(), [4, 5, 6]);
        assert_eq!(stealer.steal_into(&mut thief), None);
    }

    #[test]
    fn items_left_behind_are_dropped() {
        let (mut local, _s) = new::<alloc::sync::Arc<()>>(4);
        let counted = alloc::sync::Arc::new(());
        struct NoOverflow;
        impl Overflow<alloc::sync::Arc<()>> for NoOverflow {
            fn push_batch(&self, _: impl Iterator<Item = alloc::sync::Arc<()>>) {
                unreachable!()
            }
        }
        local.push_back(counted.clone(), &NoOverflow);
        local.push_back(counted.clone(), &NoOverflow);
        drop(local);
        assert_eq!(alloc::sync::Arc::strong_count(&counted), 1);
    }
}
