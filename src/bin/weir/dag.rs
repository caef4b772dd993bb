//! `weir dag gen | run | explain`: standard graphs to files, synthetic runs with their same-invocation baseline,
//! and the partition metrics before running.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_schedulers::dag::explain::{partition_stats, profile};
use weir_schedulers::dag::file;
use weir_schedulers::dag::graph::Graph;
use weir_schedulers::dag::partition::{Machine, Partitioner};
use weir_schedulers::dag::report::Report;
use weir_schedulers::dag::run::{Plan, RunError, RunOptions, RunResult, Runner, Scope};
use weir_schedulers::dag::shapes::Shape;
use weir_schedulers::dag::synthetic::{BusyWork, iterations_per_us, run_ideal, run_topological};
use weir_schedulers::rt::Runtime;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum DagCommand {
    /// Write a standard shape as a graph file: `chain N`, `independent N`, `tree-out DEPTH`, `tree-in DEPTH`,
    /// `grid W H`, `fanout ASSETS NODES_PER_ASSET [ROOTS]` (or one label: `grid-200x200`, `fanout-20x2000`).
    Gen(GenArgs),
    /// Run a graph on N workers with synthetic busy-work bodies, and report the metrics with the speedup over a
    /// single-thread topological run measured in the same invocation.
    Run(RunArgs),
    /// The metrics before running: work, span, parallelism, and for each partitioner its loads, cuts and
    /// predicted time.
    Explain(ExplainArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct GenArgs {
    /// The shape, then its sizes.
    #[arg(required = true, num_args = 1..)]
    shape: Vec<String>,
    /// Where to write it: `.json` for the JSON form, anything else for the edge list. Default: the edge list on
    /// standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Give every node this cost (written with the graph).
    #[arg(long, value_name = "NS")]
    cost_ns: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct GraphArgs {
    /// The graph: an edge list (`n m`, then `m` lines `u v`, then optionally `n` costs) or `.json`.
    #[arg(long)]
    graph: PathBuf,
    /// Every node's busy work in ns (default: the file's costs; 0 when it has none).
    #[arg(long, value_name = "W")]
    work_ns: Option<u64>,
    /// Worker threads (default: the CPUs this process may use).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Pin worker i to the i-th of these CPUs (default: the first N CPUs this process may use, when there are
    /// enough; else unpinned).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    cpus: Option<Vec<u32>>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Take the workers from this layout file's `[dag]` (checked against this machine first; any error: nothing
    /// starts), with the machine's topology for the steal order.
    #[arg(long, value_name = "LAYOUT.toml", conflicts_with_all = ["workers", "cpus"])]
    layout: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    graph: GraphArgs,
    /// The partitioner: round-robin, contiguous, grouped, heft, greedy (`weir dag explain` compares them).
    #[arg(long, default_value = "heft")]
    partition: String,
    /// Runs of each (parallel and single-thread, interleaved); the report gives medians.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Stop a run and report what waits on what when no node completes for this long.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    watchdog_ms: u64,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ExplainArgs {
    #[command(flatten)]
    graph: GraphArgs,
    /// One partitioner, or `all` to compare them.
    #[arg(long, default_value = "all")]
    partition: String,
    /// NUMA node of each worker (default: read from the pinned CPUs; all 0 when unknown).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    numa: Option<Vec<u32>>,
}

pub(crate) fn run(cmd: DagCommand) -> ExitCode {
    match cmd {
        DagCommand::Gen(args) => gen_graph(args),
        DagCommand::Run(args) => run_graph(args),
        DagCommand::Explain(args) => explain(args),
    }
}

fn usage(cmd: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("weir dag {cmd}: {e}");
    ExitCode::from(2)
}

/// `chain 100000` -> `chain-100000`; a single argument is taken as a label already.
fn shape_label(words: &[String]) -> Result<String, String> {
    let nums = &words[1..];
    let label = match (words[0].as_str(), nums.len()) {
        (_, 0) => words[0].clone(),
        ("chain" | "independent" | "tree-out" | "tree-in", 1) => format!("{}-{}", words[0], nums[0]),
        ("grid", 2) => format!("grid-{}x{}", nums[0], nums[1]),
        ("fanout", 2) => format!("fanout-{}x{}", nums[0], nums[1]),
        ("fanout", 3) => format!("fanout-{}x{}-r{}", nums[0], nums[1], nums[2]),
        ("chain" | "independent" | "tree-out" | "tree-in" | "grid" | "fanout", n) => {
            return Err(format!("`{}` does not take {n} sizes (see `weir dag gen --help`)", words[0]));
        }
        (shape, _) => {
            return Err(format!(
                "unknown shape `{shape}`: chain, independent, tree-out, tree-in, grid, fanout (see `weir dag gen --help`)"
            ));
        }
    };
    Ok(label)
}

fn gen_graph(args: GenArgs) -> ExitCode {
    let shape: Shape = match shape_label(&args.shape).and_then(|l| l.parse().map_err(|e| format!("{e}"))) {
        Ok(s) => s,
        Err(e) => return usage("gen", e),
    };
    let mut graph = shape.build();
    if let Some(ns) = args.cost_ns {
        graph.set_uniform_cost(ns);
    }
    let written = match &args.out {
        Some(path) => file::write_path(&graph, path).map_err(|e| e.to_string()),
        None => {
            let stdout = io::stdout().lock();
            file::write_edge_list(&graph, io::BufWriter::new(stdout), graph.has_costs()).map_err(|e| e.to_string())
        }
    };
    match written {
        Ok(()) => {
            if let Some(path) = &args.out {
                eprintln!("{shape}: {} nodes, {} edges -> {}", graph.len(), graph.edge_count(), path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weir dag gen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(cmd: &str, args: &GraphArgs) -> Result<Graph, ExitCode> {
    let mut graph = file::read_path(&args.graph).map_err(|e| usage(cmd, e))?;
    if let Some(ns) = args.work_ns {
        graph.set_uniform_cost(ns);
    }
    Ok(graph)
}

/// The CPUs to pin `workers` workers to, or `None` for unpinned.
fn worker_cpus(args: &GraphArgs, workers: usize) -> Result<Option<Vec<u32>>, String> {
    if let Some(cpus) = &args.cpus {
        if cpus.len() < workers {
            return Err(format!("--cpus names {} CPUs for {workers} workers", cpus.len()));
        }
        return Ok(Some(cpus[..workers].to_vec()));
    }
    let allowed = weir_hw::pin::current_thread_affinity().unwrap_or_default();
    Ok((allowed.len() >= workers).then(|| allowed[..workers].to_vec()))
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The layout's DAG runtime builder and worker count.
fn layout_runtime(path: &std::path::Path) -> Result<(weir_schedulers::rt::Builder, usize), String> {
    let validated = crate::hw::validated_layout(path, false)?;
    let workers = validated.dag_workers().len();
    let builder = validated.dag_runtime().ok_or_else(|| format!("{}: no [dag] workers", path.display()))?;
    Ok((builder, workers))
}

fn runtime(args: &GraphArgs, workers: usize) -> Result<Runtime, String> {
    if let Some(path) = &args.layout {
        let (builder, n) = layout_runtime(path)?;
        return builder.build().map_err(|e| format!("cannot start the layout's {n} DAG workers: {e}"));
    }
    let builder = Runtime::builder().name("dag");
    let builder = match worker_cpus(args, workers)? {
        Some(cpus) => builder.workers(cpus),
        None => builder.unpinned_workers(workers),
    };
    builder.build().map_err(|e| format!("cannot start {workers} workers: {e}"))
}

fn partitioner(cmd: &str, name: &str) -> Result<Partitioner, ExitCode> {
    Partitioner::from_name(name).map_err(|e| usage(cmd, e))
}

fn run_graph(args: RunArgs) -> ExitCode {
    let graph = match load("run", &args.graph) {
        Ok(g) => Arc::new(g),
        Err(code) => return code,
    };
    let workers = args.graph.workers.unwrap_or_else(default_workers).max(1);
    let partitioner = match partitioner("run", &args.partition) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let rt = match runtime(&args.graph, workers) {
        Ok(rt) => rt,
        Err(e) => return usage("run", e),
    };
    // `--layout` decides the worker count.
    let workers = rt.handle().worker_numa_nodes().len();
    let machine = Machine::new(rt.handle().worker_numa_nodes());
    let partition = match partitioner.partition(&graph, &machine) {
        Ok(p) => p,
        Err(e) => return usage("run", e),
    };
    let stats = partition_stats(&graph, &machine, &partition, partitioner.name());
    let plan = match Plan::new(graph.clone(), partition.worker_of.clone(), workers) {
        Ok(p) => p,
        Err(e) => return usage("run", e),
    };
    let work = Arc::new(BusyWork::from_costs(&graph, iterations_per_us()));
    let mut runner = Runner::new(plan);
    let options = RunOptions { watchdog: Duration::from_millis(args.watchdog_ms.max(1)) };

    // Interleave the baseline and the parallel run so machine noise lands on both; one warm-up of each.
    let repeats = args.repeat.max(1);
    let mut single = Vec::with_capacity(repeats);
    let mut ideal = Vec::with_capacity(repeats);
    let mut runs: Vec<RunResult> = Vec::with_capacity(repeats);
    for i in 0..=repeats {
        let started = Instant::now();
        run_topological(&graph, &work);
        let single_ns = started.elapsed().as_nanos() as u64;
        let result = match runner.run(rt.handle(), &work, Scope::All, options) {
            Ok(r) => r,
            Err(RunError::Stalled(stall)) => {
                eprintln!("weir dag run: stalled: {stall}");
                return ExitCode::FAILURE;
            }
            Err(e) => return usage("run", e),
        };
        let ideal_ns = match run_ideal(&rt, &work) {
            Ok(d) => d.as_nanos() as u64,
            Err(e) => return usage("run", e),
        };
        if i > 0 {
            single.push(single_ns);
            ideal.push(ideal_ns);
            runs.push(result);
        }
    }
    single.sort_unstable();
    ideal.sort_unstable();
    runs.sort_by_key(|r| r.elapsed);
    // The lower median for an even count: with two runs, the faster one (the slower is usually the noisier).
    let median_run = &runs[(runs.len() - 1) / 2];
    let report = Report::before(&graph, &profile(&graph), &stats).with_run(
        median_run,
        single[(single.len() - 1) / 2],
        ideal[(ideal.len() - 1) / 2],
        repeats,
    );
    print_report(&report, args.graph.json)
}

fn print_report<T: serde::Serialize + std::fmt::Display>(report: &T, json: bool) -> ExitCode {
    let mut out = io::stdout().lock();
    let written = if json {
        // serde_json wraps I/O errors; unwrap them so a closed pipe is still a closed pipe.
        serde_json::to_writer_pretty(&mut out, report)
            .map_err(|e| match e.io_error_kind() {
                Some(kind) => io::Error::from(kind),
                None => io::Error::other(e),
            })
            .and_then(|()| writeln!(out))
    } else {
        write!(out, "{report}")
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir dag: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Several reports: a comparison table, or a JSON array.
struct Comparison(Vec<Report>);

impl serde::Serialize for Comparison {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(first) = self.0.first() else { return Ok(()) };
        writeln!(
            f,
            "{} nodes, {} edges; work {:.3} ms, span {:.3} ms ({} nodes), parallelism {:.1}; {} workers",
            first.nodes,
            first.edges,
            first.work_ns as f64 / 1e6,
            first.span_ns as f64 / 1e6,
            first.critical_path_nodes,
            first.parallelism,
            first.workers
        )?;
        writeln!(f, "lower bound max(work / workers, span): {:.3} ms", first.lower_bound_ns as f64 / 1e6)?;
        writeln!(
            f,
            "{:<12} {:>10} {:>10} {:>8} {:>10} {:>14}",
            "partition", "imbalance", "cut edges", "cut %", "cross-NUMA", "predicted ms"
        )?;
        for r in &self.0 {
            writeln!(
                f,
                "{:<12} {:>10.3} {:>10} {:>7.1}% {:>10} {:>14.3}",
                r.partitioner,
                r.imbalance,
                r.cut_edges,
                100.0 * r.cut_edges as f64 / r.edges.max(1) as f64,
                r.cross_numa_edges,
                r.predicted_ns as f64 / 1e6
            )?;
        }
        Ok(())
    }
}

fn explain(args: ExplainArgs) -> ExitCode {
    let graph = match load("explain", &args.graph) {
        Ok(g) => g,
        Err(code) => return code,
    };
    let workers = args.graph.workers.unwrap_or_else(default_workers).max(1);
    let numa = match &args.numa {
        Some(nodes) if nodes.len() != workers => {
            return usage("explain", format!("--numa gives {} nodes for {workers} workers", nodes.len()));
        }
        Some(nodes) => nodes.clone(),
        // The runtime's view: the NUMA node of each worker's CPU, from the topology it was built with.
        None => match runtime(&args.graph, workers) {
            Ok(rt) => rt.handle().worker_numa_nodes(),
            Err(e) => return usage("explain", e),
        },
    };
    let machine = Machine::new(numa);
    let partitioners = if args.partition == "all" {
        Partitioner::ALL.to_vec()
    } else {
        match partitioner("explain", &args.partition) {
            Ok(p) => vec![p],
            Err(code) => return code,
        }
    };
    let shape = profile(&graph);
    let mut reports = Vec::new();
    for p in partitioners {
        match p.partition(&graph, &machine) {
            Ok(partition) => {
                let stats = partition_stats(&graph, &machine, &partition, p.name());
                reports.push(Report::before(&graph, &shape, &stats));
            }
            Err(e) => return usage("explain", e),
        }
    }
    if reports.len() == 1 {
        print_report(&reports[0], args.graph.json)
    } else {
        print_report(&Comparison(reports), args.graph.json)
    }
}
