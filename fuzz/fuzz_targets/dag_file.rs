//! DAG graph files (`weir dag run --graph`): any bytes, read as an edge list and as JSON, give a graph or an error;
//! never a panic. A graph read either way survives `write_edge_list` -> `read_edge_list` with the same node count,
//! the same inputs per node (in order, so the same edges) and the same costs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_schedulers::dag::file::{self, MAX_NODES};
use weir_schedulers::dag::graph::{Graph, NodeId};

/// Headers above this (and up to [`MAX_NODES`]) are valid but slow: the reader allocates and names every node
/// (about 150 bytes each: seconds and gigabytes at 2^24), which is a size, not a bug. Over `MAX_NODES` is refused
/// before allocating, so those still go through.
const MAX_FUZZ_NODES: u64 = 1 << 12;

/// The node count of the first content line, as `read_edge_list` finds it (blank and `#`/`%` lines skipped).
fn declared_nodes(data: &[u8]) -> Option<u64> {
    let line = data.split(|&b| b == b'\n').find(|l| match l.iter().find(|b| !b.is_ascii_whitespace()) {
        None | Some(b'#' | b'%') => false,
        Some(_) => true,
    })?;
    let field = line.split(|b| b.is_ascii_whitespace()).find(|f| !f.is_empty())?;
    field.iter().try_fold(0u64, |acc, &d| {
        let digit = d.checked_sub(b'0').filter(|&d| d < 10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

fn round_trip(g: &Graph, from: &str) {
    let mut text = Vec::new();
    file::write_edge_list(g, &mut text, g.has_costs()).expect("writing to a Vec");
    let back = match file::read_edge_list(&text[..]) {
        Ok(back) => back,
        Err(e) => panic!("{from}: the written edge list does not read back: {e}\n{}", String::from_utf8_lossy(&text)),
    };
    assert_eq!(back.len(), g.len(), "{from}: node count");
    assert_eq!(back.edge_count(), g.edge_count(), "{from}: edge count");
    for v in 0..g.len() as NodeId {
        assert_eq!(back.predecessors(v), g.predecessors(v), "{from}: inputs of node {v}");
    }
    let (mut a, mut b): (Vec<_>, Vec<_>) = (g.edges().collect(), back.edges().collect());
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b, "{from}: edges");
    assert_eq!(back.costs(), g.costs(), "{from}: costs");
}

fuzz_target!(|data: &[u8]| {
    if declared_nodes(data).is_none_or(|n| n <= MAX_FUZZ_NODES || n > MAX_NODES as u64) {
        match file::read_edge_list(data) {
            Ok(g) => round_trip(&g, "edge list"),
            // Every error says where, except graph-level ones (a cycle, ...) that concern the whole file.
            Err(e) => drop(e.to_string()),
        }
    }
    match file::read_json(data) {
        Ok(g) => round_trip(&g, "JSON"),
        Err(e) => drop(e.to_string()),
    }
});
