//! The standard shapes (chain, independent, trees, grid, per-asset fan-out) and random DAGs, for tests, benches and
//! the synthetic runner. Costs are left at 0: callers set them ([`Graph::set_uniform_cost`]).
//!
//! Every shape but [`Shape::FanOut`] names its nodes by id (`"0"`, `"1"`, ...) with kind `"node"`, exactly as the
//! edge-list file form does, so those shapes survive an edge-list round trip unchanged.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use super::graph::{Graph, GraphBuilder, NodeId};

/// Shared roots a fan-out has when its label does not say (`rate`, `vol`).
pub const DEFAULT_ROOTS: usize = 2;

/// A standard DAG shape. `Display` gives a short label (`chain-100000`) that [`FromStr`] reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `0 -> 1 -> ... -> n-1`. Label `chain-N`.
    Chain {
        /// Nodes.
        n: usize,
    },
    /// `n` nodes, no edges. Label `independent-N`.
    Independent {
        /// Nodes.
        n: usize,
    },
    /// A complete binary out-tree from root 0: `2^depth - 1` nodes, node `i` feeds `2i+1` and `2i+2`.
    /// Label `tree-out-D`.
    TreeOut {
        /// Levels (0: empty).
        depth: u32,
    },
    /// The reduction tree: [`Shape::TreeOut`] with every edge reversed (`2i+1` and `2i+2` feed `i`; node 0 is
    /// the one sink). Label `tree-in-D`.
    TreeIn {
        /// Levels (0: empty).
        depth: u32,
    },
    /// A 2D wavefront: node `(r, c)` has id `r * width + c` and takes `(r-1, c)` then `(r, c-1)`. Label `grid-WxH`.
    Grid {
        /// Columns.
        width: usize,
        /// Rows.
        height: usize,
    },
    /// Per-asset chains fed by shared roots, reduced into one total. Label `fanout-AxP-rR` (`fanout-AxP` reads
    /// with [`DEFAULT_ROOTS`]).
    ///
    /// Nodes, in id order:
    /// - `roots` shared roots, kind `"source"`, no group: `"rate"`, `"vol"`, then `"root3"`, `"root4"`, ...
    ///   (1-based).
    /// - per asset `a` (group `a`, named `A{a:04}` through [`GraphBuilder::group_id`]), `per_asset` nodes:
    ///   `"A0007/spot"` (kind `"source"`, no input), then `"A0007/p1"` .. `"A0007/p{per_asset-1}"` (kind
    ///   `"price"`). `p1` takes the spot then every shared root; `pj` (j >= 2) takes `p{j-1}` then shared root
    ///   `(j - 2) % roots` (none when `roots` is 0).
    /// - `"total"` (kind `"reduce"`, no group), taking the last node of every asset in asset order.
    ///
    /// So `nodes = roots + assets * per_asset + 1`, and with `P = per_asset`, `R = roots`,
    /// `edges = assets * ((P >= 2) * (1 + R + (P - 2) * (1 + min(R, 1))) + (P >= 1))`.
    FanOut {
        /// Assets (groups).
        assets: usize,
        /// Nodes per asset, its spot included.
        per_asset: usize,
        /// Shared roots feeding every asset.
        roots: usize,
    },
}

impl Shape {
    /// A fan-out with [`DEFAULT_ROOTS`] shared roots.
    pub const fn fan_out(assets: usize, per_asset: usize) -> Self {
        Self::FanOut { assets, per_asset, roots: DEFAULT_ROOTS }
    }

    /// Nodes the built graph has (saturating, so oversized shapes can be refused before building).
    pub fn nodes(&self) -> usize {
        match *self {
            Self::Chain { n } | Self::Independent { n } => n,
            Self::TreeOut { depth } | Self::TreeIn { depth } => tree_nodes(depth),
            Self::Grid { width, height } => width.saturating_mul(height),
            Self::FanOut { assets, per_asset, roots } => {
                assets.saturating_mul(per_asset).saturating_add(roots).saturating_add(1)
            }
        }
    }

