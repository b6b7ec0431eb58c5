#!/usr/bin/env bash
# Data-parallel throughput and communication of ESMM (paper dims: 20 fields × dim 18, towers 360-200-80-1, Adam,
# batch 1024) on this machine, and a projection to 8 and 64 machines. Interleaves the configurations
# (A B C D, A B C D, ...) because the machine is shared, and reports medians. B runs the sharded dense optimizer
# (each rank updates its slice of the dense parameters, then all-gathers them: the default); D is B with the
# replicated optimizer (every rank runs the whole step on all-reduced gradients), for comparison; E is B with the
# row-sharded embedding tables (--shard-embeddings: ids and rows by all-to-all, each rank updates its own rows).
# F is no data parallelism at all: two independent 1-rank runs at the same time, their rows/s added: what this
# machine gives two workers that never talk, the ceiling for B.
#   bash tools/mpi_scaling.sh [ROUNDS=7] [STEPS=300]
# Needs build/bin/funnel-dp-bench (cmake --build build --target funnel-dp-bench) and mpirun.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
steps=${2:-300}
bench=build/bin/funnel-dp-bench
[ -x "$bench" ] || { echo "mpi_scaling: build $bench first (cmake --build build --target funnel-dp-bench)" >&2; exit 2; }
# As root Open MPI wants these; --bind-to none because the cores are shared with other work, and
# mpi_yield_when_idle so that a rank waiting in a collective yields its core instead of spinning on it (on a
# loaded machine the spinning rank otherwise takes CPU from its own partner: measured 4.4k vs 8.7k rows/s).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun="mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle 1"
common="--rows 200000 --fields 20 --vocab 5000 --dim 18 --steps $steps --warmup 30"
out=$(mktemp) && trap 'rm -f "$out" "$out.f1" "$out.f2"' EXIT
for ((i = 1; i <= rounds; i++)); do
  echo "round $i/$rounds" >&2
  echo "A $($bench $common --batch 1024 --threads 1)" >>"$out"
  echo "B $($mpirun -np 2 $bench $common --batch 1024 --threads 1)" >>"$out"
  echo "C $($bench $common --batch 1024 --threads 2)" >>"$out"
  echo "D $($mpirun -np 2 $bench $common --batch 1024 --threads 1 --replicated-optimizer 1)" >>"$out"
  echo "E $($mpirun -np 2 $bench $common --batch 1024 --threads 1 --shard 1)" >>"$out"
  $bench $common --batch 1024 --threads 1 >"$out.f1" &
  $bench $common --batch 1024 --threads 1 >"$out.f2"
  wait $!
  echo "F $(python3 -c 'import json, sys; a, b = (json.load(open(f)) for f in sys.argv[1:]); print(json.dumps({"rows_per_sec": a["rows_per_sec"] + b["rows_per_sec"]}))' "$out.f1" "$out.f2")" >>"$out"
done
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# What one rank of a P-rank job sends per step when every rank computes 1024 rows (weak scaling), and the dense
# payload: one rank at batch 1024 (short runs; bytes do not depend on timing).
echo "S $($bench $common --batch 1024 --threads 1 --steps 50)" >>"$out"
python3 - "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    tag, js = line.split(" ", 1)
    rows.setdefault(tag, []).append(json.loads(js))
