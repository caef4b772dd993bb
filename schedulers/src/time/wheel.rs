//! A hierarchical timer wheel (Varghese & Lauck; the shape of tokio's `runtime/time/wheel`).
//!
//! Six levels of 64 slots; a slot of level `L` spans `tick * 64^L`, so the wheel covers `64^6` ticks ahead of
//! its current time. Deadlines further out sit in the top level's slots, which act as a ring: they are
//! re-cascaded each time their slot comes around and fire only once they are truly due.
//!
//! Entries live in one preallocated `Vec` (never grown) with a free list; every slot is an intrusive
//! doubly-linked list of indices, so insert and remove are O(1) and nothing allocates after [`Wheel::new`].
//! Per-level `u64` occupancy bitmaps make [`Wheel::next_expiry`] O(levels) and let [`Wheel::advance`] jump
//! over idle stretches slot by slot instead of tick by tick.
//!
//! Deadlines keep full nanosecond precision: an entry fires on the first advance to a time at or after its
//! deadline, never before, even when the deadline falls inside the current tick.

use alloc::vec::Vec;

const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Ticks covered by the whole wheel: `64^6`.
const MAX_TICKS: u64 = 1 << (SLOT_BITS * LEVELS as u32);
/// End of a list (and of the free list).
const NIL: u32 = u32::MAX;
/// List of entries inserted with a deadline already passed; it fires at the next advance.
const EXPIRED: u16 = (LEVELS * SLOTS) as u16;
/// Marks an entry that is on the free list.
const FREE: u16 = u16::MAX;

/// Handle to a scheduled entry; stale keys (fired or removed) are detected by a generation counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

/// Returned by [`Wheel::insert`] when every preallocated slot is used; gives the value back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WheelFull<T>(pub T);

#[derive(Debug)]
struct Entry<T> {
    value: Option<T>,
    deadline: u64,
    generation: u32,
    prev: u32,
    next: u32,
    /// `level * SLOTS + slot`, [`EXPIRED`], or [`FREE`].
    list: u16,
}

/// A hierarchical timer wheel holding values of type `T` (typically wakers), with a fixed capacity.
#[derive(Debug)]
pub struct Wheel<T> {
    entries: Vec<Entry<T>>,
    heads: [u32; LEVELS * SLOTS + 1],
    occupied: [u64; LEVELS],
    free_head: u32,
    len: usize,
    /// `log2` of the (power-of-two) tick length in nanoseconds.
    shift: u32,
    now_ns: u64,
    /// The wheel's current tick; `now_ns >> shift` outside of `advance`.
    elapsed: u64,
    /// At or below every deadline on the [`EXPIRED`] list (exact until a removal).
    expired_min: u64,
    /// Slots drained by `advance`, to check that long jumps skip empty slots.
    #[cfg(test)]
    slot_visits: u64,
}

/// The level an entry due at tick `when` belongs in when the wheel is at tick `elapsed` (tokio's `level_for`).
fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = ((elapsed ^ when) | SLOT_MASK).min(MAX_TICKS - 1);
    let significant = 63 - masked.leading_zeros();
    (significant / SLOT_BITS) as usize
}

impl<T> Wheel<T> {
    /// Creates a wheel with `capacity` entries preallocated (it never grows).
    ///
    /// `tick_ns` is the resolution of the finest level, rounded up to a power of two; `now_ns` is the clock's
    /// current time, where the wheel starts.
    ///
    /// # Panics
    /// If `tick_ns` is 0 or above `2^63`, or `capacity` does not fit in `u32` indices.
    pub fn new(capacity: usize, tick_ns: u64, now_ns: u64) -> Self {
        assert!(tick_ns > 0, "tick_ns must be > 0");
        assert!(capacity < NIL as usize, "capacity must be below u32::MAX");
        let tick = tick_ns.checked_next_power_of_two().expect("tick_ns must be at most 2^63");
        let shift = tick.trailing_zeros();
        let mut entries = Vec::with_capacity(capacity);
        for i in 0..capacity {
            let next = if i + 1 < capacity { (i + 1) as u32 } else { NIL };
            entries.push(Entry { value: None, deadline: 0, generation: 0, prev: NIL, next, list: FREE });
        }
        Wheel {
            entries,
            heads: [NIL; LEVELS * SLOTS + 1],
            occupied: [0; LEVELS],
            free_head: if capacity > 0 { 0 } else { NIL },
            len: 0,
            shift,
            now_ns,
            elapsed: now_ns >> shift,
            expired_min: u64::MAX,
            #[cfg(test)]
            slot_visits: 0,
        }
    }

