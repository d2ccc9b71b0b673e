//! orc-ai under hostile and faulty input, against real `redis-server` processes loading
//! the **release** and the debug module: every case checks the reply, that the server
//! still answers, and that data stored before is intact. Hostile payloads are kept in
//! `tests/data/hostile` or built here from real objects (DUMP payloads mutated with their
//! checksum fixed, so RESTORE reaches the module's loader).
#![allow(clippy::unwrap_used)]

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use orc_tests::{
    shard::{Shard, dump_body, redump},
    *,
};
use redis::Value;

/// The modules under test: release first (what users run), then debug (what the demo runs).
fn modules() -> Vec<PathBuf> {
    let release = target_dir().parent().unwrap().join("release/liborc_ai.so");
    assert!(
        release.exists(),
        "{} is missing: run `cargo build --release -p orc-ai` (scripts/test does)",
        release.display()
    );
    vec![release, plugin_file("orc_ai")]
}

/// The directory the debug backends are in.
fn backends() -> String {
    target_dir().display().to_string()
}

fn start(module: &std::path::Path, dir: &tempfile::TempDir, extra: &[&str]) -> Shard {
    let b = backends();
    let mut args = vec!["BACKENDSPATH", b.as_str()];
    args.extend_from_slice(extra);
    Shard::start(dir.path(), module, &args, &[])
}

/// Run `case` against a fresh shard of each module, with sentinel data planted; afterwards
/// the server must be alive with the sentinel intact, and it is shut down.
fn each_module(extra: &[&str], case: impl Fn(&mut Shard, &mut redis::Connection, &Sentinel)) {
    for module in modules() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = start(&module, &dir, extra);
        let mut c = con(&s);
        let sentinel = Sentinel::plant(&mut c);
        case(&mut s, &mut c, &sentinel);
        sentinel.check(&mut s, &format!("after the case, {}", module.display()));
        s.shutdown(false);
    }
}

fn con(s: &Shard) -> redis::Connection {
    connect(&s.addr)
}

/// Data every case must leave untouched, and its check.
struct Sentinel;

impl Sentinel {
    fn plant(c: &mut redis::Connection) -> Sentinel {
        redis::cmd("SET")
            .arg("sentinel")
            .arg("still here")
            .query::<()>(c)
            .unwrap();
        line(c, "AI.TENSORSET keep FLOAT 2 VALUES 1.5 -2").unwrap();
        Sentinel
    }

    fn check(&self, s: &mut Shard, what: &str) {
        assert!(s.alive(), "{what}: the server died\n{}", s.log());
        let mut c = con(s);
        assert_eq!(
            redis::cmd("PING").query::<String>(&mut c).unwrap(),
            "PONG",
            "{what}"
        );
        assert_eq!(
            redis::cmd("GET")
                .arg("sentinel")
                .query::<String>(&mut c)
                .unwrap(),
            "still here",
            "{what}"
        );
        assert_eq!(
            f32_from(&bulk(&line(&mut c, "AI.TENSORGET keep BLOB").unwrap())),
            [1.5, -2.0],
            "{what}"
        );
    }
}

fn dump(c: &mut redis::Connection, key: &str) -> Vec<u8> {
    bulk(&redis::cmd("DUMP").arg(key).query::<Value>(c).unwrap())
}

fn restore(c: &mut redis::Connection, payload: &[u8]) -> redis::RedisResult<Value> {
    redis::cmd("RESTORE")
        .arg("scratch")
        .arg(0)
        .arg(payload)
        .arg("REPLACE")
        .query(c)
}

