//! The TensorFlow backend beside tract's TF: which one runs TF graphs, the same replies and
//! errors through both, graphs that read or write files refused, GPU devices refused
//! clearly by a CPU build of TensorFlow, and the thread settings given to TensorFlow.
//! (The real networks run on it in `tests/real_models.rs`.)
#![allow(clippy::unwrap_used)]

use orc_tests::{models::tensorflow_lib, *};

/// A NodeDef attribute (map entry: key 1, AttrValue 2).
fn attr(key: &str, value: &[u8]) -> Vec<u8> {
    proto_field(
        5,
        &[proto_field(1, key.as_bytes()), proto_field(2, value)].concat(),
    )
}

/// A valid GraphDef reading the file `path`: `name = Const(path)`, `contents =
/// ReadFile(name)`.
fn graph_reading(path: &str) -> Vec<u8> {
    const DT_STRING: u8 = 7;
    // TensorProto: dtype (1), tensor_shape (2, empty: a scalar), string_val (8).
    let tensor = [
        vec![1 << 3, DT_STRING],
        proto_field(2, b""),
        proto_field(8, path.as_bytes()),
    ]
    .concat();
    let name = [
        proto_field(1, b"name"),
        proto_field(2, b"Const"),
        attr("dtype", &[6 << 3, DT_STRING]), // AttrValue.type (6)
        attr("value", &proto_field(8, &tensor)), // AttrValue.tensor (8)
    ]
    .concat();
    let read = [
        proto_field(1, b"contents"),
        proto_field(2, b"ReadFile"),
        proto_field(3, b"name"),
    ]
    .concat();
    [proto_field(1, &name), proto_field(1, &read)].concat()
}

/// Store `blob` as a TF model with input nodes `ins` and output nodes `outs`: "OK" or the
/// error.
/// A NodeDef: name (1), op (2), inputs (3), `T: DT_FLOAT` or the attribute given (5).
fn node(name: &str, op: &str, inputs: &[&str], attr_t: Option<&[u8]>) -> Vec<u8> {
    const DT_FLOAT: u8 = 1;
    let mut n = [
        proto_field(1, name.as_bytes()),
        proto_field(2, op.as_bytes()),
    ]
    .concat();
    for i in inputs {
        n.extend(proto_field(3, i.as_bytes()));
    }
    let float = [6 << 3, DT_FLOAT]; // AttrValue.type
    n.extend(attr(
        if op == "Placeholder" { "dtype" } else { "T" },
        attr_t.unwrap_or(&float),
    ));
    n
}

/// A GraphDef of these nodes.
fn graph(nodes: &[Vec<u8>]) -> Vec<u8> {
    nodes.iter().flat_map(|n| proto_field(1, n)).collect()
}

fn store_graph(
    con: &mut redis::Connection,
    key: &str,
    device: &str,
    (ins, outs): (&[&str], &[&str]),
    blob: &[u8],
) -> String {
    let n_in = ins.len().to_string();
    let n_out = outs.len().to_string();
    let mut args: Vec<&[u8]> = vec![b"AI.MODELSTORE", key.as_bytes(), b"TF", device.as_bytes()];
    args.extend([b"INPUTS".as_slice(), n_in.as_bytes()]);
    args.extend(ins.iter().map(|s| s.as_bytes()));
    args.extend([b"OUTPUTS".as_slice(), n_out.as_bytes()]);
    args.extend(outs.iter().map(|s| s.as_bytes()));
    args.extend([b"BLOB".as_slice(), blob]);
    match cmd(con, &args) {
        Ok(_) => "OK".into(),
        Err(e) => err_text(Err(e)),
    }
}

/// The nodes of `graph.pb` (`mul = a * b`).
const MUL: (&[&str], &[&str]) = (&["a", "b"], &["mul"]);
/// The nodes of [`graph_reading`].
const READ: (&[&str], &[&str]) = (&["name"], &["contents"]);

