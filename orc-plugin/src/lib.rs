//! The plugin author's side of **orc**: make a launcher or a database deployment style
//! available to the `orc` program and to any Rust program that embeds orc.
//!
//! A component is a [`StaticPlugin`] constant (name, version, description, and a
//! [`Factory`] that makes the `orc_core::Launcher` or `orc_core::DbDeployment`). Then
//!
//! * [`register_plugin!`] registers it in every binary that links the crate (the host
//!   finds it with [`linked`]), and
//! * [`export_plugins!`] exports one or more from a `cdylib` that `orc` loads at startup
//!   from its plugin path. Every call into the library catches panics; its `tracing`
//!   records reach the host's log.
//!
//! The messages and the binary interface are those of `orc-plugin-abi` (a major and a
//! minor version, with capability names); a library built with this crate declares every
//! capability of the minor it was built against.
//!
//! Site admins writing a launcher usually depend on `orc-launcher-kit`, which re-exports
//! this crate with everything else a launcher needs.
//!
//! # Example
//!
//! ```
//! use orc_core::{Allocation, Error, LaunchStep, Launcher, Result, StepId, StepStatus};
//! use orc_plugin::{Factory, StaticPlugin};
//!
//! struct Nowhere;
//! impl Launcher for Nowhere {
//!     fn name(&self) -> &str { "nowhere" }
//!     fn launch(&self, _: &LaunchStep) -> Result<StepId> { Err(Error::launcher("nowhere", "no nodes")) }
//!     fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>> { Err(Error::launcher("nowhere", format!("unknown steps {ids:?}"))) }
//!     fn cancel(&self, _: &StepId) -> Result<StepStatus> { Err(Error::launcher("nowhere", "no steps")) }
//!     fn allocation(&self) -> Result<Allocation> { Ok(Allocation::new(None, vec![])) }
//! }
//!
//! pub const PLUGIN: StaticPlugin = StaticPlugin {
//!     name: "nowhere",
//!     version: "0.1.0",
//!     description: "launches nothing",
//!     crate_name: "example",
//!     factory: Factory::Launcher(|| Box::new(Nowhere)),
//! };
//! orc_plugin::register_plugin!(PLUGIN);
//! // In a cdylib: orc_plugin::export_plugins!(PLUGIN);
//!
//! let reply = orc_plugin::export::serve_launcher(&Nowhere, "allocation", "null")?;
//! assert_eq!(reply, r#"{"id":null,"hosts":[]}"#);
//! # Ok::<(), orc_core::Error>(())
//! ```
#![deny(missing_docs)]

pub mod export;
mod registry;

pub use registry::{Factory, PluginKind, StaticPlugin, linked};

/// Re-exports used by this crate's macros; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable;
    pub use inventory;
    pub use orc_plugin_abi;
}
