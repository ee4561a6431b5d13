#!/bin/sh
# test_reliability.sh — "nothing lost, nothing crashes" through the recur CLI: malformed inputs for every
# parser (one error line naming the file, exit 1 or 2, no crash or hang), absurd sizes refused before any
# allocation, wrong pairings, kill -9 and SIGINT/SIGTERM with byte-identical resume, full disk and
# read-only checkpoint writes, --check-numerics. docs/RELIABILITY.md describes each check.
# Usage: tests/test_reliability.sh BUILD [full|quick|valgrind]   (quick: the SAN subset; valgrind: memcheck)
set -u
B=${1:-build}
MODE=${2:-full}
R="$B/recur"
[ -x "$R" ] || { echo "test_reliability: $R is missing"; exit 1; }
T=$(mktemp -d)
cp "$R" "$T/recur" && R="$T/recur" # immune to a rebuild of BUILD while the tests run
MNT=""
PIDS=""
cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    [ -n "$MNT" ] && umount "$MNT" 2>/dev/null
    if [ -n "${RECUR_REL_KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
pass=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { pass=$((pass + 1)); }
note() { echo "  note: $*"; }

# bad NAME PATTERN CMD...: CMD must exit 1 or 2 (not 0, not a signal or timeout) within 120 s, and write
# exactly one line on stderr that starts with "recur" and matches PATTERN (grep -E).
bad() {
    name=$1; pat=$2; shift 2
    if [ "$MODE" = full ]; then
        (ulimit -v 8388608; exec timeout 120 "$@") >"$T/out" 2>"$T/err"
    else
        timeout 300 "$@" >"$T/out" 2>"$T/err"
    fi
    rc=$?
    [ $rc -eq 1 ] || [ $rc -eq 2 ] || { cat "$T/err"; fail "$name: exit status $rc, expected 1 or 2"; }
    [ "$(wc -l <"$T/err")" -eq 1 ] || { cat "$T/err"; fail "$name: expected exactly one line on stderr"; }
    grep -q '^recur' "$T/err" || { cat "$T/err"; fail "$name: the error line does not start with 'recur'"; }
    grep -Eq "$pat" "$T/err" || { cat "$T/err"; fail "$name: stderr does not match '$pat'"; }
    [ -n "${RECUR_REL_TABLE:-}" ] && printf '%s\t%s\n' "$name" "$(cat "$T/err")" >>"$RECUR_REL_TABLE"
    ok
}

# ---- data and config ---------------------------------------------------------------------------
python3 - "$T" <<'PY' || fail "making the test data"
import os, struct, sys, random
t = sys.argv[1]; random.seed(5)
def idx(d, splits, h=28, w=28, classes=10):
    os.makedirs(d, exist_ok=True)
    for split, n in splits:
        labels = [i % classes for i in range(n)]
        with open(f"{d}/{split}-images-idx3-ubyte", "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, h, w))
            for l in labels: f.write(bytes((l * 25 + random.randrange(9)) % 256 for _ in range(h * w)))
        with open(f"{d}/{split}-labels-idx1-ubyte", "wb") as f:
            f.write(struct.pack(">II", 0x801, n)); f.write(bytes(labels))
idx(f"{t}/mn", (("train", 512), ("t10k", 64)))
idx(f"{t}/mixed", (("train", 64),))
idx(f"{t}/mixed", (("t10k", 16),), h=32, w=32)      # test split of another size
idx(f"{t}/twelve", (("train", 64), ("t10k", 16)), classes=12)
px = bytes((i * 7) % 256 for i in range(3072))
c10 = f"{t}/c10"; os.makedirs(c10)
for k in range(1, 6): open(f"{c10}/data_batch_{k}.bin", "wb").write(b"".join(bytes([r % 10]) + px for r in range(8)))
open(f"{c10}/test_batch.bin", "wb").write(b"".join(bytes([r % 10]) + px for r in range(4)))
c100 = f"{t}/c100"; os.makedirs(c100)
for s, n in (("train", 8), ("test", 4)):
    open(f"{c100}/{s}.bin", "wb").write(b"".join(bytes([r % 20, r % 20 + 20 * (r % 5)]) + px for r in range(n)))
PY
cat >"$T/rel.cfg" <<EOF
# a small tied recurrent net on 512 synthetic 28x28 images: about 1 s of training on one thread
# (the run_cli.sh resume test covers 2 threads; one thread keeps this fast on a busy machine)
[model]
name = rel
[area V1]
channels = 12
iterations = 3
tied = yes
[train]
data = mnist:$T/mn
epochs = 5
batch = 8
lr = 0.01
warmup_epochs = 0
threads = 1
EOF
CFG="$T/rel.cfg"
SPE=64 # steps per epoch: 512 images / batch 8
EPOCHS=5

# csv_ok DIR: train.csv has the header and exactly one row per epoch, epochs 1..EPOCHS in order
csv_ok() {
    awk -F, -v E=$EPOCHS 'NR == 1 { if ($1 != "epoch") bad = 1; next } { n++; if ($1 != n) bad = 1 }
        END { exit (bad || n != E) }' "$1/train.csv" || { cat "$1/train.csv"; fail "$1/train.csv: not one row per epoch"; }
}

if [ "$MODE" = valgrind ]; then
    # ---- valgrind memcheck: train (oneDNN JIT), resume (reference ops), eval, three error paths ---------
    # One thread: with more, libgomp's pool threads are reported "possibly lost" at exit (their TLS), a
    # known false positive; one thread needs no suppression file at all.
    command -v valgrind >/dev/null || fail "valgrind is not installed (scripts/deps.sh installs it)"
    VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible"
    small="--set area.V1.channels=4 --set area.V1.iterations=2 --set area.V1.stride=2 --set train.limit=64 --batch 16"
    small="$small --epochs 2 --threads 1 --quiet"
    vg() { # vg EXPECTED-STATUS WHAT CMD...
        want=$1 what=$2; shift 2
        "$@" >"$T/vg.out" 2>"$T/vg.err"
        got=$?
        [ $got -eq "$want" ] || { cat "$T/vg.err"; fail "valgrind: $what: exit status $got, expected $want (99: memcheck errors)"; }
        ok
    }
    vg 0 "train --steps 3 (oneDNN)" $VG "$R" train "$CFG" $small --out "$T/vg" --steps 3
    vg 0 "resume (RECUR_REFERENCE=1)" env RECUR_REFERENCE=1 $VG "$R" train --resume "$T/vg" --quiet
    vg 0 "eval" $VG "$R" eval "$T/vg" --limit 32 --batch 16
    head -c 2000 "$T/vg/model.ckpt" >"$T/vg/cut.ckpt"
    vg 1 "eval of a truncated checkpoint" $VG "$R" eval "$T/vg/cut.ckpt"
    vg 1 "a NaN stop with --check-numerics" env RECUR_INJECT_NAN_STEP=6 $VG "$R" train "$CFG" $small --out "$T/vg2" --check-numerics
    grep -q "produced NaN in forward at step 6" "$T/vg.err" || { cat "$T/vg.err"; fail "valgrind: NaN stop message"; }
    vg 1 "a bad config" $VG "$R" train "$T/vg/cut.ckpt" --quiet
    echo "valgrind memcheck passed: $pass runs without errors or leaks ($B)"
    exit 0
fi

# ---- 1. malformed configs (recur info / train) ---------------------------------------------------
printf '[model]\0\n' >"$T/nul.cfg"
bad "config: NUL byte" "nul.cfg:1: NUL byte" "$R" info "$T/nul.cfg"
head -c 3000 /dev/urandom | tr -d '\000' >"$T/random.cfg"
bad "config: random bytes" "random.cfg(:[0-9]+)?: " "$R" info "$T/random.cfg"
python3 -c "print('[model]'); print('name = ' + 'x' * 5000)" >"$T/long.cfg"
bad "config: 5000-character line" "long.cfg:2: line is 5007 characters; the limit is 4096" "$R" info "$T/long.cfg"
python3 -c "import sys; sys.stdout.write(('# ' + 'x' * 1000 + '\n') * 1100)" >"$T/big.cfg"
bad "config: over 1 MiB" "big.cfg: config is larger than 1048576 bytes" "$R" info "$T/big.cfg"
printf '[model\nname = x\n' >"$T/hdr.cfg"
bad "config: unclosed section" "hdr.cfg:1: section header '\[model' has no closing" "$R" info "$T/hdr.cfg"
printf '[model]\nclasses = 10\nclasses = 12\n' >"$T/dup.cfg"
bad "config: duplicate key" "dup.cfg:3: duplicate key 'classes'.*line 2" "$R" info "$T/dup.cfg"
printf '[model]\n[area V1]\nchannels = 5000\niterations = 2\ntied = yes\n' >"$T/range.cfg"
bad "config: value out of range" "range.cfg:3: channels = 5000 is out of range \[1, 1024\]" "$R" info "$T/range.cfg"
: >"$T/empty.cfg"
bad "config: empty file" "empty.cfg: no \[area NAME\] section" "$R" info "$T/empty.cfg"
mkdir -p "$T/cfgdir"
bad "config: a directory" "cfgdir: cannot read config: Is a directory" "$R" info "$T/cfgdir"
bad "config: missing file" "nothere.cfg: cannot open config: No such file" "$R" info "$T/nothere.cfg"

# ---- 6. limits: absurd combinations are refused before allocation ---------------------------------
cat >"$T/huge.cfg" <<EOF
[model]
input = 3x4096x4096
[area V1]
channels = 1024
iterations = 256
tied = yes
[train]
batch = 65536
data = mnist:$T/mn
EOF
bad "limits: 1024 ch x 256 it x 4096x4096 (info, batch 1)" "needs about [0-9.e+]+ MB at batch 1 .*over the memory limit of [0-9.e+]+ MB" \
    "$R" info "$T/huge.cfg"
bad "limits: 1024 ch x 256 it at batch 512 on 28x28 (train)" "needs about [0-9.e+]+ MB at batch 512 .*over the memory limit" \
    "$R" train "$T/huge.cfg" --set model.input=1x28x28 --batch 512 --out "$T/huge" --quiet
bad "limits: RECUR_MAX_MEMORY_MB=0.1" "over the memory limit of 0.1 MB \(RECUR_MAX_MEMORY_MB=0.1\)" \
    env RECUR_MAX_MEMORY_MB=0.1 "$R" train "$CFG" --out "$T/lim" --quiet
bad "limits: RECUR_MAX_MEMORY_MB=lots" "RECUR_MAX_MEMORY_MB='lots' is not a positive number" \
    env RECUR_MAX_MEMORY_MB=lots "$R" info "$CFG"
# the limit applies to the planned arena (liveness sharing, train.recompute), not to an unshared bound:
# 64 tied steps need 74 MB at batch 8 without recomputation and 14 MB with recompute = 4
cat >"$T/long.cfg" <<EOF
[model]
input = 1x28x28
norm = batch_per_iter
[area V1]
channels = 16
iterations = 64
tied = yes
cell = residual
[train]
batch = 8
EOF
bad "limits: 64 steps over RECUR_MAX_MEMORY_MB=40" "over the memory limit of 40 MB .*set train.recompute" \
    env RECUR_MAX_MEMORY_MB=40 "$R" bench "$T/long.cfg" --steps 1 --threads 1
env RECUR_MAX_MEMORY_MB=40 "$R" bench "$T/long.cfg" --steps 1 --threads 1 --set train.recompute=4 >"$T/out" 2>"$T/err" ||
    { cat "$T/err"; fail "limits: 64 steps with recompute = 4 should fit in 40 MB"; }
ok

# ---- 2. malformed IDX files (recur train --data idx:DIR) -----------------------------------------
# mkidx DIR: a copy of the good training split, with the test split; then the caller damages it
mkidx() { rm -rf "$1"; mkdir -p "$1"; cp "$T/mn"/* "$1"/; }
# (the paths in these command prefixes hold no spaces: mktemp -d names)
TI="$R train $CFG --out $T/idxrun --force --quiet --data idx:"
D="$T/idx"
mkidx "$D"; printf '\000\000\010\002\000\000\000\001\000' >"$D/train-labels-idx1-ubyte"
bad "IDX: bad magic" "train-labels-idx1-ubyte: bad IDX magic 0x00000802 at byte offset 0, expected 0x00000801" $TI"$D"
mkidx "$D"; cp "$T/mn/train-images-idx3-ubyte" "$D/train-labels-idx1-ubyte"
bad "IDX: images file as labels" "expected 0x00000801 .*looks like an IDX images file" $TI"$D"
mkidx "$D"; printf '\000\000\010\003\000\000' >"$D/train-images-idx3-ubyte"
bad "IDX: truncated header" "train-images-idx3-ubyte: truncated: the IDX header should fill bytes 0..16, but the data ends at byte offset 6" $TI"$D"
mkidx "$D"; head -c 100000 "$T/mn/train-images-idx3-ubyte" >"$D/train-images-idx3-ubyte"
bad "IDX: truncated pixels" "truncated: the pixel bytes should fill bytes 16..401424, but the data ends at byte offset 100000" $TI"$D"
mkidx "$D"; printf 'extra' >>"$D/train-labels-idx1-ubyte"
bad "IDX: trailing bytes" "train-labels-idx1-ubyte: unexpected data after byte offset 520" $TI"$D"
mkidx "$D"; python3 -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('>II',0x801,511)+bytes(511))" "$D/train-labels-idx1-ubyte"
bad "IDX: count mismatch" "has 512 images but .*train-labels-idx1-ubyte has 511 labels" $TI"$D"
mkidx "$D"; python3 -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('>II',0x801,512)+bytes(100)+bytes([12])+bytes(411))" "$D/train-labels-idx1-ubyte"
bad "IDX (mnist): label out of range" "train-labels-idx1-ubyte: label 12 at index 100 \(byte offset 108\) is out of range 0..9" \
    "$R" train "$CFG" --data "mnist:$D" --out "$T/idxrun" --force --quiet
mkidx "$D"; python3 -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('>II',0x801,4000000000))" "$D/train-labels-idx1-ubyte"
bad "IDX: 4e9 labels in the header" "header says 4000000000 labels, over the limit of 10000000" $TI"$D"
mkidx "$D"; python3 -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('>II',0x801,9000000))" "$D/train-labels-idx1-ubyte"
bad "IDX: 9e6 labels, 8 bytes of file" "truncated: the label bytes should fill bytes 8..9000008, but the data ends at byte offset 8" $TI"$D"
mkidx "$D"; python3 -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('>IIII',0x803,512,5000,28))" "$D/train-images-idx3-ubyte"
bad "IDX: 5000-pixel side" "header says 5000x28 images, over the side limit of 4096" $TI"$D"
mkidx "$D"; python3 -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('>IIII',0x803,9000000,4000,4000))" "$D/train-images-idx3-ubyte"
bad "IDX: 144 TB of pixels in the header" "over the limit of 4294967296 \(RC_DATA_MAX_BYTES\)" $TI"$D"
mkidx "$D"; python3 -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('>IIII',0x803,512,0,28))" "$D/train-images-idx3-ubyte"
bad "IDX: zero dimension" "IDX dimension 1 \(byte offset 8\) is 0" $TI"$D"
mkidx "$D"; gzip -c "$T/mn/train-images-idx3-ubyte" | head -c 3000 >"$D/train-images-idx3-ubyte.gz"
bad "IDX: truncated gzip" "train-images-idx3-ubyte.gz: truncated: .*\(uncompressed\)" $TI"$D"
mkidx "$D"; gzip -c "$T/mn/train-images-idx3-ubyte" >"$T/z.gz"
python3 -c "
import sys; b = bytearray(open(sys.argv[1],'rb').read()); b[len(b)//2:len(b)//2+64] = bytes(64); open(sys.argv[2],'wb').write(b)" "$T/z.gz" "$D/train-images-idx3-ubyte.gz"
bad "IDX: corrupted gzip" "train-images-idx3-ubyte.gz: (read error near byte offset [0-9]+ \(uncompressed\): [a-z]|truncated)" $TI"$D"
bad "IDX: missing directory" "cannot find .*/nodir/train-labels-idx1-ubyte" $TI"$T/nodir"

# ---- 2. malformed CIFAR files ---------------------------------------------------------------------
mkc() { rm -rf "$T/c"; cp -r "$T/$1" "$T/c"; }
C3="--set model.input=3x32x32"
TC="$R train $CFG $C3 --out $T/crun --force --quiet --data"
mkc c10; head -c 5000 "$T/c10/data_batch_1.bin" >"$T/c/data_batch_3.bin"
bad "CIFAR-10: size not a multiple of 3073" "data_batch_3.bin: size 5000 bytes is not a multiple of the 3073-byte record" $TC "cifar10:$T/c"
mkc c10; : >"$T/c/data_batch_2.bin"
bad "CIFAR-10: empty file" "data_batch_2.bin: empty file" $TC "cifar10:$T/c"
mkc c10; python3 -c "
import sys; b = bytearray(open(sys.argv[1],'rb').read()); b[3073*5] = 10; open(sys.argv[1],'wb').write(b)" "$T/c/data_batch_4.bin"
bad "CIFAR-10: label 10" "data_batch_4.bin: record 5 \(byte offset 15365\): label 10 is out of range 0..9" $TC "cifar10:$T/c"
mkc c100; python3 -c "
import sys; b = bytearray(open(sys.argv[1],'rb').read()); b[3074*2] = 25; open(sys.argv[1],'wb').write(b)" "$T/c/train.bin"
bad "CIFAR-100: coarse label 25" "train.bin: record 2 \(byte offset 6148\): coarse label 25 is out of range 0..19" $TC "cifar100:$T/c"
mkc c100; python3 -c "
import sys; b = bytearray(open(sys.argv[1],'rb').read()); b[3074*3+1] = 100; open(sys.argv[1],'wb').write(b)" "$T/c/train.bin"
bad "CIFAR-100: fine label 100" "record 3 \(byte offset 9223\): fine label 100 is out of range 0..99" $TC "cifar100:$T/c"
mkc c100; python3 -c "
import sys; b = bytearray(open(sys.argv[1],'rb').read()); b[3074*5] = 7; b[3074*5+1] = b[1]; open(sys.argv[1],'wb').write(b)" "$T/c/train.bin"
bad "CIFAR-100: inconsistent taxonomy" "record 5 .*fine class 0 \(apple\) has coarse label 7, but record 0 of .*gave it coarse label 0" $TC "cifar100:$T/c"
mkc c10
if truncate -s $((3073 * 10000001)) "$T/c/data_batch_5.bin" 2>/dev/null; then
    bad "CIFAR-10: 30 GB sparse file" "data_batch_5.bin: 10000001 records, over the limit of 10000000" $TC "cifar10:$T/c"
else
    note "truncate cannot make a sparse file here: the 30 GB CIFAR check is skipped"
fi
rm -f "$T/c/data_batch_5.bin"
bad "CIFAR-10: missing file" "cannot open .*data_batch_5.bin: No such file" $TC "cifar10:$T/c"

# ---- 2. malformed checkpoints (recur eval) -------------------------------------------------------
"$R" train "$CFG" --out "$T/good" --steps 3 --quiet || fail "train --steps 3"
"$R" train "$CFG" --out "$T/other" --steps 1 --quiet --set area.V1.channels=6 || fail "train another model"
K="$T/good/model.ckpt"
: >"$T/k_empty.ckpt"
bad "checkpoint: empty" "k_empty.ckpt: not a recur checkpoint: the file is 0 bytes" "$R" eval "$T/k_empty.ckpt"
cp "$CFG" "$T/k_text.ckpt"
bad "checkpoint: a text file" "k_text.ckpt: not a recur checkpoint \(wrong magic number at byte offset 0\)" "$R" eval "$T/k_text.ckpt"
# ckmod OUT PYTHON-EXPR: b = bytearray of the good checkpoint; the expression edits b; fix=1 re-seals the CRC
ckmod() {
    python3 - "$K" "$1" "$2" "${3:-0}" <<'PY'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], 'rb').read())
exec(sys.argv[3])
if sys.argv[4] == "1": b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])))
open(sys.argv[2], 'wb').write(b)
PY
}
ckmod "$T/k_ver.ckpt" "b[8] = 3"
bad "checkpoint: version 3" "k_ver.ckpt: byte offset 8: checkpoint format version 3, this build reads versions 1 to 2" "$R" eval "$T/k_ver.ckpt"
ckmod "$T/k_sums.ckpt" "L = struct.unpack('<I', b[12:16])[0]; o = 16 + L + 120; b[o:o+8] = struct.pack('<q', 1 << 40)" 1
bad "checkpoint: more images right than seen (CRC fixed)" "k_sums.ckpt: byte offset [0-9]+: epoch_correct is 1099511627776, outside \[0, [0-9]+\]" "$R" eval "$T/k_sums.ckpt"
ckmod "$T/k_half.ckpt" "del b[len(b)//2:]"
bad "checkpoint: truncated to half" "k_half.ckpt: checksum mismatch .*truncated or corrupted" "$R" eval "$T/k_half.ckpt"
ckmod "$T/k_flip.ckpt" "b[len(b)-100] ^= 0x10"
bad "checkpoint: one flipped bit" "k_flip.ckpt: checksum mismatch \(stored 0x[0-9a-f]{8} at byte offset [0-9]+, computed 0x[0-9a-f]{8}\)" "$R" eval "$T/k_flip.ckpt"
ckmod "$T/k_cfglen.ckpt" "b[12:16] = struct.pack('<I', 0xFFFFFFF0)" 1
bad "checkpoint: 4 GB config length (CRC fixed)" "k_cfglen.ckpt: byte offset 12: config text length 4294967280 exceeds the limit of 1048576 bytes" "$R" eval "$T/k_cfglen.ckpt"
ckmod "$T/k_nparams.ckpt" "L = struct.unpack('<I', b[12:16])[0]; o = 16 + L + 176; b[o:o+4] = struct.pack('<I', 16000000)" 1
bad "checkpoint: 16 million params (CRC fixed)" "k_nparams.ckpt: byte offset [0-9]+: 16000000 params cannot fit in the remaining [0-9]+ bytes" "$R" eval "$T/k_nparams.ckpt"
ckmod "$T/k_cfgtext.ckpt" "b[:] = b.replace(b'channels', b'chanelsx', 1)" 1
bad "checkpoint: bad stored config (CRC fixed)" "k_cfgtext.ckpt \(stored config\):[0-9]+: unknown key 'chanelsx'" "$R" eval "$T/k_cfgtext.ckpt"
bad "checkpoint: a directory" "cfgdir/model.ckpt: no checkpoint" "$R" eval "$T/cfgdir"