/// `c = a * b` through the TF backend of the shard behind `con`.
fn multiply(con: &mut redis::Connection) -> Vec<f32> {
    let graph = std::fs::read(data_file("models/graph.pb")).unwrap();
    assert_eq!(store_graph(con, "tf", "CPU", MUL, &graph), "OK");
    line(con, "AI.TENSORSET a FLOAT 2 VALUES 2 3").unwrap();
    line(con, "AI.TENSORSET b FLOAT 2 VALUES 4 5").unwrap();
    line(con, "AI.MODELEXECUTE tf INPUTS 2 a b OUTPUTS 1 c").unwrap();
    f32_from(&bulk(&line(con, "AI.TENSORGET c BLOB").unwrap()))
}

/// The same errors from both runtimes.
fn errors(con: &mut redis::Connection) -> Vec<String> {
    let graph = std::fs::read(data_file("models/graph.pb")).unwrap();
    let mut out = Vec::new();
    let missing: &[&[u8]] = &[
        b"AI.MODELSTORE",
        b"m",
        b"TF",
        b"CPU",
        b"INPUTS",
        b"2",
        b"a",
        b"x",
        b"OUTPUTS",
        b"1",
        b"mul",
        b"BLOB",
        &graph,
    ];
    out.push(err_text(cmd(con, missing)));
    let garbage: &[&[u8]] = &[
        b"AI.MODELSTORE",
        b"m",
        b"TF",
        b"CPU",
        b"INPUTS",
        b"1",
        b"a",
        b"OUTPUTS",
        b"1",
        b"m",
        b"BLOB",
        b"\x01garbage",
    ];
    out.push(err_text(cmd(con, garbage)));
    line(con, "AI.TENSORSET i INT32 2 VALUES 1 2").unwrap();
    out.push(err_text(line(
        con,
        "AI.MODELEXECUTE tf INPUTS 1 a OUTPUTS 1 c",
    )));
    out
}

#[test]
fn tf_runs_on_tensorflow_where_present_else_on_tract_with_the_same_replies() {
    let state = State::new();
    let lib = tensorflow_lib().display().to_string();
    let with = start_ai(&state, "tf-with", 1, &["TENSORFLOW_LIB", &lib]);
    let mut on_tf = connect(&with.addresses()[0]);
    assert_eq!(multiply(&mut on_tf), [8.0, 15.0]);
    let b = loaded_backends(&mut on_tf);
    assert!(b.iter().any(|b| b.starts_with("TF tensorflow 2.")), "{b:?}");
    // auto without a library: tract.
    let without = start_ai(&state, "tf-without", 1, &[]);
    let mut on_tract = connect(&without.addresses()[0]);
    assert_eq!(multiply(&mut on_tract), [8.0, 15.0]);
    let b = loaded_backends(&mut on_tract);
    assert!(
        b.iter().any(|b| b.starts_with("TF tract-tensorflow")),
        "{b:?}"
    );
    let (tf, tract) = (errors(&mut on_tf), errors(&mut on_tract));
    assert_eq!(tf[0], "ERR Input node named \"x\" not found in TF graph.");
    assert_eq!(tf[0], tract[0]);
    assert!(tf[1].starts_with("ERR Invalid GraphDef"), "{}", tf[1]);
    assert!(tract[1].starts_with("ERR Invalid GraphDef"), "{}", tract[1]);
    assert_eq!(tf[2], tract[2]); // one input of two: orc-ai's own check
    // TF_RUNTIME tensorflow without a library: a clear error, no silent fallback.
    let strict = start_ai(&state, "tf-strict", 1, &["TF_RUNTIME", "tensorflow"]);
    let mut con = connect(&strict.addresses()[0]);
    let graph = std::fs::read(data_file("models/graph.pb")).unwrap();
    let e = store_graph(&mut con, "tf", "CPU", MUL, &graph);
    assert!(e.contains("no TensorFlow library was found"), "{e}");
    for o in [with, without, strict] {
        o.stop().unwrap();
    }
}

