#!/usr/bin/env bash
# Runs every test: installs dependencies, builds (Release, then AddressSanitizer + UBSan) and runs CTest on both,
# then builds the libFuzzer targets with clang and runs each (csv, slots, aliccp readers; checkpoint manifest) for
# FUNNEL_FUZZ_SECONDS (default 12) on its corpus in tests/. FUNNEL_SKIP_SANITIZE=1 / FUNNEL_SKIP_FUZZ=1 skip parts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DFUNNEL_BENCH=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")
if [ "${FUNNEL_SKIP_SANITIZE:-0}" != 1 ]; then
  # -g1: line tables for the sanitizers' reports, without full debug info (a third faster to build and link).
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DFUNNEL_SANITIZE=ON -DFUNNEL_BENCH=OFF >/dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$jobs")
fi
if [ "${FUNNEL_SKIP_FUZZ:-0}" != 1 ]; then
  secs=${FUNNEL_FUZZ_SECONDS:-12}
  cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFUNNEL_TESTS=OFF \
    -DFUNNEL_BENCH=OFF >/dev/null
  cmake --build build-fuzz -j"$jobs" --target fuzz-csv fuzz-slots fuzz-aliccp fuzz-manifest fuzz-request
  for name in csv slots aliccp manifest request; do
    corpus=tests/data/corpus/$name
    [ "$name" = manifest ] && corpus=tests/train/corpus/manifest
    [ "$name" = request ] && corpus=tests/serving/corpus/request
    scratch=build-fuzz/corpus-$name  # new inputs go here; the corpus in tests/ is only read
    mkdir -p "$scratch"
    if ! build-fuzz/bin/fuzz-$name -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
         -artifact_prefix=build-fuzz/crash-$name- "$scratch" "$corpus" >build-fuzz/fuzz-$name.log 2>&1; then
      tail -40 build-fuzz/fuzz-$name.log
      echo "fuzz-$name: FAILED (the input is in build-fuzz/crash-$name-*)"
      exit 1
    fi
    echo "fuzz-$name: ${secs}s, $(grep -o 'Done [0-9]* runs' build-fuzz/fuzz-$name.log || echo '?'), no failure"
  done
fi
