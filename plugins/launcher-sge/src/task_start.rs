//! Watching a `qrsh -inherit` task start, so that a task the node's execution daemon
//! refused can be started again.
//!
//! Just after a parallel job starts, the execution daemon on a slave host may not yet hold
//! its part of the job. A `qrsh -inherit` to that host then fails at once with
//! `execution daemon on host "<host>" didn't accept task`, and the remote command never
//! ran. Starting the same task again a moment later works, so the launcher does that a few
//! times instead of failing the step.

use std::{
    io::{Read, Seek, SeekFrom},
    path::Path,
    time::{Duration, Instant},
};

use orc_launcher_kit::{
    LocalLauncher,
    orc_core::{Launcher, Result, StepId},
};

/// What Grid Engine's `qrsh` prints when the host's execution daemon refuses the task.
pub(crate) const REFUSED: &str = "didn't accept task";

/// How a just-launched task began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// The wrapper on the compute node wrote its pid file, or the watch ran out of time
    /// with the local `qrsh` still running: the step is under way.
    Running,
    /// The local `qrsh` ended, not because the task was refused: the step's own outcome.
    Ended,
    /// The execution daemon refused the task; the remote command never ran.
    Refused,
}

/// Watch the local `qrsh` of a task (`local`) until the task is known to run (its wrapper
/// wrote `pidfile`), `qrsh` ended, or `limit` passed. A `qrsh` that ended with the refusal
/// message as the last thing in one of `outputs` is [`Start::Refused`].
pub(crate) fn watch(
    procs: &LocalLauncher,
    local: &StepId,
    pidfile: &Path,
    outputs: &[&Path],
    limit: Duration,
) -> Result<Start> {
    let deadline = Instant::now() + limit;
    loop {
        if pidfile.exists() {
            return Ok(Start::Running);
        }
        let s = procs.status(std::slice::from_ref(local))?.remove(0);
        if s.status.is_terminal() {
            let refused = s.exit_code != Some(0)
                && !pidfile.exists()
                && outputs.iter().any(|p| tail(p).contains(REFUSED));
            return Ok(if refused {
                Start::Refused
            } else {
                Start::Ended
            });
        }
        if Instant::now() >= deadline {
            return Ok(Start::Running);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last 4 KiB of `path` (empty when unreadable).
fn tail(path: &Path) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut buf = Vec::new();
    let _ = f.take(4096).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
