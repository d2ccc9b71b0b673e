//! The LiteRT backend of TFLITE (Google's TFLite runtime, loaded at run time): batches of
//! every size through the transformer encoder (whose output shape LiteRT only knows while
//! it runs: the case where it writes past a caller's buffer), damaged and hostile model
//! files refused or run without harm to the shard or its data, clear refusals (GPU, wrong
//! input types and counts, no library), and the runtime named in `AI.INFO`. (The real
//! networks are compared with the TFLite interpreter in `tests/real_models.rs`.)
#![allow(clippy::unwrap_used)]

use std::path::Path;

use orc_tests::{models::*, *};
use redis::Value;

const TOLERANCE: f32 = 1e-4;

fn on_litert(state: &State, id: &str) -> orc_orchestrator::Orchestrator {
    let lib = litert_lib().display().to_string();
    start_ai(
        state,
        id,
        1,
        &["TFLITE_RUNTIME", "litert", "LITERT_LIB", &lib],
    )
}

fn model(name: &str) -> RealModel {
    tf_models_in(Path::new(env!("CARGO_TARGET_TMPDIR")))
        .into_iter()
        .find(|m| m.name == name)
        .unwrap()
}

fn output(con: &mut redis::Connection) -> (Vec<usize>, Vec<f32>) {
    let reply: Vec<Value> = redis::cmd("AI.TENSORGET")
        .arg("out")
        .arg("META")
        .arg("BLOB")
        .query(con)
        .unwrap();
    let Value::Array(dims) = &reply[3] else {
        panic!("{reply:?}")
    };
    let dims = dims
        .iter()
        .map(|d| match d {
            Value::Int(n) => usize::try_from(*n).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    (dims, f32_from(&bulk(&reply[5])))
}

/// A tensor every test sets first and finds unchanged at the end.
fn canary(con: &mut redis::Connection) -> Vec<Value> {
    line(con, "AI.TENSORSET canary FLOAT 2 2 VALUES 1 2 3 4").unwrap();
    array(line(con, "AI.TENSORGET canary VALUES").unwrap())
}

#[test]
fn batches_of_every_size_run_through_a_model_whose_output_shape_changes_while_it_runs() {
    let m = model("encoder");
    let state = State::new();
    let orc = on_litert(&state, "litert-batches");
    let mut con = connect(&orc.addresses()[0]);
    let before = canary(&mut con);
    let got = store_and_run(&mut con, "TFLITE", &m, &m.file("tflite")).unwrap();
    let want = m.reference_for("tflite");
    assert!(max_rel_diff(&got, &want) < TOLERANCE);
    let key = format!("{}-TFLITE", m.name);
    // Growing, shrinking and growing again past every size seen before: LiteRT reports
    // the previous run's output shape until the run, and the output of each batch is the
    // reference repeated.
    for times in [2, 4, 3, 1, 8, 5] {
        put_input_repeated(&mut con, "batch", &m, times);
        execute(&mut con, &key, "batch").unwrap();
        let (dims, values) = output(&mut con);
        let mut shape = m.output_shape.clone();
        shape[0] *= times;
        assert_eq!(dims, shape, "batch x{times}");
        for (k, part) in values.chunks(want.len()).enumerate() {
            let diff = max_rel_diff(part, &want);
            assert!(diff < TOLERANCE, "batch x{times}, item {k}: off by {diff}");
        }
    }
    assert_eq!(
        array(line(&mut con, "AI.TENSORGET canary VALUES").unwrap()),
        before
    );
    orc.stop().unwrap();
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn damaged_and_hostile_models_are_refused_or_run_and_the_shard_keeps_its_data() {
    let state = State::new();
    let orc = on_litert(&state, "litert-hostile");
    let mut con = connect(&orc.addresses()[0]);
    let before = canary(&mut con);
    let (mut refused, mut ran, mut failed) = (0, 0, 0);
    for name in ["mlp", "encoder"] {
        let m = model(name);
        let good = std::fs::read(m.file("tflite")).unwrap();
        let input: Vec<u8> = m.input().iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut shape = vec!["in".to_string(), "FLOAT".into()];
        shape.extend(m.input_shape.iter().map(|d| d.to_string()));
        let mut tensorset = redis::cmd("AI.TENSORSET");
        tensorset.arg(&shape).arg("BLOB").arg(&input);
        tensorset.query::<()>(&mut con).unwrap();
        let mut files = Vec::new();
        // Cut short anywhere: refused.
        for cut in [
            0,
            4,
            8,
            16,
            64,
            good.len() / 3,
            good.len() / 2,
            good.len() - 1,
        ] {
            files.push((format!("{name} cut at {cut}"), good[..cut].to_vec(), true));
        }
        // A few bytes changed at random: refused, or run to an answer or an error.
        let mut rng = Rng(0x5eed ^ good.len() as u64);
        for k in 0..40 {
            let mut bad = good.clone();
            for _ in 0..1 + k % 8 {
                let at = rng.below(bad.len());
                bad[at] = rng.next() as u8;
            }
            files.push((format!("{name} changed #{k}"), bad, false));
        }
        for (what, blob, must_refuse) in files {
            let stored = redis::cmd("AI.MODELSTORE")
                .arg("bad")
                .arg("TFLITE")
                .arg("CPU")
                .arg("BLOB")
                .arg(blob)
                .query::<()>(&mut con);
            match stored {
                Err(e) => {
                    refused += 1;
                    let e = e.to_string();
                    assert!(
                        e.contains("Invalid TFLite model") || e.contains("LiteRT"),
                        "{what}: {e}"
                    );
                }
                Ok(()) => {
                    assert!(!must_refuse, "{what} was stored");
                    match execute(&mut con, "bad", "in") {
                        Ok(()) => ran += 1,
                        Err(_) => failed += 1,
                    }
                }
            }
        }
        assert_eq!(
            line(&mut con, "PING").unwrap(),
            Value::SimpleString("PONG".into())
        );
    }
    eprintln!("damaged models: {refused} refused, {ran} ran, {failed} failed when run");
    assert!(refused >= 16, "every cut file is refused");
    assert_eq!(
        array(line(&mut con, "AI.TENSORGET canary VALUES").unwrap()),
        before
    );
    orc.stop().unwrap();
}

#[test]
fn litert_refuses_clearly_and_names_itself() {
    let m = model("mlp");
    let blob = std::fs::read(m.file("tflite")).unwrap();
    let state = State::new();
    let orc = on_litert(&state, "litert-refusals");
    let mut con = connect(&orc.addresses()[0]);
    let store = |con: &mut redis::Connection, device: &str| {
        redis::cmd("AI.MODELSTORE")
            .arg("m")
            .arg("TFLITE")
            .arg(device)
            .arg("BLOB")
            .arg(&blob)
            .query::<()>(con)
    };
    let e = store(&mut con, "GPU:0").unwrap_err().to_string();
    assert!(e.contains("LiteRT") && e.contains("CPU only"), "{e}");
    store(&mut con, "CPU").unwrap();
    let info = format!("{:?}", line(&mut con, "AI.INFO m").unwrap());
    assert!(info.contains("TFLITE"), "{info}");
    let backends = format!("{:?}", line(&mut con, "AI.CONFIG GET BACKENDS").unwrap());
    assert!(backends.contains("litert 2."), "{backends}");
    // An input of another type, or too many inputs.
    let mut shape = vec!["i".to_string(), "INT64".into()];
    shape.extend(m.input_shape.iter().map(|d| d.to_string()));
    let count: usize = m.input_shape.iter().product();
    redis::cmd("AI.TENSORSET")
        .arg(&shape)
        .arg("BLOB")
        .arg(vec![0u8; count * 8])
        .query::<()>(&mut con)
        .unwrap();
    let e = err_text(line(&mut con, "AI.MODELEXECUTE m INPUTS 1 i OUTPUTS 1 o"));
    assert!(e.contains("must be float32"), "{e}");
    let e = err_text(line(&mut con, "AI.MODELEXECUTE m INPUTS 2 i i OUTPUTS 1 o"));
    assert!(e.contains("does not match model definition"), "{e}");
    // A rank LiteRT cannot hold.
    line(&mut con, "AI.TENSORSET r FLOAT 1 1 1 1 1 1 1 1 1 VALUES 1").unwrap();
    let e = err_text(line(&mut con, "AI.MODELEXECUTE m INPUTS 1 r OUTPUTS 1 o"));
    assert!(!e.is_empty(), "a rank-9 input ran");
    assert_eq!(
        line(&mut con, "PING").unwrap(),
        Value::SimpleString("PONG".into())
    );
    orc.stop().unwrap();
    // LiteRT asked for where there is no library: a clear error, not tract.
    let none = start_ai(&state, "litert-none", 1, &["TFLITE_RUNTIME", "litert"]);
    let mut con = connect(&none.addresses()[0]);
    let e = store(&mut con, "CPU").unwrap_err().to_string();
    assert!(e.contains("no LiteRT library was found"), "{e}");
    none.stop().unwrap();
}
