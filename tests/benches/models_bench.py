"""Inference benchmark: `run_model` through the real SmartRedis client against an orc shard,
and the same model run in-process by the reference runtime (ONNX Runtime, torch, TensorFlow,
the TFLite interpreter), with the same thread settings. Driven by scripts/bench-models;
prints CSV rows on stdout. Each client makes one warm-up call, then calls for about SECONDS
(at least once; one caller at least MIN_LATENCY_CALLS times).

    models_bench.py clients MODELS_DIR RUNTIME THREADS SECONDS     # inside `orc run`
    models_bench.py inprocess MODELS_DIR RUNTIME THREADS SECONDS   # onnxruntime | torch | tensorflow | tflite

RUNTIME names the server's ONNX runtime for `clients` (onnxruntime | tract), whose TORCH rows
always run on libtorch; or `tensorflow` for the models of make_tf_models.py, run as TF
(on TensorFlow) and TFLITE (on tract), or `litert` for TFLITE alone (a shard started with
TFLITE_RUNTIME litert). The in-process TensorFlow rows need TensorFlow's venv. Clients need SR_SOCKET_TIMEOUT above the longest call (SmartRedis
re-sends a command whose reply takes longer than its 250 ms default, running it again).

CSV: mode,runtime,model,backend,batch,autobatch,clients,threads,calls,p50_ms,p90_ms,samples_per_s,first_ms,ping_ms
"""
import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np

CLIENTS = [1, 4, 16]
BATCHES = [1, 32]
# The one-caller latency cases (in-process, and one client through orc) make at least this
# many calls, however long: a p50 of 4 or 5 calls (a batch of 32 images takes 0.7 s or more)
# moved by 10 % between runs.
MIN_LATENCY_CALLS = 15
MODELS = ["resnet18", "encoder", "mlp"]


def load_models(d):
    out = {}
    for line in open(os.path.join(d, "models.txt")):
        name, ins, _outs, fmts = line.split()
        if name not in MODELS:
            continue
        shape = [int(x) for x in ins.split("x")]
        x = np.fromfile(os.path.join(d, name + ".in.f32"), dtype=np.float32).reshape(shape)
        out[name] = (x, fmts.split(","))
    return out


def batched(x, batch):
    """The model's input with `batch` rows (the first row repeated or cut)."""
    one = x[:1]
    return np.ascontiguousarray(np.repeat(one, batch, axis=0))


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def row(*fields):
    print(",".join(str(f) for f in fields), flush=True)


# ---------------------------------------------------------------- in-process reference
def inprocess(models_dir, runtime, threads, seconds):
    models = load_models(models_dir)
    for name, (x, fmts) in models.items():
        if runtime == "onnxruntime":
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            t0 = time.perf_counter()
            s = ort.InferenceSession(os.path.join(models_dir, name + ".onnx"), so, providers=["CPUExecutionProvider"])
            inp = s.get_inputs()[0].name
            run = lambda a: s.run(None, {inp: a})  # noqa: E731
            backend = "ONNX"
        elif runtime == "tensorflow":
            if "pb" not in fmts:
                continue
            import tensorflow as tf

            # A v1 session on the frozen graph: what TensorFlow's C API (orc's TF backend)
            # runs, with the same thread settings.
            t0 = time.perf_counter()
            g = tf.Graph()
            with g.as_default():
                gd = tf.compat.v1.GraphDef()
                gd.ParseFromString(open(os.path.join(models_dir, name + ".pb"), "rb").read())
                tf.import_graph_def(gd, name="")
            cfg = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1)
            sess = tf.compat.v1.Session(graph=g, config=cfg)
            run = lambda a: sess.run("output:0", {"input:0": a})  # noqa: E731
            backend = "TF"
        elif runtime == "tflite":
            import tensorflow as tf

            t0 = time.perf_counter()
            it = tf.lite.Interpreter(model_path=os.path.join(models_dir, name + ".tflite"), num_threads=threads)
            index = it.get_input_details()[0]["index"]
            out_index = it.get_output_details()[0]["index"]
            shape = [None]

            def run(a):
                if shape[0] != a.shape:
                    it.resize_tensor_input(index, a.shape)
                    it.allocate_tensors()
                    shape[0] = a.shape
                it.set_tensor(index, a)
                it.invoke()
                return it.get_tensor(out_index)

            backend = "TFLITE"
        else:
            import torch

            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            m = torch.jit.load(os.path.join(models_dir, name + ".pt"))
            m.eval()

            def run(a):
                with torch.inference_mode():
                    return m(torch.from_numpy(a))

            backend = "TORCH"
        for batch in BATCHES:
            a = batched(x, batch)
            t1 = time.perf_counter()
            run(a)
            first = (time.perf_counter() - t1) * 1e3 + ((t1 - t0) * 1e3 if batch == BATCHES[0] else 0)
            times = []
            start = time.perf_counter()
            while len(times) < MIN_LATENCY_CALLS or time.perf_counter() - start < seconds:
                t = time.perf_counter()
                run(a)
                times.append(time.perf_counter() - t)
            wall = time.perf_counter() - start
            row("inprocess", runtime, name, backend, batch, "off", 1, threads, len(times),
                f"{statistics.median(times) * 1e3:.3f}", f"{pct(times, 0.9) * 1e3:.3f}",
                f"{len(times) * batch / wall:.1f}", f"{first:.1f}", "")


