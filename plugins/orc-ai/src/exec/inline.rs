//! Runs on Redis's main thread for requests known to be tiny (`INLINE_RUN_MAX_US`).
//!
//! A queued run costs two thread hand-offs (main thread → worker → main thread), each of
//! which may wake an idle CPU: tens of µs, more than a small MLP takes to run. So a model
//! or script run is done at once on the main thread, the client never blocked, when all of
//! these hold:
//!
//! * `INLINE_RUN_MAX_US` is above 0 and the object's device is the CPU;
//! * the model does not batch (`BATCHSIZE` 0);
//! * its last two runs with the same inputs' types and shapes (and, for a script, the same
//!   function, keys and args) each took at most `INLINE_RUN_MAX_US`;
//! * nothing is queued or running on any device queue (so no worker holds the object, and
//!   busy servers keep running models beside the main thread, not on it);
//! * inline runs took at most half of the main thread's time since the previous one.
//!
//! A request's `TIMEOUT` and `MODEL_EXECUTION_TIMEOUT` hold as on a worker: the watchdog
//! interrupts an inline run that outlives the execution timeout, and a run that took
//! longer than the request's TIMEOUT answers `TIMEDOUT` without writing its outputs. A run
//! slower than the bound sends that object's next runs back to the queue.

use std::{
    hash::{Hash, Hasher},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use redis_module::{Context, RedisError, RedisResult, RedisValue};

use super::{Work, run, watchdog};
use crate::{
    state::{limits, lock, state},
    tensor::Tensor,
};

/// Runs of the same signature that must have been fast before one runs inline.
const STREAK: u32 = 2;

/// Jobs queued or running on any device queue (see [`Flight`]).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Runs done on the main thread since the module loaded.
static INLINE_RUNS: AtomicU64 = AtomicU64::new(0);

/// The end and length of the last inline run (main thread only).
static LAST: Mutex<Option<(Instant, Duration)>> = Mutex::new(None);

/// Runs done on the main thread since the module loaded.
pub fn inline_runs() -> u64 {
    INLINE_RUNS.load(Ordering::Relaxed)
}

/// A job's share of the jobs in flight on all queues: counted while the job exists.
pub struct Flight(());

impl Flight {
    /// Count one more job in flight.
    pub(super) fn start() -> Flight {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        Flight(())
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How fast an object's recent runs were: the signature of the last run and how many runs
/// in a row with that signature stayed within `INLINE_RUN_MAX_US`.
#[derive(Default)]
pub struct Pace(Mutex<(u64, u32)>);

impl Pace {
    /// Count a run of `signature` that took `elapsed` against the bound `max_us`.
    pub fn record(&self, signature: u64, elapsed: Duration, max_us: u64) {
        let fast = max_us > 0 && elapsed <= Duration::from_micros(max_us);
        let mut p = lock(&self.0);
        p.1 = match (fast, p.0 == signature) {
            (false, _) => 0,
            (true, true) => p.1.saturating_add(1),
            (true, false) => 1,
        };
        p.0 = signature;
    }

    /// Whether runs of `signature` have been fast lately.
    fn is_fast(&self, signature: u64) -> bool {
        let p = lock(&self.0);
        p.0 == signature && p.1 >= STREAK
    }
}

/// What a run's cost depends on: the inputs' types and shapes and, for a script, the
/// function, KEYS and ARGS.
pub fn signature(work: &Work, inputs: &[Tensor]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    for t in inputs {
        (t.dtype as u8).hash(&mut h);
        t.shape.hash(&mut h);
    }
    if let Work::Script {
        function,
        keys,
        args,
        ..
    } = work
    {
        (function, keys, args).hash(&mut h);
    }
    h.finish()
}

/// The pace record of a model or script (DAGs have none).
pub(super) fn pace_of(work: &Work) -> Option<&Pace> {
    match work {
        Work::Model(m) => Some(&m.0.pace),
        Work::Script { script, .. } => Some(&script.0.pace),
        Work::Dag(_) => None,
    }
}

/// The bound in force, in µs (0: off).
pub(super) fn max_us() -> u64 {
    lock(&state().config).inline_run_max_us
}

/// The signature of `work` when it may run on the main thread now, `None` otherwise (the
/// cheap conditions are looked at before the inputs are hashed).
fn allowed(device: &str, work: &Work, inputs: &[Tensor], max: u64) -> Option<u64> {
    if max == 0 || !device.eq_ignore_ascii_case("CPU") {
        return None;
    }
    if let Work::Model(m) = work
        && m.0.meta.batch_size > 0
    {
        return None;
    }
    if IN_FLIGHT.load(Ordering::SeqCst) != 0 {
        return None;
    }
    // At most half of the main thread's time.
    if lock(&LAST).is_some_and(|(end, took)| end.elapsed() < took) {
        return None;
    }
    let sig = signature(work, inputs);
    pace_of(work)?.is_fast(sig).then_some(sig)
}

/// Run `work` on the main thread and answer, when it qualifies (see the module doc);
/// `None` sends it to its device queue.
pub fn try_run(
    ctx: &Context,
    device: &str,
    work: &Work,
    inputs: &[Tensor],
    outputs: &[&[u8]],
    timeout_ms: Option<u64>,
) -> Option<RedisResult> {
    let max = max_us();
    let sig = allowed(device, work, inputs, max)?;
    INLINE_RUNS.fetch_add(1, Ordering::Relaxed);
    let limits = limits();
    let interrupt = Arc::new(AtomicBool::new(false));
    let watch = watchdog::watch_inline(interrupt.clone());
    let started = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run::run(work, inputs, &interrupt, &limits)
    }))
    .unwrap_or_else(|_| {
        Err("ERR orc-ai internal error while running (the server keeps running)".into())
    });
    let elapsed = started.elapsed();
    let stopped = watch.finish(result.is_err());
    *lock(&LAST) = Some((Instant::now(), elapsed));
    if let Some(p) = pace_of(work) {
        p.record(sig, elapsed, max);
    }
    let result = run::checked_outputs(work, result, outputs.len());
    run::record_stats(work, &result, elapsed);
    if let Some(msg) = stopped {
        return Some(Err(RedisError::String(msg)));
    }
    if timeout_ms.is_some_and(|t| elapsed > Duration::from_millis(t)) {
        return Some(Ok(RedisValue::SimpleStringStatic("TIMEDOUT")));
    }
    Some(
        result
            .and_then(|tensors| run::write_outputs(ctx, outputs, tensors))
            .map(|()| RedisValue::SimpleStringStatic("OK"))
            .map_err(RedisError::String),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_fast_after_two_fast_runs_in_a_row() {
        let p = Pace::default();
        let us = Duration::from_micros;
        p.record(1, us(10), 100);
        assert!(!p.is_fast(1));
        p.record(1, us(100), 100);
        assert!(p.is_fast(1));
        assert!(!p.is_fast(2), "another signature");
        // A run of another signature starts over; a slow run resets.
        p.record(2, us(10), 100);
        assert!(!p.is_fast(1) && !p.is_fast(2));
        p.record(2, us(10), 100);
        assert!(p.is_fast(2));
        p.record(2, us(101), 100);
        assert!(!p.is_fast(2));
        // A bound of 0 never counts a run as fast.
        p.record(3, us(0), 0);
        p.record(3, us(0), 0);
        assert!(!p.is_fast(3));
    }
}
