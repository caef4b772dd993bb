//! Grouped (per asset): every group whole on one worker, groups dealt largest first to the least-loaded worker (LPT).
//!
//! Groups come from [`Graph::group`]. A graph without any group gets them inferred: the connected components of the
//! undirected graph once "hubs" are set aside. A hub is a node of degree above `max(8, 4 × mean degree)`; while the
//! largest component still holds more than a worker's share of the cost, the threshold halves (down to 2). In a
//! per-asset fan-out the shared roots and the final reduce are the hubs, and what is left is one component per asset.
//!
//! Nodes in no group (and hubs) go last, in topological order, to the worker holding most of their placed neighbours
//! (ties: least loaded) among those with room below the mean load + 5%; if none has room, to the least loaded.
//!
//! A group with a pinned member goes to that member's worker (the first pinned member's, by id, if they disagree).

use alloc::collections::BinaryHeap;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Reverse;

use super::{Machine, WorkerCounts, capacity, least_loaded, place_pins};
use crate::dag::graph::{Graph, NONE, NodeId};

pub(super) fn partition(graph: &Graph, machine: &Machine, costs: &[u64]) -> Vec<u32> {
    let n = graph.len();
    let workers = machine.workers;
    let (mut worker_of, mut load) = place_pins(graph, workers, costs);
    let has_groups = (0..n as NodeId).any(|v| graph.group(v).is_some());
    let (group_of, groups) = if has_groups { given_groups(graph) } else { inferred_groups(graph, costs, workers) };

    let mut group_load = vec![0u64; groups];
    let mut group_worker = vec![NONE; groups];
    for v in 0..n {
        let g = group_of[v];
        if g == NONE {
            continue;
        }
        match graph.pin(v as NodeId) {
            Some(w) if group_worker[g as usize] == NONE => group_worker[g as usize] = w,
            Some(_) => {}
            None => group_load[g as usize] += costs[v],
        }
    }
    for g in 0..groups {
        if group_worker[g] != NONE {
            load[group_worker[g] as usize] += group_load[g];
        }
    }
    let mut order: Vec<u32> = (0..groups as u32).filter(|&g| group_worker[g as usize] == NONE).collect();
    order.sort_unstable_by_key(|&g| (Reverse(group_load[g as usize]), g));
    let mut least: BinaryHeap<Reverse<(u64, u32)>> =
        load.iter().enumerate().map(|(w, &l)| Reverse((l, w as u32))).collect();
    for g in order {
        let Some(Reverse((l, w))) = least.pop() else { break };
        group_worker[g as usize] = w;
        let l = l + group_load[g as usize];
        load[w as usize] = l;
        least.push(Reverse((l, w)));
    }
    for v in 0..n {
        if worker_of[v] == NONE && group_of[v] != NONE {
            worker_of[v] = group_worker[group_of[v] as usize];
        }
    }

    // Loose nodes: with most of their neighbours, if that worker has room.
    let cap = capacity(costs.iter().sum(), workers);
    let mut counts = WorkerCounts::new(workers);
    for &v in graph.topo_order() {
        if worker_of[v as usize] != NONE {
            continue;
        }
        for &u in graph.predecessors(v).iter().chain(graph.successors(v)) {
            if worker_of[u as usize] != NONE {
                counts.add(worker_of[u as usize], 1);
            }
        }
        let cost = costs[v as usize];
        let fits = |w: u32| load[w as usize].saturating_add(cost) <= cap;
        let mut best = NONE;
        for &w in &counts.touched {
            if !fits(w) {
                continue;
            }
            let better = best == NONE
                || (counts.get(w), Reverse(load[w as usize]), Reverse(w))
                    > (counts.get(best), Reverse(load[best as usize]), Reverse(best));
            if better {
                best = w;
            }
        }
        if best == NONE {
            best = least_loaded(&load);
        }
        counts.clear();
        worker_of[v as usize] = best;
        load[best as usize] += cost;
    }
    worker_of
}

/// Dense group indices (`NONE` for no group) from [`Graph::group`], and how many groups there are.
fn given_groups(graph: &Graph) -> (Vec<u32>, usize) {
    let mut ids: Vec<u32> = (0..graph.len() as NodeId).filter_map(|v| graph.group(v)).collect();
    ids.sort_unstable();
    ids.dedup();
    let group_of = (0..graph.len() as NodeId)
        .map(|v| graph.group(v).map_or(NONE, |g| ids.binary_search(&g).map_or(NONE, |i| i as u32)))
        .collect();
    (group_of, ids.len())
}

