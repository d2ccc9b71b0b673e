//! orc-ai against real `redis-server`: every command, the error strings, persistence,
//! execution on worker threads with the ONNX backend, clusters, and bad input that must
//! leave the server running with its data intact.
#![allow(clippy::unwrap_used)]

use orc_tests::*;
use redis::Value;

fn b(s: &str) -> &[u8] {
    s.as_bytes()
}

use orc_tests::start_ai as start;

#[test]
fn tensors_of_every_type_round_trip() {
    let state = State::new();
    let orc = start(&state, "tensors", 1, &[]);
    let mut con = connect(&orc.addresses()[0]);
    let cases: [(&str, Vec<u8>, usize); 9] = [
        ("FLOAT", f32_bytes(&[1.5, -2.0]), 2),
        (
            "DOUBLE",
            [3.25f64, -1.0]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            2,
        ),
        ("INT8", vec![0xff, 7], 2),
        (
            "INT16",
            [-300i16, 5].iter().flat_map(|x| x.to_le_bytes()).collect(),
            2,
        ),
        (
            "INT32",
            [-70000i32, 5]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            2,
        ),
        (
            "INT64",
            [i64::MIN, 5].iter().flat_map(|x| x.to_le_bytes()).collect(),
            2,
        ),
        ("UINT8", vec![255, 0], 2),
        (
            "UINT16",
            [65535u16, 1].iter().flat_map(|x| x.to_le_bytes()).collect(),
            2,
        ),
        ("BOOL", vec![1, 0], 2),
    ];
    for (dtype, blob, n) in &cases {
        let key = format!("t_{dtype}");
        let r = cmd(
            &mut con,
            &[
                b("AI.TENSORSET"),
                key.as_bytes(),
                b(dtype),
                b("1"),
                n.to_string().as_bytes(),
                b("BLOB"),
                blob,
            ],
        )
        .unwrap();
        assert_eq!(r, Value::Okay);
        // What SmartRedis asks for: META BLOB, parsed by position.
        let r = array(
            cmd(
                &mut con,
                &[b("AI.TENSORGET"), key.as_bytes(), b("META"), b("BLOB")],
            )
            .unwrap(),
        );
        assert_eq!(r.len(), 6);
        assert_eq!(bulk(&r[0]), b"dtype");
        assert_eq!(bulk(&r[1]), dtype.as_bytes());
        assert_eq!(
            r[3],
            Value::Array(vec![Value::Int(1), Value::Int(*n as i64)])
        );
        assert_eq!(&bulk(&r[5]), blob);
        assert_eq!(
            redis::cmd("TYPE")
                .arg(&key)
                .query::<String>(&mut con)
                .unwrap(),
            "AI_TENSOR"
        );
    }
    // VALUES replies: floats as bulk strings, integers as integers.
    let r = array(line(&mut con, "AI.TENSORGET t_FLOAT VALUES").unwrap());
    assert_eq!(
        r.iter()
            .map(|v| String::from_utf8(bulk(v)).unwrap().parse::<f64>().unwrap())
            .collect::<Vec<_>>(),
        [1.5, -2.0]
    );
    let r = array(line(&mut con, "AI.TENSORGET t_INT8 VALUES").unwrap());
    assert_eq!(r, vec![Value::Int(-1), Value::Int(7)]);
    // META alone, and the default (META + BLOB).
    assert_eq!(
        array(line(&mut con, "AI.TENSORGET t_INT64 META").unwrap()).len(),
        4
    );
    assert_eq!(
        array(line(&mut con, "AI.TENSORGET t_INT64").unwrap()).len(),
        6
    );
    // Strings.
    line(&mut con, "AI.TENSORSET s STRING 2 VALUES hello world").unwrap();
    let r = array(line(&mut con, "AI.TENSORGET s VALUES").unwrap());
    assert_eq!(
        r.iter().map(bulk).collect::<Vec<_>>(),
        [b"hello".to_vec(), b"world".to_vec()]
    );
    // A tensor costs its bytes plus a small header.
    let big = vec![0u8; 1 << 20];
    cmd(
        &mut con,
        &[
            b("AI.TENSORSET"),
            b("big"),
            b("UINT8"),
            b("1048576"),
            b("BLOB"),
            &big,
        ],
    )
    .unwrap();
    let usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("big")
        .query(&mut con)
        .unwrap();
    let overhead = usage - (1 << 20);
    assert!(
        (0..512).contains(&overhead),
        "a 1 MiB tensor costs {usage} bytes"
    );
    // Standard key commands.
    assert_eq!(
        redis::cmd("COPY")
            .arg("t_FLOAT")
            .arg("copy")
            .query::<i64>(&mut con)
            .unwrap(),
        1
    );
    assert_eq!(
        redis::cmd("RENAME")
            .arg("copy")
            .arg("moved")
            .query::<String>(&mut con)
            .unwrap(),
        "OK"
    );
    assert_eq!(
        bulk(&array(line(&mut con, "AI.TENSORGET moved META BLOB").unwrap())[5]),
        f32_bytes(&[1.5, -2.0])
    );
    assert_eq!(
        redis::cmd("EXISTS")
            .arg("moved")
            .arg("copy")
            .query::<i64>(&mut con)
            .unwrap(),
        1
    );
    assert_eq!(
        redis::cmd("DEL")
            .arg("moved")
            .query::<i64>(&mut con)
            .unwrap(),
        1
    );
    orc.stop().unwrap();
}

