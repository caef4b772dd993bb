//! The graph's shape: nodes (name, kind, cost, group, pin) and edges, validated once and stored as two CSR arrays
//! (successors for execution, predecessors for "what is this node waiting on") plus a topological order.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// A node's index in its graph: `0..graph.len()`.
pub type NodeId = u32;

/// "Not set" for [`Graph::pin`] and [`Graph::group`].
pub const NONE: u32 = u32::MAX;

/// Why a graph was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// Two nodes share a name.
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A node names an input that no node has.
    MissingInput {
        /// The node whose input is missing.
        node: String,
        /// The input it names.
        input: String,
    },
    /// An edge's endpoint is not a node id (`0..nodes`).
    NoSuchNode {
        /// The id given.
        id: u64,
        /// Nodes in the graph.
        nodes: usize,
    },
    /// The edges close a cycle; these nodes, in order, form one (the last feeds the first).
    Cycle {
        /// Names of the nodes on the cycle.
        nodes: Vec<String>,
    },
    /// More nodes or edges than a `u32` id can number.
    TooLarge,
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateName { name } => write!(f, "two nodes are named {name:?}"),
            Self::MissingInput { node, input } => write!(f, "node {node:?} takes input {input:?}, which no node has"),
            Self::NoSuchNode { id, nodes } => write!(f, "edge names node {id}, but the graph has nodes 0..{nodes}"),
            Self::Cycle { nodes } => {
                write!(f, "the graph has a cycle: ")?;
                for name in nodes {
                    write!(f, "{name} -> ")?;
                }
                match nodes.first() {
                    Some(first) => write!(f, "{first}"),
                    None => Ok(()),
                }
            }
            Self::TooLarge => write!(f, "more than 2^32 - 2 nodes or edges"),
        }
    }
}

impl core::error::Error for GraphError {}

