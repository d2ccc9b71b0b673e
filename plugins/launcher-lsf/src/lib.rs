//! The LSF launcher ([`orc_launcher_lsf`]) as a dynamic orc plugin:
//! `liborc_plugin_launcher_lsf.so`, found by `orc` next to its binary or on
//! `$ORC_PLUGIN_PATH`.
//!
//! ```
//! assert_eq!(orc_launcher_lsf::PLUGIN.name, "lsf");
//! ```
orc_plugin::export_plugins!(orc_launcher_lsf::PLUGIN);
