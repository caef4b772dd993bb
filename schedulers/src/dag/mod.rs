//! DAG computation on the runtime core: a graph of small nodes, partitioned over workers, run with dependency
//! counters and work stealing, recomputed incrementally when sources change, and explained.
//!
//! # Map
//!
//! | module | what |
//! |---|---|
//! | [`graph`] | the validated shape: names, kinds, costs, groups, pins, edges both ways (CSR), topological order |
//! | [`compute`] | typed computations: nodes are functions of their inputs, per-asset fan-out, set sources, live recompute (`std`) |
//! | [`dirty`] | what a change reaches: the downstream set in dependency order |
//! | [`run`] | the run: dependency counters, per-worker rings and inboxes, stealing, failures, the watchdog (`std`) |
//! | [`synthetic`] | busy-work bodies calibrated to a cost in ns, and the single-thread topological baseline (`std`) |

#[cfg(all(feature = "std", not(loom)))]
pub mod compute;
pub mod dirty;
pub mod graph;
#[cfg(any(feature = "std", loom))]
#[cfg_attr(loom, allow(dead_code))]
mod inbox;
#[cfg(all(feature = "std", not(loom)))]
pub mod run;
#[cfg(all(feature = "std", not(loom)))]
pub mod synthetic;

pub use graph::{Graph, GraphBuilder, GraphError, NodeId};
