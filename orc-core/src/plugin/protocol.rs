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

/// Golden tests of the wire shape: every message of the protocol, built from a canonical
/// value, must serialise to exactly the JSON kept in `tests/golden/`. A change here is a
/// change of the plugin contract: add a capability and bump `orc_plugin_abi::ABI_MINOR`
/// for new fields or methods, never change existing ones, then regenerate the files with
/// `ORC_BLESS=1 cargo test -p orc-core golden`.
#[cfg(test)]
mod golden {
    use std::{collections::BTreeMap, path::PathBuf};

    use super::*;
    use crate::{
        deployment::{DbHealth, PlanRequest, Probe, ShardHealth, ShardSpec},
        error::Error,
        settings::{Checkpoints, ModuleSpec},
        status::{JobStatus, StepStatus},
        step::{Allocation, LaunchStep, RunSettings, StepId},
    };

    fn step() -> LaunchStep {
        let mut s = LaunchStep::new("db_0", "/usr/bin/redis-server", "/run/db");
        s.args = vec!["/run/db/db_0.conf".into()];
        s.env = BTreeMap::from([("OMP_NUM_THREADS".into(), "2".into())]);
        s.run = RunSettings {
            nodes: Some(1),
            tasks: Some(1),
            tasks_per_node: Some(1),
            cpus_per_task: Some(4),
            hosts: vec!["nid0001".into()],
            extra: BTreeMap::from([
                ("exclusive".into(), None),
                ("mem".into(), Some("4G".into())),
            ]),
            allocation: Some("4242".into()),
        };
        let mut part = LaunchStep::new("db_1", "/usr/bin/redis-server", "/run/db");
        part.run.hosts = vec!["nid0002".into()];
        s.mpmd = vec![part];
        s
    }

    fn batch() -> BatchSettings {
        BatchSettings {
            nodes: Some(3),
            tasks_per_node: Some(2),
            walltime_secs: Some(3600),
            account: Some("proj".into()),
            queue: Some("debug".into()),
            extra: BTreeMap::from([("constraint".into(), Some("gpu".into()))]),
            queue_timeout_secs: Some(600),
        }
    }

    fn settings() -> OrchestratorSettings {
        let mut s = OrchestratorSettings::with_shards(2);
        s.db_identifier = "db".into();
        s.interfaces = vec!["ib0".into()];
        s.launcher = "slurm".into();
        s.redis.maxmemory = Some("3gb".into());
        s.redis.checkpoints = Some(Checkpoints {
            every_secs: 900,
            min_changes: 1,
        });
        s.module = Some(ModuleSpec {
            path: "/opt/orc/liborc_ai.so".into(),
            args: vec!["THREADS_PER_QUEUE".into(), "2".into()],
        });
        s.batch = Some(batch());
        s.ai = Some(crate::settings::AiSettings {
            threads_per_queue: Some(2),
            max_dag_size: Some(64),
            backends: vec!["onnx".into()],
            ..Default::default()
        });
        s
    }

    fn shard(index: usize) -> ShardAddress {
        ShardAddress {
            index,
            host: format!("10.0.0.{}", index + 1),
            port: 6379,
        }
    }

    fn status() -> StepStatus {
        StepStatus {
            status: JobStatus::Failed,
            native_state: Some("FAILED".into()),
            exit_code: Some(3),
            detail: Some("exit code 3".into()),
        }
    }

