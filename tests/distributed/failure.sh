#!/usr/bin/env bash
# failure.sh MPIEXEC DP_FAILURE NP MODE: runs dp_failure under mpirun and checks that the job ends as it should,
# in bounded time. Exit 0 when it did; 1 with the reason otherwise.
set -u
mpiexec=$1 prog=$2 np=$3 mode=$4
out=$(mktemp) && trap 'rm -f "$out"' EXIT
start=$(date +%s)
FUNNEL_MPI_TIMEOUT=3 timeout 120 "$mpiexec" --oversubscribe --bind-to none -np "$np" \
  -x FUNNEL_MPI_TIMEOUT "$prog" "$mode" >"$out" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
fail() { echo "FAIL ($mode, -np $np): $*"; echo "--- output (exit $rc, ${elapsed}s):"; cat "$out"; exit 1; }
[ "$rc" -ne 124 ] || fail "mpirun did not end within 120 s"
[ "$elapsed" -le 60 ] || fail "took ${elapsed}s (bound: 60 s)"
case $mode in
  die)
    [ "$rc" -ne 0 ] || fail "a dead rank must make the job fail"
    grep -q "finished at step" "$out" && fail "a rank finished training although a peer died" ;;
  hang)
    [ "$rc" -ne 0 ] || fail "a hung rank must make the job fail"
    grep -q "waited .* for the other ranks" "$out" || fail "no watchdog message" ;;
  nan)
    [ "$rc" -ne 0 ] || fail "a NaN must make the job fail"
    n=$(grep -c "error: rank $((np - 1)) of $np (host .*): .*non-finite\|error: rank $((np - 1)) of $np (host .*): .*NaN" "$out")
    [ "$n" -eq "$np" ] || fail "expected every rank ($np) to report the NaN on rank $((np - 1)), got $n" ;;
  term)
    [ "$rc" -eq 0 ] || fail "an agreed stop must exit 0"
    n=$(grep -c "stopped at step 4" "$out")
    [ "$n" -eq "$np" ] || fail "expected all $np ranks to stop at step 4, got $n" ;;
esac
echo "ok ($mode, -np $np): exit $rc after ${elapsed}s"
