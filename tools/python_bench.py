"""The Python front end's overhead, measured (see docs/python.md):

1. training: `funnel train` (the CLI) against funnel.train() from Python on the same CSV file with the same flags,
   in interleaved pairs (CLI, Python, CLI, Python, ...): each pair's ratio Python / CLI, and the median of the
   ratios. Python is timed twice: the funnel.train() call alone, and the whole `python3 -c` process (interpreter
   start and `import funnel` included). Wall time and CPU time (user + system: of each process, and of the Python
   process during the call, time.process_time) are both reported: on a shared machine CPU time is the less noisy. A last column (--frame-runs) trains on the same rows as a DataFrame (call
   only, the read_csv not counted).
2. prediction: Predictor.predict() from Python on 1 and 256 rows (a dict of numpy arrays, and a DataFrame), per
   call, to set beside the C++ call (`funnel-bench --benchmark_filter=PredictorColumns`: the same work in C++, the
   serving Predictor on the same table).

    PYTHONPATH=build/python nice python3 tools/python_bench.py --bin build/bin/funnel [--rows 200000] [--pairs 5]
        [--frame-runs 0] [--skip-train] [--skip-predict]
"""
import argparse
import json
import os
import resource
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
ap.add_argument("--frame-runs", type=int, default=None, help="DataFrame training runs (default: --pairs)")
ap.add_argument("--skip-train", action="store_true")
ap.add_argument("--skip-predict", action="store_true")
args = ap.parse_args()
if args.frame_runs is None:
    args.frame_runs = args.pairs
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
c1 = time.process_time()
funnel.train(data="csv:{csv}", **{kwargs!r})
c2 = time.process_time()
t2 = time.perf_counter()
print(t2 - t1, c2 - c1)
"""
env = dict(os.environ)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


rows = []
for i in range(0 if args.skip_train else args.pairs):
    t, c = time.perf_counter(), children_cpu()
    subprocess.run([args.bin, "train", "--data", f"csv:{csv}", *flags], check=True, capture_output=True)
    cli, cli_cpu = time.perf_counter() - t, children_cpu() - c
    t, c = time.perf_counter(), children_cpu()
    r = subprocess.run([sys.executable, "-c", child], check=True, capture_output=True, text=True, env=env)
    proc, proc_cpu = time.perf_counter() - t, children_cpu() - c
    call, call_cpu = (float(x) for x in r.stdout.split()[-2:])
    rows.append((cli, call, proc, cli_cpu, call_cpu, proc_cpu))
    print(f"pair {i + 1}: cli {cli:.3f} s (cpu {cli_cpu:.3f}), funnel.train() {call:.3f} s ({call / cli:.4f}x; "
          f"cpu {call_cpu:.3f}, {call_cpu / cli_cpu:.4f}x), python process {proc:.3f} s ({proc / cli:.4f}x; "
          f"cpu {proc_cpu:.3f}, {proc_cpu / cli_cpu:.4f}x)", flush=True)
if rows:
    med = lambda k, base: statistics.median(r[k] / r[base] for r in rows)  # noqa: E731
    print(f"median of ratios, wall: funnel.train()/cli {med(1, 0):.4f}, python process/cli {med(2, 0):.4f}; "
          f"cpu: funnel.train()/cli {med(4, 3):.4f}, python process/cli {med(5, 3):.4f}")

import funnel  # noqa: E402

if not args.skip_train and args.frame_runs > 0:
    frame = pd.read_csv(csv)
    df_times = []
    for i in range(args.frame_runs):
        t = time.perf_counter()
        funnel.train(data=frame, **kwargs)
        df_times.append(time.perf_counter() - t)
    print(f"DataFrame training, call: median {statistics.median(df_times):.3f} s "
          f"({statistics.median(df_times) / statistics.median(r[0] for r in rows):.4f}x the cli's median)")
if args.skip_predict:
    sys.exit(0)

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
        per, cpu = [], []
        for _ in range(7):
            k = 400
            t, c = time.perf_counter(), time.process_time()
            for _ in range(k):
                p.predict(data, as_frame=frame)
            per.append((time.perf_counter() - t) / k * 1e6)
            cpu.append((time.process_time() - c) / k * 1e6)
        print(f"Predictor.predict {rows_n:4d} rows, {what:22s}: median {statistics.median(per):8.1f} us/call wall, "
              f"{statistics.median(cpu):8.1f} us/call cpu (7 runs of 400 calls)", flush=True)
