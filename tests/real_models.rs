//! Real models through orc-ai: a ResNet-18, a transformer encoder block, an MLP and a
//! scikit-learn pipeline (scaler + random forest), made at test time from a seeded script
//! (`tests/models/make_models.py`) and run on ONNX Runtime and tract (ONNX) and libtorch
//! (TorchScript), each output compared with the reference runtime's (torch, scikit-learn),
//! tract with INTRA_OP_PARALLELISM 2 (its pool seen working), libtorch with 1 (no BLAS pool
//! computing beside its worker), every runtime on the cores its thread setting allows
//! (ONNX Runtime, tract, libtorch, TensorFlow; 1 and 2 threads); and a long ONNX Runtime run
//! stopped at the execution timeout; and the networks made in TensorFlow
//! (`tests/models/make_tf_models.py`) as frozen graphs and TFLite models, run on the TF and
//! TFLITE backends and compared with TensorFlow and the TFLite interpreter, or refused with
//! the reason where tract cannot run them (docs/models.md).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use orc_tests::{models::*, *};
use redis::Value;

/// Largest difference accepted, relative to the output's magnitude.
const TOLERANCE: f32 = 1e-4;

/// The tests here load both CPUs of a small machine; run them one at a time, so that the
/// execution-timeout test measures the runtime's terminate flag, not the other test's load
/// (the flag is checked between operators, and a starved operator can outlast the grace
/// second after which a worker is given up).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn real_models_match_their_reference_on_every_runtime() {
    let _one = one_at_a_time();
    let models = real_models_in(Path::new(env!("CARGO_TARGET_TMPDIR")));
    assert_eq!(models.len(), 4, "{models:?}");
    let state = State::new();
    let lib = onnxruntime_lib().display().to_string();
    let slow = ["MODEL_EXECUTION_TIMEOUT", "600000"];
    let ort = start_ai(
        &state,
        "ort",
        1,
        &[
            &["ONNX_RUNTIME", "onnxruntime", "ONNXRUNTIME_LIB", &lib][..],
            &slow,
        ]
        .concat(),
    );
    // tract with two threads inside operators: its matrix products run on a pool.
    let tract = start_ai(
        &state,
        "tract",
        1,
        &[
            &["ONNX_RUNTIME", "tract", "INTRA_OP_PARALLELISM", "2"][..],
            &slow,
        ]
        .concat(),
    );
    let mut on_ort = connect(&ort.addresses()[0]);
    let mut on_tract = connect(&tract.addresses()[0]);
    let mut report = Vec::new();
    for m in &models {
        let want = m.reference();
        let mut check = |con: &mut redis::Connection, runtime: &str, backend: &str, fmt: &str| {
            let got = store_and_run(con, backend, m, &m.file(fmt));
            let got = got.unwrap_or_else(|e| panic!("{} on {runtime}: {e}", m.name));
            let diff = max_rel_diff(&got, &want);
            report.push(format!(
                "{:<9} {runtime:<12} max rel diff {diff:.2e}",
                m.name
            ));
            assert!(
                diff < TOLERANCE,
                "{} on {runtime}: off by {diff} relative to the reference",
                m.name
            );
        };
        if m.formats.iter().any(|f| f == "onnx") {
            check(&mut on_ort, "onnxruntime", "ONNX", "onnx");
            check(&mut on_tract, "tract", "ONNX", "onnx");
        }
        if m.formats.iter().any(|f| f == "pt") {
            check(&mut on_ort, "libtorch", "TORCH", "pt");
        }
    }
    eprintln!("{}", report.join("\n"));
    // INTRA_OP_PARALLELISM is honoured by tract: its pool's threads did part of the work.
    let pool = thread_cpu_ticks(&mut on_tract, "orc-ai-tract-");
    assert_eq!(pool.len(), 2, "tract pool threads: {pool:?}");
    assert!(
        pool.iter().any(|t| *t > 0),
        "tract's pool threads never ran: {pool:?}"
    );
    ort.stop().unwrap();
    tract.stop().unwrap();
}

/// What a TF-made model does on a runtime: `None`, it runs and matches its reference;
/// `Some(reason)`, it is refused with an error that names `reason`.
fn tf_model_runs(runtime: &str, model: &str, format: &str) -> Option<&'static str> {
    match (runtime, model, format) {
        // TensorFlow runs every graph TensorFlow made, LiteRT every TFLite model.
        ("tensorflow" | "litert", ..) => None,
        // tract-tensorflow 0.23 types a Pad's paddings as symbolic dimensions and refuses
        // the int32 constant Keras writes; it cannot translate the encoder's graph at all.
        (_, "resnet18", "pb") => Some("Pad"),
        (_, "encoder", "pb") => Some("Invalid GraphDef"),
        // tract-tflite needs a bias on FULLY_CONNECTED; the converter leaves it out where
        // a matrix product is followed by an ADD of another shape (the encoder's projections).
        (_, "encoder", "tflite") => Some("FULLY_CONNECTED"),
        _ => None,
    }
}

