//! Typed computations: nodes are Rust functions of their inputs' values, sources are set from outside, and a change
//! recomputes only what is downstream of it.
//!
//! ```
//! use weir_schedulers::dag::compute::Builder;
//!
//! let mut b = Builder::new();
//! let rate = b.source("rate", 0.05_f64).unwrap();
//! let assets = b
//!     .per_asset(["AAPL", "MSFT", "NVDA"], |a, _| {
//!         let spot = a.source("spot", 100.0_f64)?;
//!         let forward = a.compute("forward", (spot, rate), |(s, r)| s * (1.0 + r))?;
//!         Ok((spot, forward))
//!     })
//!     .unwrap();
//! let forwards: Vec<_> = assets.iter().map(|&(_, forward)| forward).collect();
//! let total = b.compute("total", forwards, |each| each.sum::<f64>()).unwrap();
//! let mut dag = b.build().unwrap();
//! dag.run_sequential().unwrap();
//! assert_eq!(*dag.get(total).unwrap(), 315.0);
//!
//! // One asset's spot moves: only its forward and the total are recomputed.
//! let (msft_spot, _) = assets[1];
//! dag.set(msft_spot, 200.0).unwrap();
//! let touched = dag.recompute_sequential().unwrap();
//! assert_eq!((touched.nodes, touched.full_sweep), (3, false)); // MSFT/spot, MSFT/forward, total
//! assert_eq!(*dag.get(total).unwrap(), 420.0);
//!
//! // The shared rate reaches most of the graph: a full sweep is cheaper than tracking it.
//! dag.set(rate, 0.10).unwrap();
//! assert!(dag.recompute_sequential().unwrap().full_sweep);
//! assert!((*dag.get(total).unwrap() - 440.0).abs() < 1e-9);
//! ```
//!
//! Each node's value lives in a slot allocated at build; a node's function reads its inputs' slots and writes its
//! own. Runs take `&mut Dag` and reads take `&Dag`, and inside a run a node runs only after every input finished
//! (the dependency counter's acquire/release), so a slot is never read while it is written.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::cell::UnsafeCell;
use core::fmt::Display;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU64, Ordering};

use super::dirty::Downstream;
use super::graph::{Graph, GraphBuilder, GraphError, NONE, NodeId};
use super::run::{Body, Outcome, Plan, RunError, RunOptions, RunResult, Runner, Scope};
use crate::executor::Handle;

/// A typed reference to a node's value. `Copy`; only valid with the builder (and dag) that made it.
pub struct Value<T> {
    node: NodeId,
    dag: u64,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Value<T> {}

impl<T> core::fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Value({})", self.node)
    }
}

impl<T> Value<T> {
    /// The node's id in the graph.
    pub fn node(self) -> NodeId {
        self.node
    }
}

/// One node's value. Written by its node (or `Dag::set` for a source), read by its successors and `Dag::get`.
#[doc(hidden)]
pub struct Slot<T> {
    value: UnsafeCell<Option<T>>,
}

// SAFETY: a slot is shared between the worker threads of a run. Writes happen only in its own node's body (once
// per run; runs are serialized by `&mut Dag`) or in `Dag::set` (`&mut Dag`, no run in flight); reads happen in
// successors' bodies, which start after the write through the dependency counter's AcqRel decrement, and in
// `Dag::get` (`&Dag`, after the run's workers all exited). So no read overlaps a write, and `T: Send + Sync`
// makes the value itself safe to hand across and share.
unsafe impl<T: Send + Sync> Sync for Slot<T> {}

impl<T> Slot<T> {
    /// # Safety
    /// No write to this slot may run concurrently (see the `Sync` impl).
    unsafe fn read(&self) -> Option<&T> {
        // SAFETY: per the caller, no write overlaps this shared borrow.
        unsafe { (*self.value.get()).as_ref() }
    }

    /// # Safety
    /// No other access to this slot may run concurrently (see the `Sync` impl).
    unsafe fn write(&self, value: Option<T>) {
        // SAFETY: per the caller, this is the only access.
        unsafe { *self.value.get() = value }
    }
}

