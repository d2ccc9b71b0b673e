//! Replies written straight to Redis, item by item: large tensors, VALUES lists and model
//! chunks go out without an intermediate copy or a `RedisValue` per element, and error
//! items inside arrays can carry any message (no interning, nothing kept afterwards).

use std::ffi::CString;

use redis_module::{RedisValue, raw};

use crate::{
    config::Limits,
    tensor::{self, GetFormat, Tensor, Value},
};

/// A reply writer for one context (a command's, a timeout callback's or a worker's
/// thread-safe one bound to a blocked client).
pub struct Out(pub *mut raw::RedisModuleCtx);

impl Out {
    /// An array of `n` items (the items follow).
    pub fn array(&self, n: usize) {
        // SAFETY: a live context; Redis copies what it needs.
        unsafe { api!(RedisModule_ReplyWithArray)(self.0, n as _) };
    }

    /// A bulk string.
    pub fn bulk(&self, b: &[u8]) {
        // SAFETY: as above; the buffer is valid for its length.
        unsafe { api!(RedisModule_ReplyWithStringBuffer)(self.0, b.as_ptr().cast(), b.len()) };
    }

    /// A simple string (no CR or LF).
    pub fn simple(&self, s: &str) {
        let c = CString::new(s.replace(['\r', '\n', '\0'], " ")).unwrap_or_default();
        // SAFETY: as above.
        unsafe { api!(RedisModule_ReplyWithSimpleString)(self.0, c.as_ptr()) };
    }

    /// An integer.
    pub fn int(&self, v: i64) {
        // SAFETY: as above.
        unsafe { api!(RedisModule_ReplyWithLongLong)(self.0, v) };
    }

    /// A float, as RedisAI sends it (a bulk string in RESP2).
    pub fn double(&self, v: f64) {
        // SAFETY: as above.
        unsafe { api!(RedisModule_ReplyWithDouble)(self.0, v) };
    }

    /// An error (as a top-level reply or an array item). Sent as given: RedisAI omits
    /// `ERR` on some errors.
    pub fn error(&self, msg: &str) {
        let c = CString::new(msg.replace(['\r', '\n', '\0'], " ")).unwrap_or_default();
        // SAFETY: as above.
        unsafe { api!(RedisModule_ReplyWithError)(self.0, c.as_ptr()) };
    }

    /// The null reply.
    pub fn null(&self) {
        // SAFETY: as above.
        unsafe { api!(RedisModule_ReplyWithNull)(self.0) };
    }

    /// A small structured value (metadata replies).
    pub fn value(&self, v: &RedisValue) {
        match v {
            RedisValue::SimpleStringStatic(s) => self.simple(s),
            RedisValue::SimpleString(s) => self.simple(s),
            RedisValue::BulkString(s) => self.bulk(s.as_bytes()),
            RedisValue::StringBuffer(b) => self.bulk(b),
            RedisValue::Integer(i) => self.int(*i),
            RedisValue::Float(f) => self.double(*f),
            RedisValue::Array(items) => {
                self.array(items.len());
                items.iter().for_each(|i| self.value(i));
            }
            RedisValue::StaticError(e) => self.error(e),
            _ => self.null(),
        }
    }

    /// The `AI.TENSORGET` reply for `t` in format `f` (VALUES within the limit).
    pub fn tensor(&self, t: &Tensor, f: GetFormat, limits: &Limits) -> Result<(), String> {
        if f.values {
            tensor::check_values_reply(t, limits).map_err(|e| e.0)?;
        }
        if f.meta {
            self.array(if f.blob || f.values { 6 } else { 4 });
            self.bulk(b"dtype");
            self.bulk(t.dtype.name().as_bytes());
            self.bulk(b"shape");
            self.array(t.shape.len());
            t.shape.iter().for_each(|d| self.int(*d));
            if f.blob {
                self.bulk(b"blob");
            } else if f.values {
                self.bulk(b"values");
            }
        }
        if f.blob {
            self.bulk(&t.data);
        } else if f.values {
            self.array(t.len() as usize);
            t.for_each_value(|v| match v {
                Value::Float(x) => self.double(x),
                Value::Int(i) => self.int(i),
                Value::Bytes(b) => self.bulk(b),
            });
        }
        Ok(())
    }
}

/// Send `r` as a command's reply through the crate's usual path (so errors keep their
/// kinds) after items were written directly: the caller returns `NoReply`.
pub fn no_reply() -> redis_module::RedisResult {
    Ok(RedisValue::NoReply)
}
