//! What a user reads to see why a run is (or is not) fast: the graph's work, span and parallelism, the partition's
//! loads and cuts, the predicted time; then, after running, the achieved time, the speedup over one thread measured
//! in the same invocation, per-worker busy/idle/steal time, and the gap between predicted and achieved.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::explain::{PartitionStats, Profile};
use super::graph::Graph;
use super::run::{RunResult, WorkerRun};

/// Critical-path nodes listed by name (the count is always given).
const PATH_SHOWN: usize = 12;

/// Before and (optionally) after a run. Field names are the JSON keys of `weir dag run --json`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Report {
    /// Nodes.
    pub nodes: usize,
    /// Edges.
    pub edges: usize,
    /// Workers the plan spreads over.
    pub workers: usize,
    /// The partitioner's name.
    pub partitioner: String,
    /// Sum of node costs (ns).
    pub work_ns: u64,
    /// The critical path's cost (ns).
    pub span_ns: u64,
    /// `work / span`: the most workers that can help.
    pub parallelism: f64,
    /// Nodes on the critical path.
    pub critical_path_nodes: usize,
    /// The first of them, by name.
    pub critical_path: Vec<String>,
    /// `max(work / workers, span)`: no schedule beats it.
    pub lower_bound_ns: u64,
    /// This partition's time without stealing, simulated with the edge costs.
    pub predicted_ns: u64,
    /// Cost assigned to each worker (ns).
    pub load_ns: Vec<u64>,
    /// Nodes assigned to each worker.
    pub nodes_per_worker: Vec<usize>,
    /// Largest load over the mean.
    pub imbalance: f64,
    /// Edges between nodes on different workers.
    pub cut_edges: usize,
    /// Of those, edges between workers on different NUMA nodes.
    pub cross_numa_edges: usize,
    /// After running: what happened.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub run: Option<Achieved>,
}

/// A run's figures (median of the repeats when there were several).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Achieved {
    /// Wall time of the parallel run (ns).
    pub elapsed_ns: u64,
    /// Wall time of the single-thread topological loop over the same bodies, same invocation (ns).
    pub single_thread_ns: u64,
    /// `single_thread / elapsed`.
    pub speedup: f64,
    /// `speedup / workers`.
    pub efficiency: f64,
    /// Wall time of the same work split evenly over the same workers with no dependencies and no scheduling: the
    /// machine's own limit (ns).
    pub ideal_ns: u64,
    /// `ideal / elapsed`: the share of the machine's parallel speed the run achieved.
    pub vs_ideal: f64,
    /// `elapsed / predicted`: above 1, the run was slower than the model of its partition.
    pub vs_predicted: f64,
    /// `elapsed / lower bound`.
    pub vs_lower_bound: f64,
    /// `(elapsed - single_thread / workers) / nodes`: time per node beyond perfect scaling (ns; negative when
    /// the bodies' cache effects beat it).
    pub overhead_per_node_ns: f64,
    /// Successful steals.
    pub steals: u64,
    /// Nodes that ran on a worker other than their assigned one.
    pub off_assigned: u64,
    /// Failed nodes.
    pub failed: usize,
    /// Nodes skipped after a failure upstream.
    pub skipped: usize,
    /// Runs the medians are over.
    pub repeats: usize,
    /// Per worker, from the median run.
    pub per_worker: Vec<WorkerRun>,
}

impl Report {
    /// The static part.
    pub fn before(graph: &Graph, shape: &Profile, stats: &PartitionStats) -> Self {
        Report {
            nodes: graph.len(),
            edges: graph.edge_count(),
            workers: stats.workers,
            partitioner: stats.partitioner.to_string(),
            work_ns: shape.work_ns,
            span_ns: shape.span_ns,
            parallelism: shape.parallelism,
            critical_path_nodes: shape.critical_path.len(),
            critical_path: shape.critical_path.iter().take(PATH_SHOWN).map(|&v| graph.name(v).into()).collect(),
            lower_bound_ns: stats.lower_bound_ns,
            predicted_ns: stats.predicted_ns,
            load_ns: stats.load_ns.clone(),
            nodes_per_worker: stats.nodes_per_worker.clone(),
            imbalance: stats.imbalance,
            cut_edges: stats.cut_edges,
            cross_numa_edges: stats.cross_numa_edges,
            run: None,
        }
    }

