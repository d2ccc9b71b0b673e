//! The Cobalt launcher for [orc](orc_core): Cobalt (qsub, qstat, qdel; aprun in an allocation).
//!
//! **Status: parsers done, launcher not yet.** [`parse`] reads `qsub` and `qstat` output and maps
//! the scheduler's states (tested on captured output); the launcher's operations still
//! answer with a clear "not implemented yet" error.
//!
//! ```
//! use orc_core::Launcher;
//! let l = orc_launcher_cobalt::CobaltLauncher::new();
//! assert_eq!(l.name(), "cobalt");
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
pub const NAME: &str = "cobalt";

/// Registration of [`CobaltLauncher`] with the orc plugin host.
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "Cobalt (qsub, qstat, qdel; aprun in an allocation) (not implemented yet)",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Launcher(|| Box::new(CobaltLauncher::new())),
};
orc_core::register_plugin!(PLUGIN);

/// Launches steps through Cobalt.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct CobaltLauncher;

impl CobaltLauncher {
    /// A new launcher.
    pub fn new() -> Self {
        Self
    }
}

fn todo(what: &str) -> Error {
    Error::not_implemented(format!("the cobalt launcher's {what}"))
}

impl Launcher for CobaltLauncher {
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
