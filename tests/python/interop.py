"""Interop with orc-client, SmartRedis side (smartredis==0.6.1).

    interop.py write   # write tensors, a dataset, a list, a model and a script
    interop.py read    # read back what orc-client wrote (tests/client_interop.rs)
Prints "interop: ok" on success; raises otherwise.
"""
import os
import sys

import numpy as np
from smartredis import Client, Dataset

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
DTYPES = [np.float64, np.float32, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16]
client = Client(logger_name="interop")


def values(dt):
    return (np.arange(12).reshape(3, 4) - 5).astype(dt)


if sys.argv[1] == "write":
    for dt in DTYPES:
        client.put_tensor("py_" + np.dtype(dt).name, values(dt))
    ds = Dataset("py_ds")
    ds.add_tensor("field", np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3))
    ds.add_meta_scalar("time", 2.5)
    ds.add_meta_scalar("step", 7)
    ds.add_meta_string("units", "K")
    client.put_dataset(ds)
    client.append_to_list("py_list", ds)
    client.set_model_from_file("py_model", os.path.join(DATA, "models", "linear.onnx"), "ONNX")
    client.set_script("py_script", "def triple(a):\n    return a * 3\n")
else:
    for dt in DTYPES:
        got = client.get_tensor("rs_" + np.dtype(dt).name)
        assert got.dtype == np.dtype(dt) and np.array_equal(got, values(dt)), (dt, got)
    ds = client.get_dataset("rs_ds")
    assert np.array_equal(ds.get_tensor("field"), np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert list(ds.get_meta_scalars("count")) == [3], ds.get_meta_scalars("count")
    assert ds.get_meta_strings("tags") == ["a", "b"]
    assert client.dataset_exists("rs_ds")
    assert [d.get_name() for d in client.get_datasets_from_list("rs_list")] == ["rs_ds"]
    with open(os.path.join(DATA, "models", "linear.onnx"), "rb") as f:
        assert bytes(client.get_model("rs_model")) == f.read()
    client.put_tensor("py_x", np.array([[1, 0, 0]], dtype=np.float32))
    client.run_model("rs_model", inputs=["py_x"], outputs=["py_y"])
    assert np.allclose(client.get_tensor("py_y"), [[1.5, 1.0]])
    assert "def half" in client.get_script("rs_script")
    client.run_script("rs_script", "half", ["py_x"], ["py_h"])
    assert np.allclose(client.get_tensor("py_h"), [[0.5, 0.0, 0.0]])
print("interop: ok")
