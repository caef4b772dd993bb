//! DAG runs on the standard shapes, with two baselines in every group (same run, same bodies): the single-thread
//! topological loop, and a rayon scope with per-node atomic counters (each finished node spawns its ready
//! successors). Bodies spin a calibrated loop for 0, ~1 µs and ~10 µs; 1 and 2 workers.
//!
//! `cargo bench --bench dag` (all of it takes a few minutes); `cargo bench --bench dag -- fanout` for one shape.
//! `benches/ratios.py` turns criterion's estimates into the ratios reported in docs/dag.md.
//!
//! Also `dag/recompute` and `dag/recompute_with_total`: live recompute of one asset's chain and of one sector in a
//! 1,000 x 40 typed computation (without, then with a total over every asset), against a full sequential sweep of
//! the same computation.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use weir_schedulers::dag::compute::{Builder, Dag, Value};
use weir_schedulers::dag::graph::{Graph, NodeId};
use weir_schedulers::dag::partition::{Machine, Partitioner};
use weir_schedulers::dag::run::{Plan, RunOptions, Runner, Scope};
use weir_schedulers::dag::shapes::Shape;
use weir_schedulers::dag::synthetic::{BusyWork, iterations_per_us, run_topological};
use weir_schedulers::rt::Runtime;

/// The shapes the issue names, at its sizes.
fn shapes() -> Vec<Shape> {
    vec![
        Shape::Chain { n: 100_000 },
        Shape::Independent { n: 100_000 },
        Shape::TreeOut { depth: 17 },
        Shape::TreeIn { depth: 17 },
        Shape::Grid { width: 200, height: 200 },
        Shape::FanOut { assets: 20, per_asset: 2_000, roots: 3 },
        Shape::FanOut { assets: 1_000, per_asset: 40, roots: 3 },
    ]
}

/// A rayon scope with per-node atomic counters: the obvious way to run a DAG on rayon.
struct RayonRun<'a> {
    graph: &'a Graph,
    work: &'a BusyWork,
    pending: &'a [AtomicU32],
}

impl<'a> RayonRun<'a> {
    fn run(&self, pool: &rayon::ThreadPool) {
        for v in 0..self.graph.len() {
            self.pending[v].store(self.graph.in_degree(v as NodeId), Ordering::Relaxed);
        }
        pool.scope(|s| {
            for root in self.graph.roots() {
                s.spawn(move |s| self.node(s, root));
            }
        });
    }

    fn node<'s>(&'s self, s: &rayon::Scope<'s>, v: NodeId) {
        self.work.work(v);
        for &next in self.graph.successors(v) {
            if self.pending[next as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
                s.spawn(move |s| self.node(s, next));
            }
        }
    }
}

fn shapes_bench(c: &mut Criterion) {
    let per_us = iterations_per_us();
    let pools: Vec<rayon::ThreadPool> =
        [1, 2].iter().map(|&n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap()).collect();
    let runtimes: Vec<Runtime> = [1usize, 2]
        .iter()
        .map(|&n| Runtime::builder().workers(0..n as u32).name("dag").build().expect("runtime"))
        .collect();
    for shape in shapes() {
        for work_ns in [0u64, 1_000, 10_000] {
            let mut graph = shape.build();
            graph.set_uniform_cost(work_ns);
            let graph = Arc::new(graph);
            let work = Arc::new(BusyWork::from_costs(&graph, per_us));
            let mut group = c.benchmark_group(format!("dag/{shape}/{work_ns}ns"));
            group.throughput(Throughput::Elements(graph.len() as u64));
            let heavy = work_ns >= 1_000 || graph.len() > 50_000;
            group.sample_size(if heavy { 10 } else { 20 });
            group.warm_up_time(Duration::from_millis(500));
            group.measurement_time(Duration::from_secs(if work_ns >= 10_000 { 12 } else { 3 }));

            group.bench_function("topological", |b| b.iter(|| run_topological(&graph, &work)));
            for (i, workers) in [1usize, 2].into_iter().enumerate() {
                let partition =
                    Partitioner::Heft.partition(&graph, &Machine::flat(workers)).expect("partition the shape");
                let plan = Plan::new(graph.clone(), partition.worker_of, workers).expect("plan");
                let mut runner = Runner::new(plan);
                let rt = runtimes[i].handle();
                group.bench_function(BenchmarkId::new("weir", workers), |b| {
                    b.iter(|| runner.run(rt, &work, Scope::All, RunOptions::default()).expect("run"))
                });
                let pending: Vec<AtomicU32> = (0..graph.len()).map(|_| AtomicU32::new(0)).collect();
                let rayon = RayonRun { graph: &graph, work: &work, pending: &pending };
                group.bench_function(BenchmarkId::new("rayon", workers), |b| b.iter(|| rayon.run(&pools[i])));
            }
            group.finish();
        }
    }
}

