//! The module data types `AI_TENSOR`, `AI__MODEL` and `AI_SCRIPT`: RDB (RedisAI encoding
//! version 4), AOF rewrite, copy, memory usage.

use std::{
    ffi::{CStr, c_int, c_void},
    ptr::null_mut,
    sync::Arc,
};

use redis_module::{native_types::RedisType, raw};

use crate::{
    model::{Backend, ModelMeta},
    objects::{Model, ModelValue, Script, ScriptValue, build_model, build_script},
    script::ScriptMeta,
    state::{lock, state},
    tensor::{DType, Tensor, element_count},
};

/// RedisAI's encoding version.
pub const ENCVER: i32 = 4;

const fn methods(
    rdb_load: raw::RedisModuleTypeLoadFunc,
    rdb_save: raw::RedisModuleTypeSaveFunc,
    aof_rewrite: raw::RedisModuleTypeRewriteFunc,
    mem_usage: raw::RedisModuleTypeMemUsageFunc,
    free: raw::RedisModuleTypeFreeFunc,
    copy: raw::RedisModuleTypeCopyFunc,
) -> raw::RedisModuleTypeMethods {
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load,
        rdb_save,
        aof_rewrite,
        mem_usage,
        digest: None,
        free,
        aux_load: None,
        aux_save: None,
        aux_save_triggers: 0,
        free_effort: None,
        unlink: None,
        copy,
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
        aux_save2: None,
    }
}

/// Tensors.
pub static TENSOR_TYPE: RedisType = RedisType::new(
    "AI_TENSOR",
    ENCVER,
    methods(
        Some(tensor_load),
        Some(tensor_save),
        Some(tensor_aof),
        Some(tensor_mem),
        Some(free::<Tensor>),
        Some(copy::<Tensor>),
    ),
);

/// Models.
pub static MODEL_TYPE: RedisType = RedisType::new(
    "AI__MODEL",
    ENCVER,
    methods(
        Some(model_load),
        Some(model_save),
        Some(model_aof),
        Some(model_mem),
        Some(free::<ModelValue>),
        Some(copy::<ModelValue>),
    ),
);

/// Scripts.
pub static SCRIPT_TYPE: RedisType = RedisType::new(
    "AI_SCRIPT",
    ENCVER,
    methods(
        Some(script_load),
        Some(script_save),
        Some(script_aof),
        Some(script_mem),
        Some(free::<ScriptValue>),
        Some(copy::<ScriptValue>),
    ),
);

unsafe extern "C" fn free<T>(value: *mut c_void) {
    if !value.is_null() {
        // SAFETY: values of these types are always `Box<T>` made by `set_value` or a loader.
        drop(unsafe { Box::from_raw(value.cast::<T>()) });
    }
}

unsafe extern "C" fn copy<T: Clone>(
    _: *mut raw::RedisModuleString,
    _: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    // SAFETY: as above; the value is only read.
    let v = unsafe { &*value.cast::<T>() };
    Box::into_raw(Box::new(v.clone())).cast()
}

fn log_warning(msg: &str) {
    redis_module::logging::log_warning(msg);
}

// ---- tensors ----

unsafe extern "C" fn tensor_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    // SAFETY: a tensor value.
    let t = unsafe { &*value.cast::<Tensor>() };
    let (code, bits) = t.dtype.dlpack();
    raw::save_unsigned(rdb, code);
    raw::save_unsigned(rdb, bits);
    raw::save_signed(rdb, t.shape.len() as i64);
    for d in &t.shape {
        raw::save_signed(rdb, *d);
    }
    raw::save_slice(rdb, &t.data);
    if t.dtype == DType::String {
        let mut off = 0u64;
        for s in t.strings() {
            raw::save_unsigned(rdb, off);
            off += s.len() as u64 + 1;
        }
    }
}

