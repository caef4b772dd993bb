//! Order-by-order books (DEEP+): orders in time priority at each price, with per-level aggregates.
//!
//! Storage is sized up front and reused, so the steady path does not allocate:
//! - orders live in a slab (`Vec<Order>` plus a free list); each price level threads its orders
//!   through the slab as an intrusive FIFO (`prev`/`next` indices), so moving an order to the back
//!   of its queue is O(1);
//! - an order-id index finds an order's slot: DEEP+ ids are one exchange-wide counter, so a
//!   direct-mapped window (`id & mask` → slot) finds a live order with one load and no hashing,
//!   and orders added close in time sit in the same cache lines; an id whose cell is held by
//!   another live order spills to a `HashMap`. Ids are reusable once an order is gone;
//! - each book keeps its levels in a sorted `Vec` per side (bids high→low, asks low→high): the
//!   touched levels are near the top, where insertion and removal are cheap.
//!
//! Growth past the reserved capacity is allowed (a book must never refuse an order) and counted in
//! [`OrderBookStats::growths`].

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Book side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BookSide {
    /// Bids.
    Bid,
    /// Asks (offers).
    Ask,
}

/// One price level, aggregated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Price (the feed's units).
    pub price: i64,
    /// Total size resting at this price.
    pub size: u64,
    /// Orders resting at this price.
    pub orders: u32,
    head: u32,
    tail: u32,
}

/// What a book operation could not do. The book stays consistent whatever happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookError {
    /// Add of an id that is already resting (the old order is replaced).
    DuplicateOrder(u64),
    /// Modify, delete or execute of an id that is not resting.
    UnknownOrder(u64),
    /// An execution larger than the order's remaining size (the order is removed).
    Overfill {
        /// The order.
        order_id: u64,
        /// Size it had.
        remaining: u32,
        /// Size executed.
        executed: u32,
    },
    /// Book index out of range.
    UnknownBook(u32),
}

/// An order leaving the book, or what remains of one after an execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderState {
    /// The book it rests in.
    pub book: u32,
    /// Side.
    pub side: BookSide,
    /// Price.
    pub price: i64,
    /// Size remaining (0: gone).
    pub size: u32,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrderBookStats {
    /// Orders resting now.
    pub resting: u64,
    /// Times a reserved capacity was exceeded (an allocation happened).
    pub growths: u64,
    /// Operations that reported a [`BookError`].
    pub errors: u64,
}

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Order {
    id: u64,
    price: i64,
    size: u32,
    side: BookSide,
    book: u32,
    prev: u32,
    next: u32,
    /// When the order got its current priority.
    priority_ts: i64,
}

/// Exchange order ids are counters: a multiply-shift is all the mixing they need.
#[derive(Default, Clone, Copy, Debug)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Order id → slot (see the module docs). Window cells hold `slot + 1` (0: empty); a cell is
/// trusted only if the order in that slot has the id asked for.
#[derive(Clone, Debug)]
struct OrderIndex {
    window: Vec<u32>,
    mask: u64,
    spill: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
}

impl OrderIndex {
    fn with_capacity(orders: usize) -> Self {
        let cells = (orders.max(1 << 10).next_power_of_two() * 2).min(1 << 26);
        OrderIndex {
            window: vec![0; cells],
            mask: cells as u64 - 1,
            spill: HashMap::with_capacity_and_hasher((orders / 16).max(64), BuildHasherDefault::default()),
        }
    }

    #[inline]
    fn get(&self, id: u64, orders: &[Order]) -> Option<u32> {
        let cell = self.window[(id & self.mask) as usize];
        if cell != 0 && orders[cell as usize - 1].id == id {
            return Some(cell - 1);
        }
        if self.spill.is_empty() { None } else { self.spill.get(&id).copied() }
    }