/// A small deterministic generator (the suite must be reproducible).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn restore_of_truncated_or_lying_payloads_is_an_error_and_nothing_is_lost() {
    each_module(&[], |s, c, sentinel| {
        line(c, "AI.TENSORSET u16 UINT16 1 VALUES 7").unwrap();
        line(c, "AI.TENSORSET str STRING 2 VALUES ab c").unwrap();
        store_linear(c, "lin");
        scriptset(c, "scr", "def f(a):\n    return a\n").unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut accepted, mut refused) = (0, 0);
        for key in ["keep", "u16", "str", "lin", "scr"] {
            let p = dump(c, key);
            let body = dump_body(&p);
            // Every truncation of the value.
            for cut in 1..body.len() {
                match restore(c, &redump(&p, &body[..cut])) {
                    Ok(_) => accepted += 1,
                    Err(_) => refused += 1,
                }
            }
            // Seeded single-byte changes anywhere in the value.
            for _ in 0..200 {
                let mut b = body.to_vec();
                let i = 1 + (rng.next() as usize) % (b.len() - 1);
                b[i] = rng.next() as u8;
                match restore(c, &redump(&p, &b)) {
                    Ok(_) => accepted += 1,
                    Err(_) => refused += 1,
                }
            }
            sentinel.check(s, key);
        }
        assert!(
            refused > 0 && accepted > 0,
            "{accepted} accepted, {refused} refused"
        );
        // The lie of the issue: a UINT16 tensor whose shape says 63 elements over 2 bytes
        // of data. Refused at RESTORE, so it can never reach a TORCH script.
        let p = dump(c, "u16");
        let body = dump_body(&p);
        let at = body
            .windows(5)
            .position(|w| w == [2, 1, 2, 1, 5])
            .expect("ndim 1, dim 1, then the data");
        let mut lie = body.to_vec();
        lie[at + 3] = 63;
        let e = err_text(restore(c, &redump(&p, &lie)));
        assert!(e.contains("Bad data format") || e.contains("ERR"), "{e}");
        assert!(s.log().contains("does not match"), "the log says why");
        sentinel.check(s, "uint16 lie");
        // What was stored is intact and still works.
        line(c, "AI.TENSORSET x FLOAT 1 3 VALUES 1 0 0").unwrap();
        line(c, "AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 y").unwrap();
        assert_eq!(
            f32_from(&bulk(&line(c, "AI.TENSORGET y BLOB").unwrap())),
            [1.5, 1.0]
        );
    });
}

#[test]
fn key_extraction_with_huge_counts_answers_at_once() {
    each_module(&[], |s, c, sentinel| {
        for w in [
            "COMMAND GETKEYS AI.DAGEXECUTE LOAD 18446744073709551614 a b |> AI.TENSORGET a",
            "COMMAND GETKEYS AI.DAGEXECUTE PERSIST 18446744073709551615 a |> AI.TENSORSET a FLOAT 1",
            "COMMAND GETKEYS AI.MODELEXECUTE m INPUTS 9223372036854775807 a OUTPUTS 18446744073709551614 b",
            "COMMAND GETKEYS AI.SCRIPTEXECUTE s f KEYS 18446744073709551614 k INPUTS 1 a",
            "AI.DAGEXECUTE LOAD 18446744073709551614 keep |> AI.TENSORGET keep",
            "AI.MODELEXECUTE m INPUTS 9223372036854775807 a OUTPUTS 1 b",
            "AI.SCRIPTEXECUTE s f INPUTS 18446744073709551615 a",
        ] {
            // Keys or an error, at once (the connection's timeout is 5 s, not forever).
            let _ = line(c, w);
            sentinel.check(s, w);
        }
    });
}

const DEEP: usize = 100_000;

