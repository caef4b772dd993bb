//! Books and DBN normalization, each beside the decode-only figure of the same messages.
//!
//! - `deep_level_update`: the DEEP sample's 2,752 price level updates. `decode_only` decodes
//!   them (the baseline); `level_book_apply` applies the decoded updates to `LevelBooks`
//!   (transactions, BBO publication); `dbn_mbo_build` builds one DBN MBO record per update into a
//!   buffer, with no book.
//! - `deep_plus_order_event`: a synthetic DEEP+ day-slice (no real DEEP+ day ships in the repo):
//!   1,000 symbols, 200,000 order events (adds, modifies, executions, deletes, hidden trades) in
//!   which every order ends, so the stream can be replayed; 9 in 10 modifies and cancels hit one
//!   of the 64 most recent orders (short-lived orders dominate lit books), the rest any resting
//!   order. `decode_only` versus `order_book_apply`.
//! - `full_path`: the whole per-datagram path, `FeedHandler` → `Normalizer` → DBN bytes in a
//!   buffer, against `decode_sequence` (issue 2's figure: `FeedHandler` alone) on the same
//!   in-memory segments: the 48,325-message DEEP sample and the synthetic DEEP+ stream. The
//!   normalizer is warm (its symbols seen, its books sized), as it is all day after the
//!   pre-market spin.
//!
//! Run: `cargo bench --bench books_dbn`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dbn::{Action, FlagSet, MboMsg, RecordHeader, flags, rtype};
use weir::capture::CaptureReader;
use weir_feeds::book::{BookSide, LevelBooks, OrderBooks};
use weir_feeds::frame::peel_udp;
use weir_feeds::iex::builder::msg;
use weir_feeds::iex::codes::Side;
use weir_feeds::iex::{FeedHandler, Message, Protocol, Segment, SegmentBuilder, decode};
use weir_feeds::normalize::{Normalizer, NormalizerConfig};

const DEEP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iex/Sai271828-iex-parser/test.pcap.gz");

fn deep_segments() -> Vec<Vec<u8>> {
    let mut r = CaptureReader::open(DEEP).unwrap();
    let mut out = Vec::new();
    while let Some(pkt) = r.next_packet().unwrap() {
        out.push(peel_udp(pkt.link, pkt.data).unwrap().payload.to_vec());
    }
    out
}

/// A tiny deterministic generator (xorshift), so every run benches the same stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Which live order an event touches: 9 times in 10 one of the 64 most recent (most orders on a
/// lit book live milliseconds: they are modified or cancelled soon after they are added), else
/// any of them (the resting tail of the book).
fn pick(rng: &mut Rng, live: usize) -> usize {
    if rng.below(10) < 9 { live - 1 - rng.below(live.min(64) as u64) as usize } else { rng.below(live as u64) as usize }
}

/// DEEP+ segments of 1,000 symbols in which every order is added, maybe modified or partly
/// executed, and then deleted or fully executed; about 12 messages per segment.
fn deep_plus_segments(events: usize) -> (Vec<Vec<u8>>, usize) {
    let symbols: Vec<String> = (0..1000).map(|i| format!("S{i:04}")).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut b = SegmentBuilder::new(0x8005, 1, 1);
    let mut live: Vec<(u64, usize, bool, u32, i64)> = Vec::new();
    let mut next_id = 0x63u64 << 48;
    let (mut segs, mut n, mut t) = (Vec::new(), 0, 0i64);
    while n < events || !live.is_empty() {
        t += 1;
        let roll = rng.below(100);
        let m = if n < events && (live.len() < 50_000 && roll < 45 || live.is_empty()) {
            let sym = rng.below(1000) as usize;
            let sell = rng.below(2) == 0;
            let price = 100_000 + if sell { 1 } else { -1 } * (1 + rng.below(20) as i64) * 100;
            let size = 100 * (1 + rng.below(5) as u32);
            next_id += 1;
            live.push((next_id, sym, sell, size, price));
            msg::add_order(t, &symbols[sym], next_id, sell, size, price)
        } else if n < events && roll < 55 {
            let i = pick(&mut rng, live.len());
            let o = &mut live[i];
            o.3 = 100 * (1 + rng.below(5) as u32);
            msg::order_modify(t, &symbols[o.1], o.0, (rng.below(2)) as u8, o.3, o.4)
        } else if n < events && roll < 65 && live[live.len() - 1].3 > 100 {
            // A partial execution of the newest order.
            let o = live.last_mut().unwrap();
            o.3 -= 100;
            msg::order_executed(t, &symbols[o.1], o.0, 100, o.4, t)
        } else if n < events && roll < 68 {
            msg::trade(b'T', t, &symbols[rng.below(1000) as usize], 100, 100_000, t)
        } else {
            let i = pick(&mut rng, live.len());
            let o = live.remove(i);
            if rng.below(4) == 0 {
                msg::order_executed(t, &symbols[o.1], o.0, o.3, o.4, t)
            } else {
                msg::order_delete(t, &symbols[o.1], o.0)
            }
        };
        b.push(&m);
        n += 1;
        if b.pending() == 12 {
            segs.push(b.finish(t));
        }
    }
    if b.pending() > 0 {
        segs.push(b.finish(t));
    }
    (segs, n)
}

