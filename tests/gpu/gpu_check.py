"""The GPU check of orc-ai (docs/models.md, "GPUs"), run on a GPU machine by scripts/gpu-check
against a shard started there with the TORCH backend built for that machine's libtorch.

Stores the real models (tests/models/make_models.py) on GPU:0 and on the CPU, runs them
through the shard, and compares every output with the reference made with torch on the CPU
(`NAME.out.f32`); stores a TorchScript script on GPU:0 and runs it; checks that a GPU the node
lacks is refused (only TORCH is loaded: ONNX and TF on a GPU are not checked); then times `run_model`
on GPU:0 against the same model run in-process by the machine's own PyTorch on the same GPU
(p50 of calls, batches of 1 and 32), each model's first `run_model` after its store against
its first call in-process after loading, and the throughput of 1, 4 and 16 clients with
auto-batching off and on. Speaks RESP itself (no client library needed there).

    gpu_check.py HOST:PORT MODELS_DIR [SECONDS]     # prints a report; exits 1 on a failure
"""
import os
import socket
import statistics
import sys
import threading
import time

import numpy as np

MODELS = ["resnet18", "encoder", "mlp"]
# GPU_CHECK_DEVICE=CPU runs the same check on the CPU (to try the script where no GPU is).
DEV = os.environ.get("GPU_CHECK_DEVICE", "GPU:0")
TORCH_DEV = "cuda:0" if DEV.startswith("GPU") else "cpu"
failures = []


