//! The ONNX Runtime backend beside tract: which one runs ONNX models, backends loaded in the
//! background when a shard starts, models that point at files refused, GPU devices refused
//! clearly by a CPU build of the runtime.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use orc_tests::*;

/// An ONNX model `Y = Identity(W)` whose initializer W says its bytes are in `location`.
fn model_reading(location: &str) -> Vec<u8> {
    let entry = [
        proto_field(1, b"location"),
        proto_field(2, location.as_bytes()),
    ]
    .concat();
    // TensorProto: dims 4 (1), data_type FLOAT (2), name W (8), external_data (13),
    // data_location EXTERNAL (14).
    let tensor = [
        vec![1 << 3, 4, 2 << 3, 1],
        proto_field(8, b"W"),
        proto_field(13, &entry),
        vec![14 << 3, 1],
    ]
    .concat();
    let node = [
        proto_field(1, b"W"),
        proto_field(2, b"Y"),
        proto_field(4, b"Identity"),
    ]
    .concat();
    // ValueInfoProto Y: name (1), type (2) = TypeProto{tensor_type (1) {elem_type 1}}.
    let out = [
        proto_field(1, b"Y"),
        proto_field(2, &proto_field(1, &[1 << 3, 1])),
    ]
    .concat();
    let graph = [
        proto_field(1, &node),
        proto_field(2, b"g"),
        proto_field(5, &tensor),
        proto_field(12, &out),
    ]
    .concat();
    // ModelProto: ir_version 7 (1), opset_import {version 13} (8), graph (7).
    [
        vec![1 << 3, 7],
        proto_field(8, &[2 << 3, 13]),
        proto_field(7, &graph),
    ]
    .concat()
}

/// Store a model that reads /etc/passwd: the error.
fn store_reading_passwd(con: &mut redis::Connection) -> String {
    err_text(cmd(
        con,
        &[
            b"AI.MODELSTORE",
            b"m",
            b"ONNX",
            b"CPU",
            b"BLOB",
            &model_reading("/etc/passwd"),
        ],
    ))
}

#[test]
fn onnx_runs_on_onnxruntime_where_present_else_on_tract() {
    let state = State::new();
    let lib = onnxruntime_lib().display().to_string();
    // auto with the library: ONNX Runtime, loaded in the background with TORCH before any
    // request asks for either.
    let with = start_ai(
        &state,
        "with",
        1,
        &["ONNXRUNTIME_LIB", &lib, "BACKENDS_WARMUP", "yes"],
    );
    let mut con = connect(&with.addresses()[0]);
    let t = Instant::now();
    let loaded = loop {
        let b = loaded_backends(&mut con);
        // ONNX, TORCH, TFLITE and TF are all in the build's BACKENDSPATH.
        if b.len() >= 4 || t.elapsed() > Duration::from_secs(60) {
            break b;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        loaded.iter().any(|b| b.starts_with("ONNX onnxruntime 1.")),
        "{loaded:?}"
    );
    assert!(
        loaded.iter().any(|b| b.starts_with("TORCH libtorch")),
        "{loaded:?}"
    );
    // A model whose tensor lives in a file of the server's is refused before the runtime
    // opens anything.
    let e = store_reading_passwd(&mut con);
    assert!(
        e.contains("Initializer tensors with external data is not allowed."),
        "{e}"
    );
    // GPU on a CPU build of the runtime: refused, saying why.
    let linear = std::fs::read(data_file("models/linear.onnx")).unwrap();
    let e = err_text(cmd(
        &mut con,
        &[b"AI.MODELSTORE", b"g", b"ONNX", b"GPU:0", b"BLOB", &linear],
    ));
    assert!(
        e.contains("GPU requested but ONNX couldn't find CUDA"),
        "{e}"
    );
    // The server kept running with its data.
    line(&mut con, "AI.TENSORSET t FLOAT 1 VALUES 1").unwrap();
    assert_eq!(loaded_backends(&mut con).len(), loaded.len());

    // auto without a library: tract, and the same model refused the same way.
    let without = start_ai(&state, "without", 1, &[]);
    let mut con = connect(&without.addresses()[0]);
    let e = store_reading_passwd(&mut con);
    assert!(
        e.contains("Initializer tensors with external data is not allowed."),
        "{e}"
    );
    let b = loaded_backends(&mut con);
    assert!(b.iter().any(|b| b.starts_with("ONNX tract-onnx")), "{b:?}");

    // No warm-up: nothing loads until a request needs it.
    let cold = start_ai(&state, "cold", 1, &["BACKENDS_WARMUP", "no"]);
    let mut con = connect(&cold.addresses()[0]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(loaded_backends(&mut con), Vec::<String>::new());

    // ONNX_RUNTIME onnxruntime without a library: a clear error, no silent fallback.
    let strict = start_ai(
        &state,
        "strict",
        1,
        &["ONNX_RUNTIME", "onnxruntime", "BACKENDS_WARMUP", "no"],
    );
    let mut con = connect(&strict.addresses()[0]);
    let e = err_text(cmd(
        &mut con,
        &[b"AI.MODELSTORE", b"l", b"ONNX", b"CPU", b"BLOB", &linear],
    ));
    assert!(e.contains("no ONNX Runtime library was found"), "{e}");
    for o in [with, without, cold, strict] {
        o.stop().unwrap();
    }
}
