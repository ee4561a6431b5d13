"""check_export.py -- checks what `recur export` wrote for each run (tests/test_export.sh makes them).

Usage: python tests/check_export.py RECUR_BINARY CASE...   with CASE = RUN_DIR or RUN_DIR@ITERATIONS

Every run directory holds model.safetensors and model.npz (recur export) and L.npy (recur eval --limit N
--save-logits; for RUN@T, L_T.npy from recur eval --iterations T). For each case it checks:
  - the safetensors file, read with the `safetensors` package, and the npz, read with numpy.load
    (allow_pickle=False), hold the same tensors bit for bit, float32, C order, under the same names,
    each name of the documented form (docs/EXPORT.md); the trainable ones add up to `recur info`'s
    params; the metadata (safetensors __metadata__, npz __metadata__.KEY 0-d unicode arrays) is equal,
    has every documented key, and its config is the run's config.cfg, its version `recur --version`'s;
  - python/recur_torch.load(RUN) is an eval-mode module whose state_dict() keys are those names and
    whose per-readout logits on the first N Fashion-MNIST test images (read here with gzip + numpy)
    equal L.npy to 1e-4 (max abs difference printed); load_state_dict takes the file's tensors;
  - the first case is also loaded from its checkpoint file (recur_torch runs recur export itself) and
    must give the same logits.
Exits non-zero with a message on the first difference.
"""

import gzip
import json
import os
import re
import subprocess
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))
import recur_torch  # noqa: E402

TOL = 1e-4  # max abs difference, relative where a readout's logits exceed 1 in magnitude
META_KEYS = {"format", "recur_version", "config", "data", "input", "input_shape", "mean", "std", "names"}
NAME_RE = re.compile(r"^(head(\.t[1-9][0-9]*)?\.(weight|bias)"
                     r"|[A-Za-z0-9_-]+(\.t[1-9][0-9]*)?\.(bu|lat|td|conv2)\.(weight|bias)"
                     r"|[A-Za-z0-9_-]+(\.t[1-9][0-9]*)?\.(lat|conv2)\.pw\.weight"
                     r"|[A-Za-z0-9_-]+\.bn[2h]?(\.t[1-9][0-9]*)?\.(gamma|beta|running_mean|running_var))$")
FMNIST = os.path.join(os.environ.get("RECUR_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"),
                      "t10k-images-idx3-ubyte.gz")


def fail(msg):
    print("check_export: FAIL: " + msg)
    sys.exit(1)


def test_images(n):
    with gzip.open(FMNIST, "rb") as f:
        b = f.read()
    magic, count, rows, cols = (int.from_bytes(b[4 * i:4 * i + 4], "big") for i in range(4))
    if magic != 2051 or n > count:
        fail("%s: not an IDX image file with %d images" % (FMNIST, n))
    x = np.frombuffer(b, dtype=np.uint8, count=n * rows * cols, offset=16).reshape(n, 1, rows, cols)
    return torch.from_numpy(x.astype(np.float32) / np.float32(255.0))


def logits_of(model, x):
    with torch.no_grad():
        return np.stack([o.numpy() for o in model(x)], axis=1)  # (N, R, classes)