#[test]
fn bad_input_gets_errors_and_the_server_keeps_its_data() {
    let state = State::new();
    let orc = start(&state, "bad", 1, &[]);
    let addr = orc.addresses()[0].clone();
    let mut con = connect(&addr);
    redis::cmd("SET")
        .arg("sentinel")
        .arg("still here")
        .query::<()>(&mut con)
        .unwrap();
    line(&mut con, "AI.TENSORSET good FLOAT 1 VALUES 1").unwrap();
    let cases: Vec<(Vec<&[u8]>, &str)> = vec![
        (
            vec![
                b("AI.TENSORSET"),
                b("t"),
                b("FLOAT"),
                b("2"),
                b("BLOB"),
                b("abc"),
            ],
            "ERR data length does not match tensor shape and type",
        ),
        (
            vec![
                b("AI.TENSORSET"),
                b("t"),
                b("FLOAT"),
                b("4294967296"),
                b("4294967296"),
                b("4294967296"),
            ],
            "ERR tensor is too large",
        ),
        (
            vec![b("AI.TENSORSET"), b("t"), b("FLOAT"), b("-1")],
            "ERR invalid or negative value found in tensor shape",
        ),
        (
            vec![b("AI.TENSORSET"), b("t"), b("COMPLEX"), b("1")],
            "ERR invalid data type",
        ),
        (
            vec![
                b("AI.TENSORSET"),
                b("t"),
                b("INT8"),
                b("2"),
                b("VALUES"),
                b("1"),
            ],
            "ERR wrong number of values was given in 'AI.TENSORSET' command",
        ),
        (
            vec![
                b("AI.TENSORSET"),
                b("t"),
                b("BOOL"),
                b("1"),
                b("VALUES"),
                b("3"),
            ],
            "ERR BOOL tensor elements must be 0 or 1",
        ),
        (
            vec![b("AI.TENSORSET"), b("sentinel"), b("FLOAT"), b("1")],
            "WRONGTYPE",
        ),
        (
            vec![b("AI.TENSORGET"), b("nokey")],
            "ERR tensor key is empty or in a different shard",
        ),
        (
            vec![b("AI.TENSORGET"), b("good"), b("BLOB"), b("VALUES")],
            "ERR both BLOB and VALUES specified",
        ),
        (
            vec![
                b("AI.MODELSTORE"),
                b("m"),
                b("ONNX"),
                b("CPU"),
                b("BLOB"),
                b("this is not a model"),
            ],
            "ERR ",
        ),
        (
            vec![
                b("AI.MODELSTORE"),
                b("m"),
                b("ONNX"),
                b("CPU"),
                b("BLOB"),
                b("\x08\x07\x12"),
            ],
            "ERR ",
        ),
        (
            vec![
                b("AI.MODELSTORE"),
                b("m"),
                b("CAFFE"),
                b("CPU"),
                b("BLOB"),
                b("x"),
            ],
            "ERR unsupported backend",
        ),
        (
            vec![
                b("AI.MODELEXECUTE"),
                b("nomodel"),
                b("INPUTS"),
                b("1"),
                b("a"),
                b("OUTPUTS"),
                b("1"),
                b("b"),
            ],
            "ERR model key is empty",
        ),
        (
            vec![
                b("AI.MODELEXECUTE"),
                b("good"),
                b("INPUTS"),
                b("1"),
                b("a"),
                b("OUTPUTS"),
                b("1"),
                b("b"),
            ],
            "WRONGTYPE",
        ),
        (
            vec![
                b("AI.SCRIPTRUN"),
                b("noscript"),
                b("f"),
                b("INPUTS"),
                b("a"),
                b("OUTPUTS"),
                b("b"),
            ],
            "ERR script key is empty",
        ),
        (
            vec![b("AI.CONFIG"), b("MODEL_CHUNK_SIZE"), b("-5")],
            "ERR MODEL_CHUNK_SIZE: invalid chunk size",
        ),
        (
            vec![b("AI.CONFIG"), b("FROB")],
            "ERR unsupported subcommand",
        ),
        (
            vec![b("AI.INFO"), b("good")],
            "ERR cannot find run info for key",
        ),
    ];
    let mut huge_chunks: Vec<&[u8]> =
        vec![b("AI.MODELSTORE"), b("m"), b("ONNX"), b("CPU"), b("BLOB")];
    huge_chunks.extend(std::iter::repeat_n(b("x"), 20000));
    for (args, expect) in cases
        .iter()
        .map(|(a, e)| (a.as_slice(), *e))
        .chain([(huge_chunks.as_slice(), "ERR ")])
    {
        let e = err_text(cmd(&mut con, args));
        assert!(
            e.starts_with(expect),
            "{:?}: got `{e}`, expected `{expect}...`",
            String::from_utf8_lossy(args[0])
        );
        assert_eq!(
            redis::cmd("PING").query::<String>(&mut con).unwrap(),
            "PONG"
        );
    }
    assert_eq!(
        redis::cmd("GET")
            .arg("sentinel")
            .query::<String>(&mut con)
            .unwrap(),
        "still here"
    );
    assert_eq!(
        array(line(&mut con, "AI.TENSORGET good VALUES").unwrap()).len(),
        1
    );
    orc.stop().unwrap();
}

#[test]
fn onnx_models_store_run_and_report_on_tract() {
    onnx_models_store_run_and_report(&["ONNX_RUNTIME", "tract"], "tract-onnx");
}

#[test]
fn onnx_models_store_run_and_report_on_onnxruntime() {
    let lib = onnxruntime_lib().display().to_string();
    onnx_models_store_run_and_report(
        &["ONNX_RUNTIME", "onnxruntime", "ONNXRUNTIME_LIB", &lib],
        "onnxruntime 1.",
    );
}

