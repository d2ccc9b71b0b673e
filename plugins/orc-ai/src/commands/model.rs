//! `AI.MODELSTORE`, `AI.MODELSET`, `AI.MODELGET` and `AI.MODELDEL`.

use std::sync::Arc;

use redis_module::{Context, RedisError, RedisResult, RedisString};

use super::{bytes, e, get_model, ok, origin, typed};
use crate::{
    model,
    objects::{Model, ModelValue},
    reply::{Out, no_reply},
    state::{lock, state},
    types::{MODEL_TYPE, SCRIPT_TYPE},
};

fn store_model(ctx: &Context, args: Vec<RedisString>, deprecated: bool) -> RedisResult {
    let a = bytes(&args[1..]);
    let req = model::parse_store(&a, deprecated).map_err(e)?;
    let m = Model::new(args[1].as_slice(), req.meta, req.blob, origin(ctx)).map_err(e)?;
    let key = ctx.open_key_writable(&args[1]);
    typed(key.get_value::<ModelValue>(&MODEL_TYPE))?;
    typed(key.set_value(&MODEL_TYPE, ModelValue(Arc::new(m))))?;
    ctx.replicate_verbatim();
    ok()
}

/// `AI.MODELSTORE key backend device [TAG t] [BATCHSIZE n ...] [INPUTS n ... OUTPUTS n ...] BLOB chunks...`
pub fn modelstore(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    store_model(ctx, args, false)
}

/// Deprecated `AI.MODELSET`.
pub fn modelset(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    store_model(ctx, args, true)
}

/// `AI.MODELGET key [META] [BLOB]`, written straight from the stored bytes.
pub fn modelget(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if !(2..=4).contains(&args.len()) {
        return Err(RedisError::WrongArity);
    }
    let m = get_model(ctx, &args[1])?;
    let m = &m.0;
    let f = model::parse_get(&bytes(&args[2..]));
    let chunk = lock(&state().config).model_chunk_size as usize;
    let out = Out(ctx.ctx);
    let blob = || match model::chunks(&m.blob, chunk) {
        Some(c) => {
            out.array(c.len());
            c.iter().for_each(|c| out.bulk(c));
        }
        None => out.bulk(&m.blob),
    };
    if !f.meta {
        blob();
        return no_reply();
    }
    let meta = &m.meta;
    let names = |v: &[String]| {
        out.array(v.len());
        v.iter().for_each(|s| out.bulk(s.as_bytes()));
    };
    out.array(if f.blob { 18 } else { 16 });
    for (k, v) in [
        ("backend", meta.backend.name()),
        ("device", meta.device.as_str()),
        ("tag", meta.tag.as_str()),
    ] {
        out.bulk(k.as_bytes());
        out.bulk(v.as_bytes());
    }
    out.bulk(b"batchsize");
    out.int(meta.batch_size as i64);
    out.bulk(b"minbatchsize");
    out.int(meta.min_batch_size as i64);
    out.bulk(b"inputs");
    names(&meta.inputs);
    out.bulk(b"outputs");
    names(&meta.outputs);
    out.bulk(b"minbatchtimeout");
    out.int(meta.min_batch_timeout as i64);
    if f.blob {
        out.bulk(b"blob");
        blob();
    }
    no_reply()
}

/// Delete a model or script key (statistics go with the object).
pub(super) fn delete(ctx: &Context, args: &[RedisString], model: bool) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let key = ctx.open_key_writable(&args[1]);
    let found = if model {
        typed(key.get_value::<ModelValue>(&MODEL_TYPE))?.is_some()
    } else {
        typed(key.get_value::<crate::objects::ScriptValue>(&SCRIPT_TYPE))?.is_some()
    };
    if !found {
        return Err(RedisError::Str(if model {
            "ERR model key is empty"
        } else {
            "ERR script key is empty"
        }));
    }
    key.delete()?;
    ctx.replicate_verbatim();
    ok()
}

/// `AI.MODELDEL key`
pub fn modeldel(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    delete(ctx, &args, true)
}