fn messages(segs: &[Vec<u8>]) -> usize {
    segs.iter().map(|s| usize::from(Segment::parse(s).unwrap().message_count())).sum()
}

fn decode_only(segs: &[Vec<u8>]) -> i64 {
    let mut acc = 0i64;
    for s in segs {
        let seg = Segment::parse(s).unwrap();
        let proto = seg.protocol();
        for block in seg.blocks().flatten() {
            acc = acc.wrapping_add(match decode(proto, block.bytes) {
                Ok(m) => m.timestamp().unwrap_or(0),
                Err(_) => -1,
            });
        }
    }
    acc
}

fn decode_sequence(segs: &[Vec<u8>]) -> u64 {
    let mut h = FeedHandler::new();
    for s in segs {
        h.on_datagram(s, 0, 0, &mut ());
    }
    h.stats().messages
}

/// One decoded price level update: (book, side, price, size, complete).
type LevelUpdate = (u32, BookSide, i64, u32, bool);

/// The DEEP sample's price level updates: their bytes, and decoded once.
fn level_updates(segs: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<LevelUpdate>) {
    let mut raw = Vec::new();
    let mut decoded = Vec::new();
    let mut ids = std::collections::HashMap::new();
    for s in segs {
        let seg = Segment::parse(s).unwrap();
        for block in seg.blocks().flatten() {
            if let Ok(Message::PriceLevelUpdate(m)) = decode(Protocol::Deep, block.bytes) {
                let n = ids.len() as u32;
                let id = *ids.entry(m.symbol()).or_insert(n);
                let side = if m.side() == Side::Buy { BookSide::Bid } else { BookSide::Ask };
                raw.push(block.bytes.to_vec());
                decoded.push((id, side, m.price(), m.size(), m.event_complete()));
            }
        }
    }
    (raw, decoded)
}

fn deep_level_update(c: &mut Criterion) {
    let segs = deep_segments();
    let (raw, updates) = level_updates(&segs);
    assert_eq!(updates.len(), 2_752);
    let mut g = c.benchmark_group("deep_level_update");
    g.throughput(Throughput::Elements(updates.len() as u64));
    g.bench_function("decode_only", |b| {
        b.iter(|| {
            let mut acc = 0i64;
            for m in &raw {
                if let Ok(Message::PriceLevelUpdate(p)) = decode(Protocol::Deep, black_box(m)) {
                    acc = acc.wrapping_add(p.price() ^ i64::from(p.size()));
                }
            }
            acc
        })
    });
    let mut books = LevelBooks::with_capacity(2_000, 16);
    g.bench_function("level_book_apply", |b| {
        b.iter(|| {
            let mut changed = 0u32;
            for &(id, side, price, size, complete) in black_box(&updates) {
                changed += u32::from(books.apply(id, side, price, size, complete).bbo_changed);
            }
            changed
        })
    });
    let mut out: Vec<u8> = Vec::with_capacity(updates.len() * 64);
    g.bench_function("dbn_mbo_build", |b| {
        b.iter(|| {
            out.clear();
            for &(id, side, price, size, complete) in black_box(&updates) {
                let rec = MboMsg {
                    hd: RecordHeader::new::<MboMsg>(rtype::MBO, 0xF001, id + 1, 1),
                    order_id: 0,
                    price: price * 100_000,
                    size,
                    flags: FlagSet::new(flags::MBP | if complete { flags::LAST } else { 0 }),
                    channel_id: 1,
                    action: Action::Modify as u8 as std::ffi::c_char,
                    side: if side == BookSide::Bid { b'B' } else { b'A' } as std::ffi::c_char,
                    ts_recv: 2,
                    ts_in_delta: 3,
                    sequence: 4,
                };
                out.extend_from_slice(rec.as_ref());
            }
            out.len()
        })
    });
    g.finish();
}

