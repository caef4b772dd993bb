//! Static metrics, before running: the graph's [`Profile`] (work, span, critical path) and a partition's
//! [`PartitionStats`] (loads, cut edges, a lower bound and a predicted makespan).
//!
//! Costs are [`Graph::cost_ns`]; a graph without any cost counts every node as 1 ns, as the partitioners do, so
//! work is then the node count and span the longest path in nodes.

use alloc::collections::BinaryHeap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Reverse;

use super::graph::{Graph, NONE, NodeId};
use super::partition::{Machine, Partition, node_costs, upward_rank};

/// The graph's shape, independent of any machine.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Profile {
    /// Nodes.
    pub nodes: usize,
    /// Edges.
    pub edges: usize,
    /// Sum of all costs: the time one worker needs.
    pub work_ns: u64,
    /// The costliest path: the time any number of workers needs.
    pub span_ns: u64,
    /// The nodes of one costliest path, source to sink (empty for an empty graph).
    pub critical_path: Vec<NodeId>,
    /// `work / span`: the most workers that can be kept busy on average. 0 for an empty graph (never infinite: a
    /// graph with nodes has a span of at least 1, counting 1 per node when it has no costs).
    pub parallelism: f64,
}

/// Work, span and critical path of `graph`. O(n + m).
pub fn profile(graph: &Graph) -> Profile {
    let costs = node_costs(graph);
    let work_ns = costs.iter().fold(0u64, |a, &c| a.saturating_add(c));
    let (finish, via) = longest_paths(graph, &costs);
    // The last node in topological order among those finishing last: a successor of it would finish as late and
    // come later, so it is a sink.
    let mut sink = NONE;
    for &v in graph.topo_order() {
        if sink == NONE || finish[v as usize] >= finish[sink as usize] {
            sink = v;
        }
    }
    let mut critical_path = Vec::new();
    let mut v = sink;
    while v != NONE {
        critical_path.push(v);
        v = via[v as usize];
    }
    critical_path.reverse();
    let span_ns = if sink == NONE { 0 } else { finish[sink as usize] };
    let parallelism = if span_ns == 0 { 0.0 } else { work_ns as f64 / span_ns as f64 };
    Profile { nodes: graph.len(), edges: graph.edge_count(), work_ns, span_ns, critical_path, parallelism }
}

/// The earliest finish of every node with unlimited workers and free edges, and the input that decided it (`NONE`
/// for a source; the first such input on ties).
fn longest_paths(graph: &Graph, costs: &[u64]) -> (Vec<u64>, Vec<NodeId>) {
    let mut finish = vec![0u64; graph.len()];
    let mut via = vec![NONE; graph.len()];
    for &v in graph.topo_order() {
        let mut best = NONE;
        for &p in graph.predecessors(v) {
            if best == NONE || finish[p as usize] > finish[best as usize] {
                best = p;
            }
        }
        let start = if best == NONE { 0 } else { finish[best as usize] };
        finish[v as usize] = start.saturating_add(costs[v as usize]);
        via[v as usize] = best;
    }
    (finish, via)
}

/// What a partition should do on a machine, before running it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PartitionStats {
    /// The partitioner's name, as given.
    pub partitioner: String,
    /// Workers in the partition.
    pub workers: usize,
    /// Sum of the costs on each worker.
    pub load_ns: Vec<u64>,
    /// Nodes on each worker.
    pub nodes_per_worker: Vec<usize>,
    /// Largest load over the mean load (1 when perfectly balanced, and for a graph without work).
    pub imbalance: f64,
    /// Edges whose ends are on different workers.
    pub cut_edges: usize,
    /// Edges whose ends are on different NUMA nodes (a subset of the cut ones).
    pub cross_numa_edges: usize,
    /// No schedule can beat this: max(work / workers rounded up, span).
    pub lower_bound_ns: u64,
    /// Makespan of a simulated run of this partition without stealing: each worker runs its own nodes one at a time,
    /// the ready one with the highest upward rank first, and a node is ready once its inputs have finished and
    /// crossed over ([`Machine::edge_ns`]).
    pub predicted_ns: u64,
}

