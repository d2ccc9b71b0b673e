//! Test support for launcher authors (feature `testing`): the [`conformance`] suite every
//! orc launcher passes, and a scheduler simulator ([`sim`]) that stands in for PBS Pro,
//! LSF (with JSM) and Cobalt where none can run.
//!
//! A launcher crate adds the kit with this feature to its dev-dependencies and runs the
//! suite in a test:
//!
//! ```
//! use orc_launcher_kit::{LocalLauncher, testing::conformance};
//! let dir = tempfile::tempdir()?;
//! conformance::run(&conformance::Target {
//!     launcher: &LocalLauncher::new(),
//!     dir: dir.path(),
//!     place: &|step| step, // where a step runs: in the launcher's job, say
//! });
//! # Ok::<(), std::io::Error>(())
//! ```
#![allow(clippy::unwrap_used)] // test support: a failed check panics with what it saw

pub mod conformance;
pub mod scripts;
pub mod sim;

use std::time::{Duration, Instant};

use orc_core::{Launcher, StepId, StepStatus};

/// Poll `f` every 10 ms until it holds or `timeout` passes; whether it held.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// Wait (at most a minute) until step `id` of `l` has ended; its status. Panics when it
/// has not, or when its status cannot be read.
pub fn wait_terminal(l: &dyn Launcher, id: &StepId) -> StepStatus {
    let mut last = None;
    let done = wait_for(Duration::from_secs(60), || {
        let s = l
            .status(std::slice::from_ref(id))
            .unwrap_or_else(|e| panic!("{}: status of {id}: {e}", l.name()))
            .remove(0);
        let t = s.status.is_terminal();
        last = Some(s);
        t
    });
    let last = last.expect("a status");
    assert!(done, "{}: step {id} still {last}", l.name());
    last
}

/// Whether process `pid` is gone (a zombie whose threads have all exited counts as gone).
pub fn pid_gone(pid: u32) -> bool {
    match crate::process::stat(pid) {
        None => true,
        Some(s) => matches!(s.state, 'Z' | 'X') && !crate::process::threads_left(pid),
    }
}
