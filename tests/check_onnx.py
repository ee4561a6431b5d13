# check_onnx.py — checks models written by `recur export --format onnx` against `recur eval --save-logits`:
# onnx.checker accepts each, and onnxruntime on the first N test images of IMAGES (gzip IDX; fed as
# pixel / 255), at batch size 1 and N (the batch dimension is dynamic), gives every readout's logits to
# within 1e-4 (max abs diff) of recur's. N is the number of images in LOGITS.npy (images, readouts, classes).
# Usage: python check_onnx.py IMAGES.gz LABEL MODEL.onnx LOGITS.npy [LABEL MODEL LOGITS ...]
# (run by tests/test_onnx.sh; one process for all models, so onnx and onnxruntime load once)
import gzip
import sys

import numpy as np
import onnx
import onnxruntime as ort

TOL = 1e-4


def load_images(path, n):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, count, h, w = np.frombuffer(raw[:16], dtype=">u4")
    assert magic == 2051 and count >= n, (magic, count)
    pix = np.frombuffer(raw[16:16 + n * h * w], dtype=np.uint8)
    return (pix.reshape(n, 1, h, w) / np.float32(255)).astype(np.float32)


def check(images, label, path, logits_path, tol=TOL):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    for key in ("recur.version", "recur.config", "recur.data", "recur.input_mean", "recur.input_std"):
        assert key in meta, f"{label}: metadata {key} missing"
    assert "[model]" in meta["recur.config"], f"{label}: recur.config holds no config"

    want = np.load(logits_path)  # (images, readouts, classes)
    n, readouts, classes = want.shape
    names = [o.name for o in model.graph.output]
    assert names == [f"logits_{t + 1}" for t in range(readouts)], f"{label}: outputs {names}, want {readouts}"
    assert int(meta["recur.readouts"]) == readouts

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = load_images(images, n)
    whole = np.stack(sess.run(names, {"image": x}), axis=1)
    single = np.concatenate([np.stack(sess.run(names, {"image": x[i:i + 1]}), axis=1) for i in range(n)])
    assert whole.shape == want.shape and single.shape == want.shape, (whole.shape, single.shape, want.shape)
    worst = 0.0
    for t in range(readouts):
        d = max(np.abs(whole[:, t] - want[:, t]).max(), np.abs(single[:, t] - want[:, t]).max())
        worst = max(worst, float(d))
        if not d <= tol:
            print(f"FAIL {label}: readout {t + 1}: max abs diff {d:.3g} > {tol:g}")
            return False
    scale = float(np.abs(want).max())
    print(f"onnx {label}: {readouts} readouts x {n} images, batch 1 and {n}: max abs diff {worst:.3g} "
          f"(logits up to {scale:.3g})")
    return True


def main():
    images, rest = sys.argv[1], sys.argv[2:]
    if not rest or len(rest) % 3:
        sys.exit("usage: check_onnx.py IMAGES.gz LABEL MODEL.onnx LOGITS.npy [...]")
    ok = all([check(images, *rest[i:i + 3]) for i in range(0, len(rest), 3)])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
