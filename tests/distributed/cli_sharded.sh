#!/usr/bin/env bash
# cli_sharded.sh MPIEXEC FUNNEL: `mpirun -np N funnel train --shard-embeddings` (N = 2, 3) against the replicated run
# with the same flags: the same bits (every metric and every checkpoint array, optimizer state included), rank 0
# alone prints and writes; a sharded checkpoint continues in one process, a replicated one on 3 sharded ranks.
set -u
mpiexec=$1 funnel=$2
dir=$(mktemp -d) && trap 'rm -rf "$dir"' EXIT
mpirun() { timeout 120 "$mpiexec" --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 "$@"; }
fail() { echo "FAIL: $*"; for f in "$dir"/*.out "$dir"/*.err; do echo "--- $f"; cat "$f"; done; exit 1; }
flags=(--data synthetic:rows=4000,fields=5,vocab=40,seed=3 --batch-size 128 --embedding-dim 4 --hidden 12,6
       --epochs 2 --quiet --optimizer adam --l2 0.0001)
# Every parameter and optimizer array of two checkpoints has the same bytes.
same_arrays() {
  local a=$1 b=$2 n=0
  for f in "$a"/*.npy "$a"/optimizer/*.npy; do
    cmp -s "$f" "$b/${f#"$a"/}" || { echo "differs: ${f#"$a"/}"; return 1; }
    n=$((n + 1))
  done
  [ "$n" -gt 4 ] || { echo "only $n arrays"; return 1; }
}
for np in 2 3; do
  mpirun -np $np "$funnel" train "${flags[@]}" --save "$dir/rep$np" --metrics-json "$dir/rep$np.json" \
    >"$dir/rep$np.out" 2>"$dir/rep$np.err" || fail "replicated -np $np failed"
  mpirun -np $np "$funnel" train "${flags[@]}" --shard-embeddings --save "$dir/sh$np" \
    --metrics-json "$dir/sh$np.json" >"$dir/sh$np.out" 2>"$dir/sh$np.err" || fail "sharded -np $np failed"
  grep -q "sharded by row over $np rank" "$dir/sh$np.err" || fail "-np $np: the run does not say it shards the tables"
  [ "$(grep -c ctr_auc "$dir/sh$np.out")" -eq 1 ] || fail "-np $np: the metrics table must be printed once"
  python3 - "$dir/rep$np.json" "$dir/sh$np.json" <<'PY' || fail "-np $np: metrics differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["steps"] == b["steps"] > 0, (a["steps"], b["steps"])
assert b["config"]["shard-embeddings"] is True, b["config"]
for ea, eb in zip(a["epochs"], b["epochs"], strict=True):
    for k in ("ctr_auc", "cvr_auc", "ctcvr_auc", "ctr_logloss", "ctcvr_logloss", "loss_ctr", "loss_ctcvr"):
        assert ea[k] == eb[k], (k, ea[k], eb[k])
PY
  same_arrays "$dir/rep$np" "$dir/sh$np" || fail "-np $np: the sharded checkpoint differs from the replicated one"
done
# A sharded checkpoint in one process; a replicated one continued on 3 sharded ranks equals 3 replicated ranks.
"$funnel" train "${flags[@]}" --init "$dir/sh2" --max-steps 10 >"$dir/one.out" 2>"$dir/one.err" ||
  fail "--init of a sharded 2-rank checkpoint in one process failed"
mpirun -np 3 "$funnel" train "${flags[@]}" --init "$dir/rep2" --max-steps 10 --save "$dir/rep_more" \
  >"$dir/rep_more.out" 2>"$dir/rep_more.err" || fail "replicated --init on 3 ranks failed"
mpirun -np 3 "$funnel" train "${flags[@]}" --shard-embeddings --init "$dir/rep2" --max-steps 10 \
  --save "$dir/sh_more" >"$dir/sh_more.out" 2>"$dir/sh_more.err" || fail "sharded --init on 3 ranks failed"
same_arrays "$dir/rep_more" "$dir/sh_more" || fail "continued sharded run differs from the replicated one"
echo "ok"
