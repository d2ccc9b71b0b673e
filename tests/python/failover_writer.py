"""A SmartRedis application writing through a failover (smartredis==0.6.1).

    failover_writer.py STOP_FILE
    failover_writer.py check KEY...

Writes `sr.<i>` (a 1-element float32 tensor) for i = 0, 1, ... and reads each back, until
STOP_FILE exists; then prints one JSON line: the keys whose write returned, the errors,
and how many writes returned after the first error (the client carried on). The database
comes from SSDB / SR_DB_TYPE, as orc run sets them. `check` is a new client after the
failover: it reads the given tensors (written by orc-client), writes one and reads it back,
and prints "check: ok".
"""
import json
import os
import sys
import time

import numpy as np
from smartredis import Client

client = Client(logger_name="failover")
if sys.argv[1] == "check":
    for key in sys.argv[2:]:
        got = client.get_tensor(key)
        assert got.size == 1, (key, got)
    client.put_tensor("sr.after", np.array([7.0], dtype=np.float32))
    assert client.get_tensor("sr.after").tolist() == [7.0]
    print("check: ok")
    sys.exit(0)
stop = sys.argv[1]
acked, errors, lost_reads = [], [], []
first_error_at = None
i = 0
while not os.path.exists(stop):
    key = "sr.%d" % i
    try:
        client.put_tensor(key, np.array([i], dtype=np.float32))
        acked.append((key, time.time()))
        got = client.get_tensor(key)
        if got.tolist() != [float(i)]:
            errors.append("%s: read back %r" % (key, got.tolist()))
    except Exception as e:  # pylint: disable=broad-except
        text = str(e)
        if "does not exist" in text or "empty" in text:
            lost_reads.append(key)
        else:
            errors.append("%s: %s" % (key, text))
    i += 1
print(json.dumps({"acked": acked, "errors": errors, "lost_reads": lost_reads}))
