#!/usr/bin/env bash
# What a second thread gives funnel train on this machine, against what the machine gives two workers that never
# talk. Per round, interleaved because machines are shared: one 1-thread run alone (A), two 1-thread runs started
# together with their steady samples/s added (B), one 2-thread run (C). Prints each round and the medians of B/A
# (the ceiling for two threads here) and C/A.
#   bash tools/thread_scaling.sh TRAIN_SPEC [ROUNDS=7] [EXTRA FLAGS...]
#   e.g. bash tools/thread_scaling.sh cache:train.cache 7 --epochs 1
# TRAIN_SPEC is a --data spec (a cache streams; a CSV is read into memory by each run). The runs write nothing but
# their metrics JSON, into a temporary directory removed at the end.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bash tools/thread_scaling.sh TRAIN_SPEC [ROUNDS=7] [EXTRA FLAGS...]" >&2; exit 2; }
spec=$1
rounds=${2:-7}
shift $(($# >= 2 ? 2 : 1))
funnel="$(cd "$(dirname "$0")/.." && pwd)/build/bin/funnel"
[ -x "$funnel" ] || { echo "thread_scaling: build $funnel first (bash scripts/run.sh or cmake --build build)" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "thread_scaling: ROUNDS must be a positive integer, got '$rounds'" >&2; exit 2; }
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
rate() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["steady_samples_per_sec"])' "$1"; }
extra=("$@")
run() {  # threads, metrics file
  local threads=$1 out=$2
  "$funnel" train --data "$spec" --threads "$threads" --quiet --metrics-json "$out" "${extra[@]}" >/dev/null \
    2>"$out.err" || { echo "thread_scaling: funnel train failed:" >&2; cat "$out.err" >&2; return 1; }
}
for ((i = 1; i <= rounds; i++)); do
  echo "round $i/$rounds" >&2
  run 1 "$tmp/a.json"
  run 1 "$tmp/b1.json" &
  pid=$!
  run 1 "$tmp/b2.json"
  wait "$pid"
  run 2 "$tmp/c.json"
  echo "$(rate "$tmp/a.json") $(rate "$tmp/b1.json") $(rate "$tmp/b2.json") $(rate "$tmp/c.json")" >>"$tmp/rounds"
done
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$tmp/rounds" <<'PY'
import statistics, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1])]
print("round  1 thread  two 1-thread runs   2 threads   (steady samples/s)")
for i, (a, b1, b2, c) in enumerate(rows, 1):
    print(f"{i:5d} {a:9.0f} {b1 + b2:11.0f} ({(b1 + b2) / a:.3f}x) {c:9.0f} ({c / a:.3f}x)")
two = statistics.median((b1 + b2) / a for a, b1, b2, c in rows)
threads = statistics.median(c / a for a, b1, b2, c in rows)
print(f"medians: two independent runs / one = {two:.3f}x (this machine's ceiling), 2 threads / 1 = {threads:.3f}x")
PY
