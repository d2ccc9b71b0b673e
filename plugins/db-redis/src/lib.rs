//! The Redis deployment styles ([`orc_db_redis`]: `standalone` and `cluster`) as a dynamic
//! orc plugin: `liborc_plugin_db_redis.so`, found by `orc` next to its binary or on
//! `$ORC_PLUGIN_PATH`.
//!
//! ```
//! assert_eq!(orc_db_redis::CLUSTER.name, "cluster");
//! ```
orc_plugin::export_plugins!(orc_db_redis::STANDALONE, orc_db_redis::CLUSTER);
