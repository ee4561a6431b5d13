#!/bin/sh
# Experiment tests: every `recur experiment` with --quick on a small Fashion-MNIST copy (2048 training,
# 500 test images); checks the CSV/Markdown/PNG/SVG outputs, the numbers against `recur eval`, reuse of
# finished sub-runs and the refusal of a changed one. Usage: tests/test_experiments.sh BUILD_DIR.
. tests/lib.sh
PY=/usr/bin/python3
export OMP_WAIT_POLICY=passive

# a small copy of Fashion-MNIST in its own format (gzip IDX), so it keeps the coarse taxonomy
$PY - "$T/fm" <<'PY' || fail "making the small Fashion-MNIST copy"
import gzip, os, struct, sys
src = os.environ.get("RECUR_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
d = sys.argv[1]; os.makedirs(d)
for split, n in (("train", 2048), ("t10k", 500)):
    im = gzip.open(f"{src}/{split}-images-idx3-ubyte.gz").read()
    lb = gzip.open(f"{src}/{split}-labels-idx1-ubyte.gz").read()
    gzip.open(f"{d}/{split}-images-idx3-ubyte.gz", "wb").write(struct.pack(">IIII", 0x803, n, 28, 28) + im[16:16 + n * 784])
    gzip.open(f"{d}/{split}-labels-idx1-ubyte.gz", "wb").write(struct.pack(">II", 0x801, n) + lb[8:8 + n])
PY
D="fashion-mnist:$T/fm"
O="$T/out"
Q="--quick --quiet --threads 2 --data $D"
HAVE_GP=0
gnuplot -e "set terminal pngcairo; set terminal svg" </dev/null >/dev/null 2>&1 && HAVE_GP=1

# figures: PNG signature and size, SVG document (only checked where gnuplot is installed)
figs() {
    for f in "$@"; do
        [ -s "$O/$f.dat" ] && [ -s "$O/$f.gp" ] || fail "$f.dat / $f.gp missing"
        [ $HAVE_GP = 1 ] || continue
        $PY -c "
import sys; p=open(sys.argv[1]+'.png','rb').read(); s=open(sys.argv[1]+'.svg').read()
assert p[:8]==b'\x89PNG\r\n\x1a\n' and len(p)>5000, 'bad png'
assert '<svg' in s and '</svg>' in s and len(s)>2000, 'bad svg'" "$O/$f" || fail "figure $f"
    done
    ok
}
# a CSV as a list of dicts
csv() { $PY -c "import csv,sys,json; print(json.dumps(list(csv.DictReader(open(sys.argv[1])))))" "$1"; }

"$R" experiment --help | grep -q "usage: recur experiment" || fail "experiment --help"; ok
if "$R" experiment nosuch >/dev/null 2>"$T/err"; then fail "unknown experiment accepted"; fi
grep -q "unknown experiment" "$T/err" || fail "unknown experiment message"; ok
if "$R" experiment tradeoff $Q --out "$O" >/dev/null 2>"$T/err"; then fail "tradeoff without --depth accepted"; fi
grep -q "depth" "$T/err" || fail "tradeoff --depth message"; ok

# table4: 4 runs x 4 readouts; tying changes params, not FLOPs or depth
"$R" experiment table4 $Q --out "$O" 2>"$T/log" || { cat "$T/log"; fail "table4 --quick"; }
$PY - "$O/table4.csv" "$O/table4.md" <<'PY' || fail "table4 outputs"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
runs = sorted({r["run"] for r in rows})
assert runs == ["tied-every", "tied-final", "untied-every", "untied-final"], runs
assert len(rows) == 16 and sorted({int(r["iteration"]) for r in rows}) == [1, 2, 3, 4]
p = {r["run"]: int(r["params"]) for r in rows}
assert p["untied-final"] == p["untied-every"] > 2.5 * p["tied-final"] and p["tied-final"] == p["tied-every"], p
assert len({r["mflops"] for r in rows}) == 1 and len({r["effective_depth"] for r in rows}) == 1
acc = [float(r["accuracy"]) for r in rows]
assert all(0 <= a <= 1 for a in acc) and max(acc) > 0.2, acc
md = open(sys.argv[2]).read()
assert md.count("\n| tied-") == 2 and md.count("\n| untied-") == 2, md
PY
ok
figs table4
for r in tied-final tied-every untied-final untied-every; do
    [ -f "$O/runs/$r/config.cfg" ] && [ -f "$O/runs/$r/model.ckpt" ] || fail "sub-run $r files"
done
# a sub-run is an ordinary run: recur eval reads it and agrees with the CSV
"$R" eval "$O/runs/untied-final" --json --data "$D" >"$T/ev.json" || fail "eval of a sub-run"
$PY - "$T/ev.json" "$O/table4.csv" <<'PY' || fail "eval vs table4.csv"
import csv, json, sys
e = json.load(open(sys.argv[1]))
rows = [r for r in csv.DictReader(open(sys.argv[2])) if r["run"] == "untied-final"]
for r in rows:
    assert abs(float(r["accuracy"]) - e["accuracy"][int(r["iteration"]) - 1]) < 1e-3, (r, e)
PY
ok
# finished sub-runs are reused (no training), with identical results
cp "$O/table4.csv" "$T/t4.csv"
"$R" experiment table4 $Q --out "$O" 2>"$T/log" || { cat "$T/log"; fail "table4 rerun"; }
grep -q "training run" "$T/log" && fail "table4 rerun trained again"
cmp "$O/table4.csv" "$T/t4.csv" || fail "table4 rerun changed the results"; ok
# --seeds 2 on a tiny table4 (256 images, width 4, T = 2): seed 1 is the one-seed run (reused, not retrained),
# seed 2 trains in NAME-seed2 with train.seed = 2; the CSV's mean and sample std (n - 1) match its per-seed
# columns, the one-seed CSV has none of them, and the figure draws error bars
S="$T/seeds"
TINY="--quiet --threads 2 --data $D --epochs 1 --set train.limit=256 --set train.test_limit=200 --set train.batch=64
 --set train.warmup_epochs=0 --set area.V1.channels=4 --set area.V2.channels=4 --set area.V1.iterations=2
 --set area.V2.iterations=2 --out $S"
"$R" experiment table4 $TINY 2>"$T/log" || { cat "$T/log"; fail "tiny table4"; }
cp "$S/table4.csv" "$T/s1.csv"
"$R" experiment table4 $TINY --seeds 2 2>"$T/log" || { cat "$T/log"; fail "table4 --seeds 2"; }
[ "$(grep -c "training run" "$T/log")" = 4 ] && [ "$(grep -c "training run.*-seed2 " "$T/log")" = 4 ] ||
    { cat "$T/log"; fail "--seeds 2 should train the 4 seed-2 runs only"; }
grep -q "^seed = 2" "$S/runs/untied-every-seed2/config.cfg" || fail "seed 2 run's train.seed"
$PY - "$T/s1.csv" "$S/table4.csv" "$S/table4.md" <<'PY' || fail "table4 --seeds 2 outputs"
import csv, statistics, sys
one = list(csv.DictReader(open(sys.argv[1]))); two = list(csv.DictReader(open(sys.argv[2])))
assert "accuracy_std" not in one[0] and "seeds" not in one[0], one[0].keys()
assert len(two) == len(one) == 8
for a, b in zip(one, two):
    assert (a["run"], a["iteration"]) == (b["run"], b["iteration"]) and b["seeds"] == "2"
    v = [float(b["accuracy_seed1"]), float(b["accuracy_seed2"])]
    assert v[0] == float(a["accuracy"]), (a, b)                       # seed 1 = the one-seed run
    assert abs(float(b["accuracy"]) - statistics.mean(v)) < 1.5e-4, b
    assert abs(float(b["accuracy_std"]) - statistics.stdev(v)) < 1.5e-4, b   # sample std (n - 1)
assert any(float(b["accuracy_std"]) > 0 for b in two), two              # the seeds differ
md = open(sys.argv[3]).read()
assert "sample standard deviation" in md, md
assert sum(l.count(" ± ") for l in md.splitlines() if l.startswith("| ")) == 8, md
PY
ok
# more-iterations --seeds 2 studies table4's tied-every and tied-every-seed2 (no training) one by one into
# seedK/ and merges them: the merged columns are the per-seed files' values, their mean and sample std
"$R" experiment more-iterations $TINY --seeds 2 --iterations 3 2>"$T/log" || { cat "$T/log"; fail "more-iterations --seeds 2"; }
grep -q "training run" "$T/log" && { cat "$T/log"; fail "more-iterations --seeds 2 trained again"; }
$PY - "$S/more_iterations.csv" "$S/seed1/more_iterations.csv" "$S/seed2/more_iterations.csv" <<'PY' || fail "more-iterations --seeds 2 outputs"
import csv, statistics, sys
m, a, b = (list(csv.DictReader(open(f))) for f in sys.argv[1:])
assert len(m) == len(a) == len(b) == 3 and [r["iterations"] for r in m] == ["1", "2", "3"]
for r, x, y in zip(m, a, b):
    v = [float(x["accuracy"]), float(y["accuracy"])]
    assert [float(r["accuracy_seed1"]), float(r["accuracy_seed2"])] == v, (r, x, y)
    assert abs(float(r["accuracy"]) - statistics.mean(v)) < 1.5e-4 and abs(float(r["accuracy_std"]) - statistics.stdev(v)) < 1.5e-4, r
    assert r["mflops"] == x["mflops"] and r["beyond_trained"] == x["beyond_trained"], (r, x)
assert any(float(r["accuracy_std"]) > 0 for r in m), m
PY
grep -q "yerrorlines" "$S/more_iterations.gp" || fail "no error bars in more_iterations.gp"; ok
grep -q "yerrorlines" "$S/table4.gp" || fail "no error bars in table4.gp"
grep -q "yerrorlines" "$O/table4.gp" && fail "error bars with one seed"; ok
if "$R" experiment early-exit --run "$O/runs/tied-every" --seeds 2 $Q --out "$T/o3" >/dev/null 2>"$T/err"; then
    fail "--seeds with --run accepted"; fi
grep -q "seeds" "$T/err" || fail "--seeds with --run message"; ok
# a sub-run whose config changed is refused, not silently mixed
sed 's/lr = 0.002/lr = 0.003/' "$O/runs/tied-final/config.cfg" >"$T/c" && cp "$T/c" "$O/runs/tied-final/config.cfg"
if "$R" experiment table4 $Q --out "$O" >/dev/null 2>"$T/err"; then fail "changed sub-run config accepted"; fi
grep -q "different config" "$T/err" || { cat "$T/err"; fail "changed config message"; }; ok

# tradeoff at depth 4: splits 1x4, 2x2, 4x1 at one width (set with --set on the [area] template), plus 1x4
# widened (2x2 already has 4x1's params)
"$R" experiment tradeoff --depth 4 --set area.A.channels=12 $Q --out "$O" 2>"$T/log" || { cat "$T/log"; fail "tradeoff --quick"; }
$PY - "$O/tradeoff.csv" <<'PY' || fail "tradeoff outputs"
import csv, sys
rows = {r["run"]: r for r in csv.DictReader(open(sys.argv[1]))}
base = [rows[k] for k in ("1x4", "2x2", "4x1")]
wide = [r for k, r in rows.items() if r["width_matched"] == "yes"]
assert len(rows) == 4 and len(wide) == 1 and wide[0]["run"].startswith("1x4-c"), rows.keys()
P = lambda r: int(r["params"])
assert P(base[0]) < P(base[1]) == P(base[2]), [P(r) for r in base]  # T = 2 ties nothing (bu + lat)
assert all(r["effective_depth"] == "4" for r in rows.values())
f = [float(r["mflops"]) for r in base]
assert max(f) - min(f) < 0.01 * max(f), f                           # same compute at one width
assert abs(P(wide[0]) - P(base[2])) < 0.05 * P(base[2]), (P(wide[0]), P(base[2]))
assert all(r["channels"] == "12" for r in base) and int(wide[0]["channels"]) > 12, rows
u = [int(r["units_per_step"]) for r in base]
assert u[0] * 4 == u[2] and u[0] * 2 == u[1], u                     # distinct neurons grow with K
assert all(0 <= float(r["accuracy"]) <= 1 for r in rows.values())
PY
ok
figs tradeoff_params tradeoff_units tradeoff_flops

# coarse-fine: reuses table4's tied-every run, trains tied-coarse-to-fine
"$R" experiment coarse-fine $Q --out "$O" 2>"$T/log" || { cat "$T/log"; fail "coarse-fine --quick"; }
grep -q "training run.*tied-every" "$T/log" && fail "coarse-fine retrained tied-every"
$PY - "$O/coarse_fine.csv" <<'PY' || fail "coarse-fine outputs"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert sorted({r["loss"] for r in rows}) == ["coarse-to-fine", "every"] and len(rows) == 8, rows
for r in rows:
    f, c = float(r["fine_accuracy"]), float(r["coarse_accuracy"])
    assert 0 <= f <= 1 and 0 <= c <= 1, r
assert max(float(r["coarse_accuracy"]) for r in rows) > max(float(r["fine_accuracy"]) for r in rows)
PY
ok
figs coarse_fine
if "$R" experiment coarse-fine $Q --out "$T/nocoarse" --data "mnist:$T/fm" >/dev/null 2>"$T/err"; then
    fail "coarse-fine on a dataset without taxonomy"; fi
grep -q "taxonomy" "$T/err" || { cat "$T/err"; fail "taxonomy message"; }; ok

# early exit: the sweep agrees with recur eval --exit-threshold at the same threshold
"$R" experiment early-exit $Q --out "$O" 2>"$T/log" || { cat "$T/log"; fail "early-exit --quick"; }
"$R" eval "$O/runs/tied-every" --data "$D" --exit-threshold 0.9 --json >"$T/ex.json" || fail "eval --exit-threshold"
$PY - "$O/early_exit.csv" "$T/ex.json" <<'PY' || fail "early-exit outputs"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1]))); e = json.load(open(sys.argv[2]))
fixed = [r for r in rows if r["kind"] == "fixed"]; ex = [r for r in rows if r["kind"] == "exit"]
assert len(fixed) == 4 and len(ex) >= 5
for r in fixed:
    assert abs(float(r["accuracy"]) - e["accuracy"][int(r["iteration"]) - 1]) < 1e-3, (r, e)
