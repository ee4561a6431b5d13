#!/bin/sh
# Install the Debian packages recur needs to build, test and run its demo, if any is missing.
# Runs apt-get only when something is absent (root, or sudo when available).
# `deps.sh demo`: only what building recur and training the demo need (make demo), not the test tools.
pkgs="build-essential clang libclang-rt-14-dev libomp-14-dev zlib1g-dev libdnnl-dev dataset-fashion-mnist python3-torch gnuplot-nox valgrind openmpi-bin libopenmpi-dev python3-venv pkgconf"
[ "${1:-}" = demo ] && pkgs="build-essential zlib1g-dev libdnnl-dev dataset-fashion-mnist"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "recur: installing missing packages:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO=sudo
$SUDO apt-get update -qq || exit 1
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null || exit 1
