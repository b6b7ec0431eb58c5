"""The Python front end's overhead, measured (see docs/python.md):

1. training: `funnel train` (the CLI) against funnel.train() from Python on the same CSV file with the same flags,
   in interleaved pairs (CLI, Python, CLI, Python, ...): each pair's ratio Python / CLI of wall time, and the
   median ratio. Python is timed twice: the funnel.train() call alone, and the whole `python3 -c` process (interpreter
   start and `import funnel` included). A third column trains on the same rows as a DataFrame (call only, the
   read_csv not counted).
2. prediction: Predictor.predict() from Python on 1 and 256 rows (a dict of numpy arrays, and a DataFrame), per
   call, to set beside the C++ call (`funnel-bench --benchmark_filter=PredictColumns`, the same work in C++).

    PYTHONPATH=build/python python3 tools/python_bench.py --bin build/bin/funnel [--rows 200000] [--pairs 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True, help="the funnel command line")
ap.add_argument("--rows", type=int, default=200000)
ap.add_argument("--pairs", type=int, default=5)
args = ap.parse_args()
work = tempfile.mkdtemp(prefix="funnel-pybench-")
csv = os.path.join(work, "train.csv")
rng = np.random.default_rng(0)
n = args.rows
click = rng.integers(0, 2, n) * (rng.random(n) < 0.3)
df = pd.DataFrame({"click": click, "purchase": click * (rng.random(n) < 0.2), **{f"f{k}": rng.integers(0, 1000, n)
                                                                                 for k in range(8)}})
df.to_csv(csv, index=False)
flags = ["--epochs", "1", "--batch-size", "1024", "--threads", "1", "--seed", "1", "--quiet"]
kwargs = dict(epochs=1, batch_size=1024, threads=1, seed=1, quiet=True)
child = f"""
import time, sys
t0 = time.perf_counter()
import funnel
t1 = time.perf_counter()
funnel.train(data="csv:{csv}", **{kwargs!r})
t2 = time.perf_counter()
print(t2 - t1)
"""
env = dict(os.environ)
rows = []
for i in range(args.pairs):
    t = time.perf_counter()
    subprocess.run([args.bin, "train", "--data", f"csv:{csv}", *flags], check=True, capture_output=True)
    cli = time.perf_counter() - t
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", child], check=True, capture_output=True, text=True, env=env)
    proc = time.perf_counter() - t
    call = float(r.stdout.split()[-1])
    rows.append((cli, call, proc))
    print(f"pair {i + 1}: cli {cli:.3f} s, funnel.train() {call:.3f} s ({call / cli:.4f}x), "
          f"python process {proc:.3f} s ({proc / cli:.4f}x)", flush=True)
print(f"median ratio funnel.train()/cli: {statistics.median(c / a for a, c, _ in rows):.4f}; "
      f"python process/cli: {statistics.median(p / a for a, _, p in rows):.4f}")

import funnel  # noqa: E402

frame = pd.read_csv(csv)
df_times = []
for i in range(args.pairs):
    t = time.perf_counter()
    funnel.train(data=frame, **kwargs)
    df_times.append(time.perf_counter() - t)
print(f"DataFrame training, call: median {statistics.median(df_times):.3f} s "
      f"({statistics.median(df_times) / statistics.median(a for a, _, _ in rows):.4f}x the cli's median)")

ck = os.path.join(work, "ck")
small = pd.DataFrame({"click": click[:2000], "purchase": df.purchase[:2000],
                      **{f"f{k}": rng.integers(0, 50, 2000) for k in range(4)}})
funnel.train(data=small, save=ck, epochs=1, batch_size=256, quiet=True)
p = funnel.Predictor(ck)
for rows_n in (1, 256):
    feats = {f"f{k}": rng.integers(0, 50, rows_n) for k in range(4)}
    frame_n = pd.DataFrame(feats)
    for what, data, frame in (("dict -> dict", feats, False), ("dict -> DataFrame", feats, True),
                              ("DataFrame -> DataFrame", frame_n, True)):
        for _ in range(50):
            p.predict(data, as_frame=frame)
        per = []
        for _ in range(7):
            k = 400
            t = time.perf_counter()
            for _ in range(k):
                p.predict(data, as_frame=frame)
            per.append((time.perf_counter() - t) / k * 1e6)
        print(f"Predictor.predict {rows_n:4d} rows, {what:22s}: median {statistics.median(per):8.1f} us/call "
              f"(7 runs of 400 calls)", flush=True)