class Resp:
    """One connection speaking RESP2: commands of bulk strings, replies parsed."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out += [b"$%d\r\n" % len(b), b, b"\r\n"]
        self.s.sendall(b"".join(out))
        return self.reply()

    def reply(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def ok(self, *args):
        r = self.call(*args)
        if isinstance(r, RuntimeError):
            raise r
        return r


def check(what, cond, detail=""):
    print(f"{'ok  ' if cond else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)
    if not cond:
        failures.append(what)


def load_models(d):
    out = {}
    for line in open(os.path.join(d, "models.txt")):
        name, ins, outs, fmts = line.split()
        if name not in MODELS or "pt" not in fmts.split(","):
            continue
        x = np.fromfile(os.path.join(d, name + ".in.f32"), dtype=np.float32)
        y = np.fromfile(os.path.join(d, name + ".out.f32"), dtype=np.float32)
        out[name] = (x.reshape([int(v) for v in ins.split("x")]), y.reshape([int(v) for v in outs.split("x")]))
    return out


def batched(x, batch):
    reps = -(-batch // x.shape[0])
    return np.ascontiguousarray(np.concatenate([x] * reps)[:batch])


def put(c, key, a):
    c.ok("AI.TENSORSET", key, "FLOAT", *a.shape, "BLOB", a.tobytes())


def get(c, key):
    meta = c.ok("AI.TENSORGET", key, "META", "BLOB")
    m = {k.decode() if isinstance(k, bytes) else k: v for k, v in zip(meta[0::2], meta[1::2])}
    return np.frombuffer(m["blob"], dtype=np.float32).reshape(m["shape"])


def run(c, model, inp, out):
    c.ok("AI.MODELEXECUTE", model, "INPUTS", 1, inp, "OUTPUTS", 1, out)


def p50_ms(f, calls):
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


# The first `run_model` of each model on DEV after its store, and the p50 of the next calls (ms).
FIRST_CALLS = {}


def timed_ms(f):
    t = time.perf_counter()
    r = f()
    return r, (time.perf_counter() - t) * 1e3


def correctness(c, models_dir, models):
    print(f"== correctness: every model on {DEV} and on the CPU against torch's CPU outputs", flush=True)
    for name, (x, y) in models.items():
        blob = open(os.path.join(models_dir, name + ".pt"), "rb").read()
        put(c, f"{name}:in", x)
        outs = {}
        for dev in [DEV] + (["CPU"] if DEV != "CPU" else []):
            key = f"{name}:{dev}"
            r = c.call("AI.MODELSTORE", key, "TORCH", dev, "BLOB", blob)
            check(f"{name}: AI.MODELSTORE on {dev}", r == "OK", str(r))
            if r != "OK":
                continue
            r, first = timed_ms(lambda: c.call("AI.MODELEXECUTE", key, "INPUTS", 1, f"{name}:in", "OUTPUTS", 1, f"{name}:out"))
            check(f"{name}: AI.MODELEXECUTE on {dev}", r == "OK", str(r))
            if r == "OK":
                outs[dev] = get(c, f"{name}:out")
                if dev == DEV:
                    later = p50_ms(lambda: run(c, key, f"{name}:in", f"{name}:out"), 5)
                    FIRST_CALLS[name] = (first, later)
        for dev, o in outs.items():
            # cuDNN and cuBLAS may compute in TF32 on this GPU: compare relative to the output's scale.
            scale = float(np.abs(y).max()) or 1.0
            err = float(np.abs(o - y).max()) / scale if o.shape == y.shape else float("inf")
            tol = 1e-2 if dev.startswith("GPU") else 1e-4
            check(f"{name} on {dev}: output {o.shape} matches torch on the CPU", err <= tol,
                  f"max |diff| / max |ref| = {err:.2e} (tolerance {tol:g})")
    info = c.ok("INFO", "ai")
    queues = [l for l in info.decode().splitlines() if "device_queues" in l]
    check("a queue per device (INFO ai)", any(DEV.replace(":", "") in l.replace(":", "") for l in queues),
          "; ".join(queues) or "no queue line")


def scripts_and_refusals(c):
    print(f"== a TorchScript script on {DEV}, and what is refused", flush=True)
    src = "def twice(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] * 2\n"
    r = c.call("AI.SCRIPTSTORE", "twice", DEV, "ENTRY_POINTS", 1, "twice", "SOURCE", src)
    check(f"AI.SCRIPTSTORE on {DEV}", r == "OK", str(r))
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    put(c, "s:in", a)
    r = c.call("AI.SCRIPTEXECUTE", "twice", "twice", "INPUTS", 1, "s:in", "OUTPUTS", 1, "s:out")
    check(f"AI.SCRIPTEXECUTE on {DEV}", r == "OK", str(r))
    if r == "OK":
        check(f"script output on {DEV}", np.array_equal(get(c, "s:out"), a * 2))
    n = 0
    try:
        import torch
        n = torch.cuda.device_count()
    except Exception:
        pass
    r = c.call("AI.MODELSTORE", "absent", "TORCH", f"GPU:{n}", "BLOB", b"x")
    check(f"GPU:{n} (absent) refused", isinstance(r, RuntimeError), str(r))


def speed(addr, models_dir, models, seconds):
    import torch

    torch.backends.cudnn.benchmark = False
    # As many intra-op threads as the shard (scripts/gpu-check's GPU_CHECK_INTRA).
    torch.set_num_threads(int(os.environ.get("GPU_CHECK_INTRA", "1")))
    print(f"(in-process torch with {torch.get_num_threads()} intra-op thread(s), as the shard)")
    print(f"== speed on {DEV}: run_model through orc against in-process torch on the same GPU", flush=True)
    print("| model | batch | in-process p50 (ms) | orc p50 (ms) | ratio | orc - in-process (us) | PING (us) | run in the server, mean (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    c = Resp(addr)
    rows = []
    inproc_first = {}
    for name, (x, _) in models.items():
        m = torch.jit.load(os.path.join(models_dir, name + ".pt"), map_location=TORCH_DEV).eval()
        with torch.inference_mode():
            _, inproc_first[name] = timed_ms(lambda: m(torch.from_numpy(x).to(TORCH_DEV)).cpu())
        for batch in [1, 32]:
            a = batched(x, batch)
            t = torch.from_numpy(a)

            def inproc():
                with torch.inference_mode():
                    out = m(t.to(TORCH_DEV))
                    out.cpu()

            for _ in range(5):
                inproc()
            calls = 200 if name != "resnet18" or batch == 1 else 50
            ref = p50_ms(inproc, calls)
            key = f"{name}:{DEV}"
            put(c, "sp:in", a)
            for _ in range(5):
                run(c, key, "sp:in", "sp:out")
            c.ok("AI.INFO", key, "RESETSTAT")
            got = p50_ms(lambda: run(c, key, "sp:in", "sp:out"), calls)
            stat = c.ok("AI.INFO", key)
            stat = {k.decode() if isinstance(k, bytes) else k: v for k, v in zip(stat[0::2], stat[1::2])}
            server = int(stat["duration"]) / max(int(stat["calls"]), 1) / 1e3
            ping = p50_ms(lambda: c.ok("EXISTS", "sp:in"), 200)
            rows.append((name, batch, ref, got))
            print(f"| {name} | {batch} | {ref:.3f} | {got:.3f} | {got / ref:.2f} | {(got - ref) * 1e3:.0f} | {ping * 1e3:.0f} | {server:.3f} |",
                  flush=True)
    # SmartRedis re-sends a command whose reply takes longer than its socket timeout (250 ms
    # by default), running the model again: a first call past it costs the client twice.
    print(f"\n| model | first run_model on {DEV} after its store (ms) | next 5, p50 | in-process first call after load (ms) |")
    print("|---|---|---|---|")
    for name, (first, later) in FIRST_CALLS.items():
        print(f"| {name} | {first:.1f} | {later:.1f} | {inproc_first.get(name, float('nan')):.1f} |", flush=True)
    print("\n| model | auto-batching | in-process samples/s (1 caller) | 1 client | 4 clients | 16 clients |")
    print("|---|---|---|---|---|---|")
    for name in ["resnet18", "mlp"]:
        x, _ = models[name]
        a = batched(x, 1)
        blob = open(os.path.join(models_dir, name + ".pt"), "rb").read()
        m = torch.jit.load(os.path.join(models_dir, name + ".pt"), map_location=TORCH_DEV).eval()
        t = torch.from_numpy(a)
        n, start = 0, time.perf_counter()
        with torch.inference_mode():
            while time.perf_counter() - start < seconds:
                m(t.to(TORCH_DEV)).cpu()
                n += 1
        inproc = n * a.shape[0] / (time.perf_counter() - start)
        for batching in ["off", "on"]:
            key = f"{name}:tp:{batching}"
            extra = ["BATCHSIZE", 32, "MINBATCHSIZE", 0] if batching == "on" else []
            c.ok("AI.MODELSTORE", key, "TORCH", DEV, *extra, "BLOB", blob)
            rates = []
            for clients in [1, 4, 16]:
                counts = [0] * clients
                barrier = threading.Barrier(clients + 1)
                stop = [0.0]

                def loop(i):
                    cc = Resp(addr)
                    put(cc, f"tp:in{i}", a)
                    run(cc, key, f"tp:in{i}", f"tp:out{i}")
                    barrier.wait()
                    while time.perf_counter() < stop[0]:
                        run(cc, key, f"tp:in{i}", f"tp:out{i}")
                        counts[i] += 1

                threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
                for th in threads:
                    th.start()
                stop[0] = time.perf_counter() + seconds + 0.5
                barrier.wait()
                begun = time.perf_counter()
                for th in threads:
                    th.join()
                rates.append(sum(counts) * a.shape[0] / (time.perf_counter() - begun))
            print(f"| {name} | {batching} | {inproc:.0f} | " + " | ".join(f"{r:.0f}" for r in rates) + " |", flush=True)
    return rows


def main():
    addr, models_dir = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    c = Resp(addr)
    models = load_models(models_dir)
    correctness(c, models_dir, models)
    scripts_and_refusals(c)
    if not failures:
        speed(addr, models_dir, models, seconds)
    print(f"\n{len(failures)} failure(s){': ' + ', '.join(failures) if failures else ''}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
