//! The bodies of the coverage-guided fuzz targets (`plugins/orc-ai/fuzz`, run by
//! `scripts/fuzz`), here so that every corpus input and every crash ever found is also
//! replayed by `cargo test` without instrumentation (see the tests below).
//!
//! Each takes raw bytes and must never panic, whatever they hold. Command-line targets
//! split their input into arguments at `0xFF` bytes. Besides "no panic", each checks an
//! invariant of what it accepted (a tensor's data matches its shape, an RDB value
//! re-encodes to what was read).

use crate::{
    args::Reply,
    config::{Config, Limits, parse_config},
    dag, execute, model,
    rdb::{self, Stream},
    script,
    tensor::{DType, Tensor, parse_get_format},
};

/// The fuzz targets, by name.
pub const TARGETS: [&str; 4] = ["tensorset", "commands", "dag", "rdb"];

/// Split fuzz input into command arguments (at `0xFF`).
pub fn args(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == 0xff).collect()
}

fn check_tensor(t: &Tensor) {
    assert!(t.shape.len() <= crate::tensor::MAX_DIMS);
    if t.dtype == DType::String {
        assert_eq!(t.strings().count() as u64, t.len());
    } else {
        assert_eq!(t.data.len() as u64, t.len() * t.dtype.size() as u64);
    }
    let mut n = 0u64;
    t.for_each_value(|_| n += 1);
    assert_eq!(n, t.len());
}

/// `AI.TENSORSET` arguments (after the key) and `AI.TENSORGET` formats.
pub fn tensorset(data: &[u8]) {
    let a = args(data);
    let limits = Limits {
        max_tensor_bytes: 1 << 20,
        ..Limits::default()
    };
    if let Ok(t) = Tensor::from_args(&a, &limits) {
        check_tensor(&t);
        assert!(t.data.len() as u64 <= limits.max_tensor_bytes);
    }
    let _ = parse_get_format(&a);
}

/// Every other command parser: model and script store, `AI.CONFIG`, module arguments,
/// the run commands and their key positions.
pub fn commands(data: &[u8]) {
    let a = args(data);
    let _ = model::parse_store(&a, false);
    let _ = model::parse_store(&a, true);
    let _ = model::parse_get(&a);
    let _ = script::parse_store(&a);
    let _ = script::parse_set(&a);
    let _ = parse_config(&a);
    let _ = Config::new("/m".into()).apply_args(&a);
    let _ = execute::modelexecute(&a, 0, None);
    let _ = execute::modelexecute(&a, 2, Some(1));
    let _ = execute::modelrun(&a, 1);
    let _ = execute::scriptexecute(&a);
    let _ = execute::scriptrun(&a);
    for pos in [
        execute::modelexecute_keys(&a),
        execute::scriptexecute_keys(&a),
        execute::deprecated_run_keys(&a),
    ] {
        assert!(pos.iter().all(|p| *p < a.len().max(2)));
    }
}

/// A keyspace for DAG parsing: tensors `a`..`c`, models `m*` on CPU, scripts `s*` on
/// CPU:1.
pub(crate) struct Keys;

impl dag::Keyspace for Keys {
    type Model = ();
    type Script = ();
    fn tensor(&self, key: &[u8]) -> Result<Tensor, Reply> {
        if [&b"a"[..], b"b", b"c"].contains(&key) {
            Tensor::new(DType::Float, vec![2], vec![0; 8].into()).map_err(|e| Reply(e.0))
        } else {
            Err(Reply::new(
                "ERR tensor key is empty or in a different shard",
            ))
        }
    }
    fn model(&self, key: &[u8]) -> Result<((), String), Reply> {
        if key.starts_with(b"m") {
            Ok(((), "CPU".into()))
        } else {
            Err(Reply::new("ERR model key is empty"))
        }
    }
    fn script(&self, key: &[u8]) -> Result<((), String), Reply> {
        if key.starts_with(b"s") {
            Ok(((), "CPU:1".into()))
        } else {
            Err(Reply::new("ERR script key is empty"))
        }
    }
}

/// `AI.DAGEXECUTE[_RO]` arguments and key positions.
pub fn dag(data: &[u8]) {
    let a = args(data);
    let limits = Limits {
        max_dag_size: 64,
        max_tensor_bytes: 1 << 20,
        ..Limits::default()
    };
    for read_only in [false, true] {
        if let Ok(d) = dag::parse(&a, read_only, &Keys, &limits) {
            assert!(d.ops.len() + d.persist.len() <= 64 + a.len());
            d.tensors.values().for_each(check_tensor);
        }
    }
    let mut full = vec![&b"AI.DAGEXECUTE"[..]];
    full.extend(&a);
    assert!(dag::key_positions(&full).iter().all(|p| *p < full.len()));
}

