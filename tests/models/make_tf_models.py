"""Make the real models as TensorFlow frozen graphs and TFLite flatbuffers, from fixed seeds.

Run with TensorFlow (scripts/ensure-deps puts tensorflow-cpu in its own venv):
    ~/.cache/orc/tf-venv/bin/python tests/models/make_tf_models.py OUT_DIR
The networks of make_models.py, built in Keras / TensorFlow: a ResNet-18 (NHWC), a
transformer encoder block (plain operators, as in make_models.py) and an MLP, with nonzero
biases and batch-norm statistics, as trained networks have. For each model NAME: NAME.pb
(frozen GraphDef, input node `input`, output node `output`), NAME.tflite, NAME.in.f32,
NAME.out.f32 (TensorFlow's output) and NAME.tflite.out.f32 (the TFLite interpreter's), and a
line in OUT_DIR/models.txt: `NAME input_shape output_shape pb,tflite`.
"""
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2,
)

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
tf.keras.utils.set_random_seed(0)
L = tf.keras.layers
RANDOM = "random_normal"


def bn():
    return L.BatchNormalization(beta_initializer=RANDOM, moving_mean_initializer=RANDOM)


def resnet18():
    def block(x, f, s):
        y = L.ReLU()(bn()(L.Conv2D(f, 3, s, padding="same", use_bias=False)(x)))
        y = bn()(L.Conv2D(f, 3, 1, padding="same", use_bias=False)(y))
        if s != 1 or x.shape[-1] != f:
            x = bn()(L.Conv2D(f, 1, s, use_bias=False)(x))
        return L.ReLU()(L.Add()([x, y]))

    i = tf.keras.Input((224, 224, 3))
    x = L.Conv2D(64, 7, 2, use_bias=False)(L.ZeroPadding2D(3)(i))
    x = L.MaxPooling2D(3, 2)(L.ZeroPadding2D(1)(L.ReLU()(bn()(x))))
    for f, s in [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]:
        x = block(x, f, s)
    x = L.Dense(1000, bias_initializer=RANDOM)(L.GlobalAveragePooling2D()(x))
    return tf.keras.Model(i, x)


def mlp():
    i = tf.keras.Input((64,))
    x = L.Dense(256, activation="relu", bias_initializer=RANDOM)(i)
    x = L.Dense(256, activation="relu", bias_initializer=RANDOM)(x)
    return tf.keras.Model(i, L.Dense(10, bias_initializer=RANDOM)(x))


class Encoder(tf.Module):
    """One transformer encoder block with pre-norm residuals, as in make_models.py."""

    def __init__(self, d=64, heads=4, ff=128):
        rng = np.random.default_rng(1)

        def w(*s):
            return tf.Variable(rng.normal(0, s[0] ** -0.5, s).astype(np.float32))

        def b(n, mean=0.0):
            return tf.Variable((mean + rng.normal(0, 0.02, n)).astype(np.float32))

        self.h, self.dh, self.d = heads, d // heads, d
        self.wqkv, self.bqkv, self.wp, self.bp = w(d, 3 * d), b(3 * d), w(d, d), b(d)
        self.w1, self.b1, self.w2, self.b2 = w(d, ff), b(ff), w(ff, d), b(d)
        self.g1, self.be1, self.g2, self.be2 = b(d, 1.0), b(d), b(d, 1.0), b(d)

    @staticmethod
    def norm(x, g, b):
        m, v = tf.nn.moments(x, [-1], keepdims=True)
        return (x - m) * tf.math.rsqrt(v + 1e-5) * g + b

    def __call__(self, x):
        s = tf.shape(x)
        bsz, t = s[0], s[1]

        def heads(z):
            return tf.transpose(tf.reshape(z, [bsz, t, self.h, self.dh]), [0, 2, 1, 3])

        q, k, v = tf.split(tf.matmul(self.norm(x, self.g1, self.be1), self.wqkv) + self.bqkv, 3, axis=-1)
        q, k, v = heads(q), heads(k), heads(v)
        att = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / self.dh**0.5, axis=-1)
        o = tf.reshape(tf.transpose(tf.matmul(att, v), [0, 2, 1, 3]), [bsz, t, self.d])
        x = x + tf.matmul(o, self.wp) + self.bp
        h = tf.nn.gelu(tf.matmul(self.norm(x, self.g2, self.be2), self.w1) + self.b1, approximate=True)
        return x + tf.matmul(h, self.w2) + self.b2


def shape(a):
    return "x".join(str(d) for d in a.shape)


lines = []


def save(name, fn, x):
    spec = tf.TensorSpec([None] + list(x.shape[1:]), tf.float32, name="input")
    conc = tf.function(lambda t: tf.identity(fn(t), name="output")).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(conc)
    with open(os.path.join(out, name + ".pb"), "wb") as f:
        f.write(frozen.graph.as_graph_def().SerializeToString())
    y = frozen(tf.constant(x))[0].numpy()
    # From the frozen function: constants, no resource variables (VAR_HANDLE ops).
    lite = tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()
    with open(os.path.join(out, name + ".tflite"), "wb") as f:
        f.write(lite)
    it = tf.lite.Interpreter(model_content=lite)
    index = it.get_input_details()[0]["index"]
    it.resize_tensor_input(index, x.shape)
    it.allocate_tensors()
    it.set_tensor(index, x)
    it.invoke()
    y_lite = it.get_tensor(it.get_output_details()[0]["index"])
    x.tofile(os.path.join(out, name + ".in.f32"))
    y.astype(np.float32).tofile(os.path.join(out, name + ".out.f32"))
    y_lite.astype(np.float32).tofile(os.path.join(out, name + ".tflite.out.f32"))
    lines.append(f"{name} {shape(x)} {shape(y)} pb,tflite")
    print("made", name, flush=True)


rng = np.random.default_rng(123)
save("resnet18", resnet18(), rng.normal(size=(1, 224, 224, 3)).astype(np.float32))
save("encoder", Encoder(), rng.normal(size=(2, 16, 64)).astype(np.float32))
save("mlp", mlp(), rng.normal(size=(32, 64)).astype(np.float32))
with open(os.path.join(out, "models.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
