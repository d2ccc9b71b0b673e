//! The Slurm launcher ([`orc_launcher_slurm`]) as a dynamic orc plugin:
//! `liborc_plugin_launcher_slurm.so`, found by `orc` next to its binary or on
//! `$ORC_PLUGIN_PATH`.
//!
//! ```
//! assert_eq!(orc_launcher_slurm::PLUGIN.name, "slurm");
//! ```
orc_plugin::export_plugins!(orc_launcher_slurm::PLUGIN);
