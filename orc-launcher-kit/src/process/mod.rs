//! The process table: steps as processes on this machine, the local launcher.
//!
//! Steps start in their own process group, so a Ctrl-C in the terminal that started them
//! does not reach them and a cancel reaches everything they started. A step id is
//! `<pid>@<start time>`, so another process can watch and stop the step later (through
//! `/proc`) without ever mistaking a recycled pid for it. While the launching process
//! lives it also knows exit codes; afterwards a finished step reports that its exit code
//! is unknown.
//!
//! Workload-manager launchers use it for whatever runs on the launching node: a parallel
//! launch command inside a job ([`wrap`], [`wrap_mpmd`]), or a step tool that lives as long
//! as its step (`srun`, `qrsh`); [`attribute`] makes its errors theirs.
//!
//! ```
//! use orc_core::{JobStatus, LaunchStep, Launcher};
//! use orc_launcher_kit::LocalLauncher;
//!
//! let dir = tempfile::tempdir()?;
//! let launcher = LocalLauncher::new();
//! let step = LaunchStep::new("hello", "sh", dir.path()).args(["-c", "echo hi; exit 3"]);
//! let id = launcher.launch(&step)?;
//! let status = loop {
//!     let s = launcher.status(&[id.clone()])?.remove(0);
//!     if s.status.is_terminal() { break s; }
//!     std::thread::sleep(std::time::Duration::from_millis(5));
//! };
//! assert_eq!(status.status, JobStatus::Failed);
//! assert_eq!(status.exit_code, Some(3));
//! assert_eq!(std::fs::read_to_string(&step.stdout)?, "hi\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod children;
mod proc;