/// RDB values: the first byte picks tensor, model or script; the rest is the stream.
/// What is accepted must encode back to exactly the bytes that were read.
pub fn rdb(data: &[u8]) {
    let Some((kind, rest)) = data.split_first() else {
        return;
    };
    let mut s = Stream::new(rest.to_vec());
    let (out, consumed) = match kind % 3 {
        0 => match rdb::read_tensor(&mut s) {
            Ok(t) => {
                check_tensor(&t);
                let mut o = Stream::default();
                rdb::write_tensor(&mut o, &t);
                (o, s.pos)
            }
            Err(_) => return,
        },
        1 => match rdb::read_model(&mut s) {
            Ok((meta, blob)) => {
                let mut o = Stream::default();
                // One chunk per original chunk size is unknowable; re-read what we write.
                rdb::write_model(&mut o, &meta, &blob, blob.len().max(1));
                let (m2, b2) = rdb::read_model(&mut Stream::new(o.bytes.clone())).expect("re-read");
                assert_eq!((&m2, &b2), (&meta, &blob));
                return;
            }
            Err(_) => return,
        },
        _ => match rdb::read_script(&mut s) {
            Ok(m) => {
                let mut o = Stream::default();
                rdb::write_script(&mut o, &m);
                let back = rdb::read_script(&mut Stream::new(o.bytes.clone())).expect("re-read");
                assert_eq!(back, m);
                return;
            }
            Err(_) => return,
        },
    };
    assert_eq!(&out.bytes[..consumed], &rest[..consumed]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input kept for a target: its seed corpus and the crashes found, replayed.
    fn inputs(target: &str) -> Vec<std::path::PathBuf> {
        let fuzz = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz");
        let mut files = Vec::new();
        for dir in ["corpus", "regressions"] {
            if let Ok(entries) = std::fs::read_dir(format!("{fuzz}/{dir}/{target}")) {
                files.extend(entries.flatten().map(|e| e.path()));
            }
        }
        files.sort();
        files
    }

    #[test]
    fn every_corpus_input_and_every_crash_found_is_replayed() {
        for target in TARGETS {
            let run: fn(&[u8]) = match target {
                "tensorset" => tensorset,
                "commands" => commands,
                "dag" => dag,
                _ => rdb,
            };
            let files = inputs(target);
            assert!(!files.is_empty(), "no seed corpus for {target}");
            let failed: Vec<_> = files
                .iter()
                .filter(|f| {
                    let data = std::fs::read(f).unwrap();
                    std::panic::catch_unwind(|| run(&data)).is_err()
                })
                .collect();
            assert!(failed.is_empty(), "{target}: {failed:?}");
        }
    }
    const WORDS: &[&[u8]] = &[
        b"FLOAT",
        b"DOUBLE",
        b"INT8",
        b"UINT16",
        b"BOOL",
        b"STRING",
        b"BLOB",
        b"VALUES",
        b"META",
        b"ONNX",
        b"TORCH",
        b"TF",
        b"TFLITE",
        b"CPU",
        b"GPU:1",
        b"CPU:99999999",
        b"TAG",
        b"BATCHSIZE",
        b"MINBATCHSIZE",
        b"MINBATCHTIMEOUT",
        b"INPUTS",
        b"OUTPUTS",
        b"ENTRY_POINTS",
        b"SOURCE",
        b"KEYS",
        b"ARGS",
        b"TIMEOUT",
        b"LOAD",
        b"PERSIST",
        b"ROUTING",
        b"|>",
        b"AI.TENSORSET",
        b"AI.TENSORGET",
        b"AI.MODELEXECUTE",
        b"AI.SCRIPTEXECUTE",
        b"AI.MODELRUN",
        b"GET",
        b"LOADBACKEND",
        b"MODEL_CHUNK_SIZE",
        b"BACKENDSPATH",
        b"THREADS_PER_QUEUE",
        b"0",
        b"1",
        b"2",
        b"3",
        b"-1",
        b"18446744073709551616",
        b"99999999999",
        b"1e40",
        b"nan",
        b"",
        b"\0",
        b"\xff\xfe",
        b"x",
        b"k",
    ];

    /// Word soup from the commands' own vocabulary and hostile values, through every
    /// target: a cheap deterministic sweep that runs in every `cargo test`.
    #[test]
    fn no_target_panics_on_word_soup() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let n = next() % 12;
            let mut data = Vec::new();
            for i in 0..n {
                if i > 0 {
                    data.push(0xff);
                }
                data.extend_from_slice(WORDS[(next() % WORDS.len() as u64) as usize]);
            }
            tensorset(&data);
            commands(&data);
            dag(&data);
            rdb(&data);
        }
    }
}
