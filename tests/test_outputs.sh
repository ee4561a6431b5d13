#!/bin/sh
# What leaves recur per image: eval --save-predictions against --save-logits (argmax, softmax probability),
# recur features (shapes, pooled = mean of full, labels and indices, the fast plan against the reference
# ops), and npy: datasets (Fashion-MNIST rewritten as uint8 NHWC / float32 NCHW arrays gives the same
# logits as the IDX files; a small npy dataset trains and evaluates; bad arrays are refused naming the file).
# Usage: tests/test_outputs.sh BUILD_DIR. Seconds; exits non-zero on the first failure.
. tests/lib.sh
PY=/usr/bin/python3

"$R" train tests/configs/tiny.cfg --out "$T/run" --steps 8 --quiet || fail "train tiny"

# --save-predictions against --save-logits (300 images in batches of 128: a partial last batch)
"$R" eval "$T/run" --limit 300 --batch 128 --save-logits "$T/logits.npy" --save-predictions "$T/pred.csv" >/dev/null ||
    fail "eval --save-logits --save-predictions"
[ ! -e "$T/pred.csv.tmp" ] && [ ! -e "$T/logits.npy.tmp" ] || fail "temporary files left behind"
$PY - "$T" <<'PY' || fail "predictions vs logits"
import sys, numpy as np
t = sys.argv[1]
lg = np.load(f"{t}/logits.npy")
lines = open(f"{t}/pred.csv").read().splitlines()
assert lines[0] == "index,label,pred_1,prob_1,pred_2,prob_2,pred_3,prob_3", lines[0]
p = np.array([[float(v) for v in l.split(",")] for l in lines[1:]])
assert lg.shape == (300, 3, 10) and p.shape == (300, 8), (lg.shape, p.shape)
assert (p[:, 0] == np.arange(300)).all()
e = np.exp(lg - lg.max(axis=2, keepdims=True))
sm = e / e.sum(axis=2, keepdims=True)
for t in range(3):
    assert (p[:, 2 + 2 * t] == lg[:, t].argmax(axis=1)).all(), t
    assert np.abs(p[:, 3 + 2 * t] - sm[:, t].max(axis=1)).max() < 2e-6, t
PY
ok
# a failed eval leaves neither the file nor its temporary
expect_fail "eval with a bad dataset" "unknown kind" "$R" eval "$T/run" --data nonsense:x --save-predictions "$T/bad.csv"
[ ! -e "$T/bad.csv" ] && [ ! -e "$T/bad.csv.tmp" ] || fail "a failed eval left a predictions file"

# features: shapes, pooled = mean over H, W of full, labels as eval's, indices 0..N-1; the same with the
# plain-C reference ops (no fusion, no blocked layouts, no eval pipeline)
"$R" features "$T/run" --area all --full --limit 300 --batch 128 --out "$T/feat" >"$T/feat.txt" || fail "features"
grep -q "V1_pooled.npy" "$T/feat.txt" || fail "features output"
RECUR_REFERENCE=1 "$R" features "$T/run" --area V1 --full --limit 300 --batch 100 --out "$T/featref" >/dev/null ||
    fail "features with the reference ops"
$PY - "$T" <<'PY' || fail "features content"
import sys, numpy as np
t = sys.argv[1]
po, fu = np.load(f"{t}/feat/V1_pooled.npy"), np.load(f"{t}/feat/V1_full.npy")
lab, idx = np.load(f"{t}/feat/labels.npy"), np.load(f"{t}/feat/index.npy")
assert po.shape == (300, 3, 16) and fu.shape == (300, 3, 16, 14, 14), (po.shape, fu.shape)
assert po.dtype == np.float32 and lab.dtype == np.int64 and idx.dtype == np.int64
assert np.abs(po - fu.mean(axis=(3, 4))).max() < 1e-5
assert (idx == np.arange(300)).all()
pred = np.loadtxt(f"{t}/pred.csv", delimiter=",", skiprows=1)
assert (lab == pred[:, 1]).all()
assert (fu >= 0).all() and fu.std() > 0  # states after a relu, not all equal
ref = np.load(f"{t}/featref/V1_full.npy")
err = np.abs(ref - fu).max() / np.abs(ref).max()
assert err < 1e-4, err
PY
ok
expect_fail "features: unknown area" "no area 'V7'.*its areas: V1" "$R" features "$T/run" --area V7 --out "$T/f2"
expect_fail "features: no --out" "missing --out" "$R" features "$T/run" --area V1
[ ! -e "$T/f2" ] || fail "features with an unknown area made its directory"

