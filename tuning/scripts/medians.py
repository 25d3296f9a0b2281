#!/usr/bin/env python3
"""Medians (min-max) of the before_after.sh runs as a markdown table.

usage: medians.py OUT_DIR   (reads OUT_DIR/<config>-<shape>-<round>.json)
"""
import glob
import json
import os
import statistics
import sys

out = sys.argv[1]
runs = {}
for path in glob.glob(os.path.join(out, "*-*x*-*.json")):
    config, shape, _round = os.path.basename(path)[:-5].rsplit("-", 2)
    runs.setdefault((shape, config), []).append(json.load(open(path)))


def cell(values, fmt="{:.0f}"):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


print("| case | config | runs | ops/s median (min–max) | p50 µs | p99 µs | errors |")
print("|---|---|---|---|---|---|---|")
medians = {}
for shape in ["16x16", "1x1"]:
    for config in ["default", "tuned", "tuned-float", "layout-only"]:
        rs = runs.get((shape, config), [])
        if not rs:
            continue
        ops = [r["ops_per_s"] for r in rs]
        p50 = [r["latency"]["p50_us"] for r in rs]
        p99 = [r["latency"]["p99_us"] for r in rs]
        medians[(shape, config)] = (statistics.median(ops), statistics.median(p50), statistics.median(p99))
        errors = sum(r["errors"] for r in rs)
        print(f"| write:{shape} | {config} | {len(rs)} | {cell(ops)} | {cell(p50)} | {cell(p99)} | {errors} |")
print()
print("| case | config / default | ops/s | p50 | p99 |")
print("|---|---|---|---|---|")
for shape in ["16x16", "1x1"]:
    base = medians.get((shape, "default"))
    for config in ["tuned", "tuned-float", "layout-only"]:
        m = medians.get((shape, config))
        if base and m:
            print(f"| write:{shape} | {config} | {m[0] / base[0]:.2f} | {m[1] / base[1]:.2f} | {m[2] / base[2]:.2f} |")
