//! `weir book`: one symbol's books (levels with sizes and order counts, BBO, status), at the end
//! of a capture or at its first transaction close at or after a given time.

use std::fmt::Write as _;

use serde::Serialize;
use weir_feeds::book::{Bbo, BookSide, SymbolStatus};
use weir_feeds::iex::message::Symbol;
use weir_feeds::iex::{FeedError, Message, MessageSink, MsgContext, SeqEvent};
use weir_feeds::normalize::{Feed, Normalizer, RecordCounts};

/// One price level. Prices are in IEX units (1e-4 dollars) and as decimal text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LevelView {
    /// Price, dollars, as text (`"25.1000"`).
    pub price: String,
    /// Price in IEX units.
    pub price_raw: i64,
    /// Aggregate size.
    pub size: u64,
    /// Resting orders (DEEP+ only; DEEP and TOPS do not say).
    pub orders: Option<u32>,
}

/// One feed's book of the symbol.
#[derive(Clone, Debug, Serialize)]
pub struct FeedBookView {
    /// `tops`, `deep` or `deep+`.
    pub feed: &'static str,
    /// Best bid (as last published: for DEEP, at the last closed transaction).
    pub bid: Option<LevelView>,
    /// Best ask.
    pub ask: Option<LevelView>,
    /// Bid levels, best first (TOPS: the quote only).
    pub bids: Vec<LevelView>,
    /// Ask levels, best first.
    pub asks: Vec<LevelView>,
    /// A DEEP transaction is open on the symbol (levels are mid-update; the BBO is the last
    /// published one).
    pub in_transition: bool,
    /// The book may be wrong: a gap, reset or book error touched it and nothing has repaired it.
    pub maybe_bad_book: bool,
    /// The symbol's status on this feed.
    pub status: StatusView,
}

/// Status as the status machine holds it, raw codes included.
#[derive(Clone, Debug, Serialize)]
pub struct StatusView {
    /// Trading on IEX now.
    pub trading: bool,
    /// Orders accepted now.
    pub quoting: bool,
    /// Short-sale restriction in effect.
    pub short_sale_restricted: bool,
    /// Trading status code (`H`, `O`, `P`, `T`) and reason, raw.
    pub trading_status: Option<String>,
    /// Reason code of the trading status.
    pub reason: String,
    /// Operational halt code (`O` halted, `N` not), raw.
    pub operational_halt: Option<String>,
    /// Short-sale test detail code, raw.
    pub short_sale_detail: Option<String>,
    /// Retail liquidity indicator code, raw.
    pub retail_liquidity: Option<String>,
    /// Last security event code, raw.
    pub security_event: Option<String>,
    /// TOPS quote flag: not available for trading.
    pub quote_unavailable: bool,
    /// Feed-wide phase (last system event code), raw.
    pub phase: Option<String>,
}

/// The whole answer of `weir book`.
#[derive(Clone, Debug, Serialize)]
pub struct BookView {
    /// The symbol.
    pub symbol: String,
    /// Its instrument id in this run (as in `weir replay --out`).
    pub instrument_id: u32,
    /// Event time of the message that closed the transaction shown, or of the symbol's last
    /// message at the end of the capture.
    pub ts_event: i64,
    /// `at` when a time was asked for and reached; `end` otherwise.
    pub when: &'static str,
    /// One entry per feed that carried the symbol.
    pub feeds: Vec<FeedBookView>,
}

fn price_text(p: i64) -> String {
    let sign = if p < 0 { "-" } else { "" };
    let a = p.unsigned_abs();
    format!("{sign}{}.{:04}", a / 10_000, a % 10_000)
}

fn level(price: i64, size: u64, orders: Option<u32>) -> LevelView {
    LevelView { price: price_text(price), price_raw: price, size, orders }
}

fn code(b: u8) -> String {
    if b.is_ascii_graphic() { (b as char).to_string() } else { format!("0x{b:02x}") }
}