# ---- 8. wrong pairings ---------------------------------------------------------------------------
python3 - "$K" "$T/other/model.ckpt" "$T/k_mixed.ckpt" <<'PY'
import struct, sys, zlib
a = open(sys.argv[1], 'rb').read(); o = open(sys.argv[2], 'rb').read()
la = struct.unpack('<I', a[12:16])[0]; lo = struct.unpack('<I', o[12:16])[0]
b = bytearray(a[:16 + la] + o[16 + lo:-4])  # config of one model, params of the other
b[12:16] = struct.pack('<I', la); b += struct.pack('<I', zlib.crc32(bytes(b)))
open(sys.argv[3], 'wb').write(b)
PY
bad "pairing: params of another model" "k_mixed.ckpt: param V1.bu.weight has shape 6x1x3x3 in the checkpoint, 12x1x3x3 in the model" "$R" eval "$T/k_mixed.ckpt"
cp -r "$T/good" "$T/swap"; cp "$T/other/model.ckpt" "$T/swap/model.ckpt"
bad "pairing: resume a run whose model.ckpt is another run's" "swap/config.cfg differs from the config stored in .*swap/model.ckpt" "$R" train --resume "$T/swap"
bad "pairing: test split of another image size" "has 1x32x32 images, model expects 1x28x28" "$R" train "$CFG" --data "idx:$T/mixed" --out "$T/pr" --force --quiet
bad "pairing: 12 classes, model.classes = 10" "has 12 classes but model.classes = 10" "$R" train "$CFG" --data "idx:$T/twelve" --out "$T/pr" --force --quiet
bad "pairing: CIFAR-10 with model.classes = 100" "cifar10:.* has 10 classes but model.classes = 100" "$R" train "$CFG" $C3 --set model.classes=100 --data "cifar10:$T/c10" --out "$T/pr" --force --quiet
bad "pairing: CIFAR-100 with model.classes = 10" "cifar100:.* has 100 classes but model.classes = 10" "$R" train "$CFG" $C3 --data "cifar100:$T/c100" --out "$T/pr" --force --quiet
bad "pairing: eval on CIFAR-10 images" "has 3x32x32 images, model expects 1x28x28" "$R" eval "$T/good" --data "cifar10:$T/c10"