/// An input whose value is missing (its node failed earlier, and was not recomputed).
#[derive(Debug, Clone, Copy)]
pub struct MissingInput(NodeId);

mod sealed {
    /// Only this module's input kinds: a user impl could read slots outside the dependency order.
    pub trait Sealed {}
}

/// The inputs a node takes: one [`Value`], a tuple of up to four, or a `Vec` of same-typed values (a reduce).
pub trait Inputs: sealed::Sealed {
    /// What the node's function receives.
    type Refs<'a>;
    /// The typed slots, captured by the node's function.
    #[doc(hidden)]
    type Slots: Send + Sync + 'static;
    #[doc(hidden)]
    fn nodes(&self) -> Vec<(NodeId, u64)>;
    #[doc(hidden)]
    fn slots(&self, b: &Builder) -> Self::Slots;
    /// # Safety
    /// Called only from the node's body during a run, after every input finished.
    #[doc(hidden)]
    unsafe fn read(slots: &Self::Slots) -> Result<Self::Refs<'_>, MissingInput>;
}

impl<A> sealed::Sealed for Value<A> {}
impl<A: Send + Sync + 'static> Inputs for Value<A> {
    type Refs<'a> = &'a A;
    type Slots = (NodeId, Arc<Slot<A>>);
    fn nodes(&self) -> Vec<(NodeId, u64)> {
        alloc::vec![(self.node, self.dag)]
    }
    fn slots(&self, b: &Builder) -> Self::Slots {
        (self.node, b.slot(*self))
    }
    unsafe fn read(slots: &Self::Slots) -> Result<&A, MissingInput> {
        // SAFETY: per the caller, the input finished and no run writes it now.
        unsafe { slots.1.read() }.ok_or(MissingInput(slots.0))
    }
}

macro_rules! tuple_inputs {
    ($($name:ident $idx:tt),+) => {
        impl<$($name),+> sealed::Sealed for ($(Value<$name>,)+) {}
        impl<$($name: Send + Sync + 'static),+> Inputs for ($(Value<$name>,)+) {
            type Refs<'a> = ($(&'a $name,)+);
            type Slots = ($((NodeId, Arc<Slot<$name>>),)+);
            fn nodes(&self) -> Vec<(NodeId, u64)> {
                alloc::vec![$((self.$idx.node, self.$idx.dag)),+]
            }
            fn slots(&self, b: &Builder) -> Self::Slots {
                ($((self.$idx.node, b.slot(self.$idx)),)+)
            }
            unsafe fn read(slots: &Self::Slots) -> Result<Self::Refs<'_>, MissingInput> {
                // SAFETY: per the caller, every input finished and no run writes it now.
                Ok(($(unsafe { slots.$idx.1.read() }.ok_or(MissingInput(slots.$idx.0))?,)+))
            }
        }
    };
}

tuple_inputs!(A 0);
tuple_inputs!(A 0, B 1);
tuple_inputs!(A 0, B 1, C 2);
tuple_inputs!(A 0, B 1, C 2, D 3);

/// A reduce's inputs: the values in the order given.
#[derive(Debug)]
pub struct Each<'a, A> {
    slots: core::slice::Iter<'a, (NodeId, Arc<Slot<A>>)>,
}

impl<'a, A> Iterator for Each<'a, A> {
    type Item = &'a A;
    fn next(&mut self) -> Option<&'a A> {
        // SAFETY: checked present in `read` (every value was there when the node started) and, as there, no run
        // writes these slots while the node runs.
        self.slots.next().and_then(|(_, slot)| unsafe { slot.read() })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.slots.size_hint()
    }
}

impl<A> ExactSizeIterator for Each<'_, A> {}

