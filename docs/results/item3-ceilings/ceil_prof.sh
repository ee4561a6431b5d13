#!/bin/sh
# ceil_prof.sh — the ceilings of issue 16 item 3: the per-op profile (bn+act forward, backward, replay; convolutions) and training images/s of a build with ceilings.patch, as built and with CEIL_FWD / CEIL_BWD, 3 alternating rounds, 1 thread
cd "$(dirname "$0")/../../.."
B=${CEIL_RECUR:?set CEIL_RECUR to a recur built with ceilings.patch applied (README.md here)}
for r in 1 2 3; do
  for cfg in configs/topdown.cfg bench/configs/tied.cfg; do
    for v in base fwd bwd; do
      [ $v = fwd ] && [ $cfg != configs/topdown.cfg ] && continue
      case $v in base) e="";; fwd) e="CEIL_FWD=1";; bwd) e="CEIL_BWD=1";; esac
      env $e $B bench $cfg --threads 1 --steps 3 --profile 2>&1 | awk -v r=$r -v c=$(basename $cfg .cfg) -v v=$v '
        /^train:/ {tr=$2} /graph time/ {gt=$7; sub(/\(graph time /,"",gt)} /^profile of 3 inference/ {inf=1}
        /^bn\+act/ && !inf {bf=$3; bb=$4; br=$5} /^conv2d/ && !inf {cf=$3; cb=$4}
        END {print r, c, v, "train", tr, "bn_fwd", bf, "bn_bwd", bb, "bn_replay", br, "conv_fwd", cf, "conv_bwd", cb}'
    done
  done
done