#[test]
fn torchscript_that_could_take_the_server_down_or_reach_outside_is_refused() {
    each_module(&[], |s, c, sentinel| {
        let scriptset = |c: &mut redis::Connection, src: &str| {
            cmd(
                c,
                &[b"AI.SCRIPTSET", b"bad", b"CPU", b"SOURCE", src.as_bytes()],
            )
        };
        let cases = [
            (
                format!(
                    "def f(a):\n    return {}a{}\n",
                    "(".repeat(DEEP),
                    ")".repeat(DEEP)
                ),
                "brackets nest",
            ),
            (
                format!("def f(a):\n    return {}a\n", "-".repeat(DEEP)),
                "operators",
            ),
            (
                format!("def f(a):\n    return {}\n", vec!["a"; DEEP].join("+")),
                "operators",
            ),
            (
                "def f(a):\n    return torch.from_file(\"/etc/passwd\", None, 16, 0)\n".into(),
                "aten::from_file",
            ),
            (
                "def f(a):\n    torch.save(a, \"/tmp/orc-hostile\")\n    return a\n".into(),
                "aten::save",
            ),
        ];
        for (src, expect) in &cases {
            let e = err_text(scriptset(c, src));
            assert!(e.contains(expect), "{expect}: {e}");
            sentinel.check(s, expect);
        }
        assert!(!std::path::Path::new("/tmp/orc-hostile").exists());
        for (file, expect) in [
            ("reads_file.pt", "torch.from_file"),
            ("writes_file.pt", "torch.save"),
            ("ops_from_file.pt", "aten::from_file"),
            ("deep.pt", "brackets nest"),
        ] {
            let blob = std::fs::read(data_file(&format!("hostile/{file}"))).unwrap();
            let e = err_text(cmd(
                c,
                &[b"AI.MODELSTORE", b"m", b"TORCH", b"CPU", b"BLOB", &blob],
            ));
            assert!(e.contains(expect), "{file}: {e}");
            sentinel.check(s, file);
        }
        // 0-d and empty results, and UINT16 inputs, are ordinary tensors.
        let src = "def zero(a):\n    return a.sum()\n\ndef empty(a):\n    return a[0:0]\n\ndef same(a):\n    return a\n";
        cmd(
            c,
            &[
                b"AI.SCRIPTSET",
                b"shapes",
                b"CPU",
                b"SOURCE",
                src.as_bytes(),
            ],
        )
        .unwrap();
        line(c, "AI.TENSORSET x FLOAT 2 3 VALUES 1 2 3 4 5 6").unwrap();
        line(c, "AI.SCRIPTRUN shapes zero INPUTS x OUTPUTS z").unwrap();
        line(c, "AI.SCRIPTRUN shapes empty INPUTS x OUTPUTS e").unwrap();
        let meta =
            |c: &mut redis::Connection, k: &str| match line(c, &format!("AI.TENSORGET {k} META"))
                .unwrap()
            {
                Value::Array(a) => a[3].clone(),
                other => panic!("{other:?}"),
            };
        assert_eq!(meta(c, "z"), Value::Array(vec![]));
        assert_eq!(
            meta(c, "e"),
            Value::Array(vec![Value::Int(0), Value::Int(3)])
        );
        line(c, "AI.TENSORSET u UINT16 3 VALUES 0 1 65535").unwrap();
        line(c, "AI.SCRIPTRUN shapes same INPUTS u OUTPUTS w").unwrap();
        assert_eq!(
            line(c, "AI.TENSORGET w VALUES").unwrap(),
            Value::Array(vec![Value::Int(0), Value::Int(1), Value::Int(65535)])
        );
        sentinel.check(s, "shapes");
    });
}

