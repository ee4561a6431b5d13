#!/bin/sh
# vs_pytorch.sh — recur against its PyTorch twin on identical models, side by side: for each round and
# each model, `recur bench` and bench/torch_bench.py run one after the other (each its own process, so
# peak RSS is per run), alternating which goes first; then per model the median and spread (min..max
# over rounds) of the per-round ratios recur/PyTorch for training and inference images/s, and of
# PyTorch/recur for peak RSS. A benchmark, not a test. Usage (from the repository root):
#   bench/vs_pytorch.sh [--rounds N] [--threads N] [--steps N] [--batch N] [--out FILE.jsonl] [CONFIG ...]
# Default configs: bench/configs/*.cfg. TORCH_ARGS (e.g. --channels-last) is passed to torch_bench.py. Needs build/recur (make) and /usr/bin/python3 with torch.
set -eu
rounds=5 threads=2 steps=10 batch=0 out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    -*) echo "vs_pytorch.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || set -- bench/configs/*.cfg
recur=${RECUR:-build/recur}
py=${PYTHON:-/usr/bin/python3}
[ -x "$recur" ] || { echo "vs_pytorch.sh: $recur not built (run make)" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
bargs="--threads $threads --steps $steps"
[ "$batch" -gt 0 ] && bargs="$bargs --batch $batch"
echo "# vs_pytorch.sh: $rounds rounds, $threads threads, $steps steps, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
r=1
while [ "$r" -le "$rounds" ]; do
    for cfg in "$@"; do
        name=$(basename "$cfg" .cfg)
        run_recur() { "$recur" bench "$cfg" $bargs --json | sed "s/^{/{\"side\": \"recur\", \"cfg\": \"$name\", \"round\": $r, /" >>"$tmp"; }
        run_torch() { OMP_NUM_THREADS=$threads "$py" bench/torch_bench.py "$cfg" $bargs ${TORCH_ARGS:-} | sed "s/^{/{\"side\": \"torch\", \"cfg\": \"$name\", \"round\": $r, /" >>"$tmp"; }
        if [ $((r % 2)) -eq 1 ]; then run_recur; run_torch; else run_torch; run_recur; fi
        echo "  round $r/$rounds $name done" >&2
    done
    r=$((r + 1))
done
[ -n "$out" ] && cp "$tmp" "$out"
"$py" - "$tmp" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for d in runs:
    by.setdefault(d["cfg"], {}).setdefault(d["round"], {})[d["side"]] = d
def fmt(xs):
    return "%.2fx (%.2f..%.2f)" % (statistics.median(xs), min(xs), max(xs))
print("| model | MFLOP/img | train img/s recur / torch (median) | train ratio | infer ratio | peak RSS MB recur / torch | RSS torch/recur |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for cfg, rounds in by.items():
    pairs = [v for v in rounds.values() if "recur" in v and "torch" in v]
    tr = [p["recur"]["train_images_per_s"] / p["torch"]["train_images_per_s"] for p in pairs]
    inf = [p["recur"]["infer_images_per_s"] / p["torch"]["infer_images_per_s"] for p in pairs]
    rss = [p["torch"]["peak_rss_mb"] / p["recur"]["peak_rss_mb"] for p in pairs]
    med = lambda side, k: statistics.median(p[side][k] for p in pairs)
    print("| %s | %.0f | %.0f / %.0f | %s | %s | %.0f / %.0f | %s |" % (
        cfg, pairs[0]["recur"]["flops_per_image"] / 1e6, med("recur", "train_images_per_s"),
        med("torch", "train_images_per_s"), fmt(tr), fmt(inf), med("recur", "peak_rss_mb"),
        med("torch", "peak_rss_mb"), fmt(rss)))
PY
