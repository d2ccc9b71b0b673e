//! The JSON messages carried by [`PluginObject::call`](crate::PluginObject::call): the
//! method names, the request types that bundle several arguments, the reply to
//! [`HELLO`](crate::HELLO), and how values and errors are encoded.
//!
//! Arguments and replies are `orc-core` types serialised with `serde_json`. Their shapes
//! are part of the contract: they are pinned by golden files (`tests/golden/`), and a
//! change means a new [`capability`](crate::capability) and a new
//! [`ABI_MINOR`](crate::ABI_MINOR), never a changed meaning.
//!
//! ```
//! use orc_core::StepId;
//! use orc_plugin_abi::protocol;
//! let wire = protocol::encode(&StepId("4242.0".into()))?;
//! assert_eq!(wire, r#""4242.0""#);
//! let back: StepId = protocol::decode("status", &wire)?;
//! assert_eq!(back.0, "4242.0");
//! # Ok::<(), orc_core::Error>(())
//! ```

use orc_core::{BatchSettings, Error, OrchestratorSettings, Result, ShardAddress};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Launcher calls (see `orc_core::Launcher`).
pub mod launcher {
    /// `launch(step: LaunchStep) -> StepId`.
    pub const LAUNCH: &str = "launch";
    /// `status(ids: [StepId]) -> [StepStatus]`.
    pub const STATUS: &str = "status";
    /// `cancel(id: StepId) -> StepStatus`.
    pub const CANCEL: &str = "cancel";
    /// `allocation() -> Allocation`.
    pub const ALLOCATION: &str = "allocation";
    /// `allocate(`[`AllocateRequest`](super::AllocateRequest)`) -> Allocation`.
    pub const ALLOCATE: &str = "allocate";
    /// `release(allocation: string) -> ()`.
    pub const RELEASE: &str = "release";
    /// `use_state_dir(dir: path) -> ()` (capability
    /// [`STATE_DIR`](crate::capability::STATE_DIR)).
    pub const USE_STATE_DIR: &str = "use_state_dir";
    /// `cancel_allocation(name: string) -> ()` (capability
    /// [`CANCEL_ALLOCATION`](crate::capability::CANCEL_ALLOCATION)).
    pub const CANCEL_ALLOCATION: &str = "cancel_allocation";
    /// `queue_state(name: string) -> QueueState | null` (capability
    /// [`QUEUE_STATE`](crate::capability::QUEUE_STATE)).
    pub const QUEUE_STATE: &str = "queue_state";
}

/// Deployment calls (see `orc_core::DbDeployment`).
pub mod deployment {
    /// `clustered() -> bool`.
    pub const CLUSTERED: &str = "clustered";
    /// `companion_ports() -> [u16]` (capability
    /// [`COMPANION_PORTS`](crate::capability::COMPANION_PORTS)).
    pub const COMPANION_PORTS: &str = "companion_ports";
    /// `use_credentials(credentials: Credentials) -> ()` (capability
    /// [`CREDENTIALS`](crate::capability::CREDENTIALS)).
    pub const USE_CREDENTIALS: &str = "use_credentials";
    /// `plan(request: PlanRequest) -> [LaunchStep]`.
    pub const PLAN: &str = "plan";
    /// `probe(shard: ShardAddress) -> Probe`.
    pub const PROBE: &str = "probe";
    /// `form(`[`FormRequest`](super::FormRequest)`) -> ()`.
    pub const FORM: &str = "form";
    /// `health(shards: [ShardAddress]) -> DbHealth`.
    pub const HEALTH: &str = "health";
    /// `shutdown(`[`ShutdownRequest`](super::ShutdownRequest)`) -> ()`.
    pub const SHUTDOWN: &str = "shutdown";
    /// `config_set(`[`ConfigRequest`](super::ConfigRequest)`) -> ()`.
    pub const CONFIG_SET: &str = "config_set";
    /// `config_get(`[`ConfigRequest`](super::ConfigRequest)`) -> [(key, value)]`.
    pub const CONFIG_GET: &str = "config_get";
}

/// The arguments of [`launcher::ALLOCATE`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AllocateRequest {
    /// What the batch job asks for.
    pub batch: BatchSettings,
    /// The job's name.
    pub name: String,
}

