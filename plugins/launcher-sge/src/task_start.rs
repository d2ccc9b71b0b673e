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
const REFUSED: &str = "didn't accept task";

/// Watch the local `qrsh` of a task (`local`) until the task is known to run (its wrapper
/// wrote `pidfile`), `qrsh` ended, or `limit` passed. Whether the task was refused: `qrsh`
/// failed before the wrapper ran, with the refusal message near the end of one of
/// `outputs`. Every other outcome (under way, still starting after `limit`, or the step's
/// own end) is not.
pub(crate) fn refused(
    procs: &LocalLauncher,
    local: &StepId,
    pidfile: &Path,
    outputs: &[&Path],
    limit: Duration,
) -> Result<bool> {
    let deadline = Instant::now() + limit;
    loop {
        if pidfile.exists() {
            return Ok(false);
        }
        let s = procs.status(std::slice::from_ref(local))?.remove(0);
        if s.status.is_terminal() {
            return Ok(s.exit_code != Some(0)
                && !pidfile.exists()
                && outputs.iter().any(|p| tail(p).contains(REFUSED)));
        }
        if Instant::now() >= deadline {
            return Ok(false);
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