#[test]
fn tf_graphs_that_read_files_and_gpu_devices_are_refused() {
    let state = State::new();
    let lib = tensorflow_lib().display().to_string();
    let orc = start_ai(&state, "tf-safe", 1, &["TENSORFLOW_LIB", &lib]);
    let mut con = connect(&orc.addresses()[0]);
    let reads = graph_reading("/etc/hostname");
    let e = store_graph(&mut con, "reads", "CPU", READ, &reads);
    assert!(e.contains("contents (ReadFile)"), "{e}");
    assert!(e.contains("reads or writes files"), "{e}");
    // GPU on a CPU build of TensorFlow: refused, naming what it has.
    let graph = std::fs::read(data_file("models/graph.pb")).unwrap();
    let e = store_graph(&mut con, "g", "GPU:0", MUL, &graph);
    assert!(e.contains("GPU requested (GPU:0)"), "{e}");
    assert!(e.contains("CPU:0"), "{e}");
    assert_eq!(line(&mut con, "EXISTS g").unwrap(), redis::Value::Int(0));
    // A functional loop (TensorFlow recurses for each iteration; this one never ends and
    // would kill the shard within a second, as it kills a Python process).
    let functional = std::fs::read(data_file("models/forever_functional.pb")).unwrap();
    let io: (&[&str], &[&str]) = (&["input"], &["output"]);
    let e = store_graph(&mut con, "loop", "CPU", io, &functional);
    assert!(e.contains("(StatelessWhile)"), "{e}");
    assert_eq!(
        line(&mut con, "PING").unwrap(),
        redis::Value::SimpleString("PONG".into())
    );
    orc.stop().unwrap();
    // A site that trusts its clients may allow them: the graph is taken (TensorFlow
    // accepts it as a valid graph).
    let open = start_ai(
        &state,
        "tf-open",
        1,
        &["TENSORFLOW_LIB", &lib, "ALLOW_UNSAFE_OPS", "yes"],
    );
    let mut con = connect(&open.addresses()[0]);
    assert_eq!(store_graph(&mut con, "reads", "CPU", READ, &reads), "OK");
    open.stop().unwrap();
}

#[test]
fn tensorflow_sizes_its_inter_op_pool_by_the_module_setting() {
    let state = State::new();
    let lib = tensorflow_lib().display().to_string();
    let orc = start_ai(
        &state,
        "tf-threads",
        1,
        &[
            "TENSORFLOW_LIB",
            &lib,
            "INTER_OP_PARALLELISM",
            "3",
            "BACKENDS_WARMUP",
            "no",
        ],
    );
    let mut con = connect(&orc.addresses()[0]);
    assert_eq!(multiply(&mut con), [8.0, 15.0]);
    let pid = info_section(&mut con, "server")
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .unwrap()
        .trim()
        .to_string();
    let compute = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter(|t| {
            let comm = t.as_ref().unwrap().path().join("comm");
            std::fs::read_to_string(comm).unwrap_or_default().trim() == "tf_Compute"
        })
        .count();
    assert_eq!(compute, 3, "TensorFlow's inter-op threads");
    orc.stop().unwrap();
}

