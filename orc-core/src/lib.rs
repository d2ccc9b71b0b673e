//! The stable heart of **orc**, a Rust Orchestrator for HPC experiments: the in-memory
//! database (one or many Redis shards) that simulations and ML models share while an
//! experiment runs.
//!
//! This crate holds only what every other orc crate agrees on, with no dependency but
//! `serde` and `thiserror`:
//!
//! * the [`Launcher`] trait (launch a step, query many, cancel, find or get an
//!   allocation) and the [`DbDeployment`] trait (turn [`OrchestratorSettings`] into
//!   per-shard steps, then form, watch and stop the database);
//! * plain types for what flows between them: steps ([`LaunchStep`], [`RunSettings`],
//!   [`BatchSettings`], [`Allocation`]), shards ([`ShardSpec`], [`ShardAddress`]) and
//!   statuses ([`JobStatus`], [`StepStatus`], [`DbHealth`]);
//! * one [`enum@Error`] type, serialisable so that plugins return it unchanged.
//!
//! Data flows one way: settings -> deployment (plan) -> launcher (steps) -> shards ->
//! clients. The rest of orc builds on these crates:
//!
//! | crate | job |
//! |---|---|
//! | `orc-orchestrator` | the lifecycle: launch, wait, form, record, watch, stop |
//! | `orc-host` | finds launchers and deployments, linked in or in plugin files |
//! | `orc-plugin` | the plugin author's side: register and export components |
//! | `orc-plugin-abi` | the binary contract and its versioned JSON messages |
//! | `orc-launcher-kit` | process table, workload-manager launcher, job agent, conformance suite |
//! | `orc-db-redis` | everything Redis: configs, clusters, shard start, orc-ai arguments |
//!
//! **Who should depend on it:** anyone who implements a launcher or a deployment style,
//! or handles orc's types. The traits only grow by methods with default bodies.
//!
//! # Example
//!
//! ```
//! use orc_core::{JobStatus, LaunchStep, OrchestratorSettings};
//! let s = OrchestratorSettings::with_shards(3);
//! assert_eq!(s.deployment_name(), "cluster");
//! assert!(JobStatus::Cancelled.is_terminal());
//! let step = LaunchStep::new("db_0", "redis-server", "/tmp").args(["db_0.conf"]);
//! assert_eq!(step.args, ["db_0.conf"]);
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::print_stdout))]

pub mod deployment;
pub mod error;
pub mod launcher;
pub mod objects;
pub mod settings;
pub mod status;
pub mod step;

pub use deployment::{
    Credentials, DbDeployment, DbHealth, PlanRequest, Probe, ShardAddress, ShardHealth, ShardSpec,
};
pub use error::{Error, Result};
pub use launcher::Launcher;
pub use objects::DbObject;
pub use settings::{
    AiSettings, Auth, Checkpoints, ModuleSpec, OrchestratorSettings, RedisConfig, Tls, TlsFiles,
};
pub use status::{JobStatus, QueueState, StepStatus};
pub use step::{Allocation, BatchSettings, LaunchStep, MpmdPart, RunSettings, StepId};