/// The arguments of [`deployment::FORM`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FormRequest {
    /// Every shard, in order.
    pub shards: Vec<ShardAddress>,
    /// The orchestrator's settings.
    pub settings: OrchestratorSettings,
    /// How long forming may take.
    pub timeout_secs: f64,
}

/// The arguments of [`deployment::SHUTDOWN`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShutdownRequest {
    /// The shard to stop.
    pub shard: ShardAddress,
    /// Whether it saves its data first.
    pub save: bool,
}

/// The arguments of [`deployment::CONFIG_SET`] and [`deployment::CONFIG_GET`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigRequest {
    /// The shard.
    pub shard: ShardAddress,
    /// The setting (a pattern for `config_get`).
    pub key: String,
    /// The new value (`config_set` only).
    pub value: Option<String>,
}

/// The reply to [`HELLO`](crate::HELLO): what a component understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The [`ABI_MINOR`](crate::ABI_MINOR) it was built against.
    pub abi_minor: u32,
    /// The [`capability`](crate::capability) names it understands.
    pub capabilities: Vec<String>,
}

impl Hello {
    /// The reply of a component built against this crate: everything up to
    /// [`ABI_MINOR`](crate::ABI_MINOR).
    pub fn current() -> Self {
        Self {
            abi_minor: crate::ABI_MINOR,
            capabilities: crate::capabilities_up_to(crate::ABI_MINOR)
                .map(str::to_string)
                .collect(),
        }
    }
}

/// The payload of the [`HELLO`](crate::HELLO) request: the host's version.
pub fn hello_request() -> String {
    format!(r#"{{"abi":"{}.{}"}}"#, crate::ABI_VERSION, crate::ABI_MINOR)
}

/// Decode the payload of a `method` request (or its reply).
pub fn decode<T: DeserializeOwned>(method: &str, payload: &str) -> Result<T> {
    serde_json::from_str(payload).map_err(|e| Error::Format {
        context: format!("message of `{method}`"),
        message: e.to_string(),
    })
}

/// Encode a request or a reply.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Format {
        context: "encoding a plugin message".into(),
        message: e.to_string(),
    })
}