# ---- 9. numerical faults ---------------------------------------------------------------------------
S=$((SPE + 5)) # in epoch 2, after the epoch-1 checkpoint
bad "numerics: NaN input, no --check-numerics" "at step $S \(epoch 2(, step 5 of 64)?\); stopped; the last good checkpoint is .*nan1/model.ckpt" \
    env RECUR_INJECT_NAN_STEP=$S "$R" train "$CFG" --out "$T/nan1" --quiet
"$R" eval "$T/nan1" --limit 16 >/dev/null 2>"$T/eval.err" || { cat "$T/eval.err"; fail "the last good checkpoint after a NaN stop does not load"; }; ok
bad "numerics: NaN input, --check-numerics" "V1.t1.bu \(conv2d\) produced NaN in forward at step $S \(epoch 2, step 5 of 64\)" \
    env RECUR_INJECT_NAN_STEP=$S "$R" train "$CFG" --out "$T/nan2" --quiet --check-numerics
bad "numerics: NaN loss gradient, --check-numerics" "readout.t3.logits \(linear\) produced NaN in backward \(in the gradient of readout.t3.pool\) at step $S" \
    env RECUR_INJECT_NAN_STEP=$S:grad "$R" train "$CFG" --out "$T/nan3" --quiet --check-numerics
