//! The `std` layer: pinned worker threads, parking, `block_on`, shutdown.
//!
//! ```
//! use weir_schedulers::rt::Runtime;
//!
//! let runtime = Runtime::builder().unpinned_workers(2).build().unwrap();
//! let sum = runtime.block_on(async {
//!     let parts: Vec<_> = (0..10u64).map(|i| weir_schedulers::rt::spawn(async move { i * i }).unwrap()).collect();
//!     let mut sum = 0;
//!     for part in parts {
//!         sum += part.await.unwrap();
//!     }
//!     sum
//! });
//! assert_eq!(sum, 285);
//! ```
//!
//! Shutdown, step by step (what [`Runtime::shutdown`] and `Drop` do):
//! 1. `Drain { timeout_ns }` only: wait (sleeping 100 µs at a time) until no task is alive or the timeout passes;
//!    the workers keep running meanwhile.
//! 2. Close: spawns fail with `ShuttingDown`; every worker is woken and leaves its loop after the current turn.
//! 3. Each worker drops its queued entries unpolled and cancels its own `spawn_local` tasks, on its thread.
//! 4. The shutting-down thread cancels every task still alive (idle or queued), in owned-list order, dropping their
//!    futures there (they are `Send`); then drops the injector's and inboxes' entries and the timers' wakers.
//!
//! Every `JoinHandle` of a task that did not finish resolves to a cancelled `JoinError`; no task memory is leaked.

// The std layer: std paths are the point here.
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::executor::{self, Config, Handle, Idle, Park, Poller, TaskStorage, WorkerStats};
use crate::time::{Clock, Sleep, Timeout, TscClock};
use crate::{JoinHandle, SpawnError};

/// Configures and starts a [`Runtime`].
pub struct Builder {
    cpus: Vec<Option<u32>>,
    idle: Idle,
    idle_on: Vec<(usize, Idle)>,
    pollers: Vec<(usize, Box<dyn Poller>)>,
    task_budget: u32,
    storage: TaskStorage,
    timers_per_worker: usize,
    timer_tick_ns: u64,
    topology: Option<weir_hw::Topology>,
    clock: Option<Arc<dyn Clock>>,
    name: String,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").field("cpus", &self.cpus).field("idle", &self.idle).finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            cpus: Vec::new(),
            idle: Idle::default(),
            idle_on: Vec::new(),
            pollers: Vec::new(),
            task_budget: 64,
            storage: TaskStorage::Unbounded,
            timers_per_worker: 16_384,
            timer_tick_ns: 1 << 20, // ~1 ms
            topology: None,
            clock: None,
            name: "weir".into(),
        }
    }
}

impl Builder {
    /// One worker per CPU, each pinned to it (and the pinning read back) when the runtime starts.
    pub fn workers(mut self, cpus: impl IntoIterator<Item = u32>) -> Self {
        self.cpus = cpus.into_iter().map(Some).collect();
        self
    }

    /// `n` workers left to the OS scheduler.
    pub fn unpinned_workers(mut self, n: usize) -> Self {
        self.cpus = vec![None; n];
        self
    }

    /// A poller for `worker`, called every turn before its tasks. May be called several times per worker.
    pub fn poller(mut self, worker: usize, poller: impl Poller) -> Self {
        self.pollers.push((worker, Box::new(poller)));
        self
    }

    /// Several pollers at once: `(worker, poller)` pairs.
    pub fn pollers(mut self, pollers: impl IntoIterator<Item = (usize, Box<dyn Poller>)>) -> Self {
        self.pollers.extend(pollers);
        self
    }

    /// Idle policy for workers without pollers (default: spin 64 empty turns, then park). Workers with pollers
    /// busy-poll unless [`Builder::idle_on`] says otherwise: a parked worker does not call its pollers.
    pub fn idle(mut self, idle: Idle) -> Self {
        self.idle = idle;
        self
    }

    /// Idle policy for one worker, overriding the defaults above.
    pub fn idle_on(mut self, worker: usize, idle: Idle) -> Self {
        self.idle_on.push((worker, idle));
        self
    }

