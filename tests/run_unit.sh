#!/bin/sh
# Run every C test binary in BUILD/tests; fail if any fails. Usage: tests/run_unit.sh BUILD
build=${1:-build}
fails=0
for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    echo "== $t"
    if ! "$t"; then echo "FAILED: $t"; fails=$((fails + 1)); fi
done
if [ "$fails" -ne 0 ]; then echo "$fails test binaries failed"; exit 1; fi
echo "all unit tests passed ($build)"
