#!/bin/sh
# ONNX export tests: every config of the zoo and the test configs that cover the other keys (norm = batch
# and none, head = per_iter, residual, ConvLSTM, top-down upsampling, area groups, GRU) is trained for two steps, exported
# with `recur export --format onnx`, and tests/check_onnx.py runs the model in onnxruntime on the first
# 200 test images and compares every readout with `recur eval --save-logits` (also with --iterations T
# beyond the trained T), and the same for test_onnx_ops's hand-built graph of the ops no config emits.
# Also: a refused export leaves an existing file as it was.
# Usage: tests/test_onnx.sh BUILD_DIR. Needs the .venv of scripts/pyenv.sh (onnx, onnxruntime).
set -u
B=${1:-build}
R="$B/recur"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export OMP_WAIT_POLICY=passive
PY=$(sh scripts/pyenv.sh) || fail "scripts/pyenv.sh (onnx and onnxruntime from PyPI)"
N=200

# a small copy of Fashion-MNIST (2048 training, N test images): quick to load, same first test images
/usr/bin/python3 - "$T/fm" "$N" <<'PY' || fail "making the small Fashion-MNIST copy"
import gzip, os, struct, sys
src = os.environ.get("RECUR_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
d, nt = sys.argv[1], int(sys.argv[2]); os.makedirs(d)
for split, n in (("train", 2048), ("t10k", nt)):
    im = gzip.open(f"{src}/{split}-images-idx3-ubyte.gz").read()
    lb = gzip.open(f"{src}/{split}-labels-idx1-ubyte.gz").read()
    gzip.open(f"{d}/{split}-images-idx3-ubyte.gz", "wb").write(struct.pack(">IIII", 0x803, n, 28, 28) + im[16:16 + n * 784])
    gzip.open(f"{d}/{split}-labels-idx1-ubyte.gz", "wb").write(struct.pack(">II", 0x801, n) + lb[8:8 + n])
PY
D="fashion-mnist:$T/fm"
CHECKS=""

# run NAME CONFIG [ITERATIONS...]: train briefly, export, save recur's logits (also at each ITERATIONS)
run() {
    name=$1; cfg=$2; shift 2
    "$R" train "$cfg" --data "$D" --limit 256 --batch 32 --steps 2 --threads 2 --quiet --out "$T/$name" \
        >"$T/log" 2>&1 || { cat "$T/log"; fail "train $name"; }
    for it in "" "$@"; do
        tag=$name${it:+.T$it}
        "$R" export "$T/$name" --format onnx --out "$T/$tag.onnx" ${it:+--iterations $it} >"$T/log" 2>&1 ||
            { cat "$T/log"; fail "export $tag"; }
        "$R" eval "$T/$name" --limit $N --threads 2 --save-logits "$T/$tag.npy" ${it:+--iterations $it} \
            >"$T/log" 2>&1 || { cat "$T/log"; fail "eval $tag"; }
        CHECKS="$CHECKS $tag $T/$tag.onnx $T/$tag.npy"
    done
}

# the sanitizer build (make test runs this script twice) takes the zoo's ConvLSTM, top-down and untied nets; with the
# test configs below they emit every op the zoo does
ZOO="configs/*.cfg"
case $B in *san*) ZOO="configs/convlstm.cfg configs/topdown.cfg configs/feedforward.cfg" ;; esac
for c in $ZOO; do run "$(basename "$c" .cfg)" "$c"; done
run tiny tests/configs/tiny.cfg 5
run onnx_batch tests/configs/onnx_batch.cfg 4
run onnx_nonorm tests/configs/onnx_nonorm.cfg 5
run grouped tests/configs/grouped.cfg   # Conv with group: depthwise(-separable) and grouped
run onnx_gru tests/configs/onnx_gru.cfg 5
# the ops no config emits (pooling, concat, ...) in a hand-built graph (tests/test_onnx_ops.c)
"$B/tests/test_onnx_ops" "$T" "$D" || fail "test_onnx_ops fixture"
CHECKS="$CHECKS ops $T/ops.onnx $T/ops.npy"

# shellcheck disable=SC2086
"$PY" tests/check_onnx.py "$T/fm/t10k-images-idx3-ubyte.gz" $CHECKS || fail "onnxruntime disagrees with recur eval"

# --iterations on an untied area is refused; a failed export leaves an existing file untouched
echo "keep" >"$T/keep.onnx"
if "$R" export "$T/feedforward" --format onnx --iterations 6 --out "$T/keep.onnx" 2>"$T/err"; then
    fail "export --iterations on an untied model succeeded"
fi
grep -q "untied" "$T/err" || { cat "$T/err"; fail "export --iterations untied: unclear message"; }
[ "$(cat "$T/keep.onnx")" = keep ] || fail "a failed export changed the existing file"
[ ! -e "$T/keep.onnx.tmp" ] || fail "a failed export left a .tmp file"
echo "test_onnx: all passed"
