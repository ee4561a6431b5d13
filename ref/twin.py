"""twin.py -- the PyTorch twin of recur's model and training step, written to docs/CONFIG.md.

It exists to produce test fixtures (ref/make_fixtures.py) and as a baseline for benchmarks; the C
product never imports it. Run with Debian's interpreter: /usr/bin/python3.

Public API
    parse_config(text, source="<config>", overrides=())  -> Config
    load_config(path, overrides=())                       -> Config
    RecurNet(cfg, init=True)                              the model; forward(x) -> [logits_1..logits_R]
    build_model(cfg_path, input_shape=None, overrides=()) -> (model, cfg)
    scheduled_loss(logits, labels, cfg)                   -> (total, [fine CE per readout])
    make_optimizer(model, cfg)                            torch SGD / AdamW with decay on weights only
    lr_at(step, total_steps, steps_per_epoch, train)      the learning-rate schedule
    train_step(model, opt, x, y, lr=None)                 one step; returns the loss before the update
"""

import math
import os
import re
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

# Fashion-MNIST taxonomy: tops {0,2,3,4,6} -> 0, bottoms {1} -> 1, footwear {5,7,9} -> 2, bags {8} -> 3.
FASHION_MNIST_GROUPS = [0, 1, 0, 0, 0, 2, 0, 2, 3, 2]


class ConfigError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------------

_BOOL_WORDS = {"yes": True, "true": True, "on": True, "1": True,
               "no": False, "false": False, "off": False, "0": False}


def _k_int(lo, hi):
    def conv(v):
        if not re.fullmatch(r"[+-]?\d+", v):
            raise ValueError("expected an integer")
        x = int(v)
        if x < lo or (hi is not None and x > hi):
            raise ValueError("expected an integer in [%s, %s]" % (lo, "inf" if hi is None else hi))
        return x
    return conv


def _k_float(lo, hi, lo_open=False, hi_open=False):
    def conv(v):
        if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", v):
            raise ValueError("expected a decimal number")
        x = float(v)
        bad = (x < lo or (lo_open and x == lo)
               or (hi is not None and (x > hi or (hi_open and x == hi))))
        if bad:
            raise ValueError("expected a number in %s%s, %s%s" % ("(" if lo_open else "[", lo,
                                                                   "inf" if hi is None else hi,
                                                                   ")" if hi_open else "]"))
        return x
    return conv


def _k_enum(*words):
    def conv(v):
        if v not in words:
            raise ValueError("expected one of " + ", ".join(words))
        return v
    return conv


def _k_bool(v):
    w = v.lower()
    if w not in _BOOL_WORDS:
        raise ValueError("expected yes or no")
    return _BOOL_WORDS[w]


def _k_text(v):
    if v == "":
        raise ValueError("expected a value")
    return v


def _k_dims(v):
    parts = v.split("x")
    if len(parts) != 3 or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise ValueError("expected CxHxW")
    d = tuple(int(p) for p in parts)
    if min(d) < 1:
        raise ValueError("expected sizes >= 1")
    return d


def _k_widths(v):
    parts = v.split("x")
    if not 1 <= len(parts) <= 3 or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise ValueError("expected 1 to 3 widths AxB...")
    d = tuple(int(p) for p in parts)
    if min(d) < 1 or max(d) > 1024:
        raise ValueError("expected widths in 1..1024")
    return d


def _k_data(v):
    if v == "fashion-mnist" or re.fullmatch(r"(mnist|idx|cifar10|cifar100):.+", v):
        return v
    if re.fullmatch(r"(prefix-sums|mazes):[0-9]+(:[0-9]+)?", v):
        return v
    raise ValueError("expected fashion-mnist, mnist:DIR, idx:DIR, cifar10:DIR, cifar100:DIR, prefix-sums:N or "
                     "mazes:N")


# key -> (converter, default as text; None = required)
MODEL_KEYS = OrderedDict([
    ("name", (_k_text, None)),  # default: the file name (stem), filled in by parse_config
    ("input", (_k_dims, "1x28x28")),
    ("classes", (_k_int(2, 1000), "10")),
    ("unroll", (_k_enum("sequential", "lockstep"), "sequential")),
    ("norm", (_k_enum("none", "batch", "batch_per_iter"), "batch_per_iter")),
    ("bn_momentum", (_k_float(0.0, 1.0, lo_open=True), "0.1")),
    ("bn_eps", (_k_float(0.0, 1.0, lo_open=True, hi_open=True), "1e-5")),
    ("head", (_k_enum("shared", "per_iter"), "shared")),
    ("loss", (_k_enum("final", "every", "increasing", "coarse-to-fine", "progressive"), "every")),
    ("readout", (_k_enum("pool", "dense"), "pool")),
    ("recall", (_k_bool, "no")),
    ("halting", (_k_enum("none", "ponder"), "none")),
    ("ponder_beta", (_k_float(0.0, 100.0), "0.01")),
    ("ponder_lambda", (_k_float(0.0, 1.0, lo_open=True, hi_open=True), "0.2")),
])
# keys read only in some configs: key -> (converter, default, applies(model dict) -> bool); present while
# not applying is an error (head_channels) or kept unused (alpha), as recur's reader does
MODEL_COND_KEYS = OrderedDict([
    ("alpha", (_k_float(0.0, 1.0), "1", lambda m: m["loss"] == "progressive")),
    ("head_channels", (_k_widths, "32x8", lambda m: m["readout"] == "dense")),
])

