//! `weir replay` as a user runs it: exit codes, error messages, `--stats-json`, `--emit jsonl`,
//! `--b-feed`.

use std::process::Command;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iex");

fn weir(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weir")).args(args).output().unwrap()
}

fn path(rel: &str) -> String {
    format!("{DATA}/{rel}")
}

#[test]
fn missing_file_exits_2_naming_path_and_os_error() {
    let out = weir(&["replay", "/nonexistent/day.pcap.gz"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/day.pcap.gz") && err.contains("No such file"), "{err}");
}

#[test]
fn not_a_capture_exits_2_naming_the_magic() {
    let out = weir(&["replay", &path("PROVENANCE.md")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a capture") && err.contains("23 20 49 45"), "{err}");
}

#[test]
fn stats_json_has_the_documented_keys_and_values() {
    let out = weir(&["replay", &path("Sai271828-iex-parser/test.pcap.gz"), "--stats-json", "-"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "packets",
        "segments",
        "heartbeats",
        "messages",
        "messages_by_type",
        "unknown_types",
        "truncated_records",
        "gaps",
        "resets",
        "sessions",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["packets"], 5_000);
    assert_eq!(v["segments"], 5_000);
    assert_eq!(v["heartbeats"], 1_264);
    assert_eq!(v["messages"], 48_325);
    assert_eq!(v["messages_by_type"]["8"], 1_526);
    assert_eq!(v["messages_by_type"]["5"], 1_226);
    assert_eq!(v["messages_by_type"]["T"], 37);
    assert_eq!(v["gaps"]["count"], 0);
    assert_eq!(v["gaps"]["messages_missing"], 0);
    assert_eq!(
        (v["resets"].as_u64(), v["sessions"].as_u64(), v["unknown_types"].as_u64()),
        (Some(0), Some(1), Some(0))
    );
    // The human summary goes to stderr when stdout carries the JSON.
    assert!(String::from_utf8_lossy(&out.stderr).contains("messages 48325"));
}

#[test]
fn stats_json_to_a_file_and_summary_to_stdout() {
    let dir = std::env::temp_dir().join(format!("weir-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stats = dir.join("stats.json");
    let out = weir(&["replay", &path("timpalpant-go-iex/TOPS16.pcapng.gz"), "--stats-json", stats.to_str().unwrap()]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(v["messages"], 57_674);
    assert_eq!(v["messages_by_type"]["Q"], 27_217);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("messages 57674") && summary.contains("messages/s"), "{summary}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn emit_jsonl_writes_every_message_with_exact_ids() {
    let out = weir(&["replay", &path("omi-data-packets/DeepPlus.IexTp.1.0.2/a_AddOrder.pcap"), "--emit", "jsonl"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1);
    // Above 2^53: must be written digit for digit, not through a float.
    assert!(lines[0].contains("\"order_id\":27866022694354954"), "{}", lines[0]);
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["type"], "a");
    assert_eq!(v["seq"], 47_150);
    assert_eq!(v["session"], 1_310_523_392);
    assert_eq!(v["symbol"], "IBKR");
    assert_eq!(v["side"], "5");
    assert_eq!(v["size"], 100);
    assert_eq!(v["price"], 1_365_000);
    assert_eq!(v["timestamp"], 1_727_787_282_503_661_342i64);

    let out = weir(&["replay", &path("Sai271828-iex-parser/test.pcap.gz"), "--emit", "jsonl", "--quiet"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 48_325);
}

#[test]
fn b_feed_of_the_same_capture_changes_nothing() {
    let p = path("Sai271828-iex-parser/test.pcap.gz");
    let out = weir(&["replay", &p, "--b-feed", &p, "--stats-json", "-", "--quiet"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["messages"], 48_325);
    assert_eq!(v["gaps"]["count"], 0);
    assert_eq!(v["arbitration"]["taken_a"].as_u64().unwrap() + v["arbitration"]["taken_b"].as_u64().unwrap(), 5_000);
    assert_eq!(v["arbitration"]["dropped"], 5_000);
}

#[test]
fn bad_arguments_exit_2() {
    assert_eq!(weir(&["replay"]).status.code(), Some(2));
    assert_eq!(weir(&["replay", "x", "--emit", "xml"]).status.code(), Some(2));
}
