//! Command handlers: parse on the main thread, reply or queue. One file per subject:
//! tensors, models, scripts, runs (the execute commands), DAGs, and administration.

mod admin;
mod dag;
mod model;
mod run;
mod script;
mod tensor;

pub use admin::{config, info, modelscan, scriptscan};
pub use dag::{dagexecute, dagexecute_ro};
pub use model::{modeldel, modelget, modelset, modelstore};
pub use run::{modelexecute, modelrun, scriptexecute, scriptrun};
pub use script::{scriptdel, scriptget, scriptset, scriptstore};
pub use tensor::{tensorget, tensorset};

use redis_module::{Context, ContextFlags, RedisError, RedisResult, RedisString, RedisValue};

use crate::{
    args::Reply,
    objects::{ModelValue, Origin, ScriptValue},
    types::{MODEL_TYPE, SCRIPT_TYPE},
};

/// redis-module reports a key of another type as a plain error; Redis clients expect
/// `WRONGTYPE`.
pub(crate) fn typed<T>(r: Result<T, RedisError>) -> Result<T, RedisError> {
    r.map_err(|err| match err {
        RedisError::Str("Existing key has wrong Redis type") => RedisError::WrongType,
        other => other,
    })
}

/// A key name as a Redis string: any bytes, NUL included (SmartRedis shard prefixes
/// such as `{\x00\x00}` contain NULs).
pub(crate) fn key_string(ctx: &Context, k: &[u8]) -> RedisString {
    RedisString::create_from_slice(ctx.ctx, k)
}

/// The message of a panic payload.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Wrap a command handler so that a panic (a bug) answers with an error instead of
/// aborting the server. Strings released by other threads are freed here, on the main
/// thread.
pub fn guarded(
    ctx: &Context,
    args: Vec<RedisString>,
    f: fn(&Context, Vec<RedisString>) -> RedisResult,
) -> RedisResult {
    crate::retained::release_pending();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(ctx, args))).unwrap_or_else(|p| {
        let msg = panic_message(&*p);
        crate::state::log_warning(format!("orc-ai: a command panicked (bug): {msg}"));
        Err(RedisError::String(format!(
            "ERR orc-ai internal error (the server keeps running): {msg}"
        )))
    })
}

pub(crate) fn e(r: Reply) -> RedisError {
    RedisError::String(r.0)
}

pub(crate) fn bytes(args: &[RedisString]) -> Vec<&[u8]> {
    args.iter().map(|a| a.as_slice()).collect()
}

pub(crate) fn ok() -> RedisResult {
    Ok(RedisValue::SimpleStringStatic("OK"))
}

pub(crate) fn bulk(s: &str) -> RedisValue {
    RedisValue::BulkString(s.to_string())
}

pub(crate) fn no_transactions(ctx: &Context) -> Result<(), RedisError> {
    if ctx
        .get_flags()
        .intersects(ContextFlags::MULTI | ContextFlags::LUA)
    {
        return Err(RedisError::Str(
            "ERR Cannot run RedisAI command within a transaction or a LUA script",
        ));
    }
    Ok(())
}

/// Where a store command's object comes from: the server's own data while loading an AOF
/// or from a master, else a client.
pub(crate) fn origin(ctx: &Context) -> Origin {
    if ctx
        .get_flags()
        .intersects(ContextFlags::LOADING | ContextFlags::REPLICATED)
    {
        Origin::Stored
    } else {
        Origin::Client
    }
}

pub(crate) fn get_model(ctx: &Context, key: &RedisString) -> Result<ModelValue, RedisError> {
    typed(ctx.open_key(key).get_value::<ModelValue>(&MODEL_TYPE))?
        .cloned()
        .ok_or(RedisError::Str("ERR model key is empty"))
}

pub(crate) fn get_script(ctx: &Context, key: &RedisString) -> Result<ScriptValue, RedisError> {
    typed(ctx.open_key(key).get_value::<ScriptValue>(&SCRIPT_TYPE))?
        .cloned()
        .ok_or(RedisError::Str("ERR script key is empty"))
}

/// The text of an error, as a client would read it.
pub(crate) fn err_string(e: RedisError) -> String {
    match e {
        RedisError::WrongType => {
            "WRONGTYPE Operation against a key holding the wrong kind of value".into()
        }
        RedisError::Str(s) => s.into(),
        RedisError::String(s) => s,
        RedisError::WrongArity => "ERR wrong number of arguments".into(),
    }
}

/// Mark the keys of an execution command for cluster routing (`getkeys-api`).
pub(crate) fn mark_keys(ctx: &Context, positions: impl IntoIterator<Item = usize>) -> RedisResult {
    for p in positions {
        if let Ok(p) = i32::try_from(p) {
            ctx.key_at_pos(p);
        }
    }
    Ok(RedisValue::NoReply)
}