    /// Edges the built graph has.
    pub fn edges(&self) -> usize {
        match *self {
            Self::Chain { n } => n.saturating_sub(1),
            Self::Independent { .. } => 0,
            Self::TreeOut { depth } | Self::TreeIn { depth } => tree_nodes(depth).saturating_sub(1),
            Self::Grid { width, height } => {
                height.saturating_sub(1).saturating_mul(width) + height.saturating_mul(width.saturating_sub(1))
            }
            Self::FanOut { assets, per_asset, roots } => {
                let chain = match per_asset {
                    0 | 1 => 0,
                    p => (p - 2).saturating_mul(1 + roots.min(1)).saturating_add(1).saturating_add(roots),
                };
                assets.saturating_mul(chain.saturating_add(usize::from(per_asset >= 1)))
            }
        }
    }

    /// Nodes on a longest path (the critical path at uniform cost).
    pub fn span(&self) -> usize {
        match *self {
            Self::Chain { n } => n,
            Self::Independent { n } => usize::from(n > 0),
            Self::TreeOut { depth } | Self::TreeIn { depth } => depth as usize,
            Self::Grid { width, height } => {
                width.saturating_add(height).saturating_sub(1).min(width.saturating_mul(height))
            }
            // spot (or a root) -> p1 -> ... -> last -> total; with no asset nodes, every node is its own path.
            Self::FanOut { assets, per_asset, .. } => match assets {
                0 => 1,
                _ => per_asset.saturating_add(1),
            },
        }
    }

    /// Builds the graph (no costs set).
    ///
    /// # Panics
    ///
    /// If the shape has more than `2^32 - 2` nodes or edges.
    pub fn build(&self) -> Graph {
        let mut b = GraphBuilder::new();
        let numbered = |b: &mut GraphBuilder, n: usize| b.add_numbered(n).expect("shape too large");
        match *self {
            Self::Chain { n } => {
                numbered(&mut b, n);
                for v in 1..n as NodeId {
                    b.add_edge(v - 1, v);
                }
            }
            Self::Independent { n } => numbered(&mut b, n),
            Self::TreeOut { depth } | Self::TreeIn { depth } => {
                let n = tree_nodes(depth);
                numbered(&mut b, n);
                for v in 1..n as NodeId {
                    let parent = (v - 1) / 2;
                    match self {
                        Self::TreeOut { .. } => b.add_edge(parent, v),
                        _ => b.add_edge(v, parent),
                    }
                }
            }
            Self::Grid { width, height } => {
                numbered(&mut b, self.nodes());
                for r in 0..height {
                    for c in 0..width {
                        let v = (r * width + c) as NodeId;
                        if r > 0 {
                            b.add_edge(v - width as NodeId, v);
                        }
                        if c > 0 {
                            b.add_edge(v - 1, v);
                        }
                    }
                }
            }
            Self::FanOut { assets, per_asset, roots } => fan_out(&mut b, assets, per_asset, roots),
        }
        b.build().expect("generated shapes are valid DAGs")
    }
}

fn tree_nodes(depth: u32) -> usize {
    1usize.checked_shl(depth).map_or(usize::MAX, |p| p - 1)
}