/// The same requests, replies and errors whichever runtime runs ONNX models.
fn onnx_models_store_run_and_report(runtime: &[&str], runtime_name: &str) {
    let state = State::new();
    let mut args = vec!["THREADS_PER_QUEUE", "2", "MODEL_CHUNK_SIZE_MIN", "16"];
    args.extend_from_slice(runtime);
    let orc = start(&state, "onnx", 1, &args);
    let mut con = connect(&orc.addresses()[0]);
    // SmartRedis asks for the chunk size first: an integer.
    assert_eq!(
        line(&mut con, "AI.CONFIG GET MODEL_CHUNK_SIZE").unwrap(),
        Value::Int(511 * 1024 * 1024)
    );
    store_linear(&mut con, "lin");
    let meta = array(line(&mut con, "AI.MODELGET lin META").unwrap());
    assert_eq!(meta.len(), 16);
    assert_eq!(bulk(&meta[1]), b"ONNX");
    assert_eq!(bulk(&meta[5]), b"v1");
    assert_eq!(
        meta[11],
        Value::Array(vec![Value::BulkString(b"X".to_vec())])
    );
    // Y = X W + B with W = [[1,2],[3,4],[5,6]], B = [0.5,-1].
    cmd(
        &mut con,
        &[
            b("AI.TENSORSET"),
            b("x"),
            b("FLOAT"),
            b("2"),
            b("3"),
            b("BLOB"),
            &f32_bytes(&[1., 0., 0., 0., 1., 1.]),
        ],
    )
    .unwrap();
    let r = line(
        &mut con,
        "AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 y TIMEOUT 60000",
    );
    assert_eq!(r.unwrap(), Value::Okay);
    let y = array(line(&mut con, "AI.TENSORGET y META BLOB").unwrap());
    assert_eq!(y[3], Value::Array(vec![Value::Int(2), Value::Int(2)]));
    assert_eq!(f32_from(&bulk(&y[5])), [1.5, 1.0, 8.5, 9.0]);
    // Any batch size works with the same model.
    cmd(
        &mut con,
        &[
            b("AI.TENSORSET"),
            b("x5"),
            b("FLOAT"),
            b("5"),
            b("3"),
            b("BLOB"),
            &f32_bytes(&[1.0; 15]),
        ],
    )
    .unwrap();
    line(&mut con, "AI.MODELRUN lin INPUTS x5 OUTPUTS y5").unwrap();
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET y5 BLOB").unwrap()))[..2],
        [9.5, 11.0]
    );
    // A scikit-learn export (unnamed batch dimension).
    let lr = std::fs::read(data_file("models/skl_linreg.onnx")).unwrap();
    cmd(
        &mut con,
        &[
            b("AI.MODELSTORE"),
            b("lr"),
            b("ONNX"),
            b("CPU"),
            b("BLOB"),
            &lr,
        ],
    )
    .unwrap();
    line(&mut con, "AI.TENSORSET f FLOAT 1 4 VALUES 1 2 3 4").unwrap();
    line(&mut con, "AI.MODELEXECUTE lr INPUTS 1 f OUTPUTS 1 g").unwrap();
    let g = f32_from(&bulk(&line(&mut con, "AI.TENSORGET g BLOB").unwrap()));
    assert!((g[0] - 10.75).abs() < 1e-3, "{g:?}");
    // A scikit-learn random forest (TreeEnsembleRegressor) matches scikit-learn's predictions.
    let rf = std::fs::read(data_file("models/skl_rfreg.onnx")).unwrap();
    cmd(
        &mut con,
        &[
            b("AI.MODELSTORE"),
            b("rf"),
            b("ONNX"),
            b("CPU"),
            b("BLOB"),
            &rf,
        ],
    )
    .unwrap();
    let expected = std::fs::read_to_string(data_file("models/skl_rfreg_expected.txt")).unwrap();
    let rows: Vec<Vec<f32>> = expected
        .lines()
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect();
    cmd(
        &mut con,
        &[
            b("AI.TENSORSET"),
            b("rx"),
            b("FLOAT"),
            b("5"),
            b("4"),
            b("BLOB"),
            &f32_bytes(&rows[0]),
        ],
    )
    .unwrap();
    line(&mut con, "AI.MODELEXECUTE rf INPUTS 1 rx OUTPUTS 1 ry").unwrap();
    let ry = f32_from(&bulk(&line(&mut con, "AI.TENSORGET ry BLOB").unwrap()));
    assert_eq!(ry.len(), 5);
    for (g, e) in ry.iter().zip(&rows[1]) {
        assert!(
            (g - e).abs() < 1e-4,
            "forest: got {g}, scikit-learn says {e}"
        );
    }
    // Two inputs, two outputs.
    let two = std::fs::read(data_file("models/two_in_two_out.onnx")).unwrap();
    cmd(
        &mut con,
        &[
            b("AI.MODELSTORE"),
            b("two"),
            b("ONNX"),
            b("CPU"),
            b("BLOB"),
            &two,
        ],
    )
    .unwrap();
    line(&mut con, "AI.TENSORSET a FLOAT 2 VALUES 1 2").unwrap();
    line(&mut con, "AI.TENSORSET b FLOAT 2 VALUES 3 4").unwrap();
    line(&mut con, "AI.MODELEXECUTE two INPUTS 2 a b OUTPUTS 2 s p").unwrap();
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET p BLOB").unwrap())),
        [3.0, 8.0]
    );
    // Errors of execution: counts, shapes, TIMEOUT syntax.
    let e = err_text(line(
        &mut con,
        "AI.MODELEXECUTE two INPUTS 1 a OUTPUTS 2 s p",
    ));
    assert_eq!(
        e,
        "Number of keys given as INPUTS here does not match model definition"
    );
    let e = err_text(line(&mut con, "AI.MODELEXECUTE lin INPUTS 1 a OUTPUTS 1 z"));
    assert!(e.starts_with("ERR "), "a shape error from the runtime: {e}");
    let e = err_text(line(
        &mut con,
        "AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 y TIMEOUT",
    ));
    assert_eq!(e, "ERR No value provided for TIMEOUT");
    let e = err_text(line(
        &mut con,
        "AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 y FAST",
    ));
    assert_eq!(e, "Invalid argument: FAST");
    // AI.INFO counts calls and errors; RESETSTAT clears them.
    let info = array(line(&mut con, "AI.INFO lin").unwrap());
    assert_eq!(info.len(), 18);
    assert_eq!(info[15], Value::Int(3), "calls");
    assert_eq!(info[17], Value::Int(1), "errors");
    assert_eq!(info[13], Value::Int(7), "samples: 2 + 5");
    assert_eq!(
        line(&mut con, "AI.INFO lin RESETSTAT").unwrap(),
        Value::Okay
    );
    assert_eq!(
        array(line(&mut con, "AI.INFO lin").unwrap())[15],
        Value::Int(0)
    );
    // MODELGET BLOB comes back chunked when the chunk size is small; the floor
    // (MODEL_CHUNK_SIZE_MIN) keeps a client from making it per-byte.
    assert!(
        err_text(line(&mut con, "AI.CONFIG MODEL_CHUNK_SIZE 8")).contains("MODEL_CHUNK_SIZE_MIN"),
    );
    line(&mut con, "AI.CONFIG MODEL_CHUNK_SIZE 50").unwrap();
    let chunks = array(line(&mut con, "AI.MODELGET lin BLOB").unwrap());
    let joined: Vec<u8> = chunks.iter().flat_map(bulk).collect();
    assert_eq!(
        joined,
        std::fs::read(data_file("models/linear.onnx")).unwrap()
    );
    assert!(chunks.len() > 1);
    let scan = array(line(&mut con, "AI._MODELSCAN").unwrap());
    assert_eq!(scan.len(), 4);
    let backends: Vec<String> = array(line(&mut con, "AI.CONFIG GET BACKENDS").unwrap())
        .iter()
        .map(|b| String::from_utf8(bulk(b)).unwrap())
        .collect();
    assert!(
        backends
            .iter()
            .any(|b| b.starts_with(&format!("ONNX {runtime_name}"))),
        "{backends:?}"
    );
    assert_eq!(line(&mut con, "AI.MODELDEL lin").unwrap(), Value::Okay);
    assert_eq!(
        err_text(line(&mut con, "AI.MODELDEL lin")),
        "ERR model key is empty"
    );
    // Execution is refused inside MULTI.
    let r: redis::RedisResult<Vec<Value>> = redis::pipe()
        .atomic()
        .cmd("AI.MODELEXECUTE")
        .arg("two")
        .arg("INPUTS")
        .arg(2)
        .arg("a")
        .arg("b")
        .arg("OUTPUTS")
        .arg(2)
        .arg("s")
        .arg("p")
        .query(&mut con);
    let text = format!("{r:?}");
    assert!(
        text.contains("Cannot run RedisAI command within a transaction or a LUA script"),
        "{text}"
    );
    orc.stop().unwrap();
}

#[test]
fn torchscript_models_and_scripts() {
    let state = State::new();
    let orc = start(&state, "torch", 1, &["TORCH", "INTRA_OP_PARALLELISM", "1"]);
    let mut con = connect(&orc.addresses()[0]);
    let two = std::fs::read(data_file("models/two_out.pt")).unwrap();
    assert_eq!(
        cmd(
            &mut con,
            &[
                b("AI.MODELSTORE"),
                b("two"),
                b("TORCH"),
                b("CPU"),
                b("BLOB"),
                &two
            ]
        )
        .unwrap(),
        Value::Okay
    );
    line(&mut con, "AI.TENSORSET a FLOAT 2 VALUES 1 2").unwrap();
    line(&mut con, "AI.TENSORSET b FLOAT 2 VALUES 3 4").unwrap();
    line(&mut con, "AI.MODELEXECUTE two INPUTS 2 a b OUTPUTS 2 s p").unwrap();
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET s BLOB").unwrap())),
        [4.0, 6.0]
    );
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET p BLOB").unwrap())),
        [3.0, 8.0]
    );
    // A model returning two tensors cannot fill one output.
    let e = err_text(line(
        &mut con,
        "AI.MODELEXECUTE two INPUTS 2 a b OUTPUTS 1 s",
    ));
    assert!(
        e.contains("did not generate the expected number of outputs"),
        "{e}"
    );
    // Entry-point scripts get (tensors, keys, args).
    let src = std::fs::read(data_file("scripts/ops.py")).unwrap();
    let r = cmd(
        &mut con,
        &[
            b("AI.SCRIPTSTORE"),
            b("ops"),
            b("CPU"),
            b("TAG"),
            b("t1"),
            b("ENTRY_POINTS"),
            b("3"),
            b("scale"),
            b("sum_all"),
            b("split_halves"),
            b("SOURCE"),
            &src,
        ],
    );
    assert_eq!(r.unwrap(), Value::Okay);
    line(
        &mut con,
        "AI.SCRIPTEXECUTE ops scale INPUTS 1 a ARGS 1 10 OUTPUTS 1 o",
    )
    .unwrap();
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET o BLOB").unwrap())),
        [10.0, 20.0]
    );
    line(
        &mut con,
        "AI.SCRIPTEXECUTE ops sum_all KEYS 1 a INPUTS 3 a b o OUTPUTS 1 t",
    )
    .unwrap();
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET t BLOB").unwrap())),
        [14.0, 26.0]
    );
    let meta = array(line(&mut con, "AI.SCRIPTGET ops META").unwrap());
    assert_eq!(bulk(&meta[4]), b"Entry Points");
    assert_eq!(
        meta[5],
        Value::Array(
            ["scale", "sum_all", "split_halves"]
                .iter()
                .map(|s| Value::BulkString(s.as_bytes().to_vec()))
                .collect()
        )
    );
    // Script errors: compile errors, bad entry points, missing functions, run-time failures.
    let e = err_text(cmd(
        &mut con,
        &[
            b("AI.SCRIPTSET"),
            b("bad"),
            b("CPU"),
            b("SOURCE"),
            b("def f(a:\n  return"),
        ],
    ));
    assert!(!e.is_empty());
    let e = err_text(cmd(
        &mut con,
        &[
            b("AI.SCRIPTSTORE"),
            b("ep"),
            b("CPU"),
            b("ENTRY_POINTS"),
            b("1"),
            b("nosuch"),
            b("SOURCE"),
            &src,
        ],
    ));
    assert_eq!(e, "Function nosuch does not exist in the given script.");
    let e = err_text(line(
        &mut con,
        "AI.SCRIPTEXECUTE ops nosuch INPUTS 1 a OUTPUTS 1 z",
    ));
    assert!(e.contains("Function nosuch does not exist"), "{e}");
    let e = err_text(line(
        &mut con,
        "AI.SCRIPTEXECUTE ops scale INPUTS 1 a ARGS 1 abc OUTPUTS 1 z",
    ));
    assert!(e.starts_with("ERR "), "a script that raises: {e}");
    let e = err_text(line(&mut con, "AI.SCRIPTEXECUTE ops scale ARGS 1 2"));
    assert_eq!(
        e,
        "ERR KEYS or INPUTS scope must be provided first for AI.SCRIPTEXECUTE command"
    );
    let e = err_text(cmd(
        &mut con,
        &[
            b("AI.MODELSTORE"),
            b("g"),
            b("TORCH"),
            b("GPU:0"),
            b("BLOB"),
            &two,
        ],
    ));
    assert!(
        e.contains("GPU requested but TORCH couldn't find CUDA"),
        "{e}"
    );
    let e = err_text(line(
        &mut con,
        "AI.SCRIPTSTORE gs GPU:1 ENTRY_POINTS 1 f SOURCE x",
    ));
    assert!(
        e.contains("GPU requested but TORCH couldn't find CUDA"),
        "{e}"
    );
    // Scripts persist.
    redis::cmd("SAVE").query::<String>(&mut con).unwrap();
    redis::cmd("DEL").arg("o").query::<i64>(&mut con).unwrap();
    assert_eq!(
        redis::cmd("PING").query::<String>(&mut con).unwrap(),
        "PONG"
    );
    let info = array(line(&mut con, "AI.INFO ops").unwrap());
    assert_eq!(bulk(&info[3]), b"SCRIPT");
    assert_eq!(info[13], Value::Int(-1));
    orc.stop().unwrap();
}

