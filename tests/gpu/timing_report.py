"""The p50 of each part of the TORCH runs a shard timed (`ORC_TORCH_TIMING=1`: one
`orc-torch-timing ...` line per run on its stderr), per device and first input's shape, as a
Markdown table. Used by `scripts/gpu-check run` with GPU_CHECK_TIMING=1.

    timing_report.py SHARD_STDERR
"""
import collections
import statistics
import sys

PARTS = ("in_us", "forward_us", "out_us")


def main(path):
    runs = collections.defaultdict(list)
    for line in open(path, errors="replace"):
        if not line.startswith("orc-torch-timing "):
            continue
        fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
        try:
            parts = [float(fields[k]) / 1e3 for k in PARTS]
        except (KeyError, ValueError):
            continue
        runs[(fields.get("device", "?"), fields.get("shape", "?"))].append(parts)
    if not runs:
        print("no timed runs (was the shard started with ORC_TORCH_TIMING=1?)")
        return 1
    print("| device | first input | runs | to the device (ms) | forward | back | sum |")
    print("|---|---|---|---|---|---|---|")
    def order(item):
        (device, shape), _ = item
        return device, [int(d) if d.isdigit() else -1 for d in shape.split("x")]

    for (device, shape), parts in sorted(runs.items(), key=order):
        p = [statistics.median(c) for c in zip(*parts)]
        print(f"| {device} | {shape} | {len(parts)} | {p[0]:.3f} | {p[1]:.3f} | {p[2]:.3f} | {sum(p):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