fn fan_out(b: &mut GraphBuilder, assets: usize, per_asset: usize, roots: usize) {
    let add = |b: &mut GraphBuilder, name: &str, kind: &str| b.add_node(name, kind).expect("shape too large");
    let root_ids: Vec<NodeId> = (0..roots)
        .map(|i| {
            let name = match i {
                0 => "rate".to_string(),
                1 => "vol".to_string(),
                _ => format!("root{}", i + 1),
            };
            add(b, &name, "source")
        })
        .collect();
    let mut last = Vec::with_capacity(assets);
    for a in 0..assets {
        let asset = format!("A{a:04}");
        let group = b.group_id(&asset);
        let mut prev = None;
        for j in 0..per_asset {
            let v = if j == 0 {
                add(b, &format!("{asset}/spot"), "source")
            } else {
                let v = add(b, &format!("{asset}/p{j}"), "price");
                b.add_edge(prev.expect("j > 0 has a predecessor"), v);
                if j == 1 {
                    for &r in &root_ids {
                        b.add_edge(r, v);
                    }
                } else if !root_ids.is_empty() {
                    b.add_edge(root_ids[(j - 2) % root_ids.len()], v);
                }
                v
            };
            b.set_group(v, group);
            prev = Some(v);
        }
        last.extend(prev);
    }
    let total = add(b, "total", "reduce");
    for v in last {
        b.add_edge(v, total);
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Chain { n } => write!(f, "chain-{n}"),
            Self::Independent { n } => write!(f, "independent-{n}"),
            Self::TreeOut { depth } => write!(f, "tree-out-{depth}"),
            Self::TreeIn { depth } => write!(f, "tree-in-{depth}"),
            Self::Grid { width, height } => write!(f, "grid-{width}x{height}"),
            Self::FanOut { assets, per_asset, roots } => write!(f, "fanout-{assets}x{per_asset}-r{roots}"),
        }
    }
}

/// A shape label [`FromStr`] could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseShapeError {
    label: String,
}

impl fmt::Display for ParseShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown shape {:?}: expected chain-N, independent-N, tree-out-D, tree-in-D, grid-WxH, fanout-AxP or \
             fanout-AxP-rR, with at most 2^32 - 2 nodes",
            self.label
        )
    }
}

impl core::error::Error for ParseShapeError {}

impl FromStr for Shape {
    type Err = ParseShapeError;

    /// Reads the `Display` labels: `chain-N`, `independent-N`, `tree-out-D`, `tree-in-D`, `grid-WxH`,
    /// `fanout-AxP` ([`DEFAULT_ROOTS`] roots) and `fanout-AxP-rR`.
    fn from_str(label: &str) -> Result<Self, Self::Err> {
        let err = || ParseShapeError { label: label.to_string() };
        let num = |s: &str| s.parse::<usize>().map_err(|_| err());
        let pair = |s: &str| -> Result<(usize, usize), ParseShapeError> {
            let (a, b) = s.split_once('x').ok_or_else(err)?;
            Ok((num(a)?, num(b)?))
        };
        let shape = if let Some(n) = label.strip_prefix("chain-") {
            Self::Chain { n: num(n)? }
        } else if let Some(n) = label.strip_prefix("independent-") {
            Self::Independent { n: num(n)? }
        } else if let Some(d) = label.strip_prefix("tree-out-") {
            Self::TreeOut { depth: d.parse().map_err(|_| err())? }
        } else if let Some(d) = label.strip_prefix("tree-in-") {
            Self::TreeIn { depth: d.parse().map_err(|_| err())? }
        } else if let Some(wh) = label.strip_prefix("grid-") {
            let (width, height) = pair(wh)?;
            Self::Grid { width, height }
        } else if let Some(rest) = label.strip_prefix("fanout-") {
            let (ap, roots) = match rest.split_once("-r") {
                Some((ap, r)) => (ap, num(r)?),
                None => (rest, DEFAULT_ROOTS),
            };
            let (assets, per_asset) = pair(ap)?;
            Self::FanOut { assets, per_asset, roots }
        } else {
            return Err(err());
        };
        // Ids are u32 with u32::MAX reserved.
        if shape.nodes() >= u32::MAX as usize || shape.edges() >= u32::MAX as usize {
            return Err(err());
        }
        Ok(shape)
    }
}

