//! The local launcher for [orc](orc_core): every step is a process on this machine,
//! watched through `/proc` (the kit's process table, [`orc_launcher_kit::LocalLauncher`]).
//!
//! The crate registers the launcher with the orc plugin host ([`PLUGIN`]); the
//! `orc-plugin-launcher-local` shim exports the same launcher as a dynamic plugin.
//!
//! ```
//! use orc_core::Launcher;
//! assert_eq!(orc_launcher_local::PLUGIN.name, "local");
//! assert_eq!(orc_launcher_local::LocalLauncher::new().name(), "local");
//! ```
#![deny(missing_docs)]

pub use orc_launcher_kit::process::{LocalLauncher, NAME};
use orc_plugin::{Factory, StaticPlugin};

/// Registration of [`LocalLauncher`] with the orc plugin host.
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "processes on this machine",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Launcher(|| Box::new(LocalLauncher::new())),
};
orc_plugin::register_plugin!(PLUGIN);
