#!/bin/sh
# Regenerate the seed corpora in fuzz/corpus/<target>/ (small valid inputs; committed). Needs build/recur
# (make), python3 and /usr/bin/python3 with numpy (the npy seeds). Run from the repository root:
# sh fuzz/make_seeds.sh. Rerun it when a file format changes (the checkpoint seeds are checkpoints of
# the fixed model in fuzz/fuzz_checkpoint.c).
set -eu
R=build/recur
[ -x "$R" ] || { echo "make_seeds: build $R first (make)"; exit 1; }
C=fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$C/config" "$C/checkpoint" "$C/idx" "$C/cifar" "$C/npy"

# configs: the zoo, the test config, and a few shapes the zoo lacks
for f in configs/*.cfg tests/configs/tiny.cfg; do cp "$f" "$C/config/$(basename "$f")"; done
printf '[model]\ninput = 3x12x10\nclasses = 5\nunroll = lockstep\nnorm = batch\nhead = per_iter\nloss = increasing\n[area A]\nchannels = 3\niterations = 2\ntied = no\ncell = convlstm\nkernel = 1\ntopdown = yes\n[area B]\nchannels = 2\niterations = 2\ntied = yes\ncell = residual\nstride = 3\nkernel = 5\n[train]\noptimizer = sgd\nnesterov = yes\nschedule = step\nval = 10\n' >"$C/config/lockstep_mix.cfg"
printf '[model]\nname = c2f ; trailing comment\ninput = 1x9x9\nnorm = none\nloss = coarse-to-fine\n\n# comment\n[area V1]\nchannels = 2\niterations = 3\ntied = yes\nbottomup = first\nlateral = yes\nkernel = 7\nstride = 4\n' >"$C/config/c2f_nonorm.cfg"

# checkpoints of the fixed model (keep this config in step with fuzz/fuzz_checkpoint.c); the *_v1.ckpt
# seeds beside them are version-1 checkpoints of the same model from the code before format 2 (kept, not
# regenerated)
python3 - "$T/d8" <<'PY'
import os, struct, sys
d = sys.argv[1]; os.makedirs(d)
for split, n in (("train", 8), ("t10k", 4)):
    open(f"{d}/{split}-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, n, 8, 8) + bytes((i * 7) % 256 for i in range(n * 64)))
    open(f"{d}/{split}-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n)))
PY
printf '[model]\nname = fz\ninput = 1x8x8\nclasses = 10\n[area V1]\nchannels = 4\niterations = 2\ntied = yes\n[train]\nbatch = 2\nepochs = 1\nthreads = 1\n' >"$T/fz.cfg"
"$R" train "$T/fz.cfg" --data "idx:$T/d8" --out "$T/run" --steps 1 --quiet
cp "$T/run/model.ckpt" "$C/checkpoint/fz_step1.ckpt"
"$R" train --resume "$T/run" --quiet
cp "$T/run/model.ckpt" "$C/checkpoint/fz_epoch1.ckpt"
"$R" train "$T/fz.cfg" --data "idx:$T/d8" --out "$T/run2" --set train.optimizer=sgd --set area.channels=3 --steps 1 --quiet
cp "$T/run2/model.ckpt" "$C/checkpoint/fz_other_shapes.ckpt"

# IDX: mode byte (bit 0 idx, bit 1 test split, bit 2 .gz names), u32le labels length, labels, images
python3 - "$C/idx" <<'PY'
import gzip, struct, sys
d = sys.argv[1]
def lab(n, classes): return struct.pack(">II", 0x801, n) + bytes(i % classes for i in range(n))
def img(n, h, w): return struct.pack(">IIII", 0x803, n, h, w) + bytes((i * 13) % 256 for i in range(n * h * w))
def seed(name, mode, l, i): open(f"{d}/{name}", "wb").write(bytes([mode]) + struct.pack("<I", len(l)) + l + i)
seed("mnist_plain", 0, lab(3, 10), img(3, 4, 4))
seed("idx_test_split", 3, lab(4, 3), img(4, 2, 5))
seed("mnist_gzip", 0, gzip.compress(lab(2, 10), mtime=0), gzip.compress(img(2, 3, 3), mtime=0))
seed("idx_gz_names", 5, gzip.compress(lab(2, 2), mtime=0), img(2, 1, 1))
PY

# CIFAR: mode byte (bit 0 CIFAR-100, bit 1 training split), then the file
python3 - "$C/cifar" <<'PY'
import sys
d = sys.argv[1]
px = bytes((i * 31) % 256 for i in range(3072))
open(f"{d}/c10_test", "wb").write(bytes([0]) + bytes([3]) + px + bytes([9]) + px)
open(f"{d}/c10_train", "wb").write(bytes([2]) + bytes([1]) + px)
open(f"{d}/c100_train", "wb").write(bytes([3]) + bytes([4, 30]) + px + bytes([4, 55]) + px + bytes([1, 1]) + px)
open(f"{d}/c100_test", "wb").write(bytes([1]) + bytes([19, 99]) + px)
PY
# npy: mode byte (bit 0 test split), u32le images file length, images .npy, labels .npy (numpy writes them)
mkdir -p "$C/npy"
/usr/bin/python3 - "$C/npy" <<'PY'
import io, struct, sys
import numpy as np
d = sys.argv[1]
def npy(a, version=None):
    b = io.BytesIO()
    if version: np.lib.format.write_array(b, a, version=version)
    else: np.save(b, a)
    return b.getvalue()
def seed(name, mode, x, y): open(f"{d}/{name}", "wb").write(bytes([mode]) + struct.pack("<I", len(x)) + x + y)
r = np.arange(3 * 4 * 5 * 3)
seed("u8_nhwc_i64", 0, npy((r % 256).astype(np.uint8).reshape(3, 4, 5, 3)), npy(np.array([0, 2, 1], np.int64)))
seed("f32_nchw_i32", 1, npy((r[:2 * 20] / 40.0).astype(np.float32).reshape(2, 1, 4, 5)), npy(np.array([1, 0], np.int32)))
seed("u8_nhw_u8_v2", 0, npy((r[:2 * 9] % 256).astype(np.uint8).reshape(2, 3, 3), (2, 0)), npy(np.array([3, 1], np.uint8)))
seed("f32_be_i8_be", 0, npy((r[:12] / 12.0).astype(">f4").reshape(1, 3, 2, 2)), npy(np.array([4], ">i8")))
PY
echo "make_seeds: $(ls "$C"/*/* | wc -l) seed files in $C"
