//! `weir dag gen | run | explain` as a user runs them: the written graphs have the shapes' node and edge counts, the
//! reports carry the right deterministic figures (work, span, parallelism, loads, cuts) and sane measured ones, and
//! bad arguments or graph files exit 2 naming the problem (file, line, column; a cycle's nodes).
//!
//! Small graphs and few repeats: these are tests, not benchmarks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const PARTITIONERS: [&str; 5] = ["round-robin", "contiguous", "grouped", "heft", "greedy"];

fn weir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir")).args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&stdout(out)).unwrap()
}

/// Asserts exit status 2 and returns standard error.
fn usage_error(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {err}\nstdout: {}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty(), "nothing on stdout on an error: {}", String::from_utf8_lossy(&out.stdout));
    err
}

/// A fresh directory under the system temp dir for one test, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("weir-cli-dag-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// An edge-list file as written: `(n, m)` from the header, the edges, and the costs when present.
struct EdgeList {
    n: usize,
    m: usize,
    edges: Vec<(usize, usize)>,
    costs: Vec<u64>,
}

fn parse_edge_list(text: &str) -> EdgeList {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let header: Vec<usize> = lines.next().unwrap().split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(header.len(), 2, "header `n m`");
    let (n, m) = (header[0], header[1]);
    let edges: Vec<(usize, usize)> = lines
        .by_ref()
        .take(m)
        .map(|l| {
            let f: Vec<usize> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            assert_eq!(f.len(), 2, "edge line {l:?}");
            assert!(f[0] < n && f[1] < n, "edge {l:?} with n = {n}");
            (f[0], f[1])
        })
        .collect();
    assert_eq!(edges.len(), m, "as many edge lines as the header says");
    let costs: Vec<u64> = lines.flat_map(str::split_whitespace).map(|x| x.parse().unwrap()).collect();
    assert!(costs.is_empty() || costs.len() == n, "{} costs for {n} nodes", costs.len());
    EdgeList { n, m, edges, costs }
}

fn gen_edge_list(dir: &Scratch, name: &str, shape: &[&str], extra: &[&str]) -> EdgeList {
    let path = dir.path(name);
    let mut args = vec!["dag", "gen"];
    args.extend_from_slice(shape);
    args.extend_from_slice(&["-o", s(&path)]);
    args.extend_from_slice(extra);
    let out = weir(&args);
    assert!(out.status.success(), "{shape:?}: {}", String::from_utf8_lossy(&out.stderr));
    // The confirmation names the shape, the counts and the file.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(s(&path)), "{err}");
    parse_edge_list(&std::fs::read_to_string(&path).unwrap())
}

fn fanout_nodes(a: usize, p: usize, r: usize) -> usize {
    r + a * p + 1
}

/// From the shapes module's docs.
fn fanout_edges(a: usize, p: usize, r: usize) -> usize {
    let chain = if p >= 2 { 1 + r + (p - 2) * (1 + r.min(1)) } else { 0 };
    a * (chain + usize::from(p >= 1))
}

