"""Draw chart.png from a results.json (runs in the bench virtualenv, which
has matplotlib):  python -m bench.chart results.json chart.png"""

import json
import sys

COLORS = {"pykafka_c": "#d62728", "confluent": "#1f77b4", "kafka-python": "#2ca02c",
          "pykafka": "#9467bd", "java": "#7f7f7f", "aiokafka": "#ff7f0e"}
NAMES = {"pykafka_c": "pykafka_c", "confluent": "confluent-kafka",
         "kafka-python": "kafka-python", "pykafka": "pykafka 2.8 (Kafka 3.9)",
         "java": "Kafka Java perf tool", "aiokafka": "aiokafka"}


def main(argv):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    with open(argv[0]) as f:
        doc = json.load(f)
    rows = [r for r in doc["rows"] if r["kind"] in ("consume", "produce") and "summary" in r]
    if not rows:
        raise SystemExit("no measured rows to draw")
    kinds = [k for k in ("consume", "produce") if any(r["kind"] == k for r in rows)]
    heights = [sum(1 for r in rows if r["kind"] == k) for k in kinds]
    fig, axes = plt.subplots(len(kinds), 1, figsize=(11, 1.2 + 0.24 * sum(heights) + 0.6
                                                     * len(kinds)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds):
        sel = [r for r in rows if r["kind"] == kind]
        labels, vals, cols = [], [], []
        prev = None
        for r in sel:
            wl = "%s, Kafka %s" % (r["workload"][len(kind) + 1:], r["broker"])
            labels.append("%s  %s" % (wl if wl != prev else "", r["api"]))
            prev = wl
            vals.append(r["summary"]["msgs_per_s"])
            cols.append(COLORS.get(r["client"], "#000000"))
        y = list(range(len(sel)))[::-1]
        ax.barh(y, vals, color=cols)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("messages/s (log scale; median of the timed runs)")
        ax.set_title("%s (%s mode, %s)" % (kind, doc["mode"], doc["generated"][:16]),
                     fontsize=10)
        for yy, v in zip(y, vals):
            ax.text(v, yy, " %s" % (("%.2fM" % (v / 1e6)) if v >= 1e6 else "%.0fk" % (v / 1e3)),
                    va="center", fontsize=6)
        ax.grid(axis="x", which="both", alpha=0.3)
    clients = [c for c in COLORS if any(r["client"] == c for r in rows)]
    fig.legend(handles=[Patch(color=COLORS[c], label=NAMES[c]) for c in clients],
               loc="upper right", fontsize=8)
    m = doc["machine"]
    fig.text(0.01, 0.003, "%d cores %s, Python %s, load avg %.1f-%.1f"
             % (m["cores"], m["cpu_model"], m["python"], m["loadavg_start"][0],
                m["loadavg_end"][0]), fontsize=6)
    fig.tight_layout(rect=(0, 0.01, 1, 0.97))
    fig.savefig(argv[1], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
