//! The watchdog: runs that outlive `MODEL_EXECUTION_TIMEOUT`, and runs nobody waits for.
//!
//! Every 50 ms it looks at the runs in progress. A run whose clients all left or timed out
//! is interrupted. A run older than the execution timeout is interrupted and its clients
//! are answered with an error at once. Backends stop at their next check of the interrupt
//! flag (between operators in tract, at every loop iteration in TorchScript); one that
//! cannot (a single operator that runs for minutes) is given up one second later: its
//! queue gets a new worker and the old thread ends when the call returns, its results
//! dropped. At most [`MAX_ABANDONED`] threads are given up at once; past that, the queue
//! waits for them.
//!
//! A backend may stop a run at the timeout itself (TensorFlow cancels every run then) and
//! come back before the watchdog's next look: a run that fails once its timeout has passed
//! is answered and counted as stopped at the timeout all the same, so that clients hear one
//! message whichever noticed first.

use std::{
    sync::{
        Arc, Mutex, Once,
        atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use super::queue::{Queue, spawn_worker};
use crate::{
    blocked::Ticket,
    state::{lock, state},
    tensor::Tensor,
};

/// Most worker threads given up (still inside a backend call) at once.
pub(super) const MAX_ABANDONED: usize = 16;

/// Extra time a run gets to stop after being interrupted before its worker is replaced.
const GRACE: Duration = Duration::from_secs(1);

static RUNNING: Mutex<Vec<Arc<Running>>> = Mutex::new(Vec::new());
static ABANDONED: AtomicUsize = AtomicUsize::new(0);
static TIMED_OUT: AtomicU64 = AtomicU64::new(0);

/// Worker threads given up and still inside a backend call.
pub fn abandoned_workers() -> usize {
    ABANDONED.load(Ordering::Relaxed)
}

/// Runs stopped at the execution timeout since the module loaded.
pub fn timed_out_runs() -> u64 {
    TIMED_OUT.load(Ordering::Relaxed)
}

/// A run in progress on a worker.
pub(super) struct Running {
    started: Instant,
    queue: Arc<Queue>,
    tickets: Vec<Arc<Ticket>>,
    /// The flag the backend polls.
    pub(super) interrupt: AtomicBool,
    timed_out: AtomicBool,
    /// [`ACTIVE`], then [`DONE`] (the worker finished it) or [`GIVEN_UP`] (the watchdog
    /// replaced its worker), whichever comes first.
    fate: AtomicU8,
}

const ACTIVE: u8 = 0;
const DONE: u8 = 1;
const GIVEN_UP: u8 = 2;

impl Running {
    /// Register a run of these requests on `queue`.
    pub(super) fn start(queue: &Arc<Queue>, tickets: Vec<Arc<Ticket>>) -> Arc<Running> {
        let r = Arc::new(Running {
            started: Instant::now(),
            queue: queue.clone(),
            tickets,
            interrupt: AtomicBool::new(false),
            timed_out: AtomicBool::new(false),
            fate: AtomicU8::new(ACTIVE),
        });
        lock(&RUNNING).push(r.clone());
        r
    }

    /// The results of the run's requests, errors made the timeout's when the run failed
    /// after its execution timeout had passed and the watchdog had not stopped it yet.
    pub(super) fn settle(
        &self,
        results: Vec<Result<Vec<Tensor>, String>>,
    ) -> Vec<Result<Vec<Tensor>, String>> {
        match self.stopped(results.iter().any(Result::is_err)) {
            Some(msg) => results
                .into_iter()
                .map(|r| r.map_err(|_| msg.clone()))
                .collect(),
            None => results,
        }
    }

    /// The timeout's message when the run `failed` after its execution timeout had passed
    /// and the watchdog had not stopped it yet (it then counts as stopped).
    pub(super) fn stopped(&self, failed: bool) -> Option<String> {
        if !failed {
            return None; // the usual case: no look at the configuration
        }
        failed_past_timeout(failed, self.started, &self.timed_out, execution_timeout())
    }

    /// The run is over. True when its thread was given up and must end.
    pub(super) fn finish(&self) -> bool {
        lock(&RUNNING).retain(|r| !std::ptr::eq(Arc::as_ptr(r), self));
        let given_up = self
            .fate
            .compare_exchange(ACTIVE, DONE, Ordering::SeqCst, Ordering::SeqCst)
            .is_err();
        if given_up {
            ABANDONED.fetch_sub(1, Ordering::SeqCst);
        }
        given_up
    }
}

/// Start the watchdog thread (once).
pub(super) fn start() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("orc-ai-watchdog".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(Duration::from_millis(50));
                    let _ = std::panic::catch_unwind(tick);
                }
            });
    });
}

/// The execution timeout now.
fn execution_timeout() -> Duration {
    Duration::from_millis(lock(&state().config).model_execution_timeout)
}