    /// Tasks polled per turn before the pollers run again (default 64).
    pub fn task_budget(mut self, budget: u32) -> Self {
        self.task_budget = budget;
        self
    }

    /// Reserve all task memory now: `slots` tasks of up to `slot_size` bytes; `spawn` fails when full.
    pub fn bounded(mut self, slots: usize, slot_size: usize) -> Self {
        self.storage = TaskStorage::Bounded { slots, slot_size };
        self
    }

    /// Timer entries reserved per worker (default 16,384); a sleep beyond that degrades to re-polling (counted).
    pub fn timers_per_worker(mut self, entries: usize) -> Self {
        self.timers_per_worker = entries;
        self
    }

    /// Timer resolution (default 2^20 ns, about 1 ms; rounded to a power of two).
    pub fn timer_tick_ns(mut self, ns: u64) -> Self {
        self.timer_tick_ns = ns;
        self
    }

    /// The machine's topology, for steal order (same NUMA node first). Default: one node.
    pub fn topology(mut self, topology: weir_hw::Topology) -> Self {
        self.topology = Some(topology);
        self
    }

    /// The clock for timers (default: [`TscClock`]; [`MonotonicClock`](crate::time::MonotonicClock) under Miri).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Thread name prefix (default `weir`): threads are `{prefix}-w{index}` or `{prefix}-w{index}-cpu{cpu}`.
    pub fn name(mut self, prefix: impl Into<String>) -> Self {
        self.name = prefix.into();
        self
    }

    /// Start the workers. Fails if a worker cannot be pinned (the error names the worker and CPU) or a thread
    /// cannot be spawned; any workers already started are stopped first.
    pub fn build(self) -> io::Result<Runtime> {
        let n = self.cpus.len();
        let invalid = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        if n == 0 {
            return invalid("a runtime needs at least one worker".into());
        }
        if self.timer_tick_ns == 0 || self.timer_tick_ns > 1 << 62 {
            return invalid(format!("timer tick of {} ns: must be in 1..=2^62", self.timer_tick_ns));
        }
        if self.timers_per_worker >= u32::MAX as usize {
            return invalid(format!("{} timers per worker: must be below 2^32 - 1", self.timers_per_worker));
        }
        if let TaskStorage::Bounded { slots, slot_size } = self.storage {
            if slots == 0 || slots >= u32::MAX as usize {
                return invalid(format!("bounded storage of {slots} slots: must be in 1..2^32 - 1"));
            }
            if slot_size.checked_next_multiple_of(64).and_then(|size| size.checked_mul(slots)).is_none() {
                return invalid(format!("bounded storage of {slots} slots of {slot_size} bytes overflows"));
            }
        }
        if let Some(&(worker, _)) = self.pollers.iter().find(|(w, _)| *w >= n) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("poller for worker {worker}, but there are {n} workers"),
            ));
        }
        // A worker with pollers busy-polls unless told otherwise: a parked worker does not poll its NIC.
        let mut idle = vec![self.idle; n];
        for &(worker, _) in &self.pollers {
            idle[worker] = Idle::BusyPoll;
        }
        for &(worker, policy) in &self.idle_on {
            *idle.get_mut(worker).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("idle policy for worker {worker} of {n}"))
            })? = policy;
        }
        let topology = self.topology.unwrap_or_else(|| weir_hw::Topology::flat(self.cpus.iter().flatten().copied()));
        let config = Config {
            idle,
            cpus: self.cpus.clone(),
            task_budget: self.task_budget,
            storage: self.storage,
            timers_per_worker: self.timers_per_worker,
            timer_tick_ns: self.timer_tick_ns,
            topology,
        };
        let park = Arc::new(ThreadPark { threads: (0..n).map(|_| OnceLock::new()).collect() });
        let clock = self.clock.unwrap_or_else(|| {
            // Miri cannot execute RDTSC.
            if cfg!(miri) { Arc::new(crate::time::MonotonicClock::new()) } else { Arc::new(TscClock::new()) }
        });
        let (handle, workers) = executor::new(config, Box::new(park.clone()), clock);
        let mut pollers: Vec<Vec<Box<dyn Poller>>> = (0..n).map(|_| Vec::new()).collect();
        for (worker, poller) in self.pollers {
            pollers[worker].push(poller);
        }
        let mut runtime = Runtime { handle, threads: Vec::with_capacity(n), shut_down: false };
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
        for (worker, pollers) in workers.into_iter().zip(pollers) {
            let index = worker.index();
            let cpu = self.cpus[index];
            let name = match cpu {
                Some(cpu) => format!("{}-w{index}-cpu{cpu}", self.name),
                None => format!("{}-w{index}", self.name),
            };
            let ready = ready_tx.clone();
            let park = park.clone();
            let spawned = thread::Builder::new().name(name).spawn(move || {
                let _ = park.threads[index].set(thread::current());
                if let Some(cpu) = cpu
                    && let Err(error) = pin(cpu)
                {
                    let _ = ready.send(Err(io::Error::new(
                        error.kind(),
                        format!("worker {index}: pinning to cpu {cpu}: {error}"),
                    )));
                    // Stay out of the loop; shutdown will find no work of ours.
                    drop(worker);
                    return;
                }
                let _ = ready.send(Ok(()));
                worker.run(pollers);
            });
            match spawned {
                Ok(thread) => runtime.threads.push(thread),
                Err(error) => {
                    runtime.stop();
                    return Err(error);
                }
            }
        }
        drop(ready_tx);
        let mut first_error = None;
        for _ in 0..n {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                Err(_) => {
                    first_error.get_or_insert_with(|| io::Error::other("a worker thread died while starting"));
                }
            }
        }
        if let Some(error) = first_error {
            runtime.stop();
            return Err(error);
        }
        Ok(runtime)
    }
}

