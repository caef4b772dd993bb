//! DAG computation on the runtime core: a graph of small nodes, partitioned over workers, run with dependency
//! counters and work stealing, recomputed incrementally when sources change, and explained.
//!
//! # Map
//!
//! | module | what |
//! |---|---|
//! | [`graph`] | the validated shape: names, kinds, costs, groups, pins, edges both ways (CSR), topological order |
//! | [`partition`] | static partitioners onto a [`Machine`]: round-robin, contiguous, grouped, HEFT, multilevel |
//! | [`explain`] | before running: work, span, critical path; a partition's loads, cut edges and predicted makespan |

pub mod explain;
pub mod graph;
pub mod partition;
#[cfg(test)]
mod test_graphs;

pub use explain::{PartitionStats, Shape, partition_stats, shape};
pub use graph::{Graph, GraphBuilder, GraphError, NodeId};
pub use partition::{Machine, Partition, PartitionError, Partitioner, UnknownPartitioner};
