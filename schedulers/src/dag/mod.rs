//! DAG computation on the runtime core: a graph of small nodes, partitioned over workers, run with dependency
//! counters and work stealing, recomputed incrementally when sources change, and explained.
//!
//! # Map
//!
//! | module | what |
//! |---|---|
//! | [`graph`] | the validated shape: names, kinds, costs, groups, pins, edges both ways (CSR), topological order |
//! | [`compute`] | typed computations: nodes are functions of their inputs, per-asset fan-out, set sources, live recompute (`std`) |
//! | [`partition`] | static partitioners onto a [`Machine`]: round-robin, contiguous, grouped, HEFT, multilevel |
//! | [`explain`] | before running: work, span, critical path; a partition's loads, cut edges and predicted makespan |
//! | [`run`] | the run: dependency counters, per-worker rings and inboxes, stealing, failures, the watchdog (`std`) |
//! | [`report`] | explain before and after a run: achieved time, speedup, per-worker busy/idle/steal (`std`) |
//! | [`dirty`] | what a change reaches: the downstream set in dependency order |
//! | [`synthetic`] | busy-work bodies calibrated to a cost in ns, and the single-thread topological baseline (`std`) |
//! | [`shapes`] | standard shapes (chain, independent, trees, grid, asset fan-out), their sizes; random DAGs |
//! | [`file`] | the edge-list and JSON (`serde`) file forms, errors by file, line and column (`std`) |

#[cfg(all(feature = "std", not(loom)))]
pub mod compute;
pub mod dirty;
pub mod explain;
#[cfg(feature = "std")]
pub mod file;
pub mod graph;
#[cfg(any(feature = "std", loom))]
#[cfg_attr(loom, allow(dead_code))]
mod inbox;
pub mod partition;
#[cfg(all(feature = "std", not(loom)))]
pub mod report;
#[cfg(all(feature = "std", not(loom)))]
pub mod run;
pub mod shapes;
#[cfg(all(feature = "std", not(loom)))]
pub mod synthetic;
#[cfg(test)]
mod test_graphs;

pub use explain::{PartitionStats, Profile, partition_stats, profile};
pub use graph::{Graph, GraphBuilder, GraphError, NodeId};
pub use partition::{Machine, Partition, PartitionError, Partitioner, UnknownPartitioner};
pub use shapes::Shape;
