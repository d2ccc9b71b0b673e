//! Host-side adapters: a dynamic plugin object seen through the core traits.

use std::sync::Arc;

use abi_stable::std_types::{RResult, RStr};
use orc_plugin_abi::PluginObjectBox;
use serde::{Serialize, de::DeserializeOwned};

use super::{
    dynamic::LoadedLib,
    protocol::{self, AllocateRequest, ConfigRequest, FormRequest, ShutdownRequest},
};
use crate::{
    deployment::{DbDeployment, DbHealth, PlanRequest, Probe, ShardAddress},
    error::{Error, Result},
    launcher::Launcher,
    settings::OrchestratorSettings,
    status::StepStatus,
    step::{Allocation, BatchSettings, LaunchStep, StepId},
};

pub(crate) struct Proxy {
    name: String,
    obj: PluginObjectBox,
    _lib: Arc<LoadedLib>,
}

impl Proxy {
    pub(crate) fn new(name: String, obj: PluginObjectBox, lib: Arc<LoadedLib>) -> Self {
        Self {
            name,
            obj,
            _lib: lib,
        }
    }

    fn call<Q: Serialize + ?Sized, A: DeserializeOwned>(
        &self,
        method: &str,
        request: &Q,
    ) -> Result<A> {
        let payload =
            serde_json::to_string(request).map_err(|e| self.err(method, e.to_string()))?;
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
            RResult::RErr(err) => Err(serde_json::from_str::<Error>(&err)
                .unwrap_or_else(|_| self.err(method, err.to_string()))),
        }
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
        self.0.call(protocol::launcher::LAUNCH, step)
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
        let req = AllocateRequest {
            batch: batch.clone(),
            name: name.into(),
        };
        self.0.call(protocol::launcher::ALLOCATE, &req)
    }
    fn release(&self, allocation: &str) -> Result<()> {
        self.0.call(protocol::launcher::RELEASE, &allocation)
    }
}

pub(crate) struct DeploymentProxy {
    pub(crate) proxy: Proxy,
    pub(crate) clustered: bool,
}

impl DeploymentProxy {
    pub(crate) fn new(proxy: Proxy) -> Result<Self> {
        let clustered = proxy.call(protocol::deployment::CLUSTERED, &())?;
        Ok(Self { proxy, clustered })
    }
}

impl DbDeployment for DeploymentProxy {
    fn name(&self) -> &str {
        &self.proxy.name
    }
    fn clustered(&self) -> bool {
        self.clustered
    }
    fn plan(&self, request: &PlanRequest) -> Result<Vec<LaunchStep>> {
        self.proxy.call(protocol::deployment::PLAN, request)
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