#[cfg(target_os = "linux")]
fn pin(cpu: u32) -> io::Result<()> {
    weir_hw::pin::pin_current_thread(cpu)
}

#[cfg(not(target_os = "linux"))]
fn pin(cpu: u32) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, format!("pinning to cpu {cpu} is only implemented on Linux")))
}

/// Parks worker threads with `std::thread::park` (a futex on Linux; an unpark before the park is not lost).
struct ThreadPark {
    threads: Box<[OnceLock<Thread>]>,
}

impl Park for Arc<ThreadPark> {
    fn park(&self, _worker: usize, timeout_ns: Option<u64>) {
        match timeout_ns {
            Some(ns) => thread::park_timeout(Duration::from_nanos(ns)),
            None => thread::park(),
        }
    }

    fn unpark(&self, worker: usize) {
        if let Some(thread) = self.threads[worker].get() {
            thread.unpark();
        }
    }
}

/// How [`Runtime::shutdown`] treats tasks that are still alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Cancel them now.
    Cancel,
    /// Let them finish, for at most `timeout_ns` nanoseconds of wall time; cancel whatever is left after.
    Drain {
        /// Longest wait.
        timeout_ns: u64,
    },
}

/// What shutdown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Tasks alive when shutdown began.
    pub alive_at_start: usize,
    /// Tasks that finished during a drain.
    pub drained: usize,
    /// `Send` tasks cancelled by the shutting-down thread (workers cancel their own local tasks too).
    pub cancelled: usize,
}

/// A running set of worker threads. Dropping it shuts down with [`Shutdown::Cancel`].
pub struct Runtime {
    handle: Handle,
    threads: Vec<thread::JoinHandle<()>>,
    shut_down: bool,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("workers", &self.threads.len()).finish()
    }
}

impl Runtime {
    /// Start configuring.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A handle to spawn from anywhere.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Spawn a task any worker may run.
    pub fn spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Spawn a task only `worker` runs.
    pub fn spawn_on<F>(&self, worker: usize, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn_on(worker, future)
    }

    /// Every worker's counters.
    pub fn stats(&self) -> Vec<WorkerStats> {
        self.handle.stats()
    }

