//! Round-robin: node `v` on worker `v % P`. The baseline every other partitioner should beat.

use alloc::vec::Vec;

use super::Machine;
use crate::dag::graph::{Graph, NodeId};

pub(super) fn partition(graph: &Graph, machine: &Machine) -> Vec<u32> {
    (0..graph.len() as NodeId).map(|v| graph.pin(v).unwrap_or((v as usize % machine.workers) as u32)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::test_graphs;

    #[test]
    fn deals_ids_in_turn_around_pins() {
        let mut b = test_graphs::independent(7, 0);
        b.set_pin(1, 2);
        let g = b.build().unwrap();
        assert_eq!(partition(&g, &Machine::flat(3)), [0, 2, 2, 0, 1, 2, 0]);
    }
}