#[test]
fn work_and_memory_per_request_are_bounded() {
    each_module(&["MAX_DAG_SIZE", "2000"], |s, c, sentinel| {
        // VALUES replies are bounded; BLOB is not.
        line(c, "AI.TENSORSET big UINT8 4194304").unwrap();
        let e = err_text(line(c, "AI.TENSORGET big VALUES"));
        assert!(e.contains("MAX_VALUES_REPLY") && e.contains("BLOB"), "{e}");
        assert_eq!(
            bulk(&line(c, "AI.TENSORGET big BLOB").unwrap()).len(),
            4 << 20
        );
        // A zero-filled tensor larger than MAX_TENSOR_BYTES is refused before allocation.
        let e = err_text(line(c, "AI.TENSORSET huge DOUBLE 1000000 1000"));
        assert!(e.contains("MAX_TENSOR_BYTES"), "{e}");
        // The chunk size has a floor.
        let e = err_text(line(c, "AI.CONFIG MODEL_CHUNK_SIZE 1"));
        assert!(e.contains("MODEL_CHUNK_SIZE_MIN"), "{e}");
        // A DAG that loads one large key a thousand times shares it: answered at once.
        let mut dag = String::from("AI.DAGEXECUTE_RO LOAD 1000");
        for _ in 0..1000 {
            dag.push_str(" big");
        }
        dag.push_str(" |> AI.TENSORGET big META");
        let t = Instant::now();
        line(c, &dag).unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let mut too_big = String::from("AI.DAGEXECUTE ROUTING keep");
        for _ in 0..2001 {
            too_big.push_str(" |> AI.TENSORGET keep");
        }
        let e = err_text(line(c, &too_big));
        assert!(e.contains("MAX_DAG_SIZE"), "{e}");
        // PERSIST uniqueness over many keys is not quadratic on the main thread.
        let mut persist = String::from("AI.DAGEXECUTE PERSIST 1000");
        for i in 0..1000 {
            persist.push_str(&format!(" p{i}"));
        }
        for i in 0..1000 {
            persist.push_str(&format!(" |> AI.TENSORSET p{i} FLOAT 1"));
        }
        line(c, &persist).unwrap();
        // Device queues are bounded; each device string is not a new thread for ever.
        let lin = std::fs::read(data_file("models/linear.onnx")).unwrap();
        line(c, "AI.TENSORSET x FLOAT 1 3 VALUES 1 0 0").unwrap();
        let mut refused = None;
        for d in 1..=20 {
            let dev = format!("CPU:{d}");
            cmd(
                c,
                &[
                    b"AI.MODELSTORE",
                    b"m",
                    b"ONNX",
                    dev.as_bytes(),
                    b"BLOB",
                    &lin,
                ],
            )
            .unwrap();
            if let Err(e) = line(c, "AI.MODELEXECUTE m INPUTS 1 x OUTPUTS 1 y") {
                refused = Some((d, e.to_string()));
                break;
            }
        }
        let (d, e) = refused.expect("the 17th device queue is refused");
        assert_eq!(d, 16, "CPU:1..CPU:15 plus CPU itself fill 16 queues: {e}");
        assert!(e.contains("MAX_DEVICE_QUEUES"), "{e}");
        // Tags and statistics go with their objects.
        cmd(
            c,
            &[
                b"AI.MODELSTORE",
                b"tagged",
                b"ONNX",
                b"CPU",
                b"TAG",
                b"secret",
                b"BLOB",
                &lin,
            ],
        )
        .unwrap();
        redis::cmd("DEL")
            .arg("tagged")
            .arg("m")
            .query::<i64>(c)
            .unwrap();
        assert_eq!(line(c, "AI._MODELSCAN").unwrap(), Value::Array(vec![]));
        assert!(err_text(line(c, "AI.INFO tagged")).contains("cannot find run info"));
        sentinel.check(s, "bounded work");
    });
}

