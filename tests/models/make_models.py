"""Make the real models the orc-ai model tests and benchmarks run, from fixed seeds.

Run with Debian's Python (python3-torch, python3-torchvision, python3-sklearn, python3-onnx):
    /usr/bin/python3 tests/models/make_models.py OUT_DIR
Writes, for each model NAME, the files NAME.onnx and/or NAME.pt (TorchScript), NAME.in.f32
(the input), NAME.out.f32 (the reference output: torch for the networks, scikit-learn for the
pipeline) and a line in OUT_DIR/models.txt: `NAME input_shape output_shape formats`. Nothing
here is committed but this script: the files are large (ResNet-18 is 45 MB per format).
With ORC_MODELS_TORCH_ONLY=1 it makes the TorchScript networks only (no ONNX, no pipeline),
as the GPU check does with the PyTorch of the GPU machine (scripts/gpu-check).
"""
import os
import sys

import numpy as np
import onnx
import torch
import torchvision
from onnx import TensorProto, helper
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
lines = []
torch_only = os.environ.get("ORC_MODELS_TORCH_ONLY") == "1"


def write_list():
    with open(os.path.join(out, "models.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def shape(a):
    return "x".join(str(d) for d in a.shape)


def save_io(name, x, y):
    np.ascontiguousarray(x, dtype=np.float32).tofile(os.path.join(out, name + ".in.f32"))
    np.ascontiguousarray(y, dtype=np.float32).tofile(os.path.join(out, name + ".out.f32"))


def network(name, module, x):
    module.eval()
    with torch.no_grad():
        y = module(x)
        traced = torch.jit.trace(module, x)
    traced.save(os.path.join(out, name + ".pt"))
    if not torch_only:
        torch.onnx.export(
            module, x, os.path.join(out, name + ".onnx"), opset_version=13,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
    save_io(name, x.numpy(), y.numpy())
    lines.append(f"{name} {shape(x)} {shape(y)} {'pt' if torch_only else 'onnx,pt'}")
    print("made", name, flush=True)


class Encoder(torch.nn.Module):
    """One transformer encoder block (self-attention, feed-forward, pre-norm residuals),
    written with plain operators so that every exporter and runtime can express it."""

    def __init__(self, d=64, heads=4, ff=128):
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.qkv = torch.nn.Linear(d, 3 * d)
        self.proj = torch.nn.Linear(d, d)
        self.norm1 = torch.nn.LayerNorm(d)
        self.norm2 = torch.nn.LayerNorm(d)
        self.ff1 = torch.nn.Linear(d, ff)
        self.ff2 = torch.nn.Linear(ff, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        q = q.reshape(b, t, self.heads, self.dh).transpose(1, 2)
        k = k.reshape(b, t, self.heads, self.dh).transpose(1, 2)
        v = v.reshape(b, t, self.heads, self.dh).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-2, -1) / self.dh ** 0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.ff2(torch.nn.functional.gelu(self.ff1(self.norm2(x))))


gen = torch.Generator().manual_seed(123)
network("resnet18", torchvision.models.resnet18(weights=None), torch.randn(1, 3, 224, 224, generator=gen))
network("encoder", Encoder(), torch.randn(2, 16, 64, generator=gen))
mlp = torch.nn.Sequential(
    torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
)
network("mlp", mlp, torch.randn(32, 64, generator=gen))
if torch_only:
    write_list()
    sys.exit(0)

# scikit-learn pipeline: StandardScaler + RandomForestRegressor, written as ONNX-ML Scaler +
# TreeEnsembleRegressor (what skl2onnx emits for it).
rng = np.random.default_rng(7)
X = rng.normal(size=(400, 8)) * rng.uniform(0.5, 20, size=8) + rng.uniform(-5, 5, size=8)
yv = X[:, 0] * 0.3 - np.sin(X[:, 1]) + 0.05 * X[:, 2] * X[:, 3]
pipe = make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=12, max_depth=7, random_state=0))
pipe.fit(X, yv)
scaler, forest = pipe.steps[0][1], pipe.steps[1][1]
attrs = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
                         "nodes_truenodeids", "nodes_falsenodeids", "target_treeids", "target_nodeids",
                         "target_ids", "target_weights"]}
for t, est in enumerate(forest.estimators_):
    tree = est.tree_
    for n in range(tree.node_count):
        leaf = tree.children_left[n] == -1
        attrs["nodes_treeids"].append(t)
        attrs["nodes_nodeids"].append(n)
        attrs["nodes_featureids"].append(0 if leaf else int(tree.feature[n]))
        attrs["nodes_values"].append(0.0 if leaf else float(tree.threshold[n]))
        attrs["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
        attrs["nodes_truenodeids"].append(0 if leaf else int(tree.children_left[n]))
        attrs["nodes_falsenodeids"].append(0 if leaf else int(tree.children_right[n]))
        if leaf:
            attrs["target_treeids"].append(t)
            attrs["target_nodeids"].append(n)
            attrs["target_ids"].append(0)
            attrs["target_weights"].append(float(tree.value[n][0][0]) / len(forest.estimators_))
nodes = [
    helper.make_node("Scaler", ["input"], ["scaled"], domain="ai.onnx.ml",
                     offset=scaler.mean_.astype(np.float32).tolist(),
                     scale=(1.0 / scaler.scale_).astype(np.float32).tolist()),
    helper.make_node("TreeEnsembleRegressor", ["scaled"], ["output"], domain="ai.onnx.ml",
                     n_targets=1, post_transform="NONE", aggregate_function="SUM", **attrs),
]
g = helper.make_graph(nodes, "scaler_forest",
                      [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 8])],
                      [helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 1])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 1)])
onnx.checker.check_model(m)
onnx.save(m, os.path.join(out, "forest.onnx"))
Xt = rng.normal(size=(64, 8)) * 3
Xt32 = Xt.astype(np.float32)
# The reference is scikit-learn's own prediction, on the float32 input the model receives.
save_io("forest", Xt32, pipe.predict(Xt32.astype(np.float64)).reshape(-1, 1))
lines.append(f"forest {shape(Xt32)} 64x1 onnx")
print("made forest", flush=True)

write_list()