r = [r for r in ex if abs(float(r["threshold"]) - 0.9) < 1e-9][0]
assert abs(float(r["accuracy"]) - e["exit_accuracy"]) < 3e-3, (r, e)
assert abs(float(r["mean_iterations"]) - e["exit_mean_iterations"]) < 0.02, (r, e)
assert abs(float(r["mean_mflops"]) * 1e6 - e["exit_mean_flops"]) < 0.01 * e["exit_mean_flops"], (r, e)
fl = [float(r["mean_mflops"]) for r in ex]
assert all(a <= b + 1e-9 for a, b in zip(fl, fl[1:])), fl            # higher threshold, more compute
assert float(fixed[0]["mean_mflops"]) < float(fixed[-1]["mean_mflops"])
PY
ok
figs early_exit
# relative --run and --out (gnuplot runs in the output directory)
RA=$(cd "$(dirname "$R")" && pwd)/$(basename "$R")
(cd "$T" && "$RA" experiment early-exit --run out/runs/tied-every --out rel $Q) 2>"$T/log" || { cat "$T/log"; fail "relative paths"; }
cmp "$T/rel/early_exit.csv" "$O/early_exit.csv" || fail "early-exit with relative paths differs"
[ $HAVE_GP = 0 ] || [ -s "$T/rel/early_exit.png" ] || fail "no figure with a relative --out"; ok

