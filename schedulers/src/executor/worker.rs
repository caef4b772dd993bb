//! One worker: the loop a pinned thread runs.
//!
//! Each turn: (1) call every poller, (2) fire due timers, (3) run up to `task_budget` tasks, picked in this order:
//! every 61st pick the shared queues first (fairness: the injector and inbox cannot starve behind a busy ring);
//! else the LIFO slot (at most 3 in a row, so two tasks waking each other cannot monopolise the worker), the
//! worker's pinned FIFO, its ring, its inbox, a batch from the injector, then stealing half of a victim's ring
//! (same NUMA node first). A turn that found nothing counts towards the idle policy.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::task::Waker;

use super::stats::WorkerStats;
use super::{Handle, Idle, Poller, Shared, context};
use crate::queue::inject::Fifo;
use crate::queue::local::Local;
use crate::sync::Ordering;
use crate::task::Notified;

/// Picks from the shared queues first every this many picks.
const SHARED_QUEUE_INTERVAL: u32 = 61;
/// Longest run of LIFO-slot picks.
const LIFO_LIMIT: u32 = 3;

/// A worker before it runs: move it to its thread and call [`Worker::run`].
pub struct Worker {
    handle: Handle,
    index: usize,
    local: Local<Notified>,
}

impl core::fmt::Debug for Worker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Worker").field("index", &self.index).finish()
    }
}

/// The worker's own state, reachable from tasks it runs (through the thread-local context) to queue wakes locally.
pub(crate) struct Core {
    pub(crate) local: Local<Notified>,
    pub(crate) lifo: Option<Notified>,
    /// Ready pinned tasks woken on this worker.
    pub(crate) pinned: Fifo,
    lifo_streak: u32,
    /// Picks left before the shared queues go first again.
    until_shared_first: u32,
    pub(crate) stats: WorkerStats,
}

impl Core {
    pub(crate) fn push_back(&mut self, task: Notified, shared: &Shared) {
        if !self.local.has_room() {
            self.stats.overflows += 1;
        }
        self.local.push_back(task, &shared.inject);
    }
}

/// What the thread-local context points at while a worker runs.
pub(crate) struct WorkerCtx {
    pub(crate) handle: Handle,
    pub(crate) index: usize,
    pub(crate) core: RefCell<Core>,
    pub(crate) next_task_seq: Cell<u64>,
}

impl Worker {
    pub(crate) fn new(handle: Handle, index: usize, local: Local<Notified>) -> Self {
        Worker { handle, index, local }
    }

    /// This worker's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Run the loop on the calling thread until the runtime shuts down, then drain this worker: queued tasks are
    /// dropped unpolled and this worker's `spawn_local` tasks are cancelled here, on their own thread.
    pub fn run(self, mut pollers: Vec<Box<dyn Poller>>) {
        let Worker { handle, index, local } = self;
        let ctx = WorkerCtx {
            handle,
            index,
            core: RefCell::new(Core {
                local,
                lifo: None,
                pinned: Fifo::default(),
                lifo_streak: 0,
                until_shared_first: SHARED_QUEUE_INTERVAL,
                stats: WorkerStats::default(),
            }),
            next_task_seq: Cell::new(0),
        };
        let _entered = context::enter(&ctx);
        let shared = &*ctx.handle.shared;
        let me = &shared.workers[index];
        // Bounded mode promises no allocation after start-up: room for every timer firing in one turn, now.
        let mut expired: Vec<Waker> = match shared.storage {
            crate::task::storage::Storage::Slab(_) => Vec::with_capacity(shared.timers_per_worker),
            crate::task::storage::Storage::Heap => Vec::new(),
        };
        let mut idle_turns: u32 = 0;
        // Runs the exit steps however the loop ends: shutdown, or a panic out of a poller, a clock or a foreign
        // waker, which would otherwise leave `num_searching` counting a dead worker (and the others asleep).
        let mut exit = ExitGuard { ctx: &ctx, searching: false };
        while !shared.shutdown.load(Ordering::Acquire) {
            let busy = turn(&ctx, &mut pollers, &mut expired, &mut exit.searching);
            if busy {
                idle_turns = 0;
                continue;
            }
            idle_turns = idle_turns.saturating_add(1);
            match me.idle {
                Idle::BusyPoll => core::hint::spin_loop(),
                Idle::SpinThenPark { spins } if idle_turns > spins => {
                    park(&ctx, &mut exit.searching);
                    idle_turns = 0;
                }
                Idle::SpinThenPark { .. } => core::hint::spin_loop(),
            }
        }
    }
}

