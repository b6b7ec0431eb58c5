#!/usr/bin/env bash
# cli.sh MPIEXEC FUNNEL: `mpirun -np 2 funnel train` against one process with the same flags — same metrics (up to
# float rounding of the reduction order), rank 0 alone prints and writes, checkpoints cross rank counts (--init).
set -u
mpiexec=$1 funnel=$2
dir=$(mktemp -d) && trap 'rm -rf "$dir"' EXIT
mpirun() { timeout 120 "$mpiexec" --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 "$@"; }
fail() { echo "FAIL: $*"; for f in "$dir"/*.out "$dir"/*.err; do echo "--- $f"; cat "$f"; done; exit 1; }
flags=(--data synthetic:rows=6000,fields=5,vocab=40,seed=3 --no-shuffle --batch-size 128 --embedding-dim 4
       --hidden 12,6 --epochs 1 --quiet)
"$funnel" train "${flags[@]}" --save "$dir/ck1" --metrics-json "$dir/m1.json" >"$dir/one.out" 2>"$dir/one.err" ||
  fail "one process failed"
mpirun -np 2 "$funnel" train "${flags[@]}" --save "$dir/ck2" --metrics-json "$dir/m2.json" >"$dir/two.out" \
  2>"$dir/two.err" || fail "2 ranks failed"
[ "$(grep -c ctr_auc "$dir/two.out")" -eq 1 ] || fail "the metrics table must be printed once (rank 0)"
[ "$(grep -c '^train:' "$dir/two.err")" -eq 1 ] || fail "the header must be printed once (rank 0)"
grep -q "2 ranks" "$dir/two.err" || fail "the run does not say it is data-parallel over 2 ranks"
python3 - "$dir/m1.json" "$dir/m2.json" <<'PY' || fail "metrics differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ea, eb = a["epochs"][-1], b["epochs"][-1]
assert a["steps"] == b["steps"], (a["steps"], b["steps"])
for k in ("ctr_auc", "ctcvr_auc", "ctr_logloss", "loss_ctr"):
    assert abs(ea[k] - eb[k]) <= 1e-4, (k, ea[k], eb[k])
print("metrics agree:", {k: (ea[k], eb[k]) for k in ("ctr_auc", "ctcvr_auc")})
PY
# --init across rank counts: the 1-process checkpoint on 2 ranks and the 2-rank checkpoint on 1 process.
mpirun -np 2 "$funnel" train "${flags[@]}" --init "$dir/ck1" --max-steps 60 --save "$dir/ck3" >"$dir/init2.out" \
  2>"$dir/init2.err" || fail "--init of a 1-process checkpoint on 2 ranks failed"
"$funnel" train "${flags[@]}" --init "$dir/ck2" --max-steps 60 >"$dir/init1.out" 2>"$dir/init1.err" ||
  fail "--init of a 2-rank checkpoint in 1 process failed"
# Ranks started with different flags (MPMD: --seed 1 on rank 0, --seed 2 on rank 1) stop at start, naming it.
if mpirun -np 1 "$funnel" train "${flags[@]}" --seed 1 : -np 1 "$funnel" train "${flags[@]}" --seed 2 \
  >"$dir/diff.out" 2>"$dir/diff.err"; then
  fail "ranks with different --seed trained"
fi
grep -q "different configurations" "$dir/diff.err" || fail "no message about the ranks' different configurations"
grep -q '"seed":2' "$dir/diff.err" || fail "the message does not show the rank's configuration"
grep -q "ctr_auc" "$dir/diff.out" && fail "ranks with different configurations printed metrics"
echo "ok"