# more iterations: T' = T and T' = 6 match recur eval (--iterations 6)
"$R" experiment more-iterations --iterations 6 $Q --out "$O" 2>"$T/log" || { cat "$T/log"; fail "more-iterations --quick"; }
"$R" eval "$O/runs/tied-every" --data "$D" --json >"$T/e4.json" || fail "eval"
"$R" eval "$O/runs/tied-every" --data "$D" --iterations 6 --json >"$T/e6.json" || fail "eval --iterations 6"
$PY - "$O/more_iterations.csv" "$T/e4.json" "$T/e6.json" <<'PY' || fail "more-iterations outputs"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1]))); e4 = json.load(open(sys.argv[2])); e6 = json.load(open(sys.argv[3]))
assert [int(r["iterations"]) for r in rows] == [1, 2, 3, 4, 5, 6]
assert [r["beyond_trained"] for r in rows] == ["no"] * 4 + ["yes"] * 2
assert abs(float(rows[3]["accuracy"]) - e4["accuracy"][-1]) < 1e-3, (rows[3], e4)
assert abs(float(rows[5]["accuracy"]) - e6["accuracy"][-1]) < 1e-3, (rows[5], e6)
fl = [float(r["mflops"]) for r in rows]
assert all(a < b for a, b in zip(fl, fl[1:])), fl
PY
ok
figs more_iterations
if "$R" experiment more-iterations --run "$O/runs/untied-final" $Q --out "$T/o2" >/dev/null 2>"$T/err"; then
    fail "more-iterations on an untied run"; fi