use std::{
    fs,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use orc_core::{Allocation, Error, JobStatus, LaunchStep, Launcher, Result, StepId, StepStatus};

pub use self::{
    children::{Children, exit_status},
    proc::{ProcStat, parse_stat, signal_group, signal_name, stat, threads_left},
};

/// The local launcher's name.
pub const NAME: &str = "local";

/// How long a cancelled step gets after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// Runs steps as local processes.
#[derive(Debug, Default)]
pub struct LocalLauncher {
    children: Children<u32>,
}

fn parse_id(id: &StepId) -> Result<(u32, u64)> {
    let bad = || {
        Error::launcher(
            NAME,
            format!("`{id}` is not a local step id (expected <pid>@<start time>)"),
        )
    };
    let (pid, start) = id.0.split_once('@').ok_or_else(bad)?;
    Ok((
        pid.parse().map_err(|_| bad())?,
        start.parse().map_err(|_| bad())?,
    ))
}

/// `step` run through a parallel launch command: `exe args... <step's command>`, with the
/// step's environment, directory and output files. Workload-manager launchers whose steps
/// are processes on the launching node (PALS `mpiexec` in a PBS job, `aprun` in a Cobalt
/// job) launch the result with a [`LocalLauncher`].
pub fn wrap(step: &LaunchStep, exe: &str, args: Vec<String>) -> LaunchStep {
    let mut wrapped = step.clone();
    wrapped.exe = exe.into();
    wrapped.args = args;
    wrapped.args.push(step.exe.display().to_string());
    wrapped.args.extend(step.args.iter().cloned());
    wrapped
}

/// `step` with its MPMD parts as one launch of a parallel launcher `exe` that separates
/// programs with `:` (PALS `mpiexec`, ALPS `aprun`): one segment per part, with the options
/// `segment` gives for it, running the part's script ([`LaunchStep::mpmd_parts`]) with
/// `/bin/sh`. The launcher's own output goes to [`LaunchStep::launcher_output`].
pub fn wrap_mpmd(
    step: &LaunchStep,
    exe: &str,
    segment: impl Fn(&orc_core::MpmdPart) -> Result<Vec<String>>,
) -> Result<LaunchStep> {
    let mut args: Vec<String> = Vec::new();
    for (i, part) in step.mpmd_parts()?.iter().enumerate() {
        if i > 0 {
            args.push(":".into());
        }
        args.extend(segment(part)?);
        args.extend(["/bin/sh".into(), part.script.display().to_string()]);
    }
    let mut wrapped = step.clone();
    wrapped.exe = exe.into();
    wrapped.args = args;
    wrapped.mpmd.clear();
    (wrapped.stdout, wrapped.stderr) = step.launcher_output();
    Ok(wrapped)
}

/// An error from a [`LocalLauncher`] running `tool` steps for the launcher `launcher`:
/// launcher errors name `launcher`, and a missing `tool` gets `hint`.
pub fn attribute(e: Error, launcher: &str, tool: &str, hint: &str) -> Error {
    match e {
        Error::Launcher { message, .. } => Error::launcher(launcher, message),
        Error::ExecutableNotFound { name, searched, .. } if name == tool => {
            Error::ExecutableNotFound {
                name,
                searched,
                hint: hint.into(),
            }
        }
        e => e,
    }
}

/// Find `exe` the way a shell would (a path with a `/` as it is, a name on `env_path` or
/// this process's `PATH`); missing is [`Error::ExecutableNotFound`].
pub fn resolve_exe(exe: &Path, env_path: Option<&str>) -> Result<PathBuf> {
    if exe.components().count() > 1 || exe.is_absolute() {
        if exe.is_file() {
            return Ok(exe.to_path_buf());
        }
        return Err(Error::ExecutableNotFound {
            name: exe.display().to_string(),
            searched: String::new(),
            hint: "check the path".into(),
        });
    }
    let path = env_path
        .map(str::to_owned)
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(exe);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(Error::ExecutableNotFound {
        name: exe.display().to_string(),
        searched: format!(" on PATH ({path})"),
        hint: "install it or give its full path".into(),
    })
}

impl LocalLauncher {
    /// A launcher with no steps yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn status_one(&self, id: &StepId) -> Result<StepStatus> {
        let (pid, start) = parse_id(id)?;
        match self.children.exited(&pid) {
            Ok(Some(exit)) => return Ok(exit_status(exit, "exited")),
            Ok(None) => {}
            Err(e) => return Err(Error::io(format!("waiting for process {pid}"), e)),
        }
        Ok(match proc::stat(pid) {
            Some(st)
                if st.start_time == start
                    && (!matches!(st.state, 'Z' | 'X') || proc::threads_left(pid)) =>
            {
                let status = match st.state {
                    'T' | 't' => JobStatus::Paused,
                    _ => JobStatus::Running, // a zombie leader with threads left is still exiting
                };
                StepStatus::new(status).native_state(st.state.to_string())
            }
            // Our own child may have exited between the two looks: reap it now, so its
            // exit code is not lost to the race.
            _ => match self.children.exited(&pid) {
                Ok(Some(exit)) => exit_status(exit, "exited"),
                _ => StepStatus::new(JobStatus::Completed)
                    .native_state("gone")
                    .detail("exited; its exit code is unknown to this process"),
            },
        })
    }

    fn wait_terminal(&self, id: &StepId, timeout: Duration) -> Result<StepStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.status_one(id)?;
            if s.status.is_terminal() || Instant::now() >= deadline {
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Launcher for LocalLauncher {
    fn name(&self) -> &str {
        NAME
    }

    fn launch(&self, step: &LaunchStep) -> Result<StepId> {
        step.refuse_mpmd(NAME)?;
        let exe = resolve_exe(&step.exe, step.env.get("PATH").map(String::as_str))?;
        fs::create_dir_all(&step.cwd)
            .map_err(|e| Error::io(format!("creating {}", step.cwd.display()), e))?;
        // Output files are readable by their owner only (logs may show data and commands).
        let out = orc_secure::create_private(&step.stdout)?;
        let err = if step.stderr == step.stdout {
            out.try_clone()
                .map_err(|e| Error::io("duplicating the output file", e))?
        } else {
            orc_secure::create_private(&step.stderr)?
        };
        let child = Command::new(&exe)
            .args(&step.args)
            .envs(&step.env)
            .current_dir(&step.cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| {
                Error::launcher(
                    NAME,
                    format!("could not start `{}`: {e}", step.command_line()),
                )
            })?;
        let pid = child.id();
        // The child exists until we reap it, so its /proc entry is there.
        let start = proc::stat(pid).map(|s| s.start_time).unwrap_or(0);
        tracing::debug!(step = %step.name, pid, cmd = %step.command_line(), "launched");
        self.children.insert(pid, child);
        Ok(StepId(format!("{pid}@{start}")))
    }

    fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>> {
        ids.iter().map(|id| self.status_one(id)).collect()
    }

    fn cancel(&self, id: &StepId) -> Result<StepStatus> {
        let (pid, _) = parse_id(id)?;
        let mut s = self.status_one(id)?;
        if !s.status.is_terminal() {
            let _ = proc::signal_group(pid, libc::SIGTERM);
            s = self.wait_terminal(id, TERM_GRACE)?;
            if !s.status.is_terminal() {
                tracing::warn!(pid, "step ignored SIGTERM; sending SIGKILL");
                let _ = proc::signal_group(pid, libc::SIGKILL);
                s = self.wait_terminal(id, Duration::from_secs(5))?;
                if !s.status.is_terminal() {
                    return Err(Error::launcher(
                        NAME,
                        format!("process {pid} survived SIGKILL"),
                    ));
                }
            }
            s.status = JobStatus::Cancelled;
        }
        self.children.forget(&pid);
        Ok(s)
    }

    fn allocation(&self) -> Result<Allocation> {
        Ok(Allocation::new(None, vec![orc_net::hostname()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(l: &LocalLauncher, id: &StepId) -> StepStatus {
        l.wait_terminal(id, Duration::from_secs(10))
            .expect("status")
    }

    #[test]
    fn exit_codes_and_signals_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = LocalLauncher::new();
        let ok = l
            .launch(&LaunchStep::new("ok", "true", dir.path()))
            .expect("launch");
        assert_eq!(wait(&l, &ok).status, JobStatus::Completed);
        let killed = l
            .launch(&LaunchStep::new("k", "sh", dir.path()).args(["-c", "kill -9 $$"]))
            .expect("launch");
        let s = wait(&l, &killed);
        assert_eq!(s.status, JobStatus::Failed);
        assert!(s.detail.as_deref().unwrap_or("").contains("SIGKILL"), "{s}");
    }

    #[test]
    fn cancel_stops_the_whole_group_and_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = LocalLauncher::new();
        let id = l
            .launch(
                &LaunchStep::new("sleepy", "sh", dir.path())
                    .args(["-c", "sleep 30 & sleep 30; wait"]),
            )
            .expect("launch");
        assert_eq!(
            l.status(std::slice::from_ref(&id)).expect("status")[0].status,
            JobStatus::Running
        );
        let s = l.cancel(&id).expect("cancel");
        assert_eq!(s.status, JobStatus::Cancelled);
        // Cancelling again is fine and reports a terminal state.
        assert!(l.cancel(&id).expect("cancel again").status.is_terminal());
    }

    #[test]
    fn a_second_launcher_watches_and_stops_foreign_steps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = LocalLauncher::new();
        let id = first
            .launch(&LaunchStep::new("s", "sleep", dir.path()).args(["30"]))
            .expect("launch");
        let second = LocalLauncher::new();
        assert_eq!(
            second.status(std::slice::from_ref(&id)).expect("status")[0].status,
            JobStatus::Running
        );
        assert_eq!(
            second.cancel(&id).expect("cancel").status,
            JobStatus::Cancelled
        );
        // The first launcher reaps it and sees the signal.
        let s = wait(&first, &id);
        assert_eq!(s.status, JobStatus::Failed);
        // A recycled pid with another start time is not mistaken for the step.
        let (pid, start) = parse_id(&id).expect("id");
        let other = StepId(format!("{pid}@{}", start + 1));
        assert!(
            second.status(&[other]).expect("status")[0]
                .status
                .is_terminal()
        );
    }

    #[test]
    fn missing_executables_and_bad_ids_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = LocalLauncher::new();
        let e = l
            .launch(&LaunchStep::new("x", "no-such-binary-orc", dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`no-such-binary-orc` was not found on PATH"),
            "{e}"
        );
        let e = l
            .status(&[StepId("nonsense".into())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a local step id"), "{e}");
    }
}
