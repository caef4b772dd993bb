//! Static partitioners: each node gets a worker before the run starts (stealing may move work later).
//!
//! | partitioner | idea | cost |
//! |---|---|---|
//! | [`RoundRobin`](Partitioner::RoundRobin) | node `v` on worker `v % P`: the baseline | O(n) |
//! | [`Contiguous`](Partitioner::Contiguous) | node ids in `P` blocks of equal cost | O(n) |
//! | [`Grouped`](Partitioner::Grouped) | groups (assets) whole, largest first to least loaded | O((n + m) log n + nP) |
//! | [`Heft`](Partitioner::Heft) | critical path first, each node where it ends earliest | O(n log n + (n + m) P) |
//! | [`Greedy`](Partitioner::Greedy) | multilevel: balanced loads, few cut edges | O((n + m) log n) per level, pass |
//!
//! Every partitioner puts pinned nodes ([`Graph::pin`]) on their worker and counts them in that worker's load. Loads
//! are [`Graph::cost_ns`]; a graph without any cost counts every node as 1, so balance still means node counts.

mod contiguous;
mod greedy;
mod grouped;
mod heft;
mod round_robin;

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use super::graph::{Graph, NONE, NodeId};

/// The machine a plan targets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Machine {
    /// Workers (one per core).
    pub workers: usize,
    /// NUMA node of each worker; a worker past the end of this list counts as node 0.
    pub numa_of_worker: Vec<u32>,
    /// Estimated cost of an edge whose ends run on different workers of one NUMA node (default 100 ns).
    pub cross_worker_edge_ns: u64,
    /// Estimated cost of an edge whose ends run on different NUMA nodes (default 300 ns).
    pub cross_numa_edge_ns: u64,
}

impl Machine {
    /// `workers` workers on one NUMA node.
    pub fn flat(workers: usize) -> Self {
        Self::new(vec![0; workers])
    }

    /// One worker per entry, on the NUMA node given.
    pub fn new(numa_of_worker: Vec<u32>) -> Self {
        Self { workers: numa_of_worker.len(), numa_of_worker, cross_worker_edge_ns: 100, cross_numa_edge_ns: 300 }
    }

    /// The NUMA node of `worker`.
    pub fn numa(&self, worker: u32) -> u32 {
        self.numa_of_worker.get(worker as usize).copied().unwrap_or(0)
    }

    /// Estimated cost of an edge from a node on worker `from` to one on worker `to`: 0 on the same worker.
    pub fn edge_ns(&self, from: u32, to: u32) -> u64 {
        if from == to {
            0
        } else if self.numa(from) != self.numa(to) {
            self.cross_numa_edge_ns
        } else {
            self.cross_worker_edge_ns
        }
    }
}

/// Which worker runs each node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Partition {
    /// The worker of each node, by node id; every entry is `< workers`.
    pub worker_of: Vec<u32>,
    /// Workers in the plan.
    pub workers: usize,
}

impl Partition {
    /// The worker that runs `node`.
    pub fn worker(&self, node: NodeId) -> u32 {
        self.worker_of[node as usize]
    }
}

/// The static partitioners, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Partitioner {
    /// Node `v` on worker `v % P`.
    RoundRobin,
    /// Node ids in `P` contiguous blocks of roughly equal cost.
    Contiguous,
    /// Each group (asset) whole on one worker, largest group first to the least-loaded worker.
    Grouped,
    /// Critical-path list scheduling (HEFT without insertion).
    Heft,
    /// Multilevel graph partitioning: balanced loads, few cut edges.
    Greedy,
}

impl Partitioner {
    /// Every partitioner, in the order of their names in [`UnknownPartitioner`]'s message.
    pub const ALL: [Partitioner; 5] = [Self::RoundRobin, Self::Contiguous, Self::Grouped, Self::Heft, Self::Greedy];

