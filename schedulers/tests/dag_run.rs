//! DAG runs on real worker threads: parallel results equal the sequential reference, live recompute touches exactly
//! the downstream set, failures and panics never hang a run, the watchdog names a stuck node, pins hold.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_schedulers::dag::compute::{Builder, Dag, Value, ValueError};
use weir_schedulers::dag::graph::{Graph, GraphBuilder, NodeId};
use weir_schedulers::dag::run::{Body, Outcome, Plan, RunError, RunOptions, Runner, Scope};
use weir_schedulers::rt::Runtime;

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().unpinned_workers(workers).build().expect("runtime")
}

fn round_robin(graph: &Graph, workers: usize) -> Vec<u32> {
    (0..graph.len()).map(|v| (v % workers) as u32).collect()
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn mix(seed: u64, x: u64) -> u64 {
    (seed ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
}

/// A random computation: `sources` sources, then nodes in 16 lanes; each reads up to 3 random earlier nodes of its
/// lane (a lane starts at its own source) and, one time in ten, one of the first four sources (shared roots). Every
/// node counts its runs in `runs`.
fn random_dag(seed: u64, sources: usize, nodes: usize, runs: &Arc<Vec<AtomicU32>>) -> (Dag, Vec<Value<u64>>) {
    const LANES: usize = 16;
    let mut rng = Lcg(seed);
    let mut b = Builder::new();
    let mut values: Vec<Value<u64>> = (0..sources).map(|i| b.source(&format!("s{i}"), i as u64).unwrap()).collect();
    let mut lanes: Vec<Vec<Value<u64>>> = (0..LANES).map(|l| vec![values[4 + l % (sources - 4)]]).collect();
    for i in sources..nodes {
        let lane = &mut lanes[rng.next() as usize % LANES];
        let k = 1 + rng.next() as usize % 3;
        let mut inputs: Vec<Value<u64>> = (0..k).map(|_| lane[rng.next() as usize % lane.len()]).collect();
        if rng.next().is_multiple_of(10) {
            inputs.push(values[rng.next() as usize % 4]);
        }
        let runs = runs.clone();
        let v = b
            .compute(&format!("n{i}"), inputs, move |each| {
                runs[i].fetch_add(1, Ordering::Relaxed);
                each.fold(i as u64, |acc, &x| mix(acc, x))
            })
            .unwrap();
        lane.push(v);
        values.push(v);
    }
    (b.build().unwrap(), values)
}

fn counters(n: usize) -> Arc<Vec<AtomicU32>> {
    Arc::new((0..n).map(|_| AtomicU32::new(0)).collect())
}

fn snapshot(dag: &Dag, values: &[Value<u64>]) -> Vec<u64> {
    values.iter().map(|&v| *dag.get(v).unwrap()).collect()
}

#[test]
fn random_dags_on_1_to_4_workers_equal_the_sequential_run() {
    let (max_workers, seeds, scale) = if cfg!(miri) { (2, 2, 30) } else { (4, 6, 700) };
    for workers in 1..=max_workers {
        let rt = runtime(workers);
        for seed in 0..seeds {
            let n = 30 + scale * seed as usize;
            let runs = counters(n);
            let (mut reference, values) = random_dag(seed, 8, n, &runs);
            reference.run_sequential().unwrap();
            let expected = snapshot(&reference, &values);

            let runs = counters(n);
            let (mut dag, values) = random_dag(seed, 8, n, &runs);
            let placement = round_robin(dag.graph(), workers);
            let result = dag.run(rt.handle(), &placement, RunOptions::default()).unwrap();
            assert_eq!(snapshot(&dag, &values), expected, "workers {workers} seed {seed}");
            assert!(runs.iter().skip(8).all(|r| r.load(Ordering::Relaxed) == 1), "each node once");
            let run = result.run.unwrap();
            assert_eq!(run.workers.iter().map(|w| w.nodes).sum::<u64>(), n as u64);
            assert!(run.failures.is_empty());
        }
    }
}

#[test]
fn live_recompute_touches_exactly_the_downstream_set() {
    // Under Miri (which checks the value slots' unsafe code) a small graph: every dirty set then runs inline.
    let n = if cfg!(miri) { 400 } else { 20_000 };
    let runs = counters(n);
    let (mut dag, values) = random_dag(7, 64, n, &runs);
    let rt = runtime(2);
    let placement = round_robin(dag.graph(), 2);
    dag.run(rt.handle(), &placement, RunOptions::default()).unwrap();

    let mut partial = 0;
    for (round, changed) in
        [vec![7usize], vec![10, 11], vec![63], vec![2], vec![0, 1, 2, 3, 4, 5]].into_iter().enumerate()
    {
        for r in runs.iter() {
            r.store(0, Ordering::Relaxed);
        }
        for &s in &changed {
            dag.set(values[s], 1000 + round as u64).unwrap();
        }
        // The expected downstream set, by a plain forward sweep over ids (edges go from lower to higher ids).
        let graph = dag.graph().clone();
        let mut dirty = vec![false; n];
        for &s in &changed {
            dirty[s] = true;
        }
        for v in 0..n {
            if graph.predecessors(v as NodeId).iter().any(|&p| dirty[p as usize]) {
                dirty[v] = true;
            }
        }
        let expected = dirty.iter().filter(|&&d| d).count();
        let outcome = if round % 2 == 0 {
            dag.recompute(rt.handle(), &placement, RunOptions::default()).unwrap()
        } else {
            dag.recompute_sequential().unwrap()
        };
        if outcome.full_sweep {
            assert!(expected > n / 2, "full sweep for {expected} of {n}");
        } else {
            partial += 1;
            assert_eq!(outcome.nodes, expected, "round {round}");
            for v in 64..n {
                assert_eq!(runs[v].load(Ordering::Relaxed), u32::from(dirty[v]), "node {v} round {round}");
            }
        }
        // Values equal a fresh sequential run from the same sources.
        let runs2 = counters(n);
        let (mut fresh, fresh_values) = random_dag(7, 64, n, &runs2);
        for s in 0..64 {
            fresh.set(fresh_values[s], *dag.get(values[s]).unwrap()).unwrap();
        }
        fresh.run_sequential().unwrap();
        assert_eq!(snapshot(&dag, &values), snapshot(&fresh, &fresh_values), "round {round}");
    }
    assert!(partial >= 3, "most rounds should recompute a part of the graph, not all of it");
}

#[test]
#[cfg_attr(miri, ignore = "needs a dirty set above PARALLEL_MIN_NODES: too slow under Miri")]
fn a_large_dirty_set_runs_on_the_workers() {
    // A wide graph: one source feeding 5,000 nodes, plus 10,000 nodes it does not reach.
    let mut b = Builder::new();
    let hot = b.source("hot", 1u64).unwrap();
    let cold = b.source("cold", 1u64).unwrap();
    let reached: Vec<Value<u64>> =
        (0..5_000).map(|i| b.compute(&format!("h{i}"), hot, move |x| x + i).unwrap()).collect();
    for i in 0..10_000u64 {
        b.compute(&format!("c{i}"), cold, move |x| x * i).unwrap();
    }
    let total = b.compute("total", reached, |each| each.sum::<u64>()).unwrap();
    let mut dag = b.build().unwrap();
    let rt = runtime(2);
    let placement = round_robin(dag.graph(), 2);
    dag.run(rt.handle(), &placement, RunOptions::default()).unwrap();
    dag.set(hot, 2).unwrap();
    let outcome = dag.recompute(rt.handle(), &placement, RunOptions::default()).unwrap();
    assert!(!outcome.full_sweep);
    assert_eq!(outcome.nodes, 5_002);
    let run = outcome.run.expect("ran on the workers");
    assert_eq!(run.nodes, 5_002);
    assert_eq!(*dag.get(total).unwrap(), (0..5_000).map(|i| 2 + i).sum::<u64>());
}

#[test]
fn failures_and_panics_mark_downstream_and_the_rest_completes() {
    for workers in [1, 2, 3] {
        let rt = runtime(workers);
        let mut b = Builder::new();
        let x = b.source("x", 1i64).unwrap();
        let bad = b.node("bad", x, |_| Err::<i64, _>("no quote")).unwrap();
        let after_bad = b.compute("after_bad", bad, |v| v + 1).unwrap();
        let boom = b.compute("boom", x, |_: &i64| -> i64 { panic!("kaboom") }).unwrap();
        let after_boom = b.compute("after_boom", (boom, x), |(a, b)| a + b).unwrap();
        let fine: Vec<Value<i64>> = (0..50).map(|i| b.compute(&format!("ok{i}"), x, move |v| v + i).unwrap()).collect();
        let sum = b.compute("sum", fine.clone(), |each| each.sum::<i64>()).unwrap();
        let mut dag = b.build().unwrap();
        let placement = round_robin(dag.graph(), workers);
        let result = dag.run(rt.handle(), &placement, RunOptions::default()).unwrap().run.unwrap();
        assert_eq!(result.failures.len(), 2);
        assert_eq!(result.skipped, 2);
        assert_eq!(*dag.get(sum).unwrap(), (0..50).map(|i| 1 + i).sum::<i64>());
        assert_eq!(
            dag.get(after_bad).unwrap_err(),
            ValueError::Failed { at: "after_bad".into(), node: "bad".into(), error: "no quote".into() }
        );
        let err = dag.get(after_boom).unwrap_err();
        assert!(err.to_string().contains("boom failed") || err.to_string().contains("upstream boom"), "{err}");
        assert!(err.to_string().contains("kaboom"), "{err}");
        assert_eq!(result.outcome(boom.node()), Outcome::Failed);
        assert_eq!(result.outcome(after_boom.node()), Outcome::Skipped);
        assert_eq!(result.cause(after_boom.node()), Some(boom.node()));

        // Sequential agrees.
        dag.run_sequential().unwrap();
        assert_eq!(
            dag.get(after_bad).unwrap_err().to_string(),
            "after_bad not computed: upstream bad failed: no quote"
        );
    }
}

/// A body that blocks on a channel for one node: the deliberately stuck node.
struct Stuck {
    node: NodeId,
    release: Mutex<mpsc::Receiver<()>>,
}

impl Body for Stuck {
    fn run(&self, node: NodeId) -> Result<(), String> {
        if node == self.node {
            let _ = self.release.lock().unwrap().recv();
        }
        Ok(())
    }
}

#[test]
#[cfg_attr(miri, ignore = "wall-clock watchdog")]
fn the_watchdog_names_a_stuck_node_and_what_waits_on_it() {
    // a -> stuck -> b -> c, plus 20 independent nodes.
    let mut g = GraphBuilder::new();
    for name in ["a", "stuck", "b", "c"] {
        g.add_node(name, "node").unwrap();
    }
    g.add_edge(0, 1);
    g.add_edge(1, 2);
    g.add_edge(2, 3);
    for i in 0..20 {
        g.add_node(&format!("free{i}"), "node").unwrap();
    }
    let graph = Arc::new(g.build().unwrap());
    let rt = runtime(2);
    let plan = Plan::new(graph.clone(), round_robin(&graph, 2), 2).unwrap();
    let mut runner = Runner::new(plan);
    let (tx, rx) = mpsc::channel();
    let body = Arc::new(Stuck { node: 1, release: Mutex::new(rx) });
    let options = RunOptions { watchdog: Duration::from_millis(200) };
    let started = std::time::Instant::now();
    let err = runner.run(rt.handle(), &body, Scope::All, options).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    let RunError::Stalled(stall) = err else { panic!("{err}") };
    assert_eq!(stall.running.len(), 1);
    assert_eq!(stall.running[0].1, "stuck");
    assert_eq!(stall.completed, 21);
    assert_eq!(stall.waiting, vec![("b".to_string(), vec!["stuck".to_string()]), ("c".into(), vec!["b".into()])]);
    let text = stall.to_string();
    assert!(text.contains("running on worker") && text.contains("b: waiting on stuck"), "{text}");
    // Until the stuck node returns, the runner refuses to run again.
    assert!(runner.busy());
    assert!(matches!(runner.run(rt.handle(), &body, Scope::All, options), Err(RunError::Plan(_))));
    tx.send(()).unwrap();
    while runner.busy() {
        std::thread::sleep(Duration::from_millis(1));
    }
    // A scope that is not closed under successors, or names a node twice, is refused (it would miscount).
    let err = runner.run(rt.handle(), &body, Scope::Downstream(&[0, 1, 2]), options).unwrap_err();
    assert!(err.to_string().contains("\"c\""), "{err}");
    assert!(runner.run(rt.handle(), &body, Scope::Downstream(&[3, 3]), options).is_err());
    tx.send(()).unwrap();
    let done = runner.run(rt.handle(), &body, Scope::All, options).unwrap();
    assert_eq!(done.nodes, 24);
    assert!((0..24).all(|v| done.outcome(v) == Outcome::Done));
}

/// Records which worker ran each node.
struct WhereRan {
    worker: Vec<AtomicU32>,
}

impl Body for WhereRan {
    fn run(&self, node: NodeId) -> Result<(), String> {
        let me = weir_schedulers::rt::current().and_then(|h| h.current_worker()).map_or(u32::MAX, |w| w as u32);
        self.worker[node as usize].store(me, Ordering::Relaxed);
        // Enough work that stealing has something to take.
        let mut x = 0u64;
        for i in 0..2_000 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        std::hint::black_box(x);
        Ok(())
    }
}

#[test]
#[cfg_attr(miri, ignore = "needs real parallel timing for a steal to happen")]
fn pinned_nodes_run_on_their_worker_and_idle_workers_steal() {
    // 4,000 independent nodes all assigned to worker 0; every 10th pinned there.
    let mut g = GraphBuilder::new();
    g.add_numbered(4_000).unwrap();
    for v in (0..4_000).step_by(10) {
        g.set_pin(v, 0);
    }
    let graph = Arc::new(g.build().unwrap());
    let rt = runtime(2);
    let mut runner = Runner::new(Plan::new(graph.clone(), vec![0; 4_000], 2).unwrap());
    let body = Arc::new(WhereRan { worker: (0..4_000).map(|_| AtomicU32::new(u32::MAX)).collect() });
    let result = runner.run(rt.handle(), &body, Scope::All, RunOptions::default()).unwrap();
    let ran_on = |v: usize| body.worker[v].load(Ordering::Relaxed);
    assert!((0..4_000).step_by(10).all(|v| ran_on(v) == 0), "pinned nodes stay on worker 0");
    assert!((0..4_000).all(|v| ran_on(v) < 2));
    let stolen = (0..4_000).filter(|&v| ran_on(v) == 1).count() as u64;
    assert_eq!(result.workers[1].off_assigned, stolen);
    assert!(result.steals() > 0 && stolen > 0, "worker 1 stole nothing: {result:?}");

    // A pin to a worker the plan does not have is refused.
    let mut g = GraphBuilder::new();
    g.add_numbered(2).unwrap();
    g.set_pin(1, 5);
    let graph = Arc::new(g.build().unwrap());
    let err = Plan::new(graph, vec![0, 5], 2).unwrap_err();
    assert_eq!(err.to_string(), "node \"1\" is assigned to worker 5, but there are 2 workers");
}

/// A typed computation whose run stalls: until the stuck node returns, nothing reads or writes the slots (not
/// even the sequential paths); afterwards the next recompute is a full run.
#[test]
#[cfg_attr(miri, ignore = "wall-clock watchdog")]
fn a_stalled_typed_run_is_not_trusted_until_a_full_run() {
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Mutex::new(rx);
    let mut b = Builder::new();
    let x = b.source("x", 1u64).unwrap();
    let slow = b
        .compute("slow", x, move |v| {
            let _ = rx.lock().unwrap().recv_timeout(Duration::from_secs(30));
            v + 1
        })
        .unwrap();
    let after = b.compute("after", slow, |v| v * 10).unwrap();
    let mut dag = b.build().unwrap();
    let rt = runtime(2);
    let options = RunOptions { watchdog: Duration::from_millis(150) };
    assert!(matches!(dag.run(rt.handle(), &[0, 1, 0], options), Err(RunError::Stalled(_))));
    assert_eq!(dag.get(after).unwrap_err(), ValueError::Busy);
    assert_eq!(dag.run_sequential().unwrap_err(), ValueError::Busy);
    assert_eq!(dag.recompute_sequential().unwrap_err(), ValueError::Busy);
    assert!(dag.set(x, 5).is_err());
    tx.send(()).unwrap();
    while dag.get(x).is_err_and(|e| e == ValueError::Busy) {
        std::thread::sleep(Duration::from_millis(1));
    }
    // The stalled run's values are not trusted; the next recompute runs everything.
    assert_eq!(dag.get(after).unwrap_err(), ValueError::NotComputed("after".into()));
    tx.send(()).unwrap();
    let r = dag.recompute(rt.handle(), &[0, 1, 0], options).unwrap();
    assert!(r.full_sweep);
    assert_eq!(*dag.get(after).unwrap(), 20);
}

#[test]
fn typed_builder_refuses_duplicates_and_foreign_values() {
    let mut b = Builder::new();
    b.source("x", 1u8).unwrap();
    assert!(b.source("x", 2u8).is_err());
    let mut other = Builder::new();
    let y = other.source("y", 1u8).unwrap();
    let err = b.compute("z", y, |v| *v).unwrap_err();
    assert!(err.to_string().contains("another builder"), "{err}");
}
