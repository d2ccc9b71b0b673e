//! Loading the backends present in BACKENDSPATH in the background when the module loads,
//! so that no client's first request pays for a runtime's start (libtorch takes most of a
//! second, longer than SmartRedis's default socket timeout). The server is ready at once;
//! a request that needs a backend still loading waits for it. Module argument
//! `BACKENDS_WARMUP no` turns this off.
//!
//! A server told to shut down while a runtime is still loading waits for that load to end
//! and skips the rest ([`shutdown_callback`]): libtorch's static destructors running at exit
//! while its initialisers still run on this thread abort the process.
//!
//! `$ORC_AI_BACKENDS_WARMUP` (`yes`/`no`) in the server's environment sets the default of the
//! module argument (the test suite turns it off: most tests start and stop many shards that
//! never run a model).

use std::{
    sync::{
        Condvar, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    model::Backend,
    objects::backend,
    state::{lock, log_notice, log_warning, state},
};

/// The order backends warm up in: the slowest to start first.
const ORDER: [Backend; 4] = [Backend::Torch, Backend::Onnx, Backend::TfLite, Backend::Tf];

/// Whether the warm-up thread is running, and its end signalled.
static RUNNING: Mutex<bool> = Mutex::new(false);
static ENDED: Condvar = Condvar::new();
/// Set at shutdown: load no further backend.
static STOP: AtomicBool = AtomicBool::new(false);

/// The environment variable that sets `BACKENDS_WARMUP`'s default.
pub const DEFAULT_VAR: &str = "ORC_AI_BACKENDS_WARMUP";

/// Longest a shutdown waits for a runtime still loading.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);

fn set_running(on: bool) {
    *lock(&RUNNING) = on;
    ENDED.notify_all();
}

/// Wait until the warm-up thread has ended, at most `limit`.
pub fn wait_for_end(limit: Duration) {
    let running = lock(&RUNNING);
    let _ = ENDED.wait_timeout_while(running, limit, |r| *r);
}

/// Redis calls this when it shuts down, before it exits.
///
/// # Safety
/// Called by Redis on its main thread.
pub unsafe extern "C" fn shutdown_callback(
    _ctx: *mut redis_module::raw::RedisModuleCtx,
    _event: redis_module::raw::RedisModuleEvent,
    _sub: u64,
    _data: *mut std::os::raw::c_void,
) {
    STOP.store(true, Ordering::SeqCst);
    let _ = std::panic::catch_unwind(|| wait_for_end(SHUTDOWN_WAIT));
}

/// Start the background loading (returns at once).
pub fn start() {
    let present: Vec<Backend> = {
        let c = lock(&state().config);
        ORDER
            .into_iter()
            .filter(|b| c.default_backend_files(*b).iter().any(|f| f.is_file()))
            .collect()
    };
    if present.is_empty() {
        return;
    }
    set_running(true);
    let spawned = std::thread::Builder::new()
        .name("orc-ai-warmup".into())
        .spawn(move || {
            for b in present {
                if STOP.load(Ordering::SeqCst) {
                    break;
                }
                let t = Instant::now();
                match backend(b) {
                    Ok(l) => log_notice(format!(
                        "orc-ai: the {} backend is ready ({}) after {:.2} s",
                        b.name(),
                        l.runtime,
                        t.elapsed().as_secs_f64()
                    )),
                    Err(e) => log_warning(format!(
                        "orc-ai: the {} backend could not be loaded at start: {e}",
                        b.name()
                    )),
                }
            }
            set_running(false);
        });
    if let Err(e) = spawned {
        set_running(false);
        log_warning(format!(
            "orc-ai: cannot start the backend warm-up thread: {e}"
        ));
    }
}
