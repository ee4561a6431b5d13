"""recur_torch -- run a model trained by recur in PyTorch (inference or fine-tuning).

    import recur_torch
    model = recur_torch.load("runs/demo")          # a torch.nn.Module in eval mode
    logits = model(x)   # x: float32 (N, C, H, W) = pixel / 255; a list of (N, classes), one per readout

The module is self-contained (torch and numpy only; the `safetensors` package is not needed). It
builds the unrolled network of docs/CONFIG.md from the run's config.cfg and fills it with the tensors
of RUN/model.safetensors (made with `recur export RUN --out RUN/model.safetensors`); when that file is
missing or older than RUN/model.ckpt it runs `recur export` into a temporary file (the recur binary:
$RECUR, else build/recur next to this module's directory, else `recur` on PATH).

The module's state_dict() keys are recur's tensor names (docs/EXPORT.md), e.g. V1.bu.weight,
V1.bn.t2.running_mean, head.weight: running statistics are buffers, everything else a parameter, so
model.load_state_dict(...) takes a safetensors file's tensors as they are. forward normalises the input
itself with the training split's per-channel mean and std (the export's metadata).

Public API
    load(run, iterations=None, weights=None) -> RecurModel
    parse_config(text, source="<config>")    -> dict with "model", "train", "areas" (defaults applied)
    read_safetensors(path)                   -> (OrderedDict name -> torch.Tensor, metadata dict)
    RecurModel(cfg, tensors, mean, std, iterations=None)
    ConfigError
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["load", "parse_config", "read_safetensors", "RecurModel", "ConfigError"]

MAX_ITERS = 256


class ConfigError(ValueError):
    """A config, tensor file or argument that does not describe a recur model (the message says where)."""


# ---------------------------------------------------------------------------------------------------
# Config: recur's INI format (docs/CONFIG.md), with its defaults and checks
# ---------------------------------------------------------------------------------------------------

_BOOLS = {"yes": True, "true": True, "on": True, "1": True, "no": False, "false": False, "off": False, "0": False}


def _int(lo, hi):
    def conv(v):
        if not re.fullmatch(r"[+-]?\d+", v):
            raise ValueError("is not an integer")
        x = int(v)
        if x < lo or x > hi:
            raise ValueError("is out of range [%d, %d]" % (lo, hi))
        return x
    return conv


def _float(lo, hi):
    def conv(v):
        if not re.fullmatch(r"[+\-.eE0-9]*[0-9][+\-.eE0-9]*", v):
            raise ValueError("is not a number")
        try:
            x = float(v)
        except ValueError:
            raise ValueError("is not a number")
        if not (lo <= x <= hi):
            raise ValueError("is out of range [%g, %g]" % (lo, hi))
        return x
    return conv


def _enum(*words):
    def conv(v):
        if v not in words:
            raise ValueError("is not one of: " + ", ".join(words))
        return v
    return conv


def _bool(v):
    if v.lower() not in _BOOLS:
        raise ValueError("is not a boolean (use yes/no, true/false, on/off or 1/0)")
    return _BOOLS[v.lower()]


def _text(v):
    return v


def _dims(v):
    parts = v.split("x")
    if len(parts) != 3 or not all(re.fullmatch(r"\d+", p) for p in parts) or min(int(p) for p in parts) < 1:
        raise ValueError("is not CxHxW")
    c, h, w = (int(p) for p in parts)
    if c > 64 or h > 4096 or w > 4096:
        raise ValueError("exceeds the limits (channels <= 64, sides <= 4096)")
    return (c, h, w)


# key -> (converter, default; None = required). Ranges as src/models/model_cfg.c checks them.
_MODEL = OrderedDict([
    ("name", (_text, "model")), ("input", (_dims, "1x28x28")), ("classes", (_int(2, 1000), "10")),
    ("unroll", (_enum("sequential", "lockstep"), "sequential")),
    ("norm", (_enum("none", "batch", "batch_per_iter"), "batch_per_iter")),
    ("bn_momentum", (_float(1e-6, 1.0), "0.1")), ("bn_eps", (_float(1e-12, 0.5), "1e-05")),
    ("bn_sync", (_bool, "no")), ("head", (_enum("shared", "per_iter"), "shared")),
    ("loss", (_enum("final", "every", "increasing", "coarse-to-fine", "progressive", "curriculum"), "every")),
    # keys of models this module does not build (dense readouts, recall, halting): read so that their
    # configs parse, and refused by _validate with a message
    ("alpha", (_float(0.0, 1.0), "1")), ("readout", (_enum("pool", "dense"), "pool")),
    ("head_channels", (_text, "")), ("recall", (_bool, "no")), ("halting", (_text, "none")),
    ("ponder_beta", (_text, "")), ("ponder_lambda", (_text, "")),
])
_AREA = OrderedDict([
    ("channels", (_int(1, 1024), None)), ("iterations", (_int(1, MAX_ITERS), None)), ("tied", (_bool, None)),
    ("cell", (_enum("conv", "residual", "convlstm", "gru"), "conv")), ("kernel", (_int(1, 7), "3")),
    ("stride", (_int(1, 4), "1")), ("bottomup", (_enum("first", "every"), "every")),
    ("lateral", (_bool, "yes")), ("topdown", (_bool, "no")),
    # resolved by _validate: groups (a number dividing channels, or depthwise) and, with groups > 1, pointwise
    ("groups", (_text, "1")), ("pointwise", (_text, "")),
])
_BIG = 100000000
_TRAIN = OrderedDict([
    ("data", (_text, "fashion-mnist")), ("epochs", (_int(1, 10000), "10")), ("batch", (_int(1, 65536), "128")),
    ("limit", (_int(0, _BIG), "0")), ("val", (_int(0, _BIG), "0")),
    ("optimizer", (_enum("sgd", "adamw"), "adamw")), ("lr", (_float(1e-12, 100.0), "0.002")),
    ("momentum", (_float(0.0, 0.999999), "0.9")), ("nesterov", (_bool, "no")),
    ("weight_decay", (_float(0.0, 10.0), "0.0005")), ("beta1", (_float(0.0, 0.999999), "0.9")),
    ("beta2", (_float(0.0, 0.99999999), "0.999")), ("adam_eps", (_float(1e-30, 1.0), "1e-08")),
    ("schedule", (_enum("constant", "step", "cosine"), "cosine")), ("warmup_epochs", (_float(0.0, 10000.0), "1")),
    ("step_every", (_int(1, 10000), "30")), ("step_gamma", (_float(0.0, 1.0), "0.1")),
    ("crop_pad", (_int(0, 16), "2")), ("flip", (_bool, "yes")), ("seed", (_int(0, 2 ** 63 - 1), "1")),
    ("threads", (_int(0, 256), "0")), ("recompute", (_int(0, MAX_ITERS), "0")),
])
_SECTIONS = {"model": _MODEL, "area": _AREA, "train": _TRAIN}


def _strip(line):
    """The line without its comment ('#' or ';' at the start or after whitespace) and outer whitespace."""
    s = line.strip()
    for i, ch in enumerate(s):
        if ch in "#;" and (i == 0 or s[i - 1] in " \t"):
            return s[:i].strip()
    return s


def parse_config(text, source="<config>"):
    """Parse a recur config (docs/CONFIG.md) strictly and apply its defaults. Returns
    {"model": {...}, "train": {...}, "areas": [{"name": ..., ...}, ...]} with typed values."""
    secs = []  # [type, name, OrderedDict key -> (value, line), line]
    for no, line in enumerate(text.splitlines(), 1):
        s = _strip(line)
        if not s:
            continue
        where = "%s:%d: " % (source, no)
        if s.startswith("["):
            m = re.fullmatch(r"\[\s*([a-z0-9_\-]+)(?:\s+([A-Za-z0-9_\-]+))?\s*\]", s)
            if not m:
                raise ConfigError(where + "bad section header '%s'" % s)
            typ, name = m.group(1), m.group(2) or ""
            if typ not in _SECTIONS:
                raise ConfigError(where + "unknown section [%s]" % typ)
            if typ == "area" and not name:
                raise ConfigError(where + "[area] needs a name, e.g. [area V1]")
            if any(x[0] == typ and x[1] == name for x in secs):
                raise ConfigError(where + "duplicate section [%s%s]" % (typ, " " + name if name else ""))
            secs.append([typ, name, OrderedDict(), no])
            continue
        if "=" not in s:
            raise ConfigError(where + "expected 'key = value', '[section]' or a comment")
        if not secs:
            raise ConfigError(where + "key before any [section]")
        key, val = (p.strip() for p in s.split("=", 1))
        sec = secs[-1]
        if key not in _SECTIONS[sec[0]]:
            if sec[0] == "train":
                continue  # training settings do not shape the model; a newer recur may have more of them
            raise ConfigError(where + "unknown key '%s' in [%s%s]" % (key, sec[0], " " + sec[1] if sec[1] else ""))
        if key in sec[2]:
            raise ConfigError(where + "duplicate key '%s'" % key)
        sec[2][key] = (val, no)

    def fill(sec, table, label, out):
        entries = sec[2] if sec else {}
        for key, (conv, default) in table.items():
            if key in entries:
                val, no = entries[key]
                try:
                    out[key] = conv(val)
                except ValueError as e:
                    raise ConfigError("%s:%d: %s = '%s' %s in %s" % (source, no, key, val, e, label))
            elif default is None:
                raise ConfigError("%s:%d: missing required key '%s' in %s" % (source, sec[3], key, label))
            else:
                out[key] = conv(default)
        return out

    for typ in ("model", "train"):
        if sum(1 for x in secs if x[0] == typ) > 1:
            raise ConfigError("%s: a second [%s] section (only one is allowed)" % (source, typ))
    first = {t: next((x for x in secs if x[0] == t), None) for t in ("model", "train")}
    cfg = {"model": fill(first["model"], _MODEL, "[model]", {}),
           "train": fill(first["train"], _TRAIN, "[train]", {}), "areas": []}
    for sec in secs:
        if sec[0] == "area":
            if sec[1] in ("head", "readout", "input"):
                raise ConfigError("%s:%d: area name '%s' is reserved" % (source, sec[3], sec[1]))
            cfg["areas"].append(fill(sec, _AREA, "[area %s]" % sec[1], {"name": sec[1]}))
    _validate(cfg, source)
    return cfg


def _validate(cfg, source):
    m, areas = cfg["model"], cfg["areas"]
    if not areas:
        raise ConfigError("%s: no [area NAME] section: a model needs at least one area" % source)
    if len(areas) > 16:
        raise ConfigError("%s: too many areas (%d); the limit is 16" % (source, len(areas)))
    if m["bn_sync"] and m["norm"] == "none":
        raise ConfigError("%s: model.bn_sync = yes needs batch norm, but model.norm = none" % source)
    for key, plain in (("readout", "pool"), ("recall", False), ("halting", "none")):
        if m[key] != plain:
            raise ConfigError("%s: model.%s = %s: recur_torch builds classification models with pooled "
                              "readouts only (use the exported safetensors/npz tensors, docs/EXPORT.md)"
                              % (source, key, m[key] if not isinstance(m[key], bool) else "yes"))
    h, w = m["input"][1], m["input"][2]
    for k, a in enumerate(areas):
        where = "%s: area %s: " % (source, a["name"])
        if a["kernel"] % 2 == 0:
            raise ConfigError(where + "kernel %d must be 1, 3, 5 or 7" % a["kernel"])
        p = a["kernel"] // 2
        h = (h + 2 * p - a["kernel"]) // a["stride"] + 1
        w = (w + 2 * p - a["kernel"]) // a["stride"] + 1
        if h < 1 or w < 1:
            raise ConfigError(where + "the image is reduced to nothing by the strides")
        if a["cell"] == "gru" and not a["lateral"]:
            raise ConfigError(where + "cell = gru needs lateral = yes (its gates read h(t-1))")
        if a["bottomup"] == "first" and not a["lateral"] and a["iterations"] > 1:
            raise ConfigError(where + "with bottomup = first and lateral = no, steps after the first have no input")
        if a["topdown"] and m["unroll"] != "lockstep":
            raise ConfigError(where + "topdown = yes needs model.unroll = lockstep")
        if a["topdown"] and k == len(areas) - 1:
            raise ConfigError(where + "topdown = yes on the top area (there is no area above it)")
        if m["unroll"] == "lockstep" and a["iterations"] != areas[0]["iterations"]:
            raise ConfigError(where + "lockstep needs equal iterations in every area")
        g = a["groups"]
        if g == "depthwise":
            g = a["channels"]
        elif re.fullmatch(r"\d+", g) and 1 <= int(g) <= 1024:
            g = int(g)
        else:
            raise ConfigError(where + "groups = '%s' must be a number of groups that divides channels, or depthwise" % g)
        if a["channels"] % g:
            raise ConfigError(where + "groups = %d does not divide channels = %d" % (g, a["channels"]))
        if g > 1 and not a["lateral"] and a["cell"] != "residual":
            raise ConfigError(where + "groups applies to the lateral and residual convs, and this area has neither")
        if g == 1 and a["pointwise"]:
            raise ConfigError(where + "pointwise puts a 1x1 conv after each grouped conv: it needs groups > 1")
        a["groups"] = g
        try:
            a["pointwise"] = g > 1 and _bool(a["pointwise"] or "yes")
        except ValueError as e:
            raise ConfigError(where + "pointwise = '%s' %s" % (a["pointwise"], e))


def area_shapes(cfg):
    """[(C_k, H_k, W_k)] for areas k = 1..K."""
    _, h, w = cfg["model"]["input"]
    out = []
    for a in cfg["areas"]:
        k, s = a["kernel"], a["stride"]
        h = (h + 2 * (k // 2) - k) // s + 1
        w = (w + 2 * (k // 2) - k) // s + 1
        out.append((a["channels"], h, w))
    return out


# ---------------------------------------------------------------------------------------------------
# Tensors: safetensors files read with json + numpy
# ---------------------------------------------------------------------------------------------------

_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U8": "u1", "BOOL": "?"}


def read_safetensors(path):
    """(OrderedDict name -> torch.Tensor, metadata dict) of a safetensors file, in the file's order."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ConfigError("%s: not a safetensors file (%d bytes)" % (path, len(blob)))
    n = int.from_bytes(blob[:8], "little")
    if n < 2 or 8 + n > len(blob):
        raise ConfigError("%s: not a safetensors file (header length %d of a %d-byte file)" % (path, n, len(blob)))
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except ValueError as e:
        raise ConfigError("%s: the safetensors header is not JSON: %s" % (path, e))
    meta = header.pop("__metadata__", None) or {}
    data = memoryview(blob)[8 + n:]
    out = OrderedDict()
    for name, d in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dt = d.get("dtype")
        if dt == "BF16":
            raise ConfigError("%s: tensor %s: bfloat16 is not supported here" % (path, name))
        if dt not in _DTYPES:
            raise ConfigError("%s: tensor %s has dtype %s" % (path, name, dt))
        b, e = d["data_offsets"]
        shape = [int(s) for s in d["shape"]]
        npdt = np.dtype(_DTYPES[dt])
        if not (0 <= b <= e <= len(data)) or (e - b) != npdt.itemsize * int(np.prod(shape, dtype=np.int64)):
            raise ConfigError("%s: tensor %s: data_offsets [%d, %d] do not fit its shape %s" % (path, name, b, e, shape))
        arr = np.frombuffer(data[b:e], dtype=npdt).reshape(shape)
        out[name] = torch.from_numpy(arr.astype(npdt.newbyteorder("="), copy=True))
    return out, meta


