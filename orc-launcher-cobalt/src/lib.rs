//! The Cobalt launcher for [orc](orc_core): steps with `aprun` inside a Cobalt job.
//!
//! Inside a job (`$COBALT_JOBID`, nodes from `$COBALT_PARTNAME`, named `nidNNNNN`) every
//! step runs as `aprun -n <tasks> -N 1 [-L <nid>] [-d <cpus>] <command>`, watched and
//! cancelled as a process on the node that runs orc (Cobalt has no step ids; the step id
//! is the `aprun` process's `<pid>@<start time>`, see [`orc_launcher_local`]). [`parse`]
//! reads `qsub` and `qstat` output and maps Cobalt's states, tested on captured output.
//!
//! Not yet: batch jobs (`qsub`).
//!
//! ```
//! use orc_core::Launcher;
//! let l = orc_launcher_cobalt::CobaltLauncher::new();
//! assert_eq!(l.name(), "cobalt");
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
pub const NAME: &str = "cobalt";

/// Registration of [`CobaltLauncher`] with the orc plugin host.
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "Cobalt: aprun steps inside a job",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Launcher(|| Box::new(CobaltLauncher::new())),
};
orc_core::register_plugin!(PLUGIN);

/// Launches steps through Cobalt.
#[derive(Debug, Default)]
pub struct CobaltLauncher {
    procs: LocalLauncher,
}

/// The id of the Cobalt job this process runs in.
pub fn current_job() -> Option<String> {
    std::env::var("COBALT_JOBID").ok().filter(|v| !v.is_empty())
}

fn outside() -> Error {
    Error::launcher(
        NAME,
        "not inside a Cobalt job ($COBALT_JOBID is unset): start orc inside one (`qsub -I`, or from a job script)",
    )
}

/// Errors from the process layer name this launcher.
fn ours(e: Error) -> Error {
    orc_launcher_local::attribute(
        e,
        NAME,
        "aprun",
        "run orc inside a Cobalt job on a Cray system (aprun comes with ALPS)",
    )
}

impl CobaltLauncher {
    /// A launcher for steps in the current Cobalt job.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Launcher for CobaltLauncher {
    fn name(&self) -> &str {
        NAME
    }

    fn launch(&self, step: &LaunchStep) -> Result<StepId> {
        if step.run.allocation.is_none()
            && current_job().is_none()
            && !step.env.contains_key("COBALT_JOBID")
        {
            return Err(outside());
        }
        let tasks = step.run.tasks.unwrap_or(1).to_string();
        let per_node = step.run.tasks_per_node.unwrap_or(1).to_string();
        let mut args = vec!["-n".to_string(), tasks, "-N".into(), per_node];
        if !step.run.hosts.is_empty() {
            let nids = step
                .run
                .hosts
                .iter()
                .map(|h| {
                    parse::nid(h).map(|n| n.to_string()).ok_or_else(|| {
                        Error::launcher(
                            NAME,
                            format!("cannot place a step on `{h}`: aprun takes Cray node names (nidNNNNN)"),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            args.extend(["-L".into(), nids.join(",")]);
        }
        if let Some(c) = step.run.cpus_per_task {
            args.extend(["-d".into(), c.to_string()]);
        }
        for (k, v) in &step.run.extra {
            args.push(if k.len() == 1 {
                format!("-{k}")
            } else {
                format!("--{k}")
            });
            args.extend(v.clone());
        }
        self.procs
            .launch(&orc_launcher_local::wrap(step, "aprun", args))
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
        let part = std::env::var("COBALT_PARTNAME").map_err(|_| {
            Error::launcher(
                NAME,
                format!("inside Cobalt job {job} but $COBALT_PARTNAME is unset"),
            )
        })?;
        let hosts = parse::partname_hosts(&part).ok_or_else(|| {
            Error::launcher(
                NAME,
                format!("$COBALT_PARTNAME `{part}` is not a node list like 3824-3827,4000"),
            )
        })?;
        Ok(Allocation {
            hosts,
            id: Some(job),
        })
    }
}
