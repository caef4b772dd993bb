//! Running a graph on the runtime's workers: one pinned task per worker moves node ids through dependency
//! counters, per-worker rings (stealable) and inboxes (for nodes made ready by another worker).
//!
//! A finished node decrements each successor's counter; the one that takes it to zero makes it ready. A ready
//! successor assigned to the same worker as the finished node stays where that node ran: the first runs inline
//! next (its inputs are in cache), the rest go on this worker's private stack, from which a few at a time are
//! exposed in its ring for idle workers to steal (half a ring per steal, same NUMA node first: the executor's
//! order). So a stolen node takes its chain with it. A successor assigned elsewhere goes to that worker's inbox,
//! an intrusive stack threaded through the nodes (each node is queued once per run, so a take-all swap needs no
//! ABA care). Pinned nodes never enter a ring and always run on their worker.
//!
//! A worker task runs up to [`NODES_PER_TURN`] nodes, then yields to its runtime worker so pollers keep their
//! turn. With nothing to do it spins (yielding) for a while, then sleeps on its waker; an inbox push wakes it.
//! Completions are counted per worker and summed only when a worker runs dry, so the finishing line is not a
//! shared counter bumped per node.
//!
//! A node that fails (an error or a panic) poisons its successors' counters; poisoned nodes are skipped and pass
//! the poison on, remembering the failed node as their cause. The caller waits with a watchdog: when nothing
//! completes for the set time it stops handing out nodes and returns what is running and what waits on what.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::poll_fn;
use core::panic::AssertUnwindSafe;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::panic::catch_unwind;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use super::graph::{Graph, NONE, NodeId};
use super::inbox::{END, Inbox, fence_before_checking};
use crate::executor::Handle;
use crate::queue::local::{self, Local, Overflow, Stealer};
use crate::sync::CachePadded;

/// Nodes a worker task runs before yielding to its runtime worker's pollers and other tasks.
pub const NODES_PER_TURN: u32 = 512;
/// How long an idle worker task keeps looking (yielding between looks) before it sleeps on its waker.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(50);
/// An idle worker checks its inbox this many times (about a microsecond) before trying to steal.
const INBOX_WATCH_SPINS: u32 = 256;
/// A worker refills its stealable ring when it holds fewer than this many nodes...
const EXPOSE_LOW: usize = 8;
/// ...with up to this many of its oldest ready nodes.
const EXPOSE_BATCH: usize = 32;
/// The bit in a node's counter that says an input failed.
const POISON: u32 = 1 << 31;

/// A node's work: called once per run for each node in scope, after all its inputs finished.
pub trait Body: Send + Sync + 'static {
    /// Run `node`. An `Err` (or a panic) fails it and everything downstream of it.
    fn run(&self, node: NodeId) -> Result<(), String>;
}

/// How a node ended in the last run that covered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not run (out of scope, or the run stopped first).
    NotRun,
    /// Ran and succeeded.
    Done,
    /// Its body returned an error or panicked.
    Failed,
    /// Skipped: an upstream node failed (see [`RunResult::cause`]).
    Skipped,
}

const NOT_RUN: u8 = 0;
const DONE: u8 = 1;
const FAILED: u8 = 2;
const SKIPPED: u8 = 3;

/// A graph with every node assigned to a worker: what [`run`] executes.
#[derive(Debug, Clone)]
pub struct Plan {
    graph: Arc<Graph>,
    worker_of: Arc<[u32]>,
    /// `worker_of` with [`PINNED`] set on pinned nodes: one load tells a worker where a ready node goes.
    placement: Arc<[u32]>,
    workers: usize,
}

/// The bit in a [`Plan`]'s placement that marks a pinned node.
const PINNED: u32 = 1 << 31;

/// Why a plan or a run was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The assignment's length is not the graph's node count.
    WrongLength {
        /// Entries given.
        assigned: usize,
        /// Nodes in the graph.
        nodes: usize,
    },
    /// A node is assigned (or pinned) to a worker the runtime does not have.
    NoSuchWorker {
        /// The node.
        node: String,
        /// The worker.
        worker: u32,
        /// Workers the plan has.
        workers: usize,
    },
    /// The plan was made for a different number of workers than the runtime has.
    WorkerCount {
        /// Plan workers.
        plan: usize,
        /// Runtime workers.
        runtime: usize,
    },
    /// Called on one of the runtime's own workers, which the run needs.
    OnWorker,
    /// A previous run was stopped by its watchdog and one of its nodes is still running.
    StillRunning,
    /// A [`Scope::Downstream`] set names a node twice, or misses a successor of one of its nodes.
    BadScope {
        /// The node repeated, or the successor missing.
        node: String,
    },
}

