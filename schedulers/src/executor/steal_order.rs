//! Which workers a thief tries, in which order: same NUMA node first, then the rest, each group starting just
//! after the thief so that thieves do not all pile onto worker 0.

use alloc::vec::Vec;

use weir_hw::Topology;

/// For each worker, the other workers in the order to try them. `cpus[i]` is worker `i`'s CPU (`None`: unpinned,
/// treated as node 0).
pub(crate) fn steal_order(cpus: &[Option<u32>], topology: &Topology) -> Vec<Vec<u32>> {
    let node = |worker: usize| cpus[worker].and_then(|cpu| topology.node_of(cpu)).unwrap_or(0);
    let n = cpus.len();
    (0..n)
        .map(|me| {
            let rotated = (1..n).map(|k| (me + k) % n);
            let (near, far): (Vec<usize>, Vec<usize>) = rotated.partition(|&other| node(other) == node(me));
            near.into_iter().chain(far).map(|w| w as u32).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use weir_hw::Cpu;

    #[test]
    fn same_node_first_then_others_rotated() {
        // cpus 0,1 on node 0; 2,3 on node 1. Workers on cpus 0,2,1,3.
        let topo = Topology::new(vec![
            Cpu { id: 0, core: 0, package: 0, node: 0 },
            Cpu { id: 1, core: 1, package: 0, node: 0 },
            Cpu { id: 2, core: 0, package: 1, node: 1 },
            Cpu { id: 3, core: 1, package: 1, node: 1 },
        ]);
        let order = steal_order(&[Some(0), Some(2), Some(1), Some(3)], &topo);
        assert_eq!(order[0], vec![2, 1, 3]); // worker 2 (cpu 1) shares node 0
        assert_eq!(order[1], vec![3, 2, 0]); // worker 3 (cpu 3) shares node 1
        assert_eq!(order[3], vec![1, 0, 2]);
        // Unknown topology: plain rotation.
        assert_eq!(steal_order(&[None, None, None], &Topology::default())[1], vec![2, 0]);
    }
}
