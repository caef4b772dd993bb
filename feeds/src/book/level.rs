//! Price-level books (DEEP) with IEX's per-symbol transactions.
//!
//! A Price Level Update carries the new **absolute** size at a price (0 removes the level). Updates
//! with event flag 0 put that symbol's book "in transition"; the next update with flag 1 closes the
//! transaction, and only then is the book consistent. So the working levels are updated as
//! messages arrive, but the best bid and offer that consumers see ([`LevelBooks::bbo`]) changes only
//! when a transaction closes. Transactions of different symbols interleave freely, across segments.

use super::order::BookSide;

/// One level: price and aggregate size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriceSize {
    /// Price (the feed's units).
    pub price: i64,
    /// Aggregate size.
    pub size: u32,
}

/// Best bid and offer as last published; `None` for an empty side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bbo {
    /// Best bid.
    pub bid: Option<PriceSize>,
    /// Best ask.
    pub ask: Option<PriceSize>,
}

impl Bbo {
    /// The BBO a TOPS Quote Update states. A side with size 0 and price 0 is empty, never a $0
    /// quote (IEX sends such "zero quotes" for every symbol before the open).
    pub fn from_quote(q: &crate::iex::message::QuoteUpdate<'_>) -> Self {
        let side = |size: u32, price: i64| (size != 0 || price != 0).then_some(PriceSize { price, size });
        Bbo { bid: side(q.bid_size(), q.bid_price()), ask: side(q.ask_size(), q.ask_price()) }
    }

    /// Bid at or above ask.
    pub fn crossed(&self) -> bool {
        matches!((self.bid, self.ask), (Some(b), Some(a)) if b.price >= a.price)
    }
}

/// What one update did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// This update closed a transaction (event flag 1): the book is consistent and published.
    pub closed: bool,
    /// The published BBO changed with it.
    pub bbo_changed: bool,
    /// Size at this price before the update (0: the level was not there).
    pub previous: u32,
    /// Where the level is (or was) on its side, 0 = best.
    pub depth: u16,
    /// On close: the best (lowest) depth any update of the transaction changed, on either side
    /// (`u16::MAX`: none changed anything). Below 10, the top ten levels changed.
    pub shallowest: u16,
}

#[derive(Clone, Debug, Default)]
struct LevelBook {
    bids: Vec<PriceSize>,
    asks: Vec<PriceSize>,
    in_transition: bool,
    published: Bbo,
    /// Best depth changed since the last close.
    shallowest: u16,
}

/// Price-level books for every instrument of one feed.
#[derive(Clone, Debug)]
pub struct LevelBooks {
    books: Vec<LevelBook>,
    levels_per_side: usize,
    growths: u64,
}

impl LevelBooks {
    /// Books `0..books`, with room for `levels` per side before anything allocates.
    pub fn with_capacity(books: usize, levels: usize) -> Self {
        let mut b = LevelBooks { books: Vec::new(), levels_per_side: levels, growths: 0 };
        b.ensure_books(books);
        b.growths = 0;
        b
    }

    /// Adds books up to `count` (counted as growth once the books exist).
    pub fn ensure_books(&mut self, count: usize) {
        if count > self.books.len() {
            self.growths += 1;
            let levels = self.levels_per_side;
            self.books.resize_with(count, || LevelBook {
                bids: Vec::with_capacity(levels),
                asks: Vec::with_capacity(levels),
                shallowest: u16::MAX,
                ..LevelBook::default()
            });
        }
    }

    /// Times memory was added past the reserved capacity.
    pub fn growths(&self) -> u64 {
        self.growths
    }

