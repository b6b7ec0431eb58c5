#!/usr/bin/env bash
# The main job, end to end: install dependencies, build, train ESMM on the built-in synthetic data and draw its graph.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
mkdir -p out
if ./build/bin/funnel --help 2>/dev/null | grep -q '^  train'; then
  ./build/bin/funnel train --save out/esmm-checkpoint --metrics-json out/metrics.json "$@"
  ./build/bin/funnel dot --model esmm --grad-flow --out out/esmm.svg
  echo "wrote out/esmm.svg, out/metrics.json and out/esmm-checkpoint/"
else
  echo "funnel train is not built yet; listing the ops instead" && ./build/bin/funnel ops
fi
