"""A small experiment against an orc orchestrator, with the real SmartRedis client.

A "simulation" streams a field and a dataset per time step into the database and records
each step in an aggregation list; an "analysis" stores an ONNX model and a TorchScript
function in the database, then runs both next to the data for every step and reads the
results back. Run it with the database's environment:

    orc run -- python examples/experiment.py
"""
import os

import numpy as np
from smartredis import Client, Dataset

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "tests", "data", "models", "linear.onnx")  # y = x @ W + b, x: [N, 3]

client = Client(logger_name="experiment")
print("database:", os.environ.get("SR_DB_TYPE"), os.environ.get("SSDB"))

# --- simulation: 4 steps of a 5-point, 3-component field ---
for step in range(4):
    t = 0.25 * step
    field = np.stack([np.sin(np.linspace(0, np.pi, 5) + t)] * 3, axis=1).astype(np.float32)
    ds = Dataset(f"step_{step}")
    ds.add_tensor("field", field)
    ds.add_meta_scalar("time", t)
    ds.add_meta_string("units", "m/s")
    client.put_dataset(ds)
    client.append_to_list("steps", ds)
print("simulation: wrote", client.get_list_length("steps"), "steps")

# --- analysis: a model and a script stored in the database, run where the data is ---
client.set_model_from_file("surrogate", MODEL, "ONNX", device="CPU")


def normalise(y):
    return (y - y.mean()) / (y.std() + 1e-6)


client.set_function("normalise", normalise)
for ds in client.get_datasets_from_list("steps"):
    name = ds.get_name()
    client.put_tensor(f"{name}.in", ds.get_tensor("field"))
    client.run_model("surrogate", inputs=[f"{name}.in"], outputs=[f"{name}.pred"])
    client.run_script("normalise", "normalise", [f"{name}.pred"], [f"{name}.norm"])
    pred = client.get_tensor(f"{name}.pred")
    norm = client.get_tensor(f"{name}.norm")
    t = float(ds.get_meta_scalars("time")[0])
    print(f"analysis: {name} t={t:.2f} prediction mean {pred.mean():8.4f}, normalised std {norm.std():.3f}")
print("experiment done")