impl<A> sealed::Sealed for Vec<Value<A>> {}
impl<A: Send + Sync + 'static> Inputs for Vec<Value<A>> {
    type Refs<'a> = Each<'a, A>;
    type Slots = Vec<(NodeId, Arc<Slot<A>>)>;
    fn nodes(&self) -> Vec<(NodeId, u64)> {
        self.iter().map(|v| (v.node, v.dag)).collect()
    }
    fn slots(&self, b: &Builder) -> Self::Slots {
        self.iter().map(|&v| (v.node, b.slot(v))).collect()
    }
    unsafe fn read(slots: &Self::Slots) -> Result<Each<'_, A>, MissingInput> {
        for (node, slot) in slots {
            // SAFETY: per the caller.
            if unsafe { slot.read() }.is_none() {
                return Err(MissingInput(*node));
            }
        }
        Ok(Each { slots: slots.iter() })
    }
}

impl<T> core::fmt::Debug for Slot<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Slot")
    }
}

type NodeFn = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

static NEXT_DAG: AtomicU64 = AtomicU64::new(1);

/// Builds a [`Dag`]: sources, nodes (functions of their inputs), per-asset fan-outs.
pub struct Builder {
    id: u64,
    graph: GraphBuilder,
    slots: Vec<Arc<dyn Any + Send + Sync>>,
    bodies: Vec<Option<NodeFn>>,
    groups: u32,
}

impl core::fmt::Debug for Builder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Builder").field("nodes", &self.bodies.len()).finish()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// An empty computation.
    pub fn new() -> Self {
        Builder {
            id: NEXT_DAG.fetch_add(1, Ordering::Relaxed),
            graph: GraphBuilder::new(),
            slots: Vec::new(),
            bodies: Vec::new(),
            groups: 0,
        }
    }

    fn slot<T: Send + Sync + 'static>(&self, value: Value<T>) -> Arc<Slot<T>> {
        // Handles are typed by the builder that made them (checked in `add`), so the downcast holds.
        match self.slots[value.node as usize].clone().downcast::<Slot<T>>() {
            Ok(slot) => slot,
            Err(_) => unreachable!("a Value's slot has the Value's type"),
        }
    }

    fn add<T: Send + Sync + 'static>(
        &mut self,
        name: &str,
        kind: &str,
        inputs: &[(NodeId, u64)],
        initial: Option<T>,
    ) -> Result<Value<T>, GraphError> {
        if let Some(&(input, _)) = inputs.iter().find(|&&(_, dag)| dag != self.id) {
            return Err(GraphError::MissingInput { node: name.into(), input: format!("#{input} of another builder") });
        }
        let node = self.graph.add_node(name, kind)?;
        for &(input, _) in inputs {
            self.graph.add_edge(input, node);
        }
        self.slots.push(Arc::new(Slot { value: UnsafeCell::new(initial) }));
        self.bodies.push(None);
        Ok(Value { node, dag: self.id, _type: PhantomData })
    }

    /// A source: a value set from outside ([`Dag::set`]), starting at `initial`.
    pub fn source<T: Send + Sync + 'static>(&mut self, name: &str, initial: T) -> Result<Value<T>, GraphError> {
        self.add(name, "source", &[], Some(initial))
    }

    /// A node computing `f(inputs)`; an `Err` fails it (and skips everything downstream).
    pub fn node<I, T, E, F>(&mut self, name: &str, inputs: I, f: F) -> Result<Value<T>, GraphError>
    where
        I: Inputs,
        T: Send + Sync + 'static,
        E: Display,
        F: Fn(I::Refs<'_>) -> Result<T, E> + Send + Sync + 'static,
    {
        let value = self.add::<T>(name, "node", &inputs.nodes(), None)?;
        let slots = inputs.slots(self);
        let out = self.slot(value);
        let body: NodeFn = Box::new(move || {
            // SAFETY: this runs as the node's body: every input finished, and no run writes their slots now.
            let refs = unsafe { I::read(&slots) }.map_err(|MissingInput(n)| format!("input #{n} has no value"))?;
            let result = f(refs).map_err(|e| e.to_string())?;
            // SAFETY: only this node writes its slot, once per run; no successor reads it until we finish.
            unsafe { out.write(Some(result)) };
            Ok(())
        });
        self.bodies[value.node as usize] = Some(body);
        Ok(value)
    }

    /// A node computing `f(inputs)`, which cannot fail (a panic still fails it).
    pub fn compute<I, T, F>(&mut self, name: &str, inputs: I, f: F) -> Result<Value<T>, GraphError>
    where
        I: Inputs,
        T: Send + Sync + 'static,
        F: Fn(I::Refs<'_>) -> T + Send + Sync + 'static,
    {
        self.node(name, inputs, move |refs| Ok::<T, core::convert::Infallible>(f(refs)))
    }

    /// Builds the same sub-computation once per asset: names get the asset as a prefix (`AAPL/spot`) and the nodes
    /// form a group, which the grouping partitioner keeps on one worker.
    pub fn per_asset<K: Display, R>(
        &mut self,
        assets: impl IntoIterator<Item = K>,
        mut f: impl FnMut(&mut Asset<'_>, &K) -> Result<R, GraphError>,
    ) -> Result<Vec<R>, GraphError> {
        let mut out = Vec::new();
        for key in assets {
            let group = self.groups;
            self.groups += 1;
            let first = self.bodies.len();
            let mut asset = Asset { builder: self, prefix: key.to_string() };
            out.push(f(&mut asset, &key)?);
            for node in first..self.bodies.len() {
                self.graph.set_group(node as NodeId, group);
            }
        }
        Ok(out)
    }

    /// Sets a node's estimated cost (for partitioners and explain).
    pub fn set_cost<T>(&mut self, value: Value<T>, cost_ns: u64) {
        self.graph.set_cost(value.node, cost_ns);
    }

    /// Pins a node to a worker.
    pub fn pin<T>(&mut self, value: Value<T>, worker: u32) {
        self.graph.set_pin(value.node, worker);
    }

    /// Validates the graph and freezes the computation.
    pub fn build(self) -> Result<Dag, GraphError> {
        let graph = Arc::new(self.graph.build()?);
        let n = graph.len();
        Ok(Dag {
            id: self.id,
            outcome: alloc::vec![Outcome::NotRun; n],
            cause: alloc::vec![NONE; n],
            errors: Vec::new(),
            downstream: Downstream::new(n),
            changed: Vec::new(),
            is_changed: alloc::vec![false; n],
            body: Arc::new(Bodies { bodies: self.bodies }),
            slots: self.slots,
            runner: None,
            graph,
            ran: false,
        })
    }
}

/// One asset's part of a [`Builder::per_asset`] fan-out.
pub struct Asset<'a> {
    builder: &'a mut Builder,
    prefix: String,
}

impl core::fmt::Debug for Asset<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Asset").field("prefix", &self.prefix).finish()
    }
}