/// 1,000 assets x 40 typed nodes (f64 arithmetic): per asset a spot and 38 pricing steps, the first reading the
/// asset's sector (50 sectors, 20 assets each); optionally a total over every asset's last step.
struct PricedBook {
    dag: Dag,
    spots: Vec<Value<f64>>,
    sectors: Vec<Value<f64>>,
    total: Option<Value<f64>>,
}

fn priced_book(with_total: bool) -> PricedBook {
    let mut b = Builder::new();
    let sectors: Vec<Value<f64>> = (0..50).map(|i| b.source(&format!("sector{i}"), 0.01).unwrap()).collect();
    let mut spots = Vec::new();
    let lasts = b
        .per_asset(0..1_000u32, |a, i| {
            let spot = a.source("spot", 100.0 + f64::from(*i))?;
            spots.push(spot);
            let mut x = a.compute("p0", (spot, sectors[*i as usize % 50]), |(s, r)| s * (1.0 + r))?;
            for k in 1..38 {
                x = a.compute(&format!("p{k}"), x, move |v| v * 0.999 + f64::from(k))?;
            }
            Ok(x)
        })
        .unwrap();
    let total = with_total.then(|| b.compute("total", lasts, |each| each.sum::<f64>()).unwrap());
    let mut dag = b.build().unwrap();
    dag.run_sequential().unwrap();
    PricedBook { dag, spots, sectors, total }
}

/// Live recompute on the calling thread: one asset's spot (39 nodes, plus the total when there is one), one
/// sector (20 assets: 780 nodes), against a full sweep of the same computation. Throughput is dirty nodes, so
/// criterion's per-element time is the cost per dirty node.
fn recompute_bench(c: &mut Criterion) {
    for with_total in [false, true] {
        let mut book = priced_book(with_total);
        let extra = u64::from(with_total);
        let mut group = c.benchmark_group(if with_total { "dag/recompute_with_total" } else { "dag/recompute" });
        let mut tick = 0.0;
        group.throughput(Throughput::Elements(39 + extra));
        group.bench_function("one_asset", |b| {
            b.iter(|| {
                tick += 0.25;
                book.dag.set(book.spots[17], 100.0 + tick).unwrap();
                let r = book.dag.recompute_sequential().unwrap();
                assert_eq!(r.nodes as u64, 39 + extra);
            })
        });
        group.throughput(Throughput::Elements(1 + 20 * 38 + extra));
        group.bench_function("one_sector", |b| {
            b.iter(|| {
                tick += 0.25;
                book.dag.set(book.sectors[3], 0.01 + tick * 1e-6).unwrap();
                let r = book.dag.recompute_sequential().unwrap();
                assert_eq!(r.nodes as u64, 1 + 20 * 38 + extra);
            })
        });
        let nodes = book.dag.graph().len() as u64;
        group.throughput(Throughput::Elements(nodes));
        group.bench_function("full_sweep", |b| {
            b.iter(|| {
                book.dag.run_sequential().unwrap();
            })
        });
        if let Some(total) = book.total {
            black_box(book.dag.get(total).unwrap());
        }
        group.finish();
    }
}

criterion_group!(benches, recompute_bench, shapes_bench);
criterion_main!(benches);
