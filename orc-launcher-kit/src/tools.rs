//! Helpers for launcher implementations: running a scheduler's commands with errors that
//! say what to do, and waiting for a cancelled job to end.

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use orc_core::{Error, JobStatus, QueueState, Result, StepStatus};

/// Batch jobs an [`allocate`](orc_core::Launcher::allocate) call is waiting for, by job
/// name, so that [`cancel_allocation`](orc_core::Launcher::cancel_allocation) (another
/// thread, on Ctrl-C) can find and cancel one still in the queue, and
/// [`queue_state`](orc_core::Launcher::queue_state) can tell what the waiting call last
/// saw of it without asking the scheduler again.
#[derive(Debug, Default)]
pub struct PendingJobs(std::sync::Mutex<std::collections::HashMap<String, Pending>>);

#[derive(Debug)]
struct Pending {
    job: String,
    seen: Option<QueueState>,
}

impl PendingJobs {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Pending>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Job `job` was submitted as `name` and is waited for until the guard is dropped.
    pub fn waiting(&self, name: &str, job: &str) -> PendingGuard<'_> {
        self.map().insert(
            name.to_string(),
            Pending {
                job: job.to_string(),
                seen: None,
            },
        );
        PendingGuard {
            jobs: self,
            name: name.to_string(),
        }
    }

    /// The job waited for as `name`, if any.
    pub fn job(&self, name: &str) -> Option<String> {
        self.map().get(name).map(|p| p.job.clone())
    }

    /// The waiting call saw the job waited for as `name` queued with `status` (its native
    /// state, and the scheduler's reason in its detail).
    pub fn saw(&self, name: &str, status: &StepStatus) {
        if let Some(p) = self.map().get_mut(name) {
            let state = status
                .native_state
                .clone()
                .unwrap_or_else(|| status.status.to_string());
            p.seen = Some(QueueState::new(p.job.clone(), state, status.detail.clone()));
        }
    }

    /// What the waiting call last saw of the job waited for as `name` (see
    /// [`PendingJobs::saw`]).
    pub fn seen(&self, name: &str) -> Option<QueueState> {
        self.map().get(name).and_then(|p| p.seen.clone())
    }
}

/// Keeps a job in [`PendingJobs`] while an allocation waits for it.
#[derive(Debug)]
pub struct PendingGuard<'a> {
    jobs: &'a PendingJobs,
    name: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.jobs.map().remove(&self.name);
    }
}

/// `v` as the value of a job-script directive (`#PBS -A <v>`, `#SBATCH --account=<v>`):
/// refused when it holds whitespace or control characters. A directive line is read by the
/// scheduler, not the shell, and has no quoting that every scheduler honours: a newline
/// would start a shell line of its own, a space another option.
pub fn directive_value(v: &str) -> Result<&str> {
    if let Some(c) = v.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::config(format!(
            "{v:?} cannot go into a job-script directive: it contains {c:?} (whitespace and control characters are refused)"
        )));
    }
    Ok(v)
}

/// `k` as a directive's option name (from `--batch-arg k=v`, `--run-arg k=v`): letters,
/// digits, `_`, `-` and `.`, starting with a letter or digit.
pub fn directive_key(k: &str) -> Result<&str> {
    let ok = k.starts_with(|c: char| c.is_ascii_alphanumeric())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(k)
    } else {
        Err(Error::config(format!(
            "{k:?} is not a scheduler option name (letters, digits, _, - and ., starting with a letter or digit)"
        )))
    }
}

/// Job-script directive lines `<prefix> <flag> <value>`, in order, for each `lines` entry
/// whose value is given: a batch job's name, resources, account, queue and output files.
/// Every value goes through [`directive_value`].
///
/// ```
/// use orc_launcher_kit::tools::directives;
/// let account: Option<&str> = None;
/// let s = directives("#PBS", [("-N", Some("db")), ("-A", account), ("-q", Some("debug"))])?;
/// assert_eq!(s, "#PBS -N db\n#PBS -q debug\n");
/// assert!(directives("#PBS", [("-A", Some("p\n#PBS -l select=999"))]).is_err());
/// # Ok::<(), orc_core::Error>(())
/// ```
pub fn directives<'a, V: std::fmt::Display + 'a>(
    prefix: &str,
    lines: impl IntoIterator<Item = (&'a str, Option<V>)>,
) -> Result<String> {
    let mut s = String::new();
    for (flag, v) in lines {
        if let Some(v) = v {
            let v = v.to_string();
            s.push_str(&format!("{prefix} {flag} {}\n", directive_value(&v)?));
        }
    }
    Ok(s)
}

/// Job-script directive lines (`<prefix> -k v`, or `<prefix> -k` for a flag) for a step's
/// or batch job's `extra` settings. With `long`, keys of more than one letter take two
/// dashes (`--key v`). Keys go through [`directive_key`], values through
/// [`directive_value`].
pub fn extra_directives(
    prefix: &str,
    extra: &std::collections::BTreeMap<String, Option<String>>,
    long: bool,
) -> Result<String> {
    let mut s = String::new();
    for (k, v) in extra {
        let dashes = if long && k.len() > 1 { "--" } else { "-" };
        let k = directive_key(k)?;
        match v {
            Some(v) => s.push_str(&format!("{prefix} {dashes}{k} {}\n", directive_value(v)?)),
            None => s.push_str(&format!("{prefix} {dashes}{k}\n")),
        }
    }
    Ok(s)
}

/// Run `cmd` (stdin closed) and collect its output. A command missing from `PATH` is
/// [`Error::ExecutableNotFound`] with `hint`; any other failure to start it names
/// `launcher`.
pub fn output(launcher: &str, cmd: &mut Command, hint: &str) -> Result<Output> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null()).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::ExecutableNotFound {
                name,
                searched: " on PATH".into(),
                hint: hint.into(),
            }
        } else {
            Error::launcher(launcher, format!("could not run {name}: {e}"))
        }
    })
}

