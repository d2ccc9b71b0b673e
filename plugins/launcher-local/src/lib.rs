//! The local launcher ([`orc_launcher_local`]) as a dynamic orc plugin:
//! `liborc_plugin_launcher_local.so`, found by `orc` next to its binary or on
//! `$ORC_PLUGIN_PATH`.
//!
//! ```
//! // The exported launcher is the crate's own registration:
//! assert_eq!(orc_launcher_local::PLUGIN.name, "local");
//! ```
orc_plugin::export_plugins!(orc_launcher_local::PLUGIN);
