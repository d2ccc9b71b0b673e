//! The PBS launcher ([`orc_launcher_pbs`]) as a dynamic orc plugin:
//! `liborc_plugin_launcher_pbs.so`, found by `orc` next to its binary or on
//! `$ORC_PLUGIN_PATH`.
//!
//! ```
//! assert_eq!(orc_launcher_pbs::PLUGIN.name, "pbs");
//! ```
orc_plugin::export_plugins!(orc_launcher_pbs::PLUGIN);