/// Poll `status` until it is terminal and return it marked [`JobStatus::Cancelled`]; an
/// error names `what` (`job 12 ... after qdel`) when it is still running after `limit`.
pub fn wait_cancelled(
    launcher: &str,
    what: &str,
    limit: Duration,
    mut status: impl FnMut() -> Result<StepStatus>,
) -> Result<StepStatus> {
    let deadline = Instant::now() + limit;
    loop {
        let s = status()?;
        if s.status.is_terminal() {
            let mut s = s;
            s.status = JobStatus::Cancelled;
            return Ok(s);
        }
        if Instant::now() >= deadline {
            return Err(Error::launcher(
                launcher,
                format!("{what}: still {s} {} s later", limit.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_jobs_are_known_only_while_waited_for() {
        let p = PendingJobs::default();
        assert_eq!(p.job("orc-db"), None);
        {
            let _w = p.waiting("orc-db", "42");
            assert_eq!(p.job("orc-db").as_deref(), Some("42"));
        }
        assert_eq!(p.job("orc-db"), None);
    }

    #[test]
    fn extra_settings_become_directives() {
        let extra: std::collections::BTreeMap<String, Option<String>> = [
            ("q".to_string(), Some("debug".to_string())),
            ("attrs".into(), Some("mcdram=cache".into())),
            ("V".into(), None),
        ]
        .into();
        assert_eq!(
            extra_directives("#PBS", &extra, false).unwrap(),
            "#PBS -V\n#PBS -attrs mcdram=cache\n#PBS -q debug\n"
        );
        assert_eq!(
            extra_directives("#COBALT", &extra, true).unwrap(),
            "#COBALT -V\n#COBALT --attrs mcdram=cache\n#COBALT -q debug\n"
        );
    }

    #[test]
    fn hostile_directive_values_and_keys_are_refused() {
        for bad in ["a\nrm -rf ~", "a b", "x\r", "q\0", "$(id)\n", "\t"] {
            assert!(directive_value(bad).is_err(), "{bad:?}");
            let extra = [("q".to_string(), Some(bad.to_string()))].into();
            assert!(extra_directives("#PBS", &extra, false).is_err(), "{bad:?}");
        }
        // Quotes and `$()` without whitespace stay one word of a comment line.
        assert_eq!(directive_value("proj'$(id)").unwrap(), "proj'$(id)");
        for bad in ["", "-x", "a b", "a\nb", "k=v", "a;b"] {
            let extra = [(bad.to_string(), None)].into();
            assert!(extra_directives("#PBS", &extra, false).is_err(), "{bad:?}");
        }
        let ok = [("mem-per-cpu".to_string(), Some("4G".to_string()))].into();
        assert_eq!(
            extra_directives("#SBATCH", &ok, true).unwrap(),
            "#SBATCH --mem-per-cpu 4G\n"
        );
    }

    #[test]
    fn missing_commands_get_the_hint() {
        let err = output("x", &mut Command::new("no-such-tool-orc"), "install it").unwrap_err();
        assert!(
            matches!(&err, Error::ExecutableNotFound { name, hint, .. }
                if name == "no-such-tool-orc" && hint == "install it"),
            "{err}"
        );
        let out = output("x", Command::new("sh").args(["-c", "echo hi"]), "").unwrap();
        assert_eq!(out.stdout, b"hi\n");
    }

    #[test]
    fn waits_until_terminal_or_gives_up() {
        let mut n = 0;
        let s = wait_cancelled("x", "job 1", Duration::from_secs(5), || {
            n += 1;
            Ok(StepStatus::new(if n < 3 {
                JobStatus::Running
            } else {
                JobStatus::Failed
            })
            .exit_code(Some(143)))
        })
        .unwrap();
        assert_eq!(
            (s.status, s.exit_code, n),
            (JobStatus::Cancelled, Some(143), 3)
        );
        let err = wait_cancelled("x", "job 2 after qdel", Duration::ZERO, || {
            Ok(StepStatus::new(JobStatus::Running))
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("job 2 after qdel: still running 0 s later"),
            "{err}"
        );
    }
}
