#!/bin/sh
# Trainer tests: a version-1 checkpoint (tests/fixtures/ckpt_v1, written by the code before format 2) resumes
# to the run that code finished (train.csv, position, rng streams, params), and a step-dependent loss
# schedule (model.loss = curriculum) resumed across an epoch boundary ends byte-identical.
# Usage: tests/test_trainer.sh BUILD_DIR. Exits non-zero on the first failure.
. tests/lib.sh
F=tests/fixtures/ckpt_v1

# version 1: resume after step 4 of epoch 2 with the epoch sums from its reserved fields
mkdir -p "$T/v1"
cp "$F/config.cfg" "$F/model.ckpt" "$F/train.csv" "$T/v1/"
"$R" train --resume "$T/v1" --quiet || fail "resume from a version-1 checkpoint"
/usr/bin/python3 - "$T/v1/train.csv" "$F/final.csv" "$T/v1/model.ckpt" "$F/final.ckpt" <<'PY' || fail "version-1 continuation differs"
import struct, sys
import numpy as np
def rows(p):  # without epoch_seconds, images_per_s
    return [r[:5] + r[7:] for r in (l.strip().split(",") for l in open(p))]
got, want = rows(sys.argv[1]), rows(sys.argv[2])
assert got[0] == want[0] and len(got) == len(want) == 3, (got, want)
for g, w in zip(got[1:], want[1:]):
    assert g[:3] == w[:3], (g, w)  # epoch, global step, lr
    assert abs(float(g[3]) - float(w[3])) < 2e-5, ("train_loss (from the restored epoch sums)", g, w)
    assert abs(float(g[4]) - float(w[4])) < 1.0 / 256 + 1e-9, ("train_acc", g, w)
    assert all(abs(float(a) - float(b)) < 0.0151 for a, b in zip(g[5:], w[5:])), ("test accuracy", g, w)
def ckpt(p):  # (version, meta without best_acc, params as one float32 array)
    b = open(p, "rb").read()
    L = struct.unpack_from("<I", b, 12)[0]; o = 16 + L
    meta = b[o:o + 104] + b[o + 112:o + 176]; o += 176
    vals = []
    P = struct.unpack_from("<I", b, o)[0]; o += 4
    for _ in range(P):
        n = struct.unpack_from("<I", b, o)[0]; o += 4 + n
        kind, nd = struct.unpack_from("<II", b, o); o += 8
        numel = int(np.prod(struct.unpack_from("<%dI" % nd, b, o))); o += 4 * nd
        k = numel * (1 if kind == 2 else 3)
        vals.append(np.frombuffer(b, "<f4", k, o)); o += 4 * k
    assert o == len(b) - 4
    return struct.unpack_from("<I", b, 8)[0], meta, np.concatenate(vals), b
(vg, mg, pg, bg), (vw, mw, pw, bw) = ckpt(sys.argv[3]), ckpt(sys.argv[4])
assert (vg, vw) == (2, 1), (vg, vw)
assert mg == mw, "position, rng streams or epoch sums differ"
assert pg.shape == pw.shape and np.allclose(pg, pw, rtol=1e-3, atol=1e-5), float(np.abs(pg - pw).max())
same = got == want and bg[12:-4] == bw[12:-4]
print("  version-1 resume:", "bit-identical" if same else "within tolerance", "(train_loss %s)" % got[2][3])
PY
ok

# model.loss = curriculum: the weights follow the global step, so a run stopped after step 6 (4 steps per
# epoch) and resumed ends byte-identical to the uninterrupted one; its first step is loss = every's, its
# second is not
C="tests/configs/tiny.cfg --limit 256 --test-limit 200 --quiet"
"$R" train $C --set model.loss=curriculum --out "$T/cu" --log-losses "$T/cu.log" || fail "train loss = curriculum"
"$R" train $C --set model.loss=curriculum --out "$T/cu2" --steps 6 || fail "train loss = curriculum, first part"
"$R" train --resume "$T/cu2" --quiet || fail "loss = curriculum, resumed"
cmp "$T/cu/model.ckpt" "$T/cu2/model.ckpt" || fail "loss = curriculum: resumed run differs"
"$R" train $C --out "$T/ev" --steps 2 --log-losses "$T/ev.log" || fail "train loss = every"
[ "$(sed -n 1p "$T/cu.log")" = "$(sed -n 1p "$T/ev.log")" ] || fail "curriculum's first step is not loss = every's"
[ "$(sed -n 2p "$T/cu.log")" != "$(sed -n 2p "$T/ev.log")" ] || fail "curriculum's second step is loss = every's"
ok

echo "test_trainer: $pass checks passed"
