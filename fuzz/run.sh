#!/bin/sh
# Run each libFuzzer target (built by `make fuzz` into build-fuzz/) for SECONDS, one process each, from the
# seeds in fuzz/corpus/T, the regressions in fuzz/regressions/T and what earlier runs kept in
# build-fuzz/corpus/T. Prints runs and executions/s per target; on a crash it prints the input's path and
# exits non-zero. Usage: sh fuzz/run.sh SECONDS [TARGET...]   (targets: config checkpoint idx cifar npy)
set -u
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-config checkpoint idx cifar npy}
B=build-fuzz
fails=0
for t in $targets; do
    exe=$B/fuzz_$t
    [ -x "$exe" ] || { echo "fuzz/run.sh: $exe is missing; build it with 'make fuzz'"; exit 2; }
    mkdir -p "$B/corpus/$t" "$B/crashes/$t"
    case $t in config) len=8192 ;; idx | npy) len=4096 ;; *) len=16384 ;; esac
    dirs="$B/corpus/$t fuzz/corpus/$t"
    [ -d "fuzz/regressions/$t" ] && dirs="$dirs fuzz/regressions/$t"
    dict=""
    [ -f "fuzz/$t.dict" ] && dict="-dict=fuzz/$t.dict"
    log=$B/fuzz_$t.log
    # shellcheck disable=SC2086
    "$exe" $dict -max_total_time="$secs" -max_len=$len -timeout=20 -rss_limit_mb=2560 -print_final_stats=1 \
        -artifact_prefix="$B/crashes/$t/" $dirs >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz_$t: ${secs}s, ${runs:-?} runs, ${eps:-?} exec/s, $cov, corpus $(ls "$B/corpus/$t" | wc -l) new files, peak RSS ${rss:-?} MB"
    if [ $rc -ne 0 ]; then
        fails=$((fails + 1))
        echo "FAILED: fuzz_$t exited with $rc; the end of $log:"
        tail -40 "$log"
        for c in "$B/crashes/$t"/*; do
            [ -f "$c" ] && echo "  crashing input: $c (fix it, then keep it: cp $c fuzz/regressions/$t/)"
        done
    fi
done
[ $fails -eq 0 ] || { echo "fuzz/run.sh: $fails target(s) crashed"; exit 1; }
echo "fuzz/run.sh: no crash in ${secs}s per target"
