#!/bin/sh
# The build without oneDNN (`make DNNL=0 BUILD=build-nodnnl`; `make test-nodnnl` builds it and runs this): no
# libdnnl linked; the conv tests (reference, recur's kernels on blocked activations, the selector), the plan
# and PyTorch parity tests pass there; tests/configs/tiny.cfg trains a few steps and evaluates; with the
# oneDNN build's directory as second argument, both binaries evaluate that checkpoint to logits within 1e-4.
# Usage: tests/test_nodnnl.sh NODNNL_BUILD [BUILD]. Exits non-zero on the first failure.
. tests/lib.sh
O=${2:-}
C=tests/configs/tiny.cfg

ldd "$R" >"$T/ldd" || fail "ldd $R"
if grep -q dnnl "$T/ldd"; then fail "$R links oneDNN"; fi; ok
for t in test_conv test_plan test_parity; do
    "$B/tests/$t" >"$T/$t.out" 2>&1 || { cat "$T/$t.out"; fail "$t without oneDNN"; }; ok
done
"$R" train $C --out "$T/run" --steps 4 --quiet --limit 256 --test-limit 128 2>"$T/train.err" ||
    { cat "$T/train.err"; fail "train without oneDNN"; }; ok
"$R" eval "$T/run" --limit 128 --save-logits "$T/a.npy" >"$T/eval.txt" || fail "eval without oneDNN"
grep -Eq "^ +3 +[0-9.]+%" "$T/eval.txt" || { cat "$T/eval.txt"; fail "eval: no accuracy of readout 3"; }; ok
if [ -n "$O" ]; then
    "$O/recur" eval "$T/run" --limit 128 --save-logits "$T/b.npy" >/dev/null || fail "eval with $O/recur"
    /usr/bin/python3 - "$T/a.npy" "$T/b.npy" <<'PY' || fail "logits without and with oneDNN differ"
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape == (128, 3, 10), (a.shape, b.shape)
err = float(np.abs(a - b).max())
assert np.isfinite(a).all() and err <= 1e-4 * max(1.0, float(np.abs(b).max())), err
PY
    ok
fi
echo "test_nodnnl.sh: $pass checks passed ($B)"
