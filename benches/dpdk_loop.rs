//! The poll loop on DPDK devices against a bare receive loop over the same device, same run
//! (feature `dpdk`; software devices, no NIC or hugepages needed).
//!
//! - `net_null`: the device makes empty 64-byte frames as fast as it is polled (its cost is an
//!   mbuf alloc and free per frame). `bare_rx` is the bare loop through `DpdkRx` (`rx_burst`,
//!   read a byte of each frame; the mbufs go back with one `rte_pktmbuf_free_bulk` at the next
//!   burst); `poll_loop` is `weir::lcore::PollLoop` over the same queue: its frames are not IPv4,
//!   so the loop peels and counts them: the loop's own overhead on top of the device.
//! - `net_ring`: real IEX frames (the TOPS 1.6 sample as an endless, gap-free stream) sent into
//!   the ring and received back each burst. `bare_rx` is tx + rx + touch; `poll_loop` is tx + the
//!   full pipeline (peel, sequence, decode, books, DBN records).
//!
//! Run: `cargo bench --features dpdk --bench dpdk_loop` (as root).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir::harness::{Discard, LoopedCapture, time_packets};
use weir::lcore::PollLoop;
use weir::nic::dpdk::{Port, PortConfig};
use weir::nic::{BURST, RxQueue, TxQueue};
use weir_feeds::normalize::NormalizerConfig;

const TOPS16: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iex/timpalpant-go-iex/TOPS16.pcapng.gz");

fn tops16() -> LoopedCapture {
    LoopedCapture::load(std::path::Path::new(TOPS16)).unwrap()
}

fn open(device: &str) -> Port {
    Port::open(device, &PortConfig::default(), &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn net_null(c: &mut Criterion) {
    const PACKETS: u64 = 1 << 20;
    let mut g = c.benchmark_group("dpdk_net_null");
    g.throughput(Throughput::Elements(PACKETS));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(6));

    let port = open("net_null_bench0");
    let mut rx = port.rx(0).unwrap();
    g.bench_function("bare_rx", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    time_packets(PACKETS, || {
                        let n = rx.rx_burst();
                        for i in 0..n {
                            black_box(rx.frame(i).data.first());
                        }
                        n
                    })
                })
                .sum()
        })
    });
    let mut l = PollLoop::new(rx, NormalizerConfig::default(), Discard);
    g.bench_function("poll_loop", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| time_packets(PACKETS, || l.poll())).sum())
    });
    let r = l.report();
    assert!(r.replay.other_traffic > 0 && r.replay.errors == 0);
    g.finish();
}

fn net_ring(c: &mut Criterion) {
    const PACKETS: u64 = 13_022 * 4;
    let mut g = c.benchmark_group("dpdk_net_ring_tops16");
    g.throughput(Throughput::Elements(PACKETS));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(8));

    // Each poll: send the stream's next BURST frames into the ring, then receive a burst back.
    fn feed(stream: &mut LoopedCapture, tx: &mut impl TxQueue) {
        let r = stream.take(BURST);
        let mut frames: [&[u8]; BURST] = [&[]; BURST];
        for (slot, i) in frames.iter_mut().zip(r.clone()) {
            *slot = stream.frame_bytes(i);
        }
        let sent = tx.tx_burst(&frames[..r.len()]);
        assert_eq!(sent, r.len(), "the ring is drained every burst: it never fills");
    }

    let port = open("net_ring_bench0");
    let (mut rx, mut tx) = (port.rx(0).unwrap(), port.tx(0).unwrap());
    let mut stream = tops16();
    g.bench_function("bare_rx", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    time_packets(PACKETS, || {
                        feed(&mut stream, &mut tx);
                        let n = rx.rx_burst();
                        for i in 0..n {
                            black_box(rx.frame(i).data.get(14));
                        }
                        n
                    })
                })
                .sum()
        })
    });
    drop((rx, tx));
    // A fresh port and stream for the full pipeline: its sequencer must see the stream from the start.
    let port = open("net_ring_bench1");
    let (rx, mut tx) = (port.rx(0).unwrap(), port.tx(0).unwrap());
    let mut stream = tops16();
    let mut l = PollLoop::new(rx, NormalizerConfig::default(), Discard);
    g.bench_function("poll_loop", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    time_packets(PACKETS, || {
                        feed(&mut stream, &mut tx);
                        l.poll()
                    })
                })
                .sum()
        })
    });
    let r = l.report();
    assert_eq!(r.replay.gaps.count, 0);
    assert!(r.replay.messages > 0);
    g.finish();
}

criterion_group!(benches, net_null, net_ring);
criterion_main!(benches);