#[test]
fn outputs_land_in_the_clients_database_and_stored_objects_survive_a_missing_backend() {
    for module in modules() {
        let dir = tempfile::tempdir().unwrap();
        let s = start(&module, &dir, &[]);
        let mut c = con(&s);
        redis::cmd("SELECT").arg(3).query::<()>(&mut c).unwrap();
        store_linear(&mut c, "lin");
        scriptset(&mut c, "scr", "def f(a):\n    return a[0:0]\n").unwrap();
        line(&mut c, "AI.TENSORSET x FLOAT 1 3 VALUES 1 0 0").unwrap();
        line(&mut c, "AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 y").unwrap();
        line(
            &mut c,
            "AI.DAGEXECUTE LOAD 1 x PERSIST 1 d |> AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 d",
        )
        .unwrap();
        line(&mut c, "AI.SCRIPTRUN scr f INPUTS x OUTPUTS empty").unwrap();
        assert_eq!(
            redis::cmd("EXISTS")
                .arg("y")
                .arg("d")
                .arg("empty")
                .query::<i64>(&mut c)
                .unwrap(),
            3
        );
        let mut c0 = con(&s);
        assert_eq!(
            redis::cmd("DBSIZE").query::<i64>(&mut c0).unwrap(),
            0,
            "nothing in DB 0"
        );
        redis::cmd("SAVE").query::<()>(&mut c).unwrap();
        s.shutdown(false);
        // Restarted where the backends cannot be found: the server starts, keeps the
        // objects as stored and says so.
        let empty = tempfile::tempdir().unwrap();
        let e = empty.path().display().to_string();
        let mut s = Shard::start(
            dir.path(),
            &module,
            &["BACKENDSPATH", &e],
            &[("dbfilename", "dump.rdb")],
        );
        assert!(s.alive());
        let mut c = con(&s);
        redis::cmd("SELECT").arg(3).query::<()>(&mut c).unwrap();
        assert_eq!(
            redis::cmd("TYPE")
                .arg("lin")
                .query::<String>(&mut c)
                .unwrap(),
            "AI__MODEL"
        );
        let info = match line(&mut c, "AI.INFO lin").unwrap() {
            Value::Array(a) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(info.len(), 20, "18 fields and load_error");
        let err = err_text(line(&mut c, "AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 y"));
        assert!(err.contains("stored but"), "{err}");
        let section = String::from_utf8_lossy(&bulk(
            &redis::cmd("INFO")
                .arg("ai_objects")
                .query::<Value>(&mut c)
                .unwrap(),
        ))
        .into_owned();
        assert!(section.contains("ai_objects_not_loaded:2"), "{section}");
        assert_eq!(
            line(&mut c, "AI.TENSORGET empty META").unwrap(),
            Value::Array(vec![
                Value::BulkString(b"dtype".to_vec()),
                Value::BulkString(b"FLOAT".to_vec()),
                Value::BulkString(b"shape".to_vec()),
                Value::Array(vec![Value::Int(0), Value::Int(3)]),
            ])
        );
        redis::cmd("SAVE").query::<()>(&mut c).unwrap();
        s.shutdown(false);
        // Back with its backends, the same data runs again: nothing was lost on the way.
        let b = backends();
        let s = Shard::start(
            dir.path(),
            &module,
            &["BACKENDSPATH", &b],
            &[("dbfilename", "dump.rdb")],
        );
        let mut c = con(&s);
        redis::cmd("SELECT").arg(3).query::<()>(&mut c).unwrap();
        line(&mut c, "AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 y").unwrap();
        assert_eq!(
            f32_from(&bulk(&line(&mut c, "AI.TENSORGET y BLOB").unwrap())),
            [1.5, 1.0]
        );
        s.shutdown(false);
        // The same through an AOF: MODELSTORE replayed without its backend keeps the model.
        let adir = tempfile::tempdir().unwrap();
        let aof = [("appendonly", "yes"), ("aof-use-rdb-preamble", "no")];
        let s = Shard::start(adir.path(), &module, &["BACKENDSPATH", &b], &aof);
        let mut c = con(&s);
        store_linear(&mut c, "lin");
        line(&mut c, "AI.TENSORSET x FLOAT 1 3 VALUES 1 0 0").unwrap();
        scriptset(&mut c, "scr", "def f(a):\n    return a[0:0]\n").unwrap();
        line(&mut c, "AI.SCRIPTRUN scr f INPUTS x OUTPUTS empty").unwrap();
        s.shutdown(false);
        let s = Shard::start(adir.path(), &module, &["BACKENDSPATH", &e], &aof);
        let mut c = con(&s);
        assert_eq!(
            redis::cmd("TYPE")
                .arg("lin")
                .query::<String>(&mut c)
                .unwrap(),
            "AI__MODEL"
        );
        assert_eq!(
            redis::cmd("EXISTS")
                .arg("empty")
                .query::<i64>(&mut c)
                .unwrap(),
            1,
            "zero-size outputs replay"
        );
        s.shutdown(false);
        let s = Shard::start(adir.path(), &module, &["BACKENDSPATH", &b], &aof);
        let mut c = con(&s);
        line(&mut c, "AI.MODELEXECUTE lin INPUTS 1 x OUTPUTS 1 y").unwrap();
        s.shutdown(false);
    }
}

#[test]
fn orc_db_start_sets_the_limits_and_status_names_objects_that_did_not_load() {
    let state = State::new();
    let start = |extra: &[&str]| {
        let mut a = vec![
            "db",
            "start",
            "--port",
            "0",
            "--checkpoints",
            "900 1",
            "--ai-max-dag-size",
            "3",
            "--ai-execution-timeout",
            "2000",
            "--ai-max-tensor-bytes",
            "1000000",
        ];
        a.extend_from_slice(extra);
        let out = state.orc(&a);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&state.orc(&["db", "address"]).stdout)
            .trim()
            .to_string()
    };
    let addr = start(&[]);
    let mut c = connect(&addr);
    let limits = String::from_utf8_lossy(&bulk(
        &redis::cmd("INFO")
            .arg("ai_limits")
            .query::<Value>(&mut c)
            .unwrap(),
    ))
    .into_owned();
    for f in [
        "ai_max_dag_size:3",
        "ai_model_execution_timeout:2000",
        "ai_max_tensor_bytes:1000000",
        "ai_allow_backend_paths:no",
        "ai_torch_allow_unsafe_ops:no",
    ] {
        assert!(limits.contains(f), "{f}: {limits}");
    }
    store_linear(&mut c, "lin");
    assert!(state.orc(&["db", "stop"]).status.success());
    // Started again where its backend is missing: up, and status names the model.
    let empty = tempfile::tempdir().unwrap();
    start(&[
        "--module-arg",
        "BACKENDSPATH",
        "--module-arg",
        empty.path().to_str().unwrap(),
    ]);
    let out = state.orc(&["db", "status"]);
    let t = text(&out.stdout);
    assert!(
        t.contains("AI object stored but not loaded") && t.contains("key=lin kind=model"),
        "{t}"
    );
    assert!(state.orc(&["db", "stop"]).status.success());
}

