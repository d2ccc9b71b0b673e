"""Generate the small ONNX fixtures used by the orc-ai tests.

Run with a Python that has onnx, numpy, scikit-learn and skl2onnx:
    python3 -m venv /tmp/gen && /tmp/gen/bin/pip install onnx numpy scikit-learn skl2onnx
    /tmp/gen/bin/python make_onnx.py
The generated files are committed, so tests never need this script.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper

OPSET = [helper.make_opsetid("", 13)]


def save(model, name):
    onnx.checker.check_model(model)
    onnx.save(model, name)
    print("wrote", name)


# linear.onnx: Y[N,2] = X[N,3] @ W + B, with W = [[1,2],[3,4],[5,6]], B = [0.5, -1].
W = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32)
B = np.array([0.5, -1], dtype=np.float32)
g = helper.make_graph(
    [helper.make_node("MatMul", ["X", "W"], ["XW"]), helper.make_node("Add", ["XW", "B"], ["Y"])],
    "linear",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3])],
    [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 2])],
    [helper.make_tensor("W", TensorProto.FLOAT, [3, 2], W.flatten()), helper.make_tensor("B", TensorProto.FLOAT, [2], B)],
)
save(helper.make_model(g, opset_imports=OPSET, ir_version=8), "linear.onnx")

# two_in_two_out.onnx: S = A + B, P = A * B (element-wise, any shape).
g = helper.make_graph(
    [helper.make_node("Add", ["A", "B"], ["S"]), helper.make_node("Mul", ["A", "B"], ["P"])],
    "two",
    [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["N"]), helper.make_tensor_value_info("B", TensorProto.FLOAT, ["N"])],
    [helper.make_tensor_value_info("S", TensorProto.FLOAT, ["N"]), helper.make_tensor_value_info("P", TensorProto.FLOAT, ["N"])],
)
save(helper.make_model(g, opset_imports=OPSET, ir_version=8), "two_in_two_out.onnx")

# scikit-learn exports: a linear regression and a random-forest regressor on fixed data.
from skl2onnx import to_onnx  # noqa: E402
from sklearn.ensemble import RandomForestRegressor  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402

rng = np.random.default_rng(7)
X = rng.normal(size=(64, 4)).astype(np.float32)
y = (X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.25).astype(np.float32)
lin = LinearRegression().fit(X, y)
save(to_onnx(lin, X[:1], target_opset=13), "skl_linreg.onnx")
rf = RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
save(to_onnx(rf, X[:1], target_opset={"": 13, "ai.onnx.ml": 3}), "skl_rfreg.onnx")
with open("skl_rfreg_expected.txt", "w") as f:
    f.write(" ".join("%.8f" % v for v in X[:5].flatten()) + "\n")
    f.write(" ".join("%.8f" % v for v in rf.predict(X[:5])) + "\n")
    f.write(" ".join("%.8f" % v for v in lin.predict(X[:5])) + "\n")
print("wrote skl_rfreg_expected.txt")
