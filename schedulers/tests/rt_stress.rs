//! Stress: wakes across workers, cancellation racing with running tasks, panics, shutdown under load, pollers under
//! a flood of tasks. Each test ends by checking that every task finished or was cancelled and nothing leaked.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

mod common;
use common::Live;
use weir_schedulers::rt::{self, Runtime, Shutdown};
use weir_schedulers::{Idle, SpawnError};

/// Scale down under Miri, which runs ~1000x slower.
const fn scaled(n: usize) -> usize {
    if cfg!(miri) { n / 100 + 2 } else { n }
}

#[derive(Default)]
struct Signal {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}
impl Signal {
    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        if let Some(w) = self.waker.lock().unwrap().take() {
            w.wake();
        }
    }
    fn reset(&self) {
        self.fired.store(false, Ordering::Release);
    }
}
struct Wait(Arc<Signal>);
impl Future for Wait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.fired.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.0.fired.swap(false, Ordering::AcqRel) { Poll::Ready(()) } else { Poll::Pending }
    }
}

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().unpinned_workers(workers).idle(Idle::SpinThenPark { spins: 8 }).build().unwrap()
}

#[test]
fn ring_of_tasks_waking_each_other_across_workers() {
    let rt = runtime(2);
    let n = scaled(500);
    let rounds = if cfg!(miri) { 2 } else { 50 };
    let signals: Vec<Arc<Signal>> = (0..n).map(|_| Arc::new(Signal::default())).collect();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let me = signals[i].clone();
            let next = signals[(i + 1) % n].clone();
            // Half stealable, half pinned alternately to each worker: wakes cross every kind of queue.
            let task = async move {
                for _ in 0..rounds {
                    Wait(me.clone()).await;
                    next.fire();
                }
            };
            if i % 2 == 0 { rt.spawn(task).unwrap() } else { rt.spawn_on(i / 2 % 2, task).unwrap() }
        })
        .collect();
    signals[0].fire();
    for h in handles {
        rt.block_on(h).unwrap();
    }
    // The last fire went to task 0, which had finished its rounds.
    signals[0].reset();
    assert_eq!(rt.handle().live_tasks(), 0);
}

#[test]
fn aborts_race_with_running_tasks() {
    let rt = runtime(2);
    let live = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let n = scaled(5_000);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let l = Live::track(&live);
            let finished = finished.clone();
            rt.spawn(async move {
                let _l = l;
                for _ in 0..(i % 20) {
                    rt::yield_now().await;
                }
                finished.fetch_add(1, Ordering::SeqCst);
                i
            })
            .unwrap()
        })
        .collect();
    // Abort every other task from this thread while the workers run them.
    for h in handles.iter().step_by(2) {
        h.abort();
    }
    let (mut ok, mut cancelled) = (0, 0);
    for (i, h) in handles.into_iter().enumerate() {
        match rt.block_on(h) {
            Ok(value) => {
                assert_eq!(value, i);
                ok += 1;
            }
            Err(e) => {
                assert!(e.is_cancelled(), "{e}");
                assert_eq!(i % 2, 0, "task {i} was never aborted");
                cancelled += 1;
            }
        }
    }
    assert_eq!(ok + cancelled, n);
    assert_eq!(ok, finished.load(Ordering::SeqCst));
    assert_eq!(live.load(Ordering::SeqCst), 0, "futures leaked");
    assert_eq!(rt.handle().live_tasks(), 0);
}

#[test]
fn panics_are_contained() {
    let rt = runtime(2);
    let n = scaled(3_000);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            rt.spawn(async move {
                rt::yield_now().await;
                if i % 7 == 0 {
                    panic!("task {i} fails on purpose");
                }
                i
            })
            .unwrap()
        })
        .collect();
    let mut panics = 0;
    for (i, h) in handles.into_iter().enumerate() {
        match rt.block_on(h) {
            Ok(v) => assert_eq!(v, i),
            Err(e) => {
                assert!(e.is_panic() && e.to_string().contains(&format!("task {i} fails")), "{e}");
                panics += 1;
            }
        }
    }
    assert_eq!(panics, n.div_ceil(7));
}