#[test]
fn tensorflow_frozen_graphs_and_tflite_models() {
    let state = State::new();
    let orc = start(&state, "tftfl", 1, &[]);
    let mut con = connect(&orc.addresses()[0]);
    let graph = std::fs::read(data_file("models/graph.pb")).unwrap();
    // TF needs the node names.
    let e = err_text(cmd(
        &mut con,
        &[
            b("AI.MODELSTORE"),
            b("tf"),
            b("TF"),
            b("CPU"),
            b("BLOB"),
            &graph,
        ],
    ));
    assert_eq!(e, "ERR INPUTS not specified for TF");
    let store = |con: &mut redis::Connection, input: &str| {
        cmd(
            con,
            &[
                b("AI.MODELSTORE"),
                b("tf"),
                b("TF"),
                b("CPU"),
                b("INPUTS"),
                b("2"),
                b("a"),
                input.as_bytes(),
                b("OUTPUTS"),
                b("1"),
                b("mul"),
                b("BLOB"),
                &graph,
            ],
        )
    };
    assert_eq!(
        err_text(store(&mut con, "x")),
        "ERR Input node named \"x\" not found in TF graph."
    );
    assert_eq!(store(&mut con, "b").unwrap(), Value::Okay);
    line(&mut con, "AI.TENSORSET a FLOAT 2 VALUES 2 3").unwrap();
    line(&mut con, "AI.TENSORSET b FLOAT 2 VALUES 4 5").unwrap();
    line(&mut con, "AI.MODELEXECUTE tf INPUTS 2 a b OUTPUTS 1 c").unwrap();
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET c BLOB").unwrap())),
        [8.0, 15.0]
    );
    let meta = array(line(&mut con, "AI.MODELGET tf META").unwrap());
    assert_eq!(
        meta[13],
        Value::Array(vec![Value::BulkString(b"mul".to_vec())])
    );
    let e = err_text(cmd(
        &mut con,
        &[
            b("AI.MODELSTORE"),
            b("bad"),
            b("TF"),
            b("CPU"),
            b("INPUTS"),
            b("1"),
            b("a"),
            b("OUTPUTS"),
            b("1"),
            b("m"),
            b("BLOB"),
            b("\x01garbage"),
        ],
    ));
    assert!(e.contains("Invalid GraphDef"), "{e}");
    // TFLite: out = x + y; other batch sizes re-type the declared shapes.
    let tfl = std::fs::read(data_file("models/add.tflite")).unwrap();
    cmd(
        &mut con,
        &[
            b("AI.MODELSTORE"),
            b("tfl"),
            b("TFLITE"),
            b("CPU"),
            b("BLOB"),
            &tfl,
        ],
    )
    .unwrap();
    line(&mut con, "AI.TENSORSET x FLOAT 3 2 VALUES 1 2 3 4 5 6").unwrap();
    line(&mut con, "AI.TENSORSET y FLOAT 3 2 VALUES 1 1 1 1 1 1").unwrap();
    line(&mut con, "AI.MODELEXECUTE tfl INPUTS 2 x y OUTPUTS 1 o").unwrap();
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET o BLOB").unwrap())),
        [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    );
    let e = err_text(cmd(
        &mut con,
        &[
            b("AI.MODELSTORE"),
            b("tflg"),
            b("TFLITE"),
            b("GPU"),
            b("BLOB"),
            &tfl,
        ],
    ));
    assert!(e.contains("CPU only"), "{e}");
    let backends = array(line(&mut con, "AI.CONFIG GET BACKENDS").unwrap());
    let names: Vec<String> = backends
        .iter()
        .map(|v| String::from_utf8(bulk(v)).unwrap())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("TF tract-tensorflow"))
            && names.iter().any(|n| n.starts_with("TFLITE ")),
        "{names:?}"
    );
    orc.stop().unwrap();
}

