//! The module data types `AI_TENSOR`, `AI__MODEL` and `AI_SCRIPT`: their RDB callbacks
//! (RedisAI encoding version 4, decoded by [`crate::rdb`]), AOF rewrite, copy, free and
//! memory usage.
//!
//! The module asks Redis to hand IO errors back (`HANDLE_IO_ERRORS`), so a truncated or
//! malformed value in a `RESTORE` payload is an error for that command, not the end of
//! the server. Every callback catches panics.

use std::{
    borrow::Cow,
    ffi::{CStr, c_int, c_void},
    ptr::null_mut,
    sync::Arc,
};

use redis_module::{native_types::RedisType, raw};

use crate::{
    model::Backend,
    objects::{Model, ModelValue, Origin, Script, ScriptValue},
    rdb::{self, RdbIn, RdbOut},
    state::{lock, state},
    tensor::{Data, ExternalBytes, Tensor},
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
        let v = unsafe { Box::from_raw(value.cast::<T>()) };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(v)));
    }
}

unsafe extern "C" fn copy<T: Clone>(
    _: *mut raw::RedisModuleString,
    _: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    // SAFETY: as above; the value is only read. Clones share their bytes.
    let v = unsafe { &*value.cast::<T>() };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Box::into_raw(Box::new(v.clone())).cast()
    }))
    .unwrap_or(null_mut())
}

use crate::state::log_warning;

/// The RDB stream of a load or save callback.
struct Io(*mut raw::RedisModuleIO);

fn io_error(e: redis_module::error::Error) -> String {
    format!("{e} (the value ends early or is malformed)")
}

/// Bytes allocated by Redis for a loaded string, kept as tensor data without a copy.
struct RedisBuf(*mut std::os::raw::c_char, usize);

// SAFETY: the buffer is owned here and only read; `RedisModule_Free` may run on any
// thread.
unsafe impl Send for RedisBuf {}
unsafe impl Sync for RedisBuf {}

impl ExternalBytes for RedisBuf {
    fn bytes(&self) -> &[u8] {
        if self.0.is_null() || self.1 == 0 {
            return &[];
        }
        // SAFETY: `len` bytes owned by this buffer.
        unsafe { std::slice::from_raw_parts(self.0.cast::<u8>(), self.1) }
    }
}

impl Drop for RedisBuf {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: allocated by RedisModule_LoadStringBuffer, freed once.
            unsafe { raw::RedisModule_Free.expect("API")(self.0.cast()) };
        }
    }
}

impl RdbIn for Io {
    fn load_unsigned(&mut self) -> Result<u64, String> {
        raw::load_unsigned(self.0).map_err(io_error)
    }
    fn load_signed(&mut self) -> Result<i64, String> {
        raw::load_signed(self.0).map_err(io_error)
    }
    fn load_buffer(&mut self) -> Result<Vec<u8>, String> {
        Ok(raw::load_string_buffer(self.0)
            .map_err(io_error)?
            .as_ref()
            .to_vec())
    }
    fn load_data(&mut self) -> Result<Data, String> {
        let mut len = 0usize;
        // SAFETY: a live IO handle; the buffer returned is ours to free.
        let p = unsafe { raw::RedisModule_LoadStringBuffer.expect("API")(self.0, &mut len) };
        let buf = RedisBuf(p, len);
        if raw::is_io_error(self.0) {
            return Err("short read (the value ends early or is malformed)".into());
        }
        Ok(Data::external(Box::new(buf)))
    }
}

impl RdbOut for Io {
    fn save_unsigned(&mut self, v: u64) {
        raw::save_unsigned(self.0, v);
    }
    fn save_signed(&mut self, v: i64) {
        raw::save_signed(self.0, v);
    }
    fn save_buffer(&mut self, b: &[u8]) {
        raw::save_slice(self.0, b);
    }
}

/// The key being loaded (for messages).
fn key_of(rdb: *mut raw::RedisModuleIO) -> Vec<u8> {
    // SAFETY: a live IO handle; the key string is owned by Redis.
    unsafe {
        let Some(get) = raw::RedisModule_GetKeyNameFromIO else {
            return Vec::new();
        };
        let k = get(rdb);
        if k.is_null() {
            return Vec::new();
        }
        let mut len = 0usize;
        let p = raw::RedisModule_StringPtrLen.expect("API")(k, &mut len);
        std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec()
    }
}