#[test]
fn replicas_keep_objects_they_cannot_load_and_agree_with_their_master() {
    for module in modules() {
        let mdir = tempfile::tempdir().unwrap();
        let rdir = tempfile::tempdir().unwrap();
        let master = start(&module, &mdir, &[]);
        let mut m = con(&master);
        store_linear(&mut m, "before");
        // The replica has no backends: the full sync (RDB) and the stream that follows
        // (MODELSTORE replayed) keep the models anyway.
        let empty = tempfile::tempdir().unwrap();
        let e = empty.path().display().to_string();
        let replica = Shard::start(rdir.path(), &module, &["BACKENDSPATH", &e], &[]);
        let mut r = con(&replica);
        let (host, port) = master.addr.split_once(':').unwrap();
        redis::cmd("REPLICAOF")
            .arg(host)
            .arg(port)
            .query::<()>(&mut r)
            .unwrap();
        store_linear(&mut m, "after");
        line(&mut m, "AI.TENSORSET x FLOAT 1 3 VALUES 1 0 0").unwrap();
        line(&mut m, "AI.MODELEXECUTE after INPUTS 1 x OUTPUTS 1 y").unwrap();
        let synced = wait_for(Duration::from_secs(20), || {
            redis::cmd("EXISTS")
                .arg("before")
                .arg("after")
                .arg("y")
                .query::<i64>(&mut r)
                .unwrap_or(0)
                == 3
        });
        assert!(synced, "{}", replica.log());
        for k in ["before", "after"] {
            assert_eq!(
                redis::cmd("TYPE").arg(k).query::<String>(&mut r).unwrap(),
                "AI__MODEL"
            );
        }
        let section = String::from_utf8_lossy(&bulk(
            &redis::cmd("INFO")
                .arg("ai_objects")
                .query::<Value>(&mut r)
                .unwrap(),
        ))
        .into_owned();
        assert!(section.contains("ai_objects_not_loaded:2"), "{section}");
        assert_eq!(
            f32_from(&bulk(&line(&mut r, "AI.TENSORGET y BLOB").unwrap())),
            [1.5, 1.0],
            "run outputs replicate"
        );
        assert_eq!(
            dump(&mut m, "after"),
            dump(&mut r, "after"),
            "the replica keeps the model byte for byte"
        );
        replica.shutdown(false);
        master.shutdown(false);
    }
}