grep -q "untied" "$T/err" || { cat "$T/err"; fail "untied message"; }; ok

# extrapolate (generated prefix sums, no --data): 4 runs x 3 test sizes; tied runs to 2T = 8 iterations,
# the feedforward twin its 4 layers; the numbers match recur eval on the larger strings
if "$R" experiment extrapolate --quick --out "$T/x0" >/dev/null 2>"$T/err"; then fail "extrapolate without --task"; fi
grep -q "task" "$T/err" || fail "extrapolate --task message"; ok
X="$T/ex"
"$R" experiment extrapolate --task prefix-sums --quick --quiet --threads 2 --out "$X" 2>"$T/log" ||
    { cat "$T/log"; fail "extrapolate --quick"; }
"$R" eval "$X/runs/recall-progressive" --data prefix-sums:32:48 --iterations 8 --limit 100 --json >"$T/x.json" ||
    fail "eval of an extrapolate run"
$PY - "$X/extrapolate.csv" "$X/extrapolate.md" "$T/x.json" <<'PY' || fail "extrapolate outputs"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1]))); e = json.load(open(sys.argv[3]))
runs = {r["run"] for r in rows}
assert runs == {"recall-progressive", "no-recall", "recall-final", "feedforward"}, runs
assert {int(r["test_size"]) for r in rows} == {32, 48, 64}
for run in runs:
    n = len([r for r in rows if r["run"] == run and r["test_size"] == "48"])
    assert n == (4 if run == "feedforward" else 8), (run, n)