    /// How many entries the wheel can hold at once.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// How many entries are pending.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The wheel's current time (last advance, or construction time).
    pub fn now(&self) -> u64 {
        self.now_ns
    }

    /// Schedules `value` to fire at `deadline_ns`. A deadline at or before the wheel's current time fires at
    /// the next advance.
    ///
    /// # Errors
    /// [`WheelFull`] with the value when all `capacity` entries are pending.
    pub fn insert(&mut self, deadline_ns: u64, value: T) -> Result<TimerKey, WheelFull<T>> {
        let index = self.free_head;
        if index == NIL {
            return Err(WheelFull(value));
        }
        let entry = &mut self.entries[index as usize];
        self.free_head = entry.next;
        entry.value = Some(value);
        entry.deadline = deadline_ns;
        let generation = entry.generation;
        self.len += 1;
        if deadline_ns <= self.now_ns {
            if self.heads[EXPIRED as usize] == NIL || deadline_ns < self.expired_min {
                self.expired_min = deadline_ns;
            }
            self.push(index, EXPIRED);
        } else {
            self.place(index);
        }
        Ok(TimerKey { index, generation })
    }

    /// Cancels an entry; returns its value if the key is still pending, `None` if it is stale.
    pub fn remove(&mut self, key: TimerKey) -> Option<T> {
        let index = self.pending(key)?;
        self.unlink(index);
        Some(self.release(index))
    }

