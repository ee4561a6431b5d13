#!/bin/sh
# Trainer tests: a version-1 checkpoint (tests/fixtures/ckpt_v1, written by the code before format 2) resumes
# to the run that code finished (its train.csv row and the final model's logits), and a step-dependent
# loss schedule (model.loss = curriculum) resumed across an epoch boundary ends byte-identical.
# Usage: tests/test_trainer.sh BUILD_DIR. Exits non-zero on the first failure.
. tests/lib.sh
F=tests/fixtures/ckpt_v1

# version 1: resume after step 4 of epoch 2 with the epoch sums from its reserved fields
mkdir -p "$T/v1"
cp "$F/config.cfg" "$F/model.ckpt" "$F/train.csv" "$T/v1/"
"$R" train --resume "$T/v1" --quiet || fail "resume from a version-1 checkpoint"
"$R" eval "$T/v1" --limit 200 --save-logits "$T/v1.npy" >/dev/null || fail "eval the resumed run"
"$R" eval "$F/final.ckpt" --limit 200 --save-logits "$T/final.npy" >/dev/null || fail "eval the fixture's final checkpoint"
/usr/bin/python3 - "$T/v1/train.csv" "$F/final.csv" "$T/v1.npy" "$T/final.npy" <<'PY' || fail "version-1 continuation differs"
import sys
import numpy as np
rows = [[l.strip().split(",") for l in open(p)] for p in sys.argv[1:3]]
got, want = rows
assert got[0] == want[0] and len(got) == len(want) == 3, (got, want)
got, want = [[r[:5] + r[7:] for r in rows] for rows in (got, want)]  # without epoch_seconds, images_per_s
for g, w in zip(got[1:], want[1:]):
    assert g[:3] == w[:3], (g, w)  # epoch, global step, lr
    assert abs(float(g[3]) - float(w[3])) < 2e-5, ("train_loss (from the restored epoch sums)", g, w)
    assert abs(float(g[4]) - float(w[4])) < 1.0 / 256 + 1e-9, ("train_acc", g, w)
    assert all(abs(float(a) - float(b)) < 0.0151 for a, b in zip(g[5:], w[5:])), ("test accuracy", g, w)
a, b = np.load(sys.argv[3]), np.load(sys.argv[4])
assert a.shape == b.shape and np.allclose(a, b, rtol=1e-3, atol=1e-4), float(np.abs(a - b).max())
print("  version-1 resume:", "bit-identical" if got == want and a.tobytes() == b.tobytes() else "within tolerance",
      "(train_loss %s)" % got[2][3])
PY
ok

echo "test_trainer: $pass checks passed"
