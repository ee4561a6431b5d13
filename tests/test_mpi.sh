#!/bin/sh
# Data-parallel (MPI) tests: 2 ranks reproduce 1 rank on the same global batch (per-step losses and final
# params within 1e-5 relative) without batch norm and with bn_sync; resume with another rank count; split
# evaluation; the cross-rank param check; error on an indivisible batch; a killed rank ends the job.
# Usage: tests/test_mpi.sh BUILD_DIR. Skips (exit 0) only when recur was built without MPI.
set -u
B=${1:-build}
R="$B/recur"
if ! "$R" --version | grep -q MPI || ! command -v mpirun >/dev/null 2>&1; then
    echo "test_mpi: skipped ($R built without MPI, or no mpirun)"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { pass=$((pass + 1)); }
ROOT=""
[ "$(id -u)" -eq 0 ] && ROOT="--allow-run-as-root"
# no CMA single-copy (containers often forbid ptrace), no core binding (the CI machine may have 1 core)
export OMPI_MCA_btl_vader_single_copy_mechanism=none
MPI="timeout 120 mpirun $ROOT --oversubscribe --bind-to none -np"
# 20 steps of the tiny net, 1 thread per rank, the same global batch of 64 whatever the rank count
BASE="tests/configs/tiny.cfg --set train.threads=1 --set train.optimizer=sgd --limit 4096 --quiet"

# losses A B TOL: per-step losses equal within TOL relative (same steps)
losses() {
    /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys
a = [l.split() for l in open(sys.argv[1])]
b = [l.split() for l in open(sys.argv[2])]
tol = float(sys.argv[3])
assert len(a) == len(b) and len(a) > 0, ("step counts differ", len(a), len(b))
worst = 0.0
for (sa, la), (sb, lb) in zip(a, b):
    assert sa == sb, (sa, sb)
    worst = max(worst, abs(float(la) - float(lb)) / abs(float(la)))
print("    max relative loss difference over %d steps: %.2e" % (len(a), worst))
sys.exit(0 if worst <= tol else 1)
PY
}
# params A.ckpt B.ckpt TOL: same params and data position; all params together within TOL relative (L2), and
# each param within 100*TOL of its own L2 norm (a small param cannot hide a gross error)
params() {
    /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import math, struct, sys
def load(path):
    b = open(path, "rb").read()
    assert b[:8] == b"RCKPT\0\0\1", path
    (ver, clen) = struct.unpack_from("<II", b, 8)
    assert ver == 2, "checkpoint format version %d: update tests/test_mpi.sh" % ver
    o = 16 + clen
    meta = struct.unpack_from("<3q4Q4Q", b, o)  # epoch, step_in_epoch, global_step, rng, shuffle_rng
    o += 176
    (n,) = struct.unpack_from("<I", b, o); o += 4
    ps = {}
    for _ in range(n):
        (ln,) = struct.unpack_from("<I", b, o); o += 4
        name = b[o:o + ln].decode(); o += ln
        kind, nd = struct.unpack_from("<II", b, o); o += 8
        dims = struct.unpack_from("<%dI" % nd, b, o); o += 4 * nd
        numel = 1
        for d in dims: numel *= d
        ps[name] = struct.unpack_from("<%df" % numel, b, o)
        o += 4 * numel * (1 if kind == 2 else 3)
    return meta, ps
ma, a = load(sys.argv[1]); mb, b = load(sys.argv[2]); tol = float(sys.argv[3])
assert ma == mb, ("positions differ", ma, mb)
assert sorted(a) == sorted(b)
dd = ww = 0.0
worst, wname = 0.0, ""
for k in a:
    d = sum((x - y) ** 2 for x, y in zip(a[k], b[k])); w = sum(x * x for x in a[k])
    dd += d; ww += w
    r = math.sqrt(d / max(w, 1e-30))
    if r > worst: worst, wname = r, k
rel = math.sqrt(dd / ww)
print("    relative param difference %.2e (worst param %s: %.2e)" % (rel, wname, worst))
sys.exit(0 if rel <= tol and worst <= 100 * tol else 1)
PY
}

# 1. no batch norm: 2 ranks = 1 rank (with the param check every 5 steps)
"$R" train $BASE --set model.norm=none --steps 20 --out "$T/n1" --log-losses "$T/n1.loss" || fail "1-rank run (norm none)"
RECUR_DIST_CHECK=5 $MPI 2 "$R" train $BASE --set model.norm=none --steps 20 --out "$T/n2" --log-losses "$T/n2.loss" \
    || fail "2-rank run (norm none)"
losses "$T/n1.loss" "$T/n2.loss" 1e-5 || fail "norm none: 2-rank losses differ from 1 rank's"
params "$T/n1/model.ckpt" "$T/n2/model.ckpt" 1e-5 || fail "norm none: 2-rank params differ from 1 rank's"
ok

# 2. synchronised batch norm: 2 ranks = 1 rank
"$R" train $BASE --set model.bn_sync=yes --steps 20 --out "$T/s1" --log-losses "$T/s1.loss" || fail "1-rank run (bn_sync)"
RECUR_DIST_CHECK=1 $MPI 2 "$R" train $BASE --set model.bn_sync=yes --steps 20 --out "$T/s2" --log-losses "$T/s2.loss" \
    || fail "2-rank run (bn_sync)"
losses "$T/s1.loss" "$T/s2.loss" 1e-5 || fail "bn_sync: 2-rank losses differ from 1 rank's"
params "$T/s1/model.ckpt" "$T/s2/model.ckpt" 1e-5 || fail "bn_sync: 2-rank params differ from 1 rank's"
ok