/// A random DAG on `n` nodes named by id (kind `"node"`): node `v` takes between 0 and `2 * avg_degree` distinct
/// inputs (fewer when `v` is small) drawn uniformly from `0..v`, so edges only go from lower to higher ids and
/// there are about `n * avg_degree` of them. The same `seed` gives the same graph (SplitMix64, no `rand`).
///
/// # Panics
///
/// If the graph would have more than `2^32 - 2` nodes or edges.
pub fn random(n: usize, avg_degree: u32, seed: u64) -> Graph {
    let mut rng = SplitMix64(seed);
    let mut b = GraphBuilder::new();
    b.add_numbered(n).expect("graph too large");
    let mut picked: Vec<NodeId> = Vec::new();
    for v in 1..n as NodeId {
        let want = (rng.below(2 * u64::from(avg_degree) + 1) as usize).min(v as usize);
        picked.clear();
        // Rejection sampling; bounded so dense corners (want close to v) end rather than spin.
        for _ in 0..4 * want {
            if picked.len() == want {
                break;
            }
            let u = rng.below(u64::from(v)) as NodeId;
            if !picked.contains(&u) {
                picked.push(u);
            }
        }
        for &u in &picked {
            b.add_edge(u, v);
        }
    }
    b.build().expect("random DAGs only have edges from lower to higher ids")
}

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..bound` for test graphs (multiply-shift, no modulo bias worth caring about).
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }
}

/// Nodes on a longest path of `graph` (0 when empty).
pub fn span(graph: &Graph) -> usize {
    let mut depth = alloc::vec![0usize; graph.len()];
    let mut longest = 0;
    for &v in graph.topo_order() {
        let d = graph.predecessors(v).iter().map(|&u| depth[u as usize]).max().unwrap_or(0) + 1;
        depth[v as usize] = d;
        longest = longest.max(d);
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn all_shapes() -> Vec<Shape> {
        vec![
            Shape::Chain { n: 0 },
            Shape::Chain { n: 1 },
            Shape::Chain { n: 1000 },
            Shape::Independent { n: 0 },
            Shape::Independent { n: 77 },
            Shape::TreeOut { depth: 0 },
            Shape::TreeOut { depth: 1 },
            Shape::TreeOut { depth: 10 },
            Shape::TreeIn { depth: 10 },
            Shape::Grid { width: 1, height: 1 },
            Shape::Grid { width: 30, height: 7 },
            Shape::Grid { width: 5, height: 0 },
            Shape::fan_out(20, 50),
            Shape::FanOut { assets: 7, per_asset: 1, roots: 3 },
            Shape::FanOut { assets: 7, per_asset: 2, roots: 3 },
            Shape::FanOut { assets: 5, per_asset: 9, roots: 0 },
            Shape::FanOut { assets: 3, per_asset: 6, roots: 5 },
            Shape::FanOut { assets: 0, per_asset: 6, roots: 2 },
        ]
    }

    #[test]
    fn counts_and_span_match_the_formulas() {
        for shape in all_shapes() {
            let g = shape.build();
            assert_eq!(g.len(), shape.nodes(), "{shape}");
            assert_eq!(g.edge_count(), shape.edges(), "{shape}");
            assert_eq!(span(&g), shape.span(), "{shape}");
            assert!(!g.has_costs(), "{shape}");
        }
    }

    #[test]
    fn concrete_sizes() {
        let g = Shape::TreeOut { depth: 4 }.build();
        assert_eq!((g.len(), g.edge_count(), span(&g)), (15, 14, 4));
        assert_eq!(g.successors(3), &[7, 8]);
        let g = Shape::TreeIn { depth: 4 }.build();
        assert_eq!(g.predecessors(0), &[1, 2]);
        assert_eq!(g.roots().count(), 8);
        let g = Shape::Grid { width: 4, height: 3 }.build();
        assert_eq!((g.len(), g.edge_count(), span(&g)), (12, 17, 6));
        // (1, 2) = id 6 takes (0, 2) = 2 then (1, 1) = 5.
        assert_eq!(g.predecessors(6), &[2, 5]);
        // The bench sizes.
        let (a, b) = (Shape::fan_out(20, 2000), Shape::fan_out(1000, 40));
        assert_eq!((a.nodes(), a.edges(), a.span()), (40_003, 80_000, 2001));
        assert_eq!((b.nodes(), b.edges(), b.span()), (40_003, 80_000, 41));
        let g = b.build();
        assert_eq!((g.len(), g.edge_count(), span(&g)), (40_003, 80_000, 41));
    }

    #[test]
    fn fan_out_names_kinds_groups_inputs() {
        let g = Shape::FanOut { assets: 3, per_asset: 4, roots: 3 }.build();
        let names: Vec<&str> = (0..6).map(|v| g.name(v)).collect();
        assert_eq!(names, ["rate", "vol", "root3", "A0000/spot", "A0000/p1", "A0000/p2"]);
        let id = |name: &str| g.find(name).unwrap();
        assert_eq!(g.kind(id("vol")), "source");
        assert_eq!(g.group(id("vol")), None);
        let spot = id("A0002/spot");
        assert_eq!((g.kind(spot), g.group(spot), g.in_degree(spot)), ("source", Some(2), 0));
        assert_eq!(g.group_name(2), Some("A0002"));
        let p1 = id("A0002/p1");
        assert_eq!(g.kind(p1), "price");
        assert_eq!(g.predecessors(p1), &[spot, id("rate"), id("vol"), id("root3")]);
        // Later nodes: predecessor then one root, round-robin from the first.
        assert_eq!(g.predecessors(id("A0002/p2")), &[p1, id("rate")]);
        assert_eq!(g.predecessors(id("A0002/p3")), &[id("A0002/p2"), id("vol")]);
        assert_eq!(g.group(id("A0001/p3")), Some(1));
        let total = id("total");
        assert_eq!((g.kind(total), g.group(total)), ("reduce", None));
        assert_eq!(g.predecessors(total), &[id("A0000/p3"), id("A0001/p3"), id("A0002/p3")]);
        assert_eq!(g.successors(total), &[] as &[NodeId]);
    }

    #[test]
    fn labels_round_trip() {
        for shape in all_shapes() {
            let label = shape.to_string();
            assert_eq!(label.parse::<Shape>(), Ok(shape), "{label}");
        }
        assert_eq!(Shape::Chain { n: 100_000 }.to_string(), "chain-100000");
        assert_eq!("fanout-20x2000".parse(), Ok(Shape::fan_out(20, 2000)));
        assert_eq!("fanout-1000x40-r5".parse(), Ok(Shape::FanOut { assets: 1000, per_asset: 40, roots: 5 }));
        for bad in ["", "chain", "chain-", "chain-x", "grid-3", "grid-3x", "fanout-3x4-r", "tree-out-40", "ring-5"] {
            let err = bad.parse::<Shape>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn random_is_a_deterministic_forward_dag() {
        let g = random(2000, 3, 42);
        assert_eq!(g.len(), 2000);
        assert!(g.edges().all(|(u, v)| u < v));
        // Mean 3 inputs a node, 2000 nodes: far from both 0 and 12000.
        assert!((5000..7000).contains(&g.edge_count()), "{}", g.edge_count());
        let again = random(2000, 3, 42);
        assert!(g.edges().eq(again.edges()));
        let other = random(2000, 3, 43);
        assert!(!g.edges().eq(other.edges()));
        for v in 0..2000 {
            let mut p = g.predecessors(v).to_vec();
            p.sort_unstable();
            p.dedup();
            assert_eq!(p.len(), g.predecessors(v).len(), "inputs of {v} are distinct");
        }
        assert_eq!(random(0, 3, 1).len(), 0);
        assert_eq!(random(50, 0, 1).edge_count(), 0);
    }
}
