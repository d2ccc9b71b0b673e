"""Plot the client benchmark (target/client_bench.csv) into docs/client_bench.png.

    python docs/plot_client_bench.py [csv] [png]     # needs matplotlib
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src = sys.argv[1] if len(sys.argv) > 1 else "target/client_bench.csv"
dst = sys.argv[2] if len(sys.argv) > 2 else "docs/client_bench.png"
rows = list(csv.DictReader(open(src)))
labels = {1024: "1 KiB", 1 << 20: "1 MiB", 16 << 20: "16 MiB"}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
for ax, clients in zip(axes, ["1", "16"]):
    sel = [r for r in rows if r["clients"] == clients]
    xs = range(len(sel))
    series = [
        ("orc_client_mibs", "orc-client"),
        ("smartredis_mibs", "SmartRedis Python"),
        ("redis_benchmark_mibs", "redis-benchmark SET+GET"),
        ("raw_threads_mibs", "SET+GET from threads"),
    ]
    series = [(k, n) for k, n in series if sel and k in sel[0]]  # older csv files lack the last
    w = 0.8 / len(series)
    for i, (key, name) in enumerate(series):
        ax.bar([x + (i - (len(series) - 1) / 2) * w for x in xs], [float(r[key]) for r in sel], w, label=name)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([labels[int(r["size"])] for r in sel])
    ax.set_yscale("log")
    ax.set_ylabel("MiB/s (put + get payload)")
    ax.set_title(f"{clients} client{'s' if clients != '1' else ''}")
    ax.grid(axis="y", alpha=0.3)
axes[0].legend(fontsize=8)
fig.suptitle("Tensor put+get throughput, loopback, 2-core machine")
fig.tight_layout()
fig.savefig(dst, dpi=110)
print("wrote", dst)