# 3. per-rank batch norm (the default) is a different computation: the comparison must notice
RECUR_DIST_CHECK=1 $MPI 2 "$R" train $BASE --steps 20 --out "$T/p2" --log-losses "$T/p2.loss" || fail "2-rank run (per-rank bn)"
if losses "$T/s1.loss" "$T/p2.loss" 1e-5 >/dev/null; then fail "per-rank batch norm matched global statistics: comparison is blind"; fi
ok

# 4. resume with another rank count: 10 steps on 2 ranks, 10 more on 1 = 20 on 1
$MPI 2 "$R" train $BASE --set model.bn_sync=yes --steps 10 --out "$T/r" --log-losses "$T/r.loss" || fail "2-rank first half"
"$R" train --resume "$T/r" --steps 10 --quiet --log-losses "$T/r.loss" || fail "1-rank resume"
losses "$T/s1.loss" "$T/r.loss" 1e-5 || fail "resume 2 -> 1 rank: losses differ"
params "$T/s1/model.ckpt" "$T/r/model.ckpt" 1e-5 || fail "resume 2 -> 1 rank: params differ"
ok

# 5. a whole epoch: train.csv's train loss and accuracy are the global batch's (the mean of the per-step
# losses over all ranks, equal to 1 rank's), and evaluation split over ranks gives the 1-rank test accuracy
E="tests/configs/tiny.cfg --set train.threads=1 --set train.optimizer=sgd --set model.bn_sync=yes --epochs 1 --limit 1024 --test-limit 500 --quiet"
"$R" train $E --out "$T/e1" --log-losses "$T/e1.loss" || fail "1-rank epoch"
$MPI 2 "$R" train $E --out "$T/e2" --log-losses "$T/e2.loss" || fail "2-rank epoch"
/usr/bin/python3 - "$T/e1/train.csv" "$T/e2/train.csv" "$T/e1.loss" "$T/e2.loss" <<'PY' || fail "2-rank train.csv differs from 1 rank's"
import csv, sys
a = list(csv.DictReader(open(sys.argv[1]))); b = list(csv.DictReader(open(sys.argv[2])))
assert len(a) == len(b) == 1, (a, b)
for row, log in ((a[0], sys.argv[3]), (b[0], sys.argv[4])):
    steps = [float(l.split()[1]) for l in open(log)]
    mean = sum(steps) / len(steps)
    assert abs(float(row["train_loss"]) - mean) <= 2e-6 * abs(mean), ("train_loss is not the mean step loss", row["train_loss"], mean)
la, lb = float(a[0]["train_loss"]), float(b[0]["train_loss"])
assert abs(la - lb) <= 1e-5 * abs(la), ("train_loss", la, lb)
assert abs(float(a[0]["train_acc"]) - float(b[0]["train_acc"])) <= 1.5 / 1024, ("train_acc", a[0]["train_acc"], b[0]["train_acc"])
for k in a[0]:
    if k.startswith("test_"):
        assert abs(float(a[0][k]) - float(b[0][k])) <= 0.003, (k, a[0][k], b[0][k])
print("    train loss 1 rank %s, 2 ranks %s; test accuracy 1 rank %s, 2 ranks %s" % (la, lb, a[0]["test_acc_3"], b[0]["test_acc_3"]))
PY
ok

# 6. the param check catches ranks that diverge (a bit flipped on the last rank at step 3)
if RECUR_DIST_CHECK=1 RECUR_DIST_CHECK_INJECT=3 $MPI 2 "$R" train $BASE --steps 6 --out "$T/inj" >"$T/inj.out" 2>&1; then
    fail "RECUR_DIST_CHECK did not catch diverged params"
fi
grep -q "params diverged at step 3" "$T/inj.out" || { cat "$T/inj.out"; fail "no divergence message"; }
ok

# 7. a global batch that does not split over the ranks is refused
if $MPI 2 "$R" train $BASE --batch 63 --steps 2 --out "$T/odd" >"$T/odd.out" 2>&1; then fail "batch 63 on 2 ranks ran"; fi
grep -q "train.batch = 63 does not split over 2 ranks" "$T/odd.out" || { cat "$T/odd.out"; fail "no batch split message"; }
ok

# 8. kill -9 of one rank mid-run ends the whole job with a message, well within the timeout
tag="recur-test-mpi-$$"
RECUR_TEST_TAG=$tag $MPI 2 "$R" train $BASE --epochs 1000 --out "$T/kill" --log-losses "$T/kill.loss" \
    >"$T/kill.out" 2>&1 &
job=$!
i=0
while [ ! -s "$T/kill.loss" ] && [ $i -lt 120 ]; do sleep 0.5; i=$((i + 1)); done
[ -s "$T/kill.loss" ] || { kill $job; fail "kill test: training did not start"; }
victim=""
for d in /proc/[0-9]*; do
    env=$( (tr '\0' '\n' <"$d/environ") 2>/dev/null) || continue
    case "$env" in *"RECUR_TEST_TAG=$tag"*) ;; *) continue ;; esac
    echo "$env" | grep -qx "OMPI_COMM_WORLD_RANK=1" && victim=${d#/proc/}
done
[ -n "$victim" ] || { kill $job; fail "kill test: rank 1 not found"; }
t0=$(date +%s)
kill -9 "$victim"
wait $job
rc=$?
dt=$(($(date +%s) - t0))
[ $rc -ne 0 ] || fail "kill test: the job succeeded after a rank was killed"
[ $rc -ne 124 ] || fail "kill test: the job hung until the timeout"
[ $dt -le 30 ] || fail "kill test: the job took ${dt}s to end"
grep -Eq "rank 1 .*(signal 9|Killed)" "$T/kill.out" || { cat "$T/kill.out"; fail "kill test: no message naming the dead rank"; }
echo "    killed rank 1: job ended in ${dt}s (exit $rc)"
ok

echo "test_mpi: all $pass checks passed ($B)"