    /// Adds an id that is not present. Returns true if memory was added.
    #[inline]
    fn insert(&mut self, id: u64, slot: u32) -> bool {
        let cell = &mut self.window[(id & self.mask) as usize];
        if *cell == 0 {
            *cell = slot + 1;
            return false;
        }
        let grows = self.spill.len() == self.spill.capacity();
        self.spill.insert(id, slot);
        grows
    }

    /// Removes an id known to be at `slot`.
    #[inline]
    fn remove(&mut self, id: u64, slot: u32) {
        let cell = &mut self.window[(id & self.mask) as usize];
        if *cell == slot + 1 {
            *cell = 0;
        } else {
            self.spill.remove(&id);
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Book {
    bids: Vec<Level>,
    asks: Vec<Level>,
}

impl Book {
    fn side(&mut self, side: BookSide) -> &mut Vec<Level> {
        match side {
            BookSide::Bid => &mut self.bids,
            BookSide::Ask => &mut self.asks,
        }
    }
}

/// Where a price sits in a side's sorted levels.
#[inline]
fn find(levels: &[Level], side: BookSide, price: i64) -> Result<usize, usize> {
    match side {
        BookSide::Bid => levels.binary_search_by(|l| price.cmp(&l.price)),
        BookSide::Ask => levels.binary_search_by(|l| l.price.cmp(&price)),
    }
}

/// Order books for every instrument of one feed, sharing one order-id space.
#[derive(Clone, Debug)]
pub struct OrderBooks {
    orders: Vec<Order>,
    free: u32,
    index: OrderIndex,
    books: Vec<Book>,
    levels_per_side: usize,
    stats: OrderBookStats,
}

impl OrderBooks {
    /// Books `0..books`, with room for `orders` resting orders and `levels` price levels per side
    /// before anything allocates.
    pub fn with_capacity(books: usize, orders: usize, levels: usize) -> Self {
        OrderBooks {
            orders: Vec::with_capacity(orders),
            free: NIL,
            index: OrderIndex::with_capacity(orders),
            books: (0..books)
                .map(|_| Book { bids: Vec::with_capacity(levels), asks: Vec::with_capacity(levels) })
                .collect(),
            levels_per_side: levels,
            stats: OrderBookStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> OrderBookStats {
        self.stats
    }

    /// Number of books.
    pub fn books(&self) -> usize {
        self.books.len()
    }

    /// Adds books up to `count` (new instruments); counted as growth.
    pub fn ensure_books(&mut self, count: usize) {
        if count > self.books.len() {
            self.stats.growths += 1;
            let levels = self.levels_per_side;
            self.books
                .resize_with(count, || Book { bids: Vec::with_capacity(levels), asks: Vec::with_capacity(levels) });
        }
    }

    /// The levels of one side, best first.
    pub fn levels(&self, book: u32, side: BookSide) -> &[Level] {
        match self.books.get(book as usize) {
            Some(b) => match side {
                BookSide::Bid => &b.bids,
                BookSide::Ask => &b.asks,
            },
            None => &[],
        }
    }

    /// Best bid and best ask levels.
    pub fn top(&self, book: u32) -> (Option<Level>, Option<Level>) {
        (self.levels(book, BookSide::Bid).first().copied(), self.levels(book, BookSide::Ask).first().copied())
    }

    /// The queue at one price, in priority order: `(order id, size, priority timestamp)`.
    pub fn queue(&self, book: u32, side: BookSide, price: i64) -> impl Iterator<Item = (u64, u32, i64)> + '_ {
        let levels = self.levels(book, side);
        let mut at = find(levels, side, price).ok().map_or(NIL, |i| levels[i].head);
        core::iter::from_fn(move || {
            let o = self.orders.get(at as usize)?;
            at = o.next;
            Some((o.id, o.size, o.priority_ts))
        })
    }

    /// A resting order: `(book, side, price, size)`.
    pub fn order(&self, id: u64) -> Option<OrderState> {
        let o = &self.orders[self.index.get(id, &self.orders)? as usize];
        Some(OrderState { book: o.book, side: o.side, price: o.price, size: o.size })
    }

    fn error(&mut self, e: BookError) -> BookError {
        self.stats.errors += 1;
        e
    }

    /// Adds an order at the back of its price's queue. An id already resting is replaced (and
    /// reported): the feed is the truth.
    pub fn add(&mut self, book: u32, id: u64, side: BookSide, price: i64, size: u32, ts: i64) -> Result<(), BookError> {
        if book as usize >= self.books.len() {
            return Err(self.error(BookError::UnknownBook(book)));
        }
        let mut result = Ok(());
        if self.index.get(id, &self.orders).is_some() {
            let _ = self.remove(id);
            result = Err(self.error(BookError::DuplicateOrder(id)));
        }
        let slot = self.alloc(Order { id, price, size, side, book, prev: NIL, next: NIL, priority_ts: ts });
        if self.index.insert(id, slot) {
            self.stats.growths += 1;
        }
        self.link_back(slot);
        self.stats.resting += 1;
        result
    }

    /// Sets a new total size and price. The order keeps its place only when `keep_priority` is set
    /// and the price is unchanged; otherwise it goes to the back of the queue at the new price.
    /// A size of 0 removes it.
    pub fn modify(
        &mut self,
        id: u64,
        size: u32,
        price: i64,
        keep_priority: bool,
        ts: i64,
    ) -> Result<OrderState, BookError> {
        let Some(slot) = self.index.get(id, &self.orders) else {
            return Err(self.error(BookError::UnknownOrder(id)));
        };
        if size == 0 {
            return self.remove(id);
        }
        let o = self.orders[slot as usize];
        if keep_priority && price == o.price {
            self.resize(slot, size);
        } else {
            self.unlink(slot);
            let o = &mut self.orders[slot as usize];
            o.price = price;
            o.size = size;
            o.priority_ts = ts;
            self.link_back(slot);
        }
        let o = &self.orders[slot as usize];
        Ok(OrderState { book: o.book, side: o.side, price: o.price, size: o.size })
    }

    /// Removes an order.
    pub fn delete(&mut self, id: u64) -> Result<OrderState, BookError> {
        self.remove(id)
    }

    /// Executes `size` of an order: it keeps its priority and leaves the book at 0.
    pub fn execute(&mut self, id: u64, size: u32) -> Result<OrderState, BookError> {
        let Some(slot) = self.index.get(id, &self.orders) else {
            return Err(self.error(BookError::UnknownOrder(id)));
        };
        let o = self.orders[slot as usize];
        if size >= o.size {
            let gone = self.remove(id)?;
            if size > o.size {
                return Err(self.error(BookError::Overfill { order_id: id, remaining: o.size, executed: size }));
            }
            return Ok(gone);
        }
        self.resize(slot, o.size - size);
        Ok(OrderState { book: o.book, side: o.side, price: o.price, size: o.size - size })
    }

    /// Removes every order of one book; returns how many. Allocates nothing.
    pub fn clear(&mut self, book: u32) -> usize {
        let Some(b) = self.books.get_mut(book as usize) else { return 0 };
        let mut n = 0;
        for levels in [&mut b.bids, &mut b.asks] {
            for l in levels.iter() {
                let mut at = l.head;
                while at != NIL {
                    let o = &mut self.orders[at as usize];
                    let next = o.next;
                    self.index.remove(o.id, at);
                    // Back to the free list.
                    o.id = u64::MAX;
                    o.next = self.free;
                    self.free = at;
                    at = next;
                    n += 1;
                }
            }
            levels.clear();
        }
        self.stats.resting -= n as u64;
        n
    }

    fn remove(&mut self, id: u64) -> Result<OrderState, BookError> {
        let Some(slot) = self.index.get(id, &self.orders) else {
            return Err(self.error(BookError::UnknownOrder(id)));
        };
        self.index.remove(id, slot);
        let o = self.orders[slot as usize];
        self.unlink(slot);
        self.release(slot);
        self.stats.resting -= 1;
        Ok(OrderState { book: o.book, side: o.side, price: o.price, size: 0 })
    }

    fn alloc(&mut self, order: Order) -> u32 {
        if self.free != NIL {
            let slot = self.free;
            self.free = self.orders[slot as usize].next;
            self.orders[slot as usize] = order;
            slot
        } else {
            if self.orders.len() == self.orders.capacity() {
                self.stats.growths += 1;
            }
            self.orders.push(order);
            (self.orders.len() - 1) as u32
        }
    }

    fn release(&mut self, slot: u32) {
        self.orders[slot as usize].next = self.free;
        self.orders[slot as usize].id = u64::MAX;
        self.free = slot;
    }

    fn resize(&mut self, slot: u32, size: u32) {
        let o = self.orders[slot as usize];
        let levels = self.books[o.book as usize].side(o.side);
        if let Ok(i) = find(levels, o.side, o.price) {
            levels[i].size = levels[i].size - u64::from(o.size) + u64::from(size);
        }
        self.orders[slot as usize].size = size;
    }

    /// Puts an order at the back of the queue at its price, creating the level if needed.
    fn link_back(&mut self, slot: u32) {
        let o = self.orders[slot as usize];
        let levels_len_before;
        let tail;
        {
            let levels = self.books[o.book as usize].side(o.side);
            levels_len_before = levels.capacity();
            let i = match find(levels, o.side, o.price) {
                Ok(i) => i,
                Err(i) => {
                    levels.insert(i, Level { price: o.price, size: 0, orders: 0, head: NIL, tail: NIL });
                    i
                }
            };
            let l = &mut levels[i];
            tail = l.tail;
            l.size += u64::from(o.size);
            l.orders += 1;
            if l.head == NIL {
                l.head = slot;
            }
            l.tail = slot;
            if levels.capacity() != levels_len_before {
                self.stats.growths += 1;
            }
        }
        self.orders[slot as usize].prev = tail;
        self.orders[slot as usize].next = NIL;
        if tail != NIL {
            self.orders[tail as usize].next = slot;
        }
    }

    /// Takes an order out of its level's queue (removing the level when it empties).
    fn unlink(&mut self, slot: u32) {
        let o = self.orders[slot as usize];
        if o.prev != NIL {
            self.orders[o.prev as usize].next = o.next;
        }
        if o.next != NIL {
            self.orders[o.next as usize].prev = o.prev;
        }
        let levels = self.books[o.book as usize].side(o.side);
        if let Ok(i) = find(levels, o.side, o.price) {
            let l = &mut levels[i];
            if l.head == slot {
                l.head = o.next;
            }
            if l.tail == slot {
                l.tail = o.prev;
            }
            l.size -= u64::from(o.size);
            l.orders -= 1;
            if l.orders == 0 {
                levels.remove(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IEX.md §1.7 book-semantics vector: the DEEP+ priority example.
    #[test]
    fn priority_example_from_the_spec() {
        let mut b = OrderBooks::with_capacity(1, 16, 4);
        let px = 101_000; // 10.10
        b.add(0, 1, BookSide::Bid, px, 200, 0).unwrap();
        b.add(0, 2, BookSide::Bid, px, 200, 1).unwrap();
        b.execute(1, 100).unwrap();
        b.modify(1, 100, px, false, 3).unwrap();
        let q: Vec<_> = b.queue(0, BookSide::Bid, px).collect();
        assert_eq!(q, [(2, 200, 1), (1, 100, 3)]);
        assert_eq!(b.top(0).0.map(|l| (l.price, l.size, l.orders)), Some((px, 300, 2)));
    }

    #[test]
    fn keep_priority_and_execution_keep_the_place() {
        let mut b = OrderBooks::with_capacity(1, 16, 4);
        b.add(0, 1, BookSide::Ask, 500, 300, 0).unwrap();
        b.add(0, 2, BookSide::Ask, 500, 100, 1).unwrap();
        b.modify(1, 200, 500, true, 2).unwrap();
        b.execute(1, 50).unwrap();
        assert_eq!(b.queue(0, BookSide::Ask, 500).collect::<Vec<_>>(), [(1, 150, 0), (2, 100, 1)]);
        // A price change always loses priority.
        b.modify(1, 150, 400, true, 3).unwrap();
        assert_eq!(b.levels(0, BookSide::Ask).iter().map(|l| l.price).collect::<Vec<_>>(), [400, 500]);
        b.execute(1, 150).unwrap();
        assert_eq!(b.order(1), None);
        assert_eq!(b.levels(0, BookSide::Ask).len(), 1);
    }

    #[test]
    fn ids_above_2_53_are_reused_after_delete_and_errors_are_counted() {
        let id = 27_866_022_694_354_954u64;
        let mut b = OrderBooks::with_capacity(2, 4, 2);
        b.add(1, id, BookSide::Bid, 10, 5, 0).unwrap();
        assert_eq!(b.delete(id).unwrap().size, 0);
        b.add(0, id, BookSide::Ask, 20, 7, 1).unwrap();
        assert_eq!(b.order(id).map(|o| (o.book, o.price)), Some((0, 20)));
        assert_eq!(b.delete(id + 1), Err(BookError::UnknownOrder(id + 1)));
        assert_eq!(b.add(0, id, BookSide::Ask, 30, 1, 2), Err(BookError::DuplicateOrder(id)));
        assert_eq!(b.levels(0, BookSide::Ask).iter().map(|l| (l.price, l.size)).collect::<Vec<_>>(), [(30, 1)]);
        assert!(matches!(b.execute(id, 5), Err(BookError::Overfill { remaining: 1, executed: 5, .. })));
        assert_eq!(b.stats().errors, 3);
        assert_eq!(b.stats().resting, 0);
        assert_eq!(b.add(9, 1, BookSide::Bid, 1, 1, 0), Err(BookError::UnknownBook(9)));
    }

    #[test]
    fn clear_book_and_no_growth_within_capacity() {
        let mut b = OrderBooks::with_capacity(2, 64, 8);
        for i in 0..32u64 {
            let side = if i % 2 == 0 { BookSide::Bid } else { BookSide::Ask };
            b.add((i % 2) as u32, i, side, 100 + (i % 5) as i64, 10, i as i64).unwrap();
        }
        assert_eq!(b.stats().growths, 0);
        assert_eq!(b.clear(0), 16);
        assert!(b.levels(0, BookSide::Bid).is_empty());
        assert_eq!(b.stats().resting, 16);
        // Freed slots are reused.
        for i in 100..116u64 {
            b.add(0, i, BookSide::Bid, 1, 1, 0).unwrap();
        }
        assert_eq!(b.stats().growths, 0);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        #[derive(Clone, Debug)]
        enum Op {
            Add { book: u32, id: u64, bid: bool, px: i64, size: u32 },
            Modify { id: u64, size: u32, px: i64, keep: bool },
            Delete { id: u64 },
            Execute { id: u64, size: u32 },
            Clear { book: u32 },
        }

        fn op() -> impl Strategy<Value = Op> {
            // Small ids, and ids that all share one cell of the index window (2048 cells at
            // this capacity), so the spill path is exercised as much as the window.
            let id = prop_oneof![0u64..12, (0u64..12).prop_map(|i| (i << 11) | 5)];
            prop_oneof![
                4 => (0u32..2, id.clone(), any::<bool>(), 95i64..105, 1u32..500)
                    .prop_map(|(book, id, bid, px, size)| Op::Add { book, id, bid, px, size }),
                2 => (id.clone(), 0u32..500, 95i64..105, any::<bool>()).prop_map(|(id, size, px, keep)| Op::Modify { id, size, px, keep }),
                1 => id.clone().prop_map(|id| Op::Delete { id }),
                2 => (id, 1u32..400).prop_map(|(id, size)| Op::Execute { id, size }),
                1 => (0u32..2).prop_map(|book| Op::Clear { book }),
            ]
        }

        /// The straightforward model: a map of live orders, each with a priority stamp.
        #[derive(Default)]
        struct Model {
            orders: BTreeMap<u64, (u32, bool, i64, u32, u64)>, // book, bid, px, size, stamp
            stamp: u64,
        }

        impl Model {
            fn apply(&mut self, op: &Op) {
                self.stamp += 1;
                match *op {
                    Op::Add { book, id, bid, px, size } => {
                        self.orders.insert(id, (book, bid, px, size, self.stamp));
                    }
                    Op::Modify { id, size, px, keep } => {
                        if let Some(o) = self.orders.get_mut(&id) {
                            if size == 0 {
                                self.orders.remove(&id);
                            } else {
                                if !(keep && px == o.2) {
                                    o.4 = self.stamp;
                                }
                                o.2 = px;
                                o.3 = size;
                            }
                        }
                    }
                    Op::Delete { id } => {
                        self.orders.remove(&id);
                    }
                    Op::Execute { id, size } => {
                        if let Some(o) = self.orders.get_mut(&id) {
                            if size >= o.3 {
                                self.orders.remove(&id);
                            } else {
                                o.3 -= size;
                            }
                        }
                    }
                    Op::Clear { book } => self.orders.retain(|_, o| o.0 != book),
                }
            }

            /// Levels best first: (price, size, count, ids in priority order).
            fn levels(&self, book: u32, bid: bool) -> Vec<(i64, u64, u32, Vec<u64>)> {
                let mut by_px: BTreeMap<i64, Vec<(u64, u64, u32)>> = BTreeMap::new();
                for (&id, &(b, s, px, size, stamp)) in &self.orders {
                    if b == book && s == bid {
                        by_px.entry(px).or_default().push((stamp, id, size));
                    }
                }
                let mut out: Vec<_> = by_px
                    .into_iter()
                    .map(|(px, mut q)| {
                        q.sort();
                        (px, q.iter().map(|x| u64::from(x.2)).sum(), q.len() as u32, q.iter().map(|x| x.1).collect())
                    })
                    .collect();
                if bid {
                    out.reverse();
                }
                out
            }
        }

        proptest! {
            #[test]
            fn matches_the_reference_model(ops in proptest::collection::vec(op(), 1..300)) {
                let mut b = OrderBooks::with_capacity(2, 8, 2);
                let mut m = Model::default();
                for op in &ops {
                    let ts = m.stamp as i64 + 1;
                    let _ = match *op {
                        Op::Add { book, id, bid, px, size } => {
                            b.add(book, id, if bid { BookSide::Bid } else { BookSide::Ask }, px, size, ts).map(|_| ())
                        }
                        Op::Modify { id, size, px, keep } => b.modify(id, size, px, keep, ts).map(|_| ()),
                        Op::Delete { id } => b.delete(id).map(|_| ()),
                        Op::Execute { id, size } => b.execute(id, size).map(|_| ()),
                        Op::Clear { book } => {
                            b.clear(book);
                            Ok(())
                        }
                    };
                    m.apply(op);
                    for book in 0..2 {
                        for (side, bid) in [(BookSide::Bid, true), (BookSide::Ask, false)] {
                            let got: Vec<_> = b
                                .levels(book, side)
                                .iter()
                                .map(|l| (l.price, l.size, l.orders, b.queue(book, side, l.price).map(|q| q.0).collect::<Vec<_>>()))
                                .collect();
                            prop_assert_eq!(got, m.levels(book, bid), "after {:?}", op);
                        }
                    }
                    prop_assert_eq!(b.stats().resting, m.orders.len() as u64);
                }
            }
        }
    }
}
