//! `AI.TENSORSET` and `AI.TENSORGET`.

use redis_module::{Context, RedisError, RedisResult, RedisString};

use super::{bytes, ok, typed};
use crate::{
    reply::{Out, no_reply},
    retained::Retained,
    state::limits,
    tensor::{self, Data, Tensor},
    types::TENSOR_TYPE,
};

/// `AI.TENSORSET key type dims... [BLOB b | VALUES v...]`
pub fn tensorset(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() < 3 {
        return Err(RedisError::WrongArity);
    }
    let key = ctx.open_key_writable(&args[1]);
    typed(key.get_value::<Tensor>(&TENSOR_TYPE))?; // WRONGTYPE before parsing, as RedisAI
    let a = bytes(&args[2..]);
    // A large BLOB is kept as the argument Redis already holds (retained), not copied.
    let keep = |i: usize| -> Option<Data> {
        let s = args.get(2 + i)?;
        (s.as_slice().len() >= tensor::KEEP_EXTERNAL_FROM)
            // SAFETY: an argument of this command, on the main thread.
            .then(|| Data::external(Box::new(unsafe { Retained::new(s.inner) })))
    };
    let t = Tensor::from_args_keeping(&a, &limits(), &keep).map_err(|x| RedisError::String(x.0))?;
    typed(key.set_value(&TENSOR_TYPE, t))?;
    ctx.replicate_verbatim();
    ok()
}

/// `AI.TENSORGET key [META] [BLOB | VALUES]`
pub fn tensorget(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if !(2..=4).contains(&args.len()) {
        return Err(RedisError::WrongArity);
    }
    let key = ctx.open_key(&args[1]);
    let t = typed(key.get_value::<Tensor>(&TENSOR_TYPE))?.ok_or(RedisError::Str(
        "ERR tensor key is empty or in a different shard",
    ))?;
    let f = tensor::parse_get_format(&bytes(&args[2..])).map_err(|x| RedisError::String(x.0))?;
    // Written straight from the stored bytes: no copy of the data, no list of values.
    Out(ctx.ctx)
        .tensor(t, f, &limits())
        .map_err(RedisError::String)?;
    no_reply()
}