impl Asset<'_> {
    fn name(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// A source of this asset.
    pub fn source<T: Send + Sync + 'static>(&mut self, name: &str, initial: T) -> Result<Value<T>, GraphError> {
        let name = self.name(name);
        self.builder.source(&name, initial)
    }

    /// A fallible node of this asset.
    pub fn node<I, T, E, F>(&mut self, name: &str, inputs: I, f: F) -> Result<Value<T>, GraphError>
    where
        I: Inputs,
        T: Send + Sync + 'static,
        E: Display,
        F: Fn(I::Refs<'_>) -> Result<T, E> + Send + Sync + 'static,
    {
        let name = self.name(name);
        self.builder.node(&name, inputs, f)
    }

    /// An infallible node of this asset.
    pub fn compute<I, T, F>(&mut self, name: &str, inputs: I, f: F) -> Result<Value<T>, GraphError>
    where
        I: Inputs,
        T: Send + Sync + 'static,
        F: Fn(I::Refs<'_>) -> T + Send + Sync + 'static,
    {
        let name = self.name(name);
        self.builder.compute(&name, inputs, f)
    }

    /// The whole builder (shared nodes, costs, pins).
    pub fn builder(&mut self) -> &mut Builder {
        self.builder
    }
}

struct Bodies {
    bodies: Vec<Option<NodeFn>>,
}

impl Body for Bodies {
    #[inline]
    fn run(&self, node: NodeId) -> Result<(), String> {
        match &self.bodies[node as usize] {
            Some(body) => body(),
            None => Ok(()), // a source: its value was set from outside
        }
    }
}

/// Why a value is not available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// The node (or one upstream of it) failed: `node` is the one that failed, with its error.
    Failed {
        /// The node asked for.
        at: String,
        /// The failed node at the root.
        node: String,
        /// Its error.
        error: String,
    },
    /// Never computed (no run yet).
    NotComputed(String),
    /// A stalled run still has a node running.
    Busy,
    /// The handle belongs to another computation.
    Foreign,
    /// [`Dag::set`] on a node that is not a source.
    NotASource(String),
}