impl core::fmt::Display for PlanError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::WrongLength { assigned, nodes } => write!(f, "{assigned} worker assignments for {nodes} nodes"),
            Self::NoSuchWorker { node, worker, workers } => {
                write!(f, "node {node:?} is assigned to worker {worker}, but there are {workers} workers")
            }
            Self::WorkerCount { plan, runtime } => {
                write!(f, "the plan is for {plan} workers, the runtime has {runtime}")
            }
            Self::OnWorker => {
                write!(f, "a DAG run was started on a runtime worker thread; start it from another thread")
            }
            Self::BadScope { node } => {
                write!(f, "the scope names {node:?} twice or misses it though an input of it is in scope")
            }
            Self::StillRunning => {
                write!(f, "a node of a run stopped by its watchdog is still running; wait for it before running again")
            }
        }
    }
}

impl core::error::Error for PlanError {}

impl Plan {
    /// A plan from a per-node worker assignment. Pinned nodes must be assigned to their pin.
    pub fn new(graph: Arc<Graph>, worker_of: Vec<u32>, workers: usize) -> Result<Self, PlanError> {
        if worker_of.len() != graph.len() {
            return Err(PlanError::WrongLength { assigned: worker_of.len(), nodes: graph.len() });
        }
        for (v, &w) in worker_of.iter().enumerate() {
            let pinned = graph.pin(v as NodeId);
            if w as usize >= workers || w & PINNED != 0 || pinned.is_some_and(|p| p != w) {
                let worker = pinned.filter(|&p| p as usize >= workers).unwrap_or(w);
                return Err(PlanError::NoSuchWorker { node: graph.name(v as NodeId).into(), worker, workers });
            }
        }
        let placement = worker_of
            .iter()
            .enumerate()
            .map(|(v, &w)| if graph.pin(v as NodeId).is_some() { w | PINNED } else { w })
            .collect();
        Ok(Plan { graph, worker_of: worker_of.into(), placement, workers })
    }

    /// Every node on worker 0: the single-worker plan.
    pub fn single(graph: Arc<Graph>) -> Result<Self, PlanError> {
        let n = graph.len();
        Self::new(graph, alloc::vec![0; n], 1)
    }

    /// The graph.
    pub fn graph(&self) -> &Arc<Graph> {
        &self.graph
    }

    /// The worker each node is assigned to.
    pub fn worker_of(&self) -> &[u32] {
        &self.worker_of
    }

    /// Workers the plan spreads over.
    pub fn workers(&self) -> usize {
        self.workers
    }
}

/// Which nodes a run covers.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every node.
    All,
    /// These nodes, which must be closed under successors (everything downstream of a node in the set is in the
    /// set), as [`super::dirty::Downstream`] produces. Each node's counter counts its inputs in the set.
    Downstream(&'a [NodeId]),
}

/// Per-run knobs.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Stop and report when no node completes for this long.
    pub watchdog: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { watchdog: Duration::from_secs(10) }
    }
}

/// One worker's share of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct WorkerRun {
    /// Nodes this worker ran (or skipped).
    pub nodes: u64,
    /// Of those, nodes assigned to another worker: stolen, or following a stolen node along its chain.
    pub off_assigned: u64,
    /// Successful steals (each moves up to half a ring).
    pub steals: u64,
    /// Time between finding work and running dry (including any wait for the runtime worker after a yield).
    pub busy_ns: u64,
    /// Time spent trying to steal.
    pub steal_ns: u64,
    /// The rest of the run: spinning, sleeping, or the runtime worker busy elsewhere.
    pub idle_ns: u64,
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// From handing out the first node (spawning the worker tasks) to the caller seeing the last completion.
    pub elapsed: Duration,
    /// Per worker.
    pub workers: Vec<WorkerRun>,
    /// Nodes in scope.
    pub nodes: usize,
    /// Failed nodes and their errors, in completion order.
    pub failures: Vec<(NodeId, String)>,
    /// Nodes skipped because something upstream failed.
    pub skipped: usize,
    /// Per node: how it ended (only nodes in scope are written).
    state: Arc<[AtomicU8]>,
    cause: Arc<[AtomicU32]>,
}

impl RunResult {
    /// How `node` ended.
    pub fn outcome(&self, node: NodeId) -> Outcome {
        outcome_of(self.state[node as usize].load(Ordering::Relaxed))
    }

    /// For a failed or skipped node: the failed node at the root of it.
    pub fn cause(&self, node: NodeId) -> Option<NodeId> {
        Some(self.cause[node as usize].load(Ordering::Relaxed)).filter(|&c| c != NONE)
    }

    /// Total steals.
    pub fn steals(&self) -> u64 {
        self.workers.iter().map(|w| w.steals).sum()
    }
}