    /// The name `from_name` takes: `"round-robin"`, `"contiguous"`, `"grouped"`, `"heft"`, `"greedy"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::RoundRobin => "round-robin",
            Self::Contiguous => "contiguous",
            Self::Grouped => "grouped",
            Self::Heft => "heft",
            Self::Greedy => "greedy",
        }
    }

    /// The partitioner called `name`.
    pub fn from_name(name: &str) -> Result<Self, UnknownPartitioner> {
        Self::ALL.into_iter().find(|p| p.name() == name).ok_or_else(|| UnknownPartitioner { name: name.to_string() })
    }

    /// Assigns every node of `graph` to a worker of `machine`.
    pub fn partition(self, graph: &Graph, machine: &Machine) -> Result<Partition, PartitionError> {
        if machine.workers == 0 {
            return Err(PartitionError::NoWorkers);
        }
        for v in 0..graph.len() as NodeId {
            if let Some(worker) = graph.pin(v)
                && worker as usize >= machine.workers
            {
                return Err(PartitionError::PinOutOfRange {
                    node: graph.name(v).to_string(),
                    worker,
                    workers: machine.workers,
                });
            }
        }
        let costs = node_costs(graph);
        let worker_of = match self {
            Self::RoundRobin => round_robin::partition(graph, machine),
            Self::Contiguous => contiguous::partition(graph, machine, &costs),
            Self::Grouped => grouped::partition(graph, machine, &costs),
            Self::Heft => heft::partition(graph, machine, &costs),
            Self::Greedy => greedy::partition(graph, machine, &costs),
        };
        debug_assert_eq!(worker_of.len(), graph.len());
        debug_assert!(worker_of.iter().all(|&w| (w as usize) < machine.workers));
        Ok(Partition { worker_of, workers: machine.workers })
    }
}

impl fmt::Display for Partitioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Partitioner {
    type Err = UnknownPartitioner;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s)
    }
}

/// A name that is not a partitioner's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPartitioner {
    /// The name given.
    pub name: String,
}

impl fmt::Display for UnknownPartitioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown partitioner {:?}; valid: ", self.name)?;
        for (i, p) in Partitioner::ALL.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{}", p.name())?;
        }
        Ok(())
    }
}

impl core::error::Error for UnknownPartitioner {}

/// Why a graph could not be partitioned for a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionError {
    /// The machine has no workers.
    NoWorkers,
    /// A node is pinned to a worker the machine does not have.
    PinOutOfRange {
        /// The pinned node's name.
        node: String,
        /// The worker it is pinned to.
        worker: u32,
        /// Workers on the machine.
        workers: usize,
    },
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoWorkers => write!(f, "the machine has no workers"),
            Self::PinOutOfRange { node, worker, workers } => {
                write!(f, "node {node:?} is pinned to worker {worker}, but the machine has workers 0..{workers}")
            }
        }
    }
}

impl core::error::Error for PartitionError {}

/// Every node's cost for balancing: [`Graph::costs`], or 1 each when the graph has no costs at all.
pub(crate) fn node_costs(graph: &Graph) -> Vec<u64> {
    if graph.has_costs() { graph.costs().to_vec() } else { vec![1; graph.len()] }
}

/// Upward rank: a node's cost plus the longest way (costs and edge costs) from it to a sink.
pub(crate) fn upward_rank(graph: &Graph, costs: &[u64], edge_ns: impl Fn(NodeId, NodeId) -> u64) -> Vec<u64> {
    let mut rank = vec![0u64; graph.len()];
    for &v in graph.topo_order().iter().rev() {
        let tail = graph.successors(v).iter().map(|&s| edge_ns(v, s).saturating_add(rank[s as usize])).max();
        rank[v as usize] = costs[v as usize].saturating_add(tail.unwrap_or(0));
    }
    rank
}

/// The load a worker may take: the mean plus 5%, rounded up.
fn capacity(total: u64, workers: usize) -> u64 {
    let cap = (u128::from(total) * 21).div_ceil(20 * workers as u128);
    u64::try_from(cap).unwrap_or(u64::MAX)
}

/// Pinned nodes on their workers; every other node `NONE`. Returns the assignment and the loads it makes.
fn place_pins(graph: &Graph, workers: usize, costs: &[u64]) -> (Vec<u32>, Vec<u64>) {
    let mut worker_of = vec![NONE; graph.len()];
    let mut load = vec![0u64; workers];
    for v in 0..graph.len() as NodeId {
        if let Some(w) = graph.pin(v) {
            worker_of[v as usize] = w;
            load[w as usize] += costs[v as usize];
        }
    }
    (worker_of, load)
}

/// The least-loaded worker (lowest index among equals).
fn least_loaded(load: &[u64]) -> u32 {
    let mut best = 0;
    for (w, &l) in load.iter().enumerate() {
        if l < load[best] {
            best = w;
        }
    }
    best as u32
}

/// Edges counted per worker with a list of the workers touched, so a node's count costs its degree, not `P`.
struct WorkerCounts {
    count: Vec<u64>,
    touched: Vec<u32>,
}