/// Loads, cut and predicted makespan of `partition`, labelled `name`: the workers are the partition's, edge costs
/// and NUMA nodes the machine's. O((n + m) log n).
///
/// # Panics
///
/// If the partition does not cover the graph (another length) or names a worker `>= partition.workers`.
pub fn partition_stats(graph: &Graph, machine: &Machine, partition: &Partition, name: &str) -> PartitionStats {
    let workers = partition.workers;
    assert_eq!(partition.worker_of.len(), graph.len(), "the partition is for a graph of another size");
    assert!(partition.worker_of.iter().all(|&w| (w as usize) < workers), "the partition names a worker >= {workers}");
    let costs = node_costs(graph);
    let mut load_ns = vec![0u64; workers];
    let mut nodes_per_worker = vec![0usize; workers];
    for (v, &w) in partition.worker_of.iter().enumerate() {
        load_ns[w as usize] = load_ns[w as usize].saturating_add(costs[v]);
        nodes_per_worker[w as usize] += 1;
    }
    let work = load_ns.iter().fold(0u64, |a, &l| a.saturating_add(l));
    let max_load = load_ns.iter().copied().max().unwrap_or(0);
    let imbalance = if work == 0 { 1.0 } else { max_load as f64 * workers as f64 / work as f64 };

    let (mut cut_edges, mut cross_numa_edges) = (0, 0);
    for (u, v) in graph.edges() {
        let (wu, wv) = (partition.worker(u), partition.worker(v));
        if wu != wv {
            cut_edges += 1;
            if machine.numa(wu) != machine.numa(wv) {
                cross_numa_edges += 1;
            }
        }
    }
    let (finish, _) = longest_paths(graph, &costs);
    let span = finish.iter().copied().max().unwrap_or(0);
    PartitionStats {
        partitioner: name.to_string(),
        workers,
        load_ns,
        nodes_per_worker,
        imbalance,
        cut_edges,
        cross_numa_edges,
        lower_bound_ns: work.div_ceil(workers.max(1) as u64).max(span),
        predicted_ns: simulate(graph, machine, partition, &costs),
    }
}

