//! The scheduler: shared state, spawning, waking, parking, timers. `no_std` + `alloc`; threads come from the
//! `std` layer ([`crate::rt`]) or from whoever calls [`Worker::run`] on each core.
//!
//! Where a woken task goes:
//!
//! | task | woken on its runtime's worker | woken elsewhere |
//! |---|---|---|
//! | stealable, woken by another task | that worker's LIFO slot (runs next; the one it displaces goes to the ring) | global injector |
//! | stealable, spawned or yielding | back of that worker's ring | global injector |
//! | pinned (`spawn_on`, `spawn_local`) | its worker's private FIFO if on it, else that worker's inbox | its worker's inbox |
//!
//! Parking (idle protocol, tokio's in miniature):
//! 1. A pusher publishes work, then `fence(SeqCst)`, then reads `num_searching` and `num_parked`; if nobody is
//!    searching and someone is parked it clears one worker's `parked` flag, counts it as searching and unparks it.
//! 2. A worker about to park sets its `parked` flag and `num_parked` (SeqCst), fences, then looks at every queue
//!    once more; any work and it un-parks itself. So either the pusher sees the flag or the worker sees the work.
//! 3. A searching worker that finds work stops searching; if it was the last searcher it wakes another parked worker
//!    (there may be more work), which keeps one thief awake while work keeps arriving.

mod context;
pub(crate) mod stats;
mod steal_order;
pub(crate) mod worker;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::future::Future;
use core::ptr::NonNull;
use core::task::Waker;

pub use stats::WorkerStats;
pub use worker::Worker;

use crate::SpawnError;
use crate::queue::inject::Inject;
use crate::queue::local::{self, Stealer};
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, CachePadded, Mutex, Ordering, fence};
use crate::task::list::{List, OwnedTasks};
use crate::task::storage::{Slab, Storage};
use crate::task::{self, JoinHandle, Notified, Placement, Schedule, Task, TaskId, UNPINNED};
use crate::time::Clock;
use crate::time::wheel::{TimerKey, Wheel};
use stats::SharedStats;

/// What an idle worker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Never sleep: turn the loop as fast as possible. For workers whose pollers must never be delayed (NIC queues).
    BusyPoll,
    /// After `spins` turns in a row without work, park until woken (new work, a timer, shutdown).
    SpinThenPark {
        /// Empty turns before parking.
        spins: u32,
    },
}

impl Default for Idle {
    fn default() -> Self {
        Idle::SpinThenPark { spins: 64 }
    }
}

/// A function a worker calls every turn before running tasks, on that worker only: a NIC receive queue, a feed
/// handler. Returns `true` if it found work (counts the turn as busy).
pub trait Poller: Send + 'static {
    /// Poll once.
    fn poll(&mut self) -> bool;
}

impl<F: FnMut() -> bool + Send + 'static> Poller for F {
    fn poll(&mut self) -> bool {
        self()
    }
}

/// How parked workers sleep and wake: threads under `std`, something else on bare metal.
pub trait Park: Send + Sync + 'static {
    /// Sleep until `unpark(worker)` (or spuriously), at most `timeout_ns` if given.
    fn park(&self, worker: usize, timeout_ns: Option<u64>);
    /// Wake `worker` (a wake before the park is not lost).
    fn unpark(&self, worker: usize);
}

/// Where task memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStorage {
    /// One heap allocation per spawn.
    Unbounded,
    /// `slots` slots of `slot_size` bytes reserved at build; `spawn` fails when all are used. No allocation after
    /// start-up (as long as no worker's ring overflows the injector, which is intrusive, and timers stay within
    /// their reserved capacity).
    Bounded {
        /// Number of task slots.
        slots: usize,
        /// Bytes per slot (rounded up to 64); a task needs its future, its output and a ~100-byte header.
        slot_size: usize,
    },
}

/// Everything a runtime's scheduler needs, fixed at build.
#[derive(Debug, Clone)]
pub struct Config {
    /// Per worker: the idle policy.
    pub idle: Vec<Idle>,
    /// Per worker: its CPU (for steal order and reports), if pinned.
    pub cpus: Vec<Option<u32>>,
    /// Tasks polled per turn before the pollers run again.
    pub task_budget: u32,
    /// Task storage.
    pub storage: TaskStorage,
    /// Timer entries per worker, reserved at build.
    pub timers_per_worker: usize,
    /// Timer wheel resolution.
    pub timer_tick_ns: u64,
    /// Steal victim order by NUMA node.
    pub topology: weir_hw::Topology,
}

