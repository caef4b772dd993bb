//! HEFT (heterogeneous earliest finish time) on identical workers, without insertion into idle gaps.
//!
//! Upward rank = cost + max over successors of (edge cost + the successor's rank), with every edge priced at
//! [`Machine::cross_worker_edge_ns`]. Nodes go in decreasing rank, ties by topological position: an edge `u -> v` has
//! `rank(u) >= rank(v)`, equal only when `u` and the edge cost nothing, and then the tie keeps `u` first, so this is a
//! topological order. Each node goes to the worker where it would finish earliest, appended after that worker's last
//! node: it starts at max(worker free, inputs arrived), an input arriving at its finish plus [`Machine::edge_ns`].
//! O(n log n + (n + m) P).

use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Reverse;

use super::{Machine, upward_rank};
use crate::dag::graph::{Graph, NodeId};

pub(super) fn partition(graph: &Graph, machine: &Machine, costs: &[u64]) -> Vec<u32> {
    let n = graph.len();
    let workers = machine.workers;
    let comm = machine.cross_worker_edge_ns;
    let rank = upward_rank(graph, costs, |_, _| comm);
    let mut worker_of = vec![0u32; n];
    let mut finish = vec![0u64; n];
    let mut free_at = vec![0u64; workers];
    let mut arrive = vec![0u64; workers];
    for v in by_rank(graph, &rank) {
        let cost = costs[v as usize];
        let candidates = match graph.pin(v) {
            Some(w) => w..w + 1,
            None => 0..workers as u32,
        };
        arrive.fill(0);
        for &p in graph.predecessors(v) {
            let (pw, pf) = (worker_of[p as usize], finish[p as usize]);
            for w in candidates.clone() {
                let at = pf.saturating_add(machine.edge_ns(pw, w));
                arrive[w as usize] = arrive[w as usize].max(at);
            }
        }
        let mut best: Option<(u64, u32)> = None;
        for w in candidates {
            let end = free_at[w as usize].max(arrive[w as usize]).saturating_add(cost);
            if best.is_none_or(|(earliest, _)| end < earliest) {
                best = Some((end, w));
            }
        }
        let Some((end, w)) = best else { continue }; // `candidates` is never empty: workers > 0
        worker_of[v as usize] = w;
        finish[v as usize] = end;
        free_at[w as usize] = end;
    }
    worker_of
}

/// Nodes by decreasing rank; a stable sort of the topological order, so equal ranks stay in topological order.
fn by_rank(graph: &Graph, rank: &[u64]) -> Vec<NodeId> {
    let mut order = graph.topo_order().to_vec();
    order.sort_by_key(|&v| Reverse(rank[v as usize]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::GraphBuilder;
    use crate::dag::test_graphs;

    #[test]
    fn independent_equal_nodes_balance_within_one() {
        for (n, workers) in [(10, 3), (64, 4), (7, 8), (100, 7)] {
            let g = test_graphs::independent(n, 50).build().unwrap();
            let worker_of = partition(&g, &Machine::flat(workers), g.costs());
            let mut per = vec![0usize; workers];
            for &w in &worker_of {
                per[w as usize] += 1;
            }
            let (lo, hi) = (per.iter().min().unwrap(), per.iter().max().unwrap());
            assert!(hi - lo <= 1, "{n} on {workers}: {per:?}");
        }
    }

    #[test]
    fn a_chain_stays_on_one_worker() {
        for cost in [0, 1, 1000] {
            let g = test_graphs::chain(50, cost).build().unwrap();
            let costs = crate::dag::partition::node_costs(&g);
            let worker_of = partition(&g, &Machine::flat(4), &costs);
            assert!(worker_of.iter().all(|&w| w == worker_of[0]), "{worker_of:?}");
        }
    }

    #[test]
    fn rank_order_is_topological_even_with_zero_costs() {
        for (costs, comm) in [(0, 0), (0, 100), (500, 0)] {
            let g = test_graphs::random_dag(300, 3, 7, costs).build().unwrap();
            let rank = upward_rank(&g, g.costs(), |_, _| comm);
            let mut position = vec![0; g.len()];
            for (i, v) in by_rank(&g, &rank).into_iter().enumerate() {
                position[v as usize] = i;
            }
            for (u, v) in g.edges() {
                assert!(position[u as usize] < position[v as usize], "{u} -> {v} (costs {costs}, comm {comm})");
            }
        }
    }

    #[test]
    fn fork_join_spreads_when_work_outweighs_the_edges() {
        // a -> {b, c} -> d; b and c cost 1000 each, edges 100: b and c run side by side.
        let mut b = GraphBuilder::new();
        for name in ["a", "b", "c", "d"] {
            b.add_node(name, "node").unwrap();
        }
        for (from, to) in [(0, 1), (0, 2), (1, 3), (2, 3)] {
            b.add_edge(from, to);
        }
        for (v, c) in [(0, 10), (1, 1000), (2, 1000), (3, 10)] {
            b.set_cost(v, c);
        }
        let g = b.build().unwrap();
        let worker_of = partition(&g, &Machine::flat(2), g.costs());
        assert_ne!(worker_of[1], worker_of[2]);
        // ... and stay together when the edges cost more than the work.
        let mut machine = Machine::flat(2);
        machine.cross_worker_edge_ns = 5000;
        let worker_of = partition(&g, &machine, g.costs());
        assert_eq!(worker_of, [0, 0, 0, 0]);
    }
}
