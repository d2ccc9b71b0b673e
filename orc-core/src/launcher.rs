//! The [`Launcher`] trait: how steps reach a machine and how they are watched.

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

    /// Submit `steps` together as one batch job. Launchers without batch support refuse.
    fn launch_batch(&self, batch: &BatchSettings, steps: &[LaunchStep]) -> Result<StepId> {
        let _ = (batch, steps);
        Err(Error::launcher(
            self.name(),
            "batch jobs are not supported by this launcher",
        ))
    }
}