mine = [float(r["solved"]) for r in rows if r["run"] == "recall-progressive" and r["test_size"] == "48"]
pos = [float(r["position_accuracy"]) for r in rows if r["run"] == "recall-progressive" and r["test_size"] == "48"]
assert len(e["solved"]) == 8 and all(abs(a - b) < 1e-4 for a, b in zip(mine, e["solved"])), (mine, e)
assert all(abs(a - b) < 1e-4 for a, b in zip(pos, e["position_accuracy"])), (pos, e)
assert all(0.3 < p < 0.7 for p in pos), pos  # 1 epoch of 512 strings: about chance per position
md = open(sys.argv[2]).read()
assert "recall-progressive" in md and "| 64 |" in md
PY
ok
O="$X"; figs extrapolate_32 extrapolate_48 extrapolate_64

# the mazes task: 9x9 training mazes, tested on 9, 13 and 19; the CSV agrees with recur eval on 13x13
X="$T/em"
"$R" experiment extrapolate --task mazes --quick --quiet --threads 2 --out "$X" 2>"$T/log" ||
    { cat "$T/log"; fail "extrapolate --task mazes --quick"; }
"$R" eval "$X/runs/no-recall" --data mazes:9:13 --iterations 8 --limit 100 --json >"$T/m.json" ||
    fail "eval of a mazes run"
$PY - "$X/extrapolate.csv" "$T/m.json" <<'PY' || fail "mazes extrapolate outputs"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1]))); e = json.load(open(sys.argv[2]))
assert {r["run"] for r in rows} == {"recall-progressive", "no-recall", "recall-final", "feedforward"}
assert {int(r["test_size"]) for r in rows} == {9, 13, 19}, {r["test_size"] for r in rows}
pos = [float(r["position_accuracy"]) for r in rows if r["run"] == "no-recall" and r["test_size"] == "13"]
assert len(pos) == 8 and all(abs(a - b) < 1e-4 for a, b in zip(pos, e["position_accuracy"])), (pos, e)
assert all(0.05 < p < 0.95 for p in pos), pos  # walls excluded, 1 quick epoch: neither all right nor all wrong
PY
ok
O="$X"; figs extrapolate_9 extrapolate_13 extrapolate_19

echo "all experiment tests passed ($pass checks)"