/// Groups as connected components without hubs; see the module docs for the threshold.
fn inferred_groups(graph: &Graph, costs: &[u64], workers: usize) -> (Vec<u32>, usize) {
    let n = graph.len();
    if n == 0 {
        return (Vec::new(), 0);
    }
    let degree = |v: NodeId| graph.in_degree(v) as usize + graph.successors(v).len();
    let total: u128 = costs.iter().map(|&c| u128::from(c)).sum();
    // 4 × mean degree, the mean being 2m / n.
    let mut threshold = (8 * graph.edge_count() / n).max(8);
    loop {
        let (group_of, groups, largest) = components(graph, costs, |v| degree(v) > threshold);
        if threshold <= 2 || largest * workers as u128 <= total {
            return (group_of, groups);
        }
        threshold = (threshold / 2).max(2);
    }
}

/// Connected components of the undirected graph without the `hub` nodes (left `NONE`): the component of each node,
/// how many components, and the largest component's cost.
fn components(graph: &Graph, costs: &[u64], hub: impl Fn(NodeId) -> bool) -> (Vec<u32>, usize, u128) {
    let n = graph.len();
    let mut group_of = vec![NONE; n];
    let mut groups = 0u32;
    let mut largest = 0u128;
    let mut stack = Vec::new();
    for start in 0..n as NodeId {
        if group_of[start as usize] != NONE || hub(start) {
            continue;
        }
        group_of[start as usize] = groups;
        stack.push(start);
        let mut cost = 0u128;
        while let Some(v) = stack.pop() {
            cost += u128::from(costs[v as usize]);
            for &u in graph.predecessors(v).iter().chain(graph.successors(v)) {
                if group_of[u as usize] == NONE && !hub(u) {
                    group_of[u as usize] = groups;
                    stack.push(u);
                }
            }
        }
        largest = largest.max(cost);
        groups += 1;
    }
    (group_of, groups as usize, largest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::GraphBuilder;
    use crate::dag::test_graphs::{self, FanOut};

    /// The worker of each asset's chain, checking the whole chain is on it.
    fn asset_workers(fan: &FanOut, worker_of: &[u32]) -> Vec<u32> {
        (0..fan.assets)
            .map(|a| {
                let chain = fan.chain(a);
                let w = worker_of[chain.start as usize];
                assert!(chain.clone().all(|v| worker_of[v as usize] == w), "asset {a} split: {worker_of:?}");
                w
            })
            .collect()
    }

    #[test]
    fn keeps_each_asset_whole_and_splits_assets_evenly() {
        for given in [true, false] {
            for assets in [8, 20] {
                let fan = FanOut { roots: 2, assets, len: 5, groups: given };
                let g = fan.builder().build().unwrap();
                for workers in [2, 4] {
                    let worker_of = partition(&g, &Machine::flat(workers), &vec![1; g.len()]);
                    let per_asset = asset_workers(&fan, &worker_of);
                    for w in 0..workers as u32 {
                        let mine = per_asset.iter().filter(|&&x| x == w).count();
                        assert_eq!(mine, assets as usize / workers, "given {given} assets {assets} worker {w}");
                    }
                }
            }
        }
    }

    #[test]
    fn hubs_are_the_shared_roots_and_the_reduce() {
        let fan = FanOut { roots: 3, assets: 20, len: 4, groups: false };
        let g = fan.builder().build().unwrap();
        let (group_of, groups) = inferred_groups(&g, &vec![1; g.len()], 4);
        assert_eq!(groups, 20);
        assert_eq!(&group_of[..3], [NONE; 3]);
        assert_eq!(group_of[g.len() - 1], NONE);
    }

    #[test]
    fn a_pinned_member_takes_its_group_along() {
        let mut b = GraphBuilder::new();
        for name in ["a", "b", "c", "d"] {
            b.add_node(name, "node").unwrap();
        }
        b.add_edge(0, 1);
        b.add_edge(1, 2);
        for v in 0..3 {
            b.set_group(v, 7);
        }
        b.set_group(3, 9);
        b.set_pin(1, 3);
        let g = b.build().unwrap();
        let worker_of = partition(&g, &Machine::flat(4), &[1; 4]);
        assert_eq!(&worker_of[..3], [3, 3, 3]);
        assert_eq!(worker_of[3], 0);
    }

    #[test]
    fn loose_nodes_follow_their_neighbours() {
        // Two grouped chains, 0 -> 1 -> 2 (group 0) and 3 -> 4 -> 5 -> 6 (group 1); node 7, in no group, reads
        // only chain 0's tail, so it goes with chain 0.
        let mut b = test_graphs::independent(8, 0);
        for (from, to) in [(0, 1), (1, 2), (3, 4), (4, 5), (5, 6), (2, 7)] {
            b.add_edge(from, to);
        }
        for v in 0..7 {
            b.set_group(v, if v < 3 { 0 } else { 1 });
        }
        let g = b.build().unwrap();
        let worker_of = partition(&g, &Machine::flat(2), &[1; 8]);
        // The larger group (1) goes first, to worker 0.
        assert_eq!(worker_of, [1, 1, 1, 0, 0, 0, 0, 1]);
    }
}
