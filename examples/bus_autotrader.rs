//! A small autotrader on the bus: a top of book per symbol, kept from another process's records.
//!
//! Start a producer (`weir replay FILE --bus NAME`, or `weir run ... --bus NAME`), then:
//!
//! ```text
//! cargo run --release --example bus_autotrader -- NAME [--oldest]
//! ```
//!
//! (`NAME` is a bus name in `$WEIR_BUS_DIR`, default `/dev/shm/weir`, or a path; `--oldest` joins
//! at the oldest record still in the ring rather than the next one, to see the symbol mappings
//! published before it started.)
//!
//! Schemas it reads:
//! - `SymbolMappingMsg`: instrument id to symbol (published when the producer first sees one).
//! - `Mbp1Msg` (MBP-1): `levels[0]` is the whole best bid and offer. The normalizer emits it for
//!   every TOPS quote update (`F_TOB`) and, from DEEP, at each transaction close that changed the
//!   BBO. DEEP+ publishes MBO only (order by order); this example does not build books from MBO,
//!   so a DEEP+-only symbol has trades but no book here.
//! - `TradeMsg`: the last trade price.
//!
//! Losses: a `Delivery` with `lost > 0` means records were missed, and they could have been any
//! symbol's, so every book becomes suspect (a real trader would stop quoting and ask for a
//! snapshot); a book is good again at its next MBP-1, which carries the whole BBO. A record
//! flagged `F_MAYBE_BAD_BOOK` by the producer marks its symbol suspect the same way.
//!
//! The "strategy" is a toy: with a good book, a bid size at least three times the ask size is a
//! buy signal, and the reverse a sell signal. It counts signals; it sends no orders. A summary
//! prints every second and at exit (end of the producer's stream, or Ctrl-C).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dbn::pretty::fmt_px;
use dbn::{Mbp1Msg, SymbolMappingMsg, TradeMsg};
use weir::bus::{self, Join, Next, ProducerState, Subscriber, SubscriberOptions};

#[derive(Debug, Default)]
struct Book {
    symbol: String,
    bid_px: i64,
    bid_sz: u32,
    ask_px: i64,
    ask_sz: u32,
    last_trade: Option<i64>,
    updates: u64,
    /// Records may have been missed since the last full BBO.
    suspect: bool,
}

#[derive(Debug, Default)]
struct Trader {
    books: HashMap<u32, Book>,
    records: u64,
    loss_events: u64,
    buy_signals: u64,
    sell_signals: u64,
}

impl Trader {
    fn book(&mut self, id: u32) -> &mut Book {
        self.books.entry(id).or_insert_with(|| Book { symbol: format!("#{id}"), ..Book::default() })
    }

    fn on_record(&mut self, lost: u64, rec: dbn::RecordRef<'_>) {
        self.records += 1;
        if lost > 0 {
            self.loss_events += 1;
            for b in self.books.values_mut() {
                b.suspect = true;
            }
        }
        let id = rec.header().instrument_id;
        // `try_get` checks the rtype and the length: a malformed record is ignored, not a panic.
        if let Ok(m) = rec.try_get::<SymbolMappingMsg>() {
            if let Ok(s) = m.stype_in_symbol() {
                s.clone_into(&mut self.book(id).symbol);
            }
        } else if let Ok(m) = rec.try_get::<Mbp1Msg>() {
            let l = m.levels[0];
            let b = self.book(id);
            (b.bid_px, b.bid_sz, b.ask_px, b.ask_sz) = (l.bid_px, l.bid_sz, l.ask_px, l.ask_sz);
            b.updates += 1;
            b.suspect = m.flags.is_maybe_bad_book();
            let good = !b.suspect && l.bid_sz > 0 && l.ask_sz > 0 && l.ask_px > l.bid_px;
            if good && l.bid_sz >= 3 * l.ask_sz {
                self.buy_signals += 1;
            } else if good && l.ask_sz >= 3 * l.bid_sz {
                self.sell_signals += 1;
            }
        } else if let Ok(t) = rec.try_get::<TradeMsg>() {
            let b = self.book(id);
            b.last_trade = Some(t.price);
            if t.flags.is_maybe_bad_book() {
                b.suspect = true;
            }
        }
    }

    fn summary(&self, elapsed: Duration, sub: &Subscriber, top: usize) {
        let quoted = self.books.values().filter(|b| b.updates > 0).count();
        let suspect = self.books.values().filter(|b| b.suspect).count();
        let s = sub.stats();
        println!(
            "{:>7.1}s  records {}  lost {} ({} events)  books {quoted} ({suspect} suspect)  signals buy {} sell {}",
            elapsed.as_secs_f64(),
            self.records,
            s.lost,
            self.loss_events,
            self.buy_signals,
            self.sell_signals
        );
        let mut busiest: Vec<&Book> = self.books.values().filter(|b| b.updates > 0).collect();
        busiest.sort_by(|a, b| b.updates.cmp(&a.updates).then_with(|| a.symbol.cmp(&b.symbol)));
        for b in busiest.into_iter().take(top) {
            let px = |p: i64| if p == dbn::UNDEF_PRICE { "-".to_owned() } else { fmt_px(p) };
            println!(
                "    {:<8} {:>6} @ {:<14} | {:>14} @ {:<6} last {:<14} {} updates{}",
                b.symbol,
                b.bid_sz,
                px(b.bid_px),
                px(b.ask_px),
                b.ask_sz,
                b.last_trade.map_or_else(|| "-".to_owned(), px),
                b.updates,
                if b.suspect { "  SUSPECT" } else { "" }
            );
        }
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: one atomic store.
    STOP.store(true, Ordering::Relaxed);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: bus_autotrader NAME [--oldest]");
        return ExitCode::from(2);
    };
    let join = if args.iter().any(|a| a == "--oldest") { Join::Oldest } else { Join::Tail };
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: an all-zero sigaction is valid (empty mask, no flags); the handler only stores
        // to an atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
    let path = bus::resolve(name);
    let opts = SubscriberOptions { join, ..SubscriberOptions::default() };
    let mut sub = match Subscriber::open_wait(&path, &opts, Duration::from_secs(10)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bus_autotrader: {e}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let mut next_summary = start + Duration::from_secs(1);
    let mut trader = Trader::default();
    let mut empty = 0u32;
    while !STOP.load(Ordering::Relaxed) {
        match sub.poll() {
            Next::Record(d) => {
                empty = 0;
                trader.on_record(d.lost, d.record);
                continue;
            }
            Next::Lapped | Next::Corrupt { .. } => continue,
            Next::Empty => {}
        }
        // A trader would spin on its own core; this example spins briefly, then sleeps.
        empty += 1;
        if empty < 1000 {
            std::hint::spin_loop();
            continue;
        }
        if Instant::now() >= next_summary {
            next_summary += Duration::from_secs(1);
            trader.summary(start.elapsed(), &sub, 5);
        }
        match sub.producer() {
            ProducerState::Ended => break,
            ProducerState::Superseded | ProducerState::Dead { .. } => {
                if let Ok(Some(info)) = sub.reopen() {
                    // The new producer numbers its instruments afresh: start over.
                    eprintln!("bus_autotrader: producer restarted (epoch {}); books cleared", info.epoch);
                    trader.books.clear();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            ProducerState::Live | ProducerState::Quiet { .. } => sub.wait(Duration::from_millis(100)),
        }
        empty = 999;
    }
    println!("final:");
    trader.summary(start.elapsed(), &sub, 20);
    ExitCode::SUCCESS
}