    /// Every message, by file name.
    fn messages() -> Vec<(&'static str, serde_json::Value)> {
        let v = |x: &dyn erased::Ser| x.value();
        let plan = PlanRequest {
            settings: settings(),
            shards: vec![ShardSpec {
                index: 0,
                name: "db_0".into(),
                host: "nid0001".into(),
                port: 6379,
                bind: vec![],
                interfaces: vec!["ib0".into()],
            }],
            dir: "/run/db".into(),
        };
        let health = DbHealth {
            ok: false,
            problems: vec!["shard 1 is unreachable".into()],
            shards: vec![ShardHealth {
                index: 0,
                address: "10.0.0.1:6379".into(),
                reachable: true,
                version: Some("7.0.15".into()),
                role: Some("master".into()),
                keys: Some(12),
                used_memory: Some(1 << 20),
                cluster_state: Some("ok".into()),
                slots: Some(8192),
                modules: vec!["ai 10207".into()],
                ai_backends: vec!["ONNX tract /opt/orc/liborc_ai_backend_onnx.so".into()],
                ai_not_loaded: vec!["key=m kind=model error=no backend".into()],
                error: None,
            }],
        };
        vec![
            ("launch.request", v(&step())),
            ("launch.reply", v(&StepId("4242.0".into()))),
            ("status.request", v(&vec![StepId("4242.0".into())])),
            ("status.reply", v(&vec![status()])),
            ("cancel.request", v(&StepId("4242.0".into()))),
            ("cancel.reply", v(&status())),
            (
                "allocation.reply",
                v(&Allocation {
                    id: Some("4242".into()),
                    hosts: vec!["nid0001".into(), "nid0002".into()],
                }),
            ),
            (
                "allocate.request",
                v(&AllocateRequest {
                    batch: batch(),
                    name: "db".into(),
                }),
            ),
            ("release.request", v(&"4242".to_string())),
            ("clustered.reply", v(&true)),
            ("plan.request", v(&plan)),
            ("plan.reply", v(&vec![step()])),
            ("probe.request", v(&shard(0))),
            (
                "probe.reply",
                v(&Probe {
                    ready: false,
                    detail: Some("LOADING".into()),
                }),
            ),
            (
                "form.request",
                v(&FormRequest {
                    shards: vec![shard(0), shard(1)],
                    settings: settings(),
                    timeout_secs: 30.0,
                }),
            ),
            ("health.request", v(&vec![shard(0)])),
            ("health.reply", v(&health)),
            (
                "shutdown.request",
                v(&ShutdownRequest {
                    shard: shard(0),
                    save: true,
                }),
            ),
            (
                "config_set.request",
                v(&ConfigRequest {
                    shard: shard(0),
                    key: "maxmemory".into(),
                    value: Some("3gb".into()),
                }),
            ),
            (
                "config_get.reply",
                v(&vec![("maxmemory".to_string(), "3221225472".to_string())]),
            ),
            (
                "error.launcher",
                serde_json::from_str(
                    &Error::launcher("slurm", "sbatch: error: invalid account").to_json(),
                )
                .expect("json"),
            ),
            (
                "hello.reply",
                serde_json::from_str(&crate::plugin::export::hello()).expect("json"),
            ),
        ]
    }

    mod erased {
        pub(super) trait Ser {
            fn value(&self) -> serde_json::Value;
        }
        impl<T: serde::Serialize> Ser for T {
            fn value(&self) -> serde_json::Value {
                serde_json::to_value(self).expect("serialisable")
            }
        }
    }

    #[test]
    fn the_wire_shape_of_every_message_is_pinned() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let bless = std::env::var_os("ORC_BLESS").is_some();
        let mut changed = Vec::new();
        for (name, value) in messages() {
            let file = dir.join(format!("{name}.json"));
            let now = serde_json::to_string_pretty(&value).expect("json") + "\n";
            if bless {
                std::fs::create_dir_all(&dir).expect("golden dir");
                std::fs::write(&file, &now).expect("write golden");
                continue;
            }
            let kept = std::fs::read_to_string(&file).unwrap_or_default();
            if kept != now {
                changed.push(format!("{name}:\n--- kept\n{kept}--- now\n{now}"));
            }
        }
        assert!(
            changed.is_empty(),
            "the plugin wire shape changed (see the module docs):\n{}",
            changed.join("\n")
        );
    }
}