pub(crate) struct TimerShard {
    wheel: Mutex<Wheel<Waker>>,
    /// Earliest expiry in the wheel (`u64::MAX` when empty): read every turn without the lock.
    next: AtomicU64,
}

pub(crate) struct WorkerShared {
    pub(crate) stealer: Stealer<Notified>,
    /// Pinned tasks sent from other threads.
    pub(crate) inbox: Inject,
    /// `spawn_local` tasks (not `Send`): cancelled by this worker's own thread at shutdown.
    pub(crate) local_owned: Mutex<List>,
    pub(crate) stats: CachePadded<SharedStats>,
    pub(crate) timers: TimerShard,
    pub(crate) parked: CachePadded<AtomicBool>,
    pub(crate) steal_order: Box<[u32]>,
    pub(crate) idle: Idle,
    pub(crate) cpu: Option<u32>,
    /// NUMA node of `cpu` (0 when unpinned or unknown).
    pub(crate) numa_node: u32,
}

pub(crate) struct Shared {
    pub(crate) workers: Box<[WorkerShared]>,
    pub(crate) inject: Inject,
    pub(crate) owned: OwnedTasks,
    pub(crate) storage: Storage,
    pub(crate) park: Box<dyn Park>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) task_budget: u32,
    pub(crate) timers_per_worker: usize,
    pub(crate) num_parked: CachePadded<AtomicUsize>,
    pub(crate) num_searching: CachePadded<AtomicUsize>,
    pub(crate) shutdown: AtomicBool,
    /// Ids for tasks spawned off the workers (workers number their own).
    next_id: AtomicU64,
    /// Sleeps that found their timer wheel full and fell back to re-polling.
    pub(crate) timer_overflows: AtomicU64,
}

/// A cheap, cloneable reference to a runtime's scheduler: spawn onto it from anywhere.
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl core::fmt::Debug for Handle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handle").field("workers", &self.shared.workers.len()).finish()
    }
}

/// Build a scheduler: the shared state plus one [`Worker`] per configured worker, each to be run on its own thread
/// (pinned, if the caller pins it) with [`Worker::run`].
pub fn new(config: Config, park: Box<dyn Park>, clock: Arc<dyn Clock>) -> (Handle, Vec<Worker>) {
    let n = config.cpus.len();
    assert!(n > 0 && config.idle.len() == n, "one idle policy and one cpu entry per worker");
    let orders = steal_order::steal_order(&config.cpus, &config.topology);
    let now = clock.now_ns();
    let mut locals = Vec::with_capacity(n);
    let workers: Box<[WorkerShared]> = orders
        .into_iter()
        .enumerate()
        .map(|(index, order)| {
            let (local, stealer) = local::new(local::DEFAULT_CAPACITY);
            locals.push(local);
            WorkerShared {
                stealer,
                inbox: Inject::new(),
                local_owned: Mutex::new(List::default()),
                stats: CachePadded(SharedStats::default()),
                timers: TimerShard {
                    wheel: Mutex::new(Wheel::new(config.timers_per_worker, config.timer_tick_ns, now)),
                    next: AtomicU64::new(u64::MAX),
                },
                parked: CachePadded(AtomicBool::new(false)),
                steal_order: order.into_boxed_slice(),
                idle: config.idle[index],
                cpu: config.cpus[index],
                numa_node: config.cpus[index].and_then(|cpu| config.topology.node_of(cpu)).unwrap_or(0),
            }
        })
        .collect();
    let storage = match config.storage {
        TaskStorage::Unbounded => Storage::Heap,
        TaskStorage::Bounded { slots, slot_size } => Storage::Slab(Slab::new(slots, slot_size)),
    };
    let shared = Arc::new(Shared {
        workers,
        inject: Inject::new(),
        owned: OwnedTasks::new(4 * n),
        storage,
        park,
        clock,
        task_budget: config.task_budget.max(1),
        timers_per_worker: config.timers_per_worker,
        num_parked: CachePadded(AtomicUsize::new(0)),
        num_searching: CachePadded(AtomicUsize::new(0)),
        shutdown: AtomicBool::new(false),
        next_id: AtomicU64::new(0),
        timer_overflows: AtomicU64::new(0),
    });
    let handle = Handle { shared };
    let workers =
        locals.into_iter().enumerate().map(|(index, local)| Worker::new(handle.clone(), index, local)).collect();
    (handle, workers)
}