/// Discrete-event run of a static partition; returns the makespan.
fn simulate(graph: &Graph, machine: &Machine, partition: &Partition, costs: &[u64]) -> u64 {
    let n = graph.len();
    let worker_of = &partition.worker_of;
    let edge_ns = |u: NodeId, v: NodeId| machine.edge_ns(worker_of[u as usize], worker_of[v as usize]);
    let rank = upward_rank(graph, costs, edge_ns);

    let mut inputs_left: Vec<u32> = (0..n as NodeId).map(|v| graph.in_degree(v)).collect();
    let mut arrival = vec![0u64; n];
    // Per worker: its released nodes, highest rank first (lowest id on ties).
    let mut ready: Vec<BinaryHeap<(u64, Reverse<NodeId>)>> = vec![BinaryHeap::new(); partition.workers];
    let mut busy = vec![false; partition.workers];
    // (time, node, finished): a node released to its worker, or finishing.
    let mut events: BinaryHeap<Reverse<(u64, NodeId, bool)>> = BinaryHeap::new();
    for v in graph.roots() {
        events.push(Reverse((0, v, false)));
    }
    let mut touched: Vec<u32> = Vec::new();
    let mut makespan = 0;
    while let Some(&Reverse((now, _, _))) = events.peek() {
        // Everything that happens at `now` first, so a node released now competes with the others for its worker.
        while let Some(&Reverse((t, v, finished))) = events.peek() {
            if t != now {
                break;
            }
            events.pop();
            let w = worker_of[v as usize];
            if finished {
                busy[w as usize] = false;
                makespan = makespan.max(now);
                for &s in graph.successors(v) {
                    let at = now.saturating_add(edge_ns(v, s));
                    arrival[s as usize] = arrival[s as usize].max(at);
                    inputs_left[s as usize] -= 1;
                    if inputs_left[s as usize] == 0 {
                        events.push(Reverse((arrival[s as usize], s, false)));
                    }
                }
            } else {
                ready[w as usize].push((rank[v as usize], Reverse(v)));
            }
            touched.push(w);
        }
        for w in touched.drain(..) {
            if busy[w as usize] {
                continue;
            }
            if let Some((_, Reverse(v))) = ready[w as usize].pop() {
                busy[w as usize] = true;
                events.push(Reverse((now.saturating_add(costs[v as usize]), v, true)));
            }
        }
    }
    makespan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::GraphBuilder;
    use crate::dag::partition::Partitioner;
    use crate::dag::test_graphs::{self, suite};

    /// a -> {b, c} -> d with costs 10, 20, 30, 5.
    fn diamond() -> Graph {
        let mut b = GraphBuilder::new();
        for name in ["a", "b", "c", "d"] {
            b.add_node(name, "node").unwrap();
        }
        for (from, to) in [(0, 1), (0, 2), (1, 3), (2, 3)] {
            b.add_edge(from, to);
        }
        for (v, c) in [(0, 10), (1, 20), (2, 30), (3, 5)] {
            b.set_cost(v, c);
        }
        b.build().unwrap()
    }

    fn stats(g: &Graph, machine: &Machine, worker_of: Vec<u32>) -> PartitionStats {
        let part = Partition { worker_of, workers: machine.workers };
        partition_stats(g, machine, &part, "hand")
    }

    #[test]
    fn diamond_shape() {
        let s = profile(&diamond());
        assert_eq!((s.nodes, s.edges, s.work_ns, s.span_ns), (4, 4, 65, 45));
        assert_eq!(s.critical_path, [0, 2, 3]);
        assert!((s.parallelism - 65.0 / 45.0).abs() < 1e-12);
    }

    #[test]
    fn shape_without_costs_counts_nodes() {
        for n in [1, 5, 64] {
            let s = profile(&test_graphs::independent(n, 0).build().unwrap());
            assert_eq!((s.work_ns, s.span_ns, s.parallelism), (n as u64, 1, n as f64));
            assert_eq!(s.critical_path.len(), 1);
        }
        let s = profile(&test_graphs::independent(8, 250).build().unwrap());
        assert_eq!((s.work_ns, s.span_ns, s.parallelism), (2000, 250, 8.0));
        let s = profile(&test_graphs::chain(10, 0).build().unwrap());
        assert_eq!((s.work_ns, s.span_ns, s.parallelism), (10, 10, 1.0));
        assert_eq!(s.critical_path, (0..10).collect::<Vec<_>>());
        let s = profile(&GraphBuilder::new().build().unwrap());
        assert_eq!((s.work_ns, s.span_ns, s.parallelism, s.critical_path.len()), (0, 0, 0.0, 0));
    }

    #[test]
    fn critical_path_runs_into_a_free_sink() {
        // x (5) -> y (0) -> z (0), and w (3) alone: the path goes on to the sink z.
        let mut b = test_graphs::chain(3, 0);
        b.set_cost(0, 5);
        let w = b.add_node("w", "node").unwrap();
        b.set_cost(w, 3);
        let s = profile(&b.build().unwrap());
        assert_eq!((s.span_ns, s.critical_path), (5, vec![0, 1, 2]));
    }

    #[test]
    fn diamond_predicted_by_hand() {
        let g = diamond();
        // One worker: a, then c (rank 35) before b (25), then d.
        let s = stats(&g, &Machine::flat(1), vec![0; 4]);
        assert_eq!((s.predicted_ns, s.lower_bound_ns, s.cut_edges), (65, 65, 0));
        assert_eq!(s.imbalance, 1.0);
        // c alone on worker 1: a 0..10, b 10..30, c 110..140, d waits for c + 100: 240..245.
        let s = stats(&g, &Machine::flat(2), vec![0, 0, 1, 0]);
        assert_eq!((s.predicted_ns, s.lower_bound_ns, s.cut_edges, s.cross_numa_edges), (245, 45, 2, 0));
        assert_eq!((s.load_ns.clone(), s.nodes_per_worker.clone()), (vec![35, 30], vec![3, 1]));
        assert!((s.imbalance - 35.0 / 32.5).abs() < 1e-12);
        // The same across NUMA nodes (300 ns edges): c 310..340, d 640..645.
        let s = stats(&g, &Machine::new(vec![0, 1]), vec![0, 0, 1, 0]);
        assert_eq!((s.predicted_ns, s.cross_numa_edges), (645, 2));
        // Free edges: b and c side by side, d at 40..45 = the span.
        let mut free = Machine::flat(2);
        free.cross_worker_edge_ns = 0;
        assert_eq!(stats(&g, &free, vec![0, 0, 1, 0]).predicted_ns, 45);
    }

    #[test]
    fn a_worker_runs_its_highest_rank_first() {
        // r -> x -> z and r -> y; r, x, y on worker 0, z (50) on worker 1, free edges. x (rank 51) goes before
        // y (10), so z starts at 2: makespan 52 (y first would make it 62).
        let mut b = GraphBuilder::new();
        for (name, cost) in [("r", 1), ("y", 10), ("x", 1), ("z", 50)] {
            let v = b.add_node(name, "node").unwrap();
            b.set_cost(v, cost);
        }
        for (from, to) in [(0, 1), (0, 2), (2, 3)] {
            b.add_edge(from, to);
        }
        let g = b.build().unwrap();
        let mut machine = Machine::flat(2);
        machine.cross_worker_edge_ns = 0;
        assert_eq!(stats(&g, &machine, vec![0, 0, 0, 1]).predicted_ns, 52);
    }

    #[test]
    fn simple_makespans() {
        // 10 independent 7 ns nodes dealt over 3 workers: 4 rounds.
        let g = test_graphs::independent(10, 7).build().unwrap();
        let s = stats(&g, &Machine::flat(3), (0..10).map(|v| v % 3).collect());
        assert_eq!((s.predicted_ns, s.lower_bound_ns), (28, 24));
        // A chain alternating over 2 workers pays the edge every step: 6 × 10 + 5 × 100.
        let g = test_graphs::chain(6, 10).build().unwrap();
        let s = stats(&g, &Machine::flat(2), (0..6).map(|v| v % 2).collect());
        assert_eq!((s.predicted_ns, s.cut_edges), (560, 5));
    }

    #[test]
    fn prediction_is_never_below_the_lower_bound() {
        for (name, builder) in suite() {
            let g = builder.build().unwrap();
            let shape = profile(&g);
            for machine in [Machine::flat(1), Machine::flat(3), Machine::new(vec![0, 0, 1, 1])] {
                for p in Partitioner::ALL {
                    let part = p.partition(&g, &machine).unwrap();
                    let s = partition_stats(&g, &machine, &part, p.name());
                    assert_eq!(s.lower_bound_ns, shape.work_ns.div_ceil(machine.workers as u64).max(shape.span_ns));
                    assert!(s.predicted_ns >= s.lower_bound_ns, "{name} {p}: {s:?}");
                    assert_eq!(s.load_ns.iter().sum::<u64>(), shape.work_ns);
                    assert_eq!(s.nodes_per_worker.iter().sum::<usize>(), g.len());
                    assert!(s.imbalance >= 1.0 - 1e-9);
                    if machine.workers == 1 {
                        assert_eq!(s.predicted_ns, shape.work_ns, "{name}: one worker runs everything back to back");
                    }
                }
            }
        }
    }

    #[test]
    fn random_graphs_predict_at_least_the_bound() {
        for seed in 1..30 {
            let g = test_graphs::random_dag(50 + 10 * seed as usize, 1 + seed as usize % 4, seed, 500).build().unwrap();
            let machine = Machine::flat(1 + seed as usize % 6);
            let part = Partitioner::Heft.partition(&g, &machine).unwrap();
            let s = partition_stats(&g, &machine, &part, "heft");
            assert!(s.predicted_ns >= s.lower_bound_ns, "seed {seed}: {s:?}");
        }
    }
}