#[test]
fn requests_are_batched_across_clients() {
    let state = State::new();
    let orc = start(&state, "batch", 1, &["THREADS_PER_QUEUE", "1"]);
    let addr = orc.addresses()[0].clone();
    let mut con = connect(&addr);
    let blob = std::fs::read(data_file("models/linear.onnx")).unwrap();
    let r = cmd(
        &mut con,
        &[
            b("AI.MODELSTORE"),
            b("lin"),
            b("ONNX"),
            b("CPU"),
            b("BATCHSIZE"),
            b("4"),
            b("MINBATCHSIZE"),
            b("3"),
            b("MINBATCHTIMEOUT"),
            b("1500"),
            b("BLOB"),
            &blob,
        ],
    );
    assert_eq!(r.unwrap(), Value::Okay);
    let meta = array(line(&mut con, "AI.MODELGET lin META").unwrap());
    assert_eq!(
        (meta[7].clone(), meta[9].clone(), meta[15].clone()),
        (Value::Int(4), Value::Int(3), Value::Int(1500))
    );
    let run = move |i: usize| {
        let mut con = connect(&addr);
        let x = format!("x{i}");
        let y = format!("y{i}");
        cmd(
            &mut con,
            &[
                b("AI.TENSORSET"),
                x.as_bytes(),
                b("FLOAT"),
                b("1"),
                b("3"),
                b("BLOB"),
                &f32_bytes(&[i as f32, 0.0, 0.0]),
            ],
        )
        .unwrap();
        let began = std::time::Instant::now();
        let r = cmd(
            &mut con,
            &[
                b("AI.MODELEXECUTE"),
                b("lin"),
                b("INPUTS"),
                b("1"),
                x.as_bytes(),
                b("OUTPUTS"),
                b("1"),
                y.as_bytes(),
            ],
        );
        assert_eq!(r.unwrap(), Value::Okay);
        let out = f32_from(&bulk(
            &cmd(&mut con, &[b("AI.TENSORGET"), y.as_bytes(), b("BLOB")]).unwrap(),
        ));
        (out, began.elapsed())
    };
    // Alone, a request waits for MINBATCHSIZE until MINBATCHTIMEOUT passes, then runs.
    let run = std::sync::Arc::new(run);
    let (out, waited) = run(1);
    assert_eq!(out, [1.5, 1.0]);
    assert!(
        waited >= std::time::Duration::from_millis(1400),
        "ran after {waited:?}"
    );
    // Three clients at once fill the minimum batch: one run, each gets its own rows back.
    let handles: Vec<_> = (2..5)
        .map(|i| {
            let run = run.clone();
            std::thread::spawn(move || (i, run(i)))
        })
        .collect();
    for h in handles {
        let (i, (out, waited)) = h.join().unwrap();
        assert_eq!(out, [i as f32 + 0.5, 2.0 * i as f32 - 1.0], "request {i}");
        assert!(
            waited < std::time::Duration::from_millis(1400),
            "request {i} waited {waited:?}: not batched"
        );
    }
    orc.stop().unwrap();
}

#[test]
fn dags_run_several_operations_and_persist_only_what_is_asked() {
    let state = State::new();
    let orc = start(&state, "dag", 1, &[]);
    let mut con = connect(&orc.addresses()[0]);
    store_linear(&mut con, "lin");
    line(&mut con, "AI.TENSORSET x FLOAT 1 3 VALUES 1 2 3").unwrap();
    let dag = |con: &mut redis::Connection, words: &str| {
        let a: Vec<&[u8]> = words.split(' ').map(str::as_bytes).collect();
        cmd(con, &a)
    };
    let r = array(
        dag(
            &mut con,
            "AI.DAGEXECUTE LOAD 1 x PERSIST 1 y2 |> AI.TENSORSET a FLOAT 1 3 VALUES 1 0 0 |> AI.MODELEXECUTE lin INPUTS 1 a OUTPUTS 1 y \
             |> AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 y2 |> AI.TENSORGET y BLOB |> AI.TENSORGET nope META",
        )
        .unwrap(),
    );
    assert_eq!(r.len(), 5);
    assert_eq!(r[0], Value::Okay);
    assert_eq!(f32_from(&bulk(&r[3])), [1.5, 1.0]);
    assert_eq!(r[4], Value::SimpleString("NA".into()));
    // Only the PERSIST name reaches the keyspace.
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET y2 BLOB").unwrap())),
        [22.5, 27.0]
    );
    assert_eq!(
        redis::cmd("EXISTS")
            .arg("y")
            .arg("a")
            .query::<i64>(&mut con)
            .unwrap(),
        0
    );
    // A failing operation gives an error element and NA for the rest; nothing persists.
    // (req_command keeps error elements inside the array; query() turns them into an Err.)
    let words = "AI.DAGEXECUTE LOAD 1 x PERSIST 1 q |> AI.TENSORSET bad FLOAT 1 2 VALUES 1 2 |> AI.MODELEXECUTE lin INPUTS 1 bad OUTPUTS 1 q |> AI.TENSORGET q VALUES";
    let mut c = redis::cmd("AI.DAGEXECUTE");
    for w in words.split(' ').skip(1) {
        c.arg(w);
    }
    let r = array(redis::ConnectionLike::req_command(&mut con, &c).unwrap());
    assert_eq!(r[0], Value::Okay);
    assert!(matches!(r[1], Value::ServerError(_)), "{:?}", r[1]);
    assert_eq!(r[2], Value::SimpleString("NA".into()));
    assert_eq!(
        redis::cmd("EXISTS")
            .arg("q")
            .query::<i64>(&mut con)
            .unwrap(),
        0
    );
    // The read-only form, and parse errors with RedisAI's texts.
    let r = array(dag(&mut con, "AI.DAGEXECUTE_RO LOAD 1 x |> AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 z |> AI.TENSORGET z BLOB").unwrap());
    assert_eq!(f32_from(&bulk(&r[1])), [22.5, 27.0]);
    for (words, expect) in [
        (
            "AI.DAGEXECUTE_RO PERSIST 1 x |> AI.TENSORGET x",
            "ERR PERSIST cannot be specified in a read-only DAG",
        ),
        (
            "AI.DAGEXECUTE LOAD 1 x |> AI.MODELEXECUTE lin INPUTS 1 missing OUTPUTS 1 q",
            "ERR INPUT key cannot be found in DAG",
        ),
        (
            "AI.DAGEXECUTE |> AI.TENSORGET x VALUES |> AI.TENSORGET x VALUES",
            "ERR AI.DAGEXECUTE and AI.DAGEXECUTE_RO commands must contain at least one out of ROUTING, LOAD, PERSIST keywords",
        ),
        (
            "AI.DAGEXECUTE LOAD 1 x FOO |> AI.TENSORGET x",
            "ERR Invalid DAG command. Unexpected argument:  FOO",
        ),
        (
            "AI.DAGEXECUTE LOAD 1 x PERSIST 1 zz |> AI.TENSORGET x",
            "ERR PERSIST key cannot be found in DAG",
        ),
        (
            "AI.DAGEXECUTE LOAD 1 x |> AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 y TIMEOUT 5",
            "ERR TIMEOUT not allowed within a DAG command",
        ),
        (
            "AI.DAGEXECUTE LOAD 1 x |> AI.MODELRUN lin INPUTS x OUTPUTS y",
            "Deprecated AI.MODELRUN cannot be used in AI.DAGEXECUTE command",
        ),
        (
            "AI.DAGEXECUTE LOAD 1 x |> SET a b",
            "Unsupported command within DAG",
        ),
        (
            "AI.DAGEXECUTE_RO LOAD 1 x |> AI.SCRIPTEXECUTE s f INPUTS 1 x",
            "ERR AI.SCRIPTEXECUTE command cannot be specified in a read-only DAG",
        ),
    ] {
        assert_eq!(err_text(dag(&mut con, words)), expect, "{words}");
    }
    orc.stop().unwrap();
}