# ---------------------------------------------------------------- clients through orc
def client_loop(idx, key, a, seconds, barrier, results, interleave):
    try:
        measure(idx, key, a, seconds, barrier, results, interleave)
    except BaseException as e:  # the parent must hear of it, not wait for ever
        barrier.abort()
        results.put((idx, None, None, repr(e), None))


def measure(idx, key, a, seconds, barrier, results, interleave):
    """run_model for about `seconds`. With `interleave` (one client), a PING-sized command
    (`key_exists`) follows every fourth call, timed on its own, so that the round trip is
    measured under the same conditions as the calls (an idle CPU between calls makes both
    slower on a VM); its time is taken out of the client's time for throughput."""
    from smartredis import Client

    c = Client(cluster=False)
    inp, out = f"in{idx}", f"out{idx}"
    c.put_tensor(inp, a)
    c.run_model(key, [inp], [out])
    pings = []
    if not interleave:
        for _ in range(50):
            t = time.perf_counter()
            c.key_exists(inp)
            pings.append(time.perf_counter() - t)
    barrier.wait()
    times = []
    start = time.perf_counter()
    pinged = 0.0
    least = MIN_LATENCY_CALLS if interleave else 1
    while len(times) < least or time.perf_counter() - start - pinged < seconds:
        t = time.perf_counter()
        c.run_model(key, [inp], [out])
        times.append(time.perf_counter() - t)
        if interleave and len(times) % 4 == 0:
            t = time.perf_counter()
            c.key_exists(inp)
            pings.append(time.perf_counter() - t)
            pinged += pings[-1]
    end = time.perf_counter() - pinged
    if not pings:  # calls longer than a quarter of the run: one round trip after them
        t = time.perf_counter()
        c.key_exists(inp)
        pings.append(time.perf_counter() - t)
    results.put((idx, start, end, times, statistics.median(pings)))


def clients(models_dir, runtime, threads, seconds):
    from smartredis import Client

    models = load_models(models_dir)
    admin = Client(cluster=False)
    if runtime == "tensorflow":
        backends = [("TF", "pb", "tensorflow"), ("TFLITE", "tflite", "tract-tflite")]
    elif runtime == "litert":
        backends = [("TFLITE", "tflite", "litert")]
    elif runtime == "onnxruntime":
        backends = [("ONNX", "onnx", runtime), ("TORCH", "pt", "libtorch")]
    else:
        backends = [("ONNX", "onnx", runtime)]
    for name, (x, fmts) in models.items():
        for backend, ext, label in backends:
            if ext not in fmts:
                continue
            for autobatch in ["off", "on"]:
                key = f"{name}-{backend}-{autobatch}"
                kw = {"batch_size": 32, "min_batch_size": 0} if autobatch == "on" else {}
                if backend == "TF":
                    kw.update(inputs=["input"], outputs=["output"])
                try:
                    admin.set_model_from_file(key, os.path.join(models_dir, f"{name}.{ext}"), backend, device="CPU", **kw)
                except Exception as e:  # what a runtime cannot run (docs/models.md)
                    print(f"{name} on {label}: not run ({str(e).splitlines()[-1]})", file=sys.stderr)
                    break
                # The first call of a stored model, 2 s after it was stored (as a driver stores
                # models before the application starts; the TF backend warms a graph up in
                # that time), from a fresh client (backends were loaded in the background
                # when the shard started).
                admin.put_tensor("first", batched(x, 1))
                time.sleep(2)
                t = time.perf_counter()
                admin.run_model(key, ["first"], ["first_out"])
                first = f"{(time.perf_counter() - t) * 1e3:.1f}"
                for batch in BATCHES:
                    if autobatch == "on" and batch != 1:
                        continue  # batches of 32 fill the model's batch on their own
                    a = batched(x, batch)
                    for n in CLIENTS:
                        barrier = mp.Barrier(n)
                        results = mp.Queue()
                        procs = [mp.Process(target=client_loop, args=(i, key, a, seconds, barrier, results, n == 1))
                                 for i in range(n)]
                        for p in procs:
                            p.start()
                        got = [results.get() for _ in procs]
                        failed = [g[3] for g in got if g[1] is None]
                        if failed:
                            raise SystemExit(f"{key}, {n} clients, batch {batch}: {failed[0]}")
                        for p in procs:
                            p.join()
                        times = [t for g in got for t in g[3]]
                        wall = max(g[2] for g in got) - min(g[1] for g in got)
                        ping = statistics.median(g[4] for g in got)
                        row("orc", label, name, backend, batch, autobatch, n,
                            threads, len(times), f"{statistics.median(times) * 1e3:.3f}", f"{pct(times, 0.9) * 1e3:.3f}",
                            f"{len(times) * batch / wall:.1f}", first, f"{ping * 1e3:.3f}")
                        first = ""
                admin.delete_model(key)


if __name__ == "__main__":
    mode, models_dir, runtime, threads, seconds = sys.argv[1:6]
    {"inprocess": inprocess, "clients": clients}[mode](models_dir, runtime, int(threads), float(seconds))
