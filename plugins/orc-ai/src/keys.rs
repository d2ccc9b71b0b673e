//! Keys as the command handlers and the workers open them: names (any bytes), the
//! stored model and script values, and errors as a client reads them.

use redis_module::{Context, RedisError, RedisString};

use crate::{
    objects::{ModelValue, ScriptValue},
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