impl WorkerCounts {
    fn new(workers: usize) -> Self {
        Self { count: vec![0; workers], touched: Vec::new() }
    }

    fn add(&mut self, worker: u32, n: u64) {
        let c = &mut self.count[worker as usize];
        if *c == 0 {
            self.touched.push(worker);
        }
        *c += n;
    }

    fn get(&self, worker: u32) -> u64 {
        self.count[worker as usize]
    }

    fn clear(&mut self) {
        for &w in &self.touched {
            self.count[w as usize] = 0;
        }
        self.touched.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::GraphBuilder;
    use crate::dag::test_graphs::{self, cut_edges, suite};

    #[test]
    fn names_round_trip_and_unknown_lists_the_valid_ones() {
        for p in Partitioner::ALL {
            assert_eq!(Partitioner::from_name(p.name()), Ok(p));
            assert_eq!(p.name().parse::<Partitioner>(), Ok(p));
        }
        let err = Partitioner::from_name("metis").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown partitioner \"metis\"; valid: round-robin, contiguous, grouped, heft, greedy"
        );
    }

    #[test]
    fn machine_edge_costs() {
        let m = Machine::new(vec![0, 0, 1, 1]);
        assert_eq!(m.workers, 4);
        assert_eq!((m.edge_ns(1, 1), m.edge_ns(0, 1), m.edge_ns(1, 2)), (0, 100, 300));
        assert_eq!(Machine::flat(3).edge_ns(0, 2), 100);
    }

    #[test]
    fn errors_name_the_node_and_worker() {
        let mut b = GraphBuilder::new();
        b.add_node("a", "node").unwrap();
        let x = b.add_node("x", "node").unwrap();
        b.set_pin(x, 5);
        let g = b.build().unwrap();
        for p in Partitioner::ALL {
            let err = p.partition(&g, &Machine::flat(4)).unwrap_err();
            assert_eq!(err, PartitionError::PinOutOfRange { node: "x".into(), worker: 5, workers: 4 });
            assert!(err.to_string().contains("\"x\" is pinned to worker 5"), "{err}");
            assert_eq!(p.partition(&g, &Machine::flat(0)).unwrap_err(), PartitionError::NoWorkers);
        }
    }

    #[test]
    fn every_partitioner_is_valid_and_honours_pins() {
        for (name, builder) in suite() {
            for workers in [1, 2, 3, 4, 7] {
                let mut b = builder.clone();
                // Pin every 13th node, to a worker that round-robin would not pick.
                for v in (0..b.len() as NodeId).step_by(13) {
                    b.set_pin(v, (v + 1) % workers as u32);
                }
                let g = b.build().unwrap();
                let machine = Machine::flat(workers);
                for p in Partitioner::ALL {
                    let part = p.partition(&g, &machine).unwrap();
                    assert_eq!(part.worker_of.len(), g.len(), "{name} {p}");
                    assert_eq!(part.workers, workers);
                    assert!(part.worker_of.iter().all(|&w| (w as usize) < workers), "{name} {p}");
                    for v in 0..g.len() as NodeId {
                        if let Some(w) = g.pin(v) {
                            assert_eq!(part.worker(v), w, "{name} {p} node {v}");
                        }
                    }
                    // Deterministic.
                    assert_eq!(p.partition(&g, &machine).unwrap(), part, "{name} {p}");
                }
            }
        }
    }

    #[test]
    fn empty_graph() {
        let g = GraphBuilder::new().build().unwrap();
        for p in Partitioner::ALL {
            assert_eq!(p.partition(&g, &Machine::flat(2)).unwrap().worker_of, Vec::<u32>::new());
        }
    }

    #[test]
    fn heavily_pinned_worker_gets_less_other_work() {
        // 40 independent unit nodes; 10 pinned to worker 0: the balancing partitioners give worker 0 no more.
        let mut b = test_graphs::independent(40, 0);
        for v in 0..10 {
            b.set_pin(v, 0);
        }
        let g = b.build().unwrap();
        for p in [Partitioner::Contiguous, Partitioner::Grouped, Partitioner::Heft, Partitioner::Greedy] {
            let part = p.partition(&g, &Machine::flat(4)).unwrap();
            let on_0 = part.worker_of.iter().filter(|&&w| w == 0).count();
            assert_eq!(on_0, 10, "{p}");
            assert_eq!(cut_edges(&g, &part), 0);
        }
    }
}
