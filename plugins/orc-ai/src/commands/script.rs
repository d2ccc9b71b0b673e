//! `AI.SCRIPTSTORE`, `AI.SCRIPTSET`, `AI.SCRIPTGET` and `AI.SCRIPTDEL`.

use std::sync::Arc;

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::{bulk, bytes, e, get_script, ok, origin, typed};
use crate::{
    args::is,
    objects::{Script, ScriptValue},
    script,
    types::SCRIPT_TYPE,
};

fn store_script(ctx: &Context, args: Vec<RedisString>, deprecated: bool) -> RedisResult {
    let a = bytes(&args[1..]);
    let meta = if deprecated {
        script::parse_set(&a)
    } else {
        script::parse_store(&a)
    }
    .map_err(e)?;
    let key = ctx.open_key_writable(&args[1]);
    typed(key.get_value::<ScriptValue>(&SCRIPT_TYPE))?;
    let s = Script::new(args[1].as_slice(), meta, origin(ctx)).map_err(e)?;
    typed(key.set_value(&SCRIPT_TYPE, ScriptValue(Arc::new(s))))?;
    ctx.replicate_verbatim();
    ok()
}

/// `AI.SCRIPTSTORE key device [TAG t] ENTRY_POINTS n fn... SOURCE src`
pub fn scriptstore(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    store_script(ctx, args, false)
}

/// Deprecated `AI.SCRIPTSET key device [TAG t] SOURCE src`
pub fn scriptset(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    store_script(ctx, args, true)
}

/// `AI.SCRIPTGET key [META] [SOURCE]`
pub fn scriptget(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if !(2..=4).contains(&args.len()) {
        return Err(RedisError::WrongArity);
    }
    let s = get_script(ctx, &args[1])?;
    let m = &s.0.meta;
    let opts = bytes(&args[2..]);
    let meta = opts.iter().any(|o| is(o, "META"));
    let source = opts.iter().any(|o| is(o, "SOURCE"));
    if source && !meta {
        return Ok(bulk(&m.source));
    }
    let mut out = vec![
        bulk("device"),
        bulk(&m.device),
        bulk("tag"),
        bulk(&m.tag),
        bulk("Entry Points"),
        RedisValue::Array(m.entry_points.iter().map(|e| bulk(e)).collect()),
    ];
    if !meta || source {
        out.push(bulk("source"));
        out.push(bulk(&m.source));
    }
    Ok(RedisValue::Array(out))
}

/// `AI.SCRIPTDEL key`
pub fn scriptdel(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    super::model::delete(ctx, &args, false)
}
