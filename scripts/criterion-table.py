#!/usr/bin/env python3
"""Prints a Markdown table of the criterion results under target/criterion.

Usage: scripts/criterion-table.py [GROUP ...]   (default: every group)
One row per benchmark: median time per iteration and median throughput.
"""
import json
import pathlib
import sys

root = pathlib.Path("target/criterion")
groups = sys.argv[1:]
rows = []
for bench in sorted(root.glob("**/new/benchmark.json")):
    meta = json.loads(bench.read_text())
    if groups and meta["group_id"] not in groups:
        continue
    est = json.loads((bench.parent / "estimates.json").read_text())
    median_ns = est["median"]["point_estimate"]
    lo = est["median"]["confidence_interval"]["lower_bound"]
    hi = est["median"]["confidence_interval"]["upper_bound"]
    throughput = meta.get("throughput") or {}
    nbytes = throughput.get("Bytes") or throughput.get("BytesDecimal")
    rate = f"{nbytes / median_ns * 1e9 / 1e6:,.0f} MB/s" if nbytes else ""
    rate_range = f"{nbytes / hi * 1e9 / 1e6:,.0f}–{nbytes / lo * 1e9 / 1e6:,.0f}" if nbytes else ""
    per_sec = f"{1e9 / median_ns:,.0f}"
    rows.append((meta["full_id"], f"{median_ns / 1e3:,.1f} µs", per_sec, rate, rate_range))

print("| benchmark | median time / iter | iters/s | throughput (median) | 95% CI (MB/s) |")
print("|---|---:|---:|---:|---:|")
for r in rows:
    print(f"| `{r[0]}` | {r[1]} | {r[2]} | {r[3]} | {r[4]} |")
