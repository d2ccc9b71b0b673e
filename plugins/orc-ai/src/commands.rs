//! Command handlers: parse on the main thread, reply or queue.

use std::{sync::Arc, time::Duration, time::Instant};

use redis_module::{Context, ContextFlags, RedisError, RedisResult, RedisString, RedisValue};

use crate::{
    args::{Reply, arity, is, text, uint},
    config::{ConfigCmd, parse_config},
    exec::{Job, Work, submit},
    model::{self, Backend},
    objects::{ModelValue, ScriptValue, build_model, build_script},
    script,
    state::{Kind, Stats, lock, state},
    tensor::{self, Tensor, Value},
    types::{MODEL_TYPE, SCRIPT_TYPE, TENSOR_TYPE},
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

/// Wrap a command handler so that a panic (a bug) answers with an error instead of
/// aborting the server.
pub fn guarded(
    ctx: &Context,
    args: Vec<RedisString>,
    f: fn(&Context, Vec<RedisString>) -> RedisResult,
) -> RedisResult {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(ctx, args))).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        redis_module::logging::log_warning(format!("orc-ai: a command panicked (bug): {msg}"));
        Err(RedisError::String(format!(
            "ERR orc-ai internal error (the server keeps running): {msg}"
        )))
    })
}

fn e(r: Reply) -> RedisError {
    RedisError::String(r.0)
}

fn bytes(args: &[RedisString]) -> Vec<&[u8]> {
    args.iter().map(|a| a.as_slice()).collect()
}

fn ok() -> RedisResult {
    Ok(RedisValue::SimpleStringStatic("OK"))
}

fn bulk(s: &str) -> RedisValue {
    RedisValue::BulkString(s.to_string())
}