#[test]
fn malformed_graphs_get_tensorflow_s_reason_and_the_shard_keeps_its_data() {
    let state = State::new();
    let lib = tensorflow_lib().display().to_string();
    let orc = start_ai(
        &state,
        "tf-bad",
        1,
        &["TENSORFLOW_LIB", &lib, "TF_RUNTIME", "tensorflow"],
    );
    let mut con = connect(&orc.addresses()[0]);
    line(&mut con, "SET kept value").unwrap();
    let a = node("a", "Placeholder", &[], None);
    let string_t = proto_field(2, b"x"); // AttrValue.s where a type is expected
    let cases: [(&str, Vec<u8>, &str); 6] = [
        (
            "unknown op",
            graph(&[a.clone(), node("b", "NoSuchOp", &["a"], None)]),
            "NoSuchOp",
        ),
        (
            "unknown input",
            graph(&[a.clone(), node("b", "Identity", &["zzz"], None)]),
            "zzz",
        ),
        (
            "cycle",
            graph(&[
                a.clone(),
                node("b", "Add", &["a", "c"], None),
                node("c", "Add", &["a", "b"], None),
            ]),
            "cycle",
        ),
        (
            "self loop",
            graph(&[a.clone(), node("b", "Identity", &["b"], None)]),
            "cycle",
        ),
        (
            "wrong attribute type",
            graph(&[a.clone(), node("b", "Identity", &["a"], Some(&string_t))]),
            "attr 'T'",
        ),
        (
            "duplicate names",
            graph(&[
                a.clone(),
                node("b", "Identity", &["a"], None),
                node("b", "Identity", &["a"], None),
            ]),
            "not unique",
        ),
    ];
    for (what, blob, reason) in cases {
        let e = store_graph(&mut con, "bad", "CPU", (&["a"], &["b"]), &blob);
        assert!(
            e.starts_with("ERR Invalid GraphDef") && e.contains(reason),
            "{what}: {e}"
        );
    }
    // A sound graph of the same shape is taken.
    let ok = graph(&[a, node("b", "Identity", &["a"], None)]);
    assert_eq!(
        store_graph(&mut con, "good", "CPU", (&["a"], &["b"]), &ok),
        "OK"
    );
    line(&mut con, "AI.TENSORSET x FLOAT 2 VALUES 1 2").unwrap();
    line(&mut con, "AI.MODELEXECUTE good INPUTS 1 x OUTPUTS 1 y").unwrap();
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET y BLOB").unwrap())),
        [1.0, 2.0]
    );
    assert_eq!(
        line(&mut con, "GET kept").unwrap(),
        redis::Value::BulkString(b"value".to_vec())
    );
    orc.stop().unwrap();
}

#[test]
fn endless_graphs_are_stopped_by_tensorflow_at_the_execution_timeout() {
    // TensorFlow's C API cannot look at orc-ai's interrupt flag: without the run timeout
    // the backend gives TensorFlow, this run would go on for ever and its worker be given
    // up (`ai_workers_given_up:1`; checked by leaving the timeout out).
    let state = State::new();
    let lib = tensorflow_lib().display().to_string();
    let orc = start_ai(
        &state,
        "tf-forever",
        1,
        &[
            "TENSORFLOW_LIB",
            &lib,
            "TF_RUNTIME",
            "tensorflow",
            "MODEL_EXECUTION_TIMEOUT",
            "1000",
            "THREADS_PER_QUEUE",
            "1",
        ],
    );
    let mut con = connect(&orc.addresses()[0]);
    let forever = std::fs::read(data_file("models/forever.pb")).unwrap();
    let io: (&[&str], &[&str]) = (&["input"], &["output"]);
    assert_eq!(store_graph(&mut con, "forever", "CPU", io, &forever), "OK");
    line(&mut con, "AI.TENSORSET x FLOAT 1 VALUES 1").unwrap();
    let e = err_text(line(
        &mut con,
        "AI.MODELEXECUTE forever INPUTS 1 x OUTPUTS 1 y",
    ));
    assert!(e.contains("MODEL_EXECUTION_TIMEOUT"), "{e}");
    // Past the watchdog's grace second: the worker came back by itself.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(multiply(&mut con), [8.0, 15.0]);
    let info = info_section(&mut con, "ai_execution");
    assert!(info.contains("ai_runs_timed_out:1"), "{info}");
    assert!(info.contains("ai_workers_given_up:0"), "{info}");
    orc.stop().unwrap();
}