impl Handle {
    /// Workers in this runtime.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// The CPU each worker was configured for.
    pub fn worker_cpus(&self) -> Vec<Option<u32>> {
        self.shared.workers.iter().map(|w| w.cpu).collect()
    }

    /// The NUMA node of each worker's CPU (0 when unpinned or unknown): what DAG partitioners balance across.
    pub fn worker_numa_nodes(&self) -> Vec<u32> {
        self.shared.workers.iter().map(|w| w.numa_node).collect()
    }

    /// A snapshot of every worker's counters; cheap, and does not disturb the workers beyond a cache miss.
    pub fn stats(&self) -> Vec<WorkerStats> {
        self.shared.workers.iter().map(|w| w.stats.read()).collect()
    }

    /// Tasks spawned and not yet finished (the `Send` ones plus every worker's local ones).
    pub fn live_tasks(&self) -> usize {
        self.shared.owned.len() + self.shared.workers.iter().map(|w| w.local_owned.lock().len()).sum::<usize>()
    }

    /// Tasks waiting in the global injector.
    pub fn injector_len(&self) -> usize {
        self.shared.inject.len()
    }

    /// Sleeps that fell back to re-polling until their deadline: their worker's timer wheel was full, or the
    /// runtime was shutting down.
    pub fn timer_overflows(&self) -> u64 {
        self.shared.timer_overflows.load(Ordering::Relaxed)
    }

