//! The Slurm launcher for [orc](orc_core): Slurm (sbatch, srun, salloc, squeue, sacct, scancel).
//!
//! **Status: parsers done, launcher not yet.** [`parse`] reads `sbatch`, `salloc`, `sacct`,
//! `sstat` and `scontrol` output and maps Slurm states (tested on captured output); the
//! launcher's operations still answer with a clear "not implemented yet" error.
//!
//! ```
//! use orc_core::Launcher;
//! let l = orc_launcher_slurm::SlurmLauncher::new();
//! assert_eq!(l.name(), "slurm");
//! let err = l.allocation().unwrap_err().to_string();
//! assert!(err.contains("not implemented yet"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod parse;

use orc_core::{
    Allocation, Error, LaunchStep, Launcher, Result, StepId, StepStatus,
    plugin::{Factory, StaticPlugin},
};

/// The launcher's name.
pub const NAME: &str = "slurm";

/// Registration of [`SlurmLauncher`] with the orc plugin host.
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "Slurm (sbatch, srun, salloc, squeue, sacct, scancel) (not implemented yet)",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Launcher(|| Box::new(SlurmLauncher::new())),
};
orc_core::register_plugin!(PLUGIN);

/// Launches steps through Slurm.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SlurmLauncher;

impl SlurmLauncher {
    /// A new launcher.
    pub fn new() -> Self {
        Self
    }
}

fn todo(what: &str) -> Error {
    Error::not_implemented(format!("the slurm launcher's {what}"))
}

impl Launcher for SlurmLauncher {
    fn name(&self) -> &str {
        NAME
    }

    fn launch(&self, _step: &LaunchStep) -> Result<StepId> {
        Err(todo("launch"))
    }

    fn status(&self, _ids: &[StepId]) -> Result<Vec<StepStatus>> {
        Err(todo("status"))
    }

    fn cancel(&self, _id: &StepId) -> Result<StepStatus> {
        Err(todo("cancel"))
    }

    fn allocation(&self) -> Result<Allocation> {
        Err(todo("allocation detection"))
    }
}
