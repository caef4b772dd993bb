//! The executor against tokio, same group, same run, same workload code (a macro stamps it out per runtime):
//!
//! - `spawn_1m`: one task spawns 1,000,000 empty tasks; the last to run signals completion.
//! - `ping_pong_100k`: two tasks hand a baton back and forth 100,000 times (200,000 wakes).
//! - `wake_chain_100k`: 100,000 parked tasks, each woken by the previous one (timed from the first wake).
//! - `fan_out_in_100k`: one task spawns 100,000 tasks, keeps their join handles and sums their outputs.
//!
//! Runtimes: weir with 2 workers and with 1, tokio multi-thread with 2 workers and current-thread. Workers are left
//! unpinned in both (the machine has 2 cores, and `block_on`'s thread needs one too). Per-task cost = time / tasks;
//! the ratio to tokio multi-thread is the figure the runtime issue sets (at most 0.5).
//!
//! `cargo bench --bench executor`

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Pending until fired; runtime-agnostic (plain `std` wakers).
#[derive(Debug, Default)]
pub(crate) struct Signal {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    pub(crate) fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
    pub(crate) fn wait(self: &Arc<Self>) -> SignalWait {
        SignalWait(self.clone())
    }
}

#[derive(Debug)]
pub(crate) struct SignalWait(Arc<Signal>);

impl Future for SignalWait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.0.fired.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
    }
}

/// A baton two tasks pass: task `side` may run when `turn % 2 == side`.
#[derive(Debug, Default)]
pub(crate) struct Baton {
    state: Mutex<(u64, [Option<Waker>; 2])>,
}

impl Baton {
    pub(crate) fn take(self: &Arc<Self>, side: u64, turn: u64) -> TakeBaton {
        TakeBaton { baton: self.clone(), side, turn }
    }
}

#[derive(Debug)]
pub(crate) struct TakeBaton {
    baton: Arc<Baton>,
    side: u64,
    turn: u64,
}

impl Future for TakeBaton {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.baton.state.lock().unwrap();
        if state.0 == self.turn {
            // Pass it on: advance the turn and wake the other side.
            state.0 += 1;
            let other = state.1[(1 - self.side) as usize].take();
            drop(state);
            if let Some(waker) = other {
                waker.wake();
            }
            Poll::Ready(())
        } else {
            state.1[self.side as usize] = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

macro_rules! workloads {
    ($name:ident, $spawn:expr, $yield_now:path) => {
        mod $name {
            use super::*;

            pub(crate) async fn spawn_many(n: usize) {
                let done = Arc::new(Signal::default());
                let remaining = Arc::new(AtomicUsize::new(n));
                for _ in 0..n {
                    let remaining = remaining.clone();
                    let done = done.clone();
                    drop($spawn(async move {
                        if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                            done.fire();
                        }
                    }));
                }
                done.wait().await;
            }

            pub(crate) async fn ping_pong(rounds: u64) {
                let baton = Arc::new(Baton::default());
                let sides: Vec<_> = (0..2u64)
                    .map(|side| {
                        let baton = baton.clone();
                        $spawn(async move {
                            let mut turn = side;
                            while turn < 2 * rounds {
                                baton.take(side, turn).await;
                                turn += 2;
                            }
                        })
                    })
                    .collect();
                for side in sides {
                    side.await.unwrap();
                }
            }

            /// `n` parked tasks, each woken by the previous one: returns the time from the first wake to the last.
            pub(crate) async fn wake_chain(n: usize) -> Duration {
                let signals: Vec<Arc<Signal>> = (0..=n).map(|_| Arc::new(Signal::default())).collect();
                let parked = Arc::new(AtomicUsize::new(0));
                for i in 0..n {
                    let me = signals[i].clone();
                    let next = signals[i + 1].clone();
                    let parked = parked.clone();
                    drop($spawn(async move {
                        parked.fetch_add(1, Ordering::AcqRel);
                        me.wait().await;
                        next.fire();
                    }));
                }
                while parked.load(Ordering::Acquire) < n {
                    $yield_now().await;
                }
                let start = Instant::now();
                signals[0].fire();
                signals[n].wait().await;
                start.elapsed()
            }

            pub(crate) async fn fan_out_in(n: u64) -> u64 {
                let handles: Vec<_> = (0..n).map(|i| $spawn(async move { i })).collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await.unwrap();
                }
                sum
            }
        }
    };
}

workloads!(on_weir, |f| weir_schedulers::rt::spawn(f).unwrap(), weir_schedulers::rt::yield_now);
workloads!(on_tokio, tokio::spawn, tokio::task::yield_now);

/// One runtime under test: how to run a future to completion on it (from inside a spawned task, so the workload's
/// spawns happen on a worker, as in tokio's own benches).
enum Rt {
    Weir(weir_schedulers::rt::Runtime),
    Tokio(tokio::runtime::Runtime),
}

impl Rt {
    fn all() -> Vec<(&'static str, Rt)> {
        let weir = |n| Rt::Weir(weir_schedulers::rt::Runtime::builder().unpinned_workers(n).build().unwrap());
        vec![
            ("weir_2_workers", weir(2)),
            (
                "tokio_multi_thread_2",
                Rt::Tokio(tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap()),
            ),
            ("weir_1_worker", weir(1)),
            ("tokio_current_thread", Rt::Tokio(tokio::runtime::Builder::new_current_thread().build().unwrap())),
        ]
    }
}

macro_rules! run_on {
    ($rt:expr, $workload:ident ( $($arg:expr),* )) => {
        match $rt {
            Rt::Weir(rt) => rt.block_on(async {
                weir_schedulers::rt::spawn(async move { on_weir::$workload($($arg),*).await }).unwrap().await.unwrap()
            }),
            Rt::Tokio(rt) => rt.block_on(async {
                tokio::spawn(async move { on_tokio::$workload($($arg),*).await }).await.unwrap()
            }),
        }
    };
}

fn executor(c: &mut Criterion) {
    let runtimes = Rt::all();

    let mut group = c.benchmark_group("executor/spawn_1m");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(1_000_000));
    for (name, rt) in &runtimes {
        group.bench_function(BenchmarkId::from_parameter(name), |b| b.iter(|| run_on!(rt, spawn_many(1_000_000))));
    }
    group.finish();

    let mut group = c.benchmark_group("executor/ping_pong_100k");
    group.sample_size(10).measurement_time(Duration::from_secs(6)).throughput(Throughput::Elements(200_000));
    for (name, rt) in &runtimes {
        group.bench_function(BenchmarkId::from_parameter(name), |b| b.iter(|| run_on!(rt, ping_pong(100_000))));
    }
    group.finish();

    let mut group = c.benchmark_group("executor/wake_chain_100k");
    group.sample_size(10).measurement_time(Duration::from_secs(6)).throughput(Throughput::Elements(100_000));
    for (name, rt) in &runtimes {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run_on!(rt, wake_chain(100_000))).sum())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("executor/fan_out_in_100k");
    group.sample_size(10).measurement_time(Duration::from_secs(6)).throughput(Throughput::Elements(100_000));
    for (name, rt) in &runtimes {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| assert_eq!(run_on!(rt, fan_out_in(100_000)), 4_999_950_000))
        });
    }
    group.finish();
}

criterion_group!(benches, executor);
criterion_main!(benches);
