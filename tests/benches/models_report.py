"""Tables (markdown, on stdout) and a plot (SVG, no plotting library needed) from the
inference benchmark's CSV (scripts/bench-models).

    models_report.py models_bench.csv docs/models_bench.svg
"""
import csv
import sys
from collections import defaultdict

src, svg = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(src)))
LARGE = {"resnet18"}
REF = {"ONNX": "onnxruntime", "TORCH": "torch", "TF": "tensorflow", "TFLITE": "tflite"}

inproc = {(r["model"], r["backend"], r["batch"], r["threads"]): r for r in rows if r["mode"] == "inprocess"}
orc = [r for r in rows if r["mode"] == "orc"]


def f(x):
    return float(x) if x else float("nan")


print("### One client: `run_model` through orc against the same model in-process\n")
print("| model | runtime | threads | batch | in-process p50 (ms) | orc p50 (ms) | ratio | orc − in-process (µs) | PING-sized round trip (µs) | target | met |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
bars = []
for r in orc:
    if r["clients"] != "1" or r["autobatch"] != "off":
        continue
    ref = inproc.get((r["model"], r["backend"], r["batch"], r["threads"]))
    if not ref:
        continue
    a, b, ping = f(ref["p50_ms"]), f(r["p50_ms"]), f(r["ping_ms"])
    ratio, extra = b / a, (b - a) * 1e3
    if r["model"] in LARGE:
        target, met = "≤ 1.10×", ratio <= 1.10
    else:
        target, met = f"≤ +{100 + ping * 1e3:.0f} µs", extra <= 100 + ping * 1e3
    print(f"| {r['model']} | {r['runtime']} | {r['threads']} | {r['batch']} | {a:.3f} | {b:.3f} | {ratio:.2f} | {extra:.0f} | {ping * 1e3:.0f} | {target} | {'yes' if met else '**no**'} |")
    bars.append((f"{r['model']} b{r['batch']} {r['runtime']} t{r['threads']}", ratio))

print("\n### Throughput (samples/s) with 1, 4 and 16 clients\n")
print("| model | runtime | threads | batch | auto-batching | in-process (1 caller) | 1 client | 4 clients | 16 clients |")
print("|---|---|---|---|---|---|---|---|---|")
groups = defaultdict(dict)
for r in orc:
    groups[(r["model"], r["runtime"], r["backend"], r["threads"], r["batch"], r["autobatch"])][r["clients"]] = r
for (model, rt, backend, threads, batch, auto), by in groups.items():
    ref = inproc.get((model, backend, batch, threads))
    refs = f"{f(ref['samples_per_s']):.0f}" if ref else "–"
    cells = [f"{f(by[c]['samples_per_s']):.0f}" if c in by else "–" for c in ["1", "4", "16"]]
    print(f"| {model} | {rt} | {threads} | {batch} | {auto} | {refs} | " + " | ".join(cells) + " |")

print("\n### First call of a stored model (backends loaded when the shard started)\n")
print("| model | runtime | first `run_model` (ms) | later p50, batch 1 (ms) | in-process first call incl. load (ms) |")
print("|---|---|---|---|---|")
for r in orc:
    if r["first_ms"] and r["autobatch"] == "off":
        ref = inproc.get((r["model"], r["backend"], "1", r["threads"]))
        print(f"| {r['model']} | {r['runtime']} | {f(r['first_ms']):.1f} | {f(r['p50_ms']):.3f} | {f(ref['first_ms']) if ref else float('nan'):.1f} |")

# A horizontal bar chart of the one-client ratios, 1.0 and 1.1 marked.
h, top, left, width = 18, 30, 260, 420
scale = width / max(2.0, max((b for _, b in bars), default=1) * 1.05)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" height="{top + h * len(bars) + 30}" font-family="sans-serif" font-size="11">',
       f'<text x="{left}" y="18" font-size="13">run_model through orc ÷ in-process, one client (p50)</text>']
for i, (label, ratio) in enumerate(bars):
    y = top + i * h
    colour = ("#4c78a8" if "onnxruntime" in label else "#f58518" if "libtorch" in label
              else "#b279a2" if "tensorflow" in label else "#e45756" if "tflite" in label else "#72b7b2" if "litert" in label else "#54a24b")
    out.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{label}</text>')
    out.append(f'<rect x="{left}" y="{y + 2}" width="{ratio * scale:.1f}" height="{h - 5}" fill="{colour}"/>')
    out.append(f'<text x="{left + ratio * scale + 4:.1f}" y="{y + 12}">{ratio:.2f}</text>')
for mark in [1.0, 1.1]:
    x = left + mark * scale
    out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + h * len(bars)}" stroke="#888" stroke-dasharray="3,3"/>')
    out.append(f'<text x="{x:.1f}" y="{top + h * len(bars) + 14}" text-anchor="middle">{mark:.1f}×</text>')
out.append("</svg>")
open(svg, "w").write("\n".join(out) + "\n")