fn outcome_of(state: u8) -> Outcome {
    match state {
        DONE => Outcome::Done,
        FAILED => Outcome::Failed,
        SKIPPED => Outcome::Skipped,
        _ => Outcome::NotRun,
    }
}

/// A run the watchdog stopped: nothing completed for the set time.
#[derive(Debug, Clone)]
pub struct Stall {
    /// How long nothing completed.
    pub quiet_for: Duration,
    /// Nodes completed before it stopped, of the scope's total.
    pub completed: u64,
    /// Nodes in scope.
    pub total: usize,
    /// Nodes running when it stopped: (worker, node name).
    pub running: Vec<(usize, String)>,
    /// Up to 32 nodes that were not finished, each with the inputs it still waited on.
    pub waiting: Vec<(String, Vec<String>)>,
    /// Unfinished nodes in all.
    pub unfinished: usize,
}

impl core::fmt::Display for Stall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(
            f,
            "no node completed for {:?} ({} of {} done, {} unfinished)",
            self.quiet_for, self.completed, self.total, self.unfinished
        )?;
        for (worker, node) in &self.running {
            writeln!(f, "  running on worker {worker}: {node}")?;
        }
        for (node, inputs) in &self.waiting {
            if inputs.is_empty() {
                writeln!(f, "  {node}: ready, not started")?;
            } else {
                writeln!(f, "  {node}: waiting on {}", inputs.join(", "))?;
            }
        }
        Ok(())
    }
}

/// Why a run did not finish.
#[derive(Debug, Clone)]
pub enum RunError {
    /// The plan does not fit the runtime.
    Plan(PlanError),
    /// The watchdog stopped it.
    Stalled(Stall),
    /// The runtime refused a worker task (bounded task storage full).
    Spawn(crate::SpawnError),
}

impl core::fmt::Display for RunError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Plan(e) => e.fmt(f),
            Self::Stalled(s) => write!(f, "DAG run stalled: {s}"),
            Self::Spawn(e) => write!(f, "cannot start a DAG worker task: {e}"),
        }
    }
}

impl core::error::Error for RunError {}

impl From<PlanError> for RunError {
    fn from(e: PlanError) -> Self {
        RunError::Plan(e)
    }
}

/// Reusable per-plan run state: counters and links sized to the graph, so a run allocates little. One run at a
/// time; a run the watchdog stopped keeps it busy until its running nodes return.
#[derive(Debug)]
pub struct Runner {
    plan: Plan,
    state: Arc<Shared>,
    /// The last run's nodes when it was not the whole graph (for the watchdog's report).
    scope: Option<Vec<NodeId>>,
    /// Scratch for checking a scope (all false between checks).
    mark: Vec<bool>,
    /// Each node's input count: a full run's counters start as a copy.
    indegree: Box<[u32]>,
}

#[derive(Debug)]
struct Slot {
    /// Nodes other workers made ready for this one; links in `Shared::next`.
    inbox: Inbox,
    sleeping: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// The node being run (`NONE`: none), for the watchdog.
    running: AtomicU32,
    /// Nodes completed in this run, for the watchdog.
    completed: AtomicU64,
    report: Mutex<WorkerRun>,
}

#[derive(Debug)]
struct Shared {
    pending: Box<[AtomicU32]>,
    next: Box<[AtomicU32]>,
    state: Arc<[AtomicU8]>,
    cause: Arc<[AtomicU32]>,
    slots: Box<[CachePadded<Slot>]>,
    remaining: CachePadded<AtomicUsize>,
    num_sleeping: CachePadded<AtomicUsize>,
    done: AtomicBool,
    abort: AtomicBool,
    /// Worker tasks still inside the run.
    in_flight: AtomicUsize,
    failures: Mutex<Vec<(NodeId, String)>>,
    finished: (Mutex<bool>, Condvar),
}

impl Runner {
    /// Run state for `plan`.
    pub fn new(plan: Plan) -> Self {
        let indegree = (0..plan.graph.len() as NodeId).map(|v| plan.graph.in_degree(v)).collect();
        let state = Arc::new(Shared::new(plan.graph.len(), plan.workers));
        Runner { plan, state, indegree, scope: None, mark: Vec::new() }
    }
}

impl Shared {
    fn new(n: usize, workers: usize) -> Self {
        let atomics = |v: u32| (0..n).map(|_| AtomicU32::new(v)).collect::<Box<[_]>>();
        let slots = (0..workers)
            .map(|_| {
                CachePadded(Slot {
                    inbox: Inbox::new(),
                    sleeping: AtomicBool::new(false),
                    waker: Mutex::new(None),
                    running: AtomicU32::new(NONE),
                    completed: AtomicU64::new(0),
                    report: Mutex::new(WorkerRun::default()),
                })
            })
            .collect();
        Shared {
            pending: atomics(0),
            next: atomics(NONE),
            state: (0..n).map(|_| AtomicU8::new(NOT_RUN)).collect(),
            cause: (0..n).map(|_| AtomicU32::new(NONE)).collect(),
            slots,
            remaining: CachePadded(AtomicUsize::new(0)),
            num_sleeping: CachePadded(AtomicUsize::new(0)),
            done: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            failures: Mutex::new(Vec::new()),
            finished: (Mutex::new(false), Condvar::new()),
        }
    }
}

