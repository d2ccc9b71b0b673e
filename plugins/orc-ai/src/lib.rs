//! **orc-ai**: a Redis module speaking the RedisAI 1.2 command set, so that SmartRedis
//! clients work unchanged. Tensors, models and scripts are Redis data types (`AI_TENSOR`,
//! `AI__MODEL`, `AI_SCRIPT`, RedisAI's RDB encoding version 4); models and scripts run on
//! worker threads, one queue per device, through backend plugins
//! (`liborc_ai_backend_<onnx|torch|tflite|tf>.so`) found on `BACKENDSPATH`.
//!
//! Load it with `redis-server --loadmodule liborc_ai.so [THREADS_PER_QUEUE n]
//! [INTER_OP_PARALLELISM n] [INTRA_OP_PARALLELISM n] [MODEL_CHUNK_SIZE bytes]
//! [MODEL_EXECUTION_TIMEOUT ms] [BACKENDSPATH dir] [ONNX [file]] [TORCH [file]] ...`
//! plus the limits and security switches of [`config::Limits`] and [`config::Config`]
//! (a backend name preloads it; others load on first use).
//!
//! Hostile input is normal input: every count and length from a client or a file is
//! bounded ([`args::take`], [`rdb`]), every tensor that enters the server is checked
//! ([`tensor::Tensor::new`]), every request's work and memory is bounded by the limits,
//! panics are caught at every callback, and backends load only from the directory fixed
//! at load time. The parsers are plain Rust, unit-tested and fuzzed without Redis:
//!
//! ```
//! use orc_ai::{config::Limits, tensor::Tensor};
//! let t = Tensor::from_args(&[b"FLOAT", b"2", b"VALUES", b"1", b"2"], &Limits::default())?;
//! assert_eq!(t.len(), 2);
//! # Ok::<(), orc_ai::tensor::TensorError>(())
//! ```
//!
//! Deliberate differences from RedisAI: negative values for signed INT types are
//! accepted; zero-size dimensions are accepted (models produce them); `TIMEOUT` bounds the
//! whole request, not only its wait in the queue; `MODEL_EXECUTION_TIMEOUT` applies to
//! every backend; `AI.CONFIG GET BACKENDS` lists loaded backends.

/// A Redis module API function (the table is filled by Redis when the module loads,
/// before any command or callback can run).
macro_rules! api {
    ($f:ident) => {{
        #[allow(unused_unsafe)]
        // SAFETY: reading the API table, written once at load.
        let f = unsafe { redis_module::raw::$f };
        f.expect(concat!("Redis module API ", stringify!($f)))
    }};
}

pub mod args;
pub mod backends;
pub mod blocked;
pub mod commands;
pub mod config;
pub mod dag;
pub mod exec;
pub mod execute;
pub mod fuzzing;
pub mod guard;
pub mod info;
pub mod keys;
pub mod model;
pub mod objects;
pub mod rdb;
pub mod reply;
pub mod retained;
pub mod script;
pub mod state;
pub mod tensor;
pub mod types;
pub mod warmup;

#[cfg(not(any(test, fuzzing)))]
mod module {
    use std::alloc::{GlobalAlloc, Layout, System};

    use redis_module::{Context, RedisString, Status, alloc::RedisAlloc, raw, redis_module};

    /// Redis's allocator inside Redis (so `maxmemory` and `INFO memory` see what the module
    /// holds), the system's elsewhere (doc tests and tools that link the library).
    struct ModuleAlloc;

