"""make_fixtures.py -- write tests/fixtures/*.bin from ref/configs/*.cfg with the PyTorch twin, after
validating the twin itself. Run from anywhere: /usr/bin/python3 ref/make_fixtures.py [NAME ...]

Fixture format (little-endian): "RCFX", u32 version (1), u32 record count, then per record:
u32 name length, name bytes, u32 dtype (0 float32, 1 int32, 2 raw bytes), u32 ndim, u32 dims[ndim],
data. See ref/README.md for the records each fixture holds.
"""

import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import twin  # noqa: E402

ROOT = os.path.dirname(HERE)
CFG_DIR = os.path.join(HERE, "configs")
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")
N_BATCH = 4
TRAIN_STEPS = 10
MAX_BYTES = 300 * 1024

FIXTURES = [
    "ff_untied", "tied_bnpi_every", "tied_bnpi_final", "tied_bn_shared", "residual", "convlstm",
    "topdown", "nonorm_c2f", "untied_lockstep_perhead", "mixed_odd", "single_c2f",
    "blocked_mix", "blocked_lstm",  # channels of 16: recur's blocked, fused fast path
    "dense_recall",  # recall, a dense head and a masked per-position loss (algorithmic tasks)
    "ponder",  # model.halting = ponder: halting heads and the PonderNet loss
    "grouped", "grouped_untied",  # area groups: grouped and depthwise(-separable) state convs
    "gru", "gru_untied", "gru_recall", "blocked_gru",  # cell = gru: tied, untied, recall, blocked
    "gru_grouped",  # cell = gru with grouped / depthwise-separable lateral convs
]


# ---------------------------------------------------------------------------------------------------
# writer
# ---------------------------------------------------------------------------------------------------

class Writer(object):
    def __init__(self):
        self.recs = []
        self.names = set()

    def _add(self, name, dtype, dims, payload):
        assert name not in self.names, name
        self.names.add(name)
        self.recs.append((name, dtype, tuple(int(d) for d in dims), payload))

    def f32(self, name, t):
        a = np.ascontiguousarray(torch.as_tensor(t).detach().cpu().numpy(), dtype="<f4")
        if a.ndim == 0:
            a = a.reshape(1)
        self._add(name, 0, a.shape, a.tobytes())

    def i32(self, name, t):
        a = np.ascontiguousarray(np.asarray(t), dtype="<i4")
        if a.ndim == 0:
            a = a.reshape(1)
        self._add(name, 1, a.shape, a.tobytes())

    def raw(self, name, b):
        if isinstance(b, str):
            b = b.encode("utf-8")
        self._add(name, 2, (len(b),), b)

    def bytes(self):
        out = [b"RCFX", struct.pack("<II", 1, len(self.recs))]
        for name, dtype, dims, payload in self.recs:
            nb = name.encode("utf-8")
            out.append(struct.pack("<I", len(nb)) + nb)
            out.append(struct.pack("<II", dtype, len(dims)) + struct.pack("<%dI" % len(dims), *dims))
            out.append(payload)
        return b"".join(out)

    def save(self, path):
        data = self.bytes()
        assert len(data) < MAX_BYTES, "%s is %d bytes" % (path, len(data))
        with open(path, "wb") as f:
            f.write(data)
        return len(data)


