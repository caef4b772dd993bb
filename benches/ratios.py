#!/usr/bin/env python3
"""Ratios from the last `cargo bench --bench executor` / `--bench run_queue` / `--bench poll_loop` /
`--features dpdk --bench dpdk_loop` run.

Reads criterion's estimates (target/criterion/<group>/<function>/new/estimates.json) and prints, per group, each
function's median time, its time per element, and its ratio to the group's baseline (tokio multi-thread for the
executor groups, crossbeam for the run-queue groups). All numbers come from one run, so they compare.

    cargo bench --bench executor && cargo bench --bench run_queue && python3 benches/ratios.py
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
GROUPS = {
    # group directory: (elements per iteration, baseline function directory)
    "executor_spawn_1m": (1_000_000, "tokio_multi_thread_2"),
    "executor_ping_pong_100k": (200_000, "tokio_multi_thread_2"),
    "executor_wake_chain_100k": (100_000, "tokio_multi_thread_2"),
    "executor_fan_out_in_100k": (100_000, "tokio_multi_thread_2"),
    "run_queue_push_pop_256": (256, "crossbeam_fifo"),
    "run_queue_push_then_steal_all_256": (256, "crossbeam_steal_batch"),
    # poll loop throughput (`--bench poll_loop`; `--features dpdk --bench dpdk_loop`), baseline the bare rx loop
    "poll_loop_tops16": (4 * 13_022, "bare_rx"),
    "dpdk_net_null": (1 << 20, "bare_rx"),
    "dpdk_net_ring_tops16": (4 * 13_022, "bare_rx"),
}


def median_ns(function_dir: pathlib.Path) -> float:
    estimates = json.loads((function_dir / "new" / "estimates.json").read_text())
    return estimates["median"]["point_estimate"]


def main() -> int:
    missing = [g for g in GROUPS if not (ROOT / g).is_dir()]
    if len(missing) == len(GROUPS):
        print(f"no criterion results under {ROOT}: run the benches first", file=sys.stderr)
        return 1
    if missing:
        print(f"(not run: {', '.join(missing)})", file=sys.stderr)
    print(f"{'group':<36} {'function':<24} {'median':>12} {'per element':>12} {'vs baseline':>12} {'rate vs base':>12}")
    for group, (elements, baseline) in GROUPS.items():
        if group in missing:
            continue
        functions = {}
        for function_dir in sorted((ROOT / group).iterdir()):
            # run_queue functions carry a parameter sub-directory (".../weir_local/256").
            if (function_dir / "new").is_dir():
                functions[function_dir.name] = median_ns(function_dir)
            else:
                for sub in function_dir.iterdir():
                    if (sub / "new").is_dir():
                        functions[function_dir.name] = median_ns(sub)
        base = functions.get(baseline)
        for name, ns in functions.items():
            ratio = f"{ns / base:.2f}" if base else "-"
            rate = f"{base / ns:.2f}x" if base else "-"
            print(f"{group:<36} {name:<24} {ns / 1e6:>10.3f}ms {ns / elements:>10.1f}ns {ratio:>12} {rate:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