med = lambda tag, key: statistics.median(r[key] for r in rows[tag])
a, b, c = (med(t, "rows_per_sec") for t in "ABC")
n = len(rows["A"])
print(f"## Throughput (medians of {n} interleaved runs, rows/s; shared machine, so noisy)\n")
print("| configuration | rows/s | vs 1×1 | step ms | fwd+bwd ms | fwd+bwd CPU ms | optimizer ms | optimizer CPU ms "
      "| dense elements updated | comm ms | of which waiting | of which sparse | process CPU ms |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
names = (("A", "1 rank × 1 thread"), ("B", "2 ranks × 1 thread, sharded optimizer"), ("C", "1 rank × 2 threads"),
         ("D", "2 ranks × 1 thread, replicated optimizer"), ("E", "2 ranks × 1 thread, row-sharded embeddings"))
for tag, name in names:
    r = med(tag, "rows_per_sec")
    ocpu = f"{med(tag, 'optimizer_cpu_ms'):.2f}" if rows[tag][0]["sharded_optimizer"] else "–"
    elems = f"{med(tag, 'optimizer_elements_per_step'):,.0f}" if rows[tag][0]["sharded_optimizer"] else \
        f"{rows[tag][0]['dense_elements']:,}"
    print(f"| {name} | {r:,.0f} | {r / a:.2f}× | {med(tag, 'step_ms'):.2f} | {med(tag, 'compute_ms'):.2f} | "
          f"{med(tag, 'compute_cpu_ms'):.2f} | {med(tag, 'optimizer_ms'):.2f} | {ocpu} | {elems} | "
          f"{med(tag, 'comm_ms'):.2f} | {med(tag, 'wait_ms'):.2f} | {med(tag, 'sparse_comm_ms'):.2f} | "
          f"{med(tag, 'process_cpu_ms'):.2f} |")
# What the step would take on two otherwise idle cores: CPU time of forward+backward and of the optimizer (wall
# clock on a loaded machine mostly measures the scheduler) + the communication of an idle machine (not measurable
# here). Thread CPU of rank 0's main thread (with 1 thread that is all the work).
ca = med("A", "compute_cpu_ms") + med("A", "optimizer_cpu_ms")
cb = med("B", "compute_cpu_ms") + med("B", "optimizer_cpu_ms")
cd = med("D", "compute_cpu_ms") + med("D", "optimizer_ms")
print(f"\nCPU-time view (rank 0's thread, forward+backward + optimizer): 1 rank {ca:.1f} ms for 1024 rows; each of 2 "
      f"ranks {cb:.1f} ms for 512 rows with the sharded optimizer ({ca / cb:.2f}×), {cd:.1f} ms with the replicated "
      f"one ({ca / cd:.2f}×, optimizer wall time), before communication.")
print(f"\nOptimizer CPU split (rank 0's thread, sharded): dense pieces {med('A', 'optimizer_dense_cpu_ms'):.2f} ms "
      f"(1 rank, {rows['A'][0]['dense_elements']:,} elements) -> {med('B', 'optimizer_dense_cpu_ms'):.2f} ms (2 ranks, "
      f"{med('B', 'optimizer_elements_per_step'):,.0f}); merged embedding rows {med('A', 'optimizer_sparse_cpu_ms'):.2f} ms "
      f"-> {med('B', 'optimizer_sparse_cpu_ms'):.2f} ms (applied on every rank; {med('A', 'merged_rows_per_step'):,.0f} -> "
      f"{med('B', 'merged_rows_per_step'):,.0f} rows).")
f = med("F", "rows_per_sec")
print(f"\nCeiling: two independent 1-rank runs at once (F, no communication) give {f:,.0f} rows/s together, "
      f"{f / a:.2f}× of one alone (per round: " + ", ".join(f"{r['rows_per_sec'] / ra['rows_per_sec']:.2f}"
      for r, ra in zip(rows["F"], rows["A"])) + f"); 2 ranks (B) reach {b / f:.0%} of that.")
print(f"\nAll runs (rows/s): " + "; ".join(f"{t}: " + ", ".join(f"{r['rows_per_sec']:.0f}" for r in rows[t]) for t in "ABCDE"))
print(f"\nAll runs (vs the A run of the same round): " + "; ".join(
    f"{t}: " + ", ".join(f"{r['rows_per_sec'] / ra['rows_per_sec']:.2f}" for r, ra in zip(rows[t], rows["A"]))
    for t in "BCDE"))
print("\n## Bytes per step (this rank's payload, measured)\n")
print("| configuration | dense | sparse (ids + values) | sparse rows |")
print("|---|---:|---:|---:|")
for tag, name in (("B", "2 ranks, batch 1024 (512 rows each)"), ("S", "1 rank's share of 1024 rows")):
    print(f"| {name} | {med(tag, 'dense_bytes_per_step') / 1e3:,.1f} kB | {med(tag, 'sparse_bytes_per_step') / 1e3:,.1f} kB | {med(tag, 'sparse_rows_per_step'):,.0f} |")

# Projection, weak scaling: every machine computes 1024 rows per step (global batch 1024·P), one rank per machine.
# Compute of 1024 rows on one core: CPU time of forward+backward plus the optimizer (measured). CPU time, not
# wall time: on this shared machine wall time mostly measures how often the scheduler runs us.
t_c = (med("A", "compute_cpu_ms") + med("A", "optimizer_cpu_ms")) / 1e3
D = med("S", "dense_bytes_per_step")         # dense fused buffer, bytes
S = med("S", "sparse_bytes_per_step")        # one rank's sparse payload for 1024 rows
alpha = 50e-6                                # per-message latency over TCP/Ethernet (assumed)
print("\n## Projection: P machines, 1024 rows per machine per step (global batch 1024·P)\n")
print("Formula (ring reduce-scatter + all-gather for the fused dense buffer, ring all-gather for the sparse rows,")
print("no overlap of communication and compute; dense: with the sharded optimizer the all-gather carries the updated")
print("parameters instead of the summed gradients, the same bytes):\n")
print("    t_dense  = 2·(P−1)/P · D / BW + 2·(P−1)·α")
print("    t_sparse = (P−1) · S / BW + 3·(P−1)·α            (every rank receives every other rank's rows)")
print("    t_step   = t_compute + t_dense + t_sparse + 2·log2(P)·α   (the agreement all-reduce)")
print(f"\nwith D = {D / 1e3:.1f} kB, S = {S / 1e3:.1f} kB (measured above), t_compute = {t_c * 1e3:.2f} ms (measured,")
print(f"1 rank × 1 thread, CPU time of forward+backward + optimizer), α = {alpha * 1e6:.0f} µs (assumed),")
print("BW = link rate / 8.\n")
print("| machines | link | t_dense ms | t_sparse ms | comm / compute | efficiency | rows/s (all machines) |")
print("|---:|---|---:|---:|---:|---:|---:|")
import math
for P in (8, 64):
    for gbit in (10, 25, 100):
        bw = gbit * 1e9 / 8
        td = 2 * (P - 1) / P * D / bw + 2 * (P - 1) * alpha
        ts = (P - 1) * S / bw + 3 * (P - 1) * alpha
        tstep = t_c + td + ts + 2 * math.log2(P) * alpha
        print(f"| {P} | {gbit} Gbit/s | {td * 1e3:.2f} | {ts * 1e3:.2f} | {(td + ts) / t_c:.2f} | {t_c / tstep:.0%} | {P * 1024 / tstep:,.0f} |")
PY