impl Runner {
    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// True while worker tasks of a stopped run are still inside it.
    pub fn busy(&self) -> bool {
        self.state.in_flight.load(Ordering::Acquire) != 0
    }

    /// Run `scope` of the plan's graph on `runtime`'s workers (worker `i` of the plan on runtime worker `i`),
    /// calling `body` for each node; returns when every node in scope has completed, or the watchdog fires.
    pub fn run<B: Body>(
        &mut self,
        runtime: &Handle,
        body: &Arc<B>,
        scope: Scope<'_>,
        options: RunOptions,
    ) -> Result<RunResult, RunError> {
        if runtime.workers() != self.plan.workers {
            return Err(PlanError::WorkerCount { plan: self.plan.workers, runtime: runtime.workers() }.into());
        }
        if runtime.current_worker().is_some() {
            return Err(PlanError::OnWorker.into());
        }
        if self.busy() {
            return Err(PlanError::StillRunning.into());
        }
        if let Scope::Downstream(nodes) = scope {
            self.check_scope(nodes)?;
        }
        let total = self.reset(scope);
        let shared = &self.state;
        let graph = &self.plan.graph;
        let started = Instant::now();
        if total > 0 {
            let capacity = local::DEFAULT_CAPACITY;
            let (locals, stealers): (Vec<_>, Vec<_>) =
                (0..self.plan.workers).map(|_| local::new::<u32>(capacity)).unzip();
            let stealers: Arc<[Stealer<u32>]> = stealers.into();
            for (worker, local) in locals.into_iter().enumerate() {
                let task = WorkerTask {
                    me: worker as u32,
                    shared: shared.clone(),
                    graph: graph.clone(),
                    placement: self.plan.placement.clone(),
                    steal_order: runtime.shared.workers[worker].steal_order.clone(),
                    stealers: stealers.clone(),
                    body: body.clone(),
                    local,
                    stack: VecDeque::new(),
                    spill: RefCell::new(Vec::new()),
                    pinned_ready: Vec::new(),
                    inline: NONE,
                    done_here: 0,
                    flushed: 0,
                    report: WorkerRun::default(),
                    started,
                    mark: started,
                    idle_since: Some(started),
                    exited: false,
                };
                // Counted before the spawn: a task dropped unpolled (runtime shut down) uncounts itself.
                shared.in_flight.fetch_add(1, Ordering::AcqRel);
                if let Err(e) = runtime.spawn_on(worker, task.into_future()) {
                    // Bounded task storage full: stop the workers already started, and say why.
                    shared.abort.store(true, Ordering::SeqCst);
                    fence_before_checking();
                    for w in 0..shared.slots.len() {
                        shared.wake(w);
                    }
                    return Err(RunError::Spawn(e));
                }
            }
        }
        let waited = self.wait(total, options.watchdog);
        let elapsed = started.elapsed();
        match waited {
            Ok(()) => {
                while self.busy() {
                    std::thread::yield_now();
                }
                let workers = shared.slots.iter().map(|s| *lock(&s.report)).collect();
                let failures = core::mem::take(&mut *lock(&shared.failures));
                // Shared with the result: the next run allocates new arrays if the result still holds these.
                let (state, cause) = (shared.state.clone(), shared.cause.clone());
                let skipped = match scope {
                    Scope::All => {
                        (0..graph.len()).filter(|&v| shared.state[v].load(Ordering::Relaxed) == SKIPPED).count()
                    }
                    Scope::Downstream(nodes) => {
                        nodes.iter().filter(|&&v| shared.state[v as usize].load(Ordering::Relaxed) == SKIPPED).count()
                    }
                };
                Ok(RunResult { elapsed, workers, nodes: total, failures, skipped, state, cause })
            }
            Err(stall) => Err(RunError::Stalled(stall)),
        }
    }

