//! The stable heart of **orc**, a Rust Orchestrator for HPC experiments: the in-memory
//! database (one or many Redis shards) that simulations and ML models share while an
//! experiment runs.
//!
//! This crate defines
//!
//! * the [`Launcher`] trait (launch a step, query many, cancel, find the allocation) and
//!   the [`DbDeployment`] trait (turn [`OrchestratorSettings`] into per-shard steps, then
//!   form and verify the database), with plain types for steps ([`LaunchStep`]), run and
//!   batch settings and [`JobStatus`];
//! * the [`Orchestrator`] lifecycle: launch, wait until every shard answers, form the
//!   cluster, write a reconnect file, watch, change settings, stop with nothing left;
//! * the [`plugin::PluginHost`], which finds launchers and deployment styles linked into
//!   the binary (`inventory`) and in plugin files on `$ORC_PLUGIN_PATH` (abi_stable);
//! * one [`enum@Error`] type.
//!
//! **Who should depend on it:** tools that embed orc (start a database from your own Rust
//! program), launcher and deployment authors, and `orc-cli`. The traits only grow by
//! methods with default bodies.
//!
//! # Example
//!
//! Launch a one-shard database with whatever plugins are installed, print how clients
//! reach it, and stop it (skipped quietly when no `redis-server` or plugin is available):
//!
//! ```no_run
//! use orc_core::{Orchestrator, OrchestratorSettings, plugin::PluginHost};
//!
//! let host = PluginHost::discover();
//! let mut settings = OrchestratorSettings::with_shards(1);
//! settings.port = 0; // any free port
//! let orc = Orchestrator::launch(&host, settings)?;
//! for (k, v) in orc.client_env() {
//!     println!("{k}={v}");
//! }
//! orc.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Plain types work without any server:
//!
//! ```
//! use orc_core::{JobStatus, OrchestratorSettings};
//! let s = OrchestratorSettings::with_shards(3);
//! assert_eq!(s.deployment_name(), "cluster");
//! assert!(JobStatus::Cancelled.is_terminal());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::print_stdout))]

pub mod agent;
pub mod deployment;
pub mod error;
pub mod launcher;
pub mod net;
pub mod orchestrator;
pub mod plugin;
pub mod record;
pub mod settings;
pub mod status;
pub mod step;
pub mod tools;

pub use deployment::{
    DbDeployment, DbHealth, PlanRequest, Probe, ShardAddress, ShardHealth, ShardSpec,
};
pub use error::{Error, Result};
pub use launcher::Launcher;
pub use orchestrator::{
    Builder, DbState, LaunchOptions, Orchestrator, OrchestratorStatus, Progress, ShardStop, StopWay,
};
pub use settings::{AiSettings, Checkpoints, ModuleSpec, OrchestratorSettings, RedisConfig};
pub use status::{JobStatus, StepStatus};
pub use step::{Allocation, BatchSettings, LaunchStep, MpmdPart, RunSettings, StepId};

/// Re-exports used by this crate's macros; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable;
    pub use inventory;
    pub use orc_plugin_abi;
}
