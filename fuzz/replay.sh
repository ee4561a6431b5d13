#!/bin/sh
# Replay every seed (fuzz/corpus/T) and regression input (fuzz/regressions/T) through each fuzz target
# linked with the plain replay driver (BUILD/fuzz/replay_T, built by make test with gcc and with clang
# ASan/UBSan). A crash or a broken invariant fails the test. Usage: sh fuzz/replay.sh BUILD
set -u
B=${1:-build}
for t in config checkpoint idx cifar npy; do
    "$B/fuzz/replay_$t" "fuzz/corpus/$t" "fuzz/regressions/$t" || { echo "FAILED: replay of fuzz_$t inputs ($B)"; exit 1; }
done
echo "fuzz replay passed ($B)"