    /// Applies one Price Level Update. Books beyond those reserved are added (and counted).
    pub fn apply(&mut self, book: u32, side: BookSide, price: i64, size: u32, complete: bool) -> Applied {
        let i = book as usize;
        if i >= self.books.len() {
            self.ensure_books(i + 1);
        }
        let b = &mut self.books[i];
        let levels = match side {
            BookSide::Bid => &mut b.bids,
            BookSide::Ask => &mut b.asks,
        };
        let found = match side {
            BookSide::Bid => levels.binary_search_by(|l| price.cmp(&l.price)),
            BookSide::Ask => levels.binary_search_by(|l| l.price.cmp(&price)),
        };
        let cap = levels.capacity();
        let (previous, at) = match (found, size) {
            (Ok(at), 0) => (levels.remove(at).size, at),
            (Ok(at), _) => (core::mem::replace(&mut levels[at].size, size), at),
            (Err(at), 0) => (0, at),
            (Err(at), _) => {
                levels.insert(at, PriceSize { price, size });
                (0, at)
            }
        };
        let depth = u16::try_from(at).unwrap_or(u16::MAX);
        if previous != size {
            b.shallowest = b.shallowest.min(depth);
        }
        if levels.capacity() != cap {
            self.growths += 1;
        }
        if !complete {
            b.in_transition = true;
            return Applied { closed: false, bbo_changed: false, previous, depth, shallowest: u16::MAX };
        }
        b.in_transition = false;
        let now = Bbo { bid: b.bids.first().copied(), ask: b.asks.first().copied() };
        let bbo_changed = now != b.published;
        b.published = now;
        let shallowest = core::mem::replace(&mut b.shallowest, u16::MAX);
        Applied { closed: true, bbo_changed, previous, depth, shallowest }
    }

    /// The BBO as of the last closed transaction.
    pub fn bbo(&self, book: u32) -> Bbo {
        self.books.get(book as usize).map(|b| b.published).unwrap_or_default()
    }

    /// Whether a transaction is open on this book.
    pub fn in_transition(&self, book: u32) -> bool {
        self.books.get(book as usize).is_some_and(|b| b.in_transition)
    }

    /// The working levels of one side, best first (mid-transaction while one is open).
    pub fn levels(&self, book: u32, side: BookSide) -> &[PriceSize] {
        match (self.books.get(book as usize), side) {
            (Some(b), BookSide::Bid) => &b.bids,
            (Some(b), BookSide::Ask) => &b.asks,
            (None, _) => &[],
        }
    }

