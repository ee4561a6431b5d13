#!/bin/sh
# vs_pytorch.sh — recur against its PyTorch twin on identical models, side by side: for each round and
# each model, `recur bench` and bench/torch_bench.py under each PyTorch anchor run one after the other
# (each its own process, so peak RSS is per run), the order rotating from round to round; then per model
# and anchor the median and spread (min..max over rounds) of the per-round ratios recur/PyTorch for
# training and inference images/s, and of PyTorch/recur for peak RSS. A benchmark, not a test. Usage
# (from the repository root):
#   bench/vs_pytorch.sh [--rounds N] [--threads N] [--steps N] [--batch N] [--out FILE.jsonl]
#                       [--torch2 [MODES]] [--baseline RECUR_BIN] [--no-torch] [CONFIG ...]
# Default configs: bench/configs/*.cfg. The first anchor is Debian's PyTorch 1.13 ($PYTHON, default
# /usr/bin/python3; TORCH_ARGS, e.g. --channels-last, is passed to its torch_bench.py). --torch2 adds a
# current PyTorch 2.x from PyPI ($PYTHON2, default: what bench/torch2_env.sh makes or finds) in each of
# MODES, a comma-separated list of eager, cl (channels-last), compile (torch.compile, inductor),
# compile-cl, max-autotune (default eager,cl,compile); the summary then also has a row "2.x best"
# whose per-round ratio is against the fastest 2.x mode of that round. --baseline BIN adds another recur
# binary (an older build: a before/after comparison of a change, alternated with the rest in one run) as
# the anchor "recur baseline"; --no-torch leaves Debian's PyTorch out (before/after only). Needs
# build/recur (make).
set -eu
rounds=5 threads=2 steps=10 batch=0 out="" modes2="" base="" torch1=1
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --baseline) base=$2; shift 2 ;;
    --no-torch) torch1=0; shift ;;
    --torch2)
        case "${2:-}" in
        ""|-*|*.cfg) modes2="eager,cl,compile"; shift ;;
        *) modes2=$2; shift 2 ;;
        esac ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "vs_pytorch.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || set -- bench/configs/*.cfg
recur=${RECUR:-build/recur}
py=${PYTHON:-/usr/bin/python3}
[ -x "$recur" ] || { echo "vs_pytorch.sh: $recur not built (run make)" >&2; exit 1; }
sides="recur"
[ "$torch1" = 1 ] && sides="$sides torch"
if [ -n "$base" ]; then
    [ -x "$base" ] || { echo "vs_pytorch.sh: --baseline $base is not an executable" >&2; exit 1; }
    sides="$sides recur-base"
fi
if [ -n "$modes2" ]; then
    py2=${PYTHON2:-$(sh "$(dirname "$0")/torch2_env.sh")}
    for m in $(echo "$modes2" | tr , ' '); do
        case $m in
        eager|cl|compile|compile-cl|max-autotune) sides="$sides torch2-$m" ;;
        *) echo "vs_pytorch.sh: unknown --torch2 mode $m (eager, cl, compile, compile-cl, max-autotune)" >&2; exit 2 ;;
        esac
    done
fi
if [ -n "$out" ]; then  # runs go to FILE as they finish (a stopped run keeps what it measured)
    tmp=$out; : >"$tmp"
    trap 'rm -f "$tmp.err"' EXIT
else
    tmp=$(mktemp)
    trap 'rm -f "$tmp" "$tmp.err"' EXIT
fi
bargs="--threads $threads --steps $steps"
[ "$batch" -gt 0 ] && bargs="$bargs --batch $batch"
echo "# vs_pytorch.sh: $rounds rounds, $threads threads, $steps steps, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg), sides: $sides" >&2
nsides=$(echo $sides | wc -w)
run_side() {  # run_side SIDE CONFIG NAME ROUND: one JSON line tagged with side, cfg, round into $tmp
    case $1 in
    recur) set -- "$@" "$recur" bench "$2" ;;
    recur-base) set -- "$@" "$base" bench "$2" ;;
    torch) set -- "$@" env OMP_NUM_THREADS=$threads "$py" bench/torch_bench.py "$2" ${TORCH_ARGS:-} ;;
    torch2-eager) set -- "$@" env OMP_NUM_THREADS=$threads "$py2" bench/torch_bench.py "$2" ;;
    torch2-cl) set -- "$@" env OMP_NUM_THREADS=$threads "$py2" bench/torch_bench.py "$2" --channels-last ;;
    torch2-compile) set -- "$@" env OMP_NUM_THREADS=$threads "$py2" bench/torch_bench.py "$2" --compile ;;
    torch2-compile-cl) set -- "$@" env OMP_NUM_THREADS=$threads "$py2" bench/torch_bench.py "$2" --compile --channels-last ;;
    torch2-max-autotune) set -- "$@" env OMP_NUM_THREADS=$threads "$py2" bench/torch_bench.py "$2" --compile max-autotune ;;
    esac
    side=$1 name=$3 round=$4
    shift 4
    if line=$("$@" $bargs --json 2>"$tmp.err" | grep '^{'); then
        echo "$line" | sed "s/^{/{\"side\": \"$side\", \"cfg\": \"$name\", \"round\": $round, /" >>"$tmp"
    else
        echo "vs_pytorch.sh: $side on $name failed:" >&2
        tail -n 5 "$tmp.err" >&2
    fi
}
r=1
while [ "$r" -le "$rounds" ]; do
    for cfg in "$@"; do
        name=$(basename "$cfg" .cfg)
        # rotate the order by one side each round, so that no side always runs first or after another
        k=$(( (r - 1) % nsides )) order=""
        i=0
        for s in $sides; do
            if [ $i -lt $k ]; then tail_="${tail_:-} $s"; else order="$order $s"; fi
            i=$((i + 1))
        done
        for s in $order ${tail_:-}; do run_side "$s" "$cfg" "$name" "$r"; done
        tail_=""
        echo "  round $r/$rounds $name done (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    done
    r=$((r + 1))
done
"$py" "$(dirname "$0")/vs_pytorch_table.py" "$tmp"
