//! Host-side adapters: a dynamic plugin object seen through the core traits.

use std::sync::Arc;

use abi_stable::std_types::{RResult, RStr};
use orc_core::{
    Allocation, BatchSettings, DbDeployment, DbHealth, Error, LaunchStep, Launcher,
    OrchestratorSettings, PlanRequest, Probe, Result, ShardAddress, StepId, StepStatus,
};
use orc_plugin_abi::{
    PluginObjectBox, capability,
    protocol::{self, AllocateRequest, ConfigRequest, FormRequest, ShutdownRequest},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{contract::Contract, dynamic::LoadedLib};

pub(crate) struct Proxy {
    name: String,
    obj: PluginObjectBox,
    lib: Arc<LoadedLib>,
    contract: Arc<Contract>,
}

impl Proxy {
    pub(crate) fn new(
        name: String,
        obj: PluginObjectBox,
        lib: Arc<LoadedLib>,
        contract: Arc<Contract>,
    ) -> Self {
        Self {
            name,
            obj,
            lib,
            contract,
        }
    }

    fn call<Q: Serialize + ?Sized, A: DeserializeOwned>(
        &self,
        method: &str,
        request: &Q,
    ) -> Result<A> {
        let payload = protocol::encode(request).map_err(|e| self.err(method, e.to_string()))?;
        match self
            .obj
            .call(RStr::from_str(method), RStr::from_str(&payload))
        {
            RResult::ROk(reply) => serde_json::from_str(&reply).map_err(|e| {
                self.err(
                    method,
                    format!("unreadable reply ({e}): {}", truncate(&reply)),
                )
            }),
            RResult::RErr(err) => {
                Err(protocol::decode_error(&err)
                    .unwrap_or_else(|| self.err(method, err.to_string())))
            }
        }
    }

    /// Refuse a request that needs `capability` when the plugin did not declare it: an
    /// older plugin would drop what it does not know and do something else than asked.
    fn require(&self, method: &str, capability: &str) -> Result<()> {
        if self.contract.capabilities.contains(capability) {
            return Ok(());
        }
        let (about, since) = orc_plugin_abi::capability_info(capability)
            .map(|c| (c.about, c.since_minor))
            .unwrap_or(("this request", orc_plugin_abi::ABI_MINOR));
        Err(self.err(
            method,
            format!(
                "{} was built against orc-plugin-abi {}.{} and does not understand {about} (capability `{capability}`, added in {}.{since}); rebuild it against orc-plugin-abi {}.{} or use a plugin that does",
                self.lib.path.display(),
                orc_plugin_abi::ABI_VERSION,
                self.contract.minor,
                orc_plugin_abi::ABI_VERSION,
                orc_plugin_abi::ABI_VERSION,
                orc_plugin_abi::ABI_MINOR,
            ),
        ))
    }

    /// `NotImplemented` (`what`, and why) when the plugin did not declare `capability`:
    /// for optional calls the caller can do without.
    fn offers(&self, capability: &str, what: &str) -> Result<()> {
        if self.contract.capabilities.contains(capability) {
            return Ok(());
        }
        let since = orc_plugin_abi::capability_info(capability)
            .map_or(orc_plugin_abi::ABI_MINOR, |c| c.since_minor);
        Err(Error::NotImplemented {
            what: format!(
                "{what} (its plugin predates orc-plugin-abi {}.{since})",
                orc_plugin_abi::ABI_VERSION
            ),
        })
    }

    fn err(&self, method: &str, message: String) -> Error {
        Error::Plugin {
            plugin: self.name.clone(),
            method: method.into(),
            message,
        }
    }
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

pub(crate) struct LauncherProxy(pub(crate) Proxy);

impl Launcher for LauncherProxy {
    fn name(&self) -> &str {
        &self.0.name
    }
    fn launch(&self, step: &LaunchStep) -> Result<StepId> {
        let m = protocol::launcher::LAUNCH;
        if !step.mpmd.is_empty() {
            self.0.require(m, capability::MPMD)?;
        }
        if step.parts().any(|p| p.run.allocation.is_some()) {
            self.0.require(m, capability::RUN_ALLOCATION)?;
        }
        self.0.call(m, step)
    }
    fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>> {
        self.0.call(protocol::launcher::STATUS, ids)
    }
    fn cancel(&self, id: &StepId) -> Result<StepStatus> {
        self.0.call(protocol::launcher::CANCEL, id)
    }
    fn allocation(&self) -> Result<Allocation> {
        self.0.call(protocol::launcher::ALLOCATION, &())
    }
    fn allocate(&self, batch: &BatchSettings, name: &str) -> Result<Allocation> {
        let m = protocol::launcher::ALLOCATE;
        self.0.require(m, capability::ALLOCATE)?;
        if batch.tasks_per_node.is_some() {
            self.0.require(m, capability::BATCH_TASKS_PER_NODE)?;
        }
        if batch.queue_timeout_secs.is_some() {
            self.0.require(m, capability::BATCH_QUEUE_TIMEOUT)?;
        }
        let req = AllocateRequest {
            batch: batch.clone(),
            name: name.into(),
        };
        self.0.call(protocol::launcher::ALLOCATE, &req)
    }
    fn release(&self, allocation: &str) -> Result<()> {
        self.0
            .require(protocol::launcher::RELEASE, capability::ALLOCATE)?;
        self.0.call(protocol::launcher::RELEASE, &allocation)
    }
    fn cancel_allocation(&self, name: &str) -> Result<()> {
        self.0.offers(
            capability::CANCEL_ALLOCATION,
            &format!(
                "cancelling a pending batch job of the `{}` launcher",
                self.0.name
            ),
        )?;
        self.0.call(protocol::launcher::CANCEL_ALLOCATION, name)
    }
    fn queue_state(&self, name: &str) -> Result<Option<orc_core::QueueState>> {
        if !self
            .0
            .contract
            .capabilities
            .contains(capability::QUEUE_STATE)
        {
            // Built before minor 4: no queue state to show.
            return Ok(None);
        }
        self.0.call(protocol::launcher::QUEUE_STATE, name)
    }
    fn use_state_dir(&self, dir: &std::path::Path) -> Result<()> {
        if !self.0.contract.capabilities.contains(capability::STATE_DIR) {
            // Built before minor 2: it keeps its files under its default state directory,
            // and finds them there again, which is all the call is for.
            tracing::debug!(launcher = %self.0.name, "plugin predates use_state_dir; not sent");
            return Ok(());
        }
        self.0.call(protocol::launcher::USE_STATE_DIR, dir)
    }
}

pub(crate) struct DeploymentProxy {
    pub(crate) proxy: Proxy,
    pub(crate) clustered: bool,
    pub(crate) companion_ports: Vec<u16>,
}

impl DeploymentProxy {
    pub(crate) fn new(proxy: Proxy) -> Result<Self> {
        let clustered = proxy.call(protocol::deployment::CLUSTERED, &())?;
        // A plugin built before minor 2 declares no companion ports.
        let companion_ports = if proxy
            .contract
            .capabilities
            .contains(capability::COMPANION_PORTS)
        {
            proxy.call(protocol::deployment::COMPANION_PORTS, &())?
        } else {
            Vec::new()
        };
        Ok(Self {
            proxy,
            clustered,
            companion_ports,
        })
    }
}

impl DbDeployment for DeploymentProxy {
    fn name(&self) -> &str {
        &self.proxy.name
    }
    fn clustered(&self) -> bool {
        self.clustered
    }
    fn companion_ports(&self) -> Vec<u16> {
        self.companion_ports.clone()
    }
    fn use_credentials(&self, credentials: &orc_core::Credentials) -> Result<()> {
        // A plugin built before minor 3 cannot configure users on its shards.
        self.proxy.offers(
            capability::CREDENTIALS,
            &format!("authentication in the `{}` deployment", self.proxy.name),
        )?;
        self.proxy
            .call(protocol::deployment::USE_CREDENTIALS, credentials)
    }
    fn plan(&self, request: &PlanRequest) -> Result<Vec<LaunchStep>> {
        let m = protocol::deployment::PLAN;
        if request.shards.iter().any(|s| !s.interfaces.is_empty()) {
            self.proxy.require(m, capability::SHARD_INTERFACES)?;
        }
        if request.settings.ai.is_some() && request.settings.module.is_none() {
            self.proxy.require(m, capability::AI_SETTINGS)?;
        }
        if let Some(ai) = &request.settings.ai
            && (ai.onnx_runtime.is_some() || ai.onnxruntime_lib.is_some() || !ai.backend_warmup)
        {
            self.proxy.require(m, capability::AI_RUNTIME)?;
        }
        if let Some(ai) = &request.settings.ai
            && (ai.tf_runtime.is_some() || ai.tensorflow_lib.is_some())
        {
            self.proxy.require(m, capability::TF_RUNTIME)?;
        }
        if let Some(ai) = &request.settings.ai
            && (ai.tflite_runtime.is_some() || ai.litert_lib.is_some())
        {
            self.proxy.require(m, capability::TFLITE_RUNTIME)?;
        }
        if request.settings.tls.is_some() {
            self.proxy.require(m, capability::TLS)?;
        }
        if request.settings.replicas > 0 {
            self.proxy.require(m, capability::REPLICAS)?;
        }
        if request.rejoin {
            self.proxy.require(m, capability::REJOIN)?;
        }
        self.proxy.call(m, request)
    }
    fn probe(&self, shard: &ShardAddress) -> Result<Probe> {
        self.proxy.call(protocol::deployment::PROBE, shard)
    }
    fn form(
        &self,
        shards: &[ShardAddress],
        settings: &OrchestratorSettings,
        timeout_secs: f64,
    ) -> Result<()> {
        let req = FormRequest {
            shards: shards.to_vec(),
            settings: settings.clone(),
            timeout_secs,
        };
        self.proxy.call(protocol::deployment::FORM, &req)
    }
    fn health(&self, shards: &[ShardAddress]) -> Result<DbHealth> {
        self.proxy.call(protocol::deployment::HEALTH, shards)
    }
    fn shutdown(&self, shard: &ShardAddress, save: bool) -> Result<()> {
        self.proxy.call(
            protocol::deployment::SHUTDOWN,
            &ShutdownRequest {
                shard: shard.clone(),
                save,
            },
        )
    }
    fn config_set(&self, shard: &ShardAddress, key: &str, value: &str) -> Result<()> {
        let req = ConfigRequest {
            shard: shard.clone(),
            key: key.into(),
            value: Some(value.into()),
        };
        self.proxy.call(protocol::deployment::CONFIG_SET, &req)
    }
    fn config_get(&self, shard: &ShardAddress, key: &str) -> Result<Vec<(String, String)>> {
        let req = ConfigRequest {
            shard: shard.clone(),
            key: key.into(),
            value: None,
        };
        self.proxy.call(protocol::deployment::CONFIG_GET, &req)
    }
}
