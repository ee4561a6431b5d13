#!/bin/sh
# CLI tests: help, info, config errors, train a few steps, resume, eval (incl. more iterations at test
# time and early exit), refusal to resume with a changed config, and data errors.
# Usage: tests/run_cli.sh BUILD_DIR. Every check must pass; the script exits non-zero on the first failure.
. tests/lib.sh

# help
"$R" --help | grep -q "usage: recur" || fail "recur --help"; ok
for c in train eval info bench; do "$R" $c --help | grep -q "usage: recur $c" || fail "recur $c --help"; ok; done
expect_fail "unknown command" "unknown command 'frobnicate'" "$R" frobnicate
expect_fail "unknown option" "unknown option '--bogus'" "$R" train tests/configs/tiny.cfg --bogus

# info on the whole zoo, text and JSON
for c in configs/*.cfg; do
    "$R" info "$c" >"$T/info" || fail "info $c"
    grep -q "effective depth" "$T/info" || fail "info $c: no effective depth"
    "$R" info "$c" --json >"$T/info.json" || fail "info --json $c"
    /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['params']>0 and d['flops']>0 and d['effective_depth']>0" "$T/info.json" || fail "info --json $c keys"
    ok
done
# tying: the feedforward twin has the same depth and FLOPs and more params
/usr/bin/python3 - "$R" <<'PY' || fail "recurrent vs feedforward info"
import json, subprocess, sys
r = json.loads(subprocess.check_output([sys.argv[1], "info", "configs/recurrent.cfg", "--json"]))
f = json.loads(subprocess.check_output([sys.argv[1], "info", "configs/feedforward.cfg", "--json"]))
assert r["effective_depth"] == f["effective_depth"], (r, f)
assert r["flops"] == f["flops"]
assert f["params"] > 2.5 * r["params"]
PY
ok

# config errors name file, line and key
printf '[model]\nclasses = 10\n[area V1]\nchanels = 8\niterations = 2\ntied = yes\n' >"$T/typo.cfg"
expect_fail "unknown key" "typo.cfg:3.*chanels|typo.cfg:4.*chanels" "$R" info "$T/typo.cfg"
printf '[model]\nclasses = 10\n[area V1]\nchannels = 8\niterations = 2\n' >"$T/missing.cfg"
expect_fail "missing key" "missing.cfg:3.*tied" "$R" info "$T/missing.cfg"
printf '[model]\nclasses = 10\n[area V1]\nchannels = 8\niterations = 2\ntied = maybe\n' >"$T/bad.cfg"
expect_fail "bad value" "bad.cfg:6.*tied" "$R" info "$T/bad.cfg"
printf '[modle]\n[area V1]\nchannels = 8\niterations = 2\ntied = yes\n' >"$T/sec.cfg"
expect_fail "unknown section" "sec.cfg:1.*modle" "$R" info "$T/sec.cfg"
expect_fail "missing config" "nonexistent.cfg" "$R" info "$T/nonexistent.cfg"
expect_fail "bad --set" "channels" "$R" info tests/configs/tiny.cfg --set area.V1.channels=0

# train a few steps, stop, resume to the end; files and CSV
"$R" train tests/configs/tiny.cfg --out "$T/run" --steps 5 --quiet || fail "train --steps 5"
[ -f "$T/run/config.cfg" ] && [ -f "$T/run/model.ckpt" ] || fail "run dir files after --steps"
expect_fail "no overwrite" "already holds a run" "$R" train tests/configs/tiny.cfg --out "$T/run"
"$R" train --resume "$T/run" --quiet || fail "resume"
[ "$(grep -c . "$T/run/train.csv")" -eq 3 ] || { cat "$T/run/train.csv"; fail "train.csv should have a header and 2 epochs"; }
head -1 "$T/run/train.csv" | grep -q "test_acc_1,test_acc_2,test_acc_3,test_coarse_acc_1" || fail "train.csv header"
ok
# resume of a finished run is a no-op
"$R" train --resume "$T/run" --quiet || fail "resume finished run"; ok
# uninterrupted run reaches the same checkpoint bytes
"$R" train tests/configs/tiny.cfg --out "$T/run2" --quiet || fail "uninterrupted run"
cmp "$T/run/model.ckpt" "$T/run2/model.ckpt" || fail "resumed checkpoint differs from the uninterrupted run's"
ok

# eval: text, JSON, more iterations than trained, early exit
"$R" eval "$T/run" >"$T/eval.txt" || fail "eval"
grep -q "iteration" "$T/eval.txt" || fail "eval table"
"$R" eval "$T/run" --json >"$T/eval.json" || fail "eval --json"
/usr/bin/python3 -c "
import json,sys; d=json.load(open(sys.argv[1]))
assert len(d['accuracy'])==3 and len(d['coarse_accuracy'])==3, d
assert max(d['accuracy']) > 0.15 and all(0 <= a <= 1 for a in d['accuracy']), d
assert d['images']==10000" "$T/eval.json" || fail "eval --json content"
"$R" eval "$T/run" --iterations 6 --json --limit 1000 >"$T/eval6.json" || fail "eval --iterations 6"
/usr/bin/python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); assert len(d['accuracy'])==6 and d['trained_iterations']==3, d" "$T/eval6.json" || fail "eval --iterations content"
"$R" eval "$T/run" --exit-threshold 0.9 --json --limit 1000 >"$T/exit.json" || fail "eval --exit-threshold"
/usr/bin/python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); assert 1 <= d['exit_mean_iterations'] <= 3, d" "$T/exit.json" || fail "early exit content"
ok

# wrong pairings and bad data
cp "$T/run/config.cfg" "$T/run/config.cfg.bak"
sed 's/channels = 16/channels = 17/' "$T/run/config.cfg.bak" >"$T/run/config.cfg"
expect_fail "resume changed config" "differs from the config stored" "$R" train --resume "$T/run"
mv "$T/run/config.cfg.bak" "$T/run/config.cfg"
expect_fail "resume with overrides" "only --threads" "$R" train --resume "$T/run" --epochs 5
mkdir -p "$T/cifar"
expect_fail "missing data files" "cifar|data_batch" "$R" train tests/configs/tiny.cfg --out "$T/run3" --data "cifar10:$T/cifar"
expect_fail "bad data spec" "spec|dataset" "$R" train tests/configs/tiny.cfg --out "$T/run4" --data "nonsense:/x"
expect_fail "eval missing run" "no checkpoint|No such file" "$R" eval "$T/nothing"
head -c 100 "$T/run/model.ckpt" >"$T/trunc.ckpt"
expect_fail "truncated checkpoint" "trunc.ckpt" "$R" eval "$T/trunc.ckpt"
# a small MNIST-format IDX directory (plain, not gzipped): loads, trains, has no taxonomy
python3 - "$T/mn" <<'PY' || fail "making IDX files"
import os, struct, sys, random
d = sys.argv[1]; os.makedirs(d, exist_ok=True); random.seed(3)
for split, n in (("train", 256), ("t10k", 64)):
    labels = [i % 10 for i in range(n)]
    with open(f"{d}/{split}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28))
        for l in labels: f.write(bytes((l * 25 + random.randrange(5)) % 256 for _ in range(784)))
    with open(f"{d}/{split}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, n)); f.write(bytes(labels))
PY
"$R" train tests/configs/tiny.cfg --out "$T/mnrun" --data "mnist:$T/mn" --set train.limit=0 --quiet || fail "train on mnist:DIR"
"$R" eval "$T/mnrun" --json | grep -q '"coarse_accuracy": null' || fail "eval on a dataset without taxonomy"
ok
expect_fail "coarse-to-fine without taxonomy" "taxonomy" "$R" train tests/configs/tiny.cfg --out "$T/run5" --set model.loss=coarse-to-fine --data "mnist:$T/mn"
# a dataset whose image size does not match the model
python3 -c "
import struct,sys
d=sys.argv[1]
for s,n in (('train',64),('t10k',64)):
    open(d+'/'+s+'-images-idx3-ubyte','wb').write(struct.pack('>IIII',0x803,n,32,32)+bytes(n*1024))
    open(d+'/'+s+'-labels-idx1-ubyte','wb').write(struct.pack('>II',0x801,n)+bytes(n))" "$T/cifar" || fail "making 32x32 IDX"
expect_fail "image size mismatch" "32x32.*28x28|28x28.*32x32" "$R" train tests/configs/tiny.cfg --out "$T/run6" --data "idx:$T/cifar"

# generated tasks: prefix sums with a dense readout, recall and the progressive loss; resumed runs end
# byte-identical (the progressive loss's draws come from the checkpointed stream); evaluation at a larger
# size, step by step, beyond the trained depth
"$R" train tests/configs/tiny_prefix.cfg --out "$T/ps" --quiet || fail "train prefix sums"
"$R" train tests/configs/tiny_prefix.cfg --out "$T/ps2" --quiet --steps 20 || fail "prefix sums, first part"
"$R" train --resume "$T/ps2" --quiet || fail "prefix sums, resumed"
cmp "$T/ps/model.ckpt" "$T/ps2/model.ckpt" || fail "prefix sums: resumed run differs"; ok
"$R" eval "$T/ps" --data prefix-sums:16:24 --iterations 12 --every 4 --limit 50 >"$T/pse" || fail "eval prefix sums"
grep -q "step by step" "$T/pse" && grep -q "beyond trained depth" "$T/pse" && [ "$(grep -c '^ *[0-9]' "$T/pse")" = 4 ] ||
    { cat "$T/pse"; fail "eval prefix sums output"; }; ok
"$R" eval "$T/ps" --data prefix-sums:16:24 --iterations 12 --limit 50 --json >"$T/pse.json" || fail "eval --json"
python3 -c "
import json,sys; e=json.load(open(sys.argv[1]))
assert len(e['solved']) == 12 and len(e['position_accuracy']) == 12 and e['images'] == 50, e
assert all(0 <= p <= 1 for p in e['position_accuracy'])" "$T/pse.json" || fail "eval prefix sums json"; ok
expect_fail "dense logits to .npy" "pooled readouts" "$R" eval "$T/ps" --save-logits "$T/x.npy"
expect_fail "dense predictions to .csv" "pooled readouts" "$R" eval "$T/ps" --save-predictions "$T/x.csv"
expect_fail "dense task with augmentation" "crop_pad = 0" "$R" train tests/configs/tiny_prefix.cfg --out "$T/ps3" --set train.crop_pad=2
expect_fail "dense task, pooled readout" "readout = dense" "$R" train tests/configs/tiny_prefix.cfg --out "$T/ps4" --set model.readout=pool --set model.loss=every --set model.recall=no
expect_fail "stepwise with per-iteration norms" "batch_per_iter" "$R" eval "$T/run" --stepwise
# issue 15: short runs and their defaults
# a config written for 6 epochs, shortened to 1: the warm-up is capped at a quarter of the run (noted), so
# the run learns (it ended near 32% when the warm-up spanned the whole run; recur and its PyTorch twin
# reach about 60%). The sanitizer build checks the cap on the tiny net only (the demo is too slow there).
if echo "$B" | grep -q san; then
    "$R" train tests/configs/tiny.cfg --set train.warmup_epochs=1 --epochs 1 --limit 512 --test-limit 100 --out "$T/short" --force >"$T/short.out" 2>&1 || { cat "$T/short.out"; fail "short run"; }
    grep -q "warm-up capped at a quarter of the run: 2 of 8 steps" "$T/short.out" || { cat "$T/short.out"; fail "no note about the capped warm-up"; }
    ok
else
    "$R" train configs/demo.cfg --epochs 1 --limit 6000 --test-limit 2000 --out "$T/short" --force >"$T/short.out" 2>&1 || { cat "$T/short.out"; fail "short demo run"; }
    grep -q "warm-up capped at a quarter of the run: 11 of 46 steps" "$T/short.out" || { cat "$T/short.out"; fail "no note about the capped warm-up"; }
    /usr/bin/python3 - "$T/short/train.csv" <<'PY' || fail "a one-epoch run did not learn"
import csv, sys
row = list(csv.DictReader(open(sys.argv[1])))[-1]
acc = float(row["test_acc_3"])
print("    one epoch on 6000 images, final iteration: %.1f%% (want >= 50%%)" % (100 * acc))
sys.exit(0 if acc >= 0.50 else 1)
PY
    ok
fi
# --test-limit: each epoch evaluated that many test images (eval --limit N gives the same accuracy)
n=$(grep -o "test_limit = [0-9]*" "$T/short/config.cfg" | grep -o "[0-9]*$")
[ -n "$n" ] || fail "test_limit not in the effective config"
"$R" eval "$T/short" --limit "$n" --json >"$T/short.json" || fail "eval --limit"
/usr/bin/python3 - "$T/short.json" "$T/short/train.csv" "$n" <<'PY' || fail "--test-limit: train.csv differs from eval --limit"
import csv, json, sys
e = json.load(open(sys.argv[1])); row = list(csv.DictReader(open(sys.argv[2])))[-1]
assert e["images"] == int(sys.argv[3]), e["images"]
R = len(e["accuracy"])
assert abs(e["accuracy"][-1] - float(row["test_acc_%d" % R])) < 1e-4, (e["accuracy"], row)
PY
ok
# flip defaults: on for Fashion-MNIST, off for digits (mnist:, idx:), printed either way
"$R" train tests/configs/tiny.cfg --steps 1 --out "$T/flip1" --force 2>&1 | grep -q "using default \[train\] flip = yes" || fail "flip default for fashion-mnist"
"$R" train tests/configs/tiny.cfg --steps 1 --data "mnist:$T/mn" --set train.limit=0 --out "$T/flip2" --force 2>&1 | grep -q "using default \[train\] flip = no" || fail "flip default for mnist"
ok
# --opt=value, --batch-size, and JSON that parses whatever the names
/usr/bin/python3 - "$R" <<'PY' || fail "info --set=... --json with quotes and backslashes in the name"
import json, subprocess, sys
name = 'a"b\\c\tz\u00e9'
out = subprocess.check_output([sys.argv[1], "info", "tests/configs/tiny.cfg", "--set=model.name=" + name, "--json"])
assert json.loads(out)["model"] == name, out
PY
"$R" eval "$T/short" --batch-size=50 --limit=100 --json >/dev/null || fail "eval --batch-size=50"
"$R" --help | grep -q -- "--version" || fail "--version not in the usage"
ok

echo "all CLI tests passed ($pass checks)"
