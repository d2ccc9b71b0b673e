//! Redis strings kept as tensor bytes without a copy, and their release.
//!
//! A large `AI.TENSORSET ... BLOB` keeps the argument string Redis already holds
//! (retained). Tensor bytes are shared with workers, DAGs and `COPY`, so the last
//! reference may go away on any thread, while Redis strings may only be released on the
//! main thread (their reference count is not atomic). Releases off the main thread are
//! queued and done at the next main-thread moment: the start of any orc-ai command and
//! every server cron tick.

use std::{
    sync::{Mutex, OnceLock},
    thread::ThreadId,
};

use redis_module::raw;

use crate::{state::lock, tensor::ExternalBytes};

static MAIN: OnceLock<ThreadId> = OnceLock::new();

/// Pointers to release on the main thread.
static PENDING: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Record the calling thread as Redis's main thread (at module load).
pub fn set_main_thread() {
    let _ = MAIN.set(std::thread::current().id());
}

/// Whether the calling thread is Redis's main thread.
pub fn on_main_thread() -> bool {
    MAIN.get() == Some(&std::thread::current().id())
}

/// A retained Redis string.
pub struct Retained(*mut raw::RedisModuleString);

// SAFETY: the string is never modified while retained (its reference count is above one)
// and only read; it is released on the main thread (see `Drop`).
unsafe impl Send for Retained {}
unsafe impl Sync for Retained {}

impl Retained {
    /// Retain `s`.
    ///
    /// # Safety
    /// `s` is a live string of the current command, on the main thread.
    pub unsafe fn new(s: *mut raw::RedisModuleString) -> Self {
        // SAFETY: retaining a live argument string; released in `Drop`.
        unsafe { raw::RedisModule_RetainString.expect("API")(std::ptr::null_mut(), s) };
        Retained(s)
    }
}

impl ExternalBytes for Retained {
    fn bytes(&self) -> &[u8] {
        let mut len = 0usize;
        // SAFETY: a retained, live string; the pointer is valid for `len` bytes while it lives.
        unsafe {
            let p = raw::RedisModule_StringPtrLen.expect("API")(self.0, &mut len);
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        }
    }
}

impl Drop for Retained {
    fn drop(&mut self) {
        if on_main_thread() {
            // SAFETY: releases the reference taken in `new`, on the main thread.
            unsafe { raw::RedisModule_FreeString.expect("API")(std::ptr::null_mut(), self.0) };
        } else {
            lock(&PENDING).push(self.0 as usize);
        }
    }
}

/// Release the strings queued by other threads (main thread only).
pub fn release_pending() {
    if !on_main_thread() {
        return;
    }
    let pending = std::mem::take(&mut *lock(&PENDING));
    for p in pending {
        // SAFETY: each pointer was retained by `Retained::new` and queued once by its drop.
        unsafe {
            raw::RedisModule_FreeString.expect("API")(
                std::ptr::null_mut(),
                p as *mut raw::RedisModuleString,
            )
        };
    }
}
