"""Make mean_last.tflite: y = mean(x, axis=-1, keepdims=True) for x of shape [2, 3, 4], as
TensorFlow's converter writes it (a MEAN with a negative axis, as every layer norm has).

    ~/.cache/orc/tf-venv/bin/python tests/data/models/make_tflite_mean.py
The file is committed (a few hundred bytes); tests never need this script.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

f = tf.function(lambda x: tf.reduce_mean(x, axis=-1, keepdims=True))
c = f.get_concrete_function(tf.TensorSpec([2, 3, 4], tf.float32))
with open(os.path.join(os.path.dirname(__file__), "mean_last.tflite"), "wb") as out:
    out.write(tf.lite.TFLiteConverter.from_concrete_functions([c]).convert())
