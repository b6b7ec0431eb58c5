#!/usr/bin/env python3
"""Out-of-core numbers for funnel (issue 13), reproducible by anyone with a build:

  python3 tools/stream_bench.py --bin build/bin --dir /tmp/funnel-bench [--sizes 1000000,4000000,16000000]
                                [--steps 300] [--pairs 5] [--threads 1] [--keep]

For each size: funnel-synth writes a raw Ali-CCP training split with the release's proportions, `funnel convert`
turns it into a v3 cache (MB/s by wall clock and by CPU time, peak memory), then funnel-stream-bench trains ESMM
(paper setup) streamed from the cache while this script samples /proc/PID/status (VmHWM = peak resident,
RssAnon = anonymous memory, RssFile = mapped file pages) every 50 ms. Then, on the first size, streamed and
in-memory training are interleaved (A B A B ..., --pairs pairs) and the medians compared. The machine may be
shared: every number is a median or a maximum over the runs listed, and the load average is printed.
Raw files are deleted after conversion and caches at the end unless --keep.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--dir", required=True, help="work directory (created; needs ~0.45 GB per million rows)")
    ap.add_argument("--sizes", default="1000000,4000000,16000000")
    ap.add_argument("--steps", type=int, default=300, help="training steps per memory run (0 = a full epoch)")
    ap.add_argument("--pairs", type=int, default=5, help="interleaved stream/memory pairs on the first size")
    ap.add_argument("--pair-steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    b = lambda n: os.path.join(a.bin, n)
    print(f"load average at start: {os.getloadavg()}  cpus: {os.cpu_count()}")
    rows_out = []
    caches = []
    for n in [int(s) for s in a.sizes.split(",")]:
        raw = os.path.join(a.dir, f"raw_{n}")
        cache = os.path.join(a.dir, f"train_{n}.cache")
        if not os.path.exists(cache):
            shutil.rmtree(raw, ignore_errors=True)
            os.makedirs(raw)
            out, wall, cpu, _ = run_sampled([b("funnel-synth"), "--out", raw, "--rows", str(n)])
            raw_mb = sum(os.path.getsize(os.path.join(raw, f)) for f in os.listdir(raw)) / 1e6
            synth = (raw_mb / wall, raw_mb / max(cpu, 1e-9))
            out, wall, cpu, peak = run_sampled([b("funnel"), "convert", "--data", "aliccp:" + raw, "--out", cache])
            conv = dict(mb=raw_mb, wall_mbs=raw_mb / wall, cpu_mbs=raw_mb / max(cpu, 1e-9), peak=peak)
            if not a.keep:
                shutil.rmtree(raw)
        else:
            synth, conv = None, None
        caches.append(cache)
        cmd = [b("funnel-stream-bench"), "--cache", cache, "--batch-size", str(a.batch_size), "--threads",
               str(a.threads), "--max-steps", str(a.steps)]
        out, wall, cpu, peak = run_sampled(cmd)
        r = json.loads(out.strip().splitlines()[-1])
        rows_out.append(dict(rows=n, cache_mb=os.path.getsize(cache) / 1e6, synth=synth, conv=conv, train=r,
                             peak=peak))
        print(json.dumps(rows_out[-1]), flush=True)

    print("\n| rows | raw MB | synth MB/s (wall/cpu) | convert MB/s (wall/cpu) | convert peak RSS / RssAnon MB |"
          " cache MB | train rows/s | train peak RSS MB | train max RssAnon MB | max RssFile MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows_out:
        c = r["conv"]
        s = r["synth"]
        print(f"| {r['rows']:,} | {c['mb']:.0f} | {s[0]:.0f} / {s[1]:.0f} | {c['wall_mbs']:.0f} / {c['cpu_mbs']:.0f} | "
              f"{c['peak']['VmHWM']} / {c['peak']['RssAnon']} | {r['cache_mb']:.0f} | "
              f"{r['train']['loop_rows_per_sec']:.0f} | {r['peak']['VmHWM']} | {r['peak']['RssAnon']} | "
              f"{r['peak']['RssFile']} |" if c else f"| {r['rows']:,} | (cached) | | | | {r['cache_mb']:.0f} | "
              f"{r['train']['loop_rows_per_sec']:.0f} | {r['peak']['VmHWM']} | {r['peak']['RssAnon']} | "
              f"{r['peak']['RssFile']} |")
    if len(rows_out) > 1:
        a0, a1 = rows_out[0]["peak"]["RssAnon"], rows_out[-1]["peak"]["RssAnon"]
        print(f"\nRssAnon growth {rows_out[0]['rows']:,} -> {rows_out[-1]['rows']:,} rows: {100.0 * (a1 - a0) / a0:+.1f}%")

    if a.pairs > 0:
        rate = {"stream": [], "memory": []}
        for i in range(a.pairs):
            for mode in ("memory", "stream"):
                out, wall, cpu, peak = run_sampled([b("funnel-stream-bench"), "--cache", caches[0], "--mode", mode,
                                                    "--batch-size", str(a.batch_size), "--threads", str(a.threads),
                                                    "--max-steps", str(a.pair_steps)])
                rate[mode].append(json.loads(out.strip().splitlines()[-1])["loop_rows_per_sec"])
        ms, mm = statistics.median(rate["stream"]), statistics.median(rate["memory"])
        print(f"\ninterleaved {a.pairs} pairs, {a.pair_steps} steps of batch {a.batch_size}, {a.threads} thread(s): "
              f"memory {[round(x) for x in rate['memory']]} stream {[round(x) for x in rate['stream']]}")
        print(f"median rows/s: memory {mm:.0f}, stream {ms:.0f}; stream/memory = {ms / mm:.3f}")
    print(f"load average at end: {os.getloadavg()}")
    if not a.keep:
        for c in caches:
            os.remove(c)


if __name__ == "__main__":
    main()
