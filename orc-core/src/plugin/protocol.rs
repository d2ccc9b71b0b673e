//! The JSON calls carried by [`orc_plugin_abi::PluginObject::call`].
//!
//! Method names and payloads are part of plugin ABI version [`orc_plugin_abi::ABI_VERSION`]:
//! new methods may be added, existing ones never change shape.

use serde::{Deserialize, Serialize};

use crate::{deployment::ShardAddress, settings::OrchestratorSettings, step::BatchSettings};

/// Launcher calls.
pub(crate) mod launcher {
    pub(crate) const LAUNCH: &str = "launch";
    pub(crate) const STATUS: &str = "status";
    pub(crate) const CANCEL: &str = "cancel";
    pub(crate) const ALLOCATION: &str = "allocation";
    pub(crate) const ALLOCATE: &str = "allocate";
    pub(crate) const RELEASE: &str = "release";
}

/// Deployment calls.
pub(crate) mod deployment {
    pub(crate) const CLUSTERED: &str = "clustered";
    pub(crate) const PLAN: &str = "plan";
    pub(crate) const PROBE: &str = "probe";
    pub(crate) const FORM: &str = "form";
    pub(crate) const HEALTH: &str = "health";
    pub(crate) const SHUTDOWN: &str = "shutdown";
    pub(crate) const CONFIG_SET: &str = "config_set";
    pub(crate) const CONFIG_GET: &str = "config_get";
}

#[derive(Serialize, Deserialize)]
pub(crate) struct AllocateRequest {
    pub(crate) batch: BatchSettings,
    pub(crate) name: String,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct FormRequest {
    pub(crate) shards: Vec<ShardAddress>,
    pub(crate) settings: OrchestratorSettings,
    pub(crate) timeout_secs: f64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ShutdownRequest {
    pub(crate) shard: ShardAddress,
    pub(crate) save: bool,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ConfigRequest {
    pub(crate) shard: ShardAddress,
    pub(crate) key: String,
    pub(crate) value: Option<String>,
}