/// Decoded DEEP+ events for the book-only case.
#[derive(Clone, Copy)]
enum Op {
    Add(u32, u64, BookSide, i64, u32, i64),
    Modify(u64, u32, i64, bool, i64),
    Delete(u64),
    Execute(u64, u32),
    None,
}

fn deep_plus_order_event(c: &mut Criterion) {
    let (segs, n) = deep_plus_segments(200_000);
    let mut ids = std::collections::HashMap::new();
    let mut ops = Vec::with_capacity(n);
    for s in &segs {
        for block in Segment::parse(s).unwrap().blocks().flatten() {
            let m = decode(Protocol::DeepPlus, block.bytes).unwrap();
            let mut book = |sym| {
                let k = ids.len() as u32;
                *ids.entry(sym).or_insert(k)
            };
            ops.push(match m {
                Message::AddOrder(a) => {
                    let side = if a.side() == Side::Buy { BookSide::Bid } else { BookSide::Ask };
                    Op::Add(book(a.symbol()), a.order_id() as u64, side, a.price(), a.size(), a.timestamp())
                }
                Message::OrderModify(m) => {
                    Op::Modify(m.order_id() as u64, m.size(), m.price(), m.flags_raw() & 1 != 0, m.timestamp())
                }
                Message::OrderDelete(d) => Op::Delete(d.order_id() as u64),
                Message::OrderExecuted(e) => Op::Execute(e.order_id() as u64, e.size()),
                _ => Op::None,
            });
        }
    }
    let mut g = c.benchmark_group("deep_plus_order_event");
    g.throughput(Throughput::Elements(ops.len() as u64));
    g.bench_function("decode_only", |b| b.iter(|| decode_only(black_box(&segs))));
    let mut books = OrderBooks::with_capacity(1_000, 1 << 17, 16);
    g.bench_function("order_book_apply", |b| {
        b.iter(|| {
            let mut errors = 0u32;
            for &op in black_box(&ops) {
                let r = match op {
                    Op::Add(book, id, side, px, size, ts) => books.add(book, id, side, px, size, ts).is_err(),
                    Op::Modify(id, size, px, keep, ts) => books.modify(id, size, px, keep, ts).is_err(),
                    Op::Delete(id) => books.delete(id).is_err(),
                    Op::Execute(id, size) => books.execute(id, size).is_err(),
                    Op::None => false,
                };
                errors += u32::from(r);
            }
            assert_eq!(errors, 0);
            errors
        })
    });
    g.finish();
}

fn full_path(c: &mut Criterion) {
    let deep = deep_segments();
    let (plus, _) = deep_plus_segments(200_000);
    for (name, segs) in [("deep_sample", &deep), ("deep_plus_synthetic", &plus)] {
        let mut g = c.benchmark_group(format!("full_path_{name}"));
        g.throughput(Throughput::Elements(messages(segs) as u64));
        g.bench_function("decode_sequence", |b| b.iter(|| decode_sequence(black_box(segs))));
        let config = NormalizerConfig { orders: 1 << 17, ..NormalizerConfig::default() };
        let mut n = Normalizer::new(config, Vec::with_capacity(64 << 20));
        // Warm: symbols seen, books sized (the pre-market spin of a real day).
        let mut h = FeedHandler::new();
        for s in segs.iter() {
            h.on_datagram(s, 0, 0, &mut n);
        }
        g.bench_function("decode_book_dbn", |b| {
            b.iter(|| {
                n.sink_mut().clear();
                let mut h = FeedHandler::new();
                for s in black_box(segs.iter()) {
                    h.on_datagram(s, 0, 0, &mut n);
                }
                n.sink().len()
            })
        });
        assert_eq!(n.stats().book_errors, 0, "{name}: the replayed stream must apply cleanly");
        g.finish();
    }
}

criterion_group!(benches, deep_level_update, deep_plus_order_event, full_path);
criterion_main!(benches);