#[test]
fn replicas_receive_tensors_models_and_run_outputs() {
    let state = State::new();
    let primary = start(&state, "primary", 1, &[]);
    let replica = start(&state, "replica", 1, &[]);
    let (p, r) = (
        primary.addresses()[0].clone(),
        replica.addresses()[0].clone(),
    );
    let mut rc = admin_connect(state.path(), "replica", &r);
    let (host, port) = p.split_once(':').unwrap();
    // The replica follows the primary as the primary's admin user.
    let (user, secret) = admin_login(state.path(), "primary");
    for (k, v) in [("masteruser", &user), ("masterauth", &secret)] {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(k)
            .arg(v)
            .query::<()>(&mut rc)
            .unwrap();
    }
    redis::cmd("REPLICAOF")
        .arg(host)
        .arg(port)
        .query::<String>(&mut rc)
        .unwrap();
    assert!(wait_for(std::time::Duration::from_secs(10), || {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut rc)
            .unwrap();
        info.contains("master_link_status:up")
    }));
    let mut pc = connect(&p);
    store_linear(&mut pc, "lin");
    line(&mut pc, "AI.TENSORSET x FLOAT 1 3 VALUES 1 0 0").unwrap();
    line(&mut pc, "AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 y").unwrap();
    redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query::<i64>(&mut pc)
        .unwrap();
    assert!(wait_for(std::time::Duration::from_secs(5), || line(
        &mut rc,
        "AI.TENSORGET y BLOB"
    )
    .is_ok()));
    assert_eq!(
        f32_from(&bulk(&line(&mut rc, "AI.TENSORGET y BLOB").unwrap())),
        [1.5, 1.0]
    );
    assert_eq!(
        bulk(&array(line(&mut rc, "AI.MODELGET lin META").unwrap())[1]),
        b"ONNX"
    );
    redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query::<String>(&mut rc)
        .unwrap();
    replica.stop().unwrap();
    primary.stop().unwrap();
}

#[test]
fn backends_that_are_missing_or_incompatible_are_named() {
    let state = State::new();
    let orc = start(
        &state,
        "backends",
        1,
        &["BACKENDSPATH", "/nonexistent/backends"],
    );
    let mut con = admin_connect(state.path(), "backends", &orc.addresses()[0]);
    // A backend that is not on BACKENDSPATH: the error names the file it looked for.
    let e = err_text(cmd(
        &mut con,
        &[
            b("AI.SCRIPTSET"),
            b("s"),
            b("CPU"),
            b("SOURCE"),
            b("def f(a):\n    return a\n"),
        ],
    ));
    assert!(
        e.contains("Could not load backend TORCH")
            && e.contains("/nonexistent/backends/liborc_ai_backend_torch.so"),
        "{e}"
    );
    // BACKENDSPATH is fixed at load, and backends load by file name from it only.
    let e = err_text(line(&mut con, "AI.CONFIG BACKENDSPATH /tmp"));
    assert!(e.contains("ALLOW_BACKEND_PATHS"), "{e}");
    assert_eq!(
        line(&mut con, "AI.CONFIG GET BACKENDSPATH").unwrap(),
        Value::BulkString(b"/nonexistent/backends".to_vec())
    );
    let wrong = plugin_file("orc_fixture_ai_backend_wrong_abi");
    for path in [
        wrong.to_str().unwrap(),
        "../../../../tmp/x.so",
        "sub/liborc_ai_backend_torch.so",
    ] {
        let e = err_text(line(
            &mut con,
            &format!("AI.CONFIG LOADBACKEND TORCH {path}"),
        ));
        assert!(e.contains("ALLOW_BACKEND_PATHS"), "{path}: {e}");
    }
    orc.stop().unwrap();
    // Where paths are allowed, files that are not backends are named as such.
    // (No warm-up: it would load the real TORCH backend first.)
    let orc = start(
        &state,
        "paths",
        1,
        &["ALLOW_BACKEND_PATHS", "yes", "BACKENDS_WARMUP", "no"],
    );
    let mut con = admin_connect(state.path(), "paths", &orc.addresses()[0]);
    let e = err_text(cmd(
        &mut con,
        &[
            b("AI.CONFIG"),
            b("LOADBACKEND"),
            b("TORCH"),
            wrong.to_str().unwrap().as_bytes(),
        ],
    ));
    assert!(e.contains("backend ABI version 999"), "{e}");
    let not_plugin = plugin_file("orc_fixture_not_plugin");
    let e = err_text(cmd(
        &mut con,
        &[
            b("AI.CONFIG"),
            b("LOADBACKEND"),
            b("TF"),
            not_plugin.to_str().unwrap().as_bytes(),
        ],
    ));
    assert!(e.contains("not an orc-ai backend plugin"), "{e}");
    // A file others can write is never loaded, even by path.
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("liborc_ai_backend_tf.so");
    std::fs::copy(plugin_file("orc_ai_backend_tf"), &open).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = err_text(line(
        &mut con,
        &format!("AI.CONFIG LOADBACKEND TF {}", open.display()),
    ));
    assert!(e.contains("can be written by other users"), "{e}");
    assert_eq!(
        redis::cmd("PING").query::<String>(&mut con).unwrap(),
        "PONG"
    );
    orc.stop().unwrap();
    // A backend that cannot be preloaded makes the module (and the shard) refuse to start.
    let mut s = ai_settings("nobackend", 1, &["BACKENDSPATH", "/nonexistent", "ONNX"]);
    s.startup_timeout_secs = 10.0;
    let err = launch(&static_host(), &state, s).unwrap_err().to_string();
    assert!(err.contains("exited while starting"), "{err}");
}

#[test]
fn tensors_and_models_survive_restarts_and_aof_rewrites() {
    let state = State::new();
    let mut s = ai_settings("persist", 1, &[]);
    s.redis.checkpoints = Some(orc_core::Checkpoints {
        every_secs: 900,
        min_changes: 1,
    });
    let orc = launch(&static_host(), &state, s.clone()).unwrap();
    let mut con = connect(&orc.addresses()[0]);
    line(&mut con, "AI.TENSORSET x FLOAT 1 3 VALUES 1 1 1").unwrap();
    line(&mut con, "AI.TENSORSET s STRING 2 VALUES a bc").unwrap();
    store_linear(&mut con, "lin");
    orc.stop().unwrap(); // SHUTDOWN SAVE
    let orc = launch(&static_host(), &state, s.clone()).unwrap();
    let mut con = connect(&orc.addresses()[0]);
    line(&mut con, "AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 y").unwrap();
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET y BLOB").unwrap())),
        [9.5, 11.0]
    );
    assert_eq!(
        array(line(&mut con, "AI.TENSORGET s VALUES").unwrap())
            .iter()
            .map(bulk)
            .collect::<Vec<_>>(),
        [b"a".to_vec(), b"bc".to_vec()]
    );
    assert_eq!(
        bulk(&array(line(&mut con, "AI.MODELGET lin META").unwrap())[5]),
        b"v1"
    );
    orc.stop().unwrap();

    // AOF without an RDB preamble: the rewrite emits AI.TENSORSET / AI.MODELSTORE commands.
    let mut s = ai_settings("aof", 1, &[]);
    s.redis.extra.insert("appendonly".into(), "yes".into());
    s.redis
        .extra
        .insert("aof-use-rdb-preamble".into(), "no".into());
    let orc = launch(&static_host(), &state, s.clone()).unwrap();
    let mut con = admin_connect(state.path(), "aof", &orc.addresses()[0]);
    line(&mut con, "AI.TENSORSET x FLOAT 1 3 VALUES 1 1 1").unwrap();
    store_linear(&mut con, "lin");
    redis::cmd("BGREWRITEAOF")
        .query::<String>(&mut con)
        .unwrap();
    // A fork of a server with ML runtimes loaded, on a loaded test machine: allow time.
    let mut info = String::new();
    assert!(
        wait_for(std::time::Duration::from_secs(30), || {
            info = redis::cmd("INFO")
                .arg("persistence")
                .query(&mut con)
                .unwrap();
            info.contains("aof_rewrite_in_progress:0")
                && info.contains("aof_last_bgrewrite_status:ok")
        }),
        "the AOF rewrite did not end well: {info}"
    );
    let aof_dir = orc.record().dir.join("aof_0-aof");
    let base: Vec<u8> = std::fs::read_dir(&aof_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".base."))
        .flat_map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    let text = String::from_utf8_lossy(&base);
    assert!(
        text.contains("AI.TENSORSET") && text.contains("AI.MODELSTORE"),
        "the AOF base holds the commands"
    );
    orc.stop().unwrap();
    let orc = launch(&static_host(), &state, s).unwrap();
    let mut con = connect(&orc.addresses()[0]);
    line(&mut con, "AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 y").unwrap();
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET y BLOB").unwrap())),
        [9.5, 11.0]
    );
    orc.stop().unwrap();
}

