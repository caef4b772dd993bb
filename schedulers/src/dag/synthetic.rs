//! Synthetic node bodies for benchmarks and `weir dag run`: each node spins for its cost, as real CPU work (a
//! calibrated loop, not a clock wait, so a preempted worker does not finish early), and the single-thread
//! topological loop every parallel figure is compared with.

use alloc::string::String;
use alloc::vec::Vec;
use core::hint::black_box;
use std::time::Instant;

use super::graph::{Graph, NodeId};
use super::run::Body;

/// Spins a calibrated loop for each node's cost.
#[derive(Debug, Clone)]
pub struct BusyWork {
    /// Loop iterations per node.
    iterations: Vec<u32>,
}

/// Loop iterations per microsecond on this machine, measured over ~20 ms (the best of a few tries, so a
/// preemption during calibration does not inflate every body).
pub fn iterations_per_us() -> f64 {
    let mut best = f64::MAX;
    let rounds = 200_000;
    for _ in 0..5 {
        let start = Instant::now();
        spin(rounds);
        let ns = start.elapsed().as_nanos() as f64;
        best = best.min(ns / rounds as f64);
    }
    1_000.0 / best.max(1e-3)
}

#[inline]
fn spin(iterations: u32) {
    let mut x = 0x9E37_79B9_u64;
    for i in 0..iterations {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(u64::from(i)));
    }
    black_box(x);
}

impl BusyWork {
    /// Bodies spinning `graph.cost_ns(v)` each, at `per_us` iterations per microsecond.
    pub fn from_costs(graph: &Graph, per_us: f64) -> Self {
        let iterations =
            graph.costs().iter().map(|&ns| (ns as f64 * per_us / 1_000.0).round().min(f64::from(u32::MAX)) as u32);
        BusyWork { iterations: iterations.collect() }
    }

    /// Run node `v`'s work.
    #[inline]
    pub fn work(&self, v: NodeId) {
        let n = self.iterations[v as usize];
        if n != 0 {
            spin(n);
        }
    }
}

impl Body for BusyWork {
    #[inline]
    fn run(&self, node: NodeId) -> Result<(), String> {
        self.work(node);
        Ok(())
    }
}

/// The single-thread baseline: every node's work in topological order, nothing else.
pub fn run_topological(graph: &Graph, work: &BusyWork) {
    for &v in graph.topo_order() {
        work.work(v);
    }
}

/// The machine's own limit: every node's work split into equal shares, one per worker of `runtime`, run at once
/// with no dependencies and no scheduling. Returns the wall time. Comparing a run with this separates what the
/// scheduler costs from what the machine allows (two vCPUs that share a core, a noisy neighbour).
pub fn run_ideal(
    runtime: &crate::rt::Runtime,
    work: &alloc::sync::Arc<BusyWork>,
) -> Result<core::time::Duration, crate::SpawnError> {
    let workers = runtime.handle().workers();
    let n = work.iterations.len();
    let started = Instant::now();
    let joins: Vec<_> = (0..workers)
        .map(|w| {
            let work = work.clone();
            let (from, to) = (n * w / workers, n * (w + 1) / workers);
            runtime.spawn_on(w, async move {
                for v in from..to {
                    work.work(v as NodeId);
                }
            })
        })
        .collect::<Result<_, _>>()?;
    for join in joins {
        // A share cannot fail (the loop does not panic); a join error would only mean the runtime shut down.
        let _ = runtime.block_on(join);
    }
    Ok(started.elapsed())
}