#[test]
fn gen_writes_every_shape_with_its_node_and_edge_counts() {
    let dir = Scratch::new("gen");
    // (argv, nodes, edges)
    let cases: Vec<(Vec<&str>, usize, usize)> = vec![
        (vec!["chain", "7"], 7, 6),
        (vec!["chain", "1"], 1, 0),
        (vec!["independent", "9"], 9, 0),
        (vec!["tree-out", "4"], 15, 14),
        (vec!["tree-in", "3"], 7, 6),
        (vec!["grid", "3", "4"], 12, 2 * 4 + 3 * 3),
        (vec!["grid", "5", "2"], 10, 4 * 2 + 5),
        (vec!["fanout", "3", "5"], fanout_nodes(3, 5, 2), fanout_edges(3, 5, 2)),
        (vec!["fanout", "3", "5", "0"], fanout_nodes(3, 5, 0), fanout_edges(3, 5, 0)),
        (vec!["fanout", "2", "6", "3"], fanout_nodes(2, 6, 3), fanout_edges(2, 6, 3)),
        (vec!["fanout", "4", "1"], fanout_nodes(4, 1, 2), fanout_edges(4, 1, 2)),
        (vec!["grid-3x4"], 12, 17),
        (vec!["chain-5"], 5, 4),
        (vec!["tree-out-2"], 3, 2),
        (vec!["fanout-2x3"], fanout_nodes(2, 3, 2), fanout_edges(2, 3, 2)),
        (vec!["fanout-2x3-r1"], fanout_nodes(2, 3, 1), fanout_edges(2, 3, 1)),
    ];
    // Spot checks of the fan-out formula against hand counts: 3 assets x 5 nodes, 2 roots: p1 takes spot + 2
    // roots, p2..p4 take the previous + one root, total takes 3 lasts.
    assert_eq!(fanout_edges(3, 5, 2), 3 * (3 + 3 * 2) + 3);
    assert_eq!(fanout_edges(3, 5, 0), 3 * 4 + 3);
    for (i, (shape, nodes, edges)) in cases.iter().enumerate() {
        let g = gen_edge_list(&dir, &format!("g{i}.txt"), shape, &[]);
        assert_eq!((g.n, g.m), (*nodes, *edges), "{shape:?}");
        assert!(g.costs.is_empty(), "{shape:?}: no costs unless asked");
        let distinct: BTreeSet<_> = g.edges.iter().collect();
        assert!(g.edges.iter().all(|(u, v)| u != v), "{shape:?}: no self-loops");
        if !shape[0].starts_with("fanout") {
            assert_eq!(distinct.len(), g.m, "{shape:?}: no repeated edges");
        }
    }
    // A chain is 0 -> 1 -> ... in order; a grid's node (r, c) takes (r-1, c) and (r, c-1).
    let chain = gen_edge_list(&dir, "chain.txt", &["chain", "4"], &[]);
    let chain_edges: BTreeSet<_> = chain.edges.into_iter().collect();
    assert_eq!(chain_edges, BTreeSet::from([(0, 1), (1, 2), (2, 3)]));
    let grid = gen_edge_list(&dir, "grid.txt", &["grid", "2", "2"], &[]);
    let grid_edges: BTreeSet<_> = grid.edges.into_iter().collect();
    assert_eq!(grid_edges, BTreeSet::from([(0, 1), (0, 2), (1, 3), (2, 3)]));

    // --cost-ns writes one cost per node.
    let costed = gen_edge_list(&dir, "costed.txt", &["tree-in", "3"], &["--cost-ns", "250"]);
    assert_eq!(costed.costs, vec![250; 7]);

    // No -o: the edge list on standard output, nothing on standard error.
    let out = weir(&["dag", "gen", "grid", "3", "2"]);
    let g = parse_edge_list(&stdout(&out));
    assert_eq!((g.n, g.m), (6, 7));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn gen_to_json_names_nodes_and_inputs() {
    let dir = Scratch::new("gen-json");
    for (shape, nodes, edges) in [
        (vec!["grid", "3", "4"], 12, 17),
        (vec!["fanout", "3", "4"], fanout_nodes(3, 4, 2), fanout_edges(3, 4, 2)),
        (vec!["chain-6"], 6, 5),
    ] {
        let path = dir.path("g.json");
        let mut args = vec!["dag", "gen"];
        args.extend_from_slice(&shape);
        args.extend_from_slice(&["-o", s(&path), "--cost-ns", "40"]);
        let out = weir(&args);
        assert!(out.status.success(), "{shape:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\"nodes\": ["), "{shape:?}: JSON form for .json: {text:.40}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let list = v["nodes"].as_array().unwrap();
        assert_eq!(list.len(), nodes, "{shape:?}");
        let inputs: usize = list.iter().map(|n| n["inputs"].as_array().unwrap().len()).sum();
        assert_eq!(inputs, edges, "{shape:?}");
        let names: BTreeSet<&str> = list.iter().map(|n| n["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), nodes, "{shape:?}: names are unique");
        for n in list {
            assert_eq!(n["cost_ns"], 40, "{shape:?}");
            for input in n["inputs"].as_array().unwrap() {
                assert!(names.contains(input.as_str().unwrap()), "{shape:?}: input {input} names a node");
            }
        }
        if shape[0] == "fanout" {
            // The fan-out keeps its names, kinds and groups in JSON.
            let total = list.iter().find(|n| n["name"] == "total").unwrap();
            assert_eq!(total["kind"], "reduce");
            assert_eq!(total["inputs"], serde_json::json!(["A0000/p3", "A0001/p3", "A0002/p3"]));
            let p1 = list.iter().find(|n| n["name"] == "A0001/p1").unwrap();
            assert_eq!(p1["inputs"], serde_json::json!(["A0001/spot", "rate", "vol"]));
            assert_eq!(p1["group"], "A0001");
        }
        // And `run`/`explain` read it back: the same counts.
        let r = json(&weir(&["dag", "explain", "--graph", s(&path), "--workers", "1", "--json"]));
        assert_eq!((r[0]["nodes"].as_u64(), r[0]["edges"].as_u64()), (Some(nodes as u64), Some(edges as u64)));
        assert_eq!(r[0]["work_ns"], 40 * nodes as u64, "{shape:?}: the file's costs are used");
    }
}

#[test]
fn gen_bad_shape_or_sizes_exit_2_naming_the_problem() {
    for (args, expect) in [
        (&["blob-3"][..], "unknown shape \"blob-3\""),
        (&["blob", "3"], "blob"),
        (&["grid", "3"], "`grid` does not take 1 sizes"),
        (&["grid", "3", "4", "5"], "`grid` does not take 3 sizes"),
        (&["chain", "3", "4"], "`chain` does not take 2 sizes"),
        (&["fanout", "1", "2", "3", "4"], "`fanout` does not take 4 sizes"),
        (&["chain"], "unknown shape \"chain\""),
        (&["chain", "x"], "unknown shape \"chain-x\""),
        (&["grid-3y4"], "unknown shape \"grid-3y4\""),
    ] {
        let mut argv = vec!["dag", "gen"];
        argv.extend_from_slice(args);
        let err = usage_error(&weir(&argv));
        assert!(err.starts_with("weir dag gen: "), "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    // Shape labels list the valid forms.
    let err = usage_error(&weir(&["dag", "gen", "blob-3"]));
    assert!(err.contains("grid-WxH") && err.contains("fanout-AxP"), "{err}");
    // No shape at all: clap's usage error, also 2.
    assert_eq!(weir(&["dag", "gen"]).status.code(), Some(2));
}

/// Edges whose ends are on different workers under round-robin (node `v` on worker `v % workers`).
fn round_robin_cuts(g: &EdgeList, workers: usize) -> usize {
    g.edges.iter().filter(|(u, v)| u % workers != v % workers).count()
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key}: {v}"))
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key}: {v}"))
}

fn u_list(v: &Value, key: &str) -> Vec<u64> {
    v[key].as_array().unwrap_or_else(|| panic!("{key}: {v}")).iter().map(|x| x.as_u64().unwrap()).collect()
}

/// The static figures every report has, checked against the graph: `w` ns per node, `span_nodes` on the
/// critical path.
fn check_static(r: &Value, g: &EdgeList, workers: usize, w: u64, span_nodes: u64) {
    let (n, m) = (g.n as u64, g.m as u64);
    assert_eq!((u(r, "nodes"), u(r, "edges"), u(r, "workers")), (n, m, workers as u64));
    assert_eq!(u(r, "work_ns"), n * w);
    assert_eq!(u(r, "span_ns"), span_nodes * w);
    assert_eq!(u(r, "critical_path_nodes"), span_nodes);
    assert!((f(r, "parallelism") - (n * w) as f64 / (span_nodes * w) as f64).abs() < 1e-9, "{r}");
    assert_eq!(u(r, "lower_bound_ns"), (n * w).div_ceil(workers as u64).max(span_nodes * w));
    let loads = u_list(r, "load_ns");
    let counts = u_list(r, "nodes_per_worker");
    assert_eq!((loads.len(), counts.len()), (workers, workers));
    assert_eq!(loads.iter().sum::<u64>(), n * w);
    assert_eq!(counts.iter().sum::<u64>(), n);
    assert_eq!(loads, counts.iter().map(|c| c * w).collect::<Vec<_>>(), "uniform costs: load = nodes * W");
    let imbalance = *loads.iter().max().unwrap() as f64 * workers as f64 / (n * w) as f64;
    assert!((f(r, "imbalance") - imbalance).abs() < 1e-9, "{r}");
    assert!(u(r, "cut_edges") <= m && u(r, "cross_numa_edges") <= u(r, "cut_edges"), "{r}");
    assert!(u(r, "predicted_ns") >= u(r, "lower_bound_ns"), "{r}");
    if r["partitioner"] == "round-robin" {
        assert_eq!(u(r, "cut_edges"), round_robin_cuts(g, workers) as u64);
    }
}

#[test]
fn run_json_reports_the_graph_the_partition_and_the_run() {
    let dir = Scratch::new("run-json");
    // 4 assets x 50 nodes, 2 roots: 203 nodes, 400 edges; span: spot, p1..p49, total = 51 nodes.
    let g = gen_edge_list(&dir, "fan.txt", &["fanout", "4", "50"], &[]);
    assert_eq!((g.n, g.m), (203, 400));
    let graph = dir.path("fan.txt");
    let (workers, w) = (2, 2000);
    let args = ["--graph", s(&graph), "--workers", "2", "--work-ns", "2000", "--repeat", "2", "--json"];
    let r = json(&weir(&[&["dag", "run"][..], &args].concat()));
    check_static(&r, &g, workers, w, 50 + 1);
    assert_eq!(r["partitioner"], "heft", "the default");
    assert!((f(&r, "parallelism") - 203.0 / 51.0).abs() < 1e-9);
    let path = r["critical_path"].as_array().unwrap();
    assert_eq!(path.len(), 12, "the first 12 of the path's nodes by name");
    assert_eq!(path[0], "2", "an asset's spot (ids 0, 1 are the shared roots)");

    let elapsed = u(&r, "elapsed_ns");
    assert!(elapsed > 0 && u(&r, "single_thread_ns") > 0 && u(&r, "ideal_ns") > 0, "{r}");
    let speedup = f(&r, "speedup");
    assert!(speedup > 0.0 && speedup.is_finite(), "{r}");
    assert!((speedup - u(&r, "single_thread_ns") as f64 / elapsed as f64).abs() < 1e-9 * speedup);
    assert!((f(&r, "efficiency") - speedup / workers as f64).abs() < 1e-9);
    assert_eq!(u(&r, "repeats"), 2);
    assert_eq!((u(&r, "failed"), u(&r, "skipped")), (0, 0));
    let per_worker = r["per_worker"].as_array().unwrap();
    assert_eq!(per_worker.len(), workers);
    assert_eq!(per_worker.iter().map(|p| u(p, "nodes")).sum::<u64>(), 203, "every node ran once");
    assert_eq!(per_worker.iter().map(|p| u(p, "steals")).sum::<u64>(), u(&r, "steals"));
    assert_eq!(per_worker.iter().map(|p| u(p, "off_assigned")).sum::<u64>(), u(&r, "off_assigned"));
    for p in per_worker {
        for key in ["busy_ns", "steal_ns", "idle_ns"] {
            assert!(p[key].is_u64(), "{key}: {p}");
        }
    }
    // Every key a user scripts against.
    for key in [
        "nodes",
        "edges",
        "workers",
        "partitioner",
        "work_ns",
        "span_ns",
        "parallelism",
        "critical_path_nodes",
        "critical_path",
        "lower_bound_ns",
        "predicted_ns",
        "load_ns",
        "nodes_per_worker",
        "imbalance",
        "cut_edges",
        "cross_numa_edges",
        "elapsed_ns",
        "single_thread_ns",
        "speedup",
        "efficiency",
        "ideal_ns",
        "vs_ideal",
        "vs_predicted",
        "vs_lower_bound",
        "overhead_per_node_ns",
        "steals",
        "off_assigned",
        "failed",
        "skipped",
        "repeats",
        "per_worker",
    ] {
        assert!(r.get(key).is_some(), "missing {key}: {r}");
    }
}

#[test]
fn run_takes_every_partitioner_and_agrees_with_explain() {
    let dir = Scratch::new("run-partitioners");
    // 6 x 3 grid: 18 nodes, 27 edges, span 8 nodes.
    let g = gen_edge_list(&dir, "grid.txt", &["grid", "6", "3"], &[]);
    let graph = dir.path("grid.txt");
    let common = ["--graph", s(&graph), "--workers", "2", "--work-ns", "1000"];
    for name in PARTITIONERS {
        let mut run = vec!["dag", "run", "--partition", name, "--repeat", "1", "--json"];
        run.extend_from_slice(&common);
        let r = json(&weir(&run));
        assert_eq!(r["partitioner"], name);
        check_static(&r, &g, 2, 1000, 8);
        let per_worker = r["per_worker"].as_array().unwrap();
        assert_eq!(per_worker.iter().map(|p| u(p, "nodes")).sum::<u64>(), 18, "{name}");
        // The same machine (same workers, same CPUs), the same deterministic partition: explain's figures.
        let mut explain = vec!["dag", "explain", "--partition", name, "--json"];
        explain.extend_from_slice(&common);
        let e = json(&weir(&explain));
        assert!(e.is_object(), "one partitioner: one report, not an array");
        for key in ["cut_edges", "cross_numa_edges", "load_ns", "nodes_per_worker", "predicted_ns", "span_ns"] {
            assert_eq!(r[key], e[key], "{name}: {key}");
        }
        assert!(e.get("elapsed_ns").is_none(), "explain does not run");
    }

    for cmd in ["run", "explain"] {
        let err = usage_error(&weir(&["dag", cmd, "--graph", s(&graph), "--workers", "2", "--partition", "fastest"]));
        assert!(err.contains("unknown partitioner \"fastest\""), "{err}");
        for name in PARTITIONERS {
            assert!(err.contains(name), "{cmd}: lists {name}: {err}");
        }
    }
}

#[test]
fn run_table_has_the_lines_a_user_reads() {
    let dir = Scratch::new("run-table");
    gen_edge_list(&dir, "fan.txt", &["fanout", "3", "10"], &[]);
    let graph = dir.path("fan.txt");
    let out =
        stdout(&weir(&["dag", "run", "--graph", s(&graph), "--workers", "2", "--work-ns", "500", "--repeat", "1"]));
    let nodes = fanout_nodes(3, 10, 2);
    let line = |key: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("no `{key}` line in:\n{out}"))
            .to_string()
    };
    assert!(line("nodes / edges").ends_with(&format!("{nodes} / {}", fanout_edges(3, 10, 2))), "{out}");
    assert!(line("critical path").contains(" -> "), "{out}");
    assert!(line("span").contains("(11 nodes on the critical path)"), "{out}");
    assert!(line("parallelism").contains(&format!("{:.1}", nodes as f64 / 11.0)), "{out}");
    assert!(line("partition:").contains("heft over 2 workers"), "{out}");
    assert!(line("imbalance").contains("(largest load / mean)"), "{out}");
    assert!(line("cut edges").contains(&format!(" of {} (", fanout_edges(3, 10, 2))), "{out}");
    assert!(line("speedup").contains("x ("), "{out}");
    assert!(line("single thread").contains("same invocation"), "{out}");
    assert!(line("steals").contains("ran off their worker"), "{out}");
    assert!(line("run (median of 1)").starts_with("run"), "{out}");

    // Two per-worker tables: the plan's (worker, load, nodes), then the run's (worker, nodes, busy, ...).
    let lines: Vec<&str> = out.lines().collect();
    let plan = lines.iter().position(|l| l.split_whitespace().eq(["worker", "load", "nodes"])).expect(&out);
    let ran = lines
        .iter()
        .position(|l| l.split_whitespace().eq(["worker", "nodes", "busy", "steal", "idle", "steals", "off"]))
        .expect(&out);
    let mut planned = 0;
    for w in 0..2 {
        let row: Vec<&str> = lines[plan + 1 + w].split_whitespace().collect();
        assert_eq!(row[0], w.to_string(), "{out}");
        planned += row.last().unwrap().parse::<usize>().unwrap();
    }
    assert_eq!(planned, nodes, "{out}");
    let mut ran_nodes = 0;
    for w in 0..2 {
        let row: Vec<&str> = lines[ran + 1 + w].split_whitespace().collect();
        assert_eq!(row[0], w.to_string(), "{out}");
        ran_nodes += row[1].parse::<usize>().unwrap();
    }
    assert_eq!(ran_nodes, nodes, "{out}");
    assert_eq!(lines.len(), ran + 3, "nothing after the per-worker rows:\n{out}");
}

#[test]
fn explain_compares_every_partitioner() {
    let dir = Scratch::new("explain");
    let g = gen_edge_list(&dir, "fan.txt", &["fanout", "4", "20"], &[]);
    let graph = dir.path("fan.txt");
    let base = ["dag", "explain", "--graph", s(&graph), "--workers", "2", "--work-ns", "1000"];

    // The table: a summary, then one row per partitioner.
    let out = stdout(&weir(&base));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with(&format!("{} nodes, {} edges", g.n, g.m)), "{out}");
    assert!(lines[0].contains("2 workers") && lines[0].contains("(21 nodes)"), "{out}");
    let header = lines.iter().position(|l| l.starts_with("partition ")).expect(&out);
    assert!(lines[header].contains("imbalance") && lines[header].contains("cut edges"), "{out}");
    let rows = &lines[header + 1..];
    assert_eq!(rows.len(), 5, "{out}");
    for (row, name) in rows.iter().zip(PARTITIONERS) {
        assert_eq!(row.split_whitespace().next(), Some(name), "{out}");
    }

    // JSON: an array of the same 5 reports, none with run figures.
    let mut args = base.to_vec();
    args.push("--json");
    let v = json(&weir(&args));
    let reports = v.as_array().unwrap();
    assert_eq!(reports.len(), 5);
    for (r, name) in reports.iter().zip(PARTITIONERS) {
        assert_eq!(r["partitioner"], name);
        check_static(r, &g, 2, 1000, 21);
        assert!(r.get("elapsed_ns").is_none() && r.get("per_worker").is_none(), "{r}");
    }
    // The table's cut column is the JSON's.
    for (row, r) in rows.iter().zip(reports) {
        let cut: u64 = row.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert_eq!(cut, u(r, "cut_edges"), "{row}");
    }

    // Two workers on two NUMA nodes: every cut edge crosses them.
    let mut args = base.to_vec();
    args.extend_from_slice(&["--numa", "0,1", "--json"]);
    let v = json(&weir(&args));
    let reports = v.as_array().unwrap();
    assert_eq!(reports.len(), 5);
    for r in reports {
        assert!(u(r, "cut_edges") > 0, "{r}");
        assert_eq!(u(r, "cross_numa_edges"), u(r, "cut_edges"), "{}", r["partitioner"]);
    }
    // One NUMA node: none does.
    let mut args = base.to_vec();
    args.extend_from_slice(&["--numa", "0,0", "--json"]);
    for r in json(&weir(&args)).as_array().unwrap() {
        assert_eq!(u(r, "cross_numa_edges"), 0, "{}", r["partitioner"]);
    }

    // One NUMA node per worker, no more, no less.
    for numa in ["0,1,0", "0"] {
        let mut args = base.to_vec();
        args.extend_from_slice(&["--numa", numa]);
        let err = usage_error(&weir(&args));
        let given = numa.split(',').count();
        assert!(err.contains(&format!("--numa gives {given} nodes for 2 workers")), "{err}");
    }
}

