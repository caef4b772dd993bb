//! The worker's local ring against `crossbeam-deque` (the Chase-Lev deque most Rust work-stealers use), same
//! group, same run: owner push+pop, owner push then a thief steals it all, and overflow into the injector-like sink.
//!
//! `cargo bench --bench run_queue`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crossbeam_deque::{Steal, Worker};
use weir_schedulers::queue::local::{self, Overflow};

const BATCH: u64 = 256;

struct Discard;
impl Overflow<u64> for Discard {
    fn push_batch(&self, items: impl Iterator<Item = u64>) {
        items.for_each(|item| {
            black_box(item);
        });
    }
}

fn push_pop(c: &mut Criterion) {
    let mut group = c.benchmark_group("run_queue/push_pop_256");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function(BenchmarkId::new("weir_local", BATCH), |b| {
        let (mut q, _s) = local::new::<u64>(256);
        b.iter(|| {
            for i in 0..BATCH {
                q.push_back(i, &Discard);
            }
            while let Some(item) = q.pop() {
                black_box(item);
            }
        })
    });
    group.bench_function(BenchmarkId::new("crossbeam_fifo", BATCH), |b| {
        let q = Worker::<u64>::new_fifo();
        b.iter(|| {
            for i in 0..BATCH {
                q.push(i);
            }
            while let Some(item) = q.pop() {
                black_box(item);
            }
        })
    });
    group.bench_function(BenchmarkId::new("crossbeam_lifo", BATCH), |b| {
        let q = Worker::<u64>::new_lifo();
        b.iter(|| {
            for i in 0..BATCH {
                q.push(i);
            }
            while let Some(item) = q.pop() {
                black_box(item);
            }
        })
    });
    group.finish();
}

fn steal(c: &mut Criterion) {
    let mut group = c.benchmark_group("run_queue/push_then_steal_all_256");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function(BenchmarkId::new("weir_local", BATCH), |b| {
        let (mut victim, stealer) = local::new::<u64>(256);
        let (mut thief, _) = local::new::<u64>(256);
        b.iter(|| {
            for i in 0..BATCH {
                victim.push_back(i, &Discard);
            }
            // Steal half at a time into the thief's ring, draining it each time, until the victim is empty.
            while let Some(item) = stealer.steal_into(&mut thief) {
                black_box(item);
                while let Some(item) = thief.pop() {
                    black_box(item);
                }
            }
        })
    });
    group.bench_function(BenchmarkId::new("crossbeam_steal_batch", BATCH), |b| {
        let victim = Worker::<u64>::new_fifo();
        let stealer = victim.stealer();
        let thief = Worker::<u64>::new_fifo();
        b.iter(|| {
            for i in 0..BATCH {
                victim.push(i);
            }
            while let Steal::Success(item) = stealer.steal_batch_and_pop(&thief) {
                black_box(item);
                while let Some(item) = thief.pop() {
                    black_box(item);
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, push_pop, steal);
criterion_main!(benches);
