//! Clients blocked while their request runs on a worker, and every way they are
//! answered: by the worker (results), by Redis at the request's TIMEOUT (`TIMEDOUT`), by
//! the watchdog at the execution timeout, or not at all when they disconnected.
//!
//! A [`Ticket`] is shared by all of these. Its interrupt flag tells the backend to stop
//! and tells the worker not to write outputs; whoever takes its waiter answers, exactly
//! once. The worker writes outputs and answers while holding the Redis GIL and unblocks
//! the client before letting go of it, so a TIMEOUT can never fire between the outputs
//! being written and the answer (a client that got `TIMEDOUT` finds no outputs).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
};

use redis_module::{Context, raw};

use crate::{reply::Out, state::lock};

/// A blocked client waiting for its answer.
struct Waiter(*mut raw::RedisModuleBlockedClient);

// SAFETY: a blocked-client handle may be used from any thread (that is its purpose); it
// is used by one thread at a time, through the ticket's mutex.
unsafe impl Send for Waiter {}

/// A request's link to its blocked client.
pub struct Ticket {
    /// Set when the request must stop: its client timed out or went away, or its run
    /// passed the execution timeout. Backends poll it; outputs are not written once set.
    pub interrupt: AtomicBool,
    waiter: Mutex<Option<Waiter>>,
}

/// Tickets by blocked-client handle, for Redis's timeout and disconnect callbacks.
static LIVE: Mutex<Option<HashMap<usize, Weak<Ticket>>>> = Mutex::new(None);

fn live_remove(bc: *mut raw::RedisModuleBlockedClient) {
    if let Some(m) = lock(&LIVE).as_mut() {
        m.remove(&(bc as usize));
    }
}

fn live_get(bc: *mut raw::RedisModuleBlockedClient) -> Option<Arc<Ticket>> {
    lock(&LIVE).as_ref()?.get(&(bc as usize))?.upgrade()
}

/// Redis calls this on the main thread when a blocked request's TIMEOUT passes.
unsafe extern "C" fn on_timeout(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: std::os::raw::c_int,
) -> std::os::raw::c_int {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the timeout callback's own context.
        let bc = unsafe { api!(RedisModule_GetBlockedClientHandle)(ctx) };
        if let Some(t) = live_get(bc) {
            t.interrupt.store(true, Ordering::SeqCst);
        }
        Out(ctx).simple("TIMEDOUT");
    });
    raw::REDISMODULE_OK as _
}

/// Redis calls this on the main thread when a blocked client disconnects.
unsafe extern "C" fn on_disconnect(
    _ctx: *mut raw::RedisModuleCtx,
    bc: *mut raw::RedisModuleBlockedClient,
) {
    let _ = std::panic::catch_unwind(|| {
        if let Some(t) = live_get(bc) {
            t.interrupt.store(true, Ordering::SeqCst);
        }
    });
}

impl Ticket {
    /// Block the client of `ctx` (main thread) until the ticket is answered or
    /// `timeout_ms` passes (then Redis answers `TIMEDOUT`).
    pub fn block(ctx: &Context, timeout_ms: Option<u64>) -> Arc<Ticket> {
        // SAFETY: the command's live context, on the main thread.
        let bc = unsafe {
            api!(RedisModule_BlockClient)(
                ctx.ctx,
                None,
                Some(on_timeout),
                None,
                timeout_ms.unwrap_or(0) as _,
            )
        };
        // SAFETY: a handle just made for this client.
        unsafe { api!(RedisModule_SetDisconnectCallback)(bc, Some(on_disconnect)) };
        let t = Arc::new(Ticket {
            interrupt: AtomicBool::new(false),
            waiter: Mutex::new(Some(Waiter(bc))),
        });
        lock(&LIVE)
            .get_or_insert_with(HashMap::new)
            .insert(bc as usize, Arc::downgrade(&t));
        t
    }

    /// Whether the request should stop.
    pub fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }

    /// Answer under the Redis GIL: unless interrupted, `write` stores outputs (in the
    /// client's selected database) and writes the reply; an interrupted request gets an
    /// error its client no longer reads. Nothing happens when the ticket was answered
    /// already. Any thread.
    pub fn answer(&self, write: impl FnOnce(&Context, &Out)) {
        let Some(Waiter(bc)) = lock(&self.waiter).take() else {
            return;
        };
        let tsc = Gil::take(bc);
        let out = Out(tsc.0);
        if self.interrupted() {
            out.error("ERR the request was interrupted");
        } else {
            let ctx = Context::new(tsc.0);
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(&ctx, &out))).is_err()
            {
                out.error(
                    "ERR orc-ai internal error while writing results (the server keeps running)",
                );
            }
        }
        live_remove(bc);
        tsc.unblock_and_release(bc);
    }

    /// Answer with an error (the watchdog: the run passed the execution timeout). The
    /// request is interrupted first, so a late worker writes nothing.
    pub fn fail(&self, msg: &str) {
        let Some(Waiter(bc)) = lock(&self.waiter).take() else {
            return;
        };
        self.interrupt.store(true, Ordering::SeqCst);
        let tsc = Gil::take(bc);
        Out(tsc.0).error(msg);
        live_remove(bc);
        tsc.unblock_and_release(bc);
    }
}

/// A thread-safe context bound to a blocked client, with the Redis GIL held. On Redis's main
/// thread (a ticket dropped there) the GIL is held already and is not taken again.
struct Gil(*mut raw::RedisModuleCtx, bool);

impl Gil {
    fn take(bc: *mut raw::RedisModuleBlockedClient) -> Gil {
        // SAFETY: a live handle; the context is bound to it (and so to its database).
        let tsc = unsafe { api!(RedisModule_GetThreadSafeContext)(bc) };
        let lock = !crate::retained::on_main_thread();
        if lock {
            // SAFETY: a context just made, locked once and unlocked in `unblock_and_release`.
            unsafe { api!(RedisModule_ThreadSafeContextLock)(tsc) };
        }
        Gil(tsc, lock)
    }

    /// Unblock the client while the GIL is held (so no timeout can slip in between what
    /// was written and the answer), then release the GIL and free the context, as Redis
    /// requires.
    fn unblock_and_release(self, bc: *mut raw::RedisModuleBlockedClient) {
        // SAFETY: the handle is unblocked once (its ticket's waiter was taken); the context
        // is this one's.
        unsafe {
            api!(RedisModule_UnblockClient)(bc, std::ptr::null_mut());
            if self.1 {
                api!(RedisModule_ThreadSafeContextUnlock)(self.0);
            }
            api!(RedisModule_FreeThreadSafeContext)(self.0);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // Never leave a client blocked: a ticket dropped unanswered (a bug) answers.
        if lock(&self.waiter).is_some() {
            self.fail("ERR orc-ai dropped the request (bug); the server keeps running");
        }
    }
}