    #[allow(static_mut_refs)]
    // SAFETY: delegates to one of two allocators, chosen by whether Redis's API table is
    // filled; it is filled once, at module load, before the module allocates anything.
    unsafe impl GlobalAlloc for ModuleAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded as is.
            unsafe {
                if raw::RedisModule_Alloc.is_some() {
                    RedisAlloc.alloc(layout)
                } else {
                    System.alloc(layout)
                }
            }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded to the allocator that made `ptr`.
            unsafe {
                if raw::RedisModule_Free.is_some() {
                    RedisAlloc.dealloc(ptr, layout)
                } else {
                    System.dealloc(ptr, layout)
                }
            }
        }
    }

    use crate::{
        commands::*,
        state::{lock, state},
        types::{MODEL_TYPE, SCRIPT_TYPE, TENSOR_TYPE},
    };

    fn init(ctx: &Context, args: &[RedisString]) -> Status {
        crate::retained::set_main_thread();
        // Truncated or malformed values in RESTORE payloads and RDB files are errors the
        // loaders see, not a reason for Redis to stop.
        ctx.set_module_options(raw::ModuleOptions::HANDLE_IO_ERRORS);
        let s = state();
        let a: Vec<&[u8]> = args.iter().map(|x| x.as_slice()).collect();
        let (preload, warm_up) = {
            let mut config = lock(&s.config);
            // Read once here, while the server has a single thread; the argument wins.
            if let Some(v) = std::env::var_os(crate::warmup::DEFAULT_VAR) {
                config.warm_up = v != "no";
            }
            if let Err(e) = config.apply_args(&a) {
                crate::state::log_warning(&e.0);
                return Status::Err;
            }
            if config.onnxruntime_lib.is_none() {
                // Read once here, while the server has a single thread.
                config.onnxruntime_lib = std::env::var_os("ORT_DYLIB_PATH")
                    .filter(|p| !p.is_empty())
                    .map(Into::into);
            }
            if config.tensorflow_lib.is_none() {
                config.tensorflow_lib = std::env::var_os("ORC_TENSORFLOW_LIB")
                    .filter(|p| !p.is_empty())
                    .map(Into::into);
            }
            if config.litert_lib.is_none() {
                config.litert_lib = std::env::var_os("ORC_LITERT_LIB")
                    .filter(|p| !p.is_empty())
                    .map(Into::into);
            }
            let preload = config
                .preload
                .iter()
                .map(|(b, p)| {
                    let files = match p {
                        Some(p) => vec![config.preload_file(*b, Some(p))],
                        None => config.default_backend_files(*b),
                    };
                    (*b, files, config.backend_init(*b))
                })
                .collect::<Vec<_>>();
            (preload, config.warm_up)
        };
        for (b, files, init) in preload {
            if let Err(e) = s.backends.get(b, &files, &init) {
                crate::state::log_warning(format!("orc-ai: {e}"));
                return Status::Err;
            }
        }
        if warm_up {
            crate::warmup::start();
        }
        crate::guard::register(ctx);
        // SAFETY: called once from OnLoad with its context; the callbacks catch panics.
        unsafe {
            if let Some(register) = raw::RedisModule_RegisterInfoFunc {
                register(ctx.ctx, Some(crate::info::info_callback));
            }
            if let Some(subscribe) = raw::RedisModule_SubscribeToServerEvent {
                subscribe(
                    ctx.ctx,
                    raw::RedisModuleEvent {
                        id: raw::REDISMODULE_EVENT_CRON_LOOP,
                        dataver: 1,
                    },
                    Some(crate::info::cron_callback),
                );
                subscribe(
                    ctx.ctx,
                    raw::RedisModuleEvent {
                        id: raw::REDISMODULE_EVENT_SHUTDOWN,
                        dataver: 1,
                    },
                    Some(crate::warmup::shutdown_callback),
                );
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
        allocator: (ModuleAlloc, ModuleAlloc),
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
            ["orc.config", |c: &Context, a: Vec<RedisString>| guarded(c, a, crate::guard::orc_config), "deny-script allow-loading allow-stale", 0, 0, 0, ""],
            ["ai._scriptscan", |c: &Context, a: Vec<RedisString>| guarded(c, a, scriptscan), "readonly", 0, 0, 0, ""],
        ],
    }
}
