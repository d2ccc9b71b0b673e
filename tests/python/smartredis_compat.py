"""Drive the real SmartRedis Python client (smartredis==0.6.1) against an orc database.

Run by tests/smartredis.rs with SSDB / SR_DB_TYPE set for a standalone or clustered orc
orchestrator with orc-ai. Every check raises on failure; the last line printed is
"smartredis-compat: N checks passed".
"""
import os
import sys

import numpy as np
from smartredis import Client, Dataset

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    checks += 1


client = Client(logger_name="orc-compat")
clustered = os.environ.get("SR_DB_TYPE", "Clustered").lower() == "clustered"
addresses = os.environ["SSDB"].split(",")

# Tensors of all 8 SmartRedis dtypes, several shapes.
dtypes = [np.float64, np.float32, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16]
rng = np.random.default_rng(3)
for dt in dtypes:
    for shape in [(5,), (3, 4), (2, 3, 4)]:
        if np.issubdtype(dt, np.floating):
            a = rng.normal(size=shape).astype(dt)
        else:
            info = np.iinfo(dt)
            a = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)
        name = "t_%s_%d" % (np.dtype(dt).name, len(shape))
        client.put_tensor(name, a)
        b = client.get_tensor(name)
        check(b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b), "tensor round trip " + name)
        check(client.tensor_exists(name), "tensor_exists " + name)
client.copy_tensor("t_float32_2", "t_copy")
check(np.array_equal(client.get_tensor("t_copy"), client.get_tensor("t_float32_2")), "copy_tensor")
client.rename_tensor("t_copy", "t_renamed")
check(not client.tensor_exists("t_copy") and client.tensor_exists("t_renamed"), "rename_tensor")
client.delete_tensor("t_renamed")
check(not client.tensor_exists("t_renamed"), "delete_tensor")
check(client.poll_tensor("t_int8_1", 10, 3), "poll_tensor")

# Datasets with scalar and string metadata, and aggregation lists.
ds = Dataset("sim_step_1")
ds.add_tensor("u", np.arange(6, dtype=np.float64).reshape(2, 3))
ds.add_tensor("v", np.array([1, 2, 3], dtype=np.int32))
ds.add_meta_scalar("time", 0.5)
ds.add_meta_scalar("step", 1)
ds.add_meta_string("units", "m/s")
client.put_dataset(ds)
check(client.dataset_exists("sim_step_1"), "dataset_exists")
got = client.get_dataset("sim_step_1")
check(np.array_equal(got.get_tensor("u"), np.arange(6, dtype=np.float64).reshape(2, 3)), "dataset tensor u")
check(list(got.get_meta_scalars("step")) == [1], "dataset scalar")
check(got.get_meta_strings("units") == ["m/s"], "dataset string")
client.append_to_list("steps", ds)
ds2 = Dataset("sim_step_2")
ds2.add_tensor("u", np.ones((2, 3)))
client.put_dataset(ds2)
client.append_to_list("steps", ds2)
check(client.get_list_length("steps") == 2, "list length")
check(client.poll_list_length("steps", 2, 10, 3), "poll_list_length")
check([d.get_name() for d in client.get_datasets_from_list("steps")] == ["sim_step_1", "sim_step_2"], "datasets from list")
check(len(client.get_dataset_list_range("steps", 1, 1)) == 1, "list range")
client.copy_dataset("sim_step_2", "sim_copy")
check(np.array_equal(client.get_dataset("sim_copy").get_tensor("u"), np.ones((2, 3))), "copy_dataset")
client.delete_dataset("sim_copy")
check(not client.dataset_exists("sim_copy"), "delete_dataset")

# Models: ONNX from a file and from bytes, run, get back, info.
lin_path = os.path.join(DATA, "models", "linear.onnx")
client.set_model_from_file("lin", lin_path, "ONNX", device="CPU", tag="v1")
check(client.model_exists("lin"), "model_exists")
with open(lin_path, "rb") as f:
    blob = f.read()
