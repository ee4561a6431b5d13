#!/bin/sh
# ablation.sh — what each part of recur's fast path buys on one model: `recur bench` with the whole plan,
# then with one part turned off at a time (RECUR_PLAN=noeval|nochunk|noremat|noshare|nofuse|noblocked|nostats,
# oneDNN's convolution kernels instead of recur's Winograd ones, the direct convolution algorithm instead
# of Winograd), variants alternating within each
# round; prints per variant the medians over rounds of train/infer images/s (and their ratio to the full
# plan measured in the same round), arena and peak RSS. A benchmark, not a test. Usage:
#   bench/ablation.sh [--rounds N] [--threads N] [--steps N] [--only V,V..] [CONFIG]   (default bench/configs/tied_bnpi.cfg)
# --only runs the whole plan and the named variants (e.g. --only nostats).
set -eu
rounds=3 threads=2 steps=8
variants="noeval nochunk noremat noshare nofuse noblocked nostats onednn direct"
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --only) variants=$(echo "$2" | tr ',' ' '); shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    -*) echo "ablation.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
cfg=${1:-bench/configs/tied_bnpi.cfg}
recur=${RECUR:-build/recur}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
echo "# ablation.sh: $cfg, $rounds rounds, $threads threads, $steps steps, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
r=1
while [ "$r" -le "$rounds" ]; do
    for v in full $variants; do
        case $v in
        full) env="" ;;
        onednn) env="RECUR_WINO=onednn" ;;
        direct) env="RECUR_CONV_ALGO=direct" ;;
        *) env="RECUR_PLAN=$v" ;;
        esac
        env $env "$recur" bench "$cfg" --threads "$threads" --steps "$steps" --json |
            sed "s/^{/{\"variant\": \"$v\", \"round\": $r, /" >>"$tmp"
    done
    echo "  round $r/$rounds done" >&2
    r=$((r + 1))
done
/usr/bin/python3 - "$tmp" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
full = {d["round"]: d for d in runs if d["variant"] == "full"}
names = {"full": "whole plan", "noeval": "no eval pipeline (inference in the training schedule)",
         "nochunk": "whole batch at a time (no micro-batches, no eval pipeline)",
         "noremat": "no rematerialisation", "noshare": "no arena sharing (and no remat)",
         "nofuse": "no fusion", "noblocked": "plain NCHW activations (reorders every conv)",
         "nostats": "batch-norm statistics in a pass of their own (not in the conv epilogue)",
         "onednn": "oneDNN's conv kernels (not recur's Winograd)",
         "direct": "direct conv only (oneDNN, no Winograd)"}
print("| variant | train img/s | vs whole plan | infer img/s | vs whole plan | arena MB | peak RSS MB |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for v in names:
    ds = [d for d in runs if d["variant"] == v]
    if not ds: continue
    med = lambda k: statistics.median(d[k] for d in ds)
    rt = statistics.median(d["train_images_per_s"] / full[d["round"]]["train_images_per_s"] for d in ds)
    ri = statistics.median(d["infer_images_per_s"] / full[d["round"]]["infer_images_per_s"] for d in ds)
    print("| %s | %.0f | %.2fx | %.0f | %.2fx | %.0f | %.0f |" % (names[v], med("train_images_per_s"), rt,
          med("infer_images_per_s"), ri, med("arena_mb"), med("peak_rss_mb")))
PY
