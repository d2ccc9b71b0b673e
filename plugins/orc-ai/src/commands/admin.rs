//! `AI.INFO`, `AI.CONFIG`, `AI._MODELSCAN` and `AI._SCRIPTSCAN`.

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::{bulk, bytes, e, ok};
use crate::{
    args::is,
    config::{ConfigCmd, parse_config},
    model::ModelMeta,
    objects::{Kind, Stats, registry},
    state::{lock, state},
    types::{MODEL_TYPE, SCRIPT_TYPE},
};

/// `AI.INFO key [RESETSTAT]`: run statistics of the model or script at `key`, and why it
/// is not loaded when it is not (an orc extension: `load_error`, after the 18 fields).
pub fn info(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if !(2..=3).contains(&args.len()) {
        return Err(RedisError::WrongArity);
    }
    let none = || RedisError::Str("ERR cannot find run info for key");
    let key = ctx.open_key(&args[1]);
    let (kind, backend, device, tag, stats, load_error): (Kind, &str, String, String, _, _) =
        if let Ok(Some(m)) = key.get_value::<crate::objects::ModelValue>(&MODEL_TYPE) {
            let ModelMeta {
                backend,
                device,
                tag,
                ..
            } = &m.0.meta;
            (
                Kind::Model,
                backend.name(),
                device.clone(),
                tag.clone(),
                &m.0.stats,
                m.0.load_error(),
            )
        } else if let Ok(Some(s)) = key.get_value::<crate::objects::ScriptValue>(&SCRIPT_TYPE) {
            let m = &s.0.meta;
            (
                Kind::Script,
                "TORCH",
                m.device.clone(),
                m.tag.clone(),
                &s.0.stats,
                s.0.load_error(),
            )
        } else {
            return Err(none());
        };
    if args.len() == 3 && is(args[2].as_slice(), "RESETSTAT") {
        *lock(stats) = Stats::default();
        return ok();
    }
    let st = lock(stats).clone();
    let mut out = vec![
        bulk("key"),
        RedisValue::StringBuffer(args[1].as_slice().to_vec()),
        bulk("type"),
        bulk(if kind == Kind::Model {
            "MODEL"
        } else {
            "SCRIPT"
        }),
        bulk("backend"),
        bulk(backend),
        bulk("device"),
        bulk(&device),
        bulk("tag"),
        bulk(&tag),
        bulk("duration"),
        RedisValue::Integer(st.duration_us as i64),
        bulk("samples"),
        RedisValue::Integer(if kind == Kind::Script {
            -1
        } else {
            st.samples as i64
        }),
        bulk("calls"),
        RedisValue::Integer(st.calls as i64),
        bulk("errors"),
        RedisValue::Integer(st.errors as i64),
    ];
    if let Some(err) = load_error {
        out.push(bulk("load_error"));
        out.push(bulk(&err));
    }
    Ok(RedisValue::Array(out))
}

/// `AI.CONFIG LOADBACKEND b name | BACKENDSPATH p | MODEL_CHUNK_SIZE n | GET name`
pub fn config(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let cmd = parse_config(&bytes(&args[1..])).map_err(e)?;
    let s = state();
    match &cmd {
        ConfigCmd::LoadBackend(..) if !crate::guard::is_admin(ctx) => {
            return Err(crate::guard::admin_only("LOADBACKEND"));
        }
        ConfigCmd::BackendsPath(..) if !crate::guard::is_admin(ctx) => {
            return Err(crate::guard::admin_only("BACKENDSPATH"));
        }
        _ => {}
    }
    match cmd {
        ConfigCmd::LoadBackend(b, path) => {
            let (file, init) = {
                let c = lock(&s.config);
                let file = c
                    .backend_file(b, Some(&path))
                    .map_err(|x| RedisError::String(format!("ERR error loading backend: {x}")))?;
                (file, c.backend_init(b))
            };
            s.backends
                .load(b, file, &init)
                .map_err(|x| RedisError::String(format!("ERR error loading backend: {x}")))?;
            ok()
        }
        ConfigCmd::BackendsPath(p) => {
            let mut c = lock(&s.config);
            if !c.allow_backend_paths {
                return Err(RedisError::String(format!(
                    "ERR BACKENDSPATH is fixed when the module loads ({}); module argument ALLOW_BACKEND_PATHS yes lets clients change it",
                    c.backends_path.display()
                )));
            }
            c.backends_path = p.into();
            ok()
        }
        ConfigCmd::ChunkSize(n) => {
            let mut c = lock(&s.config);
            if n < c.limits.min_chunk_size {
                return Err(RedisError::String(format!(
                    "ERR MODEL_CHUNK_SIZE: invalid chunk size (at least {} bytes; module argument MODEL_CHUNK_SIZE_MIN)",
                    c.limits.min_chunk_size
                )));
            }
            c.model_chunk_size = n;
            ok()
        }
        ConfigCmd::Get(name) => Ok(match name.as_str() {
            "BACKENDSPATH" => bulk(&lock(&s.config).backends_path.display().to_string()),
            "MODEL_CHUNK_SIZE" => RedisValue::Integer(lock(&s.config).model_chunk_size as i64),
            "INLINE_RUN_MAX_US" => RedisValue::Integer(lock(&s.config).inline_run_max_us as i64),
            "WORKER_SPIN_US" => RedisValue::Integer(lock(&s.config).worker_spin_us as i64),
            // orc extension: the loaded backends, `NAME runtime path` each.
            "BACKENDS" => RedisValue::Array(
                s.backends
                    .list()
                    .into_iter()
                    .map(|(b, rt, p)| bulk(&format!("{} {rt} {}", b.name(), p.display())))
                    .collect(),
            ),
            _ => RedisValue::Null,
        }),
    }
}

fn scan(args: &[RedisString], kind: Kind) -> RedisResult {
    if args.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    crate::state::log_warning("AI._MODELSCAN / AI._SCRIPTSCAN are experimental");
    Ok(RedisValue::Array(
        registry()
            .into_iter()
            .filter(|e| e.kind == kind)
            .map(|e| RedisValue::Array(vec![RedisValue::StringBuffer(e.key), bulk(&e.tag)]))
            .collect(),
    ))
}

/// `AI._MODELSCAN`
pub fn modelscan(_ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    scan(&args, Kind::Model)
}

/// `AI._SCRIPTSCAN`
pub fn scriptscan(_ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    scan(&args, Kind::Script)
}