/// The message for a run that `failed` after its execution `timeout` had passed and was not
/// stopped by the watchdog (`timed_out` unset, set now): it counts as stopped.
fn failed_past_timeout(
    failed: bool,
    started: Instant,
    timed_out: &AtomicBool,
    timeout: Duration,
) -> Option<String> {
    if !failed || timeout.is_zero() || started.elapsed() < timeout {
        return None;
    }
    if timed_out.swap(true, Ordering::SeqCst) {
        return None; // the watchdog stopped it, answered and counted it
    }
    TIMED_OUT.fetch_add(1, Ordering::Relaxed);
    Some(stopped_message(timeout))
}

/// The answer to a run stopped at the execution timeout.
fn stopped_message(timeout: Duration) -> String {
    format!(
        "ERR the run was stopped: it took longer than MODEL_EXECUTION_TIMEOUT ({} ms)",
        timeout.as_millis()
    )
}

/// The run going on on Redis's main thread, if any (see [`super::inline`]).
struct Inline {
    started: Instant,
    interrupt: Arc<AtomicBool>,
    timed_out: AtomicBool,
}

static INLINE: Mutex<Option<Arc<Inline>>> = Mutex::new(None);

/// An inline run watched for the execution timeout.
pub(super) struct InlineWatch(Arc<Inline>);

/// Watch the run on the main thread that polls `interrupt`.
pub(super) fn watch_inline(interrupt: Arc<AtomicBool>) -> InlineWatch {
    start();
    let w = Arc::new(Inline {
        started: Instant::now(),
        interrupt,
        timed_out: AtomicBool::new(false),
    });
    *lock(&INLINE) = Some(w.clone());
    InlineWatch(w)
}

impl InlineWatch {
    /// The run is over (`failed`: with an error): the error to answer when it was stopped
    /// at the execution timeout, by the watchdog or by the backend.
    pub(super) fn finish(self, failed: bool) -> Option<String> {
        lock(&INLINE).take();
        if self.0.timed_out.load(Ordering::SeqCst) {
            return Some(stopped_message(execution_timeout()));
        }
        failed_past_timeout(
            failed,
            self.0.started,
            &self.0.timed_out,
            execution_timeout(),
        )
    }
}

fn tick() {
    let timeout = execution_timeout();
    let inline = lock(&INLINE).clone();
    if let Some(w) = inline
        && w.started.elapsed() > timeout
        && !w.timed_out.swap(true, Ordering::SeqCst)
    {
        w.interrupt.store(true, Ordering::SeqCst);
        TIMED_OUT.fetch_add(1, Ordering::Relaxed);
    }
    let runs: Vec<Arc<Running>> = lock(&RUNNING).clone();
    for r in runs {
        if r.tickets.iter().all(|t| t.interrupted()) {
            r.interrupt.store(true, Ordering::SeqCst);
        }
        let age = r.started.elapsed();
        if age > timeout && !r.timed_out.swap(true, Ordering::SeqCst) {
            r.interrupt.store(true, Ordering::SeqCst);
            TIMED_OUT.fetch_add(1, Ordering::Relaxed);
            let msg = stopped_message(timeout);
            for t in &r.tickets {
                t.fail(&msg);
            }
        }
        if age > timeout + GRACE && ABANDONED.load(Ordering::SeqCst) < MAX_ABANDONED {
            // Counted before the worker can see its fate, so its decrement never comes first.
            ABANDONED.fetch_add(1, Ordering::SeqCst);
            if r.fate
                .compare_exchange(ACTIVE, GIVEN_UP, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                ABANDONED.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            crate::state::log_warning(format!(
                "orc-ai: a run on queue {} did not stop {} ms after its execution timeout; its worker is replaced and the old thread ends when the backend returns",
                r.queue.name,
                GRACE.as_millis()
            ));
            let _ = spawn_worker(&r.queue, 1000 + ABANDONED.load(Ordering::SeqCst) as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_fails_past_its_timeout_counts_as_stopped_once() {
        let timeout = Duration::from_millis(1000);
        let long_ago = Instant::now() - Duration::from_millis(1001);
        let flag = AtomicBool::new(false);
        assert_eq!(
            failed_past_timeout(false, long_ago, &flag, timeout),
            None,
            "it did not fail"
        );
        assert!(!flag.load(Ordering::SeqCst));
        assert_eq!(
            failed_past_timeout(true, Instant::now(), &flag, timeout),
            None,
            "it failed before its timeout"
        );
        let before = timed_out_runs();
        assert_eq!(
            failed_past_timeout(true, long_ago, &flag, timeout).as_deref(),
            Some("ERR the run was stopped: it took longer than MODEL_EXECUTION_TIMEOUT (1000 ms)")
        );
        assert!(flag.load(Ordering::SeqCst));
        assert!(timed_out_runs() > before);
        // Stopped already (by the watchdog or the line above): answered and counted then.
        assert_eq!(failed_past_timeout(true, long_ago, &flag, timeout), None);
    }
}
