#!/bin/sh
# Make (once) the Python environment that the export tests and benchmarks use: a virtual environment
# in .venv over Debian's python3 (so it sees python3-torch and python3-numpy), plus the PyPI packages
# that Debian does not ship: safetensors, onnx, onnxruntime. Prints the environment's python path.
# Usage: sh scripts/pyenv.sh [VENV_DIR]   (default: .venv at the repository root)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$root/.venv}
py=$venv/bin/python
want="safetensors onnx onnxruntime"
if [ ! -x "$py" ]; then
    /usr/bin/python3 -m venv --system-site-packages "$venv" >&2 ||
        { echo "recur: cannot make a virtual environment in $venv (is python3-venv installed?)" >&2; exit 1; }
fi
missing=""
for m in $want; do "$py" -c "import $m" 2>/dev/null || missing="$missing $m"; done
if [ -n "$missing" ]; then
    echo "recur: installing into $venv from PyPI:$missing" >&2
    # numpy stays Debian's (torch 1.13 is built against it)
    "$py" -m pip install -q --disable-pip-version-check $missing "numpy==$("$py" -c 'import numpy; print(numpy.__version__)')" >&2 ||
        { echo "recur: pip install of$missing failed (is PyPI reachable?)" >&2; exit 1; }
fi
echo "$py"
