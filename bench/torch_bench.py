"""torch_bench.py -- the PyTorch side of bench/vs_pytorch.sh: times the twin (ref/twin.py) of a recur
config the way `recur bench` times recur (random batch, 3 warm-up steps, N training steps with the
config's optimizer, then N eval-mode forward passes under no_grad) and prints one JSON line with the
same keys: train_images_per_s, infer_images_per_s, peak_rss_mb (this process's ru_maxrss).

usage: PYTHON bench/torch_bench.py CONFIG [--batch N] [--threads N] [--steps N] [--set S.K=V]
                                       [--channels-last] [--compile [MODE]]
--channels-last puts the model and the batch in PyTorch's NHWC memory format (the default is NCHW, what
the twin uses); docs/PERFORMANCE.md compares both. --compile (PyTorch 2.x only) runs the model through
torch.compile (MODE: default, reduce-overhead, max-autotune; the inductor backend, which generates C++
with OpenMP on a CPU); the warm-up steps (not timed) do the compiling, and their time is printed as
warmup_s. --profile prints torch.profiler's per-op table (self CPU time, top 25) of the timed
training steps to stderr (PyTorch's counterpart of `recur bench --profile`). Works with Debian's PyTorch 1.13 (/usr/bin/python3) and a PyTorch 2.x (bench/torch2_env.sh).
"""

import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
# torch.compile on a CPU: inductor vectorises its C++ only if a probe library, built with its chosen ISA
# flags, loads; that library needs the vectorised math (Sleef) of libtorch_cpu, which `import torch`
# (RTLD_LOCAL) does not make visible, so the probe fails and every generated kernel is scalar (PyPI
# torch 2.15.0 on Debian 12; torch._inductor.cpu_vec_isa.pick_vec_isa() says INVALID_VEC_ISA). Loading
# libtorch with RTLD_GLOBAL (torch reads this variable at import) lets the probe pass (avx512).
if "--compile" in sys.argv:
    os.environ.setdefault("TORCH_USE_RTLD_GLOBAL", "1")

import torch  # noqa: E402

import twin  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="time the PyTorch twin of a recur config")
    ap.add_argument("config")
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--json", action="store_true", help="accepted like recur bench's (always JSON)")
    ap.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE")
    args = ap.parse_args()
    if args.compile and not hasattr(torch, "compile"):
        ap.error("--compile needs PyTorch 2.x (this is %s)" % torch.__version__)

    torch.set_num_threads(args.threads)
    model, cfg = twin.build_model(args.config, overrides=args.sets)
    if cfg.model["loss"] == "coarse-to-fine":  # random labels have no taxonomy (as recur bench)
        cfg.model["loss"] = "every"
    batch = args.batch or cfg.train["batch"]
    c, h, w = cfg.model["input"]
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(batch, c, h, w, generator=gen)
    y = torch.randint(0, cfg.model["classes"], (batch,), generator=gen)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = twin.make_optimizer(model, cfg, lr=1e-4)
    if args.compile:  # the compiled module forwards .cfg, .train() and the parameters to the model
        model = torch.compile(model, mode=args.compile)

    t0 = time.perf_counter()
    for _ in range(3):
        twin.train_step(model, opt, x, y)
    t_warm = time.perf_counter() - t0
    prof = None
    if args.profile:
        from torch.profiler import profile, ProfilerActivity
        prof = profile(activities=[ProfilerActivity.CPU])
        prof.__enter__()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        twin.train_step(model, opt, x, y)
    t_train = time.perf_counter() - t0
    if prof is not None:
        prof.__exit__(None, None, None)
        print("torch.profiler, %d training steps (%.3fs wall):" % (args.steps, t_train), file=sys.stderr)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25), file=sys.stderr)

    model.eval()
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(2):
            model(x)
        t_warm += time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(args.steps):
            model(x)
        t_inf = time.perf_counter() - t0

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({
        "model": cfg.model["name"], "batch": batch, "threads": args.threads, "steps": args.steps,
        "train_images_per_s": round(args.steps * batch / t_train, 2),
        "infer_images_per_s": round(args.steps * batch / t_inf, 2),
        "peak_rss_mb": round(rss_mb, 1), "channels_last": bool(args.channels_last),
        "compile": args.compile or "", "torch": torch.__version__, "warmup_s": round(t_warm, 2),
    }))


if __name__ == "__main__":
    main()