/// Run a load callback body: the encoding version checked, panics caught, failures
/// logged with the key; NULL tells Redis the value is unreadable.
fn load_with<T>(
    rdb: *mut raw::RedisModuleIO,
    encver: c_int,
    what: &str,
    read: impl FnOnce(&mut Io, &[u8]) -> Result<T, String>,
) -> *mut c_void {
    let key = key_of(rdb);
    let name = String::from_utf8_lossy(&key).into_owned();
    if encver != ENCVER {
        log_warning(format!(
            "orc-ai: cannot read {what} `{name}`: encoding version {encver} (this module reads {ENCVER})"
        ));
        return null_mut();
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&mut Io(rdb), &key)))
        .unwrap_or_else(|_| Err("panicked while reading (bug)".into()));
    match r {
        Ok(v) => Box::into_raw(Box::new(v)).cast(),
        Err(e) => {
            log_warning(format!("orc-ai: unreadable {what} `{name}`: {e}"));
            null_mut()
        }
    }
}

fn save_with(what: &str, f: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        log_warning(format!("orc-ai: saving a {what} panicked (bug)"));
    }
}

// ---- tensors ----

unsafe extern "C" fn tensor_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    // SAFETY: a tensor value.
    let t = unsafe { &*value.cast::<Tensor>() };
    save_with("tensor", || rdb::write_tensor(&mut Io(rdb), t));
}

unsafe extern "C" fn tensor_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    load_with(rdb, encver, "tensor", |io, _| rdb::read_tensor(io))
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
    args: &[impl AsRef<[u8]>],
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
            .map(|a| {
                let a = a.as_ref();
                create(null_mut(), a.as_ptr().cast(), a.len())
            })
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

/// The arguments of an `AI.TENSORSET` that recreates `t` (after the key); the data is
/// borrowed, not copied.
pub fn tensorset_args(t: &Tensor) -> Vec<Cow<'_, [u8]>> {
    let mut a = vec![Cow::Borrowed(t.dtype.name().as_bytes())];
    a.extend(
        t.shape
            .iter()
            .map(|d| Cow::Owned(d.to_string().into_bytes())),
    );
    a.push(Cow::Borrowed(b"BLOB".as_slice()));
    a.push(Cow::Borrowed(&t.data[..]));
    a
}

unsafe extern "C" fn tensor_aof(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    // SAFETY: a tensor value.
    let t = unsafe { &*value.cast::<Tensor>() };
    save_with("tensor", || unsafe {
        emit(aof, c"AI.TENSORSET", key, &tensorset_args(t))
    });
}

// ---- models ----

fn chunk_size() -> usize {
    lock(&state().config).model_chunk_size as usize
}

unsafe extern "C" fn model_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    // SAFETY: a model value.
    let m = &unsafe { &*value.cast::<ModelValue>() }.0;
    save_with("model", || {
        rdb::write_model(&mut Io(rdb), &m.meta, &m.blob, chunk_size())
    });
}

unsafe extern "C" fn model_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    load_with(rdb, encver, "model", |io, key| {
        let (meta, blob) = rdb::read_model(io)?;
        let m = Model::new(key, meta, blob, Origin::Stored).map_err(|r| r.0)?;
        Ok(ModelValue(Arc::new(m)))
    })
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
    save_with("model", || unsafe {
        emit(
            aof,
            c"AI.MODELSTORE",
            key,
            &modelstore_args(m, chunk_size()),
        )
    });
}

// ---- scripts ----

unsafe extern "C" fn script_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    // SAFETY: a script value.
    let s = &unsafe { &*value.cast::<ScriptValue>() }.0;
    save_with("script", || rdb::write_script(&mut Io(rdb), &s.meta));
}

unsafe extern "C" fn script_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    load_with(rdb, encver, "script", |io, key| {
        let meta = rdb::read_script(io)?;
        let s = Script::new(key, meta, Origin::Stored).map_err(|r| r.0)?;
        Ok(ScriptValue(Arc::new(s)))
    })
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
    save_with("script", || unsafe {
        emit(aof, c"AI.SCRIPTSTORE", key, &a)
    });
}
