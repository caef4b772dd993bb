//! The poll loop's throughput against a bare receive loop over the same queue, same run.
//!
//! The queue is `weir::harness::LoopedCapture`: the TOPS 1.6 sample's 13,022 frames (57,674
//! messages) in memory, looped; at each wrap the IEX-TP sequence numbers and stream offsets move
//! on by one pass, so the sequencer sees one endless, gap-free stream and every message is
//! decoded, booked and turned into DBN records (none are dropped as duplicates). Frames are lent
//! from memory, never copied, so the bare loop costs next to nothing: this measures the
//! handler's own throughput.
//!
//! - `bare_rx`: rx_burst and touch one byte of each frame (the baseline);
//! - `peel`: rx_burst and the frame peel;
//! - `poll_loop`: `weir::lcore::PollLoop`: peel, sequence, decode, books, DBN records (discarded).
//!
//! Against a DPDK device (`net_null`, `net_ring`) the same comparison is `benches/dpdk_loop.rs`
//! (feature `dpdk`). Run: `cargo bench --bench poll_loop`.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use weir::harness::{Discard, LoopedCapture, time_packets};
use weir::lcore::PollLoop;
use weir::nic::RxQueue;
use weir_feeds::frame::{LinkType, peel_udp};
use weir_feeds::normalize::NormalizerConfig;

const TOPS16: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iex/timpalpant-go-iex/TOPS16.pcapng.gz");

fn tops16() -> LoopedCapture {
    LoopedCapture::load(std::path::Path::new(TOPS16)).unwrap()
}

/// Four passes over the sample per iteration.
const PACKETS: u64 = 13_022 * 4;

/// A baseline over a fresh stream: `rx_burst`, then `work` on every frame (generic, so inlined as
/// the poll loop's own work is).
fn per_frame(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, work: impl Fn(&[u8])) {
    let mut q = tops16();
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    time_packets(PACKETS, || {
                        let n = q.rx_burst();
                        for i in 0..n {
                            work(q.frame(i).data);
                        }
                        n
                    })
                })
                .sum()
        })
    });
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("poll_loop_tops16");
    g.throughput(Throughput::Elements(PACKETS));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(8));

    // The baselines: rx_burst, then per-frame work without the feed handler.
    per_frame(&mut g, "bare_rx", |data| {
        black_box(data[14]);
    });
    per_frame(&mut g, "peel", |data| {
        let _ = black_box(peel_udp(LinkType::Ethernet, data));
    });
    let mut l = PollLoop::new(tops16(), NormalizerConfig::default(), Discard);
    // Warm: symbols interned, books sized, as after the pre-market spin.
    time_packets(13_022, || l.poll());
    g.bench_function("poll_loop", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| time_packets(PACKETS, || l.poll())).sum())
    });
    g.finish();
    let r = l.report();
    assert_eq!(r.replay.gaps.count, 0, "the looped stream must stay gap-free");
    assert_eq!(r.replay.duplicates.messages, 0);
    eprintln!(
        "poll_loop: {} packets, {} messages, {} records, {} errors",
        r.replay.packets, r.replay.messages, r.records, r.replay.errors
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
