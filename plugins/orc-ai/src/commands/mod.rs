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

pub(crate) use crate::keys::{err_string, get_model, get_script, key_string, typed};
use crate::{args::Reply, objects::Origin};

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
        let msg = orc_ai_backend_abi::panic_message(&*p);
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

/// Mark the keys of an execution command for cluster routing (`getkeys-api`).
pub(crate) fn mark_keys(ctx: &Context, positions: impl IntoIterator<Item = usize>) -> RedisResult {
    for p in positions {
        if let Ok(p) = i32::try_from(p) {
            ctx.key_at_pos(p);
        }
    }
    Ok(RedisValue::NoReply)
}
