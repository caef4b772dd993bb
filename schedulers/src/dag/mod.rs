//! DAG computation on the runtime core: a graph of small nodes, partitioned over workers, run with dependency
//! counters and work stealing, recomputed incrementally when sources change, and explained.
//!
//! # Map
//!
//! | module | what |
//! |---|---|
//! | [`graph`] | the validated shape: names, kinds, costs, groups, pins, edges both ways (CSR), topological order |

pub mod graph;

pub use graph::{Graph, GraphBuilder, GraphError, NodeId};
