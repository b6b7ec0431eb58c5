#!/usr/bin/env bash
# Runs every command of a funnel CLI binary on the esmm-shared-bottom model and checks what each produced.
#   run_commands.sh BINARY WORKDIR
set -euo pipefail
bin=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
fail() { echo "run_commands.sh: $*" >&2; exit 1; }
data="synthetic:rows=3000,fields=4,vocab=40,seed=3"
small="--embedding-dim 4 --hidden 8,4 --batch-size 128 --threads 1"

"$bin" models > "$work/models.txt"
grep -q '^esmm-shared-bottom .*shared-bottom MLP' "$work/models.txt" || fail "models does not list esmm-shared-bottom"
grep -q '^esmm ' "$work/models.txt" || fail "models lost funnel's own models"

"$bin" train --model esmm-shared-bottom --model-options 'bottom=[16,8]' --data "$data" $small --epochs 2 \
  --save "$work/ck" --metrics-json "$work/metrics.json" --quiet > "$work/train.txt" 2> "$work/train.err"
grep -q '"kind": "esmm-shared-bottom"' "$work/metrics.json" || fail "metrics do not name the model"
grep -q '"bottom"' "$work/ck/manifest.json" || fail "the checkpoint lacks the model's options"

"$bin" eval --checkpoint "$work/ck" --data "$data" > "$work/eval.json" 2> "$work/eval.err"
grep -q '"ctcvr_auc"' "$work/eval.json" || fail "eval printed no metrics"

"$bin" predict --checkpoint "$work/ck" --data "$data" --out "$work/pred.csv" 2> "$work/predict.err"
[ "$(head -n1 "$work/pred.csv")" = "row,pctr,pcvr,pctcvr" ] || fail "predict header: $(head -n1 "$work/pred.csv")"
[ "$(wc -l < "$work/pred.csv")" = 3001 ] || fail "predict wrote $(wc -l < "$work/pred.csv") lines, expected 3001"

"$bin" dot --model esmm-shared-bottom --model-options 'bottom=[16]' --out "$work/model.dot" > /dev/null
grep -q 'shared_bottom' "$work/model.dot" || fail "the drawing has no shared_bottom"

"$bin" gradcheck --model esmm-shared-bottom > "$work/gradcheck.txt" || fail "gradcheck failed: $(tail -n3 "$work/gradcheck.txt")"
grep -q 'shared_bottom/dense_0/w' "$work/gradcheck.txt" || fail "gradcheck did not check the shared bottom"
echo "esmm-shared-bottom: models, train, eval, predict, dot and gradcheck all ran ($work)"
