//! **orc-ai**: a Redis module speaking the RedisAI 1.2 command set, so that SmartRedis
//! clients work unchanged. Tensors, models and scripts are Redis data types (`AI_TENSOR`,
//! `AI__MODEL`, `AI_SCRIPT`, RedisAI's RDB encoding version 4); models and scripts run on
//! worker threads, one queue per device, through backend plugins
//! (`liborc_ai_backend_<onnx|torch|tflite|tf>.so`) found on `BACKENDSPATH`.
//!
//! Load it with `redis-server --loadmodule liborc_ai.so [THREADS_PER_QUEUE n]
//! [INTER_OP_PARALLELISM n] [INTRA_OP_PARALLELISM n] [MODEL_CHUNK_SIZE bytes]
//! [MODEL_EXECUTION_TIMEOUT ms] [BACKENDSPATH dir] [ONNX [path]] [TORCH [path]] ...`
//! (a backend name preloads it; others load on first use).
//!
//! The parsers are plain Rust and tested without Redis:
//!
//! ```ignore
//! // (cdylib crates have no doc tests; the same lines run as unit tests in tensor.rs)
//! let t = orc_ai::tensor::Tensor::from_args(&[b"FLOAT", b"2", b"VALUES", b"1", b"2"])?;
//! ```
//!
//! Deliberate differences from RedisAI: negative values for signed INT types are
//! accepted; a zero-filled tensor (no data) is limited to 512 MiB so a mistyped shape
//! cannot exhaust the server; `AI.CONFIG GET BACKENDS` lists loaded backends.

pub mod args;
pub mod backends;
pub mod commands;
pub mod config;
pub mod dag;
pub mod exec;
#[cfg(test)]
mod fuzz;
pub mod model;
pub mod objects;
pub mod script;
pub mod state;
pub mod tensor;
pub mod types;

#[cfg(not(test))]
mod module {
    use redis_module::{Context, RedisString, Status, redis_module};

    use crate::{
        commands::*,
        state::{lock, state},
        types::{MODEL_TYPE, SCRIPT_TYPE, TENSOR_TYPE},
    };

    fn init(ctx: &Context, args: &[RedisString]) -> Status {
        let s = state();
        let a: Vec<&[u8]> = args.iter().map(|x| x.as_slice()).collect();
        let preload = {
            let mut config = lock(&s.config);
            if let Err(e) = config.apply_args(&a) {
                ctx.log_warning(&e.0);
                return Status::Err;
            }
            config
                .preload
                .iter()
                .map(|(b, p)| (*b, config.backend_file(*b, p.as_deref())))
                .collect::<Vec<_>>()
        };
        for (b, path) in preload {
            if let Err(e) = s.backends.load(b, path) {
                ctx.log_warning(&format!("orc-ai: {e}"));
                return Status::Err;
            }
        }
        ctx.log_notice(&format!(
            "orc-ai {} loaded (RedisAI 1.2 command set)",
            env!("CARGO_PKG_VERSION")
        ));
        Status::Ok
    }

    redis_module! {
        name: "ai",
        version: 10207,
        allocator: (redis_module::alloc::RedisAlloc, redis_module::alloc::RedisAlloc),
        data_types: [TENSOR_TYPE, MODEL_TYPE, SCRIPT_TYPE],
        init: init,
        commands: [
            ["ai.tensorset", |c: &Context, a: Vec<RedisString>| guarded(c, a, tensorset), "write deny-oom", 1, 1, 1, ""],
            ["ai.tensorget", |c: &Context, a: Vec<RedisString>| guarded(c, a, tensorget), "readonly", 1, 1, 1, ""],
            ["ai.modelstore", |c: &Context, a: Vec<RedisString>| guarded(c, a, modelstore), "write deny-oom", 1, 1, 1, ""],
            ["ai.modelset", |c: &Context, a: Vec<RedisString>| guarded(c, a, modelset), "write deny-oom", 1, 1, 1, ""],
            ["ai.modelget", |c: &Context, a: Vec<RedisString>| guarded(c, a, modelget), "readonly", 1, 1, 1, ""],
            ["ai.modeldel", |c: &Context, a: Vec<RedisString>| guarded(c, a, modeldel), "write", 1, 1, 1, ""],
            ["ai.modelexecute", |c: &Context, a: Vec<RedisString>| guarded(c, a, modelexecute), "write deny-oom getkeys-api", 1, 1, 1, ""],
            ["ai.modelrun", |c: &Context, a: Vec<RedisString>| guarded(c, a, modelrun), "write deny-oom getkeys-api", 1, 1, 1, ""],
            ["ai.scriptstore", |c: &Context, a: Vec<RedisString>| guarded(c, a, scriptstore), "write deny-oom", 1, 1, 1, ""],
            ["ai.scriptset", |c: &Context, a: Vec<RedisString>| guarded(c, a, scriptset), "write deny-oom", 1, 1, 1, ""],
            ["ai.scriptget", |c: &Context, a: Vec<RedisString>| guarded(c, a, scriptget), "readonly", 1, 1, 1, ""],
            ["ai.scriptdel", |c: &Context, a: Vec<RedisString>| guarded(c, a, scriptdel), "write", 1, 1, 1, ""],
            ["ai.scriptexecute", |c: &Context, a: Vec<RedisString>| guarded(c, a, scriptexecute), "write deny-oom getkeys-api", 1, 1, 1, ""],
            ["ai.scriptrun", |c: &Context, a: Vec<RedisString>| guarded(c, a, scriptrun), "write deny-oom getkeys-api", 1, 1, 1, ""],
            ["ai.dagexecute", |c: &Context, a: Vec<RedisString>| guarded(c, a, dagexecute), "write deny-oom getkeys-api", 1, 1, 1, ""],
            ["ai.dagexecute_ro", |c: &Context, a: Vec<RedisString>| guarded(c, a, dagexecute_ro), "readonly getkeys-api", 1, 1, 1, ""],
            ["ai.info", |c: &Context, a: Vec<RedisString>| guarded(c, a, info), "readonly", 1, 1, 1, ""],
            ["ai.config", |c: &Context, a: Vec<RedisString>| guarded(c, a, config), "write", 0, 0, 0, ""],
            ["ai._modelscan", |c: &Context, a: Vec<RedisString>| guarded(c, a, modelscan), "readonly", 0, 0, 0, ""],
            ["ai._scriptscan", |c: &Context, a: Vec<RedisString>| guarded(c, a, scriptscan), "readonly", 0, 0, 0, ""],
        ],
    }
}
