//! The PBS launcher for [orc](orc_core): PBS Pro, steps with PALS `mpiexec` inside a job.
//!
//! Inside a PBS job (`$PBS_JOBID`, hosts from `$PBS_NODEFILE`) every step runs as
//! `mpiexec -n 1 --hosts <host> <command>`, watched and cancelled as a process on the
//! node that runs orc (PBS has no step ids of its own; the step id is the `mpiexec`
//! process's `<pid>@<start time>`, see [`orc_launcher_local`]). [`parse`] reads `qsub`,
//! `qstat` (table and `-f -F json`) and `$PBS_NODEFILE` output and maps PBS states, tested
//! on captured output.
//!
//! Not yet: batch jobs (`qsub`) and `aprun`.
//!
//! ```
//! use orc_core::Launcher;
//! let l = orc_launcher_pbs::PBSLauncher::new();
//! assert_eq!(l.name(), "pbs");
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
pub const NAME: &str = "pbs";

/// Registration of [`PBSLauncher`] with the orc plugin host.
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "PBS Pro: mpiexec (PALS) steps inside a job",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Launcher(|| Box::new(PBSLauncher::new())),
};
orc_core::register_plugin!(PLUGIN);

/// Launches steps through PBS.
#[derive(Debug, Default)]
pub struct PBSLauncher {
    procs: LocalLauncher,
}

/// The id of the PBS job this process runs in.
pub fn current_job() -> Option<String> {
    std::env::var("PBS_JOBID").ok().filter(|v| !v.is_empty())
}

fn outside() -> Error {
    Error::launcher(
        NAME,
        "not inside a PBS job ($PBS_JOBID is unset): start orc inside one (`qsub -I`, or from a job script)",
    )
}

/// Errors from the process layer name this launcher.
fn ours(e: Error) -> Error {
    match e {
        Error::Launcher { message, .. } => Error::launcher(NAME, message),
        Error::ExecutableNotFound { name, searched, .. } if name == "mpiexec" => {
            Error::ExecutableNotFound {
                name,
                searched,
                hint: "run orc inside a PBS job on a system with PALS (module load cray-pals)"
                    .into(),
            }
        }
        e => e,
    }
}

impl PBSLauncher {
    /// A launcher for steps in the current PBS job.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Launcher for PBSLauncher {
    fn name(&self) -> &str {
        NAME
    }

    fn launch(&self, step: &LaunchStep) -> Result<StepId> {
        if step.run.allocation.is_none()
            && current_job().is_none()
            && !step.env.contains_key("PBS_JOBID")
        {
            return Err(outside());
        }
        let n = step.run.tasks.unwrap_or(1).to_string();
        let mut args = vec!["-n".to_string(), n];
        if !step.run.hosts.is_empty() {
            args.extend(["--hosts".into(), step.run.hosts.join(",")]);
        }
        if let Some(c) = step.run.cpus_per_task {
            args.extend(["--depth".into(), c.to_string()]);
        }
        for (k, v) in &step.run.extra {
            args.push(format!("--{k}"));
            args.extend(v.clone());
        }
        self.procs
            .launch(&orc_launcher_local::wrap(step, "mpiexec", args))
            .map_err(ours)
    }

    fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>> {
        self.procs.status(ids).map_err(ours)
    }

    fn cancel(&self, id: &StepId) -> Result<StepStatus> {
        self.procs.cancel(id).map_err(ours)
    }

    fn allocation(&self) -> Result<Allocation> {
        let job = current_job().ok_or_else(outside)?;
        let file = std::env::var("PBS_NODEFILE").map_err(|_| {
            Error::launcher(
                NAME,
                format!("inside PBS job {job} but $PBS_NODEFILE is unset"),
            )
        })?;
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Error::io(format!("reading $PBS_NODEFILE {file}"), e))?;
        let hosts = parse::nodefile_hosts(&text);
        if hosts.is_empty() {
            return Err(Error::launcher(
                NAME,
                format!("$PBS_NODEFILE {file} lists no hosts"),
            ));
        }
        Ok(Allocation {
            hosts,
            id: Some(job),
        })
    }
}
