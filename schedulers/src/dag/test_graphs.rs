//! Small graph generators for the partition and explain tests.

use alloc::format;
use alloc::vec::Vec;
use core::ops::Range;

use super::graph::{Graph, GraphBuilder, NodeId};
use super::partition::Partition;

fn nodes(n: usize, cost: u64) -> GraphBuilder {
    let mut b = GraphBuilder::new();
    for i in 0..n {
        let v = b.add_node(&format!("n{i}"), "node").unwrap();
        b.set_cost(v, cost);
    }
    b
}

/// `n` nodes without edges, each costing `cost` (0: no costs).
pub(crate) fn independent(n: usize, cost: u64) -> GraphBuilder {
    nodes(n, cost)
}

/// `0 -> 1 -> ... -> n - 1`.
pub(crate) fn chain(n: usize, cost: u64) -> GraphBuilder {
    let mut b = nodes(n, cost);
    for v in 1..n as NodeId {
        b.add_edge(v - 1, v);
    }
    b
}

/// A complete binary out-tree of `depth` levels: `v -> 2v + 1, 2v + 2`.
pub(crate) fn out_tree(depth: u32) -> GraphBuilder {
    let n = (1usize << depth) - 1;
    let mut b = nodes(n, 0);
    for v in 1..n as NodeId {
        b.add_edge((v - 1) / 2, v);
    }
    b
}

/// `rows × cols` nodes, `r * cols + c`, each feeding its right and lower neighbour.
pub(crate) fn grid(rows: usize, cols: usize) -> GraphBuilder {
    let mut b = nodes(rows * cols, 0);
    let id = |r: usize, c: usize| (r * cols + c) as NodeId;
    for r in 0..rows {
        for c in 0..cols {
            if c + 1 < cols {
                b.add_edge(id(r, c), id(r, c + 1));
            }
            if r + 1 < rows {
                b.add_edge(id(r, c), id(r + 1, c));
            }
        }
    }
    b
}

/// The per-asset shape: `roots` shared sources each feeding the head of every asset's chain of `len` nodes, and one
/// final reduce reading every chain's tail. Ids: roots first, then the chains in asset order, the reduce last.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FanOut {
    pub(crate) roots: u32,
    pub(crate) assets: u32,
    pub(crate) len: u32,
    /// Set each chain's group to its asset.
    pub(crate) groups: bool,
}

impl FanOut {
    pub(crate) fn chain(&self, asset: u32) -> Range<NodeId> {
        let start = self.roots + asset * self.len;
        start..start + self.len
    }

    pub(crate) fn builder(&self) -> GraphBuilder {
        let mut b = GraphBuilder::new();
        for r in 0..self.roots {
            b.add_node(&format!("root{r}"), "source").unwrap();
        }
        for a in 0..self.assets {
            for i in 0..self.len {
                let v = b.add_node(&format!("a{a}.{i}"), "asset").unwrap();
                if self.groups {
                    b.set_group(v, a);
                }
                if i == 0 {
                    (0..self.roots).for_each(|r| b.add_edge(r, v));
                } else {
                    b.add_edge(v - 1, v);
                }
            }
        }
        let reduce = b.add_node("reduce", "reduce").unwrap();
        for a in 0..self.assets {
            b.add_edge(self.chain(a).end - 1, reduce);
        }
        b
    }
}

/// `n` nodes; node `v` reads up to `degree` random earlier nodes (repeats allowed). `max_cost` > 0: costs drawn from
/// `1..=max_cost`; 0: no costs.
pub(crate) fn random_dag(n: usize, degree: usize, seed: u64, max_cost: u64) -> GraphBuilder {
    let mut x = seed;
    let mut next = move || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        x >> 33
    };
    let mut b = nodes(n, 0);
    for v in 0..n as NodeId {
        if max_cost > 0 {
            b.set_cost(v, 1 + next() % max_cost);
        }
        if v > 0 {
            for _ in 0..next() % (degree as u64 + 1) {
                b.add_edge((next() % u64::from(v)) as NodeId, v);
            }
        }
    }
    b
}

/// One of each shape.
pub(crate) fn suite() -> Vec<(&'static str, GraphBuilder)> {
    let mut costly_chain = chain(30, 0);
    for v in 0..30 {
        costly_chain.set_cost(v, 10 + 37 * u64::from(v % 5));
    }
    alloc::vec![
        ("chain", chain(40, 0)),
        ("costly chain", costly_chain),
        ("independent", independent(50, 0)),
        ("out-tree", out_tree(6)),
        ("grid", grid(8, 9)),
        ("fan-out", FanOut { roots: 3, assets: 12, len: 4, groups: false }.builder()),
        ("fan-out grouped", FanOut { roots: 1, assets: 9, len: 3, groups: true }.builder()),
        ("random", random_dag(300, 3, 42, 1000)),
        ("random uncosted", random_dag(200, 2, 9, 0)),
    ]
}

/// Edges whose ends are on different workers.
pub(crate) fn cut_edges(graph: &Graph, partition: &Partition) -> usize {
    graph.edges().filter(|&(u, v)| partition.worker(u) != partition.worker(v)).count()
}