/// The worker's exit steps, run on drop.
struct ExitGuard<'a> {
    ctx: &'a WorkerCtx,
    searching: bool,
}

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        let ctx = self.ctx;
        let shared = &*ctx.handle.shared;
        let me = &shared.workers[ctx.index];
        if self.searching {
            shared.num_searching.fetch_sub(1, Ordering::SeqCst);
        }
        // Leaving while the runtime runs (a panic): hand stealable work to the others. At shutdown: queued entries
        // go unpolled (the owned-list sweep cancels those tasks).
        let hand_over = !shared.shutdown.load(Ordering::Acquire);
        let Ok(mut core) = ctx.core.try_borrow_mut() else { return };
        let mut stealable = core.lifo.take().into_iter().chain(core::iter::from_fn(|| core.local.pop()));
        if hand_over {
            shared.inject.push_batch(&mut stealable);
            shared.notify_parked();
        } else {
            stealable.for_each(Notified::drop_unpolled);
        }
        drop(core::mem::take(&mut core.pinned));
        drop(me.inbox.take_all());
        me.stats.publish(&core.stats);
        drop(core);
        // Local (`!Send`) tasks die here, on their own thread.
        me.local_owned.lock().close();
        loop {
            let task = me.local_owned.lock().pop();
            match task {
                Some(task) => task.shutdown(),
                None => break,
            }
        }
    }
}

/// One turn; `true` if it found work.
fn turn(ctx: &WorkerCtx, pollers: &mut [Box<dyn Poller>], expired: &mut Vec<Waker>, searching: &mut bool) -> bool {
    let shared = &*ctx.handle.shared;
    let me = &shared.workers[ctx.index];
    let mut busy = false;
    let mut poller_busy = 0;
    for poller in pollers.iter_mut() {
        if poller.poll() {
            poller_busy += 1;
        }
    }
    busy |= poller_busy > 0;

    // Timers: one relaxed load when nothing is due.
    let mut fired = 0;
    if me.timers.next.load(Ordering::Acquire) != u64::MAX {
        let now = shared.clock.now_ns();
        if now >= me.timers.next.load(Ordering::Acquire) {
            {
                let mut wheel = me.timers.wheel.lock();
                fired = wheel.advance(now, |_, waker| expired.push(waker));
                me.timers.next.store(wheel.next_expiry().unwrap_or(u64::MAX), Ordering::Release);
            }
            // Wake outside the lock: a wake may schedule, and dropping a waker may free a task.
            expired.drain(..).for_each(Waker::wake);
        }
    }
    busy |= fired > 0;

    let mut polled = 0;
    while polled < shared.task_budget {
        let Some(task) = next_task(ctx, shared) else { break };
        if *searching {
            *searching = false;
            // The last searcher to find work wakes another: there may be more.
            if shared.num_searching.fetch_sub(1, Ordering::SeqCst) == 1 {
                shared.notify_parked();
            }
        }
        task.run();
        polled += 1;
    }
    busy |= polled > 0;

    let mut core = ctx.core.borrow_mut();
    let stats = &mut core.stats;
    stats.turns += 1;
    stats.busy_turns += busy as u64;
    stats.tasks_polled += polled as u64;
    stats.poller_calls += pollers.len() as u64;
    stats.poller_busy += poller_busy;
    stats.timers_fired += fired as u64;
    // Publishing is a handful of stores to our own line; idle spinning turns publish every 128th time only.
    if busy || stats.turns.is_multiple_of(128) {
        me.stats.publish(stats);
    }
    busy
}

