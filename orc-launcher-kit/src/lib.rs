//! Everything a site admin needs to write an **orc** launcher for a workload manager, in
//! one dependency:
//!
//! * [`prelude`]: the `orc_core` trait and types a launcher implements and handles, and
//!   the plugin registration ([`StaticPlugin`], [`Factory`], [`export_plugins!`]);
//! * [`process`]: the process table ([`LocalLauncher`]): steps as processes on this
//!   machine, watched through `/proc` from any later process, and the wrappers that run a
//!   step through a parallel launch command ([`process::wrap`], [`process::wrap_mpmd`]);
//! * [`wlm`]: the generic workload-manager launcher ([`wlm::WlmLauncher`]): give it a
//!   scheduler's commands ([`wlm::Wlm`]) and it launches steps inside a job, as batch jobs
//!   of their own, or through the job agent, with batch allocations;
//! * [`agent`]: the job agent, for schedulers whose steps can only start inside the job;
//! * [`tools`]: job-script helpers (directives, scheduler commands with errors that say
//!   what to do, waiting for a cancelled job);
//! * `testing` (feature `testing`): the launcher conformance suite every orc launcher
//!   passes, and a scheduler simulator (PBS Pro, LSF, Cobalt commands) to run it without
//!   a real scheduler.
//!
//! `plugins/launcher-template` in the orc repository is a launcher built on this crate
//! alone; start there.
//!
//! # Example
//!
//! A launcher that runs steps as local processes, registered for the plugin host:
//!
//! ```
//! use orc_launcher_kit::prelude::*;
//!
//! #[derive(Default)]
//! struct Here(LocalLauncher);
//!
//! impl Launcher for Here {
//!     fn name(&self) -> &str { "here" }
//!     fn launch(&self, step: &LaunchStep) -> Result<StepId> { self.0.launch(step) }
//!     fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>> { self.0.status(ids) }
//!     fn cancel(&self, id: &StepId) -> Result<StepStatus> { self.0.cancel(id) }
//!     fn allocation(&self) -> Result<Allocation> { self.0.allocation() }
//! }
//!
//! pub const PLUGIN: StaticPlugin = StaticPlugin {
//!     name: "here",
//!     version: "0.1.0",
//!     description: "steps as local processes",
//!     crate_name: "example",
//!     factory: Factory::Launcher(|| Box::new(Here::default())),
//! };
//! // In the plugin library (a cdylib): orc_launcher_kit::export_plugins!(PLUGIN);
//!
//! let dir = tempfile::tempdir()?;
//! let l = Here::default();
//! let id = l.launch(&LaunchStep::new("hi", "true", dir.path()))?;
//! assert!(l.cancel(&id)?.status.is_terminal());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod agent;
pub mod process;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tools;
pub mod wlm;

pub use orc_core;
pub use orc_plugin::{self, Factory, StaticPlugin, export_plugins, register_plugin};
pub use process::LocalLauncher;

/// What a launcher's source file needs, in one `use`.
pub mod prelude {
    pub use orc_core::{
        Allocation, BatchSettings, Error, JobStatus, LaunchStep, Launcher, Result, RunSettings,
        StepId, StepStatus,
    };
    pub use orc_plugin::{Factory, StaticPlugin};

    pub use crate::LocalLauncher;
}