def check_files(recur, run):
    st_path, npz_path = os.path.join(run, "model.safetensors"), os.path.join(run, "model.npz")
    st = load_file(st_path)
    with safe_open(st_path, "np") as f:
        meta = f.metadata()
        order = list(f.keys())
    z = np.load(npz_path, allow_pickle=False)
    zt = {k: z[k] for k in z.files if not k.startswith("__metadata__.")}
    zm = {k[len("__metadata__."):]: z[k] for k in z.files if k.startswith("__metadata__.")}
    if set(st) != set(zt):
        fail("%s: safetensors and npz name different tensors: %s" % (run, sorted(set(st) ^ set(zt))[:6]))
    for name, a in st.items():
        b = zt[name]
        if not NAME_RE.match(name):
            fail("%s: tensor name %r is not of the documented form" % (run, name))
        if a.dtype != np.float32 or b.dtype != np.float32 or not b.flags.c_contiguous:
            fail("%s: %s: dtypes %s / %s (float32 expected)" % (run, name, a.dtype, b.dtype))
        if a.shape != b.shape or a.tobytes() != b.tobytes():
            fail("%s: %s differs between safetensors %s and npz %s" % (run, name, a.shape, b.shape))
        if not np.all(np.isfinite(a)):
            fail("%s: %s holds non-finite values" % (run, name))
    if set(meta) != META_KEYS or set(zm) != META_KEYS:
        fail("%s: metadata keys %s (safetensors) / %s (npz), expected %s" % (run, sorted(meta), sorted(zm),
                                                                               sorted(META_KEYS)))
    for k, v in meta.items():
        if zm[k].shape != () or zm[k].dtype.kind != "U" or str(zm[k]) != v:
            fail("%s: metadata %s differs: npz %r (%s) vs safetensors %r" % (run, k, str(zm[k])[:80], zm[k].dtype,
                                                                              v[:80]))
    with open(os.path.join(run, "config.cfg"), "r") as f:
        if meta["config"] != f.read():
            fail("%s: metadata config is not the run's config.cfg" % run)
    version = subprocess.check_output([recur, "--version"], universal_newlines=True).split()[1]
    if meta["recur_version"] != version:
        fail("%s: metadata recur_version %r, recur --version says %r" % (run, meta["recur_version"], version))
    data = recur_torch.parse_config(meta["config"])["train"]["data"]
    if meta["input"] != "pixel/255, NCHW" or meta["data"] != data or meta["input_shape"] != "1x28x28":
        fail("%s: metadata input %r data %r input_shape %r" % (run, meta["input"], meta["data"], meta["input_shape"]))
    mean, std = json.loads(meta["mean"]), json.loads(meta["std"])  # "[0.286...]": a JSON list
    if len(mean) != 1 or len(std) != 1 or not (0.2 < mean[0] < 0.4 and 0.3 < std[0] < 0.4):
        fail("%s: metadata mean %s std %s (Fashion-MNIST: about 0.286, 0.353)" % (run, mean, std))
    info = subprocess.check_output([recur, "info", os.path.join(run, "config.cfg"), "--json"], universal_newlines=True)
    params = int(re.search(r'"params"\s*:\s*(\d+)', info).group(1))
    trained = sum(a.size for n, a in st.items() if not n.endswith(("running_mean", "running_var")))
    if trained != params:
        fail("%s: the trainable tensors hold %d values, recur info says %d params" % (run, trained, params))
    return st, order


def main():
    if len(sys.argv) < 3:
        fail("usage: check_export.py RECUR_BINARY CASE...")
    recur = sys.argv[1]
    os.environ["RECUR"] = recur
    torch.set_num_threads(2)
    cache = {}
    x_all = None
    for i, case in enumerate(sys.argv[2:]):
        run, _, iters = case.partition("@")
        iters = int(iters) if iters else None
        if run not in cache:
            cache[run] = check_files(recur, run)
        st, order = cache[run]
        ref = np.load(os.path.join(run, "L_%d.npy" % iters if iters else "L.npy"))
        n = ref.shape[0]
        if x_all is None or x_all.shape[0] < n:
            x_all = test_images(n)
        model = recur_torch.load(run, iterations=iters)
        if model.training:
            fail("%s: recur_torch.load returned a module in train mode" % run)
        keys = list(model.state_dict())
        if sorted(keys) != sorted(order):
            fail("%s: state_dict keys differ from the exported names: %s" % (run, sorted(set(keys) ^ set(order))[:6]))
        model.load_state_dict({k: torch.from_numpy(v) for k, v in st.items()}, strict=True)
        got = logits_of(model, x_all[:n])
        if got.shape != ref.shape:
            fail("%s: recur_torch gives logits %s, recur eval %s" % (case, got.shape, ref.shape))
        diff = np.max(np.abs(got - ref), axis=(0, 2))  # per readout
        tol = TOL * np.maximum(1.0, np.max(np.abs(ref), axis=(0, 2)))
        print("check_export: %-12s %3d tensors, logits %s, max |recur_torch - recur eval| = %.3g (max |logit| %.3g)"
              % (os.path.basename(run) + ("@%d" % iters if iters else ""), len(st), "x".join(map(str, ref.shape)),
                 diff.max(), np.abs(ref).max()))
        if not np.all(diff <= tol):
            t = int(np.argmax(diff / tol))
            fail("%s: readout %d: recur_torch's logits differ from recur eval's by %.3g > %.3g" % (case, t + 1, diff[t],
                                                                                                   tol[t]))
        if i == 0 and iters is None:
            alt = recur_torch.load(os.path.join(run, "model.ckpt"))  # recur_torch runs recur export itself
            d2 = float(np.max(np.abs(logits_of(alt, x_all[:n]) - got)))
            if d2 != 0.0:
                fail("%s: the model loaded from model.ckpt differs from the one from model.safetensors by %g" % (run, d2))
    print("check_export: all %d cases passed" % (len(sys.argv) - 2))


if __name__ == "__main__":
    main()
