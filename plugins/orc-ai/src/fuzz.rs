//! Property tests over every command parser: arbitrary argument lists drawn from the
//! commands' own vocabulary plus hostile values must give `Ok` or an error, never a
//! panic (a panic in a command handler would otherwise be caught only at the boundary).

use crate::{
    args::Reply,
    config::{Config, Limits, parse_config},
    dag, execute, model, script,
    tensor::{Tensor, parse_get_format},
};

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

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn args(&mut self, max: u64) -> Vec<&'static [u8]> {
        let n = self.next() % max;
        (0..n)
            .map(|_| WORDS[(self.next() % WORDS.len() as u64) as usize])
            .collect()
    }
}

struct NoKeys;

impl dag::Keyspace for NoKeys {
    type Model = ();
    type Script = ();
    fn tensor(&self, key: &[u8]) -> Result<Tensor, Reply> {
        if key == b"k" {
            Ok(
                Tensor::new(crate::tensor::DType::Float, vec![1], vec![0; 4].into())
                    .expect("valid"),
            )
        } else {
            Err(Reply::new(
                "ERR tensor key is empty or in a different shard",
            ))
        }
    }
    fn model(&self, key: &[u8]) -> Result<((), String), Reply> {
        if key == b"x" {
            Ok(((), "CPU".into()))
        } else {
            Err(Reply::new("ERR model key is empty"))
        }
    }
    fn script(&self, _: &[u8]) -> Result<((), String), Reply> {
        Err(Reply::new("ERR script key is empty"))
    }
}

#[test]
fn no_parser_panics_on_arbitrary_arguments() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut accepted = 0;
    let limits = Limits::default();
    for _ in 0..30_000 {
        let a = rng.args(12);
        accepted += usize::from(Tensor::from_args(&a, &limits).is_ok());
        let _ = parse_get_format(&a);
        let _ = model::parse_store(&a, false);
        let _ = model::parse_store(&a, true);
        let _ = model::parse_get(&a);
        let _ = script::parse_store(&a);
        let _ = script::parse_set(&a);
        let _ = parse_config(&a);
        let _ = Config::new("/m".into()).apply_args(&a);
        let _ = dag::parse(&a, false, &NoKeys, &limits);
        let _ = dag::parse(&a, true, &NoKeys, &limits);
        let _ = dag::key_positions(&a);
        let _ = execute::modelexecute(&a, 0, None);
        let _ = execute::modelrun(&a, 1);
        let _ = execute::scriptexecute(&a);
        let _ = execute::scriptrun(&a);
        let _ = execute::modelexecute_keys(&a);
        let _ = execute::scriptexecute_keys(&a);
        let _ = execute::deprecated_run_keys(&a);
    }
    // The vocabulary is rich enough to reach the success paths too.
    assert!(accepted > 0);
}