#[test]
fn cluster_shards_route_ai_commands_by_slot() {
    let state = State::new();
    let orc = start(&state, "aicluster", 3, &[]);
    let addrs = orc.addresses();
    // Every AI command with keys goes to the shard owning the slot (MOVED elsewhere).
    for key in ["tensor_a", "{m}.model", "zz"] {
        let mut accepted = 0;
        for a in &addrs {
            let mut con = connect(a);
            match cmd(
                &mut con,
                &[
                    b("AI.TENSORSET"),
                    key.as_bytes(),
                    b("FLOAT"),
                    b("1"),
                    b("VALUES"),
                    b("1"),
                ],
            ) {
                Ok(_) => accepted += 1,
                Err(e) => assert_eq!(e.code(), Some("MOVED"), "{e}"),
            }
        }
        assert_eq!(accepted, 1, "{key}");
    }
    // A model run with keys in one slot works on its shard; keys across slots are refused.
    let owner = addrs
        .iter()
        .find(|a| {
            let mut con = connect(a);
            redis::cmd("CLUSTER")
                .arg("COUNTKEYSINSLOT")
                .arg(orc_client::hash_slot(b"{m}") as i64)
                .query::<i64>(&mut con)
                .is_ok()
                && line(&mut con, "AI.TENSORGET {m}.model").is_ok()
        })
        .unwrap()
        .clone();
    let mut con = connect(&owner);
    store_linear(&mut con, "{m}.lin");
    line(&mut con, "AI.TENSORSET {m}.x FLOAT 1 3 VALUES 1 2 3").unwrap();
    line(
        &mut con,
        "AI.MODELEXECUTE {m}.lin INPUTS 1 {m}.x OUTPUTS 1 {m}.y",
    )
    .unwrap();
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET {m}.y BLOB").unwrap())),
        [22.5, 27.0]
    );
    let e = line(
        &mut con,
        "AI.MODELEXECUTE {m}.lin INPUTS 1 {m}.x OUTPUTS 1 other_y",
    )
    .unwrap_err();
    assert!(matches!(e.code(), Some("CROSSSLOT") | Some("MOVED")), "{e}");
    orc.stop().unwrap();
}

#[test]
fn scripts_survive_restarts_and_aof_rewrites_too() {
    let state = State::new();
    for aof in [false, true] {
        let mut s = ai_settings(if aof { "saof" } else { "srdb" }, 1, &[]);
        if aof {
            s.redis.extra.insert("appendonly".into(), "yes".into());
            s.redis
                .extra
                .insert("aof-use-rdb-preamble".into(), "no".into());
        } else {
            s.redis.checkpoints = Some(orc_core::Checkpoints {
                every_secs: 900,
                min_changes: 1,
            });
        }
        let orc = launch(&static_host(), &state, s.clone()).unwrap();
        let mut con = admin_connect(state.path(), &s.db_identifier, &orc.addresses()[0]);
        let src = std::fs::read(data_file("scripts/ops.py")).unwrap();
        cmd(
            &mut con,
            &[
                b("AI.SCRIPTSTORE"),
                b("ops"),
                b("CPU"),
                b("ENTRY_POINTS"),
                b("1"),
                b("scale"),
                b("SOURCE"),
                &src,
            ],
        )
        .unwrap();
        cmd(
            &mut con,
            &[
                b("AI.SCRIPTSET"),
                b("leg"),
                b("CPU"),
                b("SOURCE"),
                b("def double(a):\n    return a * 2\n"),
            ],
        )
        .unwrap();
        line(&mut con, "AI.TENSORSET a FLOAT 2 VALUES 1 2").unwrap();
        if aof {
            redis::cmd("BGREWRITEAOF")
                .query::<String>(&mut con)
                .unwrap();
            assert!(wait_for(std::time::Duration::from_secs(10), || {
                let info: String = redis::cmd("INFO")
                    .arg("persistence")
                    .query(&mut con)
                    .unwrap();
                info.contains("aof_rewrite_in_progress:0")
                    && info.contains("aof_last_bgrewrite_status:ok")
            }));
        }
        orc.stop().unwrap();
        let orc = launch(&static_host(), &state, s).unwrap();
        let mut con = connect(&orc.addresses()[0]);
        line(
            &mut con,
            "AI.SCRIPTEXECUTE ops scale INPUTS 1 a ARGS 1 3 OUTPUTS 1 o",
        )
        .unwrap();
        assert_eq!(
            f32_from(&bulk(&line(&mut con, "AI.TENSORGET o BLOB").unwrap())),
            [3.0, 6.0],
            "aof={aof}"
        );
        line(&mut con, "AI.SCRIPTRUN leg double INPUTS a OUTPUTS d").unwrap();
        assert_eq!(
            f32_from(&bulk(&line(&mut con, "AI.TENSORGET d BLOB").unwrap())),
            [2.0, 4.0],
            "aof={aof}"
        );
        orc.stop().unwrap();
    }
}

const SPIN: &str = "def spin(a):\n    while True:\n        a = a + 1\n    return a\n";

/// A looping script `spin`, the linear model `free` and its input `x`.
fn spin_and_free(con: &mut redis::Connection) {
    scriptset(con, "spin", SPIN).unwrap();
    store_linear(con, "free");
    line(con, "AI.TENSORSET x FLOAT 1 3 VALUES 1 2 3").unwrap();
}

/// Run `words` on a new connection to `addr` (for requests that block).
fn line_at(addr: &str, words: &str) -> redis::RedisResult<Value> {
    line(&mut connect(addr), words)
}

