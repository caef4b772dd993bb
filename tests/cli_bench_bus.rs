//! `weir bench bus` end to end with tiny counts: the bus and both baselines run, cross-process,
//! and the table has its rows. No figure is checked (they are timings on a shared machine).

use std::process::Command;

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// Two CPUs this process may run on (the same one twice on a one-CPU machine).
fn cpus() -> (String, String) {
    let allowed = weir_hw::pin::current_thread_affinity().unwrap_or_default();
    let first = allowed.first().copied().unwrap_or(0);
    let second = allowed.get(1).copied().unwrap_or(first);
    (first.to_string(), second.to_string())
}

#[test]
fn quick_run_prints_every_transport_and_rate() {
    let (p, c) = cpus();
    let before = bench_files();
    let json = std::env::temp_dir().join(format!("weir-bench-bus-{}.json", std::process::id()));
    let out = weir()
        .args(["bench", "bus", "--records", "2000", "--quick", "--producer-cpu", &p, "--consumer-cpu", &c, "--json"])
        .arg(&json)
        .output()
        .expect("run weir");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stdout.contains("clock: "), "{stdout}");
    for transport in ["bus", "spsc", "uds"] {
        for rate in ["100k/s", "max"] {
            let row = stdout.lines().find(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() >= 15 && cols[1] == transport && cols[2] == "48B" && cols[4] == rate
            });
            let row = row.unwrap_or_else(|| panic!("no {transport} {rate} row in:\n{stdout}"));
            // Every measured record arrived (no figure is checked, only the count).
            assert_eq!(row.split_whitespace().nth(5), Some("2000"), "{row}");
        }
    }
    assert!(stdout.contains("bus / baseline"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json");
    let _ = std::fs::remove_file(&json);
    assert_eq!(doc["runs"].as_array().map(Vec::len), Some(6), "{doc}");
    assert_eq!(doc["medians"].as_array().map(Vec::len), Some(6), "{doc}");
    // Nothing left behind in /dev/shm.
    let after = bench_files();
    let left: Vec<_> = after.difference(&before).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `weir-bench-*` files in /dev/shm and the temp dir.
fn bench_files() -> std::collections::BTreeSet<std::path::PathBuf> {
    [std::path::PathBuf::from("/dev/shm"), std::env::temp_dir()]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("weir-bench-"))
        .map(|e| e.path())
        .collect()
}

#[test]
fn bad_arguments_exit_2_naming_the_flag() {
    for (args, needle) in [
        (&["--sizes", "49"][..], "49"),
        (&["--rates", "0"][..], "0"),
        (&["--records", "0"][..], "--records"),
        (&["--capacity", "1000"][..], "--capacity"),
        (&["--producer-cpu", "100000"][..], "--producer-cpu 100000"),
    ] {
        let out = weir().args(["bench", "bus", "--quick"]).args(args).output().expect("run weir");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