    /// The runtime's clock, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.shared.clock.now_ns()
    }

    /// The runtime's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// Spawn a `Send` task that any worker may run (and steal).
    pub fn spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_inner(future, UNPINNED, false)
    }

    /// Spawn a `Send` task that only `worker` runs (never stolen).
    pub fn spawn_on<F>(&self, worker: usize, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if worker >= self.shared.workers.len() {
            return Err(SpawnError::NoSuchWorker);
        }
        self.spawn_inner(future, worker as u32, false)
    }

    /// Spawn a task that is not `Send` onto the current worker, which alone will run and drop it. Fails with
    /// [`SpawnError::NoSuchWorker`] off this runtime's workers.
    pub fn spawn_local<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let worker = context::with_worker(|ctx| match ctx {
            Some(ctx) if Arc::ptr_eq(&ctx.handle.shared, &self.shared) => Some(ctx.index),
            _ => None,
        });
        let Some(worker) = worker else { return Err(SpawnError::NoSuchWorker) };
        self.spawn_inner(future, worker as u32, true)
    }

    /// Spawn on whatever runtime the current thread is a worker of.
    #[cfg(feature = "std")]
    pub(crate) fn current() -> Option<Handle> {
        context::with_worker(|ctx| ctx.map(|ctx| ctx.handle.clone()))
    }

    /// The worker index of the current thread, if it is one of this runtime's workers.
    pub fn current_worker(&self) -> Option<usize> {
        context::with_worker(|ctx| match ctx {
            Some(ctx) if Arc::ptr_eq(&ctx.handle.shared, &self.shared) => Some(ctx.index),
            _ => None,
        })
    }

    fn spawn_inner<F>(&self, future: F, pinned_to: u32, local: bool) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + 'static,
    {
        let shared = &*self.shared;
        if shared.shutdown.load(Ordering::Acquire) {
            return Err(SpawnError::ShuttingDown);
        }
        let memory = shared.storage.alloc(task::raw::layout_of::<F, Handle>())?;
        let id = self.next_task_id();
        let placement = Placement { id, pinned_to, local };
        // SAFETY: `memory` fits the layout and goes back through `Handle::dealloc`; a local (`!Send`) future is pinned
        // to the current worker (checked by `spawn_local`), which alone runs and cancels it.
        let (task, notified, join) = unsafe { task::new_task(memory, future, self.clone(), placement) };
        let bound = if local {
            shared.workers[pinned_to as usize].local_owned.lock().push(task)
        } else {
            shared.owned.push(task)
        };
        if let Err(task) = bound {
            // The lists closed under us: shutdown started. Cancel it here; the handle reports it.
            notified.drop_unpolled();
            task.shutdown();
            drop(join);
            return Err(SpawnError::ShuttingDown);
        }
        shared.schedule(notified, Why::Spawn);
        Ok(join)
    }

    fn next_task_id(&self) -> TaskId {
        // Workers number their own tasks (no shared counter on the hot path): id = sequence * (workers + 1) + slot,
        // where slot = worker index, or `workers` for everyone else.
        let stride = self.shared.workers.len() as u64 + 1;
        let own = context::with_worker(|ctx| match ctx {
            Some(ctx) if Arc::ptr_eq(&ctx.handle.shared, &self.shared) => {
                let seq = ctx.next_task_seq.get();
                ctx.next_task_seq.set(seq + 1);
                Some(seq * stride + ctx.index as u64)
            }
            _ => None,
        });
        TaskId(own.unwrap_or_else(|| self.shared.next_id.fetch_add(1, Ordering::Relaxed) * stride + stride - 1))
    }

    /// Shutdown step 1: refuse new spawns and make every worker leave [`Worker::run`] after its current turn (each
    /// then drains its queues and cancels its local tasks). The `std` layer calls this; embedders that run the
    /// workers themselves call it, wait for every `run` to return, then call [`Handle::cancel_remaining`].
    pub fn begin_shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Release);
        for index in 0..self.shared.workers.len() {
            self.shared.park.unpark(index);
        }
    }

    /// Shutdown step 2, after every worker's `run` returned: cancel every task still alive (idle or queued) on the
    /// calling thread, and drop the timers' wakers. Returns how many tasks were alive.
    pub fn cancel_remaining(&self) -> usize {
        let shared = &*self.shared;
        let before = shared.owned.len();
        shared.owned.close_and_shutdown_all();
        drop(shared.inject.take_all());
        for worker in shared.workers.iter() {
            drop(worker.inbox.take_all());
            let wakers: Vec<Waker> = {
                let mut wheel = worker.timers.wheel.lock();
                let mut out = Vec::new();
                wheel.advance(u64::MAX, |_, waker| out.push(waker));
                out
            };
            drop(wakers);
        }
        before
    }
}

/// Why a task is being scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// Woken by a waker (from a task, a timer, another thread).
    Woken,
    /// It woke itself while running (`yield_now`): behind other work.
    Yield,
    /// Just spawned.
    Spawn,
}

impl Shared {
    pub(crate) fn schedule(&self, task: Notified, why: Why) {
        let pinned = task.header().pinned_to;
        // `Ok(true)`: queued on this worker where others may steal it; `Ok(false)`: queued where only this worker
        // runs it (LIFO slot, pinned FIFO); `Err(task)`: not on one of our workers, use the shared queues.
        let queued = context::with_worker(|ctx| {
            let ctx = match ctx {
                Some(ctx) if core::ptr::eq(&*ctx.handle.shared, self) => ctx,
                _ => return Err(task),
            };
            // A re-entrant borrow (scheduling from inside a drop the worker runs under its borrow) takes the
            // shared path instead.
            let Ok(mut core) = ctx.core.try_borrow_mut() else { return Err(task) };
            if pinned != UNPINNED {
                if pinned as usize != ctx.index {
                    return Err(task);
                }
                core.pinned.push(task);
                return Ok(false);
            }
            match why {
                Why::Woken => match core.lifo.replace(task) {
                    Some(previous) => {
                        core.push_back(previous, self);
                        Ok(true)
                    }
                    None => Ok(false),
                },
                Why::Yield | Why::Spawn => {
                    core.push_back(task, self);
                    Ok(true)
                }
            }
        });
        match queued {
            // Stealable work appeared: wake a parked worker if nobody is looking.
            Ok(true) => self.notify_parked(),
            Ok(false) => {}
            Err(task) if pinned != UNPINNED => {
                self.workers[pinned as usize].inbox.push(task);
                self.notify_worker(pinned as usize);
            }
            Err(task) => {
                self.inject.push(task);
                self.notify_parked();
            }
        }
    }