# ---------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------

def _expected(cfg):
    """OrderedDict recur name -> shape of every param and running statistic the config's graph holds
    (docs/CONFIG.md "Param names")."""
    m, areas = cfg["model"], cfg["areas"]
    out = OrderedDict()
    bias = m["norm"] == "none"
    in_c = m["input"][0]
    for k, a in enumerate(areas):
        below = in_c if k == 0 else areas[k - 1]["channels"]
        above = areas[k + 1]["channels"] if k + 1 < len(areas) else None
        C, r = a["channels"], a["kernel"]
        gru = a["cell"] == "gru"
        cout = {"convlstm": 4 * C, "gru": 3 * C}.get(a["cell"], C)
        for t in range(1, a["iterations"] + 1):
            pre = a["name"] if a["tied"] else "%s.t%d" % (a["name"], t)
            drive = t == 1 or a["bottomup"] == "every" or a["topdown"]
            if t == 1 or a["bottomup"] == "every":
                out[pre + ".bu.weight"] = (cout, below, r, r)
                if bias:
                    out[pre + ".bu.bias"] = (cout,)
            if a["lateral"] and t > 1:
                _state_conv_shapes(out, a, pre + ".lat", cout, bias and gru)  # a GRU's hidden term has a bias
            if a["topdown"] and t > 1:
                out[pre + ".td.weight"] = (cout, above, r, r)
            # a GRU normalises its drive (when the step has one) and its hidden term apart
            norms = [("bn", cout)] if drive or not gru else []
            if gru and t > 1:
                norms.append(("bnh", cout))
            if a["cell"] == "residual":
                _state_conv_shapes(out, a, pre + ".conv2", C, bias)
                norms.append(("bn2", C))
            for tag, c in norms if m["norm"] != "none" else ():
                base = _norm_base(m, a, tag, t)
                for s in ("gamma", "beta", "running_mean", "running_var"):
                    out["%s.%s" % (base, s)] = (c,)
    for t in range(1, areas[-1]["iterations"] + 1):
        base = "head.t%d" % t if m["head"] == "per_iter" else "head"
        out[base + ".weight"] = (m["classes"], areas[-1]["channels"])
        out[base + ".bias"] = (m["classes"],)
    return out


