//! What changes when sources change: everything downstream of them, in dependency order.
//!
//! A depth-first search over successors from the changed sources, recording nodes as they finish; the reverse of
//! that finishing order is a topological order of the reached set (each node after all of its reached inputs).
//! Marks are epoch-stamped, so starting a new search costs nothing, and the search gives up past a limit (the
//! caller then recomputes everything, which is cheaper than a search that reaches most of the graph).

use alloc::vec;
use alloc::vec::Vec;

use super::graph::{Graph, NodeId};

/// Reusable scratch for downstream searches over one graph.
#[derive(Debug, Clone)]
pub struct Downstream {
    mark: Vec<u32>,
    epoch: u32,
    stack: Vec<(NodeId, u32)>,
    order: Vec<NodeId>,
}

impl Downstream {
    /// Scratch for a graph of `nodes` nodes.
    pub fn new(nodes: usize) -> Self {
        Downstream { mark: vec![0; nodes], epoch: 0, stack: Vec::new(), order: Vec::new() }
    }

    /// The sources and everything downstream of them, each once, in a topological order; `None` when that is more
    /// than `limit` nodes (the search stops there).
    pub fn search(&mut self, graph: &Graph, sources: &[NodeId], limit: usize) -> Option<&[NodeId]> {
        debug_assert_eq!(self.mark.len(), graph.len());
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.mark.fill(0);
            self.epoch = 1;
        }
        let epoch = self.epoch;
        self.order.clear();
        let mut reached = 0usize;
        for &source in sources {
            if self.mark[source as usize] == epoch {
                continue;
            }
            self.mark[source as usize] = epoch;
            reached += 1;
            self.stack.push((source, 0));
            while let Some(top) = self.stack.last_mut() {
                let (v, next) = *top;
                let successors = graph.successors(v);
                if let Some(&s) = successors.get(next as usize) {
                    top.1 += 1;
                    if self.mark[s as usize] != epoch {
                        self.mark[s as usize] = epoch;
                        reached += 1;
                        if reached > limit {
                            self.stack.clear();
                            return None;
                        }
                        self.stack.push((s, 0));
                    }
                } else {
                    self.stack.pop();
                    self.order.push(v);
                }
            }
        }
        self.order.reverse();
        Some(&self.order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::graph::GraphBuilder;

    /// 0 -> 1 -> 3, 0 -> 2 -> 3, 4 -> 5 (a diamond and a separate pair).
    fn sample() -> Graph {
        let mut b = GraphBuilder::new();
        b.add_numbered(6).unwrap();
        for (u, v) in [(0, 1), (0, 2), (1, 3), (2, 3), (4, 5)] {
            b.add_edge(u, v);
        }
        b.build().unwrap()
    }

    fn is_topological(graph: &Graph, order: &[NodeId]) -> bool {
        let position = |v: NodeId| order.iter().position(|&x| x == v);
        order.iter().all(|&v| graph.successors(v).iter().all(|&s| position(s) > position(v)))
    }

    #[test]
    fn reaches_exactly_downstream_in_order() {
        let g = sample();
        let mut d = Downstream::new(g.len());
        let mut got = d.search(&g, &[1], 10).unwrap().to_vec();
        assert_eq!(got, [1, 3]);
        got = d.search(&g, &[0], 10).unwrap().to_vec();
        assert!(is_topological(&g, &got));
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 3]);
        got = d.search(&g, &[5, 4, 2], 10).unwrap().to_vec();
        assert!(is_topological(&g, &got), "{got:?}");
        got.sort_unstable();
        assert_eq!(got, [2, 3, 4, 5]);
    }

    #[test]
    fn gives_up_past_the_limit() {
        let g = sample();
        let mut d = Downstream::new(g.len());
        assert!(d.search(&g, &[0], 3).is_none());
        assert_eq!(d.search(&g, &[0], 4).unwrap().len(), 4);
        // A search after a give-up starts clean.
        assert_eq!(d.search(&g, &[4], 4).unwrap(), &[4, 5]);
    }
}
