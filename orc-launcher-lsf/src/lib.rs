//! The LSF launcher for [orc](orc_core): steps with `jsrun` inside an LSF job (IBM CSM
//! systems such as Summit and Sierra).
//!
//! Inside a job (`$LSB_JOBID`, hosts from `$LSB_MCPU_HOSTS`, launch node first) a step
//! placed on hosts runs as `jsrun --erf_input <step>.erf` with an explicit resource file
//! that gives every host its rank (the ERF format of [`parse::erf`]); an unplaced step runs
//! as `jsrun -n <tasks> -a 1 -c <cpus>`. Steps are watched and cancelled as the `jsrun`
//! process on the launch node (`<pid>@<start time>`, see [`orc_launcher_local`]), so there
//! is no `jslist` step-id race. [`parse`] reads `bsub`, `bjobs` and `jslist` output and
//! maps LSF's states, tested on captured output.
//!
//! Not yet: batch jobs (`bsub`).
//!
//! ```
//! use orc_core::Launcher;
//! let l = orc_launcher_lsf::LSFLauncher::new();
//! assert_eq!(l.name(), "lsf");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod parse;

use orc_core::{
    Allocation, Error, LaunchStep, Launcher, Result, StepId, StepStatus,
    plugin::{Factory, StaticPlugin},
};
use orc_launcher_local::LocalLauncher;

/// The launcher's name.
pub const NAME: &str = "lsf";

/// Registration of [`LSFLauncher`] with the orc plugin host.
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "LSF: jsrun steps (ERF placement) inside a job",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Launcher(|| Box::new(LSFLauncher::new())),
};
orc_core::register_plugin!(PLUGIN);

/// Launches steps through LSF.
#[derive(Debug, Default)]
pub struct LSFLauncher {
    procs: LocalLauncher,
}

fn outside() -> Error {
    Error::launcher(
        NAME,
        "not inside an LSF job ($LSB_JOBID is unset): start orc inside one (`bsub -Is`, or from a job script)",
    )
}

/// Errors from the process layer name this launcher.
fn ours(e: Error) -> Error {
    match e {
        Error::Launcher { message, .. } => Error::launcher(NAME, message),
        Error::ExecutableNotFound { name, searched, .. } if name == "jsrun" => {
            Error::ExecutableNotFound {
                name,
                searched,
                hint: "run orc inside an LSF job on a system with IBM CSM (jsrun)".into(),
            }
        }
        e => e,
    }
}

/// A variable from the step's environment, else from this process's.
fn var(step: Option<&LaunchStep>, key: &str) -> Option<String> {
    step.and_then(|s| s.env.get(key).cloned())
        .or_else(|| std::env::var(key).ok())
        .filter(|v| !v.is_empty())
}

/// Every host of the job, launch node first.
fn job_hosts(step: Option<&LaunchStep>) -> Result<Vec<String>> {
    let job = var(step, "LSB_JOBID").ok_or_else(outside)?;
    let list = var(step, "LSB_MCPU_HOSTS").ok_or_else(|| {
        Error::launcher(
            NAME,
            format!("inside LSF job {job} but $LSB_MCPU_HOSTS is unset"),
        )
    })?;
    parse::mcpu_hosts(&list).ok_or_else(|| {
        Error::launcher(
            NAME,
            format!("$LSB_MCPU_HOSTS `{list}` is not a list of host and slot pairs"),
        )
    })
}

/// One word of an ERF `app` line: single-quoted when it holds anything but plain characters.
fn word(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

impl LSFLauncher {
    /// A launcher for steps in the current LSF job.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Launcher for LSFLauncher {
    fn name(&self) -> &str {
        NAME
    }

    fn launch(&self, step: &LaunchStep) -> Result<StepId> {
        if var(Some(step), "LSB_JOBID").is_none() {
            return Err(outside());
        }
        let cpus = step.run.cpus_per_task.unwrap_or(1);
        let wrapped = if step.run.hosts.is_empty() {
            let n = step.run.tasks.unwrap_or(1).to_string();
            let args = vec![
                "-n".into(),
                n,
                "-a".into(),
                "1".into(),
                "-c".into(),
                cpus.to_string(),
            ];
            orc_launcher_local::wrap(step, "jsrun", args)
        } else {
            let all = job_hosts(Some(step))?;
            let at = step
                .run
                .hosts
                .iter()
                .map(|h| {
                    all.iter().position(|a| a == h).ok_or_else(|| {
                        Error::launcher(
                            NAME,
                            format!("host `{h}` is not part of this job ({})", all.join(" ")),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let command: Vec<String> = std::iter::once(step.exe.display().to_string())
                .chain(step.args.iter().cloned())
                .map(|w| word(&w))
                .collect();
            let file = step.cwd.join(format!("{}.erf", step.name));
            std::fs::create_dir_all(&step.cwd)
                .map_err(|e| Error::io(format!("creating {}", step.cwd.display()), e))?;
            std::fs::write(&file, parse::erf(&command.join(" "), &at, cpus))
                .map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
            let mut w = step.clone();
            w.exe = "jsrun".into();
            w.args = vec!["--erf_input".into(), file.display().to_string()];
            w
        };
        self.procs.launch(&wrapped).map_err(ours)
    }

    fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>> {
        self.procs.status(ids).map_err(ours)
    }

    fn cancel(&self, id: &StepId) -> Result<StepStatus> {
        self.procs.cancel(id).map_err(ours)
    }

    fn allocation(&self) -> Result<Allocation> {
        let job = var(None, "LSB_JOBID").ok_or_else(outside)?;
        let mut hosts = job_hosts(None)?;
        // The launch node runs no ranks when the job has compute nodes.
        if hosts.len() > 1 {
            hosts.remove(0);
        }
        Ok(Allocation {
            hosts,
            id: Some(job),
        })
    }
}