check(bytes(client.get_model("lin")) == blob, "get_model returns the stored bytes")
client.set_model("lin2", blob, "ONNX", device="CPU")
x = np.array([[1, 0, 0], [0, 1, 1]], dtype=np.float32)
client.put_tensor("x", x)
client.run_model("lin2", inputs=["x"], outputs=["y"])
y = client.get_tensor("y")
check(np.allclose(y, np.array([[1.5, 1.0], [8.5, 9.0]], dtype=np.float32)), "run_model result %r" % (y,))
lr_path = os.path.join(DATA, "models", "skl_linreg.onnx")
client.set_model_from_file("lr", lr_path, "ONNX")
client.put_tensor("f", np.array([[1, 2, 3, 4]], dtype=np.float32))
client.run_model("lr", inputs=["f"], outputs=["g"])
check(abs(float(client.get_tensor("g").flatten()[0]) - 10.75) < 1e-3, "scikit-learn model")
# In a cluster every shard holds a copy; the run happened on the shard that owns "x".
info = client.get_ai_info(addresses, "lin2")
check(len(info) == len(addresses) and sum(int(i["calls"]) for i in info) == 1, "get_ai_info %r" % (info,))
check(all(i["backend"] == "ONNX" and i["type"] == "MODEL" for i in info), "get_ai_info fields")
client.delete_model("lin2")
check(not client.model_exists("lin2"), "delete_model")

# TorchScript: a model, a script from source, a function, run with the deprecated
# AI.SCRIPTSET / AI.SCRIPTRUN that SmartRedis sends.
client.set_model_from_file("torch_lin", os.path.join(DATA, "models", "lin.pt"), "TORCH", device="CPU")
client.run_model("torch_lin", inputs=["x"], outputs=["ty"])
check(np.allclose(client.get_tensor("ty"), np.array([[1.5, 1.0], [8.5, 9.0]], dtype=np.float32)), "torch run_model")


def double(a):
    return a * 2


client.set_function("dbl", double)
client.put_tensor("s_in", np.array([1.0, 2.0], dtype=np.float32))
client.run_script("dbl", "double", ["s_in"], ["s_out"])
check(np.array_equal(client.get_tensor("s_out"), np.array([2.0, 4.0], dtype=np.float32)), "run_script with a function")
check("def double" in client.get_script("dbl"), "get_script")
client.set_script("pair", "def add_pair(a, b):\n    return a + b, a * b\n")
client.run_script("pair", "add_pair", ["s_in", "s_out"], ["sum", "prod"])
check(np.array_equal(client.get_tensor("prod"), np.array([2.0, 8.0], dtype=np.float32)), "run_script with two outputs")
client.set_script_from_file("ops_legacy", os.path.join(DATA, "scripts", "legacy.py"))
client.run_script("ops_legacy", "sum_list", ["s_in", "s_out", "prod"], ["total"])
check(np.array_equal(client.get_tensor("total"), np.array([5.0, 14.0], dtype=np.float32)), "List[Tensor] parameter")
client.delete_script("pair")
check(not client.model_exists("pair"), "delete_script")

# Admin calls.
conf = client.config_get("maxclients", addresses[0])
check("maxclients" in conf, "config_get")
if clustered:
    check(client.get_db_cluster_info([addresses[0]])[0]["cluster_state"] == "ok", "cluster info")
node = client.get_db_node_info([addresses[0]])
check(len(node) == 1 and "Server" in node[0], "node info")

# In orc's default (restricted) mode: data-plane settings, save and flush work; settings
# that move files or change the server do not (docs/security.md).
client.config_set("maxmemory", "1gb", addresses[0])
check(client.config_get("maxmemory", addresses[0])["maxmemory"] == str(1 << 30), "config_set maxmemory")
try:
    client.config_set("dir", "/tmp", addresses[0])
    refusal = ""
except Exception as e:  # SmartRedis raises its RedisReplyError with the server's words
    refusal = str(e)
check("NOPERM" in refusal, "config_set dir is refused: %r" % refusal)
client.save([addresses[0]])  # raises if the server refuses SAVE
client.put_tensor("last", np.array([1.0], dtype=np.float32))
client.flush_db(addresses)
check(not client.tensor_exists("last"), "flush_db")

print("smartredis-compat: %d checks passed" % checks)
sys.exit(0)
