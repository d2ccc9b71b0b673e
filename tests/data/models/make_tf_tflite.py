"""Generate the TF (frozen GraphDef) and TFLite fixtures without TensorFlow.

Needs: pip install grpcio-tools flatbuffers numpy; apt-get install flatbuffers-compiler;
and the tract-tensorflow / tract-tflite crate sources (for their .proto and .fbs schemas):
    python make_tf_tflite.py <tract-tensorflow crate dir> <tract-tflite crate dir>
The generated files are committed, so tests never need this script.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

tf_crate, tflite_crate = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp()
sys.path.insert(0, work)

# --- TF: graph.pb, c = a * b with placeholders a, b and the product node named "mul" ---
from grpc_tools import protoc  # noqa: E402

protos = os.path.join(tf_crate, "protos")
files = [os.path.join("tensorflow/core/framework", f) for f in os.listdir(os.path.join(protos, "tensorflow/core/framework"))]
if protoc.main(["protoc", "-I" + protos, "--python_out=" + work] + files) != 0:
    raise SystemExit("protoc failed")
from tensorflow.core.framework import graph_pb2, types_pb2  # noqa: E402

g = graph_pb2.GraphDef()
for name in ["a", "b"]:
    n = g.node.add(name=name, op="Placeholder")
    n.attr["dtype"].type = types_pb2.DT_FLOAT
n = g.node.add(name="mul", op="Mul", input=["a", "b"])
n.attr["T"].type = types_pb2.DT_FLOAT
with open("graph.pb", "wb") as f:
    f.write(g.SerializeToString())
print("wrote graph.pb")

# --- TFLite: add.tflite, out[1,2] = x[1,2] + y[1,2] ---
schema = os.path.join(tflite_crate, "schema", "tflite.fbs")
subprocess.run(["flatc", "--python", "-o", work, schema], check=True)
import flatbuffers  # noqa: E402
from tflite import (  # noqa: E402
    AddOptions,
    Buffer,
    BuiltinOperator,
    BuiltinOptions,
    Model,
    Operator,
    OperatorCode,
    SubGraph,
    Tensor,
    TensorType,
)

b = flatbuffers.Builder(1024)


def vec(start, items, add):
    start(b, len(items))
    for it in reversed(items):
        add(it)
    return b.EndVector()


def int_vec(start, items):
    return vec(start, items, b.PrependInt32)


# One empty buffer (index 0, required by the format).
Buffer.BufferStart(b)
buf0 = Buffer.BufferEnd(b)
tensors = []
for name in ["x", "y", "out"]:
    nm = b.CreateString(name)
    shape = int_vec(Tensor.TensorStartShapeVector, [1, 2])
    Tensor.TensorStart(b)
    Tensor.TensorAddShape(b, shape)
    Tensor.TensorAddType(b, TensorType.TensorType.FLOAT32)
    Tensor.TensorAddBuffer(b, 0)
    Tensor.TensorAddName(b, nm)
    tensors.append(Tensor.TensorEnd(b))
AddOptions.AddOptionsStart(b)
add_opts = AddOptions.AddOptionsEnd(b)
op_in = int_vec(Operator.OperatorStartInputsVector, [0, 1])
op_out = int_vec(Operator.OperatorStartOutputsVector, [2])
Operator.OperatorStart(b)
Operator.OperatorAddOpcodeIndex(b, 0)
Operator.OperatorAddInputs(b, op_in)
Operator.OperatorAddOutputs(b, op_out)
Operator.OperatorAddBuiltinOptionsType(b, BuiltinOptions.BuiltinOptions.AddOptions)
Operator.OperatorAddBuiltinOptions(b, add_opts)
op = Operator.OperatorEnd(b)
t_vec = vec(SubGraph.SubGraphStartTensorsVector, tensors, b.PrependUOffsetTRelative)
in_vec = int_vec(SubGraph.SubGraphStartInputsVector, [0, 1])
out_vec = int_vec(SubGraph.SubGraphStartOutputsVector, [2])
ops_vec = vec(SubGraph.SubGraphStartOperatorsVector, [op], b.PrependUOffsetTRelative)
sg_name = b.CreateString("main")
SubGraph.SubGraphStart(b)
SubGraph.SubGraphAddTensors(b, t_vec)
SubGraph.SubGraphAddInputs(b, in_vec)
SubGraph.SubGraphAddOutputs(b, out_vec)
SubGraph.SubGraphAddOperators(b, ops_vec)
SubGraph.SubGraphAddName(b, sg_name)
sg = SubGraph.SubGraphEnd(b)
OperatorCode.OperatorCodeStart(b)
OperatorCode.OperatorCodeAddBuiltinCode(b, BuiltinOperator.BuiltinOperator.ADD)
OperatorCode.OperatorCodeAddDeprecatedBuiltinCode(b, BuiltinOperator.BuiltinOperator.ADD)
OperatorCode.OperatorCodeAddVersion(b, 1)
code = OperatorCode.OperatorCodeEnd(b)
codes = vec(Model.ModelStartOperatorCodesVector, [code], b.PrependUOffsetTRelative)
sgs = vec(Model.ModelStartSubgraphsVector, [sg], b.PrependUOffsetTRelative)
bufs = vec(Model.ModelStartBuffersVector, [buf0], b.PrependUOffsetTRelative)
desc = b.CreateString("orc-ai test fixture")
Model.ModelStart(b)
Model.ModelAddVersion(b, 3)
Model.ModelAddOperatorCodes(b, codes)
Model.ModelAddSubgraphs(b, sgs)
Model.ModelAddDescription(b, desc)
Model.ModelAddBuffers(b, bufs)
m = Model.ModelEnd(b)
b.Finish(m, file_identifier=b"TFL3")
with open("add.tflite", "wb") as f:
    f.write(b.Output())
print("wrote add.tflite")