fn tensor_read(rdb: *mut raw::RedisModuleIO) -> Result<Tensor, String> {
    let e = |e: redis_module::error::Error| e.to_string();
    let code = raw::load_unsigned(rdb).map_err(e)?;
    let bits = raw::load_unsigned(rdb).map_err(e)?;
    let dtype = DType::from_dlpack(code, bits)
        .ok_or(format!("unknown tensor type code {code} bits {bits}"))?;
    let ndim = raw::load_signed(rdb).map_err(e)?;
    let mut shape = Vec::new();
    for _ in 0..ndim.max(0) {
        shape.push(raw::load_signed(rdb).map_err(e)?);
    }
    let data = raw::load_string_buffer(rdb).map_err(e)?.as_ref().to_vec();
    if dtype == DType::String {
        for _ in 0..element_count(&shape).unwrap_or(0) {
            raw::load_unsigned(rdb).map_err(e)?;
        }
    }
    Ok(Tensor {
        dtype,
        shape,
        data: data.into(),
    })
}

unsafe extern "C" fn tensor_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if encver != ENCVER {
        log_warning(&format!(
            "orc-ai: cannot read AI_TENSOR encoding version {encver} (this module reads {ENCVER})"
        ));
        return null_mut();
    }
    match std::panic::catch_unwind(|| tensor_read(rdb))
        .unwrap_or_else(|_| Err("panicked while reading (bug)".into()))
    {
        Ok(t) => Box::into_raw(Box::new(t)).cast(),
        Err(e) => {
            log_warning(&format!("orc-ai: unreadable tensor in RDB: {e}"));
            null_mut()
        }
    }
}

unsafe extern "C" fn tensor_mem(value: *const c_void) -> usize {
    // SAFETY: a tensor value.
    unsafe { &*value.cast::<Tensor>() }.mem_usage()
}

/// Emit one command in an AOF rewrite: `cmd key args...`.
unsafe fn emit(
    aof: *mut raw::RedisModuleIO,
    cmd: &CStr,
    key: *mut raw::RedisModuleString,
    args: &[Vec<u8>],
) {
    // SAFETY: the API pointers are set once by Redis at module load, before any callback.
    let fns = unsafe {
        (
            raw::RedisModule_CreateString,
            raw::RedisModule_FreeString,
            raw::RedisModule_EmitAOF,
        )
    };
    let (Some(create), Some(free), Some(emit)) = fns else {
        return;
    };
    // SAFETY: strings made here are freed below; EmitAOF copies what it needs.
    unsafe {
        let mut v: Vec<*mut raw::RedisModuleString> = args
            .iter()
            .map(|a| create(null_mut(), a.as_ptr().cast(), a.len()))
            .collect();
        emit(
            aof,
            cmd.as_ptr(),
            c"sv".as_ptr(),
            key,
            v.as_mut_ptr(),
            v.len(),
        );
        for s in v {
            free(null_mut(), s);
        }
    }
}

/// The arguments of an `AI.TENSORSET` that recreates `t` (after the key).
pub fn tensorset_args(t: &Tensor) -> Vec<Vec<u8>> {
    let mut a = vec![t.dtype.name().as_bytes().to_vec()];
    a.extend(t.shape.iter().map(|d| d.to_string().into_bytes()));
    a.push(b"BLOB".to_vec());
    a.push(t.data.to_vec());
    a
}

unsafe extern "C" fn tensor_aof(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    // SAFETY: a tensor value.
    let t = unsafe { &*value.cast::<Tensor>() };
    unsafe { emit(aof, c"AI.TENSORSET", key, &tensorset_args(t)) };
}

// ---- models ----

fn save_cstr(rdb: *mut raw::RedisModuleIO, s: &str) {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    raw::save_slice(rdb, &v);
}

fn load_cstr(rdb: *mut raw::RedisModuleIO) -> Result<String, String> {
    let b = raw::load_string_buffer(rdb).map_err(|e| e.to_string())?;
    let b = b.as_ref();
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    Ok(String::from_utf8_lossy(b).into_owned())
}

fn chunk_size() -> usize {
    lock(&state().config).model_chunk_size as usize
}