    /// Wake one parked worker if there is one and nobody is already searching for work.
    pub(crate) fn notify_parked(&self) {
        fence(Ordering::SeqCst);
        if self.num_parked.load(Ordering::SeqCst) == 0 || self.num_searching.load(Ordering::SeqCst) != 0 {
            return;
        }
        for (index, worker) in self.workers.iter().enumerate() {
            if worker.parked.load(Ordering::Relaxed) && worker.parked.swap(false, Ordering::SeqCst) {
                self.num_parked.fetch_sub(1, Ordering::SeqCst);
                self.num_searching.fetch_add(1, Ordering::SeqCst);
                self.park.unpark(index);
                return;
            }
        }
    }

    /// Wake `index` if it is parked (work arrived in its inbox or its timer wheel).
    pub(crate) fn notify_worker(&self, index: usize) {
        fence(Ordering::SeqCst);
        let worker = &self.workers[index];
        if worker.parked.load(Ordering::SeqCst) && worker.parked.swap(false, Ordering::SeqCst) {
            self.num_parked.fetch_sub(1, Ordering::SeqCst);
            // Whoever clears a parked flag counts the worker as searching: it wakes believing so (`unpark_self`).
            self.num_searching.fetch_add(1, Ordering::SeqCst);
            self.park.unpark(index);
        }
    }

    // ---- timers ----

    /// Register a waker for `deadline` on the current worker's wheel (or worker 0's). `None` if the wheel is full.
    pub(crate) fn timer_register(&self, deadline: u64, waker: Waker) -> Option<(u32, TimerKey)> {
        if self.shutdown.load(Ordering::Acquire) {
            // No worker advances the wheels any more: the sleep falls back to re-polling until its deadline.
            return None;
        }
        let shard = context::with_worker(|ctx| match ctx {
            Some(ctx) if core::ptr::eq(&*ctx.handle.shared, self) => Some(ctx.index),
            _ => None,
        });
        let on_own_worker = shard.is_some();
        let shard = shard.unwrap_or(0);
        let timers = &self.workers[shard].timers;
        let key = {
            let mut wheel = timers.wheel.lock();
            let key = wheel.insert(deadline, waker).ok()?;
            timers.next.store(wheel.next_expiry().unwrap_or(u64::MAX), Ordering::Release);
            key
        };
        if !on_own_worker {
            // Its worker may be parked with a later timeout.
            self.notify_worker(shard);
        }
        Some((shard as u32, key))
    }

    /// Refresh a pending timer's waker; `false` if it already fired.
    pub(crate) fn timer_update(&self, shard: u32, key: TimerKey, waker: &Waker) -> bool {
        let replaced = {
            let mut wheel = self.workers[shard as usize].timers.wheel.lock();
            match wheel.get_mut(key) {
                Some(stored) if stored.will_wake(waker) => None,
                Some(stored) => Some(core::mem::replace(stored, waker.clone())),
                None => return false,
            }
        };
        drop(replaced); // outside the lock: dropping a waker may free a task
        true
    }

    pub(crate) fn timer_cancel(&self, shard: u32, key: TimerKey) {
        let removed = self.workers[shard as usize].timers.wheel.lock().remove(key);
        drop(removed); // outside the lock: dropping a waker may free a task
    }
}

impl Schedule for Handle {
    fn schedule(&self, task: Notified) {
        self.shared.schedule(task, Why::Woken);
    }

    fn yield_now(&self, task: Notified) {
        self.shared.schedule(task, Why::Yield);
    }

    fn release(&self, task: &Task) -> Option<Task> {
        let header = task.header();
        if header.local {
            self.shared.workers[header.pinned_to as usize].local_owned.lock().remove(task)
        } else {
            self.shared.owned.remove(task)
        }
    }

    unsafe fn dealloc(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded contract: the memory came from this storage.
        unsafe { self.shared.storage.dealloc(ptr, layout) }
    }
}