    /// Mutable access to a pending entry's value (e.g. to replace a stored waker).
    pub fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        let index = self.pending(key)?;
        self.entries[index as usize].value.as_mut()
    }

    /// The deadline of a pending key; `None` if the key is stale.
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        let index = self.pending(key)?;
        Some(self.entries[index as usize].deadline)
    }

    /// A time at or before the earliest pending deadline: the start of the earliest non-empty slot, or, when that
    /// slot is the current tick's, the exact earliest deadline in it. An entry inserted with a deadline already
    /// passed makes this at most that deadline. `None` when empty. O(levels), plus a walk of the current tick's
    /// slot when it is the earliest.
    pub fn next_expiry(&self) -> Option<u64> {
        if self.heads[EXPIRED as usize] != NIL {
            return Some(self.expired_min);
        }
        (0..LEVELS)
            .filter_map(|level| {
                let (tick, slot) = self.next_slot(level)?;
                let start_ns = tick.saturating_mul(1 << self.shift);
                if level == 0 && start_ns <= self.now_ns {
                    // The current tick's slot: its entries are due later in this tick. Their exact earliest
                    // deadline, so that a caller sleeping until then neither wakes early nor spins.
                    Some(self.min_deadline(slot))
                } else {
                    Some(start_ns)
                }
            })
            .min()
    }

    /// The earliest deadline on a list (a walk: a slot of the current tick holds few entries).
    fn min_deadline(&self, list: usize) -> u64 {
        let mut index = self.heads[list];
        let mut earliest = u64::MAX;
        while index != NIL {
            let entry = &self.entries[index as usize];
            earliest = earliest.min(entry.deadline);
            index = entry.next;
        }
        earliest
    }

    /// Advances the wheel's time to `now_ns` and calls `fire(key, value)` once for every entry whose deadline is
    /// at or before `now_ns` (not necessarily in deadline order); no entry due later fires. Coarse slots that
    /// come due are cascaded to finer levels. Work is proportional to the non-empty slots passed, not to the
    /// ticks. Returns how many fired. Moving time backwards is a no-op (returns 0, fires nothing). If `fire`
    /// panics, the entries not yet fired stay pending.
    pub fn advance(&mut self, now_ns: u64, mut fire: impl FnMut(TimerKey, T)) -> usize {
        if now_ns < self.now_ns {
            return 0;
        }
        self.now_ns = now_ns;
        let target = now_ns >> self.shift;
        let mut fired = self.drain(EXPIRED, now_ns, &mut fire);
        loop {
            // The earliest slot starting at or before `target`; the current tick's level-0 slot goes last,
            // since entries in it that are not yet due go straight back into it.
            let mut best: Option<(u64, usize, usize)> = None;
            for level in 0..LEVELS {
                if let Some((start, slot)) = self.next_slot(level)
                    && (start < target || (start == target && level > 0))
                    && best.is_none_or(|(earliest, _, _)| start < earliest)
                {
                    best = Some((start, level, slot));
                }
            }
            let Some((start, level, slot)) = best else { break };
            self.elapsed = start;
            fired += self.drain((level * SLOTS + slot) as u16, now_ns, &mut fire);
        }
        self.elapsed = target;
        fired += self.drain((target & SLOT_MASK) as u16, now_ns, &mut fire);
        fired
    }

    /// The index behind `key` if it is still pending.
    fn pending(&self, key: TimerKey) -> Option<u32> {
        let entry = self.entries.get(key.index as usize)?;
        (entry.generation == key.generation && entry.list != FREE).then_some(key.index)
    }

    /// The earliest occupied slot of `level` at or after the current tick: `(start tick, slot)`.
    fn next_slot(&self, level: usize) -> Option<(u64, usize)> {
        let occupied = self.occupied[level];
        if occupied == 0 {
            return None;
        }
        let shift = SLOT_BITS * level as u32;
        let now_slot = ((self.elapsed >> shift) & SLOT_MASK) as u32;
        // Entries in the top level's current slot are a whole turn away (see below), so its search starts
        // one slot later and comes to the current slot last.
        let from = if level == LEVELS - 1 { now_slot + 1 } else { now_slot };
        let slot = (occupied.rotate_right(from).trailing_zeros() + from) % SLOTS as u32;
        let level_range = 1u64 << (shift + SLOT_BITS);
        let mut start = (self.elapsed & !(level_range - 1)) + (u64::from(slot) << shift);
        if level == LEVELS - 1 && start <= self.elapsed {
            // Only entries beyond the wheel's range sit in or behind the current top-level slot: the ring's
            // next turn.
            start = start.saturating_add(level_range);
        }
        debug_assert!(start >= self.elapsed);
        Some((start, slot as usize))
    }

    /// Puts a pending entry (due after the current tick's start) into its slot relative to the current tick.
    fn place(&mut self, index: u32) {
        let when = self.entries[index as usize].deadline >> self.shift;
        debug_assert!(when >= self.elapsed);
        let level = level_for(self.elapsed, when);
        let slot = ((when >> (SLOT_BITS * level as u32)) & SLOT_MASK) as usize;
        self.occupied[level] |= 1 << slot;
        self.push(index, (level * SLOTS + slot) as u16);
    }

    fn push(&mut self, index: u32, list: u16) {
        let head = self.heads[list as usize];
        let entry = &mut self.entries[index as usize];
        entry.prev = NIL;
        entry.next = head;
        entry.list = list;
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        self.heads[list as usize] = index;
    }

    fn unlink(&mut self, index: u32) {
        let Entry { prev, next, list, .. } = self.entries[index as usize];
        if prev == NIL {
            self.heads[list as usize] = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
        if self.heads[list as usize] == NIL && list != EXPIRED {
            self.occupied[list as usize / SLOTS] &= !(1 << (list as usize % SLOTS));
        }
    }

    /// Frees an unlinked entry, bumping its generation, and returns its value.
    fn release(&mut self, index: u32) -> T {
        let entry = &mut self.entries[index as usize];
        let value = entry.value.take().expect("pending timer entry holds a value");
        entry.generation = entry.generation.wrapping_add(1);
        entry.list = FREE;
        entry.prev = NIL;
        entry.next = self.free_head;
        self.free_head = index;
        self.len -= 1;
        value
    }

    /// Empties a list: fires the entries due by `now_ns`, re-places the rest relative to the current tick.
    /// Entries are unlinked one at a time, so a panicking `fire` leaves the others pending and the lists intact.
    fn drain(&mut self, list: u16, now_ns: u64, fire: &mut impl FnMut(TimerKey, T)) -> usize {
        #[cfg(test)]
        {
            self.slot_visits += 1;
        }
        let mut fired = 0;
        // Re-placed entries may land back in this list, but at its head, behind the cursor.
        let mut index = self.heads[list as usize];
        while index != NIL {
            let Entry { next, deadline, generation, .. } = self.entries[index as usize];
            self.unlink(index);
            if deadline <= now_ns {
                let value = self.release(index);
                fire(TimerKey { index, generation }, value);
                fired += 1;
            } else {
                self.place(index);
            }
            index = next;
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn collect<T>(wheel: &mut Wheel<T>, now: u64) -> Vec<T> {
        let mut out = Vec::new();
        let n = wheel.advance(now, |_, v| out.push(v));
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn insert_remove_and_stale_keys() {
        let mut w = Wheel::new(4, 1000, 5_000);
        assert_eq!((w.capacity(), w.len(), w.is_empty(), w.now()), (4, 0, true, 5_000));
        let a = w.insert(10_000, 'a').unwrap();
        let b = w.insert(20_000, 'b').unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w.remove(a), Some('a'));
        assert_eq!(w.remove(a), None);
        assert_eq!(w.get_mut(a), None);
        assert_eq!(w.deadline(a), None);
        // The freed index is reused with a new generation; the old key stays stale.
        let c = w.insert(10_000, 'c').unwrap();
        assert_ne!(a, c);
        assert_eq!(w.remove(a), None);
        assert_eq!(collect(&mut w, 15_000), ['c']);
        assert_eq!(w.remove(c), None);
        assert_eq!(w.len(), 1);
        assert_eq!(w.remove(b), Some('b'));
        assert!(w.is_empty());
        assert_eq!(collect(&mut w, 1 << 40), Vec::<char>::new());
    }

    #[test]
    fn full_gives_value_back() {
        let mut w = Wheel::new(2, 1, 0);
        let a = w.insert(5, 1).unwrap();
        w.insert(6, 2).unwrap();
        assert_eq!(w.insert(7, 3), Err(WheelFull(3)));
        w.remove(a).unwrap();
        assert!(w.insert(7, 3).is_ok());
        let mut empty = Wheel::new(0, 1, 0);
        assert_eq!(empty.insert(1, ()), Err(WheelFull(())));
    }

    #[test]
    fn get_mut_and_deadline() {
        let mut w = Wheel::new(8, 1024, 0);
        let k = w.insert(1 << 30, 1).unwrap();
        assert_eq!(w.deadline(k), Some(1 << 30));
        *w.get_mut(k).unwrap() = 7;
        let far = w.insert(u64::MAX, 0).unwrap();
        assert_eq!(w.deadline(far), Some(u64::MAX));
        assert_eq!(collect(&mut w, 1 << 30), [7]);
        assert_eq!(w.deadline(k), None);
        assert_eq!(w.get_mut(k), None);
        assert_eq!(w.next_expiry().map(|t| t > 1 << 30), Some(true));
        assert_eq!(w.remove(far), Some(0));
    }

    #[test]
    fn next_expiry_is_earliest_slot_start() {
        let mut w = Wheel::new(8, 1, 0);
        assert_eq!(w.next_expiry(), None);
        let k = w.insert(1000, ()).unwrap(); // level 1: slot [960, 1024)
        assert_eq!(w.next_expiry(), Some(960));
        w.insert(30, ()).unwrap(); // level 0: exact tick
        assert_eq!(w.next_expiry(), Some(30));
        assert_eq!(w.advance(30, |_, _| {}), 1);
        // The level-1 slot came due at 960 and was cascaded to level 0 on the way to 1000.
        assert_eq!(w.next_expiry(), Some(960));
        assert_eq!(w.advance(960, |_, _| {}), 0);
        assert_eq!(w.next_expiry(), Some(1000));
        // Sub-tick deadline in the current tick: exactly that deadline (a parked worker sleeps until then).
        let mut w2 = Wheel::new(4, 1024, 1024);
        w2.insert(1700, ()).unwrap();
        w2.insert(1500, ()).unwrap();
        assert_eq!(w2.next_expiry(), Some(1500));
        // A past deadline makes it at most that deadline.
        w.insert(100, ()).unwrap();
        assert_eq!(w.next_expiry(), Some(100));
        assert_eq!(w.advance(960, |_, _| {}), 1);
        assert_eq!(w.remove(k), Some(()));
        assert_eq!(w.next_expiry(), None);
    }

    #[test]
    fn past_deadline_fires_on_next_advance() {
        let mut w = Wheel::new(4, 1000, 1_000_000);
        w.insert(0, 'a').unwrap();
        w.insert(1_000_000, 'b').unwrap();
        assert_eq!(w.len(), 2);
        // Backwards is a no-op, even for already-due entries.
        assert_eq!(collect(&mut w, 10), Vec::<char>::new());
        let mut fired = collect(&mut w, 1_000_000);
        fired.sort();
        assert_eq!(fired, ['a', 'b']);
        assert!(w.is_empty());
    }

    #[test]
    fn sub_tick_deadline_never_fires_early() {
        let mut w = Wheel::new(4, 1024, 0);
        w.insert(1500, 'a').unwrap();
        w.insert(1030, 'b').unwrap();
        assert_eq!(collect(&mut w, 1025), Vec::<char>::new());
        assert_eq!(collect(&mut w, 1030), ['b']);
        assert_eq!(collect(&mut w, 1499), Vec::<char>::new());
        assert_eq!(collect(&mut w, 1500), ['a']);
    }

    #[test]
    fn long_jump_skips_empty_slots() {
        const HOUR: u64 = 3_600_000_000_000;
        let mut w = Wheel::new(64, 1000, 0);
        for i in 0..50u64 {
            w.insert(i * i * HOUR / 7 + i, i).unwrap();
        }
        let mut fired = collect(&mut w, 400 * HOUR);
        fired.sort();
        assert_eq!(fired, (0..50).collect::<Vec<_>>());
        // ~1.4e12 ticks passed; only occupied slots were visited.
        assert!(w.slot_visits < 50 * LEVELS as u64 + 2, "{} slot visits", w.slot_visits);
        w.insert(1000 * HOUR, 99).unwrap();
        assert_eq!(collect(&mut w, 1000 * HOUR - 1), Vec::<u64>::new());
        assert_eq!(collect(&mut w, 1000 * HOUR), [99]);
    }

    #[test]
    fn beyond_range_recascades_until_due() {
        let mut w = Wheel::new(4, 1, 7);
        let deadline = 3 * MAX_TICKS + 12345;
        w.insert(deadline, ()).unwrap();
        let mut now = 7;
        while now < deadline - 1 {
            now = (now + MAX_TICKS / 3).min(deadline - 1);
            assert_eq!(w.advance(now, |_, _| {}), 0, "fired early at {now}");
            assert!(w.next_expiry().unwrap() <= deadline);
        }
        assert_eq!(w.advance(deadline, |_, _| {}), 1);
        assert!(w.is_empty());
    }

    #[test]
    fn panicking_fire_keeps_the_rest_pending() {
        extern crate std;
        let mut w = Wheel::new(4, 1, 0);
        for d in [10, 10, 10] {
            w.insert(d, d).unwrap();
        }
        let result = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            w.advance(10, |_, _| panic!("fire panicked"));
        }));
        assert!(result.is_err());
        assert_eq!(w.len(), 2);
        assert_eq!(w.advance(10, |_, _| {}), 2);
        assert!(w.is_empty() && w.next_expiry().is_none());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert { past: bool, offset: u64 },
        Remove(usize),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Multiples of 2^30 hit slot boundaries of the upper levels (with tick 1 and `start` 0).
        let aligned = (0u64..1 << 11, 0u64..3).prop_map(|(k, d)| (k << 30) + d);
        let offset = prop_oneof![0u64..64, 0u64..1 << 20, 0u64..1 << 40, aligned.clone()];
        let step = prop_oneof![0u64..4, 0u64..1 << 16, 0u64..1 << 32, 0u64..1 << 41, aligned];
        prop_oneof![
            4 => (prop::bool::weighted(0.1), offset).prop_map(|(past, offset)| Op::Insert { past, offset }),
            2 => any::<usize>().prop_map(Op::Remove),
            2 => step.prop_map(Op::Advance),
        ]
    }

    fn check_against_model(tick: u64, start: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
        const CAP: usize = 48;
        let mut w = Wheel::new(CAP, tick, start);
        let mut now = start;
        let mut pending: Vec<(TimerKey, u64, u64)> = Vec::new();
        let mut dead: Vec<TimerKey> = Vec::new();
        let mut next_id = 0u64;
        let last = Op::Advance(1 << 42); // flush everything at the end
        for op in ops.into_iter().chain([last]) {
            match op {
                Op::Insert { past, offset } => {
                    let deadline = if past { now.saturating_sub(offset) } else { now + offset };
                    next_id += 1;
                    match w.insert(deadline, next_id) {
                        Ok(key) => {
                            prop_assert!(pending.len() < CAP);
                            prop_assert_eq!(w.deadline(key), Some(deadline));
                            pending.push((key, deadline, next_id));
                        }
                        Err(WheelFull(v)) => prop_assert_eq!((pending.len(), v), (CAP, next_id)),
                    }
                }
                Op::Remove(i) => {
                    if !dead.is_empty() {
                        prop_assert_eq!(w.remove(dead[i % dead.len()]), None);
                    }
                    if !pending.is_empty() {
                        let (key, _, id) = pending.swap_remove(i % pending.len());
                        prop_assert_eq!(w.remove(key), Some(id));
                        dead.push(key);
                    }
                }
                Op::Advance(step) => {
                    now += step;
                    let mut fired = Vec::new();
                    let n = w.advance(now, |k, v| fired.push((k, v)));
                    prop_assert_eq!(n, fired.len());
                    prop_assert_eq!(w.now(), now);
                    for (key, id) in fired {
                        let pos = pending.iter().position(|p| p.0 == key);
                        let Some(pos) = pos else { return Err(TestCaseError::fail("stale or repeated fire")) };
                        let (_, deadline, expected) = pending.swap_remove(pos);
                        prop_assert!(deadline <= now, "fired early: deadline {} now {}", deadline, now);
                        prop_assert_eq!(id, expected);
                        prop_assert_eq!(w.deadline(key), None);
                        dead.push(key);
                    }
                    for &(_, deadline, _) in &pending {
                        prop_assert!(deadline > now, "missed: deadline {} now {}", deadline, now);
                    }
                }
            }
            prop_assert_eq!(w.len(), pending.len());
            let min = pending.iter().map(|p| p.1).min();
            match (w.next_expiry(), min) {
                (Some(next), Some(min)) => prop_assert!(next <= min, "next_expiry {} > min {}", next, min),
                (next, min) => prop_assert_eq!(next.is_some(), min.is_some()),
            }
        }
        prop_assert!(w.is_empty());
        Ok(())
    }

    // Miri: proptest reads the working directory (regression files), which Miri isolation forbids.
    #[cfg(not(miri))]
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn matches_model(
            tick in prop::sample::select(alloc::vec![1u64, 1000, 1024]),
            start in prop_oneof![Just(0u64), 0u64..1 << 50],
            ops in prop::collection::vec(op(), 0..200),
        ) {
            check_against_model(tick, start, ops)?;
        }
    }
}
