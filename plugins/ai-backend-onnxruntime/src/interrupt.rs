//! Stopping runs whose interrupt flag is set: ONNX Runtime runs a whole graph in one call,
//! so a watcher thread terminates, through their run options, the runs whose flags it
//! sees set (RedisAI's kill switch does the same from the server's cron).

use std::{
    sync::{
        Arc, Condvar, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use ort::session::RunOptions;

/// How often the watcher looks at the flags of running calls (it sleeps while there are
/// none).
const TICK: Duration = Duration::from_millis(10);

struct Watched {
    id: u64,
    /// The run's flag, owned by orc-ai and alive until the run returns (the entry is removed
    /// before that, in [`Registration::drop`]).
    flag: *const AtomicBool,
    options: Arc<RunOptions>,
}

// SAFETY: the flag is an atomic that outlives the entry (see `Watched::flag`).
unsafe impl Send for Watched {}

#[derive(Default)]
struct Registry {
    next: u64,
    runs: Vec<Watched>,
}

/// Signalled when a run is registered.
static STARTED: Condvar = Condvar::new();

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(|| {
        // The watcher lives as long as the process (backends are never unloaded).
        let _ = std::thread::Builder::new()
            .name("orc-ai-ort-watch".into())
            .spawn(watch);
        Mutex::default()
    })
}

fn watch() {
    let registry = registry();
    loop {
        let r = registry.lock().unwrap_or_else(|p| p.into_inner());
        let r = STARTED
            .wait_while(r, |r| r.runs.is_empty())
            .unwrap_or_else(|p| p.into_inner());
        drop(r);
        std::thread::sleep(TICK);
        let r = registry.lock().unwrap_or_else(|p| p.into_inner());
        for w in &r.runs {
            // SAFETY: see `Watched::flag`: the entry is removed under this lock before
            // the flag can go away.
            if unsafe { &*w.flag }.load(Ordering::Relaxed) {
                let _ = w.options.terminate();
            }
        }
    }
}

/// A run being watched; dropping it stops the watching.
pub(crate) struct Registration {
    id: u64,
}

/// Watch `flag` while a run with `options` goes on.
pub(crate) fn watch_run(flag: &AtomicBool, options: Arc<RunOptions>) -> Registration {
    let mut r = registry().lock().unwrap_or_else(|p| p.into_inner());
    r.next += 1;
    let id = r.next;
    r.runs.push(Watched { id, flag, options });
    STARTED.notify_one();
    Registration { id }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut r = registry().lock().unwrap_or_else(|p| p.into_inner());
        r.runs.retain(|w| w.id != self.id);
    }
}