    /// Run `future` to completion on the calling thread (not a worker); tasks it spawns go to the workers.
    ///
    /// # Panics
    /// On a worker thread (of any runtime): blocking a worker would stall its pollers and could deadlock on a task
    /// only that worker may run.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        assert!(
            Handle::current().is_none(),
            "Runtime::block_on called on a worker thread; await the future instead (or spawn it)"
        );
        let _enter = enter_handle(&self.handle);
        block_on(future)
    }

    /// Shut down (see the module docs for the steps).
    pub fn shutdown(mut self, how: Shutdown) -> ShutdownReport {
        self.shutdown_inner(how)
    }

    fn shutdown_inner(&mut self, how: Shutdown) -> ShutdownReport {
        let alive_at_start = self.handle.live_tasks();
        let mut drained = 0;
        if let Shutdown::Drain { timeout_ns } = how {
            let until = Instant::now() + Duration::from_nanos(timeout_ns);
            while self.handle.live_tasks() > 0 && Instant::now() < until {
                thread::sleep(Duration::from_micros(100));
            }
            drained = alive_at_start.saturating_sub(self.handle.live_tasks());
        }
        let cancelled = self.stop();
        ShutdownReport { alive_at_start, drained, cancelled }
    }

    /// Steps 2-4 of shutdown. Idempotent.
    fn stop(&mut self) -> usize {
        if self.shut_down {
            return 0;
        }
        assert!(
            self.handle.current_worker().is_none(),
            "a weir Runtime was shut down (or dropped) on one of its own workers, which cannot join itself"
        );
        self.shut_down = true;
        self.handle.begin_shutdown();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        self.handle.cancel_remaining()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---- the current runtime of a thread that is not a worker (inside `block_on`) ----

thread_local! {
    static BLOCK_ON_HANDLE: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

struct HandleGuard(Option<Handle>);

fn enter_handle(handle: &Handle) -> HandleGuard {
    HandleGuard(BLOCK_ON_HANDLE.with(|slot| slot.replace(Some(handle.clone()))))
}

impl Drop for HandleGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        BLOCK_ON_HANDLE.with(|slot| *slot.borrow_mut() = previous);
    }
}

/// The runtime the current thread belongs to: its worker's, or the one whose `block_on` it is inside.
pub fn current() -> Option<Handle> {
    Handle::current().or_else(|| BLOCK_ON_HANDLE.with(|slot| slot.borrow().clone()))
}

fn current_or_panic(what: &str) -> Handle {
    current().unwrap_or_else(|| panic!("weir_schedulers::rt::{what} called outside a runtime (no worker, no block_on)"))
}

/// Spawn onto the current runtime. Panics outside one (use a [`Handle`] there).
pub fn spawn<F>(future: F) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    current_or_panic("spawn").spawn(future)
}

/// Spawn a `!Send` task onto the current worker. Fails off a worker.
pub fn spawn_local<F>(future: F) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + 'static,
    F::Output: 'static,
{
    match Handle::current() {
        Some(handle) => handle.spawn_local(future),
        None => Err(SpawnError::NoSuchWorker),
    }
}

/// Sleep for `duration` on the current runtime's clock.
pub fn sleep(duration: Duration) -> Sleep {
    let handle = current_or_panic("sleep");
    Sleep::for_ns(handle, duration.as_nanos().min(u64::MAX as u128) as u64)
}

/// Run `future` with a time limit on the current runtime's clock.
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout::new(future, sleep(duration))
}

/// Let other tasks run: completes on its second poll, after going to the back of the queue.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Run a future to completion on the calling thread, parking it between polls.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct ThreadWaker {
        thread: Thread,
        notified: AtomicBool,
    }
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            if !self.notified.swap(true, Ordering::Release) {
                self.thread.unpark();
            }
        }
    }
    let signal = Arc::new(ThreadWaker { thread: thread::current(), notified: AtomicBool::new(false) });
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        while !signal.notified.swap(false, Ordering::Acquire) {
            thread::park();
        }
    }
}
