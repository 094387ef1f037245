#!/usr/bin/env bash
# Build Horovod 0.28.1 (PyTorch + Gloo; no MPI, TensorFlow or MXNet) from its sdist against torch 2.13
# and install it into a virtual environment. Not used by the project (its trainer is TorchDistributor).
#
# Horovod 0.28.1 (2023, its last release) does not build against torch 2.13 as published: its CMake
# sets CMAKE_CXX_STANDARD 14 (top-level CMakeLists.txt, and again in horovod/torch/CMakeLists.txt for
# torch >= 1.5), while torch's headers need C++17 ("#error C++17 or later compatible compiler is
# required to use PyTorch."). CXXFLAGS=-std=c++17 cannot help: the top-level CMakeLists.txt strips
# every -std= from CMAKE_CXX_FLAGS. This script patches both lines to 17.
#
# Usage: scripts/build_horovod.sh [VENV] [WORK_DIR]
#   VENV      virtual environment to install into; must already hold torch (default /tmp/hvd/venv)
#   WORK_DIR  where the sdist, the patched source and the wheel go (default /tmp/hvd/build)
# Idempotent: an installed Horovod 0.28.1 whose torch extension works is left alone (FORCE=1 rebuilds);
# the sdist is downloaded once and checked against its sha256; the source is re-extracted and
# re-patched on every build. Needs cmake >= 3.13, a C++17 compiler and make; about 4 minutes on 2 cores.
# The wheel built is kept outside the checkout, in $HOROVOD_CACHE (default
# ~/.cache/flight-delays/horovod), keyed by Horovod's, torch's and Python's versions and this script's
# hash: a fresh clone on the same machine installs it in seconds instead of building again.
#
# Checked on Debian 12 (gcc 12.2, cmake 3.25), Python 3.11.7, torch 2.13.0+cpu: horovod.spark.run(fn,
# num_proc=2) under pyspark 4.3.0 (local[2]) runs hvd.allreduce and DistributedOptimizer over Gloo.
# horovod.spark also imports numpy, pandas and pyarrow: install those, not Horovod's [spark] extra,
# whose pyarrow<11 and petastorm (for the Estimator API, not tried) conflict with pyspark 4.3
# (pyarrow>=18). GPU builds (HOROVOD_GPU_OPERATIONS=NCCL, CUDA toolkit) were not tried.
set -euo pipefail

HOROVOD_VERSION=0.28.1
SDIST_SHA256=92a43f5a94c43907a56805bad15f19700c62ffc83b7ca483f9e104e229f67ef0
VENV=${1:-/tmp/hvd/venv}
WORK=${2:-/tmp/hvd/build}
PY=$VENV/bin/python

die() { echo "build_horovod.sh: $*" >&2; exit 1; }

# A one-process Horovod job: the torch extension loads, Gloo is built in, an allreduce runs.
smoke_test() {
    "$PY" - <<'EOF'
import horovod
import horovod.torch as hvd
import torch

assert horovod.__version__ == "0.28.1", horovod.__version__
hvd.init()
assert hvd.gloo_built(), "Horovod was built without Gloo"
assert hvd.allreduce(torch.tensor([2.0]), op=hvd.Sum).item() == 2.0
print(f"horovod {horovod.__version__} with torch {torch.__version__}: size {hvd.size()}, gloo built")
EOF
}

[[ -x $PY ]] || die "no Python at $PY: create the virtual environment and install torch into it first"
"$PY" -c 'import torch, setuptools' 2>/dev/null \
    || die "$VENV lacks torch or setuptools: install them first (pip install torch==2.13.0)"
for tool in cmake make c++; do
    command -v "$tool" >/dev/null || die "$tool not found: install cmake, make and g++ (C++17)"
done

if [[ ${FORCE:-0} != 1 ]] && smoke_test 2>/dev/null; then
    echo "Horovod $HOROVOD_VERSION already works in $VENV (FORCE=1 rebuilds)"
    exit 0
fi

# The cached wheel of this build recipe for this torch and Python, when there is one
key=$("$PY" -c 'import sys, torch; print(f"torch{torch.__version__}-py{sys.version_info[0]}{sys.version_info[1]}")')
key=$key-$(sha256sum "$0" | cut -c1-12)
cache=${HOROVOD_CACHE:-$HOME/.cache/flight-delays/horovod}/$HOROVOD_VERSION-$key
if [[ ${FORCE:-0} != 1 ]] && ls "$cache"/horovod-"$HOROVOD_VERSION"-*.whl >/dev/null 2>&1; then
    "$PY" -m pip install --no-deps --force-reinstall "$cache"/horovod-"$HOROVOD_VERSION"-*.whl
    "$PY" -m pip install cloudpickle psutil pyyaml packaging
    smoke_test
    echo "Installed the cached wheel from $cache"
    exit 0
fi

sdist=$WORK/sdist/horovod-$HOROVOD_VERSION.tar.gz
if [[ ! -f $sdist ]]; then
    "$PY" -m pip download --no-deps --no-binary :all: "horovod==$HOROVOD_VERSION" -d "$WORK/sdist"
fi
echo "$SDIST_SHA256  $sdist" | sha256sum --check --quiet || die "$sdist does not match its sha256"

src=$WORK/src/horovod-$HOROVOD_VERSION
rm -rf "$WORK/src" "$WORK/dist"
mkdir -p "$WORK/src" "$WORK/dist"
tar -xzf "$sdist" -C "$WORK/src"
for cmake_file in CMakeLists.txt horovod/torch/CMakeLists.txt; do
    grep -q 'set(CMAKE_CXX_STANDARD 14)' "$src/$cmake_file" \
        || die "$cmake_file has no 'set(CMAKE_CXX_STANDARD 14)' to patch: not the expected sdist?"
    sed -i 's/set(CMAKE_CXX_STANDARD 14)/set(CMAKE_CXX_STANDARD 17)/' "$src/$cmake_file"
done

# No build isolation: setup.py imports the installed torch to find its headers and libraries.
HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_WITHOUT_TENSORFLOW=1 \
HOROVOD_WITHOUT_MXNET=1 MAKEFLAGS=-j$(nproc) \
    "$PY" -m pip wheel --no-deps --no-build-isolation --no-cache-dir -w "$WORK/dist" "$src"
wheel=$(ls "$WORK"/dist/horovod-"$HOROVOD_VERSION"-*.whl)
"$PY" -m pip install --no-deps --force-reinstall "$wheel"
# Horovod's own install_requires (the wheel was installed without them to keep torch untouched).
"$PY" -m pip install cloudpickle psutil pyyaml packaging
smoke_test
mkdir -p "$cache.tmp" && cp "$wheel" "$cache.tmp/" && rm -rf "$cache" && mv "$cache.tmp" "$cache"
echo "Built $wheel (cached in $cache)"
