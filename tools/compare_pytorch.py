#!/usr/bin/env python3
"""ESMM training speed and peak memory: funnel against PyTorch, on the same data, shapes and machine, in one run.

Both sides train the same ESMM: a shared embedding of 20 fields x 5,000 ids (100,000 rows) x dim 18, two towers
360-200-80-1 with ReLU, pCTCVR = pCTR x pCVR, loss BCE(pCTR, click) + BCE(pCTCVR, click*conversion), Adam
(0.9, 0.999, 1e-8) with lazy sparse rows for the embedding (PyTorch: nn.Embedding(sparse=True) + SparseAdam, Adam
for the towers). The script writes one CSV of random impressions (Zipf-like ids per field, CTR ~4%, CTCVR ~0.2%);
funnel reads it with `--data csv:FILE --buckets 5000`, PyTorch gets the same ids (field f, value v -> row f*5000+v).

The machine may be shared and noisy, so runs are interleaved: for every batch size and thread count it runs
--pairs rounds of [PyTorch fp32, PyTorch bf16 autocast, funnel on each --gemm backend in each --precision], each
run in its own process (so peak RSS is that process's own), and reports per configuration the median samples/s of
each side, the median and min-max of the per-round ratio to PyTorch fp32 (and, for funnel in bf16, to PyTorch bf16
autocast), and the median peak RSS. funnel's bf16 sides run `funnel train --precision bf16` (gemm inputs in
bfloat16, fp32 sums: oneDNN's native bf16 gemm on a CPU with AVX512_BF16, else rounding on top of the fp32 gemm;
FUNNEL_BF16=emulated in the environment forces the latter; see docs/bf16.md). The PyTorch bf16 autocast row runs whenever bf16 is among the
precisions (or with --torch-bf16).
Both sides are timed alike: 5 warm-up steps, then the training loop's steps (PyTorch times them itself; funnel
runs 5 more steps and reports steady_samples_per_sec, the loop after its first 5 steps, in --metrics-json). With --threads 1,2 it also prints the 2-thread / 1-thread scaling of each side.
With funnel-bench present it adds the gemm bound: the time of the step's 18 gemms alone on that backend
(esmm_step/<backend>/<precision> gemm_us) as a fraction of funnel's median time per step.

  python3 tools/compare_pytorch.py                          # batch 128 and 1024, one thread, 5 rounds, fp32 + bf16
  python3 tools/compare_pytorch.py --threads 1,2 --gemm onednn,openblas --precision fp32 --json cmp.json

Needs PyTorch (Debian: apt-get install python3-torch; run with /usr/bin/python3). The build and tests never do.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

FIELDS = 20
VOCAB_PER_FIELD = 5000
DIM = 18
HIDDEN = (200, 80)
TORCH_WARMUP = 5   # steps each side runs before its timed steps
FUNNEL_WARMUP = 5  # funnel train's TrainResult::kWarmupSteps


def make_data(path_csv, path_npz, rows, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    # Zipf-like ids: a few frequent values per field, a long tail (like real categorical features).
    ids = np.minimum(rng.zipf(1.2, size=(rows, FIELDS)) - 1, VOCAB_PER_FIELD - 1).astype(np.int64)
    ids = (ids + rng.integers(0, VOCAB_PER_FIELD, size=(1, FIELDS))) % VOCAB_PER_FIELD  # a different head per field
    click = (rng.random(rows) < 0.04).astype(np.int64)
    conv = ((rng.random(rows) < 0.05) & (click == 1)).astype(np.int64)
    np.savez(path_npz, ids=ids, click=click, conv=conv)
    with open(path_csv, "w") as f:
        f.write("click,purchase," + ",".join(f"C{i}" for i in range(FIELDS)) + "\n")
        for r in range(rows):
            f.write(f"{click[r]},{conv[r]}," + ",".join(map(str, ids[r])) + "\n")


def torch_worker(npz, batch, steps, threads, warmup, seed, autocast):
    """Runs in a child process; prints one JSON line."""
    import numpy as np
    import torch
    import torch.nn as nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    d = np.load(npz)
    offs = torch.arange(FIELDS, dtype=torch.int64) * VOCAB_PER_FIELD
    ids = torch.from_numpy(d["ids"]) + offs
    click = torch.from_numpy(d["click"]).float()
    conv = torch.from_numpy(d["conv"]).float()
    rows = ids.shape[0]

    def tower():
        layers, k = [], FIELDS * DIM
        for n in HIDDEN:
            layers += [nn.Linear(k, n), nn.ReLU()]
            k = n
        layers.append(nn.Linear(k, 1))
        return nn.Sequential(*layers)

    emb = nn.Embedding(FIELDS * VOCAB_PER_FIELD, DIM, sparse=True)
    nn.init.normal_(emb.weight, std=0.01)
    ctr, cvr = tower(), tower()
    sparse_opt = torch.optim.SparseAdam(list(emb.parameters()), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    dense_opt = torch.optim.Adam(list(ctr.parameters()) + list(cvr.parameters()), lr=1e-3, betas=(0.9, 0.999),
                                 eps=1e-8)
    bce = nn.functional.binary_cross_entropy
    perm = torch.randperm(rows)

    def forward(idx):
        x = emb(ids[idx]).reshape(batch, FIELDS * DIM)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            lctr, lcvr = ctr(x), cvr(x)
        pctr = torch.sigmoid(lctr.float()).squeeze(1)
        pcvr = torch.sigmoid(lcvr.float()).squeeze(1)
        pctcvr = pctr * pcvr
        c = click[idx]
        return bce(pctr, c) + bce(pctcvr, c * conv[idx])

    def step(i):
        lo = (i * batch) % (rows - batch + 1)
        idx = perm[lo:lo + batch]
        loss = forward(idx)
        sparse_opt.zero_grad(set_to_none=True)
        dense_opt.zero_grad(set_to_none=True)
        loss.backward()
        sparse_opt.step()
        dense_opt.step()
        return loss

    for i in range(warmup):
        step(i)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(warmup, warmup + steps):
        loss = step(i)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"samples_per_sec": steps * batch / dt, "cpu_us_per_sample": 1e6 * cpu / (steps * batch),
                      "loss": float(loss)}))


def measured(cmd):
    """Runs cmd in a child and returns (stdout, peak RSS MiB) using os.wait4 on that child alone."""
    pid = os.fork()
    if pid == 0:
        try:
            fd = os.open(measured.out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            efd = os.open(measured.err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(efd, 2)
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    with open(measured.out_path) as f:
        out = f.read()
    if code != 0:
        with open(measured.err_path) as f:
            sys.exit(f"command failed ({code}): {' '.join(cmd)}\n{f.read()}")
    return out, ru.ru_maxrss / 1024.0


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--funnel", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin", "funnel"))
    ap.add_argument("--batches", default="128,1024")
    ap.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2")
    ap.add_argument("--gemm", default="onednn", help="funnel's float gemm backends (FUNNEL_GEMM), e.g. onednn,openblas")
    ap.add_argument("--precision", default="fp32,bf16",
                    help="funnel's gemm input precisions (--precision of funnel train): fp32 and/or bf16")
    ap.add_argument("--torch-bf16", action="store_true",
                    help="run PyTorch with bf16 autocast on the towers also when bf16 is not among --precision")
    ap.add_argument("--cpu-time", action="store_true",
                    help="one thread: also compare CPU time per sample (PyTorch's loop vs funnel-bench esmm_step)")
    ap.add_argument("--pairs", type=int, default=5, help="interleaved rounds per configuration (at least 5)")
    ap.add_argument("--samples", type=int, default=300_000, help="training samples per run (steps = samples/batch)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="directory for the data files (default: a temp dir, removed)")
    ap.add_argument("--json", help="also write every run and the summaries as JSON to this file")
    worker = ap.add_argument_group("internal")
    worker.add_argument("--torch-worker", help=argparse.SUPPRESS)
    worker.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    worker.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    worker.add_argument("--nthreads", type=int, help=argparse.SUPPRESS)
    worker.add_argument("--autocast", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.torch_worker:
        torch_worker(a.torch_worker, a.batch, a.steps, a.nthreads, warmup=TORCH_WARMUP, seed=a.seed, autocast=a.autocast)
        return

    if a.pairs < 5:
        sys.exit("--pairs: at least 5 interleaved rounds per configuration")
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit("PyTorch is not installed: apt-get install python3-torch, then run this with /usr/bin/python3")
    funnel = os.path.abspath(a.funnel)
    if not os.access(funnel, os.X_OK):
        sys.exit(f"{funnel}: not found; build first (cmake --build build)")
    bench = os.path.join(os.path.dirname(funnel), "funnel-bench")
    batches = [int(b) for b in a.batches.split(",")]
    threads = [int(t) for t in a.threads.split(",")]
    backends = [g for g in a.gemm.split(",") if g]
    for g in backends:
        if g not in ("onednn", "openblas"):
            sys.exit(f"--gemm: expected onednn and/or openblas, got '{g}'")
    precisions = [p for p in a.precision.split(",") if p]
    for p in precisions:
        if p not in ("fp32", "bf16"):
            sys.exit(f"--precision: expected fp32 and/or bf16, got '{p}'")
    if not precisions:
        sys.exit("--precision: expected fp32 and/or bf16")
    torch_bf16 = a.torch_bf16 or "bf16" in precisions

    tmp = a.keep or tempfile.mkdtemp(prefix="funnel_cmp_")
    os.makedirs(tmp, exist_ok=True)
    measured.out_path = os.path.join(tmp, "child.out")
    measured.err_path = os.path.join(tmp, "child.err")
    rows = a.samples + max(batches) * 8
    csv, npz = os.path.join(tmp, "train.csv"), os.path.join(tmp, "train.npz")
    eval_csv, eval_npz = os.path.join(tmp, "eval.csv"), os.path.join(tmp, "eval.npz")
    print(f"data: {rows} rows x {FIELDS} fields (ids per field {VOCAB_PER_FIELD}), in {tmp}", flush=True)
    make_data(csv, npz, rows, a.seed)
    make_data(eval_csv, eval_npz, 2000, a.seed + 1)
    print(f"load average at start: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} CPUs", flush=True)

    gemm_us, gemm_frac = {}, {}
    if os.access(bench, os.X_OK):
        for g in backends:
            for p in precisions:
                for b in batches:
                    out, _ = measured([bench, f"--benchmark_filter=esmm_step/{g}/{p}/B:{b}/",
                                       "--benchmark_format=json", "--benchmark_min_time=0.5"])
                    for r in json.loads(out)["benchmarks"]:
                        gemm_us[(g, p, b)] = r["gemm_us"]
                        gemm_frac[(g, p, b)] = r["gemm_frac"]

    def run_torch(b, t, steps, autocast):
        cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", npz, "--batch", str(b), "--steps",
               str(steps), "--nthreads", str(t), "--seed", str(a.seed)] + (["--autocast"] if autocast else [])
        out, rss = measured(cmd)
        r = json.loads(out.strip().splitlines()[-1])
        return r["samples_per_sec"], rss, r["cpu_us_per_sample"]

    def funnel_cpu(b, backend, precision):
        """CPU time per sample of funnel-bench's esmm_step on one thread (the step as `funnel train` runs it)."""
        if not a.cpu_time or not os.access(bench, os.X_OK):
            return None
        out, _ = measured([bench, f"--benchmark_filter=esmm_step/{backend}/{precision}/B:{b}/",
                           "--benchmark_format=json", "--benchmark_min_time=1"])
        r = json.loads(out)["benchmarks"][0]
        assert r["time_unit"] == "ms"
        return r["cpu_time"] * 1000.0 / b

    def run_funnel(b, t, steps, backend, precision):
        mj = os.path.join(tmp, "metrics.json")
        os.environ["FUNNEL_GEMM"] = backend
        try:
            _, rss = measured([funnel, "train", "--data", f"csv:{csv}", "--eval-data", f"csv:{eval_csv}",
                               "--buckets", str(VOCAB_PER_FIELD), "--batch-size", str(b),
                               "--max-steps", str(steps + FUNNEL_WARMUP),
                               "--epochs", "1", "--lr", "0.001", "--threads", str(t), "--seed", str(a.seed),
                               "--precision", precision, "--quiet", "--metrics-json", mj])
        finally:
            del os.environ["FUNNEL_GEMM"]
        with open(mj) as f:
            m = json.load(f)
        if m.get("warmup_steps") != FUNNEL_WARMUP or not m.get("steady_samples_per_sec"):
            sys.exit(f"{funnel}: --metrics-json has no steady_samples_per_sec after {FUNNEL_WARMUP} warm-up steps "
                     "(rebuild funnel)")
        return m["steady_samples_per_sec"], rss

    # funnel-<backend> in fp32 (the names of earlier runs), funnel-<backend>-bf16 in bf16.
    funnel_sides = {}
    for g in backends:
        for p in precisions:
            funnel_sides[f"funnel-{g}" + ("-bf16" if p == "bf16" else "")] = (g, p)
    sides = ["torch"] + (["torch-bf16"] if torch_bf16 else []) + list(funnel_sides)
    runs, summary = [], []
    for b in batches:
        steps = max(20, a.samples // b)
        for t in threads:
            per = {s: [] for s in sides}
            for rnd in range(a.pairs):
                for s in sides:
                    if s == "torch":
                        sps, rss, cpu = run_torch(b, t, steps, False)
                    elif s == "torch-bf16":
                        sps, rss, cpu = run_torch(b, t, steps, True)
                    else:
                        sps, rss = run_funnel(b, t, steps, *funnel_sides[s])
                        cpu = funnel_cpu(b, *funnel_sides[s]) if t == 1 else None
                    per[s].append((sps, rss, cpu))
                    runs.append({"batch": b, "threads": t, "round": rnd, "side": s, "samples_per_sec": sps,
                                 "peak_rss_mib": rss, "cpu_us_per_sample": cpu})
                print(f"  batch {b}, {t} thread(s), round {rnd + 1}/{a.pairs}: " +
                      ", ".join(f"{s} {per[s][-1][0]:,.0f}/s" for s in sides), flush=True)
            base = [x[0] for x in per["torch"]]
            for s in sides:
                sps = [x[0] for x in per[s]]
                ratios = [f / p for f, p in zip(sps, base)]
                med = median(sps)
                row = {"batch": b, "threads": t, "side": s, "median_samples_per_sec": med,
                       "ratio_vs_torch_fp32_median": median(ratios), "ratio_min": min(ratios),
                       "ratio_max": max(ratios), "ratio_vs_torch_bf16_median": None, "ratio_vs_torch_bf16_min": None,
                       "ratio_vs_torch_bf16_max": None, "median_peak_rss_mib": median([x[1] for x in per[s]]),
                       "gemm_bound_fraction": None, "bench_gemm_frac": None, "cpu_us_per_sample_median": None,
                       "cpu_ratio_median": None, "cpu_ratio_min": None, "cpu_ratio_max": None}
                cpus = [x[2] for x in per[s]]
                tcpu = [x[2] for x in per["torch"]]
                if all(c is not None for c in cpus) and a.cpu_time:
                    cr = [tc / c for tc, c in zip(tcpu, cpus)]
                    row.update(cpu_us_per_sample_median=median(cpus), cpu_ratio_median=median(cr),
                               cpu_ratio_min=min(cr), cpu_ratio_max=max(cr))
                key = funnel_sides[s] + (b,) if s in funnel_sides else None
                if key and key in gemm_us and t == 1:
                    row["gemm_bound_fraction"] = gemm_us[key] * 1e-6 * med / b
                    row["bench_gemm_frac"] = gemm_frac[key]
                if s in funnel_sides and funnel_sides[s][1] == "bf16" and "torch-bf16" in per:
                    r16 = [f / p for f, p in zip(sps, [x[0] for x in per["torch-bf16"]])]
                    row.update(ratio_vs_torch_bf16_median=median(r16), ratio_vs_torch_bf16_min=min(r16),
                               ratio_vs_torch_bf16_max=max(r16))
                summary.append(row)

    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")
    print(f"\n{'batch':>6} {'threads':>7} {'side':<20} {'median/s':>10} {'ratio vs torch fp32 (min-max)':>30} "
          f"{'vs torch bf16 (min-max)':>24} {'peak RSS':>9} {'gemm bound':>10} {'bench frac':>10} "
          f"{'CPU us/sample, ratio (min-max)':>31}")
    for r in summary:
        rr = (f"{r['ratio_vs_torch_fp32_median']:.2f}x ({r['ratio_min']:.2f}-{r['ratio_max']:.2f})"
              if r["side"] != "torch" else "1")
        r16 = ("" if r["ratio_vs_torch_bf16_median"] is None else
               f"{r['ratio_vs_torch_bf16_median']:.2f}x ({r['ratio_vs_torch_bf16_min']:.2f}-"
               f"{r['ratio_vs_torch_bf16_max']:.2f})")
        gb = "" if r["gemm_bound_fraction"] is None else f"{r['gemm_bound_fraction']:.0%}"
        bf = "" if r["bench_gemm_frac"] is None else f"{r['bench_gemm_frac']:.0%}"
        cp = ("" if r["cpu_ratio_median"] is None else
              f"{r['cpu_us_per_sample_median']:.1f} {r['cpu_ratio_median']:.2f}x ({r['cpu_ratio_min']:.2f}-"
              f"{r['cpu_ratio_max']:.2f})")
        print(f"{r['batch']:>6} {r['threads']:>7} {r['side']:<20} {r['median_samples_per_sec']:>10,.0f} {rr:>30} "
              f"{r16:>24} {r['median_peak_rss_mib']:>5.0f} MiB {gb:>10} {bf:>10} {cp:>31}")
    if len(threads) > 1:
        for b in batches:
            for s in sides:
                one = [r for r in summary if r["batch"] == b and r["side"] == s and r["threads"] == threads[0]]
                for r in summary:
                    if r["batch"] == b and r["side"] == s and r["threads"] != threads[0] and one:
                        print(f"{s}, batch {b}: {r['threads']} threads / {threads[0]} = "
                              f"{r['median_samples_per_sec'] / one[0]['median_samples_per_sec']:.2f}x (medians)")
    print("\nratio: per round, funnel (or torch-bf16) samples/s / PyTorch fp32 samples/s of the same round; median and"
          " min-max over rounds.\nvs torch bf16: the same per round against PyTorch's bf16 autocast run, for funnel's"
          " bf16 sides (--precision bf16).\ngemm bound: time of the step's 18 gemms alone on that backend and precision"
          " (funnel-bench"
          " esmm_step gemm_us) / funnel's median time per step;\nbench frac: the same bound measured inside funnel-bench"
          " (esmm_step gemm_frac: the gemms alone and the whole step timed in one process, back to back);\nCPU (with"
          " --cpu-time, one thread): PyTorch's training-loop CPU time per sample against funnel-bench esmm_step's, run"
          " in the same round; ratio = PyTorch / funnel. CPU time is less disturbed by other processes than wall time.")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": runs, "summary": summary}, f, indent=1)
    if not a.keep:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
