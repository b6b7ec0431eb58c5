#!/usr/bin/env bash
# tools/shard_memory.sh [FIELDS] [VOCAB_PER_FIELD] [DIM] [NP]: peak resident memory (getrusage maxrss, as
# /usr/bin/time -f %M reports it) of every rank of `mpirun -np NP funnel train`, replicated against
# --shard-embeddings, on one large embedding table (FIELDS × VOCAB_PER_FIELD rows × DIM, Adam): a run that trains
# 8 steps and saves a checkpoint, then a run that resumes from that checkpoint (--init) for 2 steps.
# Defaults: 20 × 200,000 = 4M rows × 18, NP 2. FUNNEL_BIN (default build/bin/funnel), MPIEXEC (default mpirun).
set -euo pipefail
fields=${1:-20} vocab=${2:-200000} dim=${3:-18} np=${4:-2}
bin=${FUNNEL_BIN:-build/bin/funnel}
mpiexec=${MPIEXEC:-mpirun}
die() { echo "shard_memory.sh: $*" >&2; exit 2; }
[ -x "$bin" ] || die "$bin not built (cmake --build build --target funnel-cli)"
[ -x /usr/bin/time ] || die "needs /usr/bin/time (Debian package time)"
dir=$(mktemp -d) && trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
flags=(--data "synthetic:rows=8192,fields=$fields,vocab=$vocab,seed=3" --batch-size 1024 --embedding-dim "$dim"
       --hidden 64,32 --epochs 1 --quiet --optimizer adam)
table_mb=$(( fields * vocab * dim * 4 / 1000000 ))
echo "table: $fields × $vocab = $(( fields * vocab )) rows × $dim floats = $table_mb MB" \
  "(+ $(( 2 * table_mb )) MB Adam state); -np $np"
# run NAME FLAGS...: peak RSS of each rank (MB), wall seconds.
run() {
  local name=$1
  shift
  local t0=$SECONDS
  "$mpiexec" --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 -np "$np" \
    bash -c '/usr/bin/time -f %M -o "$0.rss.$OMPI_COMM_WORLD_RANK" "$@"' "$dir/$name" "$bin" train "${flags[@]}" "$@" \
    >"$dir/$name.out" 2>"$dir/$name.err" || { echo "$name failed:"; cat "$dir/$name.err"; exit 1; }
  local line="$name:"
  for ((r = 0; r < np; ++r)); do line+=" rank $r $(( $(tail -1 "$dir/$name.rss.$r") / 1024 )) MB"; done
  echo "$line ($(( SECONDS - t0 )) s)"
}
run replicated --save "$dir/rep"
run sharded --shard-embeddings --save "$dir/sh"
run replicated_init --init "$dir/sh" --max-steps 2
run sharded_init --shard-embeddings --init "$dir/sh" --max-steps 2
# The two checkpoints hold the same table bytes (the runs are bit-identical).
if cmp -s "$dir/rep/embedding.table.npy" "$dir/sh/embedding.table.npy"; then
  echo "checkpoints: embedding.table.npy identical"
else
  echo "checkpoints: embedding.table.npy DIFFERS"
fi
