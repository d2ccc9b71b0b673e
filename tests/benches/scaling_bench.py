"""SmartSim-Scaling-style inference benchmark: every client loops put_tensor (an image batch)
-> run_script (preprocessing, TorchScript) -> run_model (ResNet-18) -> get_tensor, with the
real SmartRedis client. Driven by scripts/bench-scaling.

    scaling_bench.py setup MODELS_DIR BACKEND               # store the script and the model
    scaling_bench.py clients N SECONDS BATCH CLUSTER        # N client processes; prints one result line
    scaling_bench.py rank SECONDS BATCH OUT                 # one rank of a colocated run; appends to OUT
    scaling_bench.py summarise OUT                          # the result line of the ranks in OUT

A result line: `calls first_start last_end p50_ms p90_ms` (wall-clock seconds since the epoch).
"""
import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np

PREPROCESS = """
def preprocess(x):
    return (x - 0.45) / 0.225
"""


def client(cluster):
    from smartredis import Client

    return Client(cluster=cluster)


def setup(models_dir, backend):
    c = client(os.environ.get("SR_DB_TYPE", "Standalone") == "Clustered")
    c.set_script("pre", PREPROCESS, device="CPU")
    ext = "onnx" if backend == "ONNX" else "pt"
    c.set_model_from_file("net", os.path.join(models_dir, f"resnet18.{ext}"), backend, device="CPU")


def loop(seconds, batch, cluster, tag):
    c = client(cluster)
    x = np.random.default_rng(0).random((batch, 3, 224, 224), dtype=np.float32)
    # Keys of one client on one shard: a hash tag, as SmartSim-Scaling's ranks do.
    k = f"{{{tag}}}"

    def once():
        c.put_tensor(f"{k}in", x)
        c.run_script("pre", "preprocess", [f"{k}in"], [f"{k}pre"])
        c.run_model("net", [f"{k}pre"], [f"{k}out"])
        return c.get_tensor(f"{k}out")

    once()
    times = []
    start = time.time()
    while not times or time.time() - start < seconds:
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    return start, time.time(), times


def worker(i, seconds, batch, cluster, barrier, q):
    try:
        barrier.wait()
        q.put(loop(seconds, batch, cluster, f"c{i}"))
    except BaseException as e:
        barrier.abort()
        q.put(repr(e))


def report(results):
    times = sorted(t for r in results for t in r[2])
    first, last = min(r[0] for r in results), max(r[1] for r in results)
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    return f"{len(times)} {first:.6f} {last:.6f} {statistics.median(times) * 1e3:.3f} {p90 * 1e3:.3f}"


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "setup":
        setup(sys.argv[2], sys.argv[3])
    elif mode == "clients":
        n, seconds, batch, cluster = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "cluster"
        barrier, q = mp.Barrier(n), mp.Queue()
        procs = [mp.Process(target=worker, args=(i, seconds, batch, cluster, barrier, q)) for i in range(n)]
        for p in procs:
            p.start()
        got = [q.get() for _ in procs]
        for p in procs:
            p.join()
        bad = [g for g in got if isinstance(g, str)]
        if bad:
            raise SystemExit(bad[0])
        print(report(got))
    elif mode == "summarise":
        rows = [line.split() for line in open(sys.argv[2]) if line.strip()]
        print(report([(float(r[0]), float(r[1]), [float(t) for t in r[2:]]) for r in rows]))
    elif mode == "rank":
        seconds, batch, out = float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        rank = os.environ.get("ORC_RANK", str(os.getpid()))
        start, end, times = loop(seconds, batch, False, f"r{rank}")
        with open(out, "a") as f:
            f.write(f"{start:.6f} {end:.6f} " + " ".join(f"{t:.6f}" for t in times) + "\n")