fn status_view(s: &SymbolStatus, phase: Option<u8>) -> StatusView {
    StatusView {
        trading: s.is_trading(),
        quoting: s.is_quoting(),
        short_sale_restricted: s.is_short_sell_restricted(),
        trading_status: s.trading.map(|c| code(c.raw())),
        reason: String::from_utf8_lossy(&s.reason).trim_end_matches([' ', '\0']).to_owned(),
        operational_halt: s.operational_halt.map(|c| code(c.raw())),
        short_sale_detail: s.short_sale_test.map(|(_, d)| code(d.raw())),
        retail_liquidity: s.retail_liquidity.map(|c| code(c.raw())),
        security_event: s.security_event.map(|c| code(c.raw())),
        quote_unavailable: s.quote_unavailable,
        phase: phase.map(code),
    }
}

fn bbo_side(b: Option<weir_feeds::book::PriceSize>) -> Option<LevelView> {
    b.map(|l| level(l.price, u64::from(l.size), None))
}

/// The books of `symbol` in `n` now, `depth` levels per side.
pub fn view<R>(n: &Normalizer<R>, symbol: Symbol, depth: usize, ts_event: i64, when: &'static str) -> Option<BookView> {
    let id = n.instrument_id(symbol)?;
    let book = id - 1;
    let mut feeds = Vec::new();
    for feed in n.feeds_seen().filter(|&f| n.carries(f, id)) {
        let status = n.status(feed);
        let st = status_view(&status.get(book), status.phase().map(|p| p.raw()));
        let v = match feed {
            Feed::Tops => {
                let q: Bbo = n.quote(id);
                FeedBookView {
                    feed: feed.name(),
                    bid: bbo_side(q.bid),
                    ask: bbo_side(q.ask),
                    bids: bbo_side(q.bid).into_iter().collect(),
                    asks: bbo_side(q.ask).into_iter().collect(),
                    in_transition: false,
                    maybe_bad_book: n.maybe_bad(feed, id),
                    status: st,
                }
            }
            Feed::Deep => {
                let b = n.level_books();
                let bbo = b.bbo(book);
                let side =
                    |s| b.levels(book, s).iter().take(depth).map(|l| level(l.price, u64::from(l.size), None)).collect();
                FeedBookView {
                    feed: feed.name(),
                    bid: bbo_side(bbo.bid),
                    ask: bbo_side(bbo.ask),
                    bids: side(BookSide::Bid),
                    asks: side(BookSide::Ask),
                    in_transition: b.in_transition(book),
                    maybe_bad_book: n.maybe_bad(feed, id),
                    status: st,
                }
            }
            Feed::DeepPlus => {
                let b = n.order_books();
                let side = |s| -> Vec<LevelView> {
                    b.levels(book, s).iter().take(depth).map(|l| level(l.price, l.size, Some(l.orders))).collect()
                };
                let (bids, asks) = (side(BookSide::Bid), side(BookSide::Ask));
                FeedBookView {
                    feed: feed.name(),
                    bid: bids.first().cloned(),
                    ask: asks.first().cloned(),
                    bids,
                    asks,
                    in_transition: false,
                    maybe_bad_book: n.maybe_bad(feed, id),
                    status: st,
                }
            }
        };
        feeds.push(v);
    }
    Some(BookView { symbol: symbol.to_string(), instrument_id: id, ts_event, when, feeds })
}

/// Feeds a normalizer and takes the snapshot `weir book --at` asks for.
#[derive(Debug)]
pub struct BookWatch {
    /// The normalizer (record counts only).
    pub normalizer: Normalizer<RecordCounts>,
    symbol: Symbol,
    at: Option<i64>,
    depth: usize,
    /// Event time of the symbol's last message.
    pub last_ts: Option<i64>,
    /// The snapshot, once taken.
    pub taken: Option<BookView>,
}