/// Runs `run` and `explain` on a bad file: both exit 2 with the same message, which starts with the path.
fn bad_graph(path: &Path) -> String {
    let run = usage_error(&weir(&["dag", "run", "--graph", s(path), "--workers", "1", "--repeat", "1"]));
    let explain = usage_error(&weir(&["dag", "explain", "--graph", s(path), "--workers", "1"]));
    let message = run.strip_prefix("weir dag run: ").unwrap_or_else(|| panic!("{run}"));
    assert_eq!(explain.strip_prefix("weir dag explain: "), Some(message));
    assert!(message.starts_with(&format!("{}:", path.display())), "names the file: {message}");
    message.trim_end().to_string()
}

/// The nodes of `... the graph has a cycle: a -> b -> a`.
fn cycle_nodes(message: &str) -> BTreeSet<String> {
    let (_, path) = message.split_once("the graph has a cycle: ").unwrap_or_else(|| panic!("{message}"));
    let names: Vec<&str> = path.split(" -> ").collect();
    assert_eq!(names.first(), names.last(), "a closed path: {message}");
    names.into_iter().map(str::to_string).collect()
}

#[test]
fn bad_graph_files_exit_2_naming_file_and_line() {
    let dir = Scratch::new("bad-files");

    let p = dir.file("range.txt", "# three nodes\n3 2\n0 1\n1 7\n");
    assert_eq!(bad_graph(&p), format!("{}:4:3: edge 2: node id 7 is not below n = 3", p.display()));

    let p = dir.file("short.txt", "4 3\n0 1\n1 2\n");
    assert_eq!(bad_graph(&p), format!("{}:3: expected 3 edges, found 2", p.display()));
    // Cut in the middle of an edge line.
    let p = dir.file("cut.txt", "4 3\n0 1\n1 2\n2");
    assert_eq!(bad_graph(&p), format!("{}:4: edge 3: expected `u v`, found `2`", p.display()));
    // Cut in the costs.
    let p = dir.file("costs.txt", "3 2\n0 1\n1 2\n5\n6\n");
    assert_eq!(bad_graph(&p), format!("{}:5: expected 3 costs after the edges, found 2", p.display()));
    let p = dir.file("empty.txt", "");
    assert_eq!(bad_graph(&p), format!("{}:1: header: expected `n m`, found end of file", p.display()));
    let p = dir.file("header.txt", "3 x\n");
    assert_eq!(bad_graph(&p), format!("{}:1:3: header: m must be a non-negative integer, found `x`", p.display()));

    // A cycle among some of the nodes: the file and the cycle's nodes, by name.
    let p = dir.file("cycle.txt", "6 6\n0 1\n1 2\n2 3\n3 4\n4 2\n4 5\n");
    let message = bad_graph(&p);
    assert!(message.starts_with(&format!("{}: the graph has a cycle: ", p.display())), "{message}");
    assert_eq!(cycle_nodes(&message), BTreeSet::from(["2".into(), "3".into(), "4".into()]));
    let p = dir.file("self.txt", "2 1\n1 1\n");
    assert_eq!(bad_graph(&p), format!("{}: the graph has a cycle: 1 -> 1", p.display()));
    let p = dir.file(
        "cycle.json",
        "{\"nodes\": [\n{\"name\": \"spot\"},\n{\"name\": \"a\", \"inputs\": [\"spot\", \"b\"]},\n\
         {\"name\": \"b\", \"inputs\": [\"a\"]}\n]}\n",
    );
    let message = bad_graph(&p);
    assert_eq!(cycle_nodes(&message), BTreeSet::from(["a".into(), "b".into()]), "{message}");

    // JSON: an unknown field (a typo) at its line and column, with the fields that are known.
    let p = dir.file("typo.json", "{\"nodes\": [\n{\"name\": \"a\"},\n{\"name\": \"b\", \"inptus\": [\"a\"]}\n]}\n");
    let message = bad_graph(&p);
    assert!(message.starts_with(&format!("{}:3:22: unknown field `inptus`", p.display())), "{message}");
    assert!(message.contains("`inputs`"), "{message}");
    // Truncated JSON: where it ended.
    let p = dir.file("cut.json", "{\"nodes\": [\n{\"name\": \"a\"},\n{\"name\": \"b\", \"inp");
    let message = bad_graph(&p);
    assert!(message.starts_with(&format!("{}:3:", p.display())), "{message}");
    assert!(message.contains("EOF"), "{message}");
    // An input no node has: the node and the name.
    let p = dir.file("missing.json", "{\"nodes\": [{\"name\": \"a\", \"inputs\": [\"nope\"]}]}\n");
    assert_eq!(bad_graph(&p), format!("{}: node \"a\" takes input \"nope\", which no node has", p.display()));

    // No such file: the path and the OS's reason.
    let p = dir.path("absent.txt");
    let message = bad_graph(&p);
    assert!(message.contains("No such file"), "{message}");
}