/// Builds a [`Graph`]: add nodes (names unique), then edges by id or by name; [`GraphBuilder::build`] validates.
#[derive(Debug, Default, Clone)]
pub struct GraphBuilder {
    names: Vec<Box<str>>,
    index: BTreeMap<Box<str>, NodeId>,
    kinds: Vec<u32>,
    kind_names: Vec<Box<str>>,
    kind_index: BTreeMap<Box<str>, u32>,
    cost_ns: Vec<u64>,
    pin: Vec<u32>,
    group: Vec<u32>,
    group_names: Vec<Box<str>>,
    group_index: BTreeMap<Box<str>, u32>,
    edges: Vec<(NodeId, NodeId)>,
    named_edges: Vec<(Box<str>, NodeId)>,
    error: Option<GraphError>,
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node; its id is the number of nodes added before it. A repeated name is an error at `build` (and
    /// here), and the node is still added so ids stay dense.
    pub fn add_node(&mut self, name: &str, kind: &str) -> Result<NodeId, GraphError> {
        let id = NodeId::try_from(self.names.len()).map_err(|_| GraphError::TooLarge)?;
        // Kinds are usually few and added in runs: the newest is checked first, then a map.
        let kind = match self.kind_names.last() {
            Some(last) if **last == *kind => (self.kind_names.len() - 1) as u32,
            _ => match self.kind_index.get(kind) {
                Some(&k) => k,
                None => {
                    let k = u32::try_from(self.kind_names.len()).map_err(|_| GraphError::TooLarge)?;
                    self.kind_names.push(kind.into());
                    self.kind_index.insert(kind.into(), k);
                    k
                }
            },
        };
        self.names.push(name.into());
        self.kinds.push(kind);
        self.cost_ns.push(0);
        self.pin.push(NONE);
        self.group.push(NONE);
        if self.index.insert(name.into(), id).is_some() {
            let err = GraphError::DuplicateName { name: name.to_string() };
            self.error.get_or_insert(err.clone());
            return Err(err);
        }
        Ok(id)
    }

    /// Adds `n` nodes named by their ids (`"0"`, `"1"`, ...), kind `"node"`: the edge-list form.
    pub fn add_numbered(&mut self, n: usize) -> Result<(), GraphError> {
        for i in 0..n {
            self.add_node(&format!("{i}"), "node")?;
        }
        Ok(())
    }

    /// Nodes added so far.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// No nodes yet.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The id of a node added under `name`.
    pub fn id(&self, name: &str) -> Option<NodeId> {
        self.index.get(name).copied()
    }

    /// Sets a node's estimated cost (used by partitioners and explain; the synthetic runner spins this long).
    pub fn set_cost(&mut self, node: NodeId, cost_ns: u64) {
        self.cost_ns[node as usize] = cost_ns;
    }

    /// Pins a node to a worker: it runs there and is never stolen.
    pub fn set_pin(&mut self, node: NodeId, worker: u32) {
        self.pin[node as usize] = worker;
    }

    /// Puts a node in a group (an asset, say): the grouping partitioner keeps a group on one worker.
    pub fn set_group(&mut self, node: NodeId, group: u32) {
        self.group[node as usize] = group;
    }

    /// The group named `name`, numbered in first-asked order (`0, 1, ...`); the graph keeps the name for files and
    /// reports ([`Graph::group_name`]). Don't mix with raw ids from [`GraphBuilder::set_group`] that could collide.
    pub fn group_id(&mut self, name: &str) -> u32 {
        if let Some(&g) = self.group_index.get(name) {
            return g;
        }
        let g = self.group_names.len() as u32;
        self.group_names.push(name.into());
        self.group_index.insert(name.into(), g);
        g
    }

    /// Adds the edge `from -> to` (`to` takes `from` as an input). Inputs keep the order their edges were added.
    pub fn add_edge(&mut self, from: NodeId, to: NodeId) {
        self.edges.push((from, to));
    }

    /// Adds the edge `input -> to` by the input's name, resolved at `build` (so nodes may be added in any order).
    pub fn add_input_by_name(&mut self, to: NodeId, input: &str) {
        self.named_edges.push((input.into(), to));
    }

    /// Validates and freezes the graph: names unique, every input exists, every id in range, no cycle.
    pub fn build(self) -> Result<Graph, GraphError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let n = self.names.len();
        let mut edges = self.edges;
        for (input, to) in &self.named_edges {
            match self.index.get(input) {
                Some(&from) => edges.push((from, *to)),
                None => {
                    return Err(GraphError::MissingInput {
                        node: self.names[*to as usize].to_string(),
                        input: input.to_string(),
                    });
                }
            }
        }
        if edges.len() >= NONE as usize {
            return Err(GraphError::TooLarge);
        }
        for &(u, v) in &edges {
            for id in [u, v] {
                if id as usize >= n {
                    return Err(GraphError::NoSuchNode { id: u64::from(id), nodes: n });
                }
            }
        }
        let (succ_start, succ) = csr(n, edges.iter().map(|&(u, v)| (u, v)));
        let (pred_start, pred) = csr(n, edges.iter().map(|&(u, v)| (v, u)));
        let mut graph = Graph {
            names: self.names,
            kinds: self.kinds,
            kind_names: self.kind_names,
            cost_ns: self.cost_ns,
            pin: self.pin,
            group: self.group,
            group_names: self.group_names,
            succ_start,
            succ,
            pred_start,
            pred,
            topo: Vec::new(),
        };
        graph.topo = graph.topological_order()?;
        Ok(graph)
    }
}

