//! The run commands: `AI.MODELEXECUTE`, `AI.SCRIPTEXECUTE` and the deprecated
//! `AI.MODELRUN`, `AI.SCRIPTRUN`. Parsed here (see [`crate::execute`]), queued on the
//! object's device, answered by a worker.

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::{bytes, e, get_model, get_script, key_string, mark_keys, no_transactions, typed};
use crate::{
    args::text,
    blocked::Ticket,
    exec::{Job, Work, inline, submit},
    execute::{self, RunRequest},
    model::Backend,
    objects::{ModelValue, ScriptValue},
    tensor::Tensor,
    types::TENSOR_TYPE,
};

/// The input tensors (shared with the keyspace, not copied).
fn fetch_inputs(ctx: &Context, keys: &[&[u8]]) -> Result<Vec<Tensor>, RedisError> {
    keys.iter()
        .map(|k| {
            let key = ctx.open_key(&key_string(ctx, k));
            typed(key.get_value::<Tensor>(&TENSOR_TYPE))?
                .cloned()
                .ok_or(RedisError::Str(
                    "ERR tensor key is empty or in a different shard",
                ))
        })
        .collect()
}

fn check_outputs(ctx: &Context, keys: &[&[u8]]) -> Result<(), RedisError> {
    for k in keys {
        typed(
            ctx.open_key(&key_string(ctx, k))
                .get_value::<Tensor>(&TENSOR_TYPE),
        )?;
    }
    Ok(())
}

fn queue(ctx: &Context, device: &str, work: Work, req: &RunRequest<'_>) -> RedisResult {
    let inputs = fetch_inputs(ctx, &req.inputs)?;
    check_outputs(ctx, &req.outputs)?;
    if let Some(answer) = inline::try_run(ctx, device, &work, &inputs, &req.outputs, req.timeout_ms)
    {
        return answer;
    }
    let outputs = req.outputs.iter().map(|o| o.to_vec()).collect();
    submit(device, || {
        Job::new(work, inputs, outputs, Ticket::block(ctx, req.timeout_ms))
    })
    .map_err(e)?;
    Ok(RedisValue::NoReply)
}

fn queue_model(ctx: &Context, m: ModelValue, req: &RunRequest<'_>) -> RedisResult {
    let device = m.0.meta.device.clone();
    queue(ctx, &device, Work::Model(m), req)
}

fn queue_script(
    ctx: &Context,
    s: ScriptValue,
    function: &[u8],
    req: &RunRequest<'_>,
) -> RedisResult {
    let device = s.0.meta.device.clone();
    let work = Work::Script {
        script: s,
        function: text(function),
        keys: req.keys.iter().map(|k| text(k)).collect(),
        args: req.args.iter().map(|k| text(k)).collect(),
    };
    queue(ctx, &device, work, req)
}

/// `AI.MODELEXECUTE key INPUTS n in... OUTPUTS m out... [TIMEOUT ms]`
pub fn modelexecute(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let a = bytes(&args);
    if ctx.is_keys_position_request() {
        return mark_keys(ctx, execute::modelexecute_keys(&a));
    }
    no_transactions(ctx)?;
    if a.len() < 8 {
        return Err(RedisError::Str(
            "ERR wrong number of arguments for 'AI.MODELEXECUTE' command",
        ));
    }
    let m = get_model(ctx, &args[1])?;
    let meta = &m.0.meta;
    // TORCH models do not declare their outputs.
    let declared_out = (meta.backend != Backend::Torch).then_some(meta.outputs.len());
    let req = execute::modelexecute(&a, meta.inputs.len(), declared_out).map_err(e)?;
    queue_model(ctx, m.clone(), &req)
}

/// Deprecated `AI.MODELRUN key [TIMEOUT t] INPUTS k... OUTPUTS k...`
pub fn modelrun(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let a = bytes(&args);
    if ctx.is_keys_position_request() {
        return mark_keys(ctx, execute::deprecated_run_keys(&a));
    }
    no_transactions(ctx)?;
    if a.len() < 6 {
        return Err(RedisError::Str(
            "ERR wrong number of arguments for 'AI.MODELRUN' command",
        ));
    }
    let m = get_model(ctx, &args[1])?;
    let req = execute::modelrun(&a, m.0.meta.inputs.len()).map_err(e)?;
    queue_model(ctx, m.clone(), &req)
}

/// `AI.SCRIPTEXECUTE key fn [KEYS n k...] [INPUTS n t...] [ARGS n a...] [OUTPUTS n o...] [TIMEOUT ms]`
pub fn scriptexecute(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let a = bytes(&args);
    if ctx.is_keys_position_request() {
        return mark_keys(ctx, execute::scriptexecute_keys(&a));
    }
    no_transactions(ctx)?;
    if a.len() < 5 {
        return Err(e(crate::args::arity("AI.SCRIPTEXECUTE")));
    }
    let s = get_script(ctx, &args[1])?;
    let req = execute::scriptexecute(&a).map_err(e)?;
    queue_script(ctx, s, a[2], &req)
}

/// Deprecated `AI.SCRIPTRUN key fn [TIMEOUT t] INPUTS k... [$ k...] OUTPUTS k...`
pub fn scriptrun(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let a = bytes(&args);
    if ctx.is_keys_position_request() {
        return mark_keys(ctx, execute::deprecated_run_keys(&a));
    }
    no_transactions(ctx)?;
    if a.len() < 4 {
        return Err(e(crate::args::arity("AI.SCRIPTRUN")));
    }
    let s = get_script(ctx, &args[1])?;
    let req = execute::scriptrun(&a).map_err(e)?;
    queue_script(ctx, s, a[2], &req)
}