#[test]
fn timeouts_answer_clients_stop_runs_and_free_workers() {
    use std::time::{Duration, Instant};
    let state = State::new();
    let orc = start(
        &state,
        "timeout",
        1,
        &["THREADS_PER_QUEUE", "1", "MODEL_EXECUTION_TIMEOUT", "8000"],
    );
    let addr = orc.addresses()[0].clone();
    let mut con = connect(&addr);
    let blob = std::fs::read(data_file("models/linear.onnx")).unwrap();
    // A truncated model is an error, and the server carries on.
    let e = err_text(cmd(
        &mut con,
        &[
            b("AI.MODELSTORE"),
            b("cut"),
            b("ONNX"),
            b("CPU"),
            b("BLOB"),
            &blob[..blob.len() / 2],
        ],
    ));
    assert!(e.starts_with("ERR "), "{e}");
    spin_and_free(&mut con);
    // A looping script under TIMEOUT 200 is answered at the timeout, not when it ends,
    // writes nothing, and is stopped: the only worker runs the next request at once.
    let t = Instant::now();
    let r = line(
        &mut con,
        "AI.SCRIPTRUN spin spin TIMEOUT 200 INPUTS x OUTPUTS y",
    )
    .unwrap();
    assert_eq!(r, Value::SimpleString("TIMEDOUT".into()));
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let t = Instant::now();
    line(&mut con, "AI.MODELEXECUTE free INPUTS 1 x OUTPUTS 1 z").unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "the worker was not freed: {:?}",
        t.elapsed()
    );
    assert_eq!(
        redis::cmd("EXISTS")
            .arg("y")
            .query::<i64>(&mut con)
            .unwrap(),
        0
    );
    // A request waiting in the queue behind a running one is answered at its TIMEOUT too.
    let a = addr.clone();
    let spinner = std::thread::spawn(move || {
        line_at(&a, "AI.SCRIPTRUN spin spin TIMEOUT 1500 INPUTS x OUTPUTS y")
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let r = line(
        &mut con,
        "AI.MODELEXECUTE free INPUTS 1 x OUTPUTS 1 q TIMEOUT 100",
    )
    .unwrap();
    assert_eq!(r, Value::SimpleString("TIMEDOUT".into()));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(
        spinner.join().unwrap().unwrap(),
        Value::SimpleString("TIMEDOUT".into())
    );
    assert_eq!(
        redis::cmd("EXISTS")
            .arg("q")
            .query::<i64>(&mut con)
            .unwrap(),
        0
    );
    // MINBATCHSIZE without MINBATCHTIMEOUT holds only its own model's requests.
    cmd(
        &mut con,
        &[
            b("AI.MODELSTORE"),
            b("held"),
            b("ONNX"),
            b("CPU"),
            b("BATCHSIZE"),
            b("4"),
            b("MINBATCHSIZE"),
            b("2"),
            b("BLOB"),
            &blob,
        ],
    )
    .unwrap();
    let a = addr.clone();
    let holder = std::thread::spawn(move || {
        line_at(
            &a,
            "AI.MODELEXECUTE held INPUTS 1 x OUTPUTS 1 h TIMEOUT 1500",
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(
        line(
            &mut con,
            "AI.MODELEXECUTE free INPUTS 1 x OUTPUTS 1 z TIMEOUT 1000"
        )
        .unwrap(),
        Value::Okay
    );
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(
        holder.join().unwrap().unwrap(),
        Value::SimpleString("TIMEDOUT".into())
    );
    orc.stop().unwrap();
    // Without TIMEOUT, MODEL_EXECUTION_TIMEOUT stops the run and frees the worker.
    let orc = start(
        &state,
        "exectimeout",
        1,
        &["THREADS_PER_QUEUE", "1", "MODEL_EXECUTION_TIMEOUT", "1000"],
    );
    let mut con = connect(&orc.addresses()[0]);
    spin_and_free(&mut con);
    let t = Instant::now();
    let e = err_text(line(&mut con, "AI.SCRIPTRUN spin spin INPUTS x OUTPUTS y"));
    assert!(e.contains("MODEL_EXECUTION_TIMEOUT"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    line(&mut con, "AI.MODELEXECUTE free INPUTS 1 x OUTPUTS 1 z").unwrap();
    let info = text(&bulk(
        &redis::cmd("INFO")
            .arg("ai_execution")
            .query::<Value>(&mut con)
            .unwrap(),
    ));
    assert!(info.contains("ai_runs_timed_out:1"), "{info}");
    // One operator that cannot be interrupted (six 4000x4000 matrix products, seconds of
    // work on any CPU): the client is answered at the timeout, and a second later the
    // worker is replaced, so the next request runs without waiting for the products.
    line(&mut con, "AI.TENSORSET big FLOAT 4000 4000").unwrap();
    scriptset(
        &mut con,
        "mm",
        "def mm(a):\n    return torch.mm(torch.mm(torch.mm(torch.mm(torch.mm(torch.mm(a, a), a), a), a), a), a)\n",
    )
    .unwrap();
    let t = Instant::now();
    let e = err_text(line(&mut con, "AI.SCRIPTRUN mm mm INPUTS big OUTPUTS out"));
    assert!(e.contains("MODEL_EXECUTION_TIMEOUT"), "{e}");
    line(&mut con, "AI.MODELEXECUTE free INPUTS 1 x OUTPUTS 1 z").unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the worker was not replaced: {:?}",
        t.elapsed()
    );
    let info = text(&bulk(
        &redis::cmd("INFO")
            .arg("ai_execution")
            .query::<Value>(&mut con)
            .unwrap(),
    ));
    assert!(info.contains("ai_workers_given_up:1"), "{info}");
    assert_eq!(
        redis::cmd("EXISTS")
            .arg("out")
            .query::<i64>(&mut con)
            .unwrap(),
        0
    );
    orc.stop().unwrap();
}

#[test]
fn deprecated_and_admin_commands() {
    let state = State::new();
    let orc = start(
        &state,
        "admin",
        1,
        &["BACKENDSPATH", "/nonexistent", "ALLOW_BACKEND_PATHS", "yes"],
    );
    let mut con = admin_connect(state.path(), "admin", &orc.addresses()[0]);
    // Backends load from an explicit path when BACKENDSPATH has none (a site that allows
    // paths at run time).
    let onnx = plugin_file("orc_ai_backend_onnx");
    let r = cmd(
        &mut con,
        &[
            b("AI.CONFIG"),
            b("LOADBACKEND"),
            b("ONNX"),
            onnx.to_str().unwrap().as_bytes(),
        ],
    );
    assert_eq!(r.unwrap(), Value::Okay);
    let torch = plugin_file("orc_ai_backend_torch");
    cmd(
        &mut con,
        &[
            b("AI.CONFIG"),
            b("LOADBACKEND"),
            b("TORCH"),
            torch.to_str().unwrap().as_bytes(),
        ],
    )
    .unwrap();
    let e = err_text(line(
        &mut con,
        "AI.CONFIG LOADBACKEND ONNX /elsewhere/liborc_ai_backend_onnx.so",
    ));
    assert!(e.contains("already loaded"), "{e}");
    // AI.MODELSET (deprecated form) and AI.MODELRUN.
    let blob = std::fs::read(data_file("models/linear.onnx")).unwrap();
    assert_eq!(
        cmd(
            &mut con,
            &[
                b("AI.MODELSET"),
                b("m"),
                b("ONNX"),
                b("CPU"),
                b("TAG"),
                b("old"),
                b("BLOB"),
                &blob
            ]
        )
        .unwrap(),
        Value::Okay
    );
    line(&mut con, "AI.TENSORSET x FLOAT 1 3 VALUES 1 0 0").unwrap();
    line(&mut con, "AI.MODELRUN m TIMEOUT 5000 INPUTS x OUTPUTS y").unwrap();
    assert_eq!(
        f32_from(&bulk(&line(&mut con, "AI.TENSORGET y BLOB").unwrap())),
        [1.5, 1.0]
    );
    // Scripts: _SCRIPTSCAN lists key and tag; SCRIPTDEL removes.
    cmd(
        &mut con,
        &[
            b("AI.SCRIPTSET"),
            b("s1"),
            b("CPU"),
            b("TAG"),
            b("t9"),
            b("SOURCE"),
            b("def f(a):\n    return a\n"),
        ],
    )
    .unwrap();
    let scan = array(line(&mut con, "AI._SCRIPTSCAN").unwrap());
    assert_eq!(
        scan,
        vec![Value::Array(vec![
            Value::BulkString(b"s1".to_vec()),
            Value::BulkString(b"t9".to_vec())
        ])]
    );
    assert_eq!(
        err_text(line(&mut con, "AI._SCRIPTSCAN extra")),
        "ERR wrong number of arguments for 'ai._scriptscan' command"
    );
    assert_eq!(line(&mut con, "AI.SCRIPTDEL s1").unwrap(), Value::Okay);
    assert!(array(line(&mut con, "AI._SCRIPTSCAN").unwrap()).is_empty());
    assert_eq!(line(&mut con, "AI.CONFIG GET NOSUCH").unwrap(), Value::Nil);
    orc.stop().unwrap();
}
