//! DAG computation on the runtime core: a graph of small nodes, partitioned over workers, run with dependency
//! counters and work stealing, recomputed incrementally when sources change, and explained.
//!
//! # Map
//!
//! | module | what |
//! |---|---|
//! | [`graph`] | the validated shape: names, kinds, costs, groups, pins, edges both ways (CSR), topological order |
//! | `gen` ([`Shape`]) | standard shapes (chain, independent, trees, grid, asset fan-out), their sizes; random DAGs |
//! | `file` | (`std`) the edge-list and JSON (`serde`) file forms, errors by file, line and column |

#[cfg(feature = "std")]
pub mod file;
// `gen` is a keyword from edition 2024 on.
pub mod r#gen;
pub mod graph;

pub use r#gen::Shape;
pub use graph::{Graph, GraphBuilder, GraphError, NodeId};
