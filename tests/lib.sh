# lib.sh — what the CLI test scripts share, sourced from the repository root (`. tests/lib.sh`): B (the build
# directory: the script's first argument, default build), R (its recur), T (a temporary directory removed at
# exit), and the checks fail, ok (counted in $pass) and expect_fail.
set -u
B=${1:-build}
R="$B/recur"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { pass=$((pass + 1)); }
# expect_fail NAME PATTERN CMD...: CMD must exit non-zero and its stderr must match PATTERN (grep -E)
expect_fail() {
    name=$1; pat=$2; shift 2
    if "$@" >"$T/out" 2>"$T/err"; then fail "$name: succeeded, expected an error"; fi
    grep -Eq "$pat" "$T/err" || { cat "$T/err"; fail "$name: stderr does not match '$pat'"; }
    ok
}
