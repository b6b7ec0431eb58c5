#!/usr/bin/env bash
# Installs ONNX Runtime for Node.js (onnxruntime-node, CPU library inside the package) into tools/ort/node_modules,
# exactly as tools/ort/package-lock.json pins it. Test-only: the ONNX export tests score exported files with it.
# npm_config_onnxruntime_node_install=skip keeps the package's post-install script from fetching CUDA add-ons.
# Idempotent: does nothing when the pinned version is already there.
set -euo pipefail
dir="$(cd "$(dirname "$0")/../tools/ort" && pwd)"
command -v node >/dev/null || { echo "install_ort: node not found (Debian: nodejs, npm)" >&2; exit 1; }
want=$(node -e 'console.log(require(process.argv[1]).packages["node_modules/onnxruntime-node"].version)' \
       "$dir/package-lock.json")
have=$(node -e 'try { console.log(require(process.argv[1]).version) } catch (e) { console.log("") }' \
       "$dir/node_modules/onnxruntime-node/package.json")
if [ "$want" = "$have" ]; then
  echo "install_ort: onnxruntime-node $have present"
  exit 0
fi
cd "$dir"
npm_config_onnxruntime_node_install=skip npm ci --no-audit --no-fund
echo "install_ort: onnxruntime-node $want installed in $dir/node_modules"
