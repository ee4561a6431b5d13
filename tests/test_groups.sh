#!/bin/sh
# CLI tests of grouped and depthwise convolutions (area keys groups, pointwise; docs/CONFIG.md): recur info's
# params and FLOPs of tests/configs/grouped.cfg against hand counts, one short epoch of training (--limit)
# and eval of the run (its checkpoint holds the grouped shapes), and the config errors, which name the
# file, line and key. Usage: tests/test_groups.sh BUILD_DIR. Exits non-zero on the first failure.
. tests/lib.sh
export OMP_WAIT_POLICY=passive
C=tests/configs/grouped.cfg
json() { /usr/bin/python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# V1 (16 channels, tied residual, depthwise-separable, 3 steps of 14x14, batch norm per step): bottom-up 16*9,
# lateral and conv2 each 16*9 + 16*16, 3 x 2 norms of 2*16 = 1136. V2 (24 channels, untied, 2 steps, lateral
# in 4 groups, no 1x1): bottom-up 2 x 24*16*9, lateral 24*6*9, 2 norms of 2*24 = 8304. Head 24*10 + 10.
"$R" info $C --json >"$T/g.json" || fail "info grouped"
[ "$(json '[a["params"] for a in d["areas"]] + [d["params"]]' <"$T/g.json")" = "[1136, 8304, 9690]" ] ||
    { cat "$T/g.json"; fail "grouped params"; }; ok
# the same area dense: each of its 5 state convs (lateral at steps 2, 3; conv2 at 1, 2, 3) costs 2*16*16*9*196
# FLOPs instead of 2*(16*9 + 16*16)*196, and the effective depth stays
"$R" info $C --json --set area.V1.groups=1 >"$T/d.json" || fail "info dense"
dv1=$(json 'd["areas"][0]["flops"]' <"$T/d.json"); gv1=$(json 'd["areas"][0]["flops"]' <"$T/g.json")
[ $((dv1 - gv1)) -eq $((5 * 2 * (16 * 16 * 9 - 16 * 9 - 16 * 16) * 196)) ] || fail "FLOPs saved: $dv1 - $gv1"; ok
[ "$(json 'd["effective_depth"]' <"$T/d.json")" = "$(json 'd["effective_depth"]' <"$T/g.json")" ] ||
    fail "the 1x1 conv changed the effective depth"; ok

# one epoch on 512 images (the loss falls below chance's ln 10 = 2.303), then eval of its checkpoint
"$R" train $C --out "$T/run" --limit 512 --test-limit 256 --quiet || fail "train grouped"
grep -q "^pointwise = yes" "$T/run/config.cfg" || fail "the applied pointwise default is not in the effective config"
/usr/bin/python3 - "$T/run/train.csv" <<'PY' || fail "train grouped: the loss did not fall"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 1 and float(rows[0]["train_loss"]) < 2.29, rows
PY
ok
"$R" eval "$T/run" --limit 256 --json >"$T/eval.json" || fail "eval grouped"
[ "$(json 'len([a for a in d["accuracy"] if 0 <= a <= 1])' <"$T/eval.json")" = 2 ] ||
    { cat "$T/eval.json"; fail "eval grouped: accuracies"; }; ok

# errors: file:line and the key
sed 's/^groups = depthwise/groups = 5/' $C >"$T/bad.cfg"
line=$(grep -n "^groups = 5" "$T/bad.cfg" | cut -d: -f1)
expect_fail "groups not dividing channels" "bad.cfg:$line: groups = 5 in \[area V1\] does not divide channels = 16" \
    "$R" info "$T/bad.cfg"
expect_fail "groups not a number" "groups = 'two' in \[area V1\] must be a number of groups" "$R" info $C --set area.V1.groups=two
expect_fail "groups 0" "groups = 0 is out of range" "$R" info $C --set area.V1.groups=0
expect_fail "pointwise without groups" "grouped.cfg:[0-9]+: pointwise in \[area V2\] .* needs groups > 1" \
    "$R" info $C --set area.V2.groups=1
expect_fail "groups with nothing to group" "groups = 4 in \[area V2\] applies to the lateral" \
    "$R" info $C --set area.V2.lateral=no
echo "all groups CLI tests passed ($pass checks)"
