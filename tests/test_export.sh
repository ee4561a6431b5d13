#!/bin/sh
# Export tests: for every config in configs/ (and variants covering norm none/batch, per-iteration heads,
# untied lockstep, kernels 1 and 5, stride 3, bottomup every with lateral off, area groups, GRU without norm, more test-time
# iterations) train two steps, `recur export` to safetensors and npz, `recur eval --save-logits`, then
# tests/check_export.py (the .venv python of scripts/pyenv.sh) checks both files against each other and
# python/recur_torch.py's logits against recur's. Then the error paths: bad --format, an --out
# directory that does not exist, a full disk (the tmp file is a link to /dev/full) leaving the existing
# file byte for byte, a read-only directory. Usage: tests/test_export.sh BUILD_DIR.
. tests/lib.sh
export OMP_WAIT_POLICY=passive
PY=$(sh scripts/pyenv.sh) || fail "scripts/pyenv.sh could not make the Python environment"
N=200
# a small copy of Fashion-MNIST (gzip IDX: 1024 training, N test images) keeps loading it cheap
"$PY" - "$T/fm" $N <<'PY' || fail "making the small Fashion-MNIST copy"
import gzip, os, struct, sys
src = os.environ.get("RECUR_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
d, ntest = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
for split, n in (("train", 1024), ("t10k", ntest)):
    with gzip.open("%s/%s-images-idx3-ubyte.gz" % (src, split)) as f:
        im = f.read(16 + n * 784)
    with gzip.open("%s/%s-labels-idx1-ubyte.gz" % (src, split)) as f:
        lb = f.read(8 + n)
    with gzip.open("%s/%s-images-idx3-ubyte.gz" % (d, split), "wb", compresslevel=1) as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + im[16:])
    with gzip.open("%s/%s-labels-idx1-ubyte.gz" % (d, split), "wb", compresslevel=1) as f:
        f.write(struct.pack(">II", 0x801, n) + lb[8:])
PY
export RECUR_FASHION_MNIST_DIR="$T/fm" # tests/check_export.py reads its test images

# run NAME CONFIG [--set ...]: train 2 steps, export both formats, save recur eval's logits
run() {
    name=$1; cfg=$2; shift 2
    D="$T/$name"
    "$R" train "$cfg" --out "$D" --steps 2 --batch 32 --threads 2 --quiet --data "fashion-mnist:$T/fm" "$@" || fail "train $name"
    "$R" export "$D" --out "$D/model.safetensors" 2>"$T/err" || { cat "$T/err"; fail "export $name safetensors"; }
    grep -q "wrote $D/model.safetensors (safetensors" "$T/err" || fail "export $name: no 'wrote' line"
    "$R" export "$D" --format npz --out "$D/model.npz" 2>/dev/null || fail "export $name npz"
    [ ! -e "$D/model.safetensors.tmp" ] && [ ! -e "$D/model.npz.tmp" ] || fail "export $name left a .tmp file"
    "$R" export "$D" --out "$T/again.npz" 2>/dev/null && cmp -s "$D/model.npz" "$T/again.npz" ||
        fail "export $name: a second npz export differs from the first"
    "$R" eval "$D" --limit $N --threads 2 --save-logits "$D/L.npy" >/dev/null || fail "eval $name"
    CASES="$CASES $D"
    ok
}
CASES=""
# the sanitizer build (make test runs this script twice) takes two zoo configs; the variants cover the rest
ZOO="configs/*.cfg"
case $B in *san*) ZOO="configs/demo.cfg configs/convlstm.cfg" ;; esac
for c in $ZOO; do run "$(basename "$c" .cfg)" "$c"; done
run v_none configs/recurrent.cfg --set model.norm=none --set model.head=per_iter --set area.V1.bottomup=every \
    --set area.V1.lateral=no --set area.V2.kernel=5
run v_batch configs/topdown.cfg --set model.norm=batch --set area.V2.tied=no --set area.V2.stride=3 \
    --set area.V1.cell=residual --set area.V4.kernel=1 --set model.head=per_iter \
    --set "model.name=$(printf 'v"b\\a\tt \303\251\342\202\254')" # quote, backslash, tab, UTF-8: JSON escaping
# area groups: grouped and depthwise(-separable) conv weights, conv2's bias on the 1x1 conv (norm = none)
run v_grouped tests/configs/grouped.cfg --set model.norm=none --set area.V2.cell=residual
run v_gru configs/gru.cfg --set model.norm=none --set area.V2.tied=no --set area.V1.bottomup=first
# more iterations at test time: steps past the trained T reuse step T's per-iteration params and head
"$R" eval "$T/demo" --limit $N --threads 2 --iterations 5 --save-logits "$T/demo/L_5.npy" >/dev/null || fail "eval --iterations 5"
"$R" eval "$T/v_none" --limit $N --threads 2 --iterations 6 --save-logits "$T/v_none/L_6.npy" >/dev/null ||
    fail "eval v_none --iterations 6"
CASES="$CASES $T/demo@5 $T/v_none@6"
# shellcheck disable=SC2086
"$PY" tests/check_export.py "$R" $CASES || fail "check_export.py"
ok

# error paths
D="$T/demo"
expect_fail "bad --format" "'bogus' is not safetensors, npz or onnx" "$R" export "$D" --format bogus --out "$T/x.st"
expect_fail "unknown extension" "missing --format" "$R" export "$D" --out "$T/x.bin"
expect_fail "missing --out" "missing --out" "$R" export "$D" --format npz
expect_fail "no such run" "$T/nope" "$R" export "$T/nope" --out "$T/x.npz"
for f in safetensors npz; do
    expect_fail "$f: --out in a missing directory" "cannot write $T/nodir/m.$f: .*No such file or directory" \
        "$R" export "$D" --out "$T/nodir/m.$f"
    [ ! -e "$T/nodir" ] || fail "$f: the missing directory was created"
    cp "$D/model.$f" "$T/keep.$f"
    ln -s /dev/full "$T/keep.$f.tmp"
    expect_fail "$f: full disk" "cannot write $T/keep.$f: No space left on device" "$R" export "$D" --out "$T/keep.$f"
    cmp -s "$D/model.$f" "$T/keep.$f" || fail "$f: full disk: the existing file changed"
    [ ! -e "$T/keep.$f.tmp" ] && [ ! -L "$T/keep.$f.tmp" ] || fail "$f: full disk: the .tmp file was left behind"
    if [ "$(id -u)" -ne 0 ]; then # root writes into read-only directories
        mkdir "$T/ro" 2>/dev/null; cp "$D/model.$f" "$T/ro/keep.$f"; chmod 555 "$T/ro"
        expect_fail "$f: read-only directory" "cannot write $T/ro/keep.$f: .*Permission denied" \
            "$R" export "$D" --out "$T/ro/keep.$f"
        cmp -s "$D/model.$f" "$T/ro/keep.$f" || fail "$f: read-only: the existing file changed"
        chmod 755 "$T/ro"
    fi
done
echo "ok export tests ($pass checks)"