    /// Adds the achieved figures: `run` is the median parallel run, `single_thread_ns` the median of the
    /// single-thread loop.
    pub fn with_run(mut self, run: &RunResult, single_thread_ns: u64, ideal_ns: u64, repeats: usize) -> Self {
        let elapsed_ns = u64::try_from(run.elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        let speedup = single_thread_ns as f64 / elapsed_ns as f64;
        let ideal = single_thread_ns as f64 / self.workers.max(1) as f64;
        self.run = Some(Achieved {
            elapsed_ns,
            single_thread_ns,
            speedup,
            efficiency: speedup / self.workers.max(1) as f64,
            ideal_ns,
            vs_ideal: ideal_ns as f64 / elapsed_ns as f64,
            vs_predicted: elapsed_ns as f64 / self.predicted_ns.max(1) as f64,
            vs_lower_bound: elapsed_ns as f64 / self.lower_bound_ns.max(1) as f64,
            overhead_per_node_ns: (elapsed_ns as f64 - ideal) / self.nodes.max(1) as f64,
            steals: run.steals(),
            off_assigned: run.workers.iter().map(|w| w.off_assigned).sum(),
            failed: run.failures.len(),
            skipped: run.skipped,
            repeats,
            per_worker: run.workers.clone(),
        });
        self
    }
}

/// `1234567` ns as `1.235 ms`.
struct Ns(u64);

impl fmt::Display for Ns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0 as f64;
        if ns >= 1e9 {
            write!(f, "{:.3} s", ns / 1e9)
        } else if ns >= 1e6 {
            write!(f, "{:.3} ms", ns / 1e6)
        } else if ns >= 1e3 {
            write!(f, "{:.2} µs", ns / 1e3)
        } else {
            write!(f, "{} ns", self.0)
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: &dyn fmt::Display| writeln!(f, "  {k:<22} {v}");
        writeln!(f, "graph")?;
        row(f, "nodes / edges", &format_args!("{} / {}", self.nodes, self.edges))?;
        row(f, "work", &Ns(self.work_ns))?;
        row(
            f,
            "span",
            &format_args!("{} ({} nodes on the critical path)", Ns(self.span_ns), self.critical_path_nodes),
        )?;
        let more = self.critical_path_nodes.saturating_sub(self.critical_path.len());
        let path = self.critical_path.join(" -> ");
        if more > 0 {
            row(f, "critical path", &format_args!("{path} -> ... ({more} more)"))?;
        } else {
            row(f, "critical path", &path)?;
        }
        row(f, "parallelism", &format_args!("{:.1} (work / span)", self.parallelism))?;
        writeln!(f, "partition: {} over {} workers", self.partitioner, self.workers)?;
        row(f, "lower bound", &format_args!("{} (max(work / workers, span))", Ns(self.lower_bound_ns)))?;
        row(f, "predicted", &format_args!("{} (this partition, no stealing)", Ns(self.predicted_ns)))?;
        row(f, "imbalance", &format_args!("{:.3} (largest load / mean)", self.imbalance))?;
        row(
            f,
            "cut edges",
            &format_args!("{} of {} ({} cross-NUMA)", self.cut_edges, self.edges, self.cross_numa_edges),
        )?;
        writeln!(f, "  {:<8} {:>12} {:>10}", "worker", "load", "nodes")?;
        for (w, (load, nodes)) in self.load_ns.iter().zip(&self.nodes_per_worker).enumerate() {
            writeln!(f, "  {w:<8} {:>12} {nodes:>10}", Ns(*load).to_string())?;
        }
        let Some(run) = &self.run else { return Ok(()) };
        writeln!(f, "run (median of {})", run.repeats)?;
        row(f, "elapsed", &Ns(run.elapsed_ns))?;
        row(
            f,
            "single thread",
            &format_args!("{} (topological loop, same bodies, same invocation)", Ns(run.single_thread_ns)),
        )?;
        row(
            f,
            "speedup",
            &format_args!("{:.2}x ({:.0}% of {} workers)", run.speedup, run.efficiency * 100.0, self.workers),
        )?;
        let ideal_speedup = run.single_thread_ns as f64 / run.ideal_ns.max(1) as f64;
        row(
            f,
            "machine limit",
            &format_args!("{} ({ideal_speedup:.2}x: the same work split evenly, no dependencies)", Ns(run.ideal_ns)),
        )?;
        row(f, "vs machine limit", &format_args!("{:.0}% of it achieved", run.vs_ideal * 100.0))?;
        row(f, "vs predicted", &format_args!("{:.2}x", run.vs_predicted))?;
        row(f, "vs lower bound", &format_args!("{:.2}x", run.vs_lower_bound))?;
        row(f, "overhead per node", &format_args!("{:.1} ns beyond perfect scaling", run.overhead_per_node_ns))?;
        row(f, "steals", &format_args!("{} ({} nodes ran off their worker)", run.steals, run.off_assigned))?;
        if run.failed + run.skipped > 0 {
            row(f, "failed / skipped", &format_args!("{} / {}", run.failed, run.skipped))?;
        }
        writeln!(
            f,
            "  {:<8} {:>10} {:>12} {:>12} {:>12} {:>8} {:>8}",
            "worker", "nodes", "busy", "steal", "idle", "steals", "off"
        )?;
        for (w, r) in run.per_worker.iter().enumerate() {
            writeln!(
                f,
                "  {w:<8} {:>10} {:>12} {:>12} {:>12} {:>8} {:>8}",
                r.nodes,
                Ns(r.busy_ns).to_string(),
                Ns(r.steal_ns).to_string(),
                Ns(r.idle_ns).to_string(),
                r.steals,
                r.off_assigned
            )?;
        }
        Ok(())
    }
}