    /// A downstream scope must name each node once and contain every successor of its nodes: otherwise counters
    /// would count the wrong inputs (a hang or a node run early). O(scope + its edges).
    fn check_scope(&mut self, nodes: &[NodeId]) -> Result<(), PlanError> {
        let graph = &*self.plan.graph;
        self.mark.resize(graph.len(), false);
        let bad = |v: NodeId| PlanError::BadScope { node: graph.name(v).into() };
        let mut result = Ok(());
        for &v in nodes {
            if v as usize >= graph.len() || core::mem::replace(&mut self.mark[v as usize], true) {
                result = Err(PlanError::BadScope { node: alloc::format!("#{v}") });
                break;
            }
        }
        if result.is_ok() {
            let missing = nodes.iter().flat_map(|&v| graph.successors(v)).find(|&&s| !self.mark[s as usize]);
            if let Some(&s) = missing {
                result = Err(bad(s));
            }
        }
        for &v in nodes {
            if let Some(m) = self.mark.get_mut(v as usize) {
                *m = false;
            }
        }
        result
    }

    /// Sets every counter for `scope` and seeds the inboxes with its ready nodes; returns the node count.
    fn reset(&mut self, scope: Scope<'_>) -> usize {
        self.scope = match scope {
            Scope::All => None,
            Scope::Downstream(nodes) => Some(nodes.to_vec()),
        };
        let graph = &*self.plan.graph;
        let n = graph.len();
        // A worker task can hold the state for a moment after its last poll: never wait, start afresh instead.
        if Arc::get_mut(&mut self.state).is_none() {
            self.state = Arc::new(Shared::new(n, self.plan.workers));
        }
        let Some(shared) = Arc::get_mut(&mut self.state) else { unreachable!("the state was just made unique") };
        // Exclusive access: plain stores through `get_mut`, which the compiler turns into memset and memcpy.
        *shared.done.get_mut() = false;
        *shared.abort.get_mut() = false;
        *lock(&shared.finished.0) = false;
        for slot in shared.slots.iter_mut() {
            slot.0.inbox.clear();
            *slot.0.sleeping.get_mut() = false;
            *slot.0.running.get_mut() = NONE;
            *slot.0.completed.get_mut() = 0;
            *lock(&slot.0.report) = WorkerRun::default();
        }
        *shared.num_sleeping.0.get_mut() = 0;
        lock(&shared.failures).clear();
        // The last run's result may still hold the outcome arrays: then this run gets new ones.
        match Arc::get_mut(&mut shared.state) {
            Some(state) if matches!(scope, Scope::All) => state.iter_mut().for_each(|s| *s.get_mut() = NOT_RUN),
            Some(_) => {}
            None => shared.state = (0..n).map(|_| AtomicU8::new(NOT_RUN)).collect(),
        }
        match Arc::get_mut(&mut shared.cause) {
            Some(cause) if matches!(scope, Scope::All) => cause.iter_mut().for_each(|c| *c.get_mut() = NONE),
            Some(_) => {}
            None => shared.cause = (0..n).map(|_| AtomicU32::new(NONE)).collect(),
        }
        let total = match scope {
            Scope::All => {
                for (p, &d) in shared.pending.iter_mut().zip(self.indegree.iter()) {
                    *p.get_mut() = d;
                }
                n
            }
            Scope::Downstream(nodes) => {
                for &v in nodes {
                    *shared.pending[v as usize].get_mut() = 0;
                    shared.state[v as usize].store(NOT_RUN, Ordering::Relaxed);
                    shared.cause[v as usize].store(NONE, Ordering::Relaxed);
                }
                for &v in nodes {
                    for &s in graph.successors(v) {
                        *shared.pending[s as usize].get_mut() += 1;
                    }
                }
                nodes.len()
            }
        };
        *shared.remaining.0.get_mut() = total;
        match scope {
            Scope::All => graph.roots().for_each(|v| self.seed(v)),
            Scope::Downstream(nodes) => {
                for &v in nodes {
                    if self.state.pending[v as usize].load(Ordering::Relaxed) == 0 {
                        self.seed(v);
                    }
                }
            }
        }
        total
    }

    fn seed(&self, v: NodeId) {
        self.state.slots[self.plan.worker_of[v as usize] as usize].inbox.seed(&self.state.next, v);
    }