unsafe extern "C" fn model_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    // SAFETY: a model value.
    let m = &unsafe { &*value.cast::<ModelValue>() }.0;
    let meta = &m.meta;
    raw::save_unsigned(rdb, meta.backend.code());
    save_cstr(rdb, &meta.device);
    raw::save_slice(rdb, meta.tag.as_bytes());
    raw::save_unsigned(rdb, meta.batch_size);
    raw::save_unsigned(rdb, meta.min_batch_size);
    raw::save_unsigned(rdb, meta.min_batch_timeout);
    for names in [&meta.inputs, &meta.outputs] {
        raw::save_unsigned(rdb, names.len() as u64);
        for n in names {
            save_cstr(rdb, n);
        }
    }
    raw::save_unsigned(rdb, m.blob.len() as u64);
    let chunks: Vec<&[u8]> = m.blob.chunks(chunk_size().max(1)).collect();
    raw::save_unsigned(rdb, chunks.len() as u64);
    for c in chunks {
        raw::save_slice(rdb, c);
    }
}

fn model_read(rdb: *mut raw::RedisModuleIO) -> Result<Model, String> {
    let e = |e: redis_module::error::Error| e.to_string();
    let code = raw::load_unsigned(rdb).map_err(e)?;
    let backend = Backend::from_code(code).ok_or(format!("unknown backend code {code}"))?;
    let device = load_cstr(rdb)?;
    let tag =
        String::from_utf8_lossy(raw::load_string_buffer(rdb).map_err(e)?.as_ref()).into_owned();
    let batch_size = raw::load_unsigned(rdb).map_err(e)?;
    let min_batch_size = raw::load_unsigned(rdb).map_err(e)?;
    let min_batch_timeout = raw::load_unsigned(rdb).map_err(e)?;
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        for _ in 0..raw::load_unsigned(rdb).map_err(e)? {
            list.push(load_cstr(rdb)?);
        }
    }
    let [inputs, outputs] = lists;
    let len = raw::load_unsigned(rdb).map_err(e)?;
    let n = raw::load_unsigned(rdb).map_err(e)?;
    let mut blob = Vec::with_capacity(len.min(1 << 30) as usize);
    for _ in 0..n {
        blob.extend_from_slice(raw::load_string_buffer(rdb).map_err(e)?.as_ref());
    }
    let meta = ModelMeta {
        backend,
        device,
        tag,
        batch_size,
        min_batch_size,
        min_batch_timeout,
        inputs,
        outputs,
    };
    build_model(meta, blob).map_err(|r| r.0)
}

unsafe extern "C" fn model_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if encver != ENCVER {
        log_warning(&format!(
            "orc-ai: cannot read AI__MODEL encoding version {encver} (this module reads {ENCVER})"
        ));
        return null_mut();
    }
    match std::panic::catch_unwind(|| model_read(rdb))
        .unwrap_or_else(|_| Err("panicked while reading (bug)".into()))
    {
        Ok(m) => Box::into_raw(Box::new(ModelValue(Arc::new(m)))).cast(),
        Err(e) => {
            log_warning(&format!(
                "orc-ai: could not load a model from the RDB file: {e}"
            ));
            null_mut()
        }
    }
}

unsafe extern "C" fn model_mem(value: *const c_void) -> usize {
    // SAFETY: a model value.
    let m = &unsafe { &*value.cast::<ModelValue>() }.0;
    std::mem::size_of::<Model>() + m.blob.capacity()
}

