//! The runtime end to end: spawn and join, wakes across workers, pinning, local tasks, panics, cancellation,
//! bounded storage, timers on a manual clock, shutdown without leaks.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

mod common;
use common::Live;
use weir_schedulers::rt::{self, Runtime, Shutdown};
use weir_schedulers::time::ManualClock;
use weir_schedulers::{Idle, SpawnError};

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().unpinned_workers(workers).build().unwrap()
}

/// Pending until `fire` is called (from anywhere); any number of waiters.
#[derive(Clone, Default)]
struct Trigger(Arc<Mutex<(bool, Vec<Waker>)>>);
impl Trigger {
    fn fire(&self) {
        let wakers = {
            let mut state = self.0.lock().unwrap();
            state.0 = true;
            std::mem::take(&mut state.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}
impl Future for Trigger {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.0.lock().unwrap();
        if state.0 {
            Poll::Ready(())
        } else {
            state.1.push(cx.waker().clone());
            Poll::Pending
        }
    }
}

#[test]
fn spawn_and_join_many() {
    let rt = runtime(2);
    let total: u64 = rt.block_on(async {
        let handles: Vec<_> =
            (0..if cfg!(miri) { 100 } else { 10_000u64 }).map(|i| rt::spawn(async move { i }).unwrap()).collect();
        let mut total = 0;
        for handle in handles {
            total += handle.await.unwrap();
        }
        total
    });
    let n = if cfg!(miri) { 100 } else { 10_000u64 };
    assert_eq!(total, (0..n).sum::<u64>());
    // Counters are published at the end of each turn and at exit: read them after shutdown to see every poll.
    let handle = rt.handle().clone();
    drop(rt);
    let polled: u64 = handle.stats().iter().map(|s| s.tasks_polled).sum();
    assert!(polled >= n, "{polled}");
}

#[test]
fn tasks_spawned_inside_tasks_and_nested_joins() {
    let rt = runtime(2);
    let out = rt.block_on(async {
        rt::spawn(async {
            let inner: Vec<_> = (0..100).map(|i| rt::spawn(async move { i * 2 }).unwrap()).collect();
            let mut sum = 0;
            for h in inner {
                sum += h.await.unwrap();
            }
            sum
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(out, 9900);
}

#[test]
fn panic_is_returned_to_the_join_handle() {
    let rt = runtime(1);
    let err = rt.block_on(async { rt::spawn(async { panic!("boom {}", 7) }).unwrap().await.unwrap_err() });
    assert!(err.is_panic());
    assert!(err.to_string().contains("boom 7"), "{err}");
    // The worker survived.
    assert_eq!(rt.block_on(async { rt::spawn(async { 5 }).unwrap().await.unwrap() }), 5);
}

#[test]
fn abort_cancels_an_idle_task_and_drops_its_future() {
    let rt = runtime(2);
    let (live, count) = Live::new();
    let trigger = Trigger::default();
    let waiting = trigger.clone();
    let handle = rt
        .spawn(async move {
            let _live = live;
            waiting.await;
            1
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    handle.abort();
    let err = rt.block_on(handle).unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 0);
    trigger.fire(); // a late wake of a cancelled task is harmless
}

#[test]
fn spawn_on_runs_on_that_worker_only() {
    let rt = runtime(2);
    let handle = rt.handle().clone();
    let seen = rt.block_on(async move {
        let mut seen = Vec::new();
        for _ in 0..50 {
            let h = handle.clone();
            let on = handle
                .spawn_on(1, async move {
                    let mut workers = Vec::new();
                    for _ in 0..5 {
                        workers.push(h.current_worker());
                        rt::yield_now().await;
                    }
                    workers
                })
                .unwrap();
            seen.extend(on.await.unwrap());
        }
        seen
    });
    assert!(seen.iter().all(|w| *w == Some(1)), "{seen:?}");
    assert_eq!(rt.spawn_on(2, async {}).unwrap_err(), SpawnError::NoSuchWorker);
}

#[test]
fn spawn_local_runs_a_non_send_future_on_its_worker() {
    let rt = runtime(2);
    let handle = rt.handle().clone();
    let out = rt.block_on(async move {
        let h = handle.clone();
        handle
            .spawn(async move {
                let me = h.current_worker();
                let local = rt::spawn_local(async move {
                    let shared = std::rc::Rc::new(std::cell::Cell::new(0));
                    for i in 0..10 {
                        shared.set(shared.get() + i);
                        rt::yield_now().await;
                    }
                    (shared.get(), h.current_worker())
                })
                .unwrap();
                let (sum, ran_on) = local.await.unwrap();
                (sum, ran_on == me)
            })
            .unwrap()
            .await
            .unwrap()
    });
    assert_eq!(out, (45, true));
    // Off a worker it is an error, not a panic.
    assert_eq!(rt::spawn_local(async {}).unwrap_err(), SpawnError::NoSuchWorker);
}

#[test]
fn bounded_storage_refuses_when_full_and_recovers() {
    let rt = Runtime::builder().unpinned_workers(1).bounded(4, 256).build().unwrap();
    let trigger = Trigger::default();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let t = trigger.clone();
            rt.spawn(t).unwrap()
        })
        .collect();
    assert!(matches!(rt.spawn(async {}), Err(SpawnError::Full { slots: 4 })));
    let big = [0u8; 512];
    assert!(matches!(rt.spawn(async move { big.len() }), Err(SpawnError::TooLarge { .. })));
    trigger.fire();
    for h in handles {
        rt.block_on(h).unwrap();
    }
    // Slots come back once tasks and handles are gone.
    assert_eq!(rt.block_on(rt.spawn(async { 3 }).unwrap()).unwrap(), 3);
}

#[test]
fn shutdown_cancels_idle_tasks_without_leaks() {
    let (live, count) = Live::new();
    let rt = runtime(2);
    let mut handles = Vec::new();
    for _ in 0..100 {
        let l = live.clone();
        let t = Trigger::default();
        handles.push(
            rt.spawn(async move {
                let _l = l;
                t.await; // never fired: idle forever
            })
            .unwrap(),
        );
    }
    drop(live);
    std::thread::sleep(Duration::from_millis(20));
    let report = rt.shutdown(Shutdown::Cancel);
    assert_eq!(report.alive_at_start, 100);
    assert_eq!(report.cancelled, 100);
    assert_eq!(count.load(Ordering::SeqCst), 0, "futures leaked");
    for h in handles {
        assert!(rt::block_on(h).unwrap_err().is_cancelled());
    }
}

#[test]
fn drain_lets_tasks_finish() {
    let rt = runtime(2);
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        let d = done.clone();
        rt.spawn(async move {
            for _ in 0..if cfg!(miri) { 5 } else { 100 } {
                rt::yield_now().await;
            }
            d.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    let report = rt.shutdown(Shutdown::Drain { timeout_ns: 60_000_000_000 });
    assert_eq!(done.load(Ordering::SeqCst), 50);
    assert_eq!(report.cancelled, 0);
}

#[test]
fn timers_fire_on_the_injected_clock() {
    let clock = Arc::new(ManualClock::new(0));
    let rt = Runtime::builder()
        .unpinned_workers(2)
        .idle(Idle::SpinThenPark { spins: 16 })
        .timer_tick_ns(1_000)
        .clock(clock.clone())
        .build()
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for (i, ms) in [(0u32, 30u64), (1, 10), (2, 20)] {
        let order = order.clone();
        let handle = rt.handle().clone();
        handles.push(
            rt.spawn(async move {
                weir_schedulers::time::Sleep::for_ns(handle, ms * 1_000_000).await;
                order.lock().unwrap().push(i);
            })
            .unwrap(),
        );
    }
    std::thread::sleep(Duration::from_millis(30));
    assert!(order.lock().unwrap().is_empty(), "fired before the clock moved");
    // Move the clock to just before, then past, each deadline; each sleeper wakes exactly when its deadline passes.
    let wait_for = |len: usize| {
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while order.lock().unwrap().len() < len && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    for (deadline_ms, expect) in [(10u64, vec![1u32]), (20, vec![1, 2]), (30, vec![1, 2, 0])] {
        clock.set(deadline_ms * 1_000_000 - 1);
        std::thread::sleep(Duration::from_millis(if cfg!(miri) { 50 } else { 5 }));
        assert_eq!(order.lock().unwrap().len(), expect.len() - 1, "fired early at {deadline_ms} ms - 1 ns");
        clock.set(deadline_ms * 1_000_000);
        wait_for(expect.len());
        assert_eq!(*order.lock().unwrap(), expect);
    }
    assert_eq!(*order.lock().unwrap(), vec![1, 2, 0]);
    // Counters are published at the end of a turn, which may be just after the join handles resolved.
    let fired = || rt.stats().iter().map(|s| s.timers_fired).sum::<u64>();
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while fired() < 3 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(fired(), 3);
}

#[test]
#[cfg_attr(miri, ignore = "wall-clock timing under Miri is too slow to mean anything")]
fn timeout_on_the_real_clock() {
    let rt = runtime(1);
    let out = rt.block_on(async {
        rt::spawn(async {
            let slow = rt::timeout(Duration::from_millis(5), Trigger::default()).await;
            let fast = rt::timeout(Duration::from_secs(5), async { 7 }).await;
            (slow, fast)
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(out, (Err(weir_schedulers::time::Elapsed), Ok(7)));
}

#[test]
#[cfg_attr(miri, ignore = "Miri does not implement sched_setaffinity")]
fn pinned_workers_report_their_cpu() {
    let cpus = weir_hw::pin::current_thread_affinity().unwrap();
    let rt = Runtime::builder().workers(cpus.iter().copied().take(2)).build().unwrap();
    let handle = rt.handle().clone();
    for (worker, cpu) in cpus.iter().take(2).enumerate() {
        let on = rt
            .block_on(rt.spawn_on(worker, async { weir_hw::pin::current_thread_affinity().unwrap() }).unwrap())
            .unwrap();
        assert_eq!(on, vec![*cpu]);
    }
    assert_eq!(handle.worker_cpus(), cpus.iter().take(2).map(|c| Some(*c)).collect::<Vec<_>>());
    // A CPU the process may not use is an error naming the worker and CPU.
    let err = Runtime::builder().workers([4000]).build().unwrap_err();
    assert!(err.to_string().contains("worker 0") && err.to_string().contains("cpu 4000"), "{err}");
}

#[test]
fn builder_errors_name_the_problem() {
    let err = Runtime::builder().unpinned_workers(1).poller(3, || false).build().unwrap_err();
    assert!(err.to_string().contains("worker 3"), "{err}");
    let err = Runtime::builder().build().unwrap_err();
    assert!(err.to_string().contains("at least one worker"), "{err}");
    let err = Runtime::builder().unpinned_workers(1).idle_on(2, Idle::BusyPoll).build().unwrap_err();
    assert!(err.to_string().contains("worker 2"), "{err}");
    let err = Runtime::builder().unpinned_workers(1).timer_tick_ns(0).build().unwrap_err();
    assert!(err.to_string().contains("timer tick of 0 ns"), "{err}");
    let err = Runtime::builder().unpinned_workers(1).bounded(0, 256).build().unwrap_err();
    assert!(err.to_string().contains("0 slots"), "{err}");
    let err = Runtime::builder().unpinned_workers(1).bounded(1 << 20, usize::MAX / 2).build().unwrap_err();
    assert!(err.to_string().contains("overflows"), "{err}");
}

#[test]
fn block_on_inside_a_task_is_refused_not_deadlocked() {
    let rt = Arc::new(runtime(1));
    let inner = rt.clone();
    let err = rt.block_on(rt.spawn(async move { inner.block_on(async { 1 }) }).unwrap()).unwrap_err();
    assert!(err.is_panic() && err.to_string().contains("worker thread"), "{err}");
    drop(rt);
}

#[test]
#[cfg_attr(miri, ignore = "Miri's emulated clock passes the 30 ms in a few turns, before any park")]
fn a_sleeping_worker_parks_instead_of_spinning_to_the_deadline() {
    // A coarse tick (16.8 ms), so that the 30 ms deadline sits well inside the tick the worker wakes into.
    let rt = Runtime::builder()
        .unpinned_workers(1)
        .idle(Idle::SpinThenPark { spins: 16 })
        .timer_tick_ns(1 << 24)
        .build()
        .unwrap();
    rt.block_on(async { rt::spawn(async { rt::sleep(Duration::from_millis(30)).await }).unwrap().await.unwrap() });
    let handle = rt.handle().clone();
    drop(rt);
    let stats = handle.stats()[0];
    // Spinning through the rest of the deadline's tick would be thousands of turns; parking until the exact
    // deadline is a few dozen.
    assert!(stats.turns < 1_000, "{stats:?}");
    assert!(stats.parks >= 1, "{stats:?}");
}

#[test]
fn pollers_run_on_their_own_worker() {
    // (worker the poller belongs to, worker it ran on)
    type Seen = Arc<Mutex<Vec<(usize, Option<usize>)>>>;
    let seen: Seen = Arc::default();
    let rt = Runtime::builder()
        .unpinned_workers(2)
        .pollers((0..2).map(|worker| {
            let seen = seen.clone();
            let mut calls = 0;
            let poller: Box<dyn weir_schedulers::Poller> = Box::new(move || {
                if calls < 3 {
                    calls += 1;
                    seen.lock().unwrap().push((worker, rt::current().and_then(|h| h.current_worker())));
                }
                false
            });
            (worker, poller)
        }))
        .build()
        .unwrap();
    while seen.lock().unwrap().len() < 6 {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rt);
    assert!(seen.lock().unwrap().iter().all(|(worker, ran_on)| Some(*worker) == *ran_on), "{:?}", seen.lock().unwrap());
}
