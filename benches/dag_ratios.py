#!/usr/bin/env python3
"""Ratios from the last `cargo bench --bench dag` run.

Reads criterion's estimates (target/criterion/dag_<shape>_<W>ns/<function>/new/estimates.json) and prints one row
per shape and body: the median of the single-thread topological loop, weir on 1 and 2 workers, rayon on 1 and 2
threads; weir's speedup on 2 workers over the topological loop and over rayon on 2; and weir's scheduling overhead
per node on 1 worker, (weir/1 - topological) / nodes. Then the live-recompute groups: time per dirty node, against
the full sweep's time per node. All numbers come from one run, so they compare.

    cargo bench --bench dag && python3 benches/dag_ratios.py
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"


def median_ns(path: pathlib.Path):
    f = path / "new" / "estimates.json"
    if not f.is_file():
        return None
    return json.loads(f.read_text())["median"]["point_estimate"]


def nodes_of(shape: str) -> int:
    if m := re.fullmatch(r"(chain|independent)-(\d+)", shape):
        return int(m[2])
    if m := re.fullmatch(r"tree-(in|out)-(\d+)", shape):
        return 2 ** int(m[2]) - 1
    if m := re.fullmatch(r"grid-(\d+)x(\d+)", shape):
        return int(m[1]) * int(m[2])
    if m := re.fullmatch(r"fanout-(\d+)x(\d+)(?:-r(\d+))?", shape):
        roots = int(m[3]) if m[3] else 2
        return roots + int(m[1]) * int(m[2]) + 1
    raise ValueError(shape)


def fmt(ns):
    if ns is None:
        return "-"
    if ns >= 1e9:
        return f"{ns / 1e9:.3f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.1f} µs"


def main() -> int:
    groups = sorted(p for p in ROOT.glob("dag_*") if re.search(r"_\d+ns$", p.name))
    if not groups:
        print(f"no dag results under {ROOT}: run `cargo bench --bench dag` first", file=sys.stderr)
        return 1
    head = ["shape", "body", "topological", "weir/1", "weir/2", "rayon/1", "rayon/2", "weir/2 speedup",
            "weir/2 vs rayon/2", "weir/1 overhead/node"]
    rows = []
    for g in groups:
        m = re.fullmatch(r"dag_(.+)_(\d+)ns", g.name)
        shape, body = m[1], int(m[2])
        t = {k: median_ns(g / k) for k in ["topological", "weir/1", "weir/2", "rayon/1", "rayon/2"]}
        n = nodes_of(shape)
        speed = t["topological"] / t["weir/2"] if t["topological"] and t["weir/2"] else None
        vs_rayon = t["rayon/2"] / t["weir/2"] if t["rayon/2"] and t["weir/2"] else None
        over = (t["weir/1"] - t["topological"]) / n if t["weir/1"] and t["topological"] else None
        rows.append([shape, f"{body} ns", *(fmt(t[k]) for k in ["topological", "weir/1", "weir/2", "rayon/1", "rayon/2"]),
                     f"{speed:.2f}x" if speed else "-", f"{vs_rayon:.2f}x" if vs_rayon else "-",
                     f"{over:.1f} ns" if over is not None else "-"])
    rows.sort(key=lambda r: (r[0], int(r[1].split()[0])))
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")

    for name in ["dag_recompute", "dag_recompute_with_total"]:
        g = ROOT / name
        if not g.is_dir():
            continue
        print(f"\n{name}:")
        sweep = median_ns(g / "full_sweep")
        sizes = {"one_asset": 39, "one_sector": 1 + 20 * 38, "full_sweep": 50 + 1000 * 39}
        extra = 1 if name.endswith("with_total") else 0
        for case, n in sizes.items():
            t = median_ns(g / case)
            if t is None:
                continue
            n = n + extra if case != "full_sweep" else 50 + 1000 * 39 + extra
            print(f"  {case:<12} {fmt(t):>10}  {t / n:6.1f} ns per dirty node ({n} nodes)"
                  + (f"; full sweep {sweep / (50 + 1000 * 39 + extra):.1f} ns per node" if case != "full_sweep" and sweep else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