/// Compressed sparse rows: `start[v]..start[v + 1]` indexes `v`'s targets, in insertion order.
fn csr(n: usize, pairs: impl Iterator<Item = (NodeId, NodeId)> + Clone) -> (Vec<u32>, Vec<NodeId>) {
    let mut start = vec![0u32; n + 1];
    for (u, _) in pairs.clone() {
        start[u as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut targets = vec![0; start[n] as usize];
    for (u, v) in pairs {
        targets[fill[u as usize] as usize] = v;
        fill[u as usize] += 1;
    }
    (start, targets)
}

/// A validated DAG. Node ids are dense (`0..len`); edges are stored both ways.
#[derive(Debug, Clone)]
pub struct Graph {
    names: Vec<Box<str>>,
    kinds: Vec<u32>,
    kind_names: Vec<Box<str>>,
    cost_ns: Vec<u64>,
    pin: Vec<u32>,
    group: Vec<u32>,
    group_names: Vec<Box<str>>,
    succ_start: Vec<u32>,
    succ: Vec<NodeId>,
    pred_start: Vec<u32>,
    pred: Vec<NodeId>,
    topo: Vec<NodeId>,
}

impl Graph {
    /// Nodes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// No nodes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Edges.
    pub fn edge_count(&self) -> usize {
        self.succ.len()
    }

    /// A node's name.
    pub fn name(&self, node: NodeId) -> &str {
        &self.names[node as usize]
    }

    /// A node's kind (free text: `"source"`, `"price"`, ...).
    pub fn kind(&self, node: NodeId) -> &str {
        &self.kind_names[self.kinds[node as usize] as usize]
    }

    /// A node's estimated cost in ns (0: unknown).
    pub fn cost_ns(&self, node: NodeId) -> u64 {
        self.cost_ns[node as usize]
    }

    /// Every node's cost, by id.
    pub fn costs(&self) -> &[u64] {
        &self.cost_ns
    }

    /// True when some node has a non-zero cost.
    pub fn has_costs(&self) -> bool {
        self.cost_ns.iter().any(|&c| c != 0)
    }

    /// Replaces every cost with `cost_ns` (the synthetic runner's `--work-ns`).
    pub fn set_uniform_cost(&mut self, cost_ns: u64) {
        self.cost_ns.fill(cost_ns);
    }

    /// The worker a node is pinned to, if any.
    pub fn pin(&self, node: NodeId) -> Option<u32> {
        Some(self.pin[node as usize]).filter(|&w| w != NONE)
    }

    /// The node's group (an asset), if any.
    pub fn group(&self, node: NodeId) -> Option<u32> {
        Some(self.group[node as usize]).filter(|&g| g != NONE)
    }

    /// The name a group was given through [`GraphBuilder::group_id`], if any.
    pub fn group_name(&self, group: u32) -> Option<&str> {
        self.group_names.get(group as usize).map(|n| &**n)
    }

    /// The nodes that take `node` as an input.
    pub fn successors(&self, node: NodeId) -> &[NodeId] {
        let v = node as usize;
        &self.succ[self.succ_start[v] as usize..self.succ_start[v + 1] as usize]
    }

    /// `node`'s inputs, in the order they were declared.
    pub fn predecessors(&self, node: NodeId) -> &[NodeId] {
        let v = node as usize;
        &self.pred[self.pred_start[v] as usize..self.pred_start[v + 1] as usize]
    }

    /// Number of inputs.
    pub fn in_degree(&self, node: NodeId) -> u32 {
        let v = node as usize;
        self.pred_start[v + 1] - self.pred_start[v]
    }

    /// Every edge `(from, to)`, grouped by `from`.
    pub fn edges(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        (0..self.len() as NodeId).flat_map(move |u| self.successors(u).iter().map(move |&v| (u, v)))
    }

    /// A topological order (Kahn's, smallest ready id first among equals is not promised; it is deterministic).
    pub fn topo_order(&self) -> &[NodeId] {
        &self.topo
    }

    /// Nodes without inputs.
    pub fn roots(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.len() as NodeId).filter(move |&v| self.in_degree(v) == 0)
    }

    /// The id of the node with this name (a linear scan: for tools and tests, not hot paths).
    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.names.iter().position(|n| &**n == name).map(|i| i as NodeId)
    }

    fn topological_order(&self) -> Result<Vec<NodeId>, GraphError> {
        let n = self.len();
        let mut indegree: Vec<u32> = (0..n as NodeId).map(|v| self.in_degree(v)).collect();
        let mut order: Vec<NodeId> = (0..n as NodeId).filter(|&v| indegree[v as usize] == 0).collect();
        let mut head = 0;
        while head < order.len() {
            let u = order[head];
            head += 1;
            for &v in self.successors(u) {
                indegree[v as usize] -= 1;
                if indegree[v as usize] == 0 {
                    order.push(v);
                }
            }
        }
        if order.len() == n {
            return Ok(order);
        }
        // Every node left has an input that is also left: walk inputs until a node repeats.
        let left = |v: NodeId| indegree[v as usize] > 0;
        let start = (0..n as NodeId).find(|&v| left(v)).unwrap_or(0);
        let mut seen = vec![NONE; n];
        let mut path = Vec::new();
        let mut v = start;
        while seen[v as usize] == NONE {
            seen[v as usize] = path.len() as u32;
            path.push(v);
            v = self.predecessors(v).iter().copied().find(|&p| left(p)).unwrap_or(v);
        }
        let mut cycle: Vec<NodeId> = path[seen[v as usize] as usize..].to_vec();
        // We walked against the edges; name the cycle along them.
        cycle.reverse();
        Err(GraphError::Cycle { nodes: cycle.into_iter().map(|v| self.name(v).to_string()).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(names: &[&str]) -> GraphBuilder {
        let mut b = GraphBuilder::new();
        for name in names {
            b.add_node(name, "node").unwrap();
        }
        for i in 1..names.len() {
            b.add_edge(i as NodeId - 1, i as NodeId);
        }
        b
    }

    #[test]
    fn csr_both_ways_and_topo_order() {
        let mut b = chain(&["a", "b", "c"]);
        b.add_edge(0, 2);
        let g = b.build().unwrap();
        assert_eq!(g.successors(0), &[1, 2]);
        assert_eq!(g.predecessors(2), &[1, 0]);
        assert_eq!(g.topo_order(), &[0, 1, 2]);
        assert_eq!(g.edge_count(), 3);
        assert_eq!(g.roots().collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn cycle_names_its_nodes_in_edge_order() {
        let mut b = chain(&["root", "a", "b", "c"]);
        b.add_edge(3, 1); // a -> b -> c -> a
        let err = b.build().unwrap_err();
        let GraphError::Cycle { nodes } = &err else { panic!("{err:?}") };
        assert_eq!(nodes.len(), 3);
        let at = nodes.iter().position(|n| n == "a").unwrap();
        let rotated: Vec<&str> = (0..3).map(|k| nodes[(at + k) % 3].as_str()).collect();
        assert_eq!(rotated, ["a", "b", "c"]);
        assert!(err.to_string().contains("->"), "{err}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "70,000 nodes: minutes under Miri, and safe code")]
    fn many_kinds_keep_their_names() {
        let mut b = GraphBuilder::new();
        for i in 0..70_000 {
            b.add_node(&format!("n{i}"), &format!("k{}", i % 66_000)).unwrap();
        }
        let g = b.build().unwrap();
        assert_eq!(g.kind(65_999), "k65999");
        assert_eq!(g.kind(66_000), "k0");
        assert_eq!(g.kind(69_999), "k3999");
    }

    #[test]
    fn self_loop_is_a_cycle() {
        let mut b = chain(&["x"]);
        b.add_edge(0, 0);
        assert_eq!(b.build().unwrap_err(), GraphError::Cycle { nodes: vec!["x".into()] });
    }

    #[test]
    fn duplicate_and_missing_names() {
        let mut b = chain(&["a"]);
        assert!(b.add_node("a", "node").is_err());
        assert_eq!(b.build().unwrap_err(), GraphError::DuplicateName { name: "a".into() });

        let mut b = chain(&["a", "b"]);
        b.add_input_by_name(1, "nope");
        assert_eq!(b.build().unwrap_err(), GraphError::MissingInput { node: "b".into(), input: "nope".into() });

        let mut b = chain(&["a"]);
        b.add_edge(0, 7);
        assert_eq!(b.build().unwrap_err(), GraphError::NoSuchNode { id: 7, nodes: 1 });
    }

    #[test]
    fn group_names_first_asked_order() {
        let mut b = chain(&["a", "b", "c"]);
        let ibm = b.group_id("IBM");
        let msft = b.group_id("MSFT");
        assert_eq!((ibm, msft, b.group_id("IBM")), (0, 1, 0));
        b.set_group(0, ibm);
        b.set_group(2, msft);
        let g = b.build().unwrap();
        assert_eq!(g.group(2), Some(1));
        assert_eq!(g.group(1), None);
        assert_eq!(g.group_name(1), Some("MSFT"));
        assert_eq!(g.group_name(2), None);
    }
}