/// The next task to run, or `None` when there is no work anywhere this worker may take.
fn next_task(ctx: &WorkerCtx, shared: &Shared) -> Option<Notified> {
    let me = &shared.workers[ctx.index];
    let mut core = ctx.core.borrow_mut();
    core.until_shared_first -= 1;
    if core.until_shared_first == 0 {
        core.until_shared_first = SHARED_QUEUE_INTERVAL;
        if let Some(task) = me.inbox.pop() {
            core.stats.inbox_tasks += 1;
            return Some(task);
        }
        if let Some(task) = shared.inject.pop() {
            core.stats.injector_pulls += 1;
            core.stats.injector_tasks += 1;
            return Some(task);
        }
    }
    if let Some(task) = core.lifo.take() {
        if core.lifo_streak < LIFO_LIMIT {
            core.lifo_streak += 1;
            core.stats.lifo_hits += 1;
            return Some(task);
        }
        core.push_back(task, shared);
        shared.notify_parked();
    }
    core.lifo_streak = 0;
    if let Some(task) = core.pinned.pop() {
        return Some(task);
    }
    if let Some(task) = core.local.pop() {
        return Some(task);
    }
    if !me.inbox.is_empty() {
        let mut batch = me.inbox.pop_batch(usize::MAX);
        core.stats.inbox_tasks += batch.len() as u64;
        let first = batch.pop();
        core.pinned.append(&mut batch);
        if first.is_some() {
            return first;
        }
    }
    if !shared.inject.is_empty() {
        // A fair share of the injector, at most half a ring.
        let workers = shared.workers.len();
        let take = (shared.inject.len() / workers + 1).min(core.local.capacity() / 2);
        let mut batch = shared.inject.pop_batch(take);
        if let Some(first) = batch.pop() {
            core.stats.injector_pulls += 1;
            core.stats.injector_tasks += 1 + batch.len() as u64;
            while let Some(task) = batch.pop() {
                core.local.push_back(task, &shared.inject);
            }
            return Some(first);
        }
    }
    for &victim in me.steal_order.iter() {
        let victim = &shared.workers[victim as usize];
        if victim.stealer.is_empty() {
            continue;
        }
        core.stats.steal_attempts += 1;
        let before = core.local.len();
        if let Some(task) = victim.stealer.steal_into(&mut core.local) {
            core.stats.steals += 1;
            core.stats.stolen_tasks += 1 + (core.local.len() - before) as u64;
            return Some(task);
        }
    }
    None
}

/// Sleep until there is work (the idle protocol in the module docs of `executor`).
fn park(ctx: &WorkerCtx, searching: &mut bool) {
    let shared = &*ctx.handle.shared;
    let me = &shared.workers[ctx.index];
    if *searching {
        *searching = false;
        shared.num_searching.fetch_sub(1, Ordering::SeqCst);
    }
    me.parked.store(true, Ordering::SeqCst);
    shared.num_parked.fetch_add(1, Ordering::SeqCst);
    crate::sync::fence(Ordering::SeqCst);
    if has_work(ctx, shared) || shared.shutdown.load(Ordering::SeqCst) {
        unpark_self(shared, ctx.index, searching);
        return;
    }
    let next_timer = me.timers.next.load(Ordering::Acquire);
    let timeout = (next_timer != u64::MAX).then(|| next_timer.saturating_sub(shared.clock.now_ns()));
    {
        let mut core = ctx.core.borrow_mut();
        core.stats.parks += 1;
        me.stats.publish(&core.stats);
    }
    shared.park.park(ctx.index, timeout);
    unpark_self(shared, ctx.index, searching);
}

/// After a park (or a park abandoned): if our flag is still set nobody woke us (timeout, spurious, or we found work
/// ourselves); else the waker counted us as searching.
fn unpark_self(shared: &Shared, index: usize, searching: &mut bool) {
    if shared.workers[index].parked.swap(false, Ordering::SeqCst) {
        shared.num_parked.fetch_sub(1, Ordering::SeqCst);
    } else {
        *searching = true;
    }
}

fn has_work(ctx: &WorkerCtx, shared: &Shared) -> bool {
    let me = &shared.workers[ctx.index];
    let core = ctx.core.borrow();
    core.lifo.is_some()
        || !core.pinned.is_empty()
        || !core.local.is_empty()
        || !me.inbox.is_empty()
        || !shared.inject.is_empty()
        || shared.clock.now_ns() >= me.timers.next.load(Ordering::Acquire)
        || me.steal_order.iter().any(|&victim| !shared.workers[victim as usize].stealer.is_empty())
}
