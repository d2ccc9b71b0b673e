//! The [`Launcher`] trait: how steps reach a machine and how they are watched.

use std::path::Path;

use crate::{
    error::{Error, Result},
    status::StepStatus,
    step::{Allocation, BatchSettings, LaunchStep, StepId},
};

/// Runs steps on a workload manager (or on this machine) and watches them.
///
/// Implementations are synchronous: submitting a job is a subprocess call, and the
/// trait crosses the plugin boundary. Methods with default bodies may be added later
/// without breaking implementors.
pub trait Launcher: Send + Sync {
    /// The name users select this launcher by.
    fn name(&self) -> &str;

    /// Start one step and return its id as soon as it is submitted (do not wait for it).
    fn launch(&self, step: &LaunchStep) -> Result<StepId>;

    /// The status of several steps, in the same order as `ids`. A step the launcher does
    /// not know must be reported as an error, never as `Completed`.
    fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>>;

    /// Stop a step (gracefully first where the launcher can) and return its final status.
    /// Cancelling a step that already ended is not an error.
    fn cancel(&self, id: &StepId) -> Result<StepStatus>;

    /// The allocation this process runs in (or the local machine), with its hosts.
    fn allocation(&self) -> Result<Allocation>;

    /// Get an allocation as a batch job of its own (`sbatch`, `qsub`, ...) named `name`,
    /// wait until it runs, and return it with its hosts. Steps then run inside it when
    /// their [`RunSettings::allocation`](crate::RunSettings::allocation) names it.
    /// Launchers without batch jobs refuse.
    fn allocate(&self, batch: &BatchSettings, name: &str) -> Result<Allocation> {
        let _ = (batch, name);
        Err(Error::launcher(
            self.name(),
            "batch mode is not supported by this launcher; run inside an allocation instead",
        ))
    }

    /// End an allocation made by [`Launcher::allocate`], and every step still in it.
    /// Releasing one that already ended is not an error.
    fn release(&self, allocation: &str) -> Result<()> {
        let _ = allocation;
        Err(Error::launcher(
            self.name(),
            "batch mode is not supported by this launcher",
        ))
    }

    /// The batch job an [`allocate`](Launcher::allocate) call with job name `name` is
    /// waiting for, as the scheduler describes it now (state and reason), for progress
    /// lines; `None` when nothing waits under that name or the launcher cannot tell.
    /// Called from another thread while that call blocks.
    fn queue_state(&self, name: &str) -> Result<Option<crate::QueueState>> {
        let _ = name;
        Ok(None)
    }

    /// Cancel the batch job an [`allocate`](Launcher::allocate) call with job name `name`
    /// is waiting for (called from another thread while that call blocks, for a Ctrl-C
    /// during a queue wait); that call then returns an error. Nothing pending under that
    /// name is not an error. Launchers that cannot answer `NotImplemented`.
    fn cancel_allocation(&self, name: &str) -> Result<()> {
        let _ = name;
        Err(Error::NotImplemented {
            what: format!(
                "cancelling a pending batch job of the {} launcher",
                self.name()
            ),
        })
    }

    /// Keep files that later processes and other nodes must find (a batch job's agent
    /// directory, say) under `dir`: the orchestrator's state directory, on a filesystem
    /// that login and compute nodes share. The orchestrator calls it before anything else;
    /// without it a launcher uses [`default_state_dir`](crate::settings::default_state_dir).
    /// Launchers that keep no files ignore it.
    fn use_state_dir(&self, dir: &Path) -> Result<()> {
        let _ = dir;
        Ok(())
    }
}

/// The launcher name `auto` stands for.
pub const AUTO: &str = "auto";

/// The launcher to use when the user asked for [`AUTO`]: the workload manager whose
/// allocation this process runs in (`SLURM_JOB_ID`, `PBS_JOBID`, `LSB_JOBID`,
/// `COBALT_JOBID`); for a batch launch outside any allocation, the first workload manager
/// whose client commands are on `PATH` (`sbatch`; `bsub`; `cqsub` for Cobalt; `pbsnodes`
/// for PBS, since Grid Engine and Cobalt also have a `qsub`); else `local`.
pub fn detect(batch: bool) -> &'static str {
    detect_with(
        batch,
        |k| std::env::var_os(k).is_some_and(|v| !v.is_empty()),
        |exe| {
            std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(exe).is_file()))
        },
    )
}

/// The launchers orc ships, which [`detect`] knows how to recognise (a plugin host tries
/// the others itself).
pub const BUILT_IN: [&str; 5] = ["local", "slurm", "pbs", "lsf", "cobalt"];

fn detect_with(
    batch: bool,
    env_set: impl Fn(&str) -> bool,
    on_path: impl Fn(&str) -> bool,
) -> &'static str {
    const ALLOCATIONS: [(&str, &str); 5] = [
        ("SLURM_JOB_ID", "slurm"),
        ("SLURM_JOBID", "slurm"),
        ("PBS_JOBID", "pbs"),
        ("LSB_JOBID", "lsf"),
        ("COBALT_JOBID", "cobalt"),
    ];
    if let Some((_, l)) = ALLOCATIONS.iter().find(|(k, _)| env_set(k)) {
        return l;
    }
    // `qsub` alone says nothing: PBS, Cobalt and Grid Engine all have one. Cobalt's comes
    // with `cqsub`, PBS's with `pbsnodes`.
    const SUBMITTERS: [(&str, &str); 4] = [
        ("sbatch", "slurm"),
        ("bsub", "lsf"),
        ("cqsub", "cobalt"),
        ("pbsnodes", "pbs"),
    ];
    if batch && let Some((_, l)) = SUBMITTERS.iter().find(|(exe, _)| on_path(exe)) {
        return l;
    }
    "local"
}

#[cfg(test)]
mod tests {
    use super::detect_with;

    #[test]
    fn auto_detection() {
        let none = |_: &str| false;
        assert_eq!(detect_with(false, none, none), "local");
        assert_eq!(detect_with(true, none, none), "local");
        assert_eq!(detect_with(false, |k| k == "PBS_JOBID", none), "pbs");
        assert_eq!(detect_with(true, |k| k == "LSB_JOBID", |_| true), "lsf");
        assert_eq!(detect_with(false, |k| k == "SLURM_JOB_ID", none), "slurm");
        // Outside an allocation only a batch launch goes to the scheduler.
        assert_eq!(detect_with(false, none, |e| e == "sbatch"), "local");
        assert_eq!(detect_with(true, none, |e| e == "sbatch"), "slurm");
        assert_eq!(detect_with(true, none, |e| e == "qsub"), "local");
        assert_eq!(
            detect_with(true, none, |e| e == "qsub" || e == "pbsnodes"),
            "pbs"
        );
        assert_eq!(
            detect_with(true, none, |e| e == "qsub" || e == "cqsub"),
            "cobalt"
        );
    }
}