impl Display for ValueError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Failed { at, node, error } if at == node => write!(f, "{node} failed: {error}"),
            Self::Failed { at, node, error } => write!(f, "{at} not computed: upstream {node} failed: {error}"),
            Self::NotComputed(at) => write!(f, "{at} has not been computed yet"),
            Self::Busy => write!(f, "a stalled run still has a node running"),
            Self::Foreign => write!(f, "this value belongs to another computation"),
            Self::NotASource(at) => write!(f, "{at} is computed, not a source; only sources can be set"),
        }
    }
}

impl core::error::Error for ValueError {}

/// What a run or recompute did.
#[derive(Debug, Clone)]
pub struct Recompute {
    /// Nodes run (or skipped after a failure).
    pub nodes: usize,
    /// True when the whole graph was swept (most of it was dirty, or the previous run had failures).
    pub full_sweep: bool,
    /// The parallel run's result, when it ran on a runtime.
    pub run: Option<RunResult>,
}

/// A built computation: set sources, run, read values.
pub struct Dag {
    id: u64,
    graph: Arc<Graph>,
    body: Arc<Bodies>,
    slots: Vec<Arc<dyn Any + Send + Sync>>,
    outcome: Vec<Outcome>,
    cause: Vec<NodeId>,
    errors: Vec<(NodeId, String)>,
    downstream: Downstream,
    changed: Vec<NodeId>,
    is_changed: Vec<bool>,
    runner: Option<Runner>,
    ran: bool,
}

impl core::fmt::Debug for Dag {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Dag").field("nodes", &self.graph.len()).field("edges", &self.graph.edge_count()).finish()
    }
}

/// Dirty sets larger than this fraction of the graph are recomputed by a full sweep.
const FULL_SWEEP_FRACTION: usize = 2;
/// Dirty sets smaller than this run on the calling thread: waking workers costs more than they would save.
pub const PARALLEL_MIN_NODES: usize = 2048;

impl Dag {
    /// The graph (for partitioners and explain).
    pub fn graph(&self) -> &Arc<Graph> {
        &self.graph
    }

