#!/bin/sh
# bench/scaling.sh — data-parallel training images/s, 1 rank vs NP ranks (mpirun), 1 thread per rank, same
# global batch, alternating ROUNDS times; then the all-reduce alone (bench/allreduce_bench.c) and bytes vs
# FLOPs per step. Usage: sh bench/scaling.sh [CONFIG]; env NP (2), STEPS (20), ROUNDS (2), BUILD (build).
set -eu
CONFIG=${1:-configs/demo.cfg}
NP=${NP:-2}
STEPS=${STEPS:-20}
ROUNDS=${ROUNDS:-2}
B=${BUILD:-build}
R="$B/recur"
"$R" --version | grep -q MPI || { echo "scaling.sh: $R was built without MPI"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ROOT=""
[ "$(id -u)" -eq 0 ] && ROOT="--allow-run-as-root"
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# step time from the end-of-run line "recur: N rank(s): ... step X ms: ..." (mean over STEPS steps)
ARGS="$CONFIG --threads 1 --steps $STEPS --ckpt-every 0"
step_ms() { sed -n 's/.*rank(s): .* step \([0-9.]*\) ms:.*/\1/p' "$1"; }
ar_ms() { sed -n 's/.*all-reduce of \([0-9]*\) bytes \([0-9.]*\) ms\/step.*/\2/p' "$1"; }

batch=$(sed -n 's/^batch *= *\([0-9]*\).*/\1/p' "$CONFIG" | head -1)
batch=${batch:-128} # the documented default
echo "config $CONFIG: global batch $batch, $STEPS steps per run, 1 thread per rank, $ROUNDS rounds"
i=1
while [ $i -le "$ROUNDS" ]; do
    mpirun $ROOT -np 1 "$R" train $ARGS --out "$T/one$i" >"$T/one$i.log" 2>&1 || { cat "$T/one$i.log"; exit 1; }
    mpirun $ROOT -np "$NP" "$R" train $ARGS --out "$T/many$i" >"$T/many$i.log" 2>&1 || { cat "$T/many$i.log"; exit 1; }
    s1=$(step_ms "$T/one$i.log")
    sn=$(step_ms "$T/many$i.log")
    an=$(ar_ms "$T/many$i.log")
    awk -v b="$batch" -v s1="$s1" -v sn="$sn" -v an="$an" -v np="$NP" -v r="$i" 'BEGIN {
        printf "round %d: 1 rank %.0f img/s (%.1f ms/step); %d ranks %.0f img/s (%.1f ms/step, all-reduce %.2f ms); speedup %.2fx\n",
               r, b * 1000 / s1, s1, np, b * 1000 / sn, sn, an, s1 / sn }'
    i=$((i + 1))
done
# the all-reduce alone (after a barrier: no waiting for a slower rank), same byte count
bytes=$(sed -n 's/.*all-reduce of \([0-9]*\) bytes.*/\1/p' "$T/many1.log")
mpicc -O2 -o "$T/allreduce_bench" bench/allreduce_bench.c
pure=$(mpirun $ROOT -np "$NP" "$T/allreduce_bench" "$bytes" 50)
echo "MPI_Allreduce of $bytes bytes over $NP ranks alone: $pure ms (median of 50)"
# communication volume vs compute per step (for a cluster projection)
json=$("$R" info "$CONFIG" --json)
echo "$json" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin); batch = int(sys.argv[1]); nbytes = int(sys.argv[2])
params, flops = d["params"], d["flops"]
step_flops = 3 * flops * batch  # forward + backward ~ 3x forward
print("params %d; all-reduced per step %d bytes (4 x params, padded); training FLOPs per step ~%.1f GFLOP" %
      (params, nbytes, step_flops / 1e9))
print("FLOPs per all-reduced byte: %.0f" % (step_flops / nbytes))
' "$batch" "$bytes"
