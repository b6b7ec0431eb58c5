#!/usr/bin/env python3
"""Out-of-core numbers for funnel (streaming from a cache, memory flat in rows), reproducible by anyone with a build:

  python3 tools/stream_bench.py --bin build/bin --dir /tmp/funnel-bench [--sizes 1000000,4000000,16000000]
                                [--pairs 5] [--pair-steps 60] [--threads 1] [--skip-epochs] [--max-steps K] [--keep]

For each size: funnel-synth writes a raw Ali-CCP training split with the release's proportions and `funnel convert`
turns it into a v3 cache (MB/s by wall clock and CPU time, peak memory); both are skipped when DIR already holds
train_N.cache (and its train_N.cache.json with the convert numbers). Then `funnel train --data cache:train_N.cache`
trains ESMM (paper setup) for one full epoch over all N rows, streamed from the cache, evaluating on the first size's
cache (the same rows at every size, so evaluation costs the same) while this script samples /proc/PID/status every
50 ms: VmHWM = peak resident, RssAnon = anonymous memory (model, optimizer, buffers: must not grow with N),
RssFile = pages of the mapped cache. Last, on the first size, streamed and in-memory training are interleaved
(A B A B ..., --pairs pairs of --pair-steps steps each, funnel-stream-bench: the same training loop over a
CacheSource or over the cache decoded into a Dataset) and the medians compared. Every number is a median or a
maximum over the runs listed, and the load average is printed: the machine may be shared.
Raw files are deleted after conversion, caches at the end unless --keep.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time


def run_sampled(cmd):
    """Runs cmd, sampling /proc/PID/status. Returns (stdout, wall s, cpu s, peaks in MB)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = {"VmHWM": 0, "RssAnon": 0, "RssFile": 0, "VmRSS": 0}
    status = f"/proc/{p.pid}/status"
    while True:
        try:
            with open(status) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in peak:
                        peak[k] = max(peak[k], int(v.split()[0]) // 1024)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
        pid, st, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.05)
    out = p.stdout.read()
    err = p.stderr.read()
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(st)
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(cmd)}\n{err}")
    return out, wall, ru.ru_utime + ru.ru_stime, peak


