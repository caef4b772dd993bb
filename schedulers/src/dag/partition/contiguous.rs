//! Contiguous: node ids cut into `P` blocks of roughly equal cost, block `i` on worker `i`.
//!
//! By id, not by topological order: the graph's topological order is breadth-first (Kahn's), so its blocks would be
//! bands of levels, each waiting on the band before it, and one run would go through the workers one after another.
//! Ids follow the order the graph was written in, which usually keeps related nodes (an asset's chain) together, so
//! this is the "as written" baseline.

use alloc::vec::Vec;

use super::{Machine, place_pins};
use crate::dag::graph::{Graph, NONE};

pub(super) fn partition(graph: &Graph, machine: &Machine, costs: &[u64]) -> Vec<u32> {
    let workers = machine.workers;
    let (mut worker_of, mut load) = place_pins(graph, workers, costs);
    // Pins count towards their worker's share, so a heavily pinned worker takes a shorter block.
    let total: u128 = costs.iter().map(|&c| u128::from(c)).sum();
    let p = workers as u128;
    let mut w = 0;
    for (v, &cost) in costs.iter().enumerate() {
        if worker_of[v] != NONE {
            continue;
        }
        // Move on once this node's midpoint would pass the worker's share: `load + cost / 2 > total / P`.
        while w + 1 < workers && (2 * u128::from(load[w]) + u128::from(cost)) * p > 2 * total {
            w += 1;
        }
        worker_of[v] = w as u32;
        load[w] += cost;
    }
    worker_of
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::test_graphs;

    #[test]
    fn equal_blocks_in_id_order() {
        let g = test_graphs::independent(10, 0).build().unwrap();
        assert_eq!(partition(&g, &Machine::flat(2), &[1; 10]), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
        assert_eq!(partition(&g, &Machine::flat(3), &[1; 10]), [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]);
    }

    #[test]
    fn blocks_balance_cost_not_count() {
        let g = test_graphs::independent(6, 0).build().unwrap();
        // Total 12: the first node alone is half.
        assert_eq!(partition(&g, &Machine::flat(2), &[6, 1, 1, 1, 1, 2]), [0, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn more_workers_than_nodes() {
        let g = test_graphs::independent(2, 0).build().unwrap();
        assert_eq!(partition(&g, &Machine::flat(4), &[1, 1]), [0, 1]);
    }
}
