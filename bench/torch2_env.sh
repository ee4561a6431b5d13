#!/bin/sh
# torch2_env.sh — make (once) bench/.venv-torch2, a virtual environment with a current PyTorch 2.x from
# PyPI, the second anchor of bench/vs_pytorch.sh (the first is Debian's PyTorch 1.13.1). Prints the
# environment's python path. A benchmark helper, not a test. Usage: sh bench/torch2_env.sh [VENV_DIR]
#
# What it downloads (PyPI only; about 4 GB, 5.4 GB installed): the torch wheel (CPU and CUDA in one,
# about 0.9 GB) with all its dependencies: the pure-Python ones (filelock, typing-extensions, sympy,
# networkx, jinja2, fsspec, setuptools), triton, and the nvidia-* CUDA 13 runtime packages (cudnn,
# cublas, cufft, cusparse, cusparselt, nccl, nvshmem, cufile, ...), plus numpy. The CUDA packages are
# never used here, but they cannot be left out: with `pip install --no-deps torch` the import fails
# (libtorch.so is linked against the CUDA libraries; on the project's machine, which has a CUDA 13
# toolkit in /usr/local, libcufile.so.0, libcusparseLt.so.0 and libnvshmem_host.so.3 were missing).
# TORCH2_VERSION pins a version (default: the one below). torch.compile's CPU backend compiles C++ at
# run time: it needs g++ and the interpreter's headers (Python.h, Debian package python3-dev), which this script checks for and, as
# root, installs with apt-get.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$root/bench/.venv-torch2}
version=${TORCH2_VERSION:-2.15.0}
py=$venv/bin/python
base=/usr/bin/python3
inc=$("$base" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if [ ! -f "$inc/Python.h" ] || ! command -v g++ >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "torch2_env.sh: installing python3-dev g++ (torch.compile needs Python.h and a C++ compiler)" >&2
        apt-get install -y -q python3-dev g++ >&2
    else
        echo "torch2_env.sh: torch.compile needs $inc/Python.h and g++: install python3-dev and g++" >&2
        exit 1
    fi
fi
if [ ! -x "$py" ]; then
    "$base" -m venv "$venv" >&2 ||
        { echo "torch2_env.sh: cannot make a virtual environment in $venv (is python3-venv installed?)" >&2; exit 1; }
fi
if ! "$py" -c 'import torch' 2>/dev/null; then
    echo "torch2_env.sh: installing torch==$version and its dependencies (about 4 GB) into $venv" >&2
    "$py" -m pip install -q --disable-pip-version-check "torch==$version" numpy >&2 ||
        { echo "torch2_env.sh: pip install failed (is PyPI reachable?)" >&2; exit 1; }
fi
"$py" -c 'import torch; torch.zeros(1) + 1' >&2 ||
    { echo "torch2_env.sh: torch in $venv does not import/run" >&2; exit 1; }
echo "$py"
