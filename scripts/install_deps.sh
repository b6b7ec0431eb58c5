#!/usr/bin/env bash
# Installs funnel's build and test dependencies from Debian 12 packages.
# Idempotent: packages already present are skipped, and apt is not touched at all when nothing is missing.
set -euo pipefail
pkgs=(cmake g++ make pkg-config
      libxtensor-dev libxtensor-blas-dev nlohmann-json3-dev libopenblas-dev libdnnl-dev
      libboost-graph-dev catch2 libbenchmark-dev graphviz
      libopenmpi-dev openmpi-bin
      libcpp-httplib-dev  # funnel serve's HTTP server (serving/http_server.cpp)
      clang-14 libclang-rt-14-dev libcli11-dev  # clang + libFuzzer for scripts/test.sh's fuzzing; CLI11
      libonnx-dev      # ONNX export: the onnx.proto classes (exporter/)
      libprotobuf-dev  # ONNX export: protobuf, which they are written with
      python3-onnx     # tests: onnx.checker on every exported file
      python3-dev  # the Python package (python/): headers of Debian's /usr/bin/python3
      pybind11-dev  # the Python package's bindings
      python3-numpy  # the Python package: arrays in and out
      python3-pandas  # the Python package: DataFrames in and out
      python3-pytest  # the Python package's tests (CTest runs them)
      python3-matplotlib  # examples/python/quickstart.py's plots (Agg, headless)
      doxygen  # the API reference (target docs) and its check (CTest docs/api)
      )
# ONNX Runtime from npm runs the exported files in the tests (scripts/install_ort.sh); node and npm from Debian
# unless a node with npm is already installed (e.g. from NodeSource, whose nodejs package conflicts with Debian's npm).
command -v npm >/dev/null && command -v node >/dev/null || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#pkgs[@]} packages present"
  bash "$(dirname "$0")/install_ort.sh"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
bash "$(dirname "$0")/install_ort.sh"