/// An error as it crosses the boundary (never fails: an error that cannot be encoded
/// becomes a database error saying so).
pub fn encode_error(e: &Error) -> String {
    serde_json::to_string(e).unwrap_or_else(|err| {
        format!(r#"{{"kind":"database","detail":"unserialisable error: {err}"}}"#)
    })
}

/// An error sent by the other side, when it is one.
pub fn decode_error(text: &str) -> Option<Error> {
    serde_json::from_str(text).ok()
}

/// The error for a method this side does not know.
pub fn unknown_method(method: &str) -> Error {
    Error::Format {
        context: "plugin call".into(),
        message: format!("unknown method `{method}`"),
    }
}

/// Golden tests of the wire shape: every message of the protocol, built from a canonical
/// value, must serialise to exactly the JSON kept in `tests/golden/`. A change here is a
/// change of the plugin contract: add a capability and bump `orc_plugin_abi::ABI_MINOR`
/// for new fields or methods, never change existing ones, then regenerate the files with
/// `ORC_BLESS=1 cargo test -p orc-plugin-abi golden`.
#[cfg(test)]
mod golden {
    use std::{collections::BTreeMap, path::PathBuf};

    use orc_core::{
        AiSettings, Allocation, Checkpoints, DbHealth, JobStatus, LaunchStep, ModuleSpec,
        PlanRequest, Probe, ShardHealth, ShardSpec, StepId, StepStatus,
    };

    use super::*;

    fn step() -> LaunchStep {
        let mut s = LaunchStep::new("db_0", "/usr/bin/redis-server", "/run/db");
        s.args = vec!["/run/db/db_0.conf".into()];
        s.env = BTreeMap::from([("OMP_NUM_THREADS".into(), "2".into())]);
        s.run.nodes = Some(1);
        s.run.tasks = Some(1);
        s.run.tasks_per_node = Some(1);
        s.run.cpus_per_task = Some(4);
        s.run.hosts = vec!["nid0001".into()];
        s.run.extra = BTreeMap::from([
            ("exclusive".into(), None),
            ("mem".into(), Some("4G".into())),
        ]);
        s.run.allocation = Some("4242".into());
        let mut part = LaunchStep::new("db_1", "/usr/bin/redis-server", "/run/db");
        part.run.hosts = vec!["nid0002".into()];
        s.mpmd = vec![part];
        s
    }

    fn batch() -> BatchSettings {
        let mut b = BatchSettings::default();
        b.nodes = Some(3);
        b.tasks_per_node = Some(2);
        b.walltime_secs = Some(3600);
        b.account = Some("proj".into());
        b.queue = Some("debug".into());
        b.extra = BTreeMap::from([("constraint".into(), Some("gpu".into()))]);
        b.queue_timeout_secs = Some(600);
        b
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
        let mut ai = AiSettings::default();
        ai.threads_per_queue = Some(2);
        ai.max_dag_size = Some(64);
        ai.backends = vec!["onnx".into()];
        s.ai = Some(ai);
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
        StepStatus::new(JobStatus::Failed)
            .native_state("FAILED")
            .exit_code(Some(3))
            .detail("exit code 3")
    }

    /// Every message, by file name.
    fn messages() -> Vec<(&'static str, serde_json::Value)> {
        let v = |x: &dyn erased::Ser| x.value();
        let mut spec = ShardSpec::new(0, "db_0", "nid0001", 6379);
        spec.interfaces = vec!["ib0".into()];
        let plan = PlanRequest::new(settings(), vec![spec], "/run/db".into());
        let mut sh = ShardHealth::new(0, "10.0.0.1:6379");
        sh.reachable = true;
        sh.version = Some("7.0.15".into());
        sh.role = Some("master".into());
        sh.keys = Some(12);
        sh.used_memory = Some(1 << 20);
        sh.cluster_state = Some("ok".into());
        sh.slots = Some(8192);
        sh.modules = vec!["ai 10207".into()];
        sh.ai_backends = vec!["ONNX tract /opt/orc/liborc_ai_backend_onnx.so".into()];
        sh.ai_not_loaded = vec!["key=m kind=model error=no backend".into()];
        let mut health = DbHealth::default();
        health.problems = vec!["shard 1 is unreachable".into()];
        health.shards = vec![sh];
        vec![
            ("launch.request", v(&step())),
            ("launch.reply", v(&StepId("4242.0".into()))),
            ("status.request", v(&vec![StepId("4242.0".into())])),
            ("status.reply", v(&vec![status()])),
            ("cancel.request", v(&StepId("4242.0".into()))),
            ("cancel.reply", v(&status())),
            (
                "allocation.reply",
                v(&Allocation::new(
                    Some("4242".into()),
                    vec!["nid0001".into(), "nid0002".into()],
                )),
            ),
            (
                "allocate.request",
                v(&AllocateRequest {
                    batch: batch(),
                    name: "db".into(),
                }),
            ),
            ("release.request", v(&"4242".to_string())),
            ("cancel_allocation.request", v(&"orc-db".to_string())),
            ("queue_state.request", v(&"orc-db".to_string())),
            (
                "queue_state.reply",
                v(&Some(orc_core::QueueState::new(
                    "4242",
                    "PENDING",
                    Some("Resources".into()),
                ))),
            ),
            (
                "use_state_dir.request",
                v(&std::path::Path::new("/home/me/.local/state/orc")),
            ),
            ("clustered.reply", v(&true)),
            ("companion_ports.reply", v(&vec![10000_u16])),
            (
                "use_credentials.request",
                v(&orc_core::Credentials::new("orc-admin", "0123abcd")
                    .with_client_password("4567ef")),
            ),
            ("plan.request", v(&plan)),
            ("plan.reply", v(&vec![step()])),
            ("probe.request", v(&shard(0))),
            ("probe.reply", v(&Probe::not_ready("LOADING"))),
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
                serde_json::from_str(&encode_error(&Error::launcher(
                    "slurm",
                    "sbatch: error: invalid account",
                )))
                .expect("json"),
            ),
            ("hello.reply", v(&Hello::current())),
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