    /// Sets a source; the next recompute covers everything downstream of it.
    pub fn set<T: Send + Sync + 'static>(&mut self, source: Value<T>, value: T) -> Result<(), ValueError> {
        self.check(source)?;
        if self.body.bodies[source.node as usize].is_some() {
            return Err(ValueError::NotASource(self.graph.name(source.node).into()));
        }
        let slot = self.slots[source.node as usize].clone().downcast::<Slot<T>>().map_err(|_| ValueError::Foreign)?;
        // SAFETY: `&mut self` and no run in flight (checked): nothing else touches the slot.
        unsafe { slot.write(Some(value)) };
        if !self.is_changed[source.node as usize] {
            self.is_changed[source.node as usize] = true;
            self.changed.push(source.node);
        }
        Ok(())
    }

    fn check<T>(&self, value: Value<T>) -> Result<(), ValueError> {
        if value.dag != self.id {
            return Err(ValueError::Foreign);
        }
        if self.runner.as_ref().is_some_and(Runner::busy) {
            return Err(ValueError::Busy);
        }
        Ok(())
    }

    /// A node's value from the last run that covered it.
    pub fn get<T: Send + Sync + 'static>(&self, value: Value<T>) -> Result<&T, ValueError> {
        self.check(value)?;
        let v = value.node;
        let at = || String::from(self.graph.name(v));
        match self.outcome[v as usize] {
            Outcome::Failed | Outcome::Skipped => {
                let cause = self.cause[v as usize];
                let error = self.errors.iter().find(|(n, _)| *n == cause).map(|(_, e)| e.clone()).unwrap_or_default();
                return Err(ValueError::Failed { at: at(), node: self.graph.name(cause).into(), error });
            }
            Outcome::NotRun if !self.ran => return Err(ValueError::NotComputed(at())),
            _ => {}
        }
        let slot = self.slots[v as usize].downcast_ref::<Slot<T>>().ok_or(ValueError::Foreign)?;
        // SAFETY: `&self`, and no run in flight (checked above): nothing writes the slot while this borrow lives.
        unsafe { slot.read() }.ok_or_else(|| ValueError::NotComputed(at()))
    }

    /// Every node, once, in topological order on this thread: the reference for parallel runs. Refused (`Busy`)
    /// while a node of a run stopped by its watchdog is still running.
    pub fn run_sequential(&mut self) -> Result<Recompute, ValueError> {
        self.check_idle()?;
        let graph = self.graph.clone();
        self.run_in_order(graph.topo_order());
        self.clear_changed();
        Ok(Recompute { nodes: graph.len(), full_sweep: true, run: None })
    }

    fn check_idle(&self) -> Result<(), ValueError> {
        if self.runner.as_ref().is_some_and(Runner::busy) { Err(ValueError::Busy) } else { Ok(()) }
    }

    /// Recomputes what changed sources affect, on this thread; everything when most of the graph is dirty or the
    /// last run had failures.
    pub fn recompute_sequential(&mut self) -> Result<Recompute, ValueError> {
        self.check_idle()?;
        if !self.ran || !self.errors.is_empty() {
            return self.run_sequential();
        }
        let limit = self.graph.len() / FULL_SWEEP_FRACTION;
        let changed = core::mem::take(&mut self.changed);
        let mut downstream = core::mem::replace(&mut self.downstream, Downstream::new(0));
        let outcome = match downstream.search(&self.graph, &changed, limit) {
            Some(order) => {
                self.run_in_order(order);
                Recompute { nodes: order.len(), full_sweep: false, run: None }
            }
            None => {
                let graph = self.graph.clone();
                self.run_in_order(graph.topo_order());
                Recompute { nodes: graph.len(), full_sweep: true, run: None }
            }
        };
        self.downstream = downstream;
        self.changed = changed;
        self.clear_changed();
        Ok(outcome)
    }

    fn clear_changed(&mut self) {
        for &v in &self.changed {
            self.is_changed[v as usize] = false;
        }
        self.changed.clear();
    }

    /// Runs `order` (a topological order of a successor-closed set) on this thread, with failure propagation.
    fn run_in_order(&mut self, order: &[NodeId]) {
        self.ran = true;
        // Inputs are checked for failures only once something failed (here or before): the common sweep does not
        // read every node's input list twice.
        let mut any_failed = !self.errors.is_empty();
        for &v in order {
            if any_failed {
                let failed_input = self
                    .graph
                    .predecessors(v)
                    .iter()
                    .find(|&&p| matches!(self.outcome[p as usize], Outcome::Failed | Outcome::Skipped));
                if let Some(&p) = failed_input {
                    self.outcome[v as usize] = Outcome::Skipped;
                    self.cause[v as usize] = self.cause[p as usize];
                    continue;
                }
                self.errors.retain(|(n, _)| *n != v);
            }
            match run_caught(&self.body, v) {
                Ok(()) => {
                    self.outcome[v as usize] = Outcome::Done;
                    self.cause[v as usize] = NONE;
                }
                Err(e) => {
                    any_failed = true;
                    self.outcome[v as usize] = Outcome::Failed;
                    self.cause[v as usize] = v;
                    self.errors.push((v, e));
                }
            }
        }
    }

    /// Every node on `runtime`'s workers, placed by `worker_of` (a partition; stealing rebalances).
    pub fn run(&mut self, runtime: &Handle, worker_of: &[u32], options: RunOptions) -> Result<Recompute, RunError> {
        let body = self.body.clone();
        let result = self.runner_for(runtime, worker_of)?.run(runtime, &body, Scope::All, options);
        let result = self.unless_stalled(result)?;
        self.absorb(&result, None);
        self.clear_changed();
        Ok(Recompute { nodes: result.nodes, full_sweep: true, run: Some(result) })
    }

    /// Recomputes what changed sources affect: on the calling thread when that is small (under
    /// [`PARALLEL_MIN_NODES`]), else on `runtime`'s workers; everything when most of the graph is dirty or the last
    /// run had failures.
    pub fn recompute(
        &mut self,
        runtime: &Handle,
        worker_of: &[u32],
        options: RunOptions,
    ) -> Result<Recompute, RunError> {
        if self.runner.as_ref().is_some_and(Runner::busy) {
            return Err(RunError::Plan(super::run::PlanError::StillRunning));
        }
        if !self.ran || !self.errors.is_empty() {
            return self.run(runtime, worker_of, options);
        }
        let limit = self.graph.len() / FULL_SWEEP_FRACTION;
        let changed = core::mem::take(&mut self.changed);
        let mut downstream = core::mem::replace(&mut self.downstream, Downstream::new(0));
        let found = downstream.search(&self.graph, &changed, limit).map(<[NodeId]>::to_vec);
        self.downstream = downstream;
        self.changed = changed;
        let Some(order) = found else {
            return self.run(runtime, worker_of, options);
        };
        if order.len() < PARALLEL_MIN_NODES {
            self.run_in_order(&order);
            self.clear_changed();
            return Ok(Recompute { nodes: order.len(), full_sweep: false, run: None });
        }
        let body = self.body.clone();
        let result = self.runner_for(runtime, worker_of)?.run(runtime, &body, Scope::Downstream(&order), options);
        let result = self.unless_stalled(result)?;
        self.absorb(&result, Some(&order));
        self.clear_changed();
        Ok(Recompute { nodes: order.len(), full_sweep: false, run: Some(result) })
    }

    fn runner_for(&mut self, runtime: &Handle, worker_of: &[u32]) -> Result<&mut Runner, RunError> {
        let stale = match &self.runner {
            Some(r) => r.plan().worker_of() != worker_of || r.plan().workers() != runtime.workers(),
            None => true,
        };
        if stale {
            if self.runner.as_ref().is_some_and(Runner::busy) {
                return Err(RunError::Plan(super::run::PlanError::StillRunning));
            }
            let plan = Plan::new(self.graph.clone(), worker_of.to_vec(), runtime.workers())?;
            self.runner = Some(Runner::new(plan));
        }
        Ok(self.runner.as_mut().expect("just set"))
    }

    /// A stalled run left some slots new and some old: trust none of them until a full run (the next `recompute`
    /// is one), and keep the changed sources for it.
    fn unless_stalled(&mut self, result: Result<RunResult, RunError>) -> Result<RunResult, RunError> {
        if result.is_err() {
            self.ran = false;
            self.outcome.fill(Outcome::NotRun);
        }
        result
    }

    fn absorb(&mut self, result: &RunResult, scope: Option<&[NodeId]>) {
        self.ran = true;
        let mut update = |v: NodeId| {
            self.outcome[v as usize] = result.outcome(v);
            self.cause[v as usize] = result.cause(v).unwrap_or(NONE);
        };
        match scope {
            None => (0..self.graph.len() as NodeId).for_each(&mut update),
            Some(nodes) => nodes.iter().copied().for_each(&mut update),
        }
        let fresh = |n: NodeId| result.failures.iter().any(|&(m, _)| m == n);
        self.errors.retain(|&(n, _)| self.outcome[n as usize] == Outcome::Failed && !fresh(n));
        self.errors.extend(result.failures.iter().cloned());
    }

    /// Failed nodes and their errors from the runs so far.
    pub fn failures(&self) -> &[(NodeId, String)] {
        &self.errors
    }
}

fn run_caught(body: &Bodies, v: NodeId) -> Result<(), String> {
    std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| body.run(v)))
        .unwrap_or_else(|panic| Err(super::run::panic_message(&*panic)))
}
