"""vs_pytorch_table.py -- the summary of bench/vs_pytorch.sh: reads its JSON lines (one per run, tagged
with side, cfg and round) and prints a Markdown table, per model and PyTorch anchor: the medians of
images/s, and the median and spread (min..max over rounds) of the per-round ratios recur/anchor for
training and inference images/s and anchor/recur for peak RSS. With several 2.x modes, a row "2.x best"
takes per round the fastest 2.x mode of that round (for training and inference separately) and the
smallest peak RSS. The anchor "recur baseline" (--baseline) is another recur binary: before/after. usage: python3 bench/vs_pytorch_table.py RUNS.jsonl [...]
"""

import json
import statistics
import sys

NAMES = {"recur-base": "recur baseline", "torch": "1.13 eager", "torch2-eager": "2.x eager", "torch2-cl": "2.x channels-last",
         "torch2-compile": "2.x compile", "torch2-compile-cl": "2.x compile+cl",
         "torch2-max-autotune": "2.x max-autotune"}


def fmt(xs):
    return "%.2fx (%.2f..%.2f)" % (statistics.median(xs), min(xs), max(xs)) if xs else "-"


def main():
    runs = [json.loads(line) for p in sys.argv[1:] for line in open(p) if line.strip()]
    # a model is its config's file name, or its [model] name where two configs share a file name
    # (configs/convlstm.cfg and bench/configs/convlstm.cfg)
    models = {}
    for d in runs:
        models.setdefault(d["cfg"], set()).add(d.get("model", d["cfg"]))
    by = {}
    for d in runs:
        label = d["cfg"] if len(models[d["cfg"]]) == 1 else d.get("model", d["cfg"])
        by.setdefault(label, {}).setdefault(d["round"], {})[d["side"]] = d
    anchors = [s for s in NAMES if any(s == d["side"] for d in runs)]
    two = [s for s in anchors if s.startswith("torch2-")]
    print("| model | PyTorch | train img/s recur / torch | train ratio | infer img/s recur / torch"
          " | infer ratio | peak RSS MB recur / torch | RSS torch/recur |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for cfg in sorted(by):
        rounds = by[cfg]
        rows = [(NAMES[a], [{"recur": v["recur"], "a": v[a]} for v in rounds.values()
                            if "recur" in v and a in v]) for a in anchors]
        if len(two) > 1:
            best = []
            for v in rounds.values():
                got = [v[a] for a in two if a in v]
                if "recur" in v and got:
                    best.append({"recur": v["recur"], "a": {
                        "train_images_per_s": max(g["train_images_per_s"] for g in got),
                        "infer_images_per_s": max(g["infer_images_per_s"] for g in got),
                        "peak_rss_mb": min(g["peak_rss_mb"] for g in got)}})
            rows.append(("2.x best", best))
        for name, pairs in rows:
            if not pairs:
                continue
            med = lambda side, k: statistics.median(p[side][k] for p in pairs)
            ratio = lambda k: [p["recur"][k] / p["a"][k] for p in pairs]
            rss = [p["a"]["peak_rss_mb"] / p["recur"]["peak_rss_mb"] for p in pairs]
            print("| %s | %s | %.0f / %.0f | %s | %.0f / %.0f | %s | %.0f / %.0f | %s |" % (
                cfg, name, med("recur", "train_images_per_s"), med("a", "train_images_per_s"),
                fmt(ratio("train_images_per_s")), med("recur", "infer_images_per_s"),
                med("a", "infer_images_per_s"), fmt(ratio("infer_images_per_s")),
                med("recur", "peak_rss_mb"), med("a", "peak_rss_mb"), fmt(rss)))


if __name__ == "__main__":
    main()
