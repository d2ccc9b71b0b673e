//! Helpers for launcher implementations: running a scheduler's commands with errors that
//! say what to do, and waiting for a cancelled job to end.

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use orc_core::{Error, JobStatus, Result, StepStatus};

/// Job-script directive lines `<prefix> <flag> <value>`, in order, for each `lines` entry
/// whose value is given: a batch job's name, resources, account, queue and output files.
///
/// ```
/// use orc_launcher_kit::tools::directives;
/// let account: Option<&str> = None;
/// let s = directives("#PBS", [("-N", Some("db")), ("-A", account), ("-q", Some("debug"))]);
/// assert_eq!(s, "#PBS -N db\n#PBS -q debug\n");
/// ```
pub fn directives<'a, V: std::fmt::Display + 'a>(
    prefix: &str,
    lines: impl IntoIterator<Item = (&'a str, Option<V>)>,
) -> String {
    lines
        .into_iter()
        .filter_map(|(flag, v)| v.map(|v| format!("{prefix} {flag} {v}\n")))
        .collect()
}

/// Job-script directive lines (`<prefix> -k v`, or `<prefix> -k` for a flag) for a step's
/// or batch job's `extra` settings. With `long`, keys of more than one letter take two
/// dashes (`--key v`).
pub fn extra_directives(
    prefix: &str,
    extra: &std::collections::BTreeMap<String, Option<String>>,
    long: bool,
) -> String {
    extra
        .iter()
        .map(|(k, v)| {
            let dashes = if long && k.len() > 1 { "--" } else { "-" };
            match v {
                Some(v) => format!("{prefix} {dashes}{k} {v}\n"),
                None => format!("{prefix} {dashes}{k}\n"),
            }
        })
        .collect()
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
    fn extra_settings_become_directives() {
        let extra: std::collections::BTreeMap<String, Option<String>> = [
            ("q".to_string(), Some("debug".to_string())),
            ("attrs".into(), Some("mcdram=cache".into())),
            ("V".into(), None),
        ]
        .into();
        assert_eq!(
            extra_directives("#PBS", &extra, false),
            "#PBS -V\n#PBS -attrs mcdram=cache\n#PBS -q debug\n"
        );
        assert_eq!(
            extra_directives("#COBALT", &extra, true),
            "#COBALT -V\n#COBALT --attrs mcdram=cache\n#COBALT -q debug\n"
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