impl BookWatch {
    /// Watches `symbol`; with `at`, snapshots at its first transaction close at or after `at`.
    pub fn new(normalizer: Normalizer<RecordCounts>, symbol: Symbol, at: Option<i64>, depth: usize) -> Self {
        BookWatch { normalizer, symbol, at, depth, last_ts: None, taken: None }
    }
}

impl MessageSink for BookWatch {
    fn on_message(&mut self, ctx: &MsgContext, msg: &Message<'_>) {
        self.normalizer.on_message(ctx, msg);
        if msg.symbol() != Some(self.symbol) {
            return;
        }
        let Some(t) = msg.timestamp() else { return };
        self.last_ts = Some(t);
        if let Some(at) = self.at
            && self.taken.is_none()
            && t >= at
        {
            // A transaction is closed when no DEEP update of it is pending.
            let id = self.normalizer.instrument_id(self.symbol).unwrap_or(0);
            if !self.normalizer.level_books().in_transition(id.wrapping_sub(1)) {
                self.taken = view(&self.normalizer, self.symbol, self.depth, t, "at");
            }
        }
    }

    fn on_event(&mut self, event: &SeqEvent) {
        self.normalizer.on_event(event);
    }

    fn on_error(&mut self, error: &FeedError) {
        self.normalizer.on_error(error);
    }

    fn is_done(&self) -> bool {
        self.taken.is_some()
    }
}

/// The book as text.
pub fn render(v: &BookView) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} (instrument {}) {} ts_event {}",
        v.symbol,
        v.instrument_id,
        if v.when == "at" { "at first transaction close at/after the time asked," } else { "at end of capture," },
        v.ts_event
    );
    for f in &v.feeds {
        let st = &f.status;
        let _ = writeln!(
            s,
            "\n[{}]{}{}",
            f.feed,
            if f.maybe_bad_book { "  MAYBE BAD BOOK" } else { "" },
            if f.in_transition { "  (transaction open)" } else { "" }
        );
        let _ = writeln!(
            s,
            "  status: trading {}  quoting {}  SSR {}  (H={} {} O={} P={} I={} E={} S={}{})",
            yes(st.trading),
            yes(st.quoting),
            yes(st.short_sale_restricted),
            st.trading_status.as_deref().unwrap_or("-"),
            if st.reason.is_empty() { "-" } else { &st.reason },
            st.operational_halt.as_deref().unwrap_or("-"),
            st.short_sale_detail.as_deref().unwrap_or("-"),
            st.retail_liquidity.as_deref().unwrap_or("-"),
            st.security_event.as_deref().unwrap_or("-"),
            st.phase.as_deref().unwrap_or("-"),
            if st.quote_unavailable { ", quote flagged unavailable" } else { "" }
        );
        let side = |l: &Option<LevelView>| l.as_ref().map_or("-".to_owned(), |l| format!("{} @ {}", l.size, l.price));
        let _ = writeln!(s, "  BBO: {}  x  {}", side(&f.bid), side(&f.ask));
        let _ = writeln!(
            s,
            "  {:>8} {:>10} {:>12} | {:<12} {:<10} {:<8}",
            "orders", "size", "bid", "ask", "size", "orders"
        );
        for i in 0..f.bids.len().max(f.asks.len()) {
            let (b, a) = (f.bids.get(i), f.asks.get(i));
            let orders = |l: Option<&LevelView>| l.and_then(|l| l.orders).map_or(String::new(), |o| o.to_string());
            let _ = writeln!(
                s,
                "  {:>8} {:>10} {:>12} | {:<12} {:<10} {:<8}",
                orders(b),
                b.map_or(String::new(), |l| l.size.to_string()),
                b.map_or(String::new(), |l| l.price.clone()),
                a.map_or(String::new(), |l| l.price.clone()),
                a.map_or(String::new(), |l| l.size.to_string()),
                orders(a),
            );
        }
    }
    s
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_as_text() {
        assert_eq!(price_text(251_000), "25.1000");
        assert_eq!(price_text(5), "0.0005");
        assert_eq!(price_text(-15_000), "-1.5000");
    }
}
