//! The Cobalt launcher ([`orc_launcher_cobalt`]) as a dynamic orc plugin:
//! `liborc_plugin_launcher_cobalt.so`, found by `orc` next to its binary or on
//! `$ORC_PLUGIN_PATH`.
//!
//! ```
//! assert_eq!(orc_launcher_cobalt::PLUGIN.name, "cobalt");
//! ```
orc_plugin::export_plugins!(orc_launcher_cobalt::PLUGIN);