    /// Empties one book (a reset or session change); it stays out of transition.
    pub fn clear(&mut self, book: u32) {
        if let Some(b) = self.books.get_mut(book as usize) {
            b.bids.clear();
            b.asks.clear();
            b.in_transition = false;
            b.published = Bbo::default();
            b.shallowest = u16::MAX;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ps(price: i64, size: u32) -> Option<PriceSize> {
        Some(PriceSize { price, size })
    }

    /// IEX.md §1.7 book-semantics vector: a DEEP atomic update keeps the BBO until it closes.
    #[test]
    fn atomic_update_from_the_spec() {
        let mut b = LevelBooks::with_capacity(1, 8);
        for px in [253_000, 252_000, 251_000] {
            b.apply(0, BookSide::Ask, px, 100, true);
        }
        for px in [250_000, 249_000] {
            b.apply(0, BookSide::Bid, px, 100, true);
        }
        assert_eq!(b.bbo(0), Bbo { bid: ps(250_000, 100), ask: ps(251_000, 100) });
        let a = b.apply(0, BookSide::Ask, 251_000, 0, false);
        assert_eq!(a, Applied { closed: false, bbo_changed: false, previous: 100, depth: 0, shallowest: u16::MAX });
        assert!(b.in_transition(0));
        assert_eq!(b.bbo(0), Bbo { bid: ps(250_000, 100), ask: ps(251_000, 100) });
        let a = b.apply(0, BookSide::Ask, 252_000, 0, true);
        assert_eq!(a, Applied { closed: true, bbo_changed: true, previous: 100, depth: 0, shallowest: 0 });
        assert_eq!(b.bbo(0), Bbo { bid: ps(250_000, 100), ask: ps(253_000, 100) });
        assert!(!b.in_transition(0));
    }

    #[test]
    fn sizes_are_absolute_and_zero_deletes() {
        let mut b = LevelBooks::with_capacity(1, 2);
        b.apply(0, BookSide::Bid, 10, 5, true);
        b.apply(0, BookSide::Bid, 10, 7, true);
        assert_eq!(b.levels(0, BookSide::Bid), [PriceSize { price: 10, size: 7 }]);
        b.apply(0, BookSide::Bid, 10, 0, true);
        b.apply(0, BookSide::Bid, 11, 0, true); // deleting a level that is not there: nothing
        assert!(b.levels(0, BookSide::Bid).is_empty());
        assert_eq!(b.bbo(0), Bbo::default());
        assert_eq!(b.growths(), 0);
        b.apply(5, BookSide::Ask, 1, 1, true); // an unreserved book appears
        assert_eq!(b.growths(), 1);
    }

    #[test]
    fn tops_quotes_with_empty_sides() {
        use crate::iex::{Message, Protocol, decode};
        let mut m = vec![b'Q', 0x40];
        m.extend_from_slice(&0i64.to_le_bytes());
        m.extend_from_slice(b"ZIEXT   ");
        m.extend_from_slice(&0u32.to_le_bytes());
        m.extend_from_slice(&0i64.to_le_bytes());
        m.extend_from_slice(&10_000i64.to_le_bytes());
        m.extend_from_slice(&100u32.to_le_bytes());
        let Ok(Message::QuoteUpdate(q)) = decode(Protocol::Tops15, &m) else { panic!() };
        assert_eq!(Bbo::from_quote(&q), Bbo { bid: None, ask: ps(10_000, 100) });
        assert!(!Bbo::from_quote(&q).crossed());
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// Per symbol: a list of transactions, each a list of (side, price, size); the last update
        /// of each transaction carries flag 1.
        fn symbol_stream() -> impl Strategy<Value = Vec<Vec<(bool, i64, u32)>>> {
            proptest::collection::vec(proptest::collection::vec((any::<bool>(), 90i64..110, 0u32..4), 1..6), 1..12)
        }

        fn run_alone(txs: &[Vec<(bool, i64, u32)>]) -> Vec<Bbo> {
            let mut b = LevelBooks::with_capacity(1, 4);
            let mut out = Vec::new();
            for tx in txs {
                for (k, &(bid, px, size)) in tx.iter().enumerate() {
                    let side = if bid { BookSide::Bid } else { BookSide::Ask };
                    let a = b.apply(0, side, px, size * 100, k + 1 == tx.len());
                    if a.closed {
                        out.push(b.bbo(0));
                    }
                }
            }
            out
        }

        proptest! {
            /// Interleaving the transactions of several symbols (each symbol's updates in order)
            /// publishes, per symbol, exactly the BBO sequence it publishes alone.
            #[test]
            fn interleaving_does_not_change_published_bbos(
                streams in proptest::collection::vec(symbol_stream(), 1..5),
                choices in proptest::collection::vec(any::<u8>(), 400),
            ) {
                let flat: Vec<Vec<(bool, i64, u32, bool)>> = streams
                    .iter()
                    .map(|txs| {
                        txs.iter()
                            .flat_map(|tx| tx.iter().enumerate().map(move |(k, &(b, p, s))| (b, p, s, k + 1 == tx.len())))
                            .collect()
                    })
                    .collect();
                let mut next = vec![0usize; flat.len()];
                let mut b = LevelBooks::with_capacity(flat.len(), 4);
                let mut published: Vec<Vec<Bbo>> = vec![Vec::new(); flat.len()];
                let mut c = 0;
                loop {
                    let live: Vec<usize> = (0..flat.len()).filter(|&s| next[s] < flat[s].len()).collect();
                    if live.is_empty() {
                        break;
                    }
                    let s = live[usize::from(choices[c % choices.len()]) % live.len()];
                    c += 1;
                    let (bid, px, size, last) = flat[s][next[s]];
                    next[s] += 1;
                    let side = if bid { BookSide::Bid } else { BookSide::Ask };
                    let before = b.bbo(s as u32);
                    let a = b.apply(s as u32, side, px, size * 100, last);
                    if a.closed {
                        published[s].push(b.bbo(s as u32));
                    } else {
                        prop_assert_eq!(b.bbo(s as u32), before, "BBO moved mid-transaction");
                    }
                }
                for (s, txs) in streams.iter().enumerate() {
                    prop_assert_eq!(&published[s], &run_alone(txs));
                }
            }
        }
    }
}
