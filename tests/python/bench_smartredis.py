"""put_tensor + get_tensor throughput of the SmartRedis Python client.

    bench_smartredis.py SIZE_BYTES CLIENTS PAIRS_PER_CLIENT
Each client is its own process (as SmartRedis users run MPI ranks). Prints the seconds the
slowest client took, after all clients were connected and ready.
"""
import multiprocessing as mp
import sys
import time

import numpy as np


def worker(i, size, pairs, ready, go, out):
    from smartredis import Client

    c = Client(logger_name="bench")
    a = np.zeros(size, dtype=np.uint8)
    c.put_tensor(f"sr_{i}", a)  # warm up
    ready.release()
    go.wait()
    t = time.perf_counter()
    for _ in range(pairs):
        c.put_tensor(f"sr_{i}", a)
        c.get_tensor(f"sr_{i}")
    out.put(time.perf_counter() - t)


if __name__ == "__main__":
    size, clients, pairs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    ready, go, out = mp.Semaphore(0), mp.Event(), mp.Queue()
    ps = [mp.Process(target=worker, args=(i, size, pairs, ready, go, out)) for i in range(clients)]
    for p in ps:
        p.start()
    for _ in ps:
        ready.acquire()
    go.set()
    times = [out.get() for _ in ps]
    for p in ps:
        p.join()
    print(max(times))
