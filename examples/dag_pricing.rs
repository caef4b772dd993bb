//! A pricing computation as a typed DAG: a shared rate and volatility, a chain of pricing nodes per asset, a book
//! total. Run once on two workers (placed per asset), then move one asset's spot and recompute only what it
//! reaches, then move the shared rate (most of the graph: a full sweep).
//!
//! `cargo run --release --example dag_pricing [ASSETS] [NODES_PER_ASSET]`

use std::time::Instant;

use weir_schedulers::dag::compute::Builder;
use weir_schedulers::dag::run::RunOptions;
use weir_schedulers::dag::{Machine, Partitioner, partition_stats, profile};
use weir_schedulers::rt::Runtime;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u32>());
    let assets = args.next().transpose()?.unwrap_or(1_000);
    let per_asset = args.next().transpose()?.unwrap_or(40).max(2);

    let mut b = Builder::new();
    let rate = b.source("rate", 0.03_f64)?;
    let vol = b.source("vol", 0.20_f64)?;
    let books = b.per_asset(0..assets, |a, i| {
        let spot = a.source("spot", 100.0 + f64::from(*i))?;
        let mut px = a.compute("forward", (spot, rate), |(s, r)| s * (1.0 + r))?;
        for k in 1..per_asset - 1 {
            // Stand-ins for real pricing steps: each reads the previous one and the shared volatility.
            px = a.compute(&format!("step{k}"), (px, vol), move |(p, v)| p * (1.0 - v / 1e4) + f64::from(k) * 1e-6)?;
        }
        Ok((spot, px))
    })?;
    let total = b.compute("total", books.iter().map(|&(_, px)| px).collect::<Vec<_>>(), |each| each.sum::<f64>())?;
    let mut dag = b.build()?;

    let rt = Runtime::builder().unpinned_workers(2).build()?;
    let machine = Machine::new(rt.handle().worker_numa_nodes());
    let partition = Partitioner::Grouped.partition(dag.graph(), &machine)?;
    let stats = partition_stats(dag.graph(), &machine, &partition, "grouped");
    let shape = profile(dag.graph());
    println!(
        "{} nodes, {} edges, span {} nodes; grouped over 2 workers: imbalance {:.3}, {} cut edges",
        shape.nodes,
        shape.edges,
        shape.critical_path.len(),
        stats.imbalance,
        stats.cut_edges
    );

    let started = Instant::now();
    let full = dag.run(rt.handle(), &partition.worker_of, RunOptions::default())?;
    println!("first run: {} nodes in {:?}, total = {:.4}", full.nodes, started.elapsed(), dag.get(total)?);

    let (spot, _) = books[7];
    dag.set(spot, 250.0)?;
    let started = Instant::now();
    let live = dag.recompute(rt.handle(), &partition.worker_of, RunOptions::default())?;
    println!(
        "spot of asset 7 moved: {} nodes recomputed in {:?} (full sweep: {}), total = {:.4}",
        live.nodes,
        started.elapsed(),
        live.full_sweep,
        dag.get(total)?
    );

    dag.set(rate, 0.05)?;
    let started = Instant::now();
    let sweep = dag.recompute(rt.handle(), &partition.worker_of, RunOptions::default())?;
    println!(
        "rate moved: {} nodes recomputed in {:?} (full sweep: {}), total = {:.4}",
        sweep.nodes,
        started.elapsed(),
        sweep.full_sweep,
        dag.get(total)?
    );
    Ok(())
}