    /// Waits for the run to finish, or for the watchdog.
    fn wait(&self, total: usize, watchdog: Duration) -> Result<(), Stall> {
        if total == 0 {
            return Ok(());
        }
        let shared = &*self.state;
        let completed = || shared.slots.iter().map(|s| s.completed.load(Ordering::Relaxed)).sum::<u64>();
        let (lock_, cond) = &shared.finished;
        let mut finished = lock(lock_);
        let mut last = completed();
        let mut quiet_since = Instant::now();
        let tick = (watchdog / 4).clamp(Duration::from_millis(1), Duration::from_millis(100));
        while !*finished {
            finished = cond.wait_timeout(finished, tick).unwrap_or_else(|e| e.into_inner()).0;
            if *finished {
                break;
            }
            let now = completed();
            if now != last {
                last = now;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= watchdog {
                drop(finished);
                // The picture first, then stop handing out nodes (workers finish the node they are in).
                let stall = self.stall_report(quiet_since.elapsed(), now, total);
                shared.abort.store(true, Ordering::SeqCst);
                fence_before_checking();
                for w in 0..shared.slots.len() {
                    shared.wake(w);
                }
                return Err(stall);
            }
        }
        Ok(())
    }

    fn stall_report(&self, quiet_for: Duration, completed: u64, total: usize) -> Stall {
        let shared = &*self.state;
        let graph = &*self.plan.graph;
        // A worker's `running` names the last node it started; it is running only if it has not finished.
        let running: Vec<NodeId> = shared
            .slots
            .iter()
            .map(|s| s.running.load(Ordering::Relaxed))
            .map(|v| if v != NONE && shared.state[v as usize].load(Ordering::Relaxed) == NOT_RUN { v } else { NONE })
            .collect();
        let mut in_scope = alloc::vec![self.scope.is_none(); graph.len()];
        for &v in self.scope.iter().flatten() {
            in_scope[v as usize] = true;
        }
        let finished = |v: NodeId| !in_scope[v as usize] || shared.state[v as usize].load(Ordering::Relaxed) != NOT_RUN;
        let mut waiting = Vec::new();
        let mut unfinished = 0;
        for &v in graph.topo_order() {
            if finished(v) || running.contains(&v) {
                continue;
            }
            unfinished += 1;
            if waiting.len() < 32 {
                let inputs = graph.predecessors(v).iter().filter(|&&p| !finished(p)).map(|&p| graph.name(p).into());
                waiting.push((graph.name(v).into(), inputs.collect()));
            }
        }
        let running =
            running.iter().enumerate().filter(|&(_, &v)| v != NONE).map(|(w, &v)| (w, graph.name(v).into())).collect();
        Stall { quiet_for, completed, total, running, waiting, unfinished }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Push `v` onto `worker`'s inbox and wake it if it sleeps.
    fn send(&self, worker: u32, v: NodeId) {
        let slot = &self.slots[worker as usize];
        slot.inbox.push(&self.next, v);
        fence_before_checking();
        if slot.sleeping.load(Ordering::SeqCst) {
            self.wake(worker as usize);
        }
    }

    fn wake(&self, worker: usize) {
        let slot = &self.slots[worker];
        if slot.sleeping.swap(false, Ordering::SeqCst) {
            self.num_sleeping.fetch_sub(1, Ordering::SeqCst);
            if let Some(waker) = lock(&slot.waker).take() {
                waker.wake();
            }
        }
    }

    /// Wake one sleeping worker other than `me` (there is stealable work).
    fn wake_one(&self, me: u32) {
        for (w, slot) in self.slots.iter().enumerate() {
            if w as u32 != me && slot.sleeping.load(Ordering::Relaxed) {
                self.wake(w);
                return;
            }
        }
    }

    fn finish(&self) {
        self.done.store(true, Ordering::SeqCst);
        fence_before_checking();
        for w in 0..self.slots.len() {
            self.wake(w);
        }
        let (lock_, cond) = &self.finished;
        *lock(lock_) = true;
        cond.notify_all();
    }
}

/// The owner's side of one worker for one run.
struct WorkerTask<B> {
    me: u32,
    shared: Arc<Shared>,
    graph: Arc<Graph>,
    /// Per node: its worker, with [`PINNED`] on pinned nodes.
    placement: Arc<[u32]>,
    steal_order: Box<[u32]>,
    stealers: Arc<[Stealer<u32>]>,
    body: Arc<B>,
    local: Local<u32>,
    /// Ready nodes not exposed to thieves (LIFO at the back; exposed from the front, the oldest).
    stack: VecDeque<u32>,
    /// The ring's overflow (only if a steal filled it): moved back to the stack when the worker runs dry.
    spill: RefCell<Vec<u32>>,
    pinned_ready: Vec<u32>,
    /// The ready successor to run next, without queueing it (`NONE`: none).
    inline: NodeId,
    done_here: u64,
    /// `done_here` when completions were last subtracted from `remaining`.
    flushed: u64,
    report: WorkerRun,
    started: Instant,
    /// When the current busy stretch began.
    mark: Instant,
    idle_since: Option<Instant>,
    /// `exit` ran (else dropping the task uncounts it from `in_flight`: a runtime shut down under a run).
    exited: bool,
}

impl<B> Drop for WorkerTask<B> {
    fn drop(&mut self) {
        if !self.exited {
            self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The ring overflows into the owner's spill list (not stealable; moved back as the ring drains).
struct Spill<'a>(&'a RefCell<Vec<u32>>);

impl Overflow<u32> for Spill<'_> {
    fn push_batch(&self, items: impl Iterator<Item = u32>) {
        self.0.borrow_mut().extend(items);
    }
}

impl<B: Body> WorkerTask<B> {
    async fn into_future(mut self) {
        poll_fn(|cx| self.turn(cx)).await
    }

    fn turn(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut budget = NODES_PER_TURN;
        loop {
            if self.shared.abort.load(Ordering::Relaxed) {
                return self.exit();
            }
            if let Some(v) = self.next_local() {
                if self.idle_since.take().is_some() {
                    self.mark = Instant::now();
                }
                self.execute(v);
                self.expose();
                budget -= 1;
                if budget == 0 {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                continue;
            }
            // Dry: account the busy stretch, publish completions, then look elsewhere.
            let now = Instant::now();
            if self.idle_since.is_none() {
                self.report.busy_ns += dur_ns(now - self.mark);
                self.idle_since = Some(now);
            }
            self.flush();
            if self.shared.done.load(Ordering::Acquire) {
                return self.exit();
            }
            // Watch the inbox for a moment before anything costlier: a successor sent by another worker usually
            // arrives within a cache-line transfer or a node's run.
            if self.watch_inbox() {
                continue;
            }
            if let Some(v) = self.steal() {
                self.idle_since = None;
                self.mark = Instant::now();
                self.execute(v);
                budget = budget.saturating_sub(1).max(1);
                continue;
            }
            let since = self.idle_since.unwrap_or(now);
            if since.elapsed() < SPIN_BEFORE_SLEEP {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if self.sleep(cx) {
                return Poll::Pending;
            }
        }
    }

    /// Spin briefly on this worker's inbox; true when something arrived (or the run ended).
    fn watch_inbox(&self) -> bool {
        let slot = &self.shared.slots[self.me as usize];
        for _ in 0..INBOX_WATCH_SPINS {
            if !slot.inbox.is_empty()
                || self.shared.done.load(Ordering::Relaxed)
                || self.shared.abort.load(Ordering::Relaxed)
            {
                return true;
            }
            core::hint::spin_loop();
        }
        false
    }

    /// Keep a few of this worker's ready nodes in its ring, where idle workers can steal them; the rest stay on
    /// the private stack, which costs no atomics to push or pop.
    #[inline]
    fn expose(&mut self) {
        if self.stack.len() > 1 && self.local.len() < EXPOSE_LOW {
            let n = (self.stack.len() / 2).min(EXPOSE_BATCH);
            for v in self.stack.drain(..n) {
                self.local.push_back(v, &Spill(&self.spill));
            }
            // Once per batch: pairs with a sleeper's fence so a thief going to sleep sees this batch or is woken.
            fence_before_checking();
            if self.shared.num_sleeping.load(Ordering::Relaxed) != 0 {
                self.shared.wake_one(self.me);
            }
        }
    }

    fn exit(&mut self) -> Poll<()> {
        self.flush();
        let total = dur_ns(self.started.elapsed());
        if self.idle_since.take().is_none() {
            self.report.busy_ns += dur_ns(self.mark.elapsed());
        }
        self.report.idle_ns = total.saturating_sub(self.report.busy_ns + self.report.steal_ns);
        self.report.nodes = self.done_here;
        let slot = &self.shared.slots[self.me as usize];
        *lock(&slot.report) = self.report;
        slot.running.store(NONE, Ordering::Relaxed);
        // Do not keep this finished task alive (in bounded storage) through a stale waker.
        lock(&slot.waker).take();
        self.exited = true;
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        Poll::Ready(())
    }

    /// Next node from this worker's own queues: inline successor, ready pinned nodes, private stack, ring,
    /// spill, inbox.
    #[inline]
    fn next_local(&mut self) -> Option<NodeId> {
        if self.inline != NONE {
            return Some(core::mem::replace(&mut self.inline, NONE));
        }
        if let Some(v) = self.pinned_ready.pop() {
            return Some(v);
        }
        if let Some(v) = self.stack.pop_back() {
            return Some(v);
        }
        if let Some(v) = self.local.pop() {
            return Some(v);
        }
        self.stack.extend(self.spill.borrow_mut().drain(..));
        self.drain_inbox();
        self.pinned_ready.pop().or_else(|| self.stack.pop_back())
    }

    /// Move everything in this worker's inbox to its pinned list or private stack.
    fn drain_inbox(&mut self) {
        let slot = &self.shared.slots[self.me as usize];
        let mut v = slot.inbox.take_all();
        while v != END {
            let next = self.shared.next[v as usize].load(Ordering::Relaxed);
            if self.placement[v as usize] & PINNED != 0 {
                self.pinned_ready.push(v);
            } else {
                self.stack.push_back(v);
            }
            v = next;
        }
    }

    fn steal(&mut self) -> Option<NodeId> {
        let start = Instant::now();
        let mut found = None;
        for &victim in self.steal_order.iter() {
            let stolen = self.stealers[victim as usize].steal_into(&mut self.local);
            if stolen.is_some() {
                self.report.steals += 1;
                found = stolen;
                break;
            }
        }
        self.report.steal_ns += dur_ns(start.elapsed());
        found
    }

    /// Sleep until woken: returns false (do not sleep) if work or the end appeared meanwhile.
    fn sleep(&mut self, cx: &mut Context<'_>) -> bool {
        let shared = &*self.shared;
        let slot = &shared.slots[self.me as usize];
        *lock(&slot.waker) = Some(cx.waker().clone());
        slot.sleeping.store(true, Ordering::SeqCst);
        shared.num_sleeping.fetch_add(1, Ordering::SeqCst);
        fence_before_checking();
        let work = !slot.inbox.is_empty_seqcst()
            || shared.done.load(Ordering::SeqCst)
            || shared.abort.load(Ordering::SeqCst)
            || self.steal_order.iter().any(|&v| !self.stealers[v as usize].is_empty());
        if work {
            if slot.sleeping.swap(false, Ordering::SeqCst) {
                shared.num_sleeping.fetch_sub(1, Ordering::SeqCst);
            }
            return false;
        }
        true
    }

    fn flush(&mut self) {
        self.shared.slots[self.me as usize].running.store(NONE, Ordering::Relaxed);
        let n = (self.done_here - self.flushed) as usize;
        self.flushed = self.done_here;
        // The worker whose subtraction takes `remaining` to zero ends the run.
        if n != 0 && self.shared.remaining.fetch_sub(n, Ordering::AcqRel) == n {
            self.shared.finish();
        }
    }

    fn execute(&mut self, v: NodeId) {
        let shared = &*self.shared;
        let slot = &shared.slots[self.me as usize];
        slot.running.store(v, Ordering::Relaxed);
        let poisoned = shared.pending[v as usize].load(Ordering::Relaxed) & POISON != 0;
        let outcome = if poisoned {
            let cause = self
                .graph
                .predecessors(v)
                .iter()
                .map(|&p| shared.cause[p as usize].load(Ordering::Relaxed))
                .find(|&c| c != NONE)
                .unwrap_or(NONE);
            shared.cause[v as usize].store(cause, Ordering::Relaxed);
            SKIPPED
        } else {
            match catch_unwind(AssertUnwindSafe(|| self.body.run(v))) {
                Ok(Ok(())) => DONE,
                Ok(Err(error)) => self.fail(v, error),
                Err(panic) => self.fail(v, panic_message(&*panic)),
            }
        };
        shared.state[v as usize].store(outcome, Ordering::Relaxed);
        let assigned_here = self.placement[v as usize] & !PINNED;
        self.report.off_assigned += u64::from(assigned_here != self.me);
        self.done_here += 1;
        // Progress, for the watchdog. (`running` keeps naming `v` until the next node or idle: the stall report
        // counts a finished node as not running.)
        slot.completed.store(self.done_here, Ordering::Relaxed);
        let failed = outcome != DONE;
        for &s in self.graph.successors(v) {
            let counter = &shared.pending[s as usize];
            if failed {
                counter.fetch_or(POISON, Ordering::Relaxed);
            }
            // A count of 1 means every other input already finished (and is visible: Acquire), so nobody else
            // touches the counter and no read-modify-write is needed; chains and trees never pay one. Otherwise
            // AcqRel: our writes (the node's output) happen-before whoever takes the count to zero.
            let last =
                counter.load(Ordering::Acquire) & !POISON == 1 || counter.fetch_sub(1, Ordering::AcqRel) & !POISON == 1;
            if !last {
                continue;
            }
            // A successor assigned with `v` stays with `v`, wherever `v` ran: a stolen node takes its chain along
            // (that is how stealing moves load, not just one node). Others go to their assigned worker.
            let place = self.placement[s as usize];
            let (owner, pinned) = (place & !PINNED, place & PINNED != 0);
            if pinned && owner == self.me {
                self.pinned_ready.push(s);
            } else if pinned || owner != assigned_here {
                shared.send(owner, s);
            } else if self.inline == NONE {
                self.inline = s;
            } else {
                self.stack.push_back(s);
            }
        }
    }

    fn fail(&self, v: NodeId, error: String) -> u8 {
        self.shared.cause[v as usize].store(v, Ordering::Relaxed);
        lock(&self.shared.failures).push((v, error));
        FAILED
    }
}

pub(crate) fn panic_message(panic: &(dyn core::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        alloc::format!("panicked: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        alloc::format!("panicked: {s}")
    } else {
        String::from("panicked")
    }
}

fn dur_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