# npy datasets: Fashion-MNIST rewritten as arrays (training images uint8 NHWC, test images float32 NCHW in
# 0..1, labels int64 / int32) gives the same logits as the IDX files
FM=${RECUR_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
$PY - "$FM" "$T" <<'PY' || fail "writing Fashion-MNIST as .npy"
import gzip, os, sys, numpy as np
d, t = sys.argv[1], sys.argv[2]
def idx(name):
    for p in (f"{d}/{name}.gz", f"{d}/{name}"):
        if os.path.exists(p):
            b = open(p, "rb").read()
            return np.frombuffer(gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b, np.uint8)
    raise SystemExit(f"no {name} in {d}")
x, y = idx("train-images-idx3-ubyte")[16:], idx("train-labels-idx1-ubyte")[8:]
xt, yt = idx("t10k-images-idx3-ubyte")[16:], idx("t10k-labels-idx1-ubyte")[8:]
np.save(f"{t}/x.npy", x.reshape(-1, 28, 28, 1))
np.save(f"{t}/y.npy", y.astype(np.int64))
np.save(f"{t}/xt.npy", (xt.reshape(-1, 1, 28, 28)[:500] / np.float32(255)).astype(np.float32))
np.save(f"{t}/yt.npy", yt[:500].astype(np.int32))
PY
NPY="npy:$T/x.npy,$T/y.npy,$T/xt.npy,$T/yt.npy"
"$R" eval "$T/run" --limit 200 --save-logits "$T/l_idx.npy" >/dev/null || fail "eval on fashion-mnist"
"$R" eval "$T/run" --limit 200 --save-logits "$T/l_npy.npy" --data "$NPY" >/dev/null || fail "eval on $NPY"
cmp -s "$T/l_idx.npy" "$T/l_npy.npy" || fail "logits on the .npy copy of Fashion-MNIST differ from the IDX files'"
ok
# a small npy dataset (uint8 NHW training images, uint8 NCHW test images) trains, evaluates, gives features
$PY - "$T" <<'PY' || fail "writing a small npy dataset"
import sys, numpy as np
t = sys.argv[1]; r = np.random.RandomState(3)
y = np.arange(128) % 4
x = (y[:, None, None] * 60 + r.randint(0, 20, (128, 28, 28))).astype(np.uint8)
np.save(f"{t}/sx.npy", x); np.save(f"{t}/sy.npy", y.astype(np.uint8))
np.save(f"{t}/stx.npy", x[:40, None]); np.save(f"{t}/sty.npy", y[:40].astype(np.int64))
PY
S="npy:$T/sx.npy,$T/sy.npy,$T/stx.npy,$T/sty.npy"
"$R" train tests/configs/tiny.cfg --out "$T/srun" --data "$S" --set train.limit=0 --set train.epochs=4 --set train.batch=16 --quiet ||
    fail "train on a small npy dataset"
"$R" eval "$T/srun" --json >"$T/s.json" || fail "eval on a small npy dataset"
$PY -c "
import json,sys; d=json.load(open(sys.argv[1])); assert d['images']==40 and d['accuracy'][-1] > 0.5, d" "$T/s.json" ||
    fail "eval on the small npy dataset: $(cat "$T/s.json")"
"$R" features "$T/srun" --area V1 --split train --limit 50 --out "$T/sfeat" >/dev/null || fail "features --split train"
$PY -c "
import numpy as np,sys; a=np.load(sys.argv[1]); assert a.shape==(50,3,16), a.shape" "$T/sfeat/V1_pooled.npy" || fail "features --split train shape"
ok

# bad arrays: each refused with a message naming the file
$PY - "$T" <<'PY' || fail "writing bad arrays"
import sys, numpy as np
t = sys.argv[1]
np.save(f"{t}/fort.npy", np.asfortranarray(np.zeros((4, 1, 28, 28), np.float32)))
np.save(f"{t}/hot.npy", np.full((4, 1, 28, 28), 1.5, np.float32))
np.save(f"{t}/y3.npy", np.zeros(3, np.int64))
np.save(f"{t}/f64.npy", np.zeros((4, 28, 28)))
np.save(f"{t}/neg.npy", np.array([0, -2, 1, 1], np.int64))
open(f"{t}/junk.npy", "wb").write(b"not an array at all")
np.save(f"{t}/ok.npy", np.zeros((4, 28, 28), np.uint8)); np.save(f"{t}/y4.npy", np.zeros(4, np.int64))
PY
bad() { expect_fail "$1" "$2" "$R" eval "$T/run" --data "npy:$T/x.npy,$T/y.npy,$T/$3,$T/$4"; }
bad "Fortran order" "fort.npy.*Fortran order" fort.npy y4.npy
bad "float outside 0..1" "hot.npy.*outside \[0, 1\]" hot.npy y4.npy
bad "count mismatch" "ok.npy has 4 images but .*y3.npy has 3 labels" ok.npy y3.npy
bad "float64 images" "f64.npy.*uint8.*float32" f64.npy y4.npy
bad "negative label" "neg.npy: label -2 at index 1" ok.npy neg.npy
bad "not an array" "junk.npy: not a .npy file" junk.npy y4.npy
expect_fail "no test arrays" "no test arrays" "$R" eval "$T/run" --data "npy:$T/x.npy,$T/y.npy"

echo "output tests passed ($pass checks)"
