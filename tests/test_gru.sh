#!/bin/sh
# CLI tests of cell = gru: info on configs/gru.cfg, the config error for a GRU without lateral input,
# a short train + eval of tiny.cfg with a GRU area (more iterations at test time, the stepwise evaluator
# agreeing with the full unroll), and the progressive loss, which continues the unroll from a GRU state.
# Usage: tests/test_gru.sh BUILD_DIR. Exits non-zero on the first failure.
. tests/lib.sh
C=tests/configs/tiny.cfg
G="--set area.V1.cell=gru --set model.norm=batch --set train.limit=128 --set train.test_limit=64"

"$R" info configs/gru.cfg >"$T/info" || fail "info configs/gru.cfg"
grep -Eq "^V1 +gru +yes" "$T/info" || { cat "$T/info"; fail "info does not show the gru cell"; }; ok
printf '[area V1]\nchannels = 4\niterations = 2\ntied = yes\ncell = gru\nlateral = no\n' >"$T/nolat.cfg"
expect_fail "gru without lateral" "area V1: cell = gru needs lateral = yes" "$R" info "$T/nolat.cfg"

"$R" train $C --out "$T/g" --epochs 1 --quiet $G 2>"$T/train.err" || { cat "$T/train.err"; fail "train gru"; }
grep -q "cell = gru" "$T/g/config.cfg" || fail "the run's config has no cell = gru"; ok
"$R" eval "$T/g" --limit 100 --json >"$T/eval.json" || fail "eval gru"
"$R" eval "$T/g" --limit 100 --iterations 5 --json >"$T/eval5.json" || fail "eval gru --iterations 5"
"$R" eval "$T/g" --limit 100 --iterations 5 --stepwise --json >"$T/step5.json" || fail "eval gru --stepwise"
/usr/bin/python3 - "$T/eval.json" "$T/eval5.json" "$T/step5.json" <<'PY' || fail "gru eval: bad values"
import json, sys
e, e5, s5 = (json.load(open(f)) for f in sys.argv[1:4])
acc, acc5 = e["accuracy"], e5["accuracy"]
assert len(acc) == 3 and len(acc5) == 5, (e, e5)
assert all(0.0 <= a <= 1.0 for a in acc + acc5), (acc, acc5)
assert acc5[:3] == acc, (acc, acc5)      # the first 3 steps are the trained unroll's
assert s5["accuracy"] == acc5, (s5, e5)  # one step at a time from h(t-1): the same predictions
PY
ok
"$R" train $C --out "$T/p" --steps 4 --quiet $G --set model.loss=progressive \
    2>"$T/prog.err" || { cat "$T/prog.err"; fail "train gru with loss = progressive"; }
[ -f "$T/p/model.ckpt" ] || fail "progressive gru run: no checkpoint"; ok
echo "test_gru.sh: $pass checks passed"