#[test]
fn tensorflow_models_match_tensorflow_or_are_refused_with_the_reason() {
    let _one = one_at_a_time();
    let models = tf_models_in(Path::new(env!("CARGO_TARGET_TMPDIR")));
    assert_eq!(models.len(), 3, "{models:?}");
    let state = State::new();
    let slow = ["MODEL_EXECUTION_TIMEOUT", "600000"];
    let lib = tensorflow_lib().display().to_string();
    let on_tf = start_ai(
        &state,
        "tensorflow",
        1,
        &[
            &["TF_RUNTIME", "tensorflow", "TENSORFLOW_LIB", &lib][..],
            &slow,
        ]
        .concat(),
    );
    let on_tract = start_ai(
        &state,
        "tf-tract",
        1,
        &[
            &["TF_RUNTIME", "tract", "TFLITE_RUNTIME", "tract"][..],
            &slow,
        ]
        .concat(),
    );
    let litert = litert_lib().display().to_string();
    let on_litert = start_ai(
        &state,
        "tf-litert",
        1,
        &[
            &["TFLITE_RUNTIME", "litert", "LITERT_LIB", &litert][..],
            &slow,
        ]
        .concat(),
    );
    let mut report = Vec::new();
    // Which runtime runs TF and TFLITE models on each shard (the TensorFlow shard finds no
    // LiteRT library, so its TFLITE models fall back to tract).
    let shards = [
        (
            &on_tf,
            vec![("TF", "pb", "tensorflow"), ("TFLITE", "tflite", "tract")],
        ),
        (
            &on_tract,
            vec![("TF", "pb", "tract"), ("TFLITE", "tflite", "tract")],
        ),
        (&on_litert, vec![("TFLITE", "tflite", "litert")]),
    ];
    for (orc, runs) in shards {
        let mut con = connect(&orc.addresses()[0]);
        let backends = line(&mut con, "AI.CONFIG GET BACKENDS");
        for m in &models {
            for (backend, format, on) in runs.iter().copied() {
                let got = store_and_run(&mut con, backend, m, &m.file(format));
                let name = format!("{:<9} {backend:<7} on {on:<10}", m.name);
                match (got, tf_model_runs(on, &m.name, format)) {
                    (Ok(got), None) => {
                        let diff = max_rel_diff(&got, &m.reference_for(format));
                        report.push(format!("{name} max rel diff {diff:.2e}"));
                        assert!(
                            diff < TOLERANCE,
                            "{name}: off by {diff} relative to the reference"
                        );
                    }
                    (Err(e), Some(reason)) => {
                        report.push(format!("{name} refused: {e}"));
                        assert!(e.contains(reason), "{name}: {e}");
                    }
                    (Ok(_), Some(reason)) => panic!(
                        "{name} now runs (expected a refusal naming {reason}): check its output \
                         and update tf_model_runs and docs/models.md"
                    ),
                    (Err(e), None) => panic!("{name}: {e} (backends: {backends:?})"),
                }
            }
        }
        // The shard is whole after the refusals.
        assert_eq!(
            line(&mut con, "PING").unwrap(),
            Value::SimpleString("PONG".into())
        );
    }
    eprintln!("{}", report.join("\n"));
    on_tf.stop().unwrap();
    on_tract.stop().unwrap();
    on_litert.stop().unwrap();
}

/// CPU time (clock ticks) of each thread of the shard behind `con` whose name starts with
/// `prefix`.
fn thread_cpu_ticks(con: &mut redis::Connection, prefix: &str) -> Vec<u64> {
    threads_cpu_ticks(con)
        .into_values()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(_, ticks)| ticks)
        .collect()
}

/// The name and CPU time (clock ticks) of every thread of the shard behind `con`, by id.
fn threads_cpu_ticks(
    con: &mut redis::Connection,
) -> std::collections::BTreeMap<u64, (String, u64)> {
    let pid = info_section(con, "server")
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .unwrap()
        .trim()
        .to_string();
    let mut threads = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let Ok(tid) = dir.file_name().unwrap().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue; // ended meanwhile
        };
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let utime: u64 = rest[11].parse().unwrap();
        let stime: u64 = rest[12].parse().unwrap();
        threads.insert(tid, (comm.trim().to_string(), utime + stime));
    }
    threads
}