/// The arguments of an `AI.MODELSTORE` that recreates `m` (after the key).
pub fn modelstore_args(m: &Model, chunk: usize) -> Vec<Vec<u8>> {
    let meta = &m.meta;
    let mut a: Vec<Vec<u8>> = vec![meta.backend.name().into(), meta.device.clone().into_bytes()];
    a.push(b"TAG".to_vec());
    a.push(meta.tag.clone().into_bytes());
    for (k, v) in [
        ("BATCHSIZE", meta.batch_size),
        ("MINBATCHSIZE", meta.min_batch_size),
        ("MINBATCHTIMEOUT", meta.min_batch_timeout),
    ] {
        a.push(k.into());
        a.push(v.to_string().into_bytes());
    }
    if meta.backend == Backend::Tf {
        for (k, names) in [("INPUTS", &meta.inputs), ("OUTPUTS", &meta.outputs)] {
            a.push(k.into());
            a.push(names.len().to_string().into_bytes());
            a.extend(names.iter().map(|n| n.clone().into_bytes()));
        }
    }
    a.push(b"BLOB".to_vec());
    a.extend(m.blob.chunks(chunk.max(1)).map(<[u8]>::to_vec));
    a
}

unsafe extern "C" fn model_aof(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    // SAFETY: a model value.
    let m = &unsafe { &*value.cast::<ModelValue>() }.0;
    unsafe {
        emit(
            aof,
            c"AI.MODELSTORE",
            key,
            &modelstore_args(m, chunk_size()),
        )
    };
}

// ---- scripts ----

unsafe extern "C" fn script_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    // SAFETY: a script value.
    let s = &unsafe { &*value.cast::<ScriptValue>() }.0;
    save_cstr(rdb, &s.meta.device);
    raw::save_slice(rdb, s.meta.tag.as_bytes());
    save_cstr(rdb, &s.meta.source);
    raw::save_unsigned(rdb, s.meta.entry_points.len() as u64);
    for ep in &s.meta.entry_points {
        save_cstr(rdb, ep);
    }
}

fn script_read(rdb: *mut raw::RedisModuleIO) -> Result<Script, String> {
    let e = |e: redis_module::error::Error| e.to_string();
    let device = load_cstr(rdb)?;
    let tag =
        String::from_utf8_lossy(raw::load_string_buffer(rdb).map_err(e)?.as_ref()).into_owned();
    let source = load_cstr(rdb)?;
    let mut entry_points = Vec::new();
    for _ in 0..raw::load_unsigned(rdb).map_err(e)? {
        entry_points.push(load_cstr(rdb)?);
    }
    build_script(ScriptMeta {
        device,
        tag,
        entry_points,
        source,
    })
    .map_err(|r| r.0)
}

unsafe extern "C" fn script_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if encver != ENCVER {
        log_warning(&format!(
            "orc-ai: cannot read AI_SCRIPT encoding version {encver} (this module reads {ENCVER})"
        ));
        return null_mut();
    }
    match std::panic::catch_unwind(|| script_read(rdb))
        .unwrap_or_else(|_| Err("panicked while reading (bug)".into()))
    {
        Ok(s) => Box::into_raw(Box::new(ScriptValue(Arc::new(s)))).cast(),
        Err(e) => {
            log_warning(&format!(
                "orc-ai: could not load a script from the RDB file: {e}"
            ));
            null_mut()
        }
    }
}

unsafe extern "C" fn script_mem(value: *const c_void) -> usize {
    // SAFETY: a script value.
    let s = &unsafe { &*value.cast::<ScriptValue>() }.0;
    std::mem::size_of::<Script>() + s.meta.source.capacity()
}

unsafe extern "C" fn script_aof(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    // SAFETY: a script value.
    let s = &unsafe { &*value.cast::<ScriptValue>() }.0;
    let m = &s.meta;
    let mut a: Vec<Vec<u8>> = vec![
        m.device.clone().into_bytes(),
        b"TAG".to_vec(),
        m.tag.clone().into_bytes(),
    ];
    a.push(b"ENTRY_POINTS".to_vec());
    a.push(m.entry_points.len().to_string().into_bytes());
    a.extend(m.entry_points.iter().map(|e| e.clone().into_bytes()));
    a.push(b"SOURCE".to_vec());
    a.push(m.source.clone().into_bytes());
    // A script stored with the deprecated SCRIPTSET has no entry points; SCRIPTSTORE with
    // ENTRY_POINTS 0 keeps it loadable (RedisAI emits an unloadable command here).
    unsafe { emit(aof, c"AI.SCRIPTSTORE", key, &a) };
}