def prepare(b, d, n, keep):
    """train_N.cache in d (generated and converted unless present) and the convert numbers."""
    cache = os.path.join(d, f"train_{n}.cache")
    stats = cache + ".json"
    if os.path.exists(cache) and os.path.exists(stats):
        with open(stats) as f:
            return cache, json.load(f)
    raw = os.path.join(d, f"raw_{n}")
    shutil.rmtree(raw, ignore_errors=True)
    os.makedirs(raw)
    _, wall, cpu, _ = run_sampled([b("funnel-synth"), "--out", raw, "--rows", str(n)])
    raw_mb = sum(os.path.getsize(os.path.join(raw, f)) for f in os.listdir(raw)) / 1e6
    synth = dict(wall_mbs=raw_mb / wall, cpu_mbs=raw_mb / max(cpu, 1e-9), wall=wall)
    _, wall, cpu, peak = run_sampled([b("funnel"), "convert", "--data", "aliccp:" + raw, "--out", cache])
    conv = dict(mb=raw_mb, wall=wall, cpu=cpu, wall_mbs=raw_mb / wall, cpu_mbs=raw_mb / max(cpu, 1e-9), peak=peak)
    if not keep:
        shutil.rmtree(raw)
    r = dict(rows=n, synth=synth, conv=conv, cache_mb=os.path.getsize(cache) / 1e6, load=os.getloadavg())
    with open(stats, "w") as f:
        json.dump(r, f)
    return cache, r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--dir", required=True, help="work directory (created; needs ~0.45 GB per million rows)")
    ap.add_argument("--sizes", default="1000000,4000000,16000000")
    ap.add_argument("--pairs", type=int, default=5, help="interleaved stream/memory pairs on the first size")
    ap.add_argument("--pair-steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-epochs", action="store_true", help="only the interleaved pairs")
    ap.add_argument("--max-steps", type=int, default=0, help="cut each training run short (0 = a full epoch)")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    b = lambda n: os.path.join(a.bin, n)
    print(f"load average at start: {os.getloadavg()}  cpus: {os.cpu_count()}", flush=True)
    sizes = [int(s) for s in a.sizes.split(",")]
    prepared = [prepare(b, a.dir, n, a.keep) for n in sizes]
    eval_cache = prepared[0][0]
    rows_out = []
    if not a.skip_epochs:
        for n, (cache, conv) in zip(sizes, prepared):
            metrics = os.path.join(a.dir, f"metrics_{n}.json")
            cmd = [b("funnel"), "train", "--data", "cache:" + cache, "--eval-data", "cache:" + eval_cache,
                   "--epochs", "1", "--batch-size", str(a.batch_size), "--threads", str(a.threads), "--quiet",
                   "--metrics-json", metrics] + (["--max-steps", str(a.max_steps)] if a.max_steps else [])
            _, wall, cpu, peak = run_sampled(cmd)
            with open(metrics) as f:
                m = json.load(f)
            rows_out.append(dict(rows=n, cache_mb=conv["cache_mb"], conv=conv["conv"], synth=conv["synth"],
                                 rows_per_sec=m["samples_per_sec"], wall=wall, cpu=cpu, peak=peak,
                                 ctr_auc=m["epochs"][-1].get("ctr_auc"), load=os.getloadavg()))
            print(json.dumps(rows_out[-1]), flush=True)
        print("\n| rows | raw MB | convert MB/s (wall/cpu) | convert peak RSS / RssAnon MB | cache MB |"
              " train rows/s | train wall s | train peak RSS MB | train max RssAnon MB | max RssFile MB |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows_out:
            c = r["conv"]
            print(f"| {r['rows']:,} | {c['mb']:.0f} | {c['wall_mbs']:.0f} / {c['cpu_mbs']:.0f} | "
                  f"{c['peak']['VmHWM']} / {c['peak']['RssAnon']} | {r['cache_mb']:.0f} | {r['rows_per_sec']:.0f} | "
                  f"{r['wall']:.0f} | {r['peak']['VmHWM']} | {r['peak']['RssAnon']} | {r['peak']['RssFile']} |")
        if len(rows_out) > 1:
            a0, a1 = rows_out[0]["peak"]["RssAnon"], rows_out[-1]["peak"]["RssAnon"]
            print(f"\nRssAnon growth {rows_out[0]['rows']:,} -> {rows_out[-1]['rows']:,} rows: "
                  f"{100.0 * (a1 - a0) / a0:+.1f}%")

    if a.pairs > 0:
        rate = {"stream": [], "memory": []}
        for i in range(a.pairs):
            for mode in ("memory", "stream"):
                out, wall, cpu, peak = run_sampled([b("funnel-stream-bench"), "--cache", eval_cache, "--mode", mode,
                                                    "--batch-size", str(a.batch_size), "--threads", str(a.threads),
                                                    "--max-steps", str(a.pair_steps)])
                rate[mode].append(json.loads(out.strip().splitlines()[-1])["loop_rows_per_sec"])
        ms, mm = statistics.median(rate["stream"]), statistics.median(rate["memory"])
        ratios = [s / m for s, m in zip(rate["stream"], rate["memory"])]
        print(f"\ninterleaved {a.pairs} pairs, {a.pair_steps} steps of batch {a.batch_size}, {a.threads} thread(s): "
              f"memory {[round(x) for x in rate['memory']]} stream {[round(x) for x in rate['stream']]}")
        print(f"median rows/s: memory {mm:.0f}, stream {ms:.0f}; stream/memory = {ms / mm:.3f}; "
              f"median of the pair ratios {statistics.median(ratios):.3f}")
    print(f"load average at end: {os.getloadavg()}")
    if not a.keep:
        for c, _ in prepared:
            os.remove(c)
            os.remove(c + ".json")


if __name__ == "__main__":
    main()