AREA_KEYS = OrderedDict([
    ("channels", (_k_int(1, 1024), None)),
    ("iterations", (_k_int(1, 256), None)),
    ("tied", (_k_bool, None)),
    ("cell", (_k_enum("conv", "residual", "convlstm", "gru"), "conv")),
    ("kernel", (_k_enum("1", "3", "5", "7"), "3")),
    ("stride", (_k_int(1, 4), "1")),
    ("bottomup", (_k_enum("first", "every"), "every")),
    ("lateral", (_k_bool, "yes")),
    ("topdown", (_k_bool, "no")),
])

TRAIN_KEYS = OrderedDict([
    ("data", (_k_data, "fashion-mnist")),
    ("epochs", (_k_int(1, 10000), "10")),
    ("batch", (_k_int(1, 65536), "128")),
    ("limit", (_k_int(0, None), "0")),
    ("val", (_k_int(0, None), "0")),
    ("optimizer", (_k_enum("sgd", "adamw"), "adamw")),
    ("lr", (_k_float(0.0, None, lo_open=True), "0.002")),
    ("momentum", (_k_float(0.0, 1.0, hi_open=True), "0.9")),
    ("nesterov", (_k_bool, "no")),
    ("weight_decay", (_k_float(0.0, None), "0.0005")),
    ("beta1", (_k_float(0.0, 1.0, hi_open=True), "0.9")),
    ("beta2", (_k_float(0.0, 1.0, hi_open=True), "0.999")),
    ("adam_eps", (_k_float(0.0, None, lo_open=True), "1e-8")),
    ("schedule", (_k_enum("constant", "step", "cosine"), "cosine")),
    ("warmup_epochs", (_k_float(0.0, None), "1")),
    ("step_every", (_k_int(1, None), "30")),
    ("step_gamma", (_k_float(0.0, None, lo_open=True), "0.1")),
    ("crop_pad", (_k_int(0, 16), "2")),
    ("flip", (_k_bool, "yes")),
    ("seed", (_k_int(0, None), "1")),
    ("threads", (_k_int(0, 256), "0")),
])

# area keys read only in some areas (_area_groups): groups (a number dividing channels, or depthwise) and,
# with groups > 1, pointwise
AREA_COND_KEYS = OrderedDict([("groups", (_k_text, "1")), ("pointwise", (_k_bool, "yes"))])

_SECTION_KEYS = {"model": OrderedDict(list(MODEL_KEYS.items()) + [(k, v[:2]) for k, v in MODEL_COND_KEYS.items()]),
                 "train": TRAIN_KEYS, "area": OrderedDict(list(AREA_KEYS.items()) + list(AREA_COND_KEYS.items()))}


