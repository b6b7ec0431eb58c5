#!/usr/bin/env bash
# The main job, end to end: install dependencies, build, train ESMM on the built-in synthetic data and draw its graph.
# Extra arguments go to `funnel train` (e.g. --epochs 3, --data aliccp:DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
mkdir -p out
./build/bin/funnel train --save out/esmm-checkpoint --metrics-json out/metrics.json "$@"
./build/bin/funnel dot --model esmm --grad-flow --out out/esmm.svg
echo "wrote out/esmm.svg, out/metrics.json and out/esmm-checkpoint/"