#[test]
fn shutdown_under_load_cancels_everything_and_leaks_nothing() {
    let rt = runtime(2);
    let live = Arc::new(AtomicUsize::new(0));
    let n = scaled(10_000);
    let mut handles = Vec::new();
    for i in 0..n {
        let l = Live::track(&live);
        let signal = Arc::new(Signal::default());
        handles.push(
            rt.spawn(async move {
                let _l = l;
                if i % 3 == 0 {
                    Wait(signal).await; // parked forever
                }
                loop {
                    rt::yield_now().await; // busy forever
                }
            })
            .unwrap(),
        );
    }
    std::thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 50 }));
    let report = rt.shutdown(Shutdown::Cancel);
    assert_eq!(report.alive_at_start, n);
    for h in handles {
        assert!(rt::block_on(h).unwrap_err().is_cancelled());
    }
    assert_eq!(live.load(Ordering::SeqCst), 0, "futures leaked");
}

#[test]
fn spawns_after_shutdown_are_refused() {
    let rt = runtime(1);
    let handle = rt.handle().clone();
    drop(rt);
    assert_eq!(handle.spawn(async {}).unwrap_err(), SpawnError::ShuttingDown);
}

#[test]
fn pollers_run_every_turn_while_tasks_flood() {
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let budget = 16;
    let rt = Runtime::builder()
        .unpinned_workers(2)
        .task_budget(budget)
        .idle_on(0, Idle::BusyPoll)
        .poller(0, move || {
            c.fetch_add(1, Ordering::Relaxed);
            false
        })
        .build()
        .unwrap();
    let n = scaled(2_000);
    let handles: Vec<_> = (0..n)
        .map(|_| {
            rt.spawn_on(0, async {
                for _ in 0..10 {
                    rt::yield_now().await;
                }
            })
            .unwrap()
        })
        .collect();
    for h in handles {
        rt.block_on(h).unwrap();
    }
    // Final counters: published at worker exit.
    let handle = rt.handle().clone();
    drop(rt);
    let stats = handle.stats();
    let w0 = stats[0];
    // Every turn calls the poller once, and a turn runs at most `budget` tasks.
    assert!(w0.poller_calls >= w0.turns.saturating_sub(1), "{w0:?}");
    assert!(w0.tasks_polled <= w0.turns * budget as u64, "{w0:?}");
    assert!(w0.tasks_polled >= (n * 11) as u64, "{w0:?}");
    assert!(calls.load(Ordering::Relaxed) >= w0.tasks_polled / budget as u64);
    assert_eq!(stats[1].tasks_polled, 0, "pinned tasks ran on worker 1: {:?}", stats[1]);
}

#[test]
fn idle_workers_steal_from_a_busy_one() {
    let rt = runtime(2);
    let on_worker = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let handle = rt.handle().clone();
    let counts = on_worker.clone();
    let n = scaled(20_000);
    rt.block_on(async move {
        // One task spawns everything onto its own worker's ring; the other worker must steal to help.
        let h = handle.clone();
        handle
            .spawn_on(0, async move {
                let tasks: Vec<_> = (0..n)
                    .map(|_| {
                        let counts = counts.clone();
                        let h = h.clone();
                        h.clone()
                            .spawn(async move {
                                let spin = std::time::Instant::now();
                                while spin.elapsed() < Duration::from_micros(2) {}
                                counts[h.current_worker().unwrap()].fetch_add(1, Ordering::Relaxed);
                            })
                            .unwrap()
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
            .unwrap()
            .await
            .unwrap()
    });
    let handle = rt.handle().clone();
    drop(rt);
    let stats = handle.stats();
    assert!(stats[1].steals + stats[1].injector_pulls > 0, "worker 1 never took work: {stats:?}");
    assert!(on_worker[1].load(Ordering::Relaxed) > 0, "worker 1 ran nothing");
}