bad "numerics: sgd lr 100 without norm diverges" "loss is (NaN|Inf) at step [0-9]+|gradient of .* is not finite" \
    "$R" train "$CFG" --out "$T/nan4" --quiet --set train.optimizer=sgd --lr 100 --set model.norm=none
bad "numerics: the same with --check-numerics" "\((conv2d|linear|relu|add|gap)\) produced (NaN|Inf) in (forward|backward).* at step [0-9]+" \
    "$R" train "$CFG" --out "$T/nan5" --quiet --set train.optimizer=sgd --lr 100 --set model.norm=none --check-numerics
"$R" eval "$T/nan3" --limit 16 >/dev/null 2>&1 || fail "the last good checkpoint after a --check-numerics stop does not load"; ok

# ---- the uninterrupted reference run -----------------------------------------------------------------
"$R" train "$CFG" --out "$T/ref" --quiet || fail "reference run"
csv_ok "$T/ref"; ok
REF="$T/ref/model.ckpt"
if [ "$MODE" = full ]; then
    "$R" train "$CFG" --out "$T/chk" --quiet --check-numerics || fail "run with --check-numerics"
    cmp "$T/chk/model.ckpt" "$REF" || fail "--check-numerics changed the result"; ok
fi

# ---- 5. SIGINT / SIGTERM: exit 0, the message, then an exact resume --------------------------------
TOTAL=$((SPE * EPOCHS))
# wait_step LOG PID G: until the progress lines in LOG ("epoch E/N step S/M", every SPE/10 steps) reach
# global step G, or PID has exited; 120 s at most. The poll is far faster than the lines come.
wait_step() {
    i=0
    while kill -0 "$2" 2>/dev/null && [ $i -lt 12000 ]; do
        g=$(awk -v spe=$SPE '/^epoch [0-9]+\/[0-9]+ step [0-9]+\// { split($2, e, "/"); split($4, t, "/"); g = (e[1] - 1) * spe + t[1] }
            END { print g + 0 }' "$1")
        [ "${g:-0}" -ge "$3" ] && return 0
        sleep 0.01
        i=$((i + 1))
    done
}
# wait_ckpt DIR PID: until DIR/model.ckpt exists, or PID has exited; 60 s at most
wait_ckpt() {
    i=0
    while [ ! -f "$1/model.ckpt" ] && kill -0 "$2" 2>/dev/null && [ $i -lt 3000 ]; do sleep 0.02; i=$((i + 1)); done
}
# rnd LO HI: a random integer in [LO, HI]
rnd() { echo $(($(od -An -N4 -tu4 /dev/urandom) % ($2 - $1 + 1) + $1)); }
for sig in INT TERM; do
    D="$T/sig$sig"
    G=$(rnd 8 $((TOTAL - 16)))
    "$R" train "$CFG" --out "$D" 2>"$D.err" &
    pid=$!; PIDS="$PIDS $pid"
    wait_step "$D.err" $pid "$G"
    kill -s $sig $pid 2>/dev/null || note "SIG$sig: the run had already finished"
    wait $pid
    rc=$?
    [ $rc -eq 0 ] || { cat "$D.err"; fail "SIG$sig: exit status $rc, expected 0"; }
    if grep -q "^recur: stopped at epoch" "$D.err"; then
        msg=$(grep "^recur: stopped at epoch" "$D.err")
        echo "$msg" | grep -Eq "stopped at epoch [0-9]+ step [0-9]+; checkpoint $D/model.ckpt; resume with: recur train --resume $D$" ||
            fail "SIG$sig: unexpected message: $msg"
        pos=$(echo "$msg" | sed 's/.*stopped at \(epoch [0-9]* step [0-9]*\);.*/\1/')
        "$R" train --resume "$D" 2>"$D.err2" || { cat "$D.err2"; fail "SIG$sig: resume"; }
        grep -q "resuming $D at $pos " "$D.err2" || { cat "$D.err2"; fail "SIG$sig: resumed somewhere else than '$pos'"; }
        echo "  SIG$sig at about global step $G: $pos, exit 0, resumed"
    else
        note "SIG$sig arrived after the last step; nothing to resume"
    fi
    cmp "$D/model.ckpt" "$REF" || fail "SIG$sig: the resumed run's checkpoint differs from the uninterrupted run's"
    csv_ok "$D"
    ok
done

# a second signal quits at once: stopped, the run gets SIGINT and SIGTERM, then continues; the second
# handler finds the first's request and re-raises (status 130 or 143); the last checkpoint resumes exactly
D="$T/sig2"
"$R" train "$CFG" --out "$D" --ckpt-every 0.02 2>"$D.err" &
pid=$!; PIDS="$PIDS $pid"
wait_ckpt "$D" $pid
wait_step "$D.err" $pid "$(rnd 8 $((TOTAL - 16)))"
kill -STOP $pid && kill -INT $pid && kill -TERM $pid && kill -CONT $pid || fail "double signal: the run ended early"
wait $pid
rc=$?
{ [ $rc -eq 130 ] || [ $rc -eq 143 ]; } || { cat "$D.err"; fail "double signal: exit status $rc, expected 130 or 143"; }
grep -q "stopping at the next step boundary with a checkpoint (signal again to quit now)" "$D.err" ||
    { cat "$D.err"; fail "double signal: no notice on the first signal"; }
"$R" train --resume "$D" --quiet || fail "double signal: resume"
cmp "$D/model.ckpt" "$REF" || fail "double signal: the resumed run differs from the uninterrupted run"
echo "  a second signal: exit status $rc at once, resumed to a byte-identical checkpoint"
ok

# ---- regression: a stop that lands on an epoch's last step of a resumed epoch makes progress --------
"$R" train "$CFG" --out "$T/edge" --steps 5 --quiet || fail "edge: --steps 5"
"$R" train --resume "$T/edge" --steps $((SPE - 5)) 2>"$T/edge.err" || { cat "$T/edge.err"; fail "edge: resume"; }
grep -q "stopped at epoch 2 step 0;" "$T/edge.err" || { cat "$T/edge.err"; fail "edge: a stop at the epoch's end lost the epoch"; }
[ "$(grep -c . "$T/edge/train.csv")" -eq 2 ] || fail "edge: train.csv should hold epoch 1"
ok

# ---- 4. kill -9 at random steps after a checkpoint exists, resume, byte-identical ----------------------
rounds=3
[ "$MODE" = quick ] && rounds=1
D="$T/kill"
killed=0
GS=$(for n in $(seq $rounds); do rnd 8 $((TOTAL - 8)); done | sort -n | tr '\n' ' ')
"$R" train "$CFG" --out "$D" --ckpt-every 0.02 2>"$D.err" &
pid=$!
r=0
for G in $GS end; do
    PIDS="$PIDS $pid"
    if [ "$G" != end ]; then
        wait_ckpt "$D" $pid
        wait_step "$D.err" $pid "$G"
        if kill -9 $pid 2>/dev/null; then
            wait $pid
            [ $? -eq 137 ] && killed=$((killed + 1)) && echo "  kill -9 at about global step $G (round $((r + 1)))"
        else
            wait $pid || fail "kill: a run that was not killed failed"
        fi
        "$R" train --resume "$D" --ckpt-every 0.02 2>>"$D.err" &
        pid=$!
    else
        wait $pid || { tail "$D.err"; fail "kill: the final resume failed"; }
    fi
    r=$((r + 1))
done
[ $killed -ge 1 ] || note "every kill landed after the run had finished (a slow machine?)"
cmp "$D/model.ckpt" "$REF" || fail "kill -9 and resume: the final checkpoint differs from the uninterrupted run's"
csv_ok "$D"
echo "  kill -9: $killed of $rounds kills landed mid-run; resumed to a byte-identical checkpoint"
ok

# ---- 7. full disk and read-only file system during a checkpoint write ------------------------------
if [ "$(id -u)" -eq 0 ] && mkdir -p "$T/mnt" && mount -t tmpfs -o size=1m tmpfs "$T/mnt" 2>/dev/null; then
    MNT="$T/mnt"
    D="$MNT/run"
    "$R" train "$CFG" --out "$D" --steps 3 --quiet || fail "disk: --steps 3"
    cp "$D/model.ckpt" "$T/before.ckpt"
    dd if=/dev/zero of="$MNT/fill" bs=4096 2>/dev/null # until the disk is full
    bad "disk full: checkpoint write" "$D/model.ckpt: (writing|syncing|closing) $D/model.ckpt.tmp failed: No space left on device" \
        "$R" train --resume "$D" --steps 3 --quiet
    cmp "$D/model.ckpt" "$T/before.ckpt" || fail "disk full: the previous checkpoint changed"
    [ ! -e "$D/model.ckpt.tmp" ] || fail "disk full: model.ckpt.tmp was left behind"
    "$R" eval "$D" --limit 16 >/dev/null 2>&1 || fail "disk full: the previous checkpoint does not load"; ok
    rm -f "$MNT/fill"
    mount -o remount,ro "$MNT" || fail "cannot remount read-only"
    bad "read-only file system: checkpoint write" "$D/model.ckpt: cannot create temporary file $D/model.ckpt.tmp: Read-only file system" \
        "$R" train --resume "$D" --steps 3 --quiet
    mount -o remount,rw "$MNT" || fail "cannot remount read-write"
    cmp "$D/model.ckpt" "$T/before.ckpt" || fail "read-only: the previous checkpoint changed"
    "$R" train --resume "$D" --quiet || fail "disk: resume after space came back"
    cmp "$D/model.ckpt" "$REF" || fail "disk: the run resumed after the failures differs from the uninterrupted run"
    csv_ok "$D"; ok
    umount "$MNT" && MNT=""
    echo "  disk full and read-only: tested on a 1 MB tmpfs"
else
    # no mount (not root, or no CAP_SYS_ADMIN): the checkpoint's temporary file is a link to /dev/full
    D="$T/full"
    "$R" train "$CFG" --out "$D" --steps 3 --quiet || fail "disk: --steps 3"
    cp "$D/model.ckpt" "$T/before.ckpt"
    ln -s /dev/full "$D/model.ckpt.tmp"
    bad "disk full (/dev/full): checkpoint write" "$D/model.ckpt: (writing|syncing) $D/model.ckpt.tmp failed: No space left on device" \
        "$R" train --resume "$D" --steps 3 --quiet
    cmp "$D/model.ckpt" "$T/before.ckpt" || fail "disk full: the previous checkpoint changed"
    "$R" eval "$D" --limit 16 >/dev/null 2>&1 || fail "disk full: the previous checkpoint does not load"
    "$R" train --resume "$D" --quiet || fail "disk: resume after the failure"
    cmp "$D/model.ckpt" "$REF" || fail "disk: the run resumed after the failure differs from the uninterrupted run"
    ok
    if [ "$(id -u)" -ne 0 ]; then
        D="$T/ro"
        "$R" train "$CFG" --out "$D" --steps 3 --quiet || fail "ro: --steps 3"
        chmod 555 "$D"
        bad "unwritable directory: checkpoint write" "cannot create temporary file $D/model.ckpt.tmp: Permission denied" \
            "$R" train --resume "$D" --steps 3 --quiet
        chmod 755 "$D"
    fi
    echo "  disk full: tested with a link to /dev/full (mount -t tmpfs is not permitted here)"
fi

echo "all reliability tests passed ($pass checks, $B, $MODE)"
