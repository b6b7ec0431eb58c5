#!/usr/bin/env python3
"""funnel's Predictor against ONNX Runtime on the same checkpoint and rows, interleaved A B A B.

    python3 tools/ort/pairs.py --bench build/bin/funnel-serve-bench --checkpoint ck --onnx esmm.onnx \
        --features esmm.features.json --rows rows.csv [--batches 1,256] [--pairs 5] [--seconds 2]

Each pair runs funnel-serve-bench (in process, one calling thread, --same-rows: every call scores the file's first
rows, as bench.js does) and then tools/ort/bench.js (one intra-op thread) for every batch size; the order within a pair alternates (funnel first in even pairs, ORT first in odd
ones). Both sides' rows/s are taken from their median call time (rows per call / p50), so the ratio is
ORT p50 / funnel p50 for the same rows per call. Prints each pair's numbers and, per batch size, the median of the
per-pair ratios. funnel maps the raw values inside its timing; ORT's feeds are built before timing.
ONNX Runtime comes from tools/ort/node_modules (scripts/install_ort.sh), or from NODE_PATH.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_funnel(a, batches):
    cmd = [a.bench, "--checkpoint", a.checkpoint, "--rows", a.rows, "--seconds", str(a.seconds), "--skip-http",
           "--batches", batches, "--threads", "1", "--same-rows"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        m = re.match(r"in-process\s+rows/call\s+(\d+)\s+threads/conns\s+1\s+calls\s+(\d+)\s+p50\s+([\d.]+) us", line)
        if m:
            res[int(m.group(1))] = float(m.group(3))
    return res


def run_ort(a, batches):
    cmd = ["node", os.path.join(HERE, "bench.js"), a.onnx, a.features, "--csv", a.rows, "--batches", batches,
           "--threads", "1", "--seconds", str(a.seconds)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        if line.startswith("{"):
            j = json.loads(line)
            res[int(j["rows_per_call"])] = float(j["p50_us"])
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bench", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--onnx", required=True)
    p.add_argument("--features", required=True)
    p.add_argument("--rows", required=True)
    p.add_argument("--batches", default="1,256")
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2)
    a = p.parse_args()
    if a.pairs < 1 or not (0 < a.seconds <= 60):
        p.error("--pairs >= 1 and 0 < --seconds <= 60")
    batches = [int(b) for b in a.batches.split(",")]
    ratios = {b: [] for b in batches}
    fun_p50 = {b: [] for b in batches}
    ort_p50 = {b: [] for b in batches}
    for i in range(a.pairs):
        if i % 2 == 0:
            f = run_funnel(a, a.batches)
            o = run_ort(a, a.batches)
        else:
            o = run_ort(a, a.batches)
            f = run_funnel(a, a.batches)
        for b in batches:
            if b not in f or b not in o:
                sys.exit(f"pair {i}: no result for {b} rows per call (funnel {f}, ORT {o})")
            ratios[b].append(o[b] / f[b])
            fun_p50[b].append(f[b])
            ort_p50[b].append(o[b])
            print(f"pair {i} rows/call {b}: funnel p50 {f[b]:.1f} us ({b / f[b] * 1e6:,.0f} rows/s), "
                  f"ORT p50 {o[b]:.1f} us ({b / o[b] * 1e6:,.0f} rows/s), funnel/ORT rows/s {o[b] / f[b]:.2f}",
                  flush=True)
    print("rows/call | funnel p50 us | ORT p50 us | funnel rows/s | ORT rows/s | funnel/ORT (median of pairs) | pairs")
    for b in batches:
        fm, om = statistics.median(fun_p50[b]), statistics.median(ort_p50[b])
        print(f"{b} | {fm:.1f} | {om:.1f} | {b / fm * 1e6:,.0f} | {b / om * 1e6:,.0f} | "
              f"{statistics.median(ratios[b]):.2f} | {', '.join(f'{r:.2f}' for r in ratios[b])}")


if __name__ == "__main__":
    main()