fn no_transactions(ctx: &Context) -> Result<(), RedisError> {
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

// ---- tensors ----

/// `AI.TENSORSET key type dims... [BLOB b | VALUES v...]`
pub fn tensorset(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() < 3 {
        return Err(RedisError::WrongArity);
    }
    let key = ctx.open_key_writable(&args[1]);
    typed(key.get_value::<Tensor>(&TENSOR_TYPE))?; // WRONGTYPE before parsing, as RedisAI
    let a = bytes(&args[2..]);
    // A large BLOB is kept as the argument Redis already holds (retained), not copied.
    let keep = |i: usize| -> Option<tensor::Data> {
        let s = args.get(2 + i)?;
        if s.as_slice().len() < tensor::KEEP_EXTERNAL_FROM {
            return None;
        }
        // SAFETY: retaining a live argument string; released in `Retained::drop`.
        unsafe {
            redis_module::raw::RedisModule_RetainString.expect("API")(std::ptr::null_mut(), s.inner)
        };
        Some(tensor::Data::External(Box::new(Retained(s.inner))))
    };
    let t = Tensor::from_args_keeping(&a, &keep).map_err(|x| RedisError::String(x.0))?;
    typed(key.set_value(&TENSOR_TYPE, t))?;
    ctx.replicate_verbatim();
    ok()
}

/// A Redis string kept alive (reference-counted by Redis) as a tensor's bytes.
struct Retained(*mut redis_module::raw::RedisModuleString);

// SAFETY: the string is never modified while retained (its reference count is above one),
// and it is only read; it is released on the main thread, where values are freed.
unsafe impl Send for Retained {}
unsafe impl Sync for Retained {}

impl tensor::ExternalBytes for Retained {
    fn bytes(&self) -> &[u8] {
        let mut len = 0usize;
        // SAFETY: a retained, live string; the pointer is valid for `len` bytes while it lives.
        unsafe {
            let p = redis_module::raw::RedisModule_StringPtrLen.expect("API")(self.0, &mut len);
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        }
    }
}

impl Drop for Retained {
    fn drop(&mut self) {
        // SAFETY: releases the reference taken in `tensorset`.
        unsafe {
            redis_module::raw::RedisModule_FreeString.expect("API")(std::ptr::null_mut(), self.0)
        };
    }
}

/// The reply of `AI.TENSORGET` for `t` in format `f`.
pub(crate) fn tensor_reply(t: &Tensor, f: tensor::GetFormat) -> RedisValue {
    let values = || {
        RedisValue::Array(
            t.values()
                .into_iter()
                .map(|v| match v {
                    Value::Float(x) => RedisValue::Float(x),
                    Value::Int(i) => RedisValue::Integer(i),
                    Value::Bytes(b) => RedisValue::StringBuffer(b),
                })
                .collect(),
        )
    };
    if !f.meta {
        return if f.values {
            values()
        } else {
            RedisValue::StringBuffer(t.data.to_vec())
        };
    }
    let mut out = vec![
        bulk("dtype"),
        bulk(t.dtype.name()),
        bulk("shape"),
        RedisValue::Array(t.shape.iter().map(|d| RedisValue::Integer(*d)).collect()),
    ];
    if f.blob {
        out.push(bulk("blob"));
        out.push(RedisValue::StringBuffer(t.data.to_vec()));
    } else if f.values {
        out.push(bulk("values"));
        out.push(values());
    }
    RedisValue::Array(out)
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
    if !f.blob {
        return Ok(tensor_reply(t, f));
    }
    // BLOB and META BLOB (what SmartRedis asks for) are answered straight from the stored
    // bytes, without an intermediate copy of the data.
    reply_blob(ctx, t, f.meta);
    Ok(RedisValue::NoReply)
}

fn reply_blob(ctx: &Context, t: &Tensor, meta: bool) {
    use redis_module::raw;
    let c = ctx.ctx;
    let text = |s: &[u8]| {
        // SAFETY: `c` is the live command context; Redis copies the buffer.
        unsafe {
            raw::RedisModule_ReplyWithStringBuffer.expect("API")(c, s.as_ptr().cast(), s.len())
        };
    };
    // SAFETY: reply functions of the command's own context, called on the main thread.
    unsafe {
        if meta {
            raw::RedisModule_ReplyWithArray.expect("API")(c, 6);
            text(b"dtype");
            text(t.dtype.name().as_bytes());
            text(b"shape");
            raw::RedisModule_ReplyWithArray.expect("API")(c, t.shape.len() as _);
            for d in &t.shape {
                raw::RedisModule_ReplyWithLongLong.expect("API")(c, *d);
            }
            text(b"blob");
        }
    }
    text(&t.data);
}

// ---- models ----

fn store_model(ctx: &Context, args: Vec<RedisString>, deprecated: bool) -> RedisResult {
    let a = bytes(&args[1..]);
    let req = model::parse_store(&a, deprecated).map_err(e)?;
    let m = build_model(req.meta, req.blob).map_err(e)?;
    let key = ctx.open_key_writable(&args[1]);
    typed(key.get_value::<ModelValue>(&MODEL_TYPE))?;
    let tag = m.meta.tag.clone();
    typed(key.set_value(&MODEL_TYPE, ModelValue(Arc::new(m))))?;
    lock(&state().stats).insert(
        args[1].as_slice().to_vec(),
        (Kind::Model, tag, Stats::default()),
    );
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

fn get_model(ctx: &Context, key: &RedisString) -> Result<ModelValue, RedisError> {
    typed(ctx.open_key(key).get_value::<ModelValue>(&MODEL_TYPE))?
        .cloned()
        .ok_or(RedisError::Str("ERR model key is empty"))
}

fn get_script(ctx: &Context, key: &RedisString) -> Result<ScriptValue, RedisError> {
    typed(ctx.open_key(key).get_value::<ScriptValue>(&SCRIPT_TYPE))?
        .cloned()
        .ok_or(RedisError::Str("ERR script key is empty"))
}

/// `AI.MODELGET key [META] [BLOB]`
pub fn modelget(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if !(2..=4).contains(&args.len()) {
        return Err(RedisError::WrongArity);
    }
    let m = get_model(ctx, &args[1])?;
    let m = &m.0;
    let f = model::parse_get(&bytes(&args[2..]));
    let chunk = lock(&state().config).model_chunk_size as usize;
    let blob = || match model::chunks(&m.blob, chunk) {
        Some(c) => RedisValue::Array(
            c.into_iter()
                .map(|c| RedisValue::StringBuffer(c.to_vec()))
                .collect(),
        ),
        None => RedisValue::StringBuffer(m.blob.clone()),
    };
    if !f.meta {
        return Ok(blob());
    }
    let names = |v: &[String]| RedisValue::Array(v.iter().map(|s| bulk(s)).collect());
    let meta = &m.meta;
    let mut out = vec![
        bulk("backend"),
        bulk(meta.backend.name()),
        bulk("device"),
        bulk(&meta.device),
        bulk("tag"),
        bulk(&meta.tag),
        bulk("batchsize"),
        RedisValue::Integer(meta.batch_size as i64),
        bulk("minbatchsize"),
        RedisValue::Integer(meta.min_batch_size as i64),
        bulk("inputs"),
        names(&meta.inputs),
        bulk("outputs"),
        names(&meta.outputs),
        bulk("minbatchtimeout"),
        RedisValue::Integer(meta.min_batch_timeout as i64),
    ];
    if f.blob {
        out.push(bulk("blob"));
        out.push(blob());
    }
    Ok(RedisValue::Array(out))
}

fn delete(ctx: &Context, args: &[RedisString], what: &'static str) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let key = ctx.open_key_writable(&args[1]);
    let found = if what == "model" {
        typed(key.get_value::<ModelValue>(&MODEL_TYPE))?.is_some()
    } else {
        typed(key.get_value::<ScriptValue>(&SCRIPT_TYPE))?.is_some()
    };
    if !found {
        return Err(RedisError::Str(if what == "model" {
            "ERR model key is empty"
        } else {
            "ERR script key is empty"
        }));
    }
    key.delete()?;
    lock(&state().stats).remove(args[1].as_slice());
    ctx.replicate_verbatim();
    ok()
}

/// `AI.MODELDEL key`
pub fn modeldel(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    delete(ctx, &args, "model")
}

/// `AI.SCRIPTDEL key`
pub fn scriptdel(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    delete(ctx, &args, "script")
}

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

fn parse_timeout(args: &[&[u8]], i: usize, suffix: &str) -> Result<Option<Duration>, RedisError> {
    if i >= args.len() {
        return Ok(None);
    }
    if !is(args[i], "TIMEOUT") {
        return Err(RedisError::String(format!(
            "Invalid argument: {}",
            text(args[i])
        )));
    }
    let v = args
        .get(i + 1)
        .ok_or_else(|| RedisError::String(format!("ERR No value provided for TIMEOUT{suffix}")))?;
    let ms = uint(v)
        .filter(|n| *n > 0)
        .ok_or(RedisError::Str("ERR Invalid value for TIMEOUT"))?;
    if i + 2 < args.len() {
        return Err(RedisError::String(format!(
            "Invalid argument: {}",
            text(args[i + 2])
        )));
    }
    Ok(Some(Duration::from_millis(ms)))
}

/// Mark the keys of an execution command for cluster routing (`getkeys-api`).
fn mark_keys(ctx: &Context, positions: impl IntoIterator<Item = usize>) -> RedisResult {
    for p in positions {
        ctx.key_at_pos(p as i32);
    }
    Ok(RedisValue::NoReply)
}

/// Positions of `count`-prefixed lists after `kw` (e.g. `INPUTS 2 a b`).
fn counted_list_positions(a: &[&[u8]], kw: &str) -> Vec<usize> {
    let Some(i) = a.iter().position(|x| is(x, kw)) else {
        return Vec::new();
    };
    let n = a.get(i + 1).and_then(|x| uint(x)).unwrap_or(0) as usize;
    (i + 2..(i + 2 + n).min(a.len())).collect()
}

/// `AI.MODELEXECUTE key INPUTS n in... OUTPUTS m out... [TIMEOUT ms]`
pub fn modelexecute(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let a = bytes(&args);
    if ctx.is_keys_position_request() {
        let mut pos = vec![1];
        pos.extend(counted_list_positions(&a, "INPUTS"));
        pos.extend(counted_list_positions(&a, "OUTPUTS"));
        return mark_keys(ctx, pos);
    }
    no_transactions(ctx)?;
    if a.len() < 8 {
        return Err(RedisError::Str(
            "ERR wrong number of arguments for 'AI.MODELEXECUTE' command",
        ));
    }
    let m = get_model(ctx, &args[1])?;
    if !is(a[2], "INPUTS") {
        return Err(RedisError::Str("ERR INPUTS not specified"));
    }
    let n = std::str::from_utf8(a[3])
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(RedisError::Str("ERR Invalid argument for input_count"))?;
    if n <= 0 {
        return Err(RedisError::Str(
            "ERR Input count must be a positive integer",
        ));
    }
    let n = n as usize;
    let declared_in = m.0.meta.inputs.len();
    if declared_in > 0 && n != declared_in {
        return Err(RedisError::Str(
            "Number of keys given as INPUTS here does not match model definition",
        ));
    }
    let ins = a.get(4..4 + n).filter(|l| !l.iter().any(|x| is(x, "OUTPUTS"))).ok_or(RedisError::Str(
        "ERR number of input keys to AI.MODELEXECUTE command does not match the number of given arguments",
    ))?;
    let i = 4 + n;
    if !a.get(i).is_some_and(|x| is(x, "OUTPUTS")) {
        return Err(RedisError::Str("ERR OUTPUTS not specified"));
    }
    let m_out = a
        .get(i + 1)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(RedisError::Str("ERR Invalid argument for output_count"))?;
    if m_out <= 0 {
        return Err(RedisError::Str(
            "ERR Output count must be a positive integer",
        ));
    }
    let m_out = m_out as usize;
    let declared_out = m.0.meta.outputs.len();
    if declared_out > 0 && m.0.meta.backend != Backend::Torch && m_out != declared_out {
        return Err(RedisError::Str(
            "Number of keys given as OUTPUTS here does not match model definition",
        ));
    }
    let outs = a.get(i + 2..i + 2 + m_out).ok_or(RedisError::Str(
        "ERR number of output keys to AI.MODELEXECUTE command does not match the number of given arguments",
    ))?;
    let timeout = parse_timeout(&a, i + 2 + m_out, "")?;
    let inputs = fetch_inputs(ctx, ins)?;
    check_outputs(ctx, outs)?;
    queue_model(ctx, &args[1], m, inputs, outs, timeout)
}

fn queue_model(
    ctx: &Context,
    key: &RedisString,
    m: ModelValue,
    inputs: Vec<Tensor>,
    outs: &[&[u8]],
    timeout: Option<Duration>,
) -> RedisResult {
    let device = m.0.meta.device.clone();
    submit(
        &device,
        Job {
            key: key.as_slice().to_vec(),
            work: Work::Model(m),
            inputs,
            outputs: outs.iter().map(|o| o.to_vec()).collect(),
            timeout,
            queued: Instant::now(),
            client: ctx.block_client(),
        },
    );
    Ok(RedisValue::NoReply)
}

/// Split the deprecated `... INPUTS a b OUTPUTS c` lists.
type Lists<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>);

fn split_lists<'a>(a: &'a [&'a [u8]], from: usize) -> Option<Lists<'a>> {
    let i = (from..a.len()).find(|j| is(a[*j], "INPUTS"))?;
    let o = (i + 1..a.len()).find(|j| is(a[*j], "OUTPUTS"))?;
    Some((a[i + 1..o].to_vec(), a[o + 1..].to_vec()))
}

/// Deprecated `AI.MODELRUN key [TIMEOUT t] INPUTS k... OUTPUTS k...`
pub fn modelrun(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let a = bytes(&args);
    if ctx.is_keys_position_request() {
        let mut pos = vec![1];
        if let Some(i) = a.iter().position(|x| is(x, "INPUTS")) {
            pos.extend((i + 1..a.len()).filter(|j| !is(a[*j], "OUTPUTS")));
        }
        return mark_keys(ctx, pos);
    }
    no_transactions(ctx)?;
    if a.len() < 6 {
        return Err(RedisError::Str(
            "ERR wrong number of arguments for 'AI.MODELRUN' command",
        ));
    }
    let m = get_model(ctx, &args[1])?;
    let mut timeout = None;
    let mut from = 2;
    if is(a[2], "TIMEOUT") {
        let ms = uint(a[3])
            .filter(|n| *n > 0)
            .ok_or(RedisError::Str("ERR Invalid value for TIMEOUT"))?;
        timeout = Some(Duration::from_millis(ms));
        from = 4;
    }
    let (ins, outs) = split_lists(&a, from).ok_or(RedisError::Str("ERR INPUTS not specified"))?;
    if !m.0.meta.inputs.is_empty() && ins.len() != m.0.meta.inputs.len() {
        return Err(RedisError::Str(
            "Number of keys given as INPUTS here does not match model definition",
        ));
    }
    let inputs = fetch_inputs(ctx, &ins)?;
    check_outputs(ctx, &outs)?;
    queue_model(ctx, &args[1], m, inputs, &outs, timeout)
}

// ---- scripts ----

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
    let s = build_script(meta).map_err(e)?;
    let tag = s.meta.tag.clone();
    typed(key.set_value(&SCRIPT_TYPE, ScriptValue(Arc::new(s))))?;
    lock(&state().stats).insert(
        args[1].as_slice().to_vec(),
        (Kind::Script, tag, Stats::default()),
    );
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

/// `AI.SCRIPTEXECUTE key fn [KEYS n k...] [INPUTS n t...] [ARGS n a...] [OUTPUTS n o...] [TIMEOUT ms]`
pub fn scriptexecute(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let a = bytes(&args);
    if ctx.is_keys_position_request() {
        let mut pos = vec![1];
        for kw in ["KEYS", "INPUTS", "OUTPUTS"] {
            pos.extend(counted_list_positions(&a, kw));
        }
        return mark_keys(ctx, pos);
    }
    no_transactions(ctx)?;
    if a.len() < 5 {
        return Err(arity_err("AI.SCRIPTEXECUTE"));
    }
    let s = get_script(ctx, &args[1])?;
    let function = text(a[2]);
    if !(is(a[3], "KEYS") || is(a[3], "INPUTS")) {
        return Err(RedisError::Str(
            "ERR KEYS or INPUTS scope must be provided first for AI.SCRIPTEXECUTE command",
        ));
    }
    let mut lists: [Option<Vec<&[u8]>>; 4] = [None, None, None, None];
    let names = ["KEYS", "INPUTS", "ARGS", "OUTPUTS"];
    let mut i = 3;
    let mut timeout = None;
    while i < a.len() {
        if is(a[i], "TIMEOUT") {
            timeout = parse_timeout(&a, i, " in AI.SCRIPTEXECUTE").map_err(|x| match x {
                RedisError::String(s) if s.starts_with("Invalid argument") => {
                    RedisError::Str("ERR Encountered problem parsing AI.SCRIPTEXECUTE")
                }
                other => other,
            })?;
            break;
        }
        let Some(which) = names.iter().position(|n| is(a[i], n)) else {
            return Err(RedisError::String(format!(
                "ERR Invalid AI.SCRIPTEXECUTE command. Unexpected argument: {}",
                text(a[i])
            )));
        };
        if lists[which].is_some() {
            return Err(RedisError::String(format!(
                "ERR Already Encountered {} scope in AI.SCRIPTEXECUTE command",
                names[which]
            )));
        }
        let what = ["keys", "inputs", "keys", "outputs"][which];
        let n = a.get(i + 1).and_then(|x| uint(x)).ok_or_else(|| {
            RedisError::String(if which == 0 {
                "ERR Invalid or negative value found in number of KEYS".to_string()
            } else {
                format!("ERR Invalid argument for {what} count in AI.SCRIPTEXECUTE")
            })
        })? as usize;
        let items = a.get(i + 2..i + 2 + n).ok_or_else(|| {
            RedisError::String(if which == 0 {
                "ERR Number of pre declared KEYS to be used in the command does not match the number of given arguments".to_string()
            } else {
                format!(
                    "ERR number of {} to AI.SCRIPTEXECUTE command does not match the number of given arguments",
                    ["keys", "inputs", "args", "outputs"][which]
                )
            })
        })?;
        lists[which] = Some(items.to_vec());
        i += 2 + n;
    }
    let [keys, ins, sargs, outs] = lists.map(Option::unwrap_or_default);
    let inputs = fetch_inputs(ctx, &ins)?;
    check_outputs(ctx, &outs)?;
    queue_script(
        ctx,
        &args[1],
        s,
        function,
        keys.iter().map(|k| text(k)).collect(),
        sargs.iter().map(|k| text(k)).collect(),
        inputs,
        &outs,
        timeout,
    )
}

fn arity_err(cmd: &str) -> RedisError {
    RedisError::String(arity(cmd).0)
}

#[allow(clippy::too_many_arguments)]
fn queue_script(
    ctx: &Context,
    key: &RedisString,
    s: ScriptValue,
    function: String,
    keys: Vec<String>,
    args: Vec<String>,
    inputs: Vec<Tensor>,
    outs: &[&[u8]],
    timeout: Option<Duration>,
) -> RedisResult {
    let device = s.0.meta.device.clone();
    submit(
        &device,
        Job {
            key: key.as_slice().to_vec(),
            work: Work::Script {
                script: s,
                function,
                keys,
                args,
            },
            inputs,
            outputs: outs.iter().map(|o| o.to_vec()).collect(),
            timeout,
            queued: Instant::now(),
            client: ctx.block_client(),
        },
    );
    Ok(RedisValue::NoReply)
}

/// Deprecated `AI.SCRIPTRUN key fn [TIMEOUT t] INPUTS k... [$ k...] OUTPUTS k...`
pub fn scriptrun(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let a = bytes(&args);
    if ctx.is_keys_position_request() {
        let mut pos = vec![1];
        if let Some(i) = a.iter().position(|x| is(x, "INPUTS")) {
            pos.extend((i + 1..a.len()).filter(|j| !is(a[*j], "OUTPUTS") && a[*j] != b"$"));
        }
        return mark_keys(ctx, pos);
    }
    no_transactions(ctx)?;
    if a.len() < 4 {
        return Err(arity_err("AI.SCRIPTRUN"));
    }
    let s = get_script(ctx, &args[1])?;
    let function = text(a[2]);
    let mut from = 3;
    let mut timeout = None;
    if a.get(3).is_some_and(|x| is(x, "TIMEOUT")) {
        let ms = a
            .get(4)
            .and_then(|x| uint(x))
            .filter(|n| *n > 0)
            .ok_or(RedisError::Str("ERR Invalid value for TIMEOUT"))?;
        timeout = Some(Duration::from_millis(ms));
        from = 5;
    }
    let (ins, outs) =
        split_lists(&a, from).ok_or(RedisError::Str("ERR Unrecongnized parameter to SCRIPTRUN"))?;
    let ins: Vec<&[u8]> = ins.into_iter().filter(|x| *x != b"$").collect();
    let inputs = fetch_inputs(ctx, &ins)?;
    check_outputs(ctx, &outs)?;
    queue_script(
        ctx,
        &args[1],
        s,
        function,
        Vec::new(),
        Vec::new(),
        inputs,
        &outs,
        timeout,
    )
}

// ---- info, config, scan ----

/// `AI.INFO key [RESETSTAT]`
pub fn info(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if !(2..=3).contains(&args.len()) {
        return Err(RedisError::WrongArity);
    }
    let k = args[1].as_slice();
    let s = state();
    let mut stats = lock(&s.stats);
    let Some((kind, _, st)) = stats.get_mut(k) else {
        return Err(RedisError::Str("ERR cannot find run info for key"));
    };
    if args.len() == 3 && is(args[2].as_slice(), "RESETSTAT") {
        *st = Stats::default();
        return ok();
    }
    let (kind, st) = (*kind, st.clone());
    drop(stats);
    let (backend, device, tag) = match kind {
        Kind::Model => {
            let m = get_model(ctx, &args[1])
                .map_err(|_| RedisError::Str("ERR cannot find run info for key"))?;
            (
                m.0.meta.backend.name().to_string(),
                m.0.meta.device.clone(),
                m.0.meta.tag.clone(),
            )
        }
        Kind::Script => {
            let sc = get_script(ctx, &args[1])
                .map_err(|_| RedisError::Str("ERR cannot find run info for key"))?;
            (
                "TORCH".to_string(),
                sc.0.meta.device.clone(),
                sc.0.meta.tag.clone(),
            )
        }
    };
    Ok(RedisValue::Array(vec![
        bulk("key"),
        RedisValue::StringBuffer(k.to_vec()),
        bulk("type"),
        bulk(if kind == Kind::Model {
            "MODEL"
        } else {
            "SCRIPT"
        }),
        bulk("backend"),
        bulk(&backend),
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
    ]))
}

/// `AI.CONFIG LOADBACKEND b path | BACKENDSPATH p | MODEL_CHUNK_SIZE n | GET name`
pub fn config(_ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let cmd = parse_config(&bytes(&args[1..])).map_err(e)?;
    let s = state();
    match cmd {
        ConfigCmd::LoadBackend(b, path) => {
            let file = lock(&s.config).backend_file(b, Some(&path));
            s.backends
                .load(b, file)
                .map_err(|x| RedisError::String(format!("ERR error loading backend: {x}")))?;
            ok()
        }
        ConfigCmd::BackendsPath(p) => {
            lock(&s.config).backends_path = p.into();
            ok()
        }
        ConfigCmd::ChunkSize(n) => {
            lock(&s.config).model_chunk_size = n;
            ok()
        }
        ConfigCmd::Get(name) => Ok(match name.as_str() {
            "BACKENDSPATH" => bulk(&lock(&s.config).backends_path.display().to_string()),
            "MODEL_CHUNK_SIZE" => RedisValue::Integer(lock(&s.config).model_chunk_size as i64),
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
    redis_module::logging::log_warning("AI._MODELSCAN / AI._SCRIPTSCAN are experimental");
    let stats = lock(&state().stats);
    Ok(RedisValue::Array(
        stats
            .iter()
            .filter(|(_, (k, _, _))| *k == kind)
            .map(|(key, (_, tag, _))| {
                RedisValue::Array(vec![RedisValue::StringBuffer(key.clone()), bulk(tag)])
            })
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

// ---- DAGs ----

struct Keys<'a>(&'a Context);

impl crate::dag::Keyspace for Keys<'_> {
    fn tensor(&self, key: &[u8]) -> Result<Tensor, Reply> {
        let k = self.0.open_key(&key_string(self.0, key));
        match typed(k.get_value::<Tensor>(&TENSOR_TYPE)) {
            Ok(Some(t)) => Ok(t.clone()),
            Ok(None) => Err(Reply::new(
                "ERR tensor key is empty or in a different shard",
            )),
            Err(_) => Err(Reply::new(
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            )),
        }
    }
    fn model(&self, key: &[u8]) -> Result<ModelValue, Reply> {
        get_model(self.0, &key_string(self.0, key)).map_err(|e| Reply(err_string(e)))
    }
    fn script(&self, key: &[u8]) -> Result<ScriptValue, Reply> {
        get_script(self.0, &key_string(self.0, key)).map_err(|e| Reply(err_string(e)))
    }
}

fn err_string(e: RedisError) -> String {
    match e {
        RedisError::WrongType => {
            "WRONGTYPE Operation against a key holding the wrong kind of value".into()
        }
        RedisError::Str(s) => s.into(),
        RedisError::String(s) => s,
        RedisError::WrongArity => "ERR wrong number of arguments".into(),
    }
}

fn dag(ctx: &Context, args: Vec<RedisString>, read_only: bool) -> RedisResult {
    let a = bytes(&args);
    if ctx.is_keys_position_request() {
        return mark_keys(ctx, crate::dag::key_positions(&a));
    }
    no_transactions(ctx)?;
    let d = crate::dag::parse(&a[1..], read_only, &Keys(ctx)).map_err(e)?;
    let device = d.device.clone();
    let timeout = d.timeout_ms.map(Duration::from_millis);
    submit(
        &device,
        Job {
            key: Vec::new(),
            work: Work::Dag(Box::new(d)),
            inputs: Vec::new(),
            outputs: Vec::new(),
            timeout,
            queued: Instant::now(),
            client: ctx.block_client(),
        },
    );
    Ok(RedisValue::NoReply)
}

/// `AI.DAGEXECUTE [LOAD n k...] [PERSIST n k...] [ROUTING k] [TIMEOUT ms] |> op ...`
pub fn dagexecute(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    dag(ctx, args, false)
}

/// `AI.DAGEXECUTE_RO [LOAD n k...] [ROUTING k] [TIMEOUT ms] |> op ...`
pub fn dagexecute_ro(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    dag(ctx, args, true)
}
