//! The LSF launcher for [orc](orc_core): LSF (bsub, bjobs, bkill; jsrun, jslist, jskill in an allocation).
//!
//! **Status: parsers done, launcher not yet.** [`parse`] reads `bsub`, `bjobs`, `jslist` output and maps
//! the scheduler's states (tested on captured output); the launcher's operations still
//! answer with a clear "not implemented yet" error.
//!
//! ```
//! use orc_core::Launcher;
//! let l = orc_launcher_lsf::LSFLauncher::new();
//! assert_eq!(l.name(), "lsf");
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
pub const NAME: &str = "lsf";

/// Registration of [`LSFLauncher`] with the orc plugin host.
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "LSF (bsub, bjobs, bkill; jsrun, jslist, jskill in an allocation) (not implemented yet)",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Launcher(|| Box::new(LSFLauncher::new())),
};
orc_core::register_plugin!(PLUGIN);

/// Launches steps through LSF.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct LSFLauncher;

impl LSFLauncher {
    /// A new launcher.
    pub fn new() -> Self {
        Self
    }
}

fn todo(what: &str) -> Error {
    Error::not_implemented(format!("the lsf launcher's {what}"))
}

impl Launcher for LSFLauncher {
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
