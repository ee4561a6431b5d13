#!/bin/sh
# CLI tests of learned halting (model.halting = ponder): train tiny.cfg with it for a few steps, eval with
# --halt ponder (text and JSON: mean iterations within [1, T], accuracy in [0, 1]), and the error messages.
# Usage: tests/test_ponder.sh BUILD_DIR. Exits non-zero on the first failure.
. tests/lib.sh
C=tests/configs/tiny.cfg

"$R" info $C --set model.halting=ponder >"$T/info" || fail "info with halting = ponder"
grep -q "3 readouts with ponder halting heads" "$T/info" || fail "info does not show the halting heads"; ok
"$R" train $C --out "$T/p" --steps 6 --quiet --set model.halting=ponder --set model.ponder_beta=0.05 \
    --set train.limit=256 --set train.test_limit=128 2>"$T/train.err" || { cat "$T/train.err"; fail "train ponder"; }
grep -q "using default model.ponder_lambda = 0.2" "$T/train.err" || grep -q "ponder_lambda = 0.2" "$T/p/config.cfg" ||
    fail "ponder_lambda default not recorded"; ok
"$R" eval "$T/p" --halt ponder --limit 200 >"$T/eval.txt" || fail "eval --halt ponder"
grep -Eq "^ponder halting \(cumulative p >= 0.5\): accuracy [0-9.]+%, mean iterations [0-9.]+ of 3, mean [0-9.]+ MFLOP/image" \
    "$T/eval.txt" || { cat "$T/eval.txt"; fail "eval --halt ponder: no halting line"; }; ok
"$R" eval "$T/p" --halt ponder --exit-threshold 0.6 --limit 200 --json >"$T/eval.json" || fail "eval --halt ponder --json"
/usr/bin/python3 - "$T/eval.json" <<'PY' || fail "eval --halt ponder --json: bad values"
import json, sys
e = json.load(open(sys.argv[1]))
assert e["halt"] == "ponder" and e["images"] == 200, e
assert 0.0 <= e["halt_accuracy"] <= 1.0, e
assert 1.0 <= e["halt_mean_iterations"] <= 3.0, e
assert len(e["halt_fraction"]) == 3 and abs(sum(e["halt_fraction"]) - 1) < 1e-6, e
mean = sum((t + 1) * f for t, f in enumerate(e["halt_fraction"]))
assert abs(mean - e["halt_mean_iterations"]) < 1e-3, (mean, e)
assert e["halt_mean_flops"] > 0 and "exit_accuracy" in e, e
PY
ok
"$R" eval "$T/p" --halt sample --limit 200 --json >"$T/sample.json" || fail "eval --halt sample --json"
/usr/bin/python3 - "$T/sample.json" <<'PY' || fail "eval --halt sample --json: bad values"
import json, sys
e = json.load(open(sys.argv[1]))
assert e["halt"] == "sample" and 0.0 <= e["halt_accuracy"] <= 1.0 and 1.0 <= e["halt_mean_iterations"] <= 3.0, e
PY
"$R" eval "$T/p" --halt sample --limit 200 --batch 7 --json >"$T/sample7.json" || fail "eval --halt sample --batch 7"
/usr/bin/python3 - "$T/sample.json" "$T/sample7.json" <<'PY' || fail "--halt sample depends on the batch size"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
assert a["halt_fraction"] == b["halt_fraction"] and a["halt_accuracy"] == b["halt_accuracy"], (a, b)
PY
ok
# errors
"$R" train $C --out "$T/plain" --steps 1 --quiet --set train.limit=128 --set train.test_limit=64 2>/dev/null ||
    fail "train plain"
expect_fail "--halt on a model without halting" "trained without learned halting" "$R" eval "$T/plain" --halt ponder --limit 10
expect_fail "--halt unknown mode" "unknown mode" "$R" eval "$T/p" --halt sometimes
expect_fail "ponder_beta without halting" "need model.halting = ponder" "$R" info $C --set model.ponder_beta=0.1
expect_fail "halting unknown value" "halting" "$R" info $C --set model.halting=maybe
expect_fail "ponder_lambda out of range" "ponder_lambda" "$R" info $C --set model.halting=ponder --set model.ponder_lambda=1.5
expect_fail "halting with another loss" "leave model.loss at every" "$R" info $C --set model.halting=ponder --set model.loss=final
expect_fail "halting with one readout" "at least 2" "$R" info $C --set model.halting=ponder --set area.V1.iterations=1
expect_fail "halting with a dense readout" "readout = pool" "$R" info $C --set model.halting=ponder --set model.readout=dense --set area.V1.stride=1
echo "all ponder CLI tests passed ($pass checks)"