class Config(object):
    """Parsed config: .model, .train (dicts of typed values), .areas (list of dicts, bottom to top,
    each with 'name'), .defaults (list of 'using default ...' lines), .text (the source text)."""

    def __init__(self):
        self.model = {}
        self.train = {}
        self.areas = []
        self.defaults = []
        self.text = ""
        self.source = "<config>"

    # derived geometry ---------------------------------------------------------------------------
    def area_shapes(self):
        """[(C_k, H_k, W_k)] for k = 1..K."""
        c, h, w = self.model["input"]
        out = []
        for a in self.areas:
            k, s = a["kernel"], a["stride"]
            h = (h + 2 * (k // 2) - k) // s + 1
            w = (w + 2 * (k // 2) - k) // s + 1
            out.append((a["channels"], h, w))
        return out

    def readouts(self):
        return self.areas[-1]["iterations"]


def _strip_comment(line):
    s = line.strip()
    if s.startswith("#") or s.startswith(";"):
        return ""
    m = re.search(r"\s[#;]", line)
    if m:
        line = line[:m.start()]
    return line.strip()


def parse_config(text, source="<config>", overrides=()):
    """Parse our INI format strictly and apply defaults. overrides: iterable of 'SECTION.KEY=VALUE'
    (or 'area.NAME.KEY=VALUE'), applied after the file, as --set does."""
    raw = []  # [type, name, OrderedDict key -> (value, line), header line]
    for lineno, line in enumerate(text.splitlines(), 1):
        s = _strip_comment(line)
        if not s:
            continue
        where = "%s:%d: " % (source, lineno)
        if s.startswith("["):
            m = re.fullmatch(r"\[\s*([A-Za-z_]+)(?:\s+([A-Za-z0-9_\-]+))?\s*\]", s)
            if not m:
                raise ConfigError(where + "bad section header %r" % s)
            typ, name = m.group(1), m.group(2) or ""
            if typ not in _SECTION_KEYS:
                raise ConfigError(where + "unknown section [%s]" % typ)
            if typ == "area" and not name:
                raise ConfigError(where + "[area] needs a name: [area NAME]")
            if typ != "area" and name:
                raise ConfigError(where + "[%s] takes no name" % typ)
            for r in raw:
                if r[0] == typ and r[1] == name:
                    raise ConfigError(where + "duplicate section [%s%s]" % (typ, " " + name if name else ""))
            raw.append([typ, name, OrderedDict(), lineno])
            continue
        if "=" not in s:
            raise ConfigError(where + "expected 'key = value'")
        if not raw:
            raise ConfigError(where + "key outside of any section")
        key, val = s.split("=", 1)
        key, val = key.strip(), val.strip()
        sec = raw[-1]
        if key not in _SECTION_KEYS[sec[0]]:
            raise ConfigError(where + "unknown key '%s' in [%s%s]" % (key, sec[0], " " + sec[1] if sec[1] else ""))
        if key in sec[2]:
            raise ConfigError(where + "duplicate key '%s'" % key)
        sec[2][key] = (val, lineno)

    for ov in overrides:
        if "=" not in ov:
            raise ConfigError("--set %s: expected SECTION.KEY=VALUE" % ov)
        lhs, val = ov.split("=", 1)
        parts = lhs.strip().split(".")
        if len(parts) == 2:
            typ, name, key = parts[0], None, parts[1]
        elif len(parts) == 3:
            typ, name, key = parts
        else:
            raise ConfigError("--set %s: expected SECTION.KEY=VALUE or SECTION.NAME.KEY=VALUE" % ov)
        cands = [r for r in raw if r[0] == typ and (name is None or r[1] == name)]
        if not cands and typ in ("model", "train") and name is None:
            raw.append([typ, "", OrderedDict(), 0])
            cands = [raw[-1]]
        if len(cands) != 1:
            raise ConfigError("--set %s: %s section" % (ov, "no such" if not cands else "ambiguous"))
        if typ not in _SECTION_KEYS or key not in _SECTION_KEYS[typ]:
            raise ConfigError("--set %s: unknown key" % ov)
        cands[0][2][key] = (val.strip(), 0)

    cfg = Config()
    cfg.text = text
    cfg.source = source

    def fill(typ, name, table, entries, header_line, out):
        label = "[%s%s]" % (typ, " " + name if name else "")
        for key, (conv, default) in table.items():
            if key in entries:
                val, line = entries[key]
                try:
                    out[key] = conv(val)
                except ValueError as e:
                    raise ConfigError("%s:%d: %s %s = %r: %s" % (source, line, label, key, val, e))
            else:
                if typ == "model" and key == "name":
                    default = os.path.splitext(os.path.basename(source))[0]
                if default is None:
                    raise ConfigError("%s:%d: %s: missing required key '%s'" % (source, header_line, label, key))
                out[key] = conv(default)
                cfg.defaults.append("using default %s %s = %s" % (label, key, default))

    secs = {t: [r for r in raw if r[0] == t] for t in _SECTION_KEYS}
    fill("model", "", MODEL_KEYS, secs["model"][0][2] if secs["model"] else {}, 0, cfg.model)
    ment = secs["model"][0][2] if secs["model"] else {}
    for key, (conv, default, applies) in MODEL_COND_KEYS.items():
        if applies(cfg.model) or key in ment:
            if key == "head_channels" and not applies(cfg.model):
                raise ConfigError("%s:%d: model.head_channels needs model.readout = dense" % (source, ment[key][1]))
            fill("model", "", OrderedDict([(key, (conv, default))]), ment, 0, cfg.model)
    fill("train", "", TRAIN_KEYS, secs["train"][0][2] if secs["train"] else {}, 0, cfg.train)
    for r in secs["area"]:
        a = {"name": r[1]}
        fill("area", r[1], AREA_KEYS, r[2], r[3], a)
        a["kernel"] = int(a["kernel"])
        _area_groups(r[1], r[2], a, source, fill, r[3])
        a["_line"] = r[3]
        cfg.areas.append(a)
    _validate(cfg)
    return cfg


def _area_groups(name, entries, a, source, fill, header_line):
    """a["groups"] (1: dense; depthwise = channels) and a["pointwise"] (docs/CONFIG.md, groups)."""
    a["groups"], a["pointwise"] = 1, False
    if "groups" in entries:
        val, line = entries["groups"]
        if val == "depthwise":
            g = a["channels"]
        elif re.fullmatch(r"\d+", val) and 1 <= int(val) <= 1024:
            g = int(val)
        else:
            raise ConfigError("%s:%d: [area %s] groups = %r: expected a number of groups or depthwise"
                              % (source, line, name, val))
        if a["channels"] % g:
            raise ConfigError("%s:%d: [area %s] groups = %d does not divide channels = %d"
                              % (source, line, name, g, a["channels"]))
        if g > 1 and not a["lateral"] and a["cell"] != "residual":
            raise ConfigError("%s:%d: [area %s] groups needs a lateral or residual conv" % (source, line, name))
        a["groups"] = g
    if a["groups"] > 1:
        fill("area", name, OrderedDict([("pointwise", AREA_COND_KEYS["pointwise"])]), entries, header_line, a)
    elif "pointwise" in entries:
        raise ConfigError("%s:%d: [area %s] pointwise needs groups > 1" % (source, entries["pointwise"][1], name))


def load_config(path, overrides=()):
    with open(path, "r") as f:
        text = f.read()
    return parse_config(text, source=path, overrides=overrides)


def _validate(cfg):
    src = cfg.source
    areas = cfg.areas
    if not areas:
        raise ConfigError("%s: at least one [area NAME] is needed" % src)
    if len(areas) > 16:
        raise ConfigError("%s: at most 16 areas" % src)
    lockstep = cfg.model["unroll"] == "lockstep"
    for i, a in enumerate(areas):
        where = "%s:%d: [area %s]: " % (src, a["_line"], a["name"])
        if a["topdown"] and not lockstep:
            raise ConfigError(where + "topdown needs unroll = lockstep")
        if a["topdown"] and i == len(areas) - 1:
            raise ConfigError(where + "topdown is not allowed in the top area")
        if lockstep and a["iterations"] != areas[0]["iterations"]:
            raise ConfigError(where + "lockstep needs the same iterations in every area")
        if a["cell"] == "gru" and not a["lateral"]:
            raise ConfigError(where + "cell = gru needs lateral = yes")
        if (a["iterations"] > 1 and a["bottomup"] == "first" and not a["lateral"] and not a["topdown"]):
            raise ConfigError(where + "steps after the first have no input (bottomup = first, lateral = no)")
    c, h, w = cfg.model["input"]
    for a, (ck, hk, wk) in zip(areas, cfg.area_shapes()):
        if hk < 1 or wk < 1:
            raise ConfigError("%s:%d: [area %s]: spatial size drops below 1" % (src, a["_line"], a["name"]))
    if cfg.model["loss"] == "coarse-to-fine":
        coarse_map(cfg)  # raises when the dataset has no taxonomy
    if cfg.model["readout"] == "dense" and any(a["stride"] != 1 for a in areas):
        raise ConfigError("%s: readout = dense needs stride 1 in every area" % src)
    if cfg.model["recall"]:
        if lockstep or any(a["bottomup"] != "every" or not a["lateral"] for a in areas):
            raise ConfigError("%s: recall needs sequential unroll, bottomup = every and lateral = yes" % src)
    if cfg.model["loss"] == "progressive":
        raise ConfigError("%s: the twin has no progressive loss (tests/test_tasks_model.c checks it)" % src)
    if cfg.model["halting"] == "ponder" and (cfg.model["loss"] != "every" or cfg.readouts() < 2):
        raise ConfigError("%s: halting = ponder needs loss = every and at least 2 readouts" % src)


def coarse_map(cfg):
    """Class -> group list for coarse-to-fine (Fashion-MNIST's taxonomy)."""
    data = cfg.train["data"]
    if data == "fashion-mnist":
        if cfg.model["classes"] != 10:
            raise ConfigError("%s: coarse-to-fine with Fashion-MNIST needs classes = 10" % cfg.source)
        return list(FASHION_MNIST_GROUPS)
    raise ConfigError("%s: coarse-to-fine: the twin knows no taxonomy for data = %s" % (cfg.source, data))


# ---------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------

def _key(name):
    return name.replace(".", "__")


class RecurNet(nn.Module):
    """The unrolled recurrent conv net of docs/CONFIG.md. Params and buffers are kept under the
    documented names (see .recur_names); forward(x) returns the list of R readout logits."""

    def __init__(self, cfg, init=True, seed=None):
        super(RecurNet, self).__init__()
        self.cfg = cfg
        self.m = cfg.model
        self.areas = cfg.areas
        self.shapes = cfg.area_shapes()
        self.norm = self.m["norm"]
        self.recur_names = []      # every param and buffer, creation order
        self.param_names = []      # trainable params
        self.buffer_names = []
        self.decay_names = []      # conv and linear weights (weight decay applies)
        self._init_spec = {}       # name -> ("normal", std) | ("uniform", a) | ("const", v)
        self.recompute_bu = False  # True: do not reuse D in sequential tied areas (checks only)
        self.last_depth = None
        in_c = self.m["input"][0]
        self.recall = bool(self.m["recall"])
        self.dense = self.m["readout"] == "dense"
        for k, a in enumerate(self.areas):
            below_c = in_c if k == 0 else self.areas[k - 1]["channels"]
            above_c = self.areas[k + 1]["channels"] if k + 1 < len(self.areas) else None
            C = a["channels"]
            gru = a["cell"] == "gru"
            Cout = {"convlstm": 4 * C, "gru": 3 * C}.get(a["cell"], C)
            kk = a["kernel"]
            nobn = self.norm == "none"
            if self.recall:
                self._conv("%s.proj" % a["name"], C, below_c, kk, bias=nobn)
            for t in range(1, a["iterations"] + 1):
                drive = t == 1 or a["bottomup"] == "every" or (t > 1 and a["topdown"])
                if t == 1 or a["bottomup"] == "every":
                    self._conv(self.conv_name(a, t, "bu"), Cout, below_c, kk, bias=nobn)
                if (t > 1 or self.recall) and a["lateral"]:  # a GRU's hidden term has a bias (as nn.GRU's b_h)
                    self._state_conv(a, self.conv_name(a, t, "lat"), Cout, bias=nobn and gru)
                if t > 1 and a["topdown"]:
                    self._conv(self.conv_name(a, t, "td"), Cout, above_c, kk, bias=False)
                if not nobn and (drive or not gru):
                    self._bn(self.bn_name(a, t, "bn"), Cout)
                if not nobn and gru and (t > 1 or self.recall):
                    self._bn(self.bn_name(a, t, "bnh"), Cout)
                if a["cell"] == "residual":
                    self._state_conv(a, self.conv_name(a, t, "conv2"), C, bias=nobn)
                    if not nobn:
                        self._bn(self.bn_name(a, t, "bn2"), C)
        Ck = self.areas[-1]["channels"]
        for t in range(1, self.cfg.readouts() + 1):
            if self.dense:
                cin, kk = Ck, self.areas[-1]["kernel"]
                for i, wdt in enumerate(self.m["head_channels"]):
                    self._conv("%s.conv%d" % (self.head_name(t), i + 1), wdt, cin, kk, bias=True)
                    cin = wdt
                self._conv("%s.out" % self.head_name(t), self.m["classes"], cin, kk, bias=True)
            else:
                self._linear(self.head_name(t), self.m["classes"], Ck)
        if self.m["halting"] == "ponder":
            for t in range(1, self.cfg.readouts() + 1):
                self._linear(self.halt_name(t), 1, Ck)
        if init:
            self.reset_parameters(cfg.train["seed"] if seed is None else seed)

    # naming ---------------------------------------------------------------------------------------
    def conv_name(self, a, t, what):
        return "%s.%s" % (a["name"], what) if a["tied"] else "%s.t%d.%s" % (a["name"], t, what)

    def bn_name(self, a, t, what):
        shared = self.norm == "batch" and a["tied"]
        return "%s.%s" % (a["name"], what) if shared else "%s.%s.t%d" % (a["name"], what, t)

    def head_name(self, t):
        return "head" if self.m["head"] == "shared" else "head.t%d" % t

    def halt_name(self, t):
        """PonderNet halting head after step t; per iteration, steps >= R - 1 share step R - 1's."""
        if self.m["head"] == "shared":
            return "halt"
        return "halt.t%d" % min(t, self.cfg.readouts() - 1)

    # registration ---------------------------------------------------------------------------------
    def _add_param(self, name, shape, init, decay):
        if name in self._init_spec:
            return
        self.register_parameter(_key(name), nn.Parameter(torch.empty(*shape)))
        self.recur_names.append(name)
        self.param_names.append(name)
        if decay:
            self.decay_names.append(name)
        self._init_spec[name] = init

    def _add_buffer(self, name, shape, value):
        if name in self._init_spec:
            return
        self.register_buffer(_key(name), torch.full(shape, float(value)))
        self.recur_names.append(name)
        self.buffer_names.append(name)
        self._init_spec[name] = ("const", value)

    def _conv(self, base, cout, cin, k, bias):
        if self.recall or self.dense:  # the deep-thinking nets: PyTorch's default, the anchor's
            init = ("uniform", 1.0 / math.sqrt(cin * k * k))
        else:
            init = ("normal", math.sqrt(2.0 / (cin * k * k)))
        self._add_param(base + ".weight", (cout, cin, k, k), init, True)
        if bias:
            self._add_param(base + ".bias", (cout,), ("const", 0.0), False)

    def _state_conv(self, a, base, cout, bias):
        """conv_lat / conv_2 of area a (C channels in): dense, or grouped (base.weight (mid, C/G, k, k)) with,
        when pointwise, mid = C and a 1x1 conv base.pw.weight (cout, C, 1, 1) after it; the bias on the last."""
        C, G, k = a["channels"], a["groups"], a["kernel"]
        pw = G > 1 and a["pointwise"]
        self._conv(base, C if pw else cout, C // G, k, bias=bias and not pw)
        if pw:
            self._conv(base + ".pw", cout, C, 1, bias=False)
            if bias:
                self._add_param(base + ".bias", (cout,), ("const", 0.0), False)

    def _bn(self, base, c):
        self._add_param(base + ".gamma", (c,), ("const", 1.0), False)
        self._add_param(base + ".beta", (c,), ("const", 0.0), False)
        self._add_buffer(base + ".running_mean", (c,), 0.0)
        self._add_buffer(base + ".running_var", (c,), 1.0)

    def _linear(self, base, out, cin):
        a = 1.0 / math.sqrt(cin)
        self._add_param(base + ".weight", (out, cin), ("uniform", a), True)
        self._add_param(base + ".bias", (out,), ("uniform", a), False)

    def reset_parameters(self, seed):
        """Initialise every param and buffer from its spec with torch.manual_seed(seed), in creation order."""
        torch.manual_seed(seed)
        with torch.no_grad():
            for name in self.recur_names:
                kind, v = self._init_spec[name]
                x = self.get(name)
                if kind == "normal":
                    x.normal_(0.0, v)
                elif kind == "uniform":
                    x.uniform_(-v, v)
                else:
                    x.fill_(v)

    def reset_running_stats(self):
        with torch.no_grad():
            for name in self.buffer_names:
                self.get(name).fill_(self._init_spec[name][1])

    def get(self, name):
        return getattr(self, _key(name))

    def has(self, name):
        return name in self._init_spec

    def recur_state(self):
        """OrderedDict name -> detached clone of every param and buffer."""
        return OrderedDict((n, self.get(n).detach().clone()) for n in self.recur_names)

    def load_recur_state(self, state):
        with torch.no_grad():
            for n in self.recur_names:
                self.get(n).copy_(state[n])

    def trainable_count(self):
        return sum(self.get(n).numel() for n in self.param_names)

    # forward pieces -------------------------------------------------------------------------------
    def _convf(self, base, x, stride, k):
        b = base + ".bias"
        return F.conv2d(x, self.get(base + ".weight"), self.get(b) if self.has(b) else None,
                        stride=stride, padding=k // 2)

    def _statef(self, a, base, x):
        """The state conv _state_conv registered: F.conv2d with groups, then the pointwise conv and bias."""
        G, k = a["groups"], a["kernel"]
        b = base + ".bias"
        bias = self.get(b) if self.has(b) else None
        if not (G > 1 and a["pointwise"]):
            return F.conv2d(x, self.get(base + ".weight"), bias, stride=1, padding=k // 2, groups=G)
        y = F.conv2d(x, self.get(base + ".weight"), None, stride=1, padding=k // 2, groups=G)
        return F.conv2d(y, self.get(base + ".pw.weight"), bias)

    def _normf(self, base, x):
        if self.norm == "none":
            return x
        return F.batch_norm(x, self.get(base + ".running_mean"), self.get(base + ".running_var"),
                            self.get(base + ".gamma"), self.get(base + ".beta"),
                            training=self.training, momentum=self.m["bn_momentum"], eps=self.m["bn_eps"])

    def _step(self, k, t, x, xd, h_prev, hd_prev, c_prev, cd_prev, above, ad, D_cache):
        """One step of area k (0-based) at step t (1-based). Tensors carry a parallel conv-depth (the
        *d arguments; None = no path from the image). Returns (h, hd, c, cd)."""
        a = self.areas[k]
        C = a["channels"]
        if a["cell"] == "gru":
            return self._gru_step(k, t, x, xd, h_prev, hd_prev, above, ad, D_cache)
        terms, depths = self._drive_terms(a, k, t, x, xd, h_prev if a["lateral"] else None, hd_prev, above, ad,
                                          D_cache)
        s = terms[0]
        for extra in terms[1:]:
            s = s + extra
        ad_ = max(depths)
        g = self._normf(self.bn_name(a, t, "bn"), s)
        if a["cell"] == "conv":
            return F.relu(g), ad_, None, None
        if a["cell"] == "residual":
            u = F.relu(g)
            v = self._normf(self.bn_name(a, t, "bn2"), self._statef(a, self.conv_name(a, t, "conv2"), u))
            vd = ad_ + 1
            if self.recall:  # the skip adds the recall conv's (normalised) output, not h(t-1)
                return F.relu(v + g), vd, None, None
            if h_prev is None:
                return F.relu(v), vd, None, None
            return F.relu(v + h_prev), max(vd, hd_prev), None, None
        # convlstm
        i, f, o, cc = g[:, 0:C], g[:, C:2 * C], g[:, 2 * C:3 * C], g[:, 3 * C:4 * C]
        c = torch.sigmoid(i) * torch.tanh(cc)
        cd = ad_
        if c_prev is not None:
            c = torch.sigmoid(f) * c_prev + c
            cd = max(cd, cd_prev)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, cd, c, cd

    def _drive_terms(self, a, k, t, x, xd, h_lat, hd_lat, above, ad, D_cache):
        """The terms summed into a step's input, in the engine's order, with their conv depths: the bottom-up
        conv (step 1, or every step; reused from D_cache), the lateral conv of h_lat (None: none; the GRU
        takes its hidden term apart) and the upsampled top-down conv (t > 1)."""
        kk = a["kernel"]
        terms, depths = [], []
        if t == 1 or a["bottomup"] == "every":
            if D_cache is not None and D_cache.get("D") is not None:
                D, Dd = D_cache["D"], D_cache["Dd"]
            else:
                D, Dd = self._convf(self.conv_name(a, t, "bu"), x, a["stride"], kk), xd + 1
                if D_cache is not None:
                    D_cache["D"], D_cache["Dd"] = D, Dd
            terms.append(D)
            depths.append(Dd)
        if h_lat is not None:  # t > 1, or t = 1 from recall's projection
            terms.append(self._statef(a, self.conv_name(a, t, "lat"), h_lat))
            depths.append(hd_lat + 1)
        if t > 1 and a["topdown"]:
            z = self._convf(self.conv_name(a, t, "td"), above, 1, kk)
            _, hk, wk = self.shapes[k]
            terms.append(F.interpolate(z, size=(hk, wk), mode="nearest"))
            depths.append(ad + 1)
        return terms, depths

    def _gru_step(self, k, t, x, xd, h_prev, hd_prev, above, ad, D_cache):
        """GRU step (docs/CONFIG.md): drive = N(bu + td), hidden = Nh(lat(h_prev)), 3C channels each as z, r, n;
        z = sigmoid(x_z + h_z), r = sigmoid(x_r + h_r), n = tanh(x_n + r h_n), h = (1 - z) n + z h_prev."""
        a = self.areas[k]
        C = a["channels"]
        terms, depths = self._drive_terms(a, k, t, x, xd, None, None, above, ad, D_cache)
        xs = None
        if terms:
            xs = terms[0]
            for extra in terms[1:]:
                xs = xs + extra
            xs = self._normf(self.bn_name(a, t, "bn"), xs)
        hs = None
        if h_prev is not None:
            hs = self._normf(self.bn_name(a, t, "bnh"), self._statef(a, self.conv_name(a, t, "lat"), h_prev))
            depths.append(hd_prev + 1)

        def part(v, j):
            return None if v is None else v[:, j * C:(j + 1) * C]

        def plus(p, q):
            return q if p is None else (p if q is None else p + q)

        z = torch.sigmoid(plus(part(xs, 0), part(hs, 0)))
        if hs is None:
            return (1 - z) * torch.tanh(part(xs, 2)), max(depths), None, None
        r = torch.sigmoid(plus(part(xs, 1), part(hs, 1)))
        n = torch.tanh(plus(part(xs, 2), r * part(hs, 2)))
        return (1 - z) * n + z * h_prev, max(depths), None, None

    def _head(self, t, h, outs):
        base = self.head_name(t)
        if self.dense:
            kk = self.areas[-1]["kernel"]
            for i in range(len(self.m["head_channels"])):
                h = F.relu(self._convf("%s.conv%d" % (base, i + 1), h, 1, kk))
            outs.append(self._convf(base + ".out", h, 1, kk))
            return
        pool = h.mean(dim=(2, 3))
        outs.append(F.linear(pool, self.get(base + ".weight"), self.get(base + ".bias")))
        if self.m["halting"] == "ponder":
            hb = self.halt_name(t)
            outs.halts.append(F.linear(pool, self.get(hb + ".weight"), self.get(hb + ".bias"))[:, 0])

    def forward(self, x):
        """[logits_1..logits_R]; with halting = ponder the list's .halts holds the halting logits (N,)."""
        K = len(self.areas)
        outs = Readouts()
        if self.m["unroll"] == "sequential":
            inp, inpd = x, 0
            for k, a in enumerate(self.areas):
                reuse = a["tied"] and a["bottomup"] == "every" and not self.recompute_bu
                cache = {} if reuse else None
                h = hd = c = cd = None
                if self.recall:  # h(0) = relu(proj(x)) at the area's stride
                    h, hd = F.relu(self._convf("%s.proj" % a["name"], inp, a["stride"], a["kernel"])), inpd + 1
                for t in range(1, a["iterations"] + 1):
                    h, hd, c, cd = self._step(k, t, inp, inpd, h, hd, c, cd, None, None, cache)
                    if k == K - 1:
                        self._head(t, h, outs)
                inp, inpd = h, hd
            self.last_depth = inpd + (len(self.m["head_channels"]) + 1 if self.dense else 0)
        else:
            T = self.areas[0]["iterations"]
            h = [None] * K
            hd = [None] * K
            c = [None] * K
            cd = [None] * K
            for t in range(1, T + 1):
                ph, phd = list(h), list(hd)  # states at t-1
                inp, inpd = x, 0
                for k in range(K):
                    above = ph[k + 1] if k + 1 < K else None
                    ad = phd[k + 1] if k + 1 < K else None
                    h[k], hd[k], c[k], cd[k] = self._step(k, t, inp, inpd, ph[k], phd[k], c[k], cd[k],
                                                          above, ad, None)
                    inp, inpd = h[k], hd[k]
                self._head(t, h[K - 1], outs)
            self.last_depth = hd[K - 1]
        return outs


class Readouts(list):
    """The forward pass's readout logits, with the halting logits (halting = ponder) as .halts."""

    def __init__(self):
        super(Readouts, self).__init__()
        self.halts = []


# ---------------------------------------------------------------------------------------------------
# Loss, optimizer, schedule, step
# ---------------------------------------------------------------------------------------------------

def schedule_weights(cfg):
    """[(w_fine, w_coarse)] per readout t = 1..R."""
    R = cfg.readouts()
    loss = cfg.model["loss"]
    if loss == "final":
        return [(1.0 if t == R else 0.0, 0.0) for t in range(1, R + 1)]
    if loss == "every":
        return [(1.0 / R, 0.0) for _ in range(R)]
    if loss == "increasing":
        z = R * (R + 1) / 2.0
        return [(t / z, 0.0) for t in range(1, R + 1)]
    if R == 1:
        return [(1.0, 0.0)]
    out = []
    for t in range(1, R + 1):
        f = (t - 1) / float(R - 1)
        out.append((f / R, (1.0 - f) / R))
    return out


def coarse_ce(logits, labels, groups):
    """mean_n -log sum_{j in group(y_n)} softmax(logits_n)_j."""
    g = torch.as_tensor(groups, dtype=torch.long, device=logits.device)
    same = g.unsqueeze(0) == g[labels].unsqueeze(1)  # (N, K)
    lse_all = torch.logsumexp(logits, dim=1)
    masked = logits.masked_fill(~same, float("-inf"))
    lse_grp = torch.logsumexp(masked, dim=1)
    return (lse_all - lse_grp).mean()


def dense_ce(logits, labels):
    """labels = (targets (N, H, W) long, mask (N, H, W) bool): mean over the kept positions of the batch."""
    y, mask = labels
    ce = F.cross_entropy(logits, y, reduction="none")
    m = mask.to(ce.dtype)
    return (ce * m).sum() / m.sum().clamp(min=1.0)


def ponder_loss(logits, halts, labels, cfg):
    """PonderNet (docs/CONFIG.md): per image sum_n p_n CE_n + beta KL(p || q), mean over the batch, with
    p_n = lambda_n prod_{j<n} (1 - lambda_j), lambda_n = sigmoid(s_n), lambda_R = 1, and q the geometric
    prior truncated at R and renormalised. Returns (total, [mean CE per readout])."""
    R = len(logits)
    ce = torch.stack([F.cross_entropy(lg, labels, reduction="none") for lg in logits], dim=1)  # (N, R)
    s = torch.stack(halts, dim=1)
    lam = torch.cat([torch.sigmoid(s[:, :R - 1]), torch.ones_like(s[:, :1])], dim=1)
    surv = torch.cumprod(torch.cat([torch.ones_like(s[:, :1]), 1 - lam[:, :R - 1]], dim=1), dim=1)
    p = lam * surv
    lp = cfg.model["ponder_lambda"]
    q = torch.tensor([lp * (1 - lp) ** n for n in range(R)], dtype=s.dtype)
    q = q / q.sum()
    kl = (p * (torch.log(p) - torch.log(q))).sum(dim=1)
    total = ((p * ce).sum(dim=1) + cfg.model["ponder_beta"] * kl).mean()
    return total, [ce[:, t].mean() for t in range(R)]


def scheduled_loss(logits, labels, cfg):
    """Returns (total scheduled loss, [unweighted fine CE of each readout]) as tensors. Dense readouts:
    labels is (targets, mask). The PonderNet loss when halting = ponder: logits must then be the model's
    output list, which carries .halts."""
    if cfg.model["halting"] == "ponder":
        return ponder_loss(logits, logits.halts, labels, cfg)
    ws = schedule_weights(cfg)
    if cfg.model["readout"] == "dense":
        fines = [dense_ce(lg, labels) for lg in logits]
        total = None
        for ce, (wf, _) in zip(fines, ws):
            total = wf * ce if total is None else total + wf * ce
        return total, fines
    groups = coarse_map(cfg) if cfg.model["loss"] == "coarse-to-fine" else None
    total = None
    fines = []
    for lg, (wf, wc) in zip(logits, ws):
        ce = F.cross_entropy(lg, labels)
        fines.append(ce)
        term = wf * ce
        if wc != 0.0:
            term = term + wc * coarse_ce(lg, labels, groups)
        total = term if total is None else total + term
    return total, fines


def make_optimizer(model, cfg, lr=None):
    tr = cfg.train
    lr = tr["lr"] if lr is None else lr
    decay = [model.get(n) for n in model.param_names if n in model.decay_names]
    nodecay = [model.get(n) for n in model.param_names if n not in model.decay_names]
    groups = [{"params": decay, "weight_decay": tr["weight_decay"]},
              {"params": nodecay, "weight_decay": 0.0}]
    if tr["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=tr["momentum"], nesterov=tr["nesterov"],
                               foreach=False)
    return torch.optim.AdamW(groups, lr=lr, betas=(tr["beta1"], tr["beta2"]), eps=tr["adam_eps"],
                             foreach=False)


def warmup_steps(train, steps_per_epoch):
    """floor(warmup_epochs * steps_per_epoch), at most a quarter of the run's steps."""
    w = int(math.floor(train["warmup_epochs"] * steps_per_epoch + 1e-9))
    return min(w, train["epochs"] * steps_per_epoch // 4)


def lr_at(s, total_steps, steps_per_epoch, train):
    """Learning rate at 0-based step s of total_steps (docs/CONFIG.md)."""
    lr = train["lr"]
    W = warmup_steps(train, steps_per_epoch)
    if s < W:
        return lr * (s + 1) / float(W)
    sch = train["schedule"]
    if sch == "constant":
        return lr
    if sch == "cosine":
        span = total_steps - W
        if span <= 0:
            return lr
        return lr * 0.5 * (1.0 + math.cos(math.pi * (s - W) / float(span)))
    epoch = s // steps_per_epoch
    return lr * train["step_gamma"] ** (epoch // train["step_every"])


def train_step(model, opt, x, y, lr=None):
    """One training step (train mode): forward, scheduled loss, backward, update. Returns the loss
    value before the update. lr: set every param group's learning rate first (None = leave)."""
    model.train()
    if lr is not None:
        for g in opt.param_groups:
            g["lr"] = lr
    opt.zero_grad(set_to_none=False)
    total, _ = scheduled_loss(model(x), y, model.cfg)
    total.backward()
    opt.step()
    return float(total.detach())


def build_model(cfg_path, input_shape=None, overrides=()):
    """Model from a cfg file. input_shape: optional (C, H, W) replacing model.input."""
    ov = list(overrides)
    if input_shape is not None:
        ov.append("model.input=%dx%dx%d" % tuple(input_shape))
    cfg = load_config(cfg_path, overrides=ov)
    return RecurNet(cfg), cfg


def setup_deterministic(threads=1):
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