def _state_conv_shapes(out, a, base, cout, bias):
    """The lateral / residual conv2 params of area a (docs/CONFIG.md, groups): a conv in a["groups"] groups,
    with pointwise a 1x1 conv base.pw after it (the bias, if any, on the last)."""
    C, G, r = a["channels"], a["groups"], a["kernel"]
    pw = G > 1 and a["pointwise"]
    out[base + ".weight"] = (C if pw else cout, C // G, r, r)
    if pw:
        out[base + ".pw.weight"] = (cout, C, 1, 1)
    if bias:
        out[base + ".bias"] = (cout,)


def _norm_base(m, a, tag, pt):
    per = m["norm"] == "batch_per_iter" or not a["tied"]
    return "%s.%s.t%d" % (a["name"], tag, pt) if per else "%s.%s" % (a["name"], tag)


class RecurModel(nn.Module):
    """The unrolled net of docs/CONFIG.md with recur's tensors. forward(x), x = pixel / 255 as float32
    (N, C, H, W), returns [logits_1, ..., logits_R], each (N, classes). In eval mode batch norm uses the
    running statistics; in train mode batch statistics (and updates them, momentum bn_momentum).
    iterations: unroll every tied area that many steps (past the trained T, steps reuse step T's
    per-iteration params, as `recur eval --iterations` does); untied areas must keep theirs."""

    def __init__(self, cfg, tensors, mean, std, iterations=None):
        super(RecurModel, self).__init__()
        self.cfg = cfg
        m, areas = cfg["model"], cfg["areas"]
        C = m["input"][0]
        if len(mean) != C or len(std) != C:
            raise ConfigError("input normalisation has %d means and %d stds for %d channels" % (len(mean), len(std), C))
        if iterations is not None:
            iterations = int(iterations)
            if not 1 <= iterations <= MAX_ITERS:
                raise ConfigError("iterations %d out of range 1..%d" % (iterations, MAX_ITERS))
            for a in areas:
                if not a["tied"] and a["iterations"] != iterations:
                    raise ConfigError("area %s is untied (feedforward, %d distinct layers): it cannot be unrolled "
                                      "for %d iterations; only tied areas can" % (a["name"], a["iterations"], iterations))
        self.steps = [iterations or a["iterations"] for a in areas]
        self.shapes = area_shapes(cfg)
        want = _expected(cfg)
        missing = [n for n in want if n not in tensors]
        extra = [n for n in tensors if n not in want]
        if missing or extra:
            raise ConfigError("the tensors do not belong to this config: missing %s, unexpected %s"
                              % (missing[:5] or "none", extra[:5] or "none"))
        self.recur_names = list(want)
        self._names = frozenset(want)
        for name, shape in want.items():
            t = tensors[name]
            if tuple(t.shape) != tuple(shape):
                raise ConfigError("tensor %s has shape %s; the config needs %s" % (name, tuple(t.shape), shape))
            self._register(name, t.detach().to(torch.float32).clone(), name.endswith(("running_mean", "running_var")))
        self.register_buffer("input_mean", torch.tensor(mean, dtype=torch.float32).view(1, C, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(std, dtype=torch.float32).view(1, C, 1, 1), persistent=False)
        self.eval()

    def _register(self, name, tensor, buffer):
        """Register name as a parameter or buffer under nested containers, so state_dict() says name."""
        mod = self
        parts = name.split(".")
        for p in parts[:-1]:
            sub = mod._modules.get(p)
            if sub is None:
                if hasattr(mod, p):
                    raise ConfigError("tensor %s: '%s' clashes with a torch.nn.Module attribute" % (name, p))
                sub = nn.Module()
                mod.add_module(p, sub)
            mod = sub
        if buffer:
            mod.register_buffer(parts[-1], tensor)
        else:
            mod.register_parameter(parts[-1], nn.Parameter(tensor))

    def tensor(self, name):
        """The parameter or buffer called name (a recur name)."""
        mod = self
        parts = name.split(".")
        for p in parts[:-1]:
            mod = mod._modules[p]
        return getattr(mod, parts[-1])

    @property
    def readouts(self):
        return self.steps[-1]

    # one step of an area ----------------------------------------------------------------------------
    def _conv(self, base, x, stride, k):
        b = base + ".bias"  # conv_bu, conv_2 (and a GRU's conv_lat) without batch norm; never conv_td
        bias = self.tensor(b) if b in self._names else None
        return F.conv2d(x, self.tensor(base + ".weight"), bias, stride=stride, padding=k // 2)

    def _state_conv(self, a, base, x):
        """conv_lat / conv_2: in a["groups"] groups, then the pointwise 1x1 conv (nn.Conv2d(groups=G) + 1x1)."""
        G, r = a["groups"], a["kernel"]
        b = base + ".bias"
        bias = self.tensor(b) if b in self._names else None
        if not (G > 1 and a["pointwise"]):
            return F.conv2d(x, self.tensor(base + ".weight"), bias, padding=r // 2, groups=G)
        y = F.conv2d(x, self.tensor(base + ".weight"), None, padding=r // 2, groups=G)
        return F.conv2d(y, self.tensor(base + ".pw.weight"), bias)

    def _norm(self, a, tag, pt, x):
        m = self.cfg["model"]
        if m["norm"] == "none":
            return x
        base = _norm_base(m, a, tag, pt)
        return F.batch_norm(x, self.tensor(base + ".running_mean"), self.tensor(base + ".running_var"),
                            self.tensor(base + ".gamma"), self.tensor(base + ".beta"), training=self.training,
                            momentum=m["bn_momentum"], eps=m["bn_eps"])

    def _step(self, k, t, x, h_prev, c_prev, above, cache):
        """Area k (0-based) at step t (1-based): bottom-up input x, own state h_prev (and ConvLSTM cell
        c_prev) at t-1, the area above at t-1 (lockstep top-down). Returns (h, c)."""
        a = self.cfg["areas"][k]
        pt = min(t, a["iterations"])  # param step: past the trained T, reuse step T's
        pre = a["name"] if a["tied"] else "%s.t%d" % (a["name"], pt)
        if a["cell"] == "gru":
            return self._gru_step(k, t, pt, pre, x, h_prev, above, cache), None
        s = self._drive(k, t, pre, x, h_prev if a["lateral"] and t > 1 else None, above, cache)
        g = self._norm(a, "bn", pt, s)
        if a["cell"] == "conv":
            return F.relu(g), None
        if a["cell"] == "residual":
            v = self._norm(a, "bn2", pt, self._state_conv(a, pre + ".conv2", F.relu(g)))
            return F.relu(v if h_prev is None else v + h_prev), None
        C = a["channels"]
        i, f, o, cc = g[:, 0:C], g[:, C:2 * C], g[:, 2 * C:3 * C], g[:, 3 * C:4 * C]
        c = torch.sigmoid(i) * torch.tanh(cc)
        if c_prev is not None:
            c = torch.sigmoid(f) * c_prev + c
        return torch.sigmoid(o) * torch.tanh(c), c

    def _drive(self, k, t, pre, x, h_lat, above, cache):
        """The sum of a step's inputs in recur's order: the bottom-up conv (step 1, or every step; reused from
        cache), the lateral conv of h_lat (None: none; the GRU takes its hidden term apart) and the upsampled
        top-down conv (t > 1). None when there is no term."""
        a = self.cfg["areas"][k]
        r = a["kernel"]
        s = None
        if t == 1 or a["bottomup"] == "every":
            if cache is not None and "D" in cache:
                s = cache["D"]
            else:
                s = self._conv(pre + ".bu", x, a["stride"], r)
                if cache is not None:
                    cache["D"] = s
        if h_lat is not None:
            z = self._state_conv(a, pre + ".lat", h_lat)
            s = z if s is None else s + z
        if a["topdown"] and t > 1:
            _, hk, wk = self.shapes[k]
            z = F.interpolate(self._conv(pre + ".td", above, 1, r), size=(hk, wk), mode="nearest")
            s = z if s is None else s + z
        return s

    def _gru_step(self, k, t, pt, pre, x, h_prev, above, cache):
        """GRU (docs/CONFIG.md): drive x = N(bu + td), hidden m = Nh(lat(h_prev)), 3C channels each as z, r, n;
        z = sigmoid(x_z + m_z), r = sigmoid(x_r + m_r), n = tanh(x_n + r m_n), h = (1 - z) n + z h_prev."""
        a = self.cfg["areas"][k]
        C = a["channels"]
        xs = self._drive(k, t, pre, x, None, above, cache)
        if xs is not None:
            xs = self._norm(a, "bn", pt, xs)
        if h_prev is None:  # t = 1: no h(0)
            return (1 - torch.sigmoid(xs[:, 0:C])) * torch.tanh(xs[:, 2 * C:])
        m = self._norm(a, "bnh", pt, self._state_conv(a, pre + ".lat", h_prev))

        def pre_act(j, hidden):
            return hidden if xs is None else xs[:, j * C:(j + 1) * C] + hidden

        z = torch.sigmoid(pre_act(0, m[:, 0:C]))
        rg = torch.sigmoid(pre_act(1, m[:, C:2 * C]))
        n = torch.tanh(pre_act(2, rg * m[:, 2 * C:]))
        return (1 - z) * n + z * h_prev

    def _head(self, t, h):
        R = self.cfg["areas"][-1]["iterations"]
        base = "head.t%d" % min(t, R) if self.cfg["model"]["head"] == "per_iter" else "head"
        return F.linear(h.mean(dim=(2, 3)), self.tensor(base + ".weight"), self.tensor(base + ".bias"))

    def forward(self, x):
        m, areas = self.cfg["model"], self.cfg["areas"]
        C, H, W = m["input"]
        if x.dim() != 4 or tuple(x.shape[1:]) != (C, H, W):
            raise ValueError("expected input (N, %d, %d, %d) = pixel / 255, got %s" % (C, H, W, tuple(x.shape)))
        x = (x.to(self.input_mean.dtype) - self.input_mean) / self.input_std
        K = len(areas)
        outs = []
        if m["unroll"] == "sequential":
            inp = x
            for k, a in enumerate(areas):
                cache = {} if a["tied"] and a["bottomup"] == "every" else None
                h = c = None
                for t in range(1, self.steps[k] + 1):
                    h, c = self._step(k, t, inp, h, c, None, cache)
                    if k == K - 1:
                        outs.append(self._head(t, h))
                inp = h
        else:
            h, c = [None] * K, [None] * K
            for t in range(1, self.steps[0] + 1):
                prev = list(h)  # states at t-1
                inp = x
                for k in range(K):
                    h[k], c[k] = self._step(k, t, inp, prev[k], c[k], prev[k + 1] if k + 1 < K else None, None)
                    inp = h[k]
                outs.append(self._head(t, h[K - 1]))
        return outs


# ---------------------------------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------------------------------

def _recur_binary():
    env = os.environ.get("RECUR")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    local = os.path.join(os.path.dirname(here), "build", "recur")
    if os.access(local, os.X_OK):
        return local
    found = shutil.which("recur")
    if found:
        return found
    raise ConfigError("cannot find the recur binary to export the model: set RECUR=/path/to/recur, or export it "
                      "yourself: recur export RUN --out RUN/model.safetensors")


def _export(src, dst):
    exe = _recur_binary()
    p = subprocess.run([exe, "export", src, "--format", "safetensors", "--out", dst],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        raise ConfigError("%s export %s failed: %s" % (exe, src, p.stderr.strip()))


def _floats(meta, key, path):
    try:
        v = json.loads(meta[key])
        return [float(x) for x in v]
    except (KeyError, ValueError, TypeError):
        raise ConfigError("%s: no input normalisation (metadata '%s'); was it written by recur export? To load "
                          "other weights into a model, use load(RUN).load_state_dict(tensors)" % (path, key))


def load(run, iterations=None, weights=None):
    """A recur model as a torch.nn.Module in eval mode.

    run: a run directory (its config.cfg and model.safetensors, exported from model.ckpt when missing or
    older than it), a checkpoint file, or a safetensors file written by `recur export` (its metadata
    holds the config). iterations: unroll tied areas that many steps (default: as trained).
    weights: a safetensors file written by `recur export` to use instead of the run's own tensors."""
    run = os.fspath(run)
    cfg_text = cfg_src = None
    tmpdir = None
    try:
        if os.path.isdir(run):
            cfg_src = os.path.join(run, "config.cfg")
            with open(cfg_src, "r", encoding="utf-8") as f:
                cfg_text = f.read()
        if weights is None:
            if os.path.isdir(run):
                st, ck = os.path.join(run, "model.safetensors"), os.path.join(run, "model.ckpt")
                fresh = os.path.exists(st) and (not os.path.exists(ck) or os.path.getmtime(st) >= os.path.getmtime(ck))
                weights = st if fresh else None
            elif run.endswith(".safetensors"):
                weights = run
            if weights is None:
                tmpdir = tempfile.mkdtemp(prefix="recur_torch_")
                weights = os.path.join(tmpdir, "model.safetensors")
                _export(run, weights)
        tensors, meta = read_safetensors(weights)
        if cfg_text is None:
            if "config" not in meta:
                raise ConfigError("%s: no config in the metadata; pass the run directory" % weights)
            cfg_text, cfg_src = meta["config"], "%s (metadata config)" % weights
        if meta.get("input", "pixel/255, NCHW") != "pixel/255, NCHW":
            raise ConfigError("%s: unknown input convention '%s'" % (weights, meta.get("input")))
        cfg = parse_config(cfg_text, source=cfg_src)
        model = RecurModel(cfg, tensors, _floats(meta, "mean", weights), _floats(meta, "std", weights), iterations)
        model.metadata = dict(meta)
        return model
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
