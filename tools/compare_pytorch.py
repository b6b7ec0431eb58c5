#!/usr/bin/env python3
"""ESMM training speed and peak memory: funnel against PyTorch, on the same data, shapes and machine, in one run.

Both sides train the same ESMM: a shared embedding of 20 fields x 5,000 ids (100,000 rows) x dim 18, two towers
360-200-80-1 with ReLU, pCTCVR = pCTR x pCVR, loss BCE(pCTR, click) + BCE(pCTCVR, click*conversion), Adam
(0.9, 0.999, 1e-8) with lazy sparse rows for the embedding (PyTorch: nn.Embedding(sparse=True) + SparseAdam, Adam
for the towers). The script writes one CSV of random impressions (Zipf-like ids per field, CTR ~4%, CTCVR ~0.2%);
funnel reads it with `--data csv:FILE --buckets 5000`, PyTorch gets the same ids (field f, value v -> row f*5000+v).

For every batch size it runs, each in its own process (so peak RSS is that process's own):
  * PyTorch, N threads (torch.set_num_threads), timing only the training loop after a few warm-up steps;
  * `funnel train --threads N`, reading samples_per_sec (training loop only) from --metrics-json;
and prints samples/s, the ratio, and peak RSS of both. With --threads 1,2 it also prints funnel's 2-thread scaling.
With funnel-bench present it adds the gemm bound: the time of the step's 18 sgemms alone (esmm_step's gemm_us),
as a fraction of funnel's time per step.

  python3 tools/compare_pytorch.py                       # batch 128 and 1024, one thread
  python3 tools/compare_pytorch.py --threads 1,2 --batches 1024

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


def torch_worker(npz, batch, steps, threads, warmup, seed):
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

    def step(i):
        lo = (i * batch) % (rows - batch + 1)
        idx = perm[lo:lo + batch]
        x = emb(ids[idx]).reshape(batch, FIELDS * DIM)
        pctr = torch.sigmoid(ctr(x)).squeeze(1)
        pcvr = torch.sigmoid(cvr(x)).squeeze(1)
        pctcvr = pctr * pcvr
        c = click[idx]
        loss = bce(pctr, c) + bce(pctcvr, c * conv[idx])
        sparse_opt.zero_grad(set_to_none=True)
        dense_opt.zero_grad(set_to_none=True)
        loss.backward()
        sparse_opt.step()
        dense_opt.step()
        return loss

    for i in range(warmup):
        step(i)
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        loss = step(i)
    dt = time.perf_counter() - t0
    print(json.dumps({"samples_per_sec": steps * batch / dt, "loss": float(loss)}))


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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--funnel", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin", "funnel"))
    ap.add_argument("--batches", default="128,1024")
    ap.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2")
    ap.add_argument("--samples", type=int, default=300_000, help="training samples per run (steps = samples/batch)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="directory for the data files (default: a temp dir, removed)")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    worker = ap.add_argument_group("internal")
    worker.add_argument("--torch-worker", help=argparse.SUPPRESS)
    worker.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    worker.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    worker.add_argument("--nthreads", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.torch_worker:
        torch_worker(a.torch_worker, a.batch, a.steps, a.nthreads, warmup=5, seed=a.seed)
        return

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

    gemm_us = {}
    if os.access(bench, os.X_OK):
        for b in batches:
            out, _ = measured([bench, f"--benchmark_filter=esmm_step/B:{b}/", "--benchmark_format=json",
                               "--benchmark_min_time=0.5"])
            for r in json.loads(out)["benchmarks"]:
                gemm_us[b] = r["gemm_us"]

    results = []
    print(f"\n{'batch':>6} {'threads':>7} {'pytorch/s':>11} {'funnel/s':>11} {'ratio':>6} "
          f"{'torch RSS':>10} {'funnel RSS':>11} {'gemm bound':>10}")
    for b in batches:
        steps = max(20, a.samples // b)
        for t in threads:
            tout, trss = measured([sys.executable, os.path.abspath(__file__), "--torch-worker", npz, "--batch", str(b),
                                   "--steps", str(steps), "--nthreads", str(t), "--seed", str(a.seed)])
            tps = json.loads(tout.strip().splitlines()[-1])["samples_per_sec"]
            mj = os.path.join(tmp, "metrics.json")
            _, frss = measured([funnel, "train", "--data", f"csv:{csv}", "--eval-data", f"csv:{eval_csv}",
                                "--buckets", str(VOCAB_PER_FIELD), "--batch-size", str(b), "--max-steps", str(steps),
                                "--epochs", "1", "--lr", "0.001", "--threads", str(t), "--seed", str(a.seed),
                                "--quiet", "--metrics-json", mj])
            with open(mj) as f:
                fps = json.load(f)["samples_per_sec"]
            bound = gemm_us[b] * 1e-6 * fps / b if b in gemm_us and t == 1 else None
            r = {"batch": b, "threads": t, "steps": steps, "pytorch_samples_per_sec": tps,
                 "funnel_samples_per_sec": fps, "ratio": fps / tps, "pytorch_peak_rss_mib": trss,
                 "funnel_peak_rss_mib": frss, "gemm_bound_fraction": bound}
            results.append(r)
            print(f"{b:>6} {t:>7} {tps:>11,.0f} {fps:>11,.0f} {fps / tps:>5.2f}x {trss:>7.0f} MiB {frss:>8.0f} MiB "
                  f"{'' if bound is None else f'{bound:>9.0%}'}", flush=True)
    for b in batches:
        one = [r for r in results if r["batch"] == b and r["threads"] == 1]
        for r in results:
            if r["batch"] == b and r["threads"] > 1 and one:
                print(f"funnel, batch {b}: {r['threads']} threads / 1 thread = "
                      f"{r['funnel_samples_per_sec'] / one[0]['funnel_samples_per_sec']:.2f}x; pytorch: "
                      f"{r['pytorch_samples_per_sec'] / one[0]['pytorch_samples_per_sec']:.2f}x")
    print("\ngemm bound: time of the step's 18 sgemms alone (funnel-bench esmm_step gemm_us) / funnel's time per step")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    if not a.keep:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
