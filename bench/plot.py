"""Draws a benchmark result (bench/bench.py's result.json) as a PNG: rows/s written and
replicated, marker lag, and milvus-cdc CPU and RSS, over time, with the phases shaded.

    python bench/plot.py bench/results/latest/result.json chart.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"direct": "#dddddd", "live": "#d8e8f8", "drain": "#f8e8d0", "half": "#dff3df", "direct_half": "#eeeeee"}


def series(samples):
    t, written, replicated, cpu, rss = [], [], [], [], []
    for a, b in zip(samples, samples[1:]):
        dt = b["t"] - a["t"]
        if dt <= 0:
            continue
        t.append(b["t"])
        same_writer = (a["writer_collection"] == b["writer_collection"] and a["writer_rows"] is not None
                       and b["writer_rows"] is not None)
        written.append((b["writer_rows"] - a["writer_rows"]) / dt if same_writer else 0.0)
        rep = sum(b["replicated"][c] - a["replicated"][c] for c in b["replicated"] if c in a["replicated"])
        replicated.append(max(0.0, rep / dt))
        cpu.append(100.0 * (b["cdc_cpu_s"] - a["cdc_cpu_s"]) / dt if b["cdc_cpu_s"] is not None else None)
        rss.append((b["cdc_rss_kb"] or 0) / 1024.0)
    return t, written, replicated, cpu, rss


def main(src, dst):
    res = json.loads(open(src).read())
    t, written, replicated, cpu, rss = series(res["samples"])
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(12, 10), sharex=True,
                                        gridspec_kw={"height_ratios": [3, 2, 2]})
    for ax in (ax1, ax2, ax3):
        for name, p in res["phases"].items():
            end = p.get("caught_up", p["t_end"])
            ax.axvspan(p["t_start"], end, color=COLORS.get(name, "#eeeeee"), zorder=0)
    for name, p in res["phases"].items():
        ax1.text(p["t_start"] + 2, 0.98, name, transform=ax1.get_xaxis_transform(), va="top", fontsize=9)

    ax1.plot(t, written, label="written (SOURCE; TARGET in direct) rows/s", color="#1f77b4", lw=1)
    ax1.plot(t, replicated, label="replicated by milvus-cdc rows/s", color="#d62728", lw=1)
    ax1.set_ylabel("rows/s")
    ax1.legend(loc="upper right", fontsize=8)
    c = res["config"]
    ax1.set_title(f"milvus-cdc benchmark {res['started_at']}: batch {c['batch']}, dim {c['dim']}, "
                  f"{res['machine']['nproc']} CPUs")

    for name in COLORS:
        pts = [(m["acked"], m["lag_s"]) for m in res["markers"] if m["phase"] == name and m["lag_s"] is not None]
        if pts:
            ax2.scatter([p[0] for p in pts], [p[1] for p in pts], s=4, label=f"{name} markers")
    gauge = [(x["t"], x["cdc_lag_gauge_ms"] / 1000.0) for x in res["samples"]
             if x.get("cdc_lag_gauge_ms") is not None and x["cdc_lag_gauge_ms"] > 0]
    if gauge:
        ax2.plot([g[0] for g in gauge], [g[1] for g in gauge], color="#7f7f7f", lw=0.7,
                 label="milvus_cdc_task_lag_ms (largest channel)")
    ax2.axhline(1.0, color="k", lw=0.8, ls="--")
    ax2.set_yscale("log")
    ax2.set_ylabel("ack -> visible on TARGET (s)")
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(loc="upper right", fontsize=8)

    ax3.plot(t, cpu, color="#2ca02c", lw=1, label="milvus-cdc CPU (% of one core)")
    ax3.set_ylabel("CPU %")
    ax3b = ax3.twinx()
    ax3b.plot(t, rss, color="#9467bd", lw=1, label="milvus-cdc RSS (MB)")
    ax3b.set_ylabel("RSS MB")
    ax3.set_xlabel("seconds since start")
    lines = ax3.get_legend_handles_labels()
    lines_b = ax3b.get_legend_handles_labels()
    ax3.legend(lines[0] + lines_b[0], lines[1] + lines_b[1], loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
