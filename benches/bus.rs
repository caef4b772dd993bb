//! The bus's per-record cost on one thread, against copying the same bytes into a buffer (the
//! floor: any sink must at least move the bytes), same group, same run:
//! - `publish`: `weir::bus::Publisher::publish` into a 64 MiB ring in /dev/shm;
//! - `publish_poll`: publish then read it back through a `Subscriber` (the whole round trip, minus
//!   the cross-core cache-line transfer that `weir bench bus` measures);
//! - `copy`: `Vec::extend_from_slice` of the record into a reserved buffer, reset per batch.
//!
//! `cargo bench --bench bus`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dbn::{Mbp1Msg, Mbp10Msg, RecordHeader, TradeMsg, rtype};
use weir::bus::{Next, Publisher, PublisherOptions, Subscriber, SubscriberOptions};

const BATCH: u64 = 1024;

fn records() -> Vec<(&'static str, Vec<u8>)> {
    let trade = TradeMsg { hd: RecordHeader::new::<TradeMsg>(rtype::MBP_0, 1, 7, 1), ..Default::default() };
    let mbp1 = Mbp1Msg { hd: RecordHeader::new::<Mbp1Msg>(rtype::MBP_1, 1, 7, 1), ..Default::default() };
    let mbp10 = Mbp10Msg { hd: RecordHeader::new::<Mbp10Msg>(rtype::MBP_10, 1, 7, 1), ..Default::default() };
    vec![
        ("trade_48B", AsRef::<[u8]>::as_ref(&trade).to_vec()),
        ("mbp1_80B", AsRef::<[u8]>::as_ref(&mbp1).to_vec()),
        ("mbp10_368B", AsRef::<[u8]>::as_ref(&mbp10).to_vec()),
    ]
}

fn per_record(c: &mut Criterion) {
    let path = std::path::PathBuf::from(format!("/dev/shm/weir-bench-bus-{}", std::process::id()));
    let opts = PublisherOptions { capacity: 64 << 20, ..PublisherOptions::default() };
    let mut group = c.benchmark_group("bus/per_record");
    group.throughput(Throughput::Elements(BATCH));
    for (name, bytes) in records() {
        group.bench_function(BenchmarkId::new("copy", name), |b| {
            let mut out = Vec::with_capacity(bytes.len() * BATCH as usize);
            b.iter(|| {
                out.clear();
                for _ in 0..BATCH {
                    out.extend_from_slice(black_box(&bytes));
                }
                black_box(out.len());
            })
        });
        group.bench_function(BenchmarkId::new("publish", name), |b| {
            let mut publisher = Publisher::create(&path, &opts).expect("bus in /dev/shm");
            b.iter(|| {
                for _ in 0..BATCH {
                    black_box(publisher.publish_bytes(black_box(&bytes)).expect("a DBN record"));
                }
            })
        });
        group.bench_function(BenchmarkId::new("publish_poll", name), |b| {
            let mut publisher = Publisher::create(&path, &opts).expect("bus in /dev/shm");
            let mut sub = Subscriber::open(&path, &SubscriberOptions::default()).expect("the bus");
            b.iter(|| {
                for _ in 0..BATCH {
                    publisher.publish_bytes(black_box(&bytes)).expect("a DBN record");
                    match sub.poll() {
                        Next::Record(d) => {
                            black_box(d.record.header().instrument_id);
                        }
                        other => panic!("{other:?}"),
                    }
                }
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, per_record);
criterion_main!(benches);
