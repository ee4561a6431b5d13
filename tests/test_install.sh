#!/bin/sh
# Install test: `make install` into a temporary prefix (from BUILD's objects), then a C program
# (tests/install_demo.c) built against the installed copy only, via pkg-config, linked shared and static,
# checks rc_net_predict against `recur eval --save-logits` of the installed bin/recur; DESTDIR staging and
# `make uninstall` leave nothing behind. Usage: tests/test_install.sh BUILD_DIR (after `make BUILD=... shared`).
set -u
B=${1:-build}
CC=${CC:-cc}
MAKE=${MAKE:-make}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: test_install: $*"; exit 1; }
P="$T/prefix"
N=100

# install from the objects already built (BUILD's flags come with MAKEFLAGS when run from make)
"$MAKE" --no-print-directory -s install BUILD="$B" PREFIX="$P" >"$T/make.log" 2>&1 || { cat "$T/make.log"; fail "make install"; }
grep -q "CC  " "$T/make.log" && { cat "$T/make.log"; fail "make install recompiled objects"; }
for f in bin/recur lib/librecur.a lib/librecur.so lib/librecur.so.0 include/recur.h lib/pkgconfig/recur.pc; do
    [ -e "$P/$f" ] || fail "make install did not install $f"
done
[ "$(readlink "$P/lib/librecur.so")" = librecur.so.0 ] || fail "librecur.so does not point to librecur.so.0"
readelf -d "$P/lib/librecur.so" | grep -q 'SONAME.*\[librecur\.so\.0\]' || fail "librecur.so has no soname librecur.so.0"
# the shared library exports the functions of recur.h and nothing else
nm -D --defined-only "$P/lib/librecur.so" | awk '{print $3}' | sort >"$T/exported"
sed -n 's/^[a-z].*[ *]\(rc_[a-z_]*\)(.*/\1/p' "$P/include/recur.h" | sort >"$T/declared"
[ -s "$T/declared" ] && cmp -s "$T/exported" "$T/declared" || { diff "$T/declared" "$T/exported"; fail "exported symbols != recur.h"; }

export PKG_CONFIG_PATH="$P/lib/pkgconfig"
pkg-config --exists recur || fail "pkg-config does not find recur.pc"
[ "$(pkg-config --modversion recur)" = "$("$P/bin/recur" --version | sed 's/^recur \([^ ]*\).*/\1/')" ] || fail "recur.pc version != recur --version"
# the header alone compiles (no -Isrc), also as C++-safe C99
echo '#include <recur.h>' >"$T/h.c"
$CC -std=c99 -Wall -Wextra -Werror -pedantic $(pkg-config --cflags recur) -c "$T/h.c" -o "$T/h.o" || fail "recur.h is not self-contained"
W="-std=c11 -O1 -Wall -Wextra -Werror"
$CC $W -o "$T/demo_shared" tests/install_demo.c $(pkg-config --cflags --libs recur) -lm || fail "shared link"
readelf -d "$T/demo_shared" | grep -q 'NEEDED.*librecur\.so\.0' || fail "demo_shared does not load librecur.so.0"
# static: pkg-config --static adds Libs.private; -l:librecur.a picks the archive over the .so
$CC $W -o "$T/demo_static" tests/install_demo.c $(pkg-config --cflags recur) \
    $(pkg-config --static --libs recur | sed 's/-lrecur\b/-l:librecur.a/') -lm || fail "static link"
readelf -d "$T/demo_static" | grep -q 'librecur' && fail "demo_static still needs librecur.so"

# a briefly trained run (installed bin/recur), its logits on the first N test images, and those images
"$P/bin/recur" train tests/configs/tiny.cfg --out "$T/run" --steps 3 --quiet || fail "installed recur train"
"$P/bin/recur" eval "$T/run" --limit $N --save-logits "$T/logits.npy" >/dev/null || fail "installed recur eval"
D=${RECUR_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
gzip -dc "$D/t10k-images-idx3-ubyte.gz" | tail -c +17 | head -c $((N * 784)) >"$T/images.u8"
gzip -dc "$D/t10k-labels-idx1-ubyte.gz" | tail -c +9 | head -c $N >"$T/labels.u8"

mkdir -p "$T/out_shared" "$T/out_static"
LD_LIBRARY_PATH="$P/lib" "$T/demo_shared" "$T/run" "$T/images.u8" "$T/labels.u8" $N "$T/logits.npy" "$T/out_shared" \
    || fail "install_demo (shared)"
"$T/demo_static" "$T/run" "$T/images.u8" "$T/labels.u8" $N "$T/logits.npy" "$T/out_static" >"$T/static.out" \
    || { cat "$T/static.out"; fail "install_demo (static)"; }

# DESTDIR stages under a root with the final prefix in recur.pc; uninstall removes every file
"$MAKE" --no-print-directory -s install BUILD="$B" DESTDIR="$T/stage" PREFIX=/opt/recur >/dev/null 2>&1 || fail "install DESTDIR"
grep -q '^prefix=/opt/recur$' "$T/stage/opt/recur/lib/pkgconfig/recur.pc" || fail "DESTDIR leaked into recur.pc"
"$MAKE" --no-print-directory -s uninstall BUILD="$B" DESTDIR="$T/stage" PREFIX=/opt/recur >/dev/null || fail "uninstall"
[ -z "$(find "$T/stage" -type f -o -type l)" ] || { find "$T/stage"; fail "uninstall left files"; }
echo "test_install: all passed ($B)"