def read_fixture(path):
    """Parse a fixture back (used to check the writer): dict name -> (dtype, dims, numpy array|bytes)."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:4] == b"RCFX"
    ver, n = struct.unpack_from("<II", b, 4)
    assert ver == 1
    off = 12
    out = {}
    for _ in range(n):
        (ln,) = struct.unpack_from("<I", b, off)
        off += 4
        name = b[off:off + ln].decode()
        off += ln
        dtype, ndim = struct.unpack_from("<II", b, off)
        off += 8
        dims = struct.unpack_from("<%dI" % ndim, b, off)
        off += 4 * ndim
        cnt = int(np.prod(dims)) if ndim else 1
        size = cnt if dtype == 2 else 4 * cnt
        payload = b[off:off + size]
        off += size
        if dtype == 0:
            val = np.frombuffer(payload, "<f4").reshape(dims)
        elif dtype == 1:
            val = np.frombuffer(payload, "<i4").reshape(dims)
        else:
            val = payload
        out[name] = (dtype, dims, val)
    assert off == len(b)
    return out


# ---------------------------------------------------------------------------------------------------
# fixture generation
# ---------------------------------------------------------------------------------------------------

def batch_for(cfg, idx):
    """(x, labels); dense readouts: labels = (targets (N, H, W), mask (N, H, W), about 3/4 kept)."""
    g = torch.Generator().manual_seed(1000 + idx)
    c, h, w = cfg.model["input"]
    x = torch.randn(N_BATCH, c, h, w, generator=g)
    if cfg.model["readout"] == "dense":
        t = torch.randint(0, cfg.model["classes"], (N_BATCH, h, w), generator=g)
        return x, (t, torch.rand(N_BATCH, h, w, generator=g) < 0.75)
    y = torch.randint(0, cfg.model["classes"], (N_BATCH,), generator=g)
    return x, y


def make_fixture(name, idx):
    path = os.path.join(CFG_DIR, name + ".cfg")
    with open(path, "r") as f:
        text = f.read()
    cfg = twin.parse_config(text, source=path)
    assert cfg.train["batch"] == N_BATCH and cfg.train["schedule"] == "constant"
    assert cfg.train["warmup_epochs"] == 0
    model = twin.RecurNet(cfg)
    x, y = batch_for(cfg, idx)
    init = model.recur_state()
    R = cfg.readouts()

    w = Writer()
    w.raw("config", text)
    w.f32("input", x)
    if cfg.model["readout"] == "dense":
        w.i32("labels", torch.zeros(N_BATCH, dtype=torch.int32))
        w.i32("targets", y[0])
        w.i32("mask", y[1].to(torch.int32))
    else:
        w.i32("labels", y)
    for n in model.recur_names:
        w.f32("param/" + n, init[n])

    # one train-mode forward + backward
    model.train()
    model.zero_grad(set_to_none=False)
    logits = model(x)
    assert len(logits) == R
    total, fines = twin.scheduled_loss(logits, y, cfg)
    total.backward()
    for t in range(R):
        w.f32("logits/%d" % (t + 1), logits[t])
        w.f32("loss/%d" % (t + 1), fines[t].detach().reshape(1))
    w.f32("loss_total", total.detach().reshape(1))
    for n in model.param_names:
        g = model.get(n).grad  # None: the param does not reach the loss (a zero gradient)
        w.f32("grad/" + n, torch.zeros_like(model.get(n)) if g is None else g)
    for n in model.buffer_names:
        w.f32("running/" + n, model.get(n))
    depth = model.last_depth

    # eval with the updated running statistics
    model.eval()
    with torch.no_grad():
        ev = model(x)
    for t in range(R):
        w.f32("eval_logits/%d" % (t + 1), ev[t])

    # 10 optimizer steps from the initial state, constant learning rate
    model.load_recur_state(init)
    model.reset_running_stats()
    for n in model.param_names:
        model.get(n).grad = None
    opt = twin.make_optimizer(model, cfg)
    losses = []
    for s in range(TRAIN_STEPS):
        lr = twin.lr_at(s, TRAIN_STEPS, TRAIN_STEPS, cfg.train)
        assert lr == cfg.train["lr"]
        losses.append(twin.train_step(model, opt, x, y, lr=lr))
    w.f32("train_losses", torch.tensor(losses, dtype=torch.float32))
    for n in model.recur_names:
        w.f32("trained/" + n, model.get(n))

    w.i32("info/effective_depth", [depth])
    w.i32("info/trainable_params", [model.trainable_count()])
    w.i32("info/readouts", [R])

    out = os.path.join(OUT_DIR, name + ".bin")
    size = w.save(out)
    back = read_fixture(out)
    assert abs(float(back["loss_total"][2][0]) - float(total)) == 0.0
    assert back["config"][2] == text.encode()
    return cfg, model, size, losses, depth


def make_schedule_fixture():
    """lr_schedule.bin: the learning rate at every step for a few [train] settings.
    Records: "count" (int32, 1); per case I = 1..count: "case/I/config" (raw: a full cfg text),
    "case/I/steps_per_epoch" (int32, 1), "case/I/lr" (float32, epochs * steps_per_epoch)."""
    base = "[model]\ninput = 1x12x12\n\n[area V1]\nchannels = 2\niterations = 1\ntied = yes\n\n[train]\n"
    cases = [
        ("lr = 0.1\nschedule = cosine\nwarmup_epochs = 1\nepochs = 4\n", 5),
        ("lr = 0.1\nschedule = cosine\nwarmup_epochs = 0\nepochs = 3\n", 4),
        ("lr = 0.002\nschedule = constant\nwarmup_epochs = 2\nepochs = 5\n", 3),
        ("lr = 0.5\nschedule = step\nstep_every = 2\nstep_gamma = 0.5\nwarmup_epochs = 1\nepochs = 7\n", 3),
        ("lr = 0.3\nschedule = cosine\nwarmup_epochs = 0.5\nepochs = 3\n", 5),
        ("lr = 0.01\nschedule = step\nwarmup_epochs = 0\nepochs = 65\n", 1),
    ]
    w = Writer()
    w.i32("count", [len(cases)])
    for i, (tr, spe) in enumerate(cases, 1):
        text = base + tr
        cfg = twin.parse_config(text, source="<schedule %d>" % i)
        S = cfg.train["epochs"] * spe
        lrs = [twin.lr_at(s, S, spe, cfg.train) for s in range(S)]
        w.raw("case/%d/config" % i, text)
        w.i32("case/%d/steps_per_epoch" % i, [spe])
        w.f32("case/%d/lr" % i, torch.tensor(lrs, dtype=torch.float64).float())
    # spot checks of the formula
    c1 = twin.parse_config(base + cases[0][0])
    assert abs(twin.lr_at(0, 20, 5, c1.train) - 0.02) < 1e-15
    assert abs(twin.lr_at(4, 20, 5, c1.train) - 0.1) < 1e-15
    assert abs(twin.lr_at(5, 20, 5, c1.train) - 0.1) < 1e-15
    c4 = twin.parse_config(base + cases[3][0])
    assert abs(twin.lr_at(3 * 6, 21, 3, c4.train) - 0.0625) < 1e-15
    return w.save(os.path.join(OUT_DIR, "lr_schedule.bin")), len(cases)


# ---------------------------------------------------------------------------------------------------
# self-checks of the twin
# ---------------------------------------------------------------------------------------------------

def _functional_loss(model, names, x, y):
    from torch.nn.utils import stateless

    def f(*params):
        d = {twin._key(n): p for n, p in zip(names, params)}
        logits = stateless.functional_call(model, d, (x,))
        return twin.scheduled_loss(logits, y, model.cfg)[0]
    return f


def check_gradcheck(name, n=2, hw=None):
    """torch.autograd.gradcheck in float64 over every trainable param, train mode, tiny batch."""
    cfg = twin.load_config(os.path.join(CFG_DIR, name + ".cfg"))
    if hw is not None:
        cfg = twin.load_config(os.path.join(CFG_DIR, name + ".cfg"),
                               overrides=["model.input=%dx%dx%d" % (cfg.model["input"][0], hw, hw)])
    model = twin.RecurNet(cfg).double()
    model.train()
    g = torch.Generator().manual_seed(7)
    c, h, w_ = cfg.model["input"]
    x = torch.randn(n, c, h, w_, generator=g, dtype=torch.float64)
    if cfg.model["readout"] == "dense":
        y = (torch.randint(0, cfg.model["classes"], (n, h, w_), generator=g), torch.rand(n, h, w_, generator=g) < 0.75)
    else:
        y = torch.randint(0, cfg.model["classes"], (n,), generator=g)
    names = list(model.param_names)
    params = tuple(model.get(p).detach().clone().requires_grad_(True) for p in names)
    f = _functional_loss(model, names, x, y)
    ok = torch.autograd.gradcheck(f, params, eps=1e-6, atol=1e-5, rtol=1e-4)
    assert ok, name
    return sum(p.numel() for p in params)


def check_directional(name, ndirs=3):
    """Analytic vs central-difference derivative of the scheduled loss along random directions, float64."""
    cfg = twin.load_config(os.path.join(CFG_DIR, name + ".cfg"))
    model = twin.RecurNet(cfg).double()
    model.train()
    x, y = batch_for(cfg, 99)
    x = x.double()
    names = list(model.param_names)
    params = [model.get(p).detach().clone() for p in names]
    f = _functional_loss(model, names, x, y)
    ps = [p.clone().requires_grad_(True) for p in params]
    loss = f(*ps)
    grads = torch.autograd.grad(loss, ps)
    g = torch.Generator().manual_seed(5)
    worst = 0.0
    for _ in range(ndirs):
        dirs = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params]
        analytic = sum(float((gr * d).sum()) for gr, d in zip(grads, dirs))
        # ReLU kinks a step may cross make one eps unreliable: take the best of a few
        best = float("inf")
        for eps in (1e-5, 1e-6, 1e-7):
            with torch.no_grad():
                lp = float(f(*[p + eps * d for p, d in zip(params, dirs)]))
                lm = float(f(*[p - eps * d for p, d in zip(params, dirs)]))
            numeric = (lp - lm) / (2 * eps)
            best = min(best, abs(analytic - numeric) / max(1e-8, abs(numeric), abs(analytic)))
        worst = max(worst, best)
    assert worst < 1e-6, (name, worst)
    return worst


def check_tying(name):
    """Tied areas: the set of conv params does not depend on T; norm params do only per iteration."""
    path = os.path.join(CFG_DIR, name + ".cfg")
    cfg3 = twin.load_config(path)
    ov = ["area.%s.iterations=%d" % (a["name"], a["iterations"] + 2) for a in cfg3.areas]
    cfg5 = twin.load_config(path, overrides=ov)
    m3, m5 = twin.RecurNet(cfg3), twin.RecurNet(cfg5)
    for a in cfg3.areas:
        if not a["tied"] or a["iterations"] < 2:
            continue
        pre = a["name"] + "."
        conv3 = [n for n in m3.param_names if n.startswith(pre) and ".bn" not in n]
        conv5 = [n for n in m5.param_names if n.startswith(pre) and ".bn" not in n]
        assert conv3 == conv5, (name, conv3, conv5)
        bn3 = [n for n in m3.recur_names if n.startswith(pre) and ".bn" in n]
        bn5 = [n for n in m5.recur_names if n.startswith(pre) and ".bn" in n]
        if cfg3.model["norm"] == "batch":
            assert bn3 == bn5
    if all(a["tied"] for a in cfg3.areas) and cfg3.model["norm"] != "batch_per_iter" \
            and cfg3.model["head"] == "shared":
        assert m3.trainable_count() == m5.trainable_count()
    return True


def check_tied_equals_untied_sum(name):
    """A tied model's gradient equals the sum over steps of an untied copy's gradients (with every
    step's weights set to the tied ones): proves the weight is shared and the naming lines up."""
    path = os.path.join(CFG_DIR, name + ".cfg")
    cfg_t = twin.load_config(path)
    assert cfg_t.model["norm"] in ("batch_per_iter", "none")
    cfg_u = twin.load_config(path, overrides=["area.%s.tied=no" % a["name"] for a in cfg_t.areas])
    mt, mu = twin.RecurNet(cfg_t).double(), twin.RecurNet(cfg_u).double()
    area_names = [a["name"] for a in cfg_t.areas]
    with torch.no_grad():
        for n in mu.recur_names:
            parts = n.split(".")
            if mt.has(n):
                src = n
            elif parts[0] in area_names and parts[1].startswith("t") and parts[1][1:].isdigit():
                src = ".".join([parts[0]] + parts[2:])
            else:
                src = n
            mu.get(n).copy_(mt.get(src))
    x, y = batch_for(cfg_t, 3)
    x = x.double()
    mt.recompute_bu = True
    outs = []
    for m in (mt, mu):
        m.train()
        total, _ = twin.scheduled_loss(m(x), y, m.cfg)
        total.backward()
        outs.append(float(total))
    assert abs(outs[0] - outs[1]) < 1e-12, outs
    for n in mt.param_names:
        g = mt.get(n).grad
        parts = n.split(".")
        if not mu.has(n):
            tot = torch.zeros_like(g)
            cnt = 0
            for m in mu.param_names:
                mp = m.split(".")
                if mp[0] == parts[0] and len(mp) > 2 and ".".join([mp[0]] + mp[2:]) == n:
                    tot += mu.get(m).grad
                    cnt += 1
            assert cnt >= 1
        else:
            tot = mu.get(n).grad
        assert torch.allclose(g, tot, rtol=1e-10, atol=1e-12), n
    return True


def check_bu_reuse(name):
    """Sequential tied bottomup=every: reusing D gives the same values as recomputing it."""
    cfg = twin.load_config(os.path.join(CFG_DIR, name + ".cfg"))
    m = twin.RecurNet(cfg)
    x, _ = batch_for(cfg, 0)
    m.eval()
    with torch.no_grad():
        a = m(x)
        m.recompute_bu = True
        b = m(x)
    for p, q in zip(a, b):
        assert torch.equal(p, q)


def check_upsample_indices(name):
    """PyTorch's nearest upsampling (float scale) picks src = floor(dst * H_in / H_out) for the sizes the
    fixture uses, i.e. the integer formula of docs/CONFIG.md and ops.h."""
    cfg = twin.load_config(os.path.join(CFG_DIR, name + ".cfg"))
    shapes = cfg.area_shapes()
    for k, a in enumerate(cfg.areas):
        if not a["topdown"]:
            continue
        hi, hk = shapes[k + 1][1], shapes[k][1]
        src = torch.arange(hi, dtype=torch.float32).view(1, 1, hi, 1).expand(1, 1, hi, hi)
        up = torch.nn.functional.interpolate(src, size=(hk, hk), mode="nearest")[0, 0, :, 0]
        want = torch.tensor([(d * hi) // hk for d in range(hk)], dtype=torch.float32)
        assert torch.equal(up, want), (name, hi, hk)


def check_parser():
    bad = [
        ("[model]\nfoo = 1\n", "unknown key"),
        ("[modle]\n", "unknown section"),
        ("[area V1]\nchannels = 4\niterations = 2\n", "missing required key 'tied'"),
        ("[area V1]\nchannels = 4\niterations = 2\ntied = yes\nbottomup = first\nlateral = no\n", "no input"),
        ("[model]\nunroll = lockstep\n[area A]\nchannels = 2\niterations = 2\ntied = yes\n"
         "[area B]\nchannels = 2\niterations = 3\ntied = yes\n", "same iterations"),
        ("[area A]\nchannels = 2\niterations = 2\ntied = yes\ntopdown = yes\n"
         "[area B]\nchannels = 2\niterations = 2\ntied = yes\n", "lockstep"),
        ("[area A]\nchannels = 2\niterations = 2\ntied = yes\nkernel = 4\n", "kernel"),
        ("[model]\nbn_momentum = 0\n[area A]\nchannels = 2\niterations = 2\ntied = yes\n", "bn_momentum"),
        ("[model]\nloss = coarse-to-fine\nclasses = 5\n[area A]\nchannels = 2\niterations = 2\ntied = yes\n",
         "classes = 10"),
        ("[area A]\nchannels = 6\niterations = 2\ntied = yes\ngroups = 4\n", "does not divide"),
        ("[area A]\nchannels = 6\niterations = 2\ntied = yes\npointwise = no\n", "needs groups > 1"),
    ]
    for text, what in bad:
        try:
            twin.parse_config(text, source="t.cfg")
        except twin.ConfigError as e:
            assert what in str(e), (what, str(e))
        else:
            raise AssertionError("accepted: " + what)
    cfg = twin.parse_config("# c\n; c\n[model]\nclasses = 7   # trailing\n[area X]\nchannels = 2 ; x\n"
                            "iterations = 2\ntied = on\n", source="dir/my_net.cfg",
                            overrides=["area.X.channels=3", "train.lr=0.5"])
    assert cfg.model["name"] == "my_net" and cfg.model["classes"] == 7
    assert cfg.areas[0]["channels"] == 3 and cfg.areas[0]["tied"] is True and cfg.train["lr"] == 0.5
    assert any("using default [model] unroll = sequential" == d for d in cfg.defaults)


def main(argv):
    twin.setup_deterministic(1)
    names = argv[1:] or FIXTURES
    os.makedirs(OUT_DIR, exist_ok=True)
    check_parser()
    print("parser checks: ok")
    for i, name in enumerate(FIXTURES):
        if name not in names:
            continue
        cfg, model, size, losses, depth = make_fixture(name, i)
        print("%-26s %6d bytes  params %5d  depth %2d  R %d  loss %.4f -> %.4f" % (
            name + ".bin", size, model.trainable_count(), depth, cfg.readouts(), losses[0], losses[-1]))
        assert losses[-1] < losses[0], "loss does not decrease on a fixed batch"
    if not argv[1:]:
        size, n = make_schedule_fixture()
        print("%-26s %6d bytes  %d cases" % ("lr_schedule.bin", size, n))
    # validation of the twin itself
    torch.use_deterministic_algorithms(False)  # double-precision checks only
    for name in names:
        check_directional(name)
        check_tying(name)
        check_upsample_indices(name)
    print("directional float64 derivative, tying and upsampling checks: ok (%d models)" % len(names))
    for name in ("tied_bnpi_every", "residual", "convlstm", "topdown", "nonorm_c2f", "dense_recall", "grouped", "gru"):
        if name in names:
            check_tied_equals_untied_sum(name)
    print("tied gradient == sum of untied per-step gradients: ok")
    for name in ("tied_bnpi_every", "tied_bn_shared", "convlstm", "gru", "gru_recall"):
        if name in names:
            check_bu_reuse(name)
    print("bottom-up reuse in sequential tied areas: ok")
    for name, hw in (("topdown", 8), ("mixed_odd", 9), ("nonorm_c2f", 8), ("dense_recall", None),
                     ("grouped_untied", 8), ("gru_untied", 8), ("gru", 8)):
        if name in names:
            k = check_gradcheck(name, hw=hw)
            print("gradcheck (float64, all %d params) %s: ok" % (k, name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
