//! Bounded mode's promise: after start-up, spawning, waking, stealing, timers and completing tasks allocate
//! nothing. A counting global allocator counts allocations made on worker threads (marked by a poller on its first
//! call); the second round of work, after a warm-up round, must make none.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use weir_schedulers::rt::{self, Runtime};
use weir_schedulers::time::Sleep;

struct Counting;

/// Allocations on worker threads, one counter per test (the tests run in parallel in one process, and each test's
/// workers must count only into its own).
static WORKER_ALLOCS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
const BOUNDED: usize = 0;
const UNBOUNDED: usize = 1;

thread_local! {
    /// Which test's worker this thread is, if any.
    static ON_WORKER: Cell<Option<usize>> = const { Cell::new(None) };
}

// SAFETY: forwards to the system allocator; the counter and thread-local flag do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some(test) = ON_WORKER.try_with(|on| on.get()).unwrap_or(None) {
            WORKER_ALLOCS[test].fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One round: a task on the workers spawns `n` tasks that yield, sleep a little, count down a shared counter, and
/// finish; it waits for all of them. The counters are made by the caller, off the workers.
async fn round(handle: weir_schedulers::Handle, n: usize, remaining: Arc<AtomicUsize>, done: Arc<AtomicBool>) {
    remaining.store(n, Ordering::Release);
    done.store(false, Ordering::Release);
    for i in 0..n {
        let remaining = remaining.clone();
        let done = done.clone();
        let h = handle.clone();
        // Bounded storage: a refused spawn would be a test failure, not a silent drop.
        drop(
            handle
                .spawn(async move {
                    rt::yield_now().await;
                    if i % 8 == 0 {
                        Sleep::for_ns(h, 10_000).await;
                    }
                    if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                        done.store(true, Ordering::Release);
                    }
                })
                .expect("bounded storage refused a spawn"),
        );
    }
    while !done.load(Ordering::Acquire) {
        rt::yield_now().await;
    }
}

fn run_round(rt: &Runtime, n: usize) {
    let (remaining, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let h = rt.handle().clone();
    rt.block_on(async move { rt::spawn(round(h, n, remaining, done)).unwrap().await.unwrap() });
}

#[test]
#[cfg_attr(miri, ignore = "counts allocations of a real run; Miri's own bookkeeping is not the point")]
fn bounded_runtime_allocates_nothing_after_warm_up() {
    let rt = Runtime::builder()
        .unpinned_workers(2)
        .bounded(2048, 256)
        .timers_per_worker(1024)
        .poller(0, || {
            ON_WORKER.with(|on| on.set(Some(BOUNDED)));
            false
        })
        .poller(1, || {
            ON_WORKER.with(|on| on.set(Some(BOUNDED)));
            false
        })
        .build()
        .unwrap();
    // Warm-up: first-use costs (thread-local initialisation) happen here.
    run_round(&rt, 1000);
    std::thread::sleep(Duration::from_millis(10));
    let before = WORKER_ALLOCS[BOUNDED].load(Ordering::Relaxed);
    for _ in 0..3 {
        run_round(&rt, 1000);
    }
    let after = WORKER_ALLOCS[BOUNDED].load(Ordering::Relaxed);
    assert!(before > 0 || after == 0, "the counter never saw a worker allocation at all: is the flag set?");
    assert_eq!(after - before, 0, "worker threads allocated {} times after warm-up", after - before);
}

#[test]
#[cfg_attr(miri, ignore = "counts allocations of a real run")]
fn unbounded_runtime_allocates_per_spawn() {
    // The counter works: the same round on an unbounded runtime allocates on the workers.
    let rt = Runtime::builder()
        .unpinned_workers(1)
        .poller(0, || {
            ON_WORKER.with(|on| on.set(Some(UNBOUNDED)));
            false
        })
        .build()
        .unwrap();
    run_round(&rt, 100);
    let before = WORKER_ALLOCS[UNBOUNDED].load(Ordering::Relaxed);
    run_round(&rt, 100);
    assert!(WORKER_ALLOCS[UNBOUNDED].load(Ordering::Relaxed) - before >= 100);
}
