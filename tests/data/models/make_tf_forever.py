"""Make forever.pb: a frozen TensorFlow graph whose while loop never ends (its condition is
`i >= 0` on a counter that only grows; the input `x` is added to the result so the graph has
an input), frozen with lowered control flow (Enter/Exit/NextIteration, which TensorFlow runs
without recursion). TensorFlow's C API cannot interrupt a run, so orc's TF backend asks
TensorFlow to cancel runs after MODEL_EXECUTION_TIMEOUT; tests/tensorflow.rs checks that with
this graph. And forever_functional.pb, the same loop as a functional StatelessWhile, which
TensorFlow runs by recursion until the process dies (orc refuses it when stored).

    ~/.cache/orc/tf-venv/bin/python tests/data/models/make_tf_forever.py
The file is committed (a few KB); tests never need this script.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2,
)


@tf.autograph.experimental.do_not_convert
def forever(x):
    i = tf.while_loop(lambda i: i >= 0, lambda i: i + 1, [tf.constant(0, tf.int64)])
    return tf.identity(x + tf.cast(i, tf.float32), name="output")


c = tf.function(forever).get_concrete_function(tf.TensorSpec([None], tf.float32, name="input"))
for name, lower in [("forever.pb", True), ("forever_functional.pb", False)]:
    gd = convert_variables_to_constants_v2(c, lower_control_flow=lower).graph.as_graph_def()
    with open(os.path.join(os.path.dirname(__file__), name), "wb") as f:
        f.write(gd.SerializeToString())