/// The cores a shard kept busy, all its threads together, while one client ran `key` on
/// tensor `input` back to back for about `secs` seconds.
fn cores_while_running(con: &mut redis::Connection, key: &str, input: &str, secs: f64) -> f64 {
    // Once first, untimed: a runtime plans or compiles for a new input shape on one thread.
    execute(con, key, input).unwrap();
    let before = threads_cpu_ticks(con);
    let start = std::time::Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        execute(con, key, input).unwrap();
    }
    let after = threads_cpu_ticks(con);
    let wall = start.elapsed().as_secs_f64();
    // SAFETY: sysconf only reads a constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // Each thread's own ticks since `before`: a thread that ended in between (a model's
    // warm-up run) takes its ticks with it; the runtimes' pools live as long as the shard.
    let ticks: u64 = after
        .iter()
        .map(|(tid, (_, t))| t - before.get(tid).map_or(0, |(_, was)| (*was).min(*t)))
        .sum();
    ticks as f64 / per_second / wall
}

#[test]
fn every_runtime_keeps_to_its_intra_op_threads() {
    // INTRA_OP_PARALLELISM reaches every runtime: with 1 thread (and INTER_OP_PARALLELISM
    // 1) a ResNet-18 keeps one core of the shard busy, with 2 the runtime computes on a
    // second core. Measured from outside, as every thread's CPU time over wall time, so
    // that it holds wherever a runtime does its work (TensorFlow runs a graph on its own
    // inter-op thread while orc-ai's worker waits).
    let _one = one_at_a_time();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let resnet = |set: Vec<RealModel>| set.into_iter().find(|m| m.name == "resnet18").unwrap();
    let (onnx, tf) = (resnet(real_models_in(tmp)), resnet(tf_models_in(tmp)));
    let ort = onnxruntime_lib().display().to_string();
    let tflib = tensorflow_lib().display().to_string();
    let litert = litert_lib().display().to_string();
    let cases: [(&str, Vec<&str>, &str, &RealModel, &str); 5] = [
        (
            "onnxruntime",
            vec!["ONNX_RUNTIME", "onnxruntime", "ONNXRUNTIME_LIB", &ort],
            "ONNX",
            &onnx,
            "onnx",
        ),
        (
            "tract",
            vec!["ONNX_RUNTIME", "tract"],
            "ONNX",
            &onnx,
            "onnx",
        ),
        ("libtorch", vec![], "TORCH", &onnx, "pt"),
        (
            "tensorflow",
            vec!["TF_RUNTIME", "tensorflow", "TENSORFLOW_LIB", &tflib],
            "TF",
            &tf,
            "pb",
        ),
        (
            "litert",
            vec!["TFLITE_RUNTIME", "litert", "LITERT_LIB", &litert],
            "TFLITE",
            &tf,
            "tflite",
        ),
    ];
    let state = State::new();
    let mut report = Vec::new();
    let mut wrong = Vec::new();
    for (runtime, args, backend, m, format) in &cases {
        for threads in ["1", "2"] {
            let settings = [
                "INTRA_OP_PARALLELISM",
                threads,
                "INTER_OP_PARALLELISM",
                "1",
                "THREADS_PER_QUEUE",
                "1",
                "MODEL_EXECUTION_TIMEOUT",
                "600000",
            ];
            let orc = start_ai(
                &state,
                &format!("threads-{runtime}-{threads}"),
                1,
                &[&args[..], &settings[..]].concat(),
            );
            let mut con = connect(&orc.addresses()[0]);
            // Stored, run once (and checked), then timed.
            let got = store_and_run(&mut con, backend, m, &m.file(format)).unwrap();
            let diff = max_rel_diff(&got, &m.reference_for(format));
            assert!(diff < TOLERANCE, "{runtime}: off by {diff}");
            let key = format!("{}-{backend}", m.name);
            let cores = cores_while_running(&mut con, &key, "in", 1.5);
            orc.stop().unwrap();
            report.push(format!(
                "{runtime:<12} INTRA_OP_PARALLELISM {threads}: {cores:.2} cores"
            ));
            let fits = if threads == "1" {
                cores <= 1.15
            } else {
                // tract splits fewer of its operators (and runs unoptimised in a debug
                // build): about 1.35 cores here, the other runtimes 1.6-2.
                cores >= 1.2
            };
            if !fits {
                wrong.push(report.last().unwrap().clone());
            }
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        wrong.is_empty(),
        "not on the threads asked for (1: at most 1.15 cores, 2: at least 1.2): {wrong:?}\n{}",
        report.join("\n")
    );
}

#[test]
fn torch_computes_on_the_intra_op_threads_only() {
    let _one = one_at_a_time();
    // libtorch's matrix products go to the BLAS it was built with; Debian's libtorch uses
    // OpenBLAS, whose own thread pool (one thread per core, spinning between calls) ignored
    // INTRA_OP_PARALLELISM: with 1 set, a batch of 32 sequences through the encoder kept a
    // second core busy (as much CPU as the worker itself), taken from Redis and its clients.
    let models = real_models_in(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let m = models.iter().find(|m| m.name == "encoder").unwrap();
    let state = State::new();
    let orc = start_ai(
        &state,
        "torchthreads",
        1,
        &["INTRA_OP_PARALLELISM", "1", "THREADS_PER_QUEUE", "1"],
    );
    let mut con = connect(&orc.addresses()[0]);
    let want = m.reference();
    let got = store_and_run(&mut con, "TORCH", m, &m.file("pt")).unwrap();
    assert!(max_rel_diff(&got, &want) < TOLERANCE);
    put_input_repeated(&mut con, "batch", m, 32 / m.input_shape[0]);
    let worker = |t: &std::collections::BTreeMap<u64, (String, u64)>| -> u64 {
        t.values()
            .filter(|(name, _)| name.starts_with("orc-ai-CPU"))
            .map(|(_, ticks)| ticks)
            .sum()
    };
    let before = threads_cpu_ticks(&mut con);
    let start = std::time::Instant::now();
    // About a second of runs (100 ticks of the worker), at most 20 s on a loaded machine.
    while worker(&threads_cpu_ticks(&mut con)) < worker(&before) + 100
        && start.elapsed() < std::time::Duration::from_secs(20)
    {
        for _ in 0..50 {
            execute(&mut con, "encoder-TORCH", "batch").unwrap();
        }
    }
    let after = threads_cpu_ticks(&mut con);
    let ran = worker(&after) - worker(&before);
    // Every thread but the worker and Redis's main thread: a BLAS or OpenMP pool.
    let others: Vec<(String, u64)> = after
        .iter()
        .filter(|(_, (name, _))| !name.starts_with("orc-ai-CPU") && name != "redis-server")
        .map(|(tid, (name, ticks))| {
            let was = before.get(tid).map_or(0, |(_, t)| *t);
            (name.clone(), ticks - was)
        })
        .filter(|(_, ticks)| *ticks > 0)
        .collect();
    let other: u64 = others.iter().map(|(_, t)| t).sum();
    assert!(ran >= 50, "the worker ran for {ran} ticks only");
    assert!(
        other * 5 <= ran,
        "threads beside the one intra-op thread used {other} ticks while the worker used \
         {ran}: {others:?}"
    );
    orc.stop().unwrap();
}

#[test]
fn onnxruntime_runs_stop_at_the_execution_timeout() {
    const IMAGES: usize = 96;
    let _one = one_at_a_time();
    // ResNet-18 on 96 images on one thread takes about 3 s here (without the terminate
    // flag the worker outlives the timeout by a second and is given up: checked by
    // disabling it); the runtime's terminate flag must stop it at MODEL_EXECUTION_TIMEOUT,
    // so that the worker is free again rather than given up and replaced. The flag is
    // looked at between operators: with 256 images one convolution took up to a second,
    // and a run stopped late in one was sometimes given up all the same.
    let models = real_models_in(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let m = models.iter().find(|m| m.name == "resnet18").unwrap();
    let state = State::new();
    let lib = onnxruntime_lib().display().to_string();
    let orc = start_ai(
        &state,
        "ortstop",
        1,
        &[
            "ONNX_RUNTIME",
            "onnxruntime",
            "ONNXRUNTIME_LIB",
            &lib,
            "THREADS_PER_QUEUE",
            "1",
            "INTRA_OP_PARALLELISM",
            "1",
            "MODEL_EXECUTION_TIMEOUT",
            "1000",
        ],
    );
    let mut con = connect(&orc.addresses()[0]);
    redis::cmd("AI.MODELSTORE")
        .arg("net")
        .arg("ONNX")
        .arg("CPU")
        .arg("BLOB")
        .arg(std::fs::read(m.file("onnx")).unwrap())
        .query::<()>(&mut con)
        .unwrap();
    assert_eq!(m.input_shape[0], 1, "one image");
    put_input_repeated(&mut con, "many", m, IMAGES);
    let t = std::time::Instant::now();
    let e = err_text(line(
        &mut con,
        "AI.MODELEXECUTE net INPUTS 1 many OUTPUTS 1 out",
    ));
    assert!(e.contains("MODEL_EXECUTION_TIMEOUT"), "{e}");
    assert!(t.elapsed().as_secs_f64() < 5.0, "{:?}", t.elapsed());
    // The same worker runs the next request.
    put_input_repeated(&mut con, "one", m, 1);
    line(&mut con, "AI.MODELEXECUTE net INPUTS 1 one OUTPUTS 1 out").unwrap();
    let info = info_section(&mut con, "ai_execution");
    assert!(info.contains("ai_runs_timed_out:1"), "{info}");
    assert!(info.contains("ai_workers_given_up:0"), "{info}");
    orc.stop().unwrap();
}
