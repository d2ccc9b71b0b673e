//! The stable binary interface between `orc` and its dynamically loaded plugins.
//!
//! A plugin is a `cdylib` exporting one [`OrcPluginModRef`] root module (through
//! [`abi_stable`]'s `#[export_root_module]`). The host loads each file on its own, lets
//! `abi_stable` check the type layout, then checks [`OrcPluginMod::abi_version`] against
//! [`ABI_VERSION`] before it calls anything else.
//!
//! The interface is deliberately tiny so that it can stay stable for a long time:
//!
//! * [`OrcPluginMod::descriptors`] lists what the file provides (launchers, database
//!   deployment styles) with names and versions;
//! * [`OrcPluginMod::init`] hands the plugin a [`LogSink`] and lets it refuse to start;
//! * [`OrcPluginMod::instantiate`] returns a [`PluginObjectBox`], whose single
//!   [`PluginObject::call`] method carries a JSON request and returns a JSON reply.
//!   The JSON vocabulary ([`protocol`]: `orc-core` types, their shapes pinned by golden
//!   tests) is versioned here.
//!
//! **Versions.** [`ABI_VERSION`] is the major version: a plugin built for another one is
//! refused. [`ABI_MINOR`] grows when messages gain methods or fields. When the host loads
//! a plugin it asks each component, through the [`HELLO`] call, which minor it was built
//! against and which [`capability`] names it understands; a plugin built before 1.1 does
//! not know [`HELLO`] and is taken as minor 0 with [`capabilities_up_to`]`(0)`. (The root
//! module itself never grows: abi_stable refuses a library whose root module has fewer
//! fields than the host's, so new fields there would lock older plugins out.) The host
//! never sends a plugin a method or a field it did not declare: a request that needs one
//! is refused with a message naming the capability and the minor that added it, instead
//! of being silently cut short by an older plugin.
//!
//! Nothing asynchronous, no tokio type and no tracing dispatcher crosses this boundary:
//! plugins get plain synchronous calls and a log sink.
//!
//! Most users never touch this crate: plugin authors use `orc_plugin::export_plugins!`
//! (or `orc-launcher-kit`, which re-exports it), and the host side is `orc-host`.
//!
//! ```
//! use orc_plugin_abi::{ABI_MINOR, ABI_VERSION, PluginKind, capabilities_up_to, capability};
//! assert_eq!(PluginKind::LAUNCHER.name(), "launcher");
//! assert!(ABI_VERSION >= 1);
//! assert!(capabilities_up_to(ABI_MINOR).any(|c| c == capability::MPMD));
//! assert_eq!(capabilities_up_to(0).count(), 0);
//! ```
#![deny(missing_docs)]

pub mod protocol;

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RStr, RString, RVec},
};

/// The major version of the JSON protocol and of the calls in [`OrcPluginMod`].
///
/// The host refuses a plugin whose [`OrcPluginMod::abi_version`] differs from its own.
pub const ABI_VERSION: u32 = 1;

/// The minor version: what this crate's messages hold beyond [`ABI_VERSION`]`.0`. Each
/// minor adds [`capability`] names (see [`CAPABILITIES`]); nothing is ever removed.
pub const ABI_MINOR: u32 = 7;

/// The names of what a plugin may understand beyond the minor-0 protocol. Each is a
/// method, or a field of a message, that an older plugin would not know.
pub mod capability {
    /// Launchers: `allocate` and `release` (a batch job that holds an orchestrator).
    pub const ALLOCATE: &str = "launcher.allocate";
    /// Launchers: steps with MPMD parts (`LaunchStep::mpmd`).
    pub const MPMD: &str = "launcher.mpmd";
    /// Launchers: steps that run in a named allocation (`RunSettings::allocation`).
    pub const RUN_ALLOCATION: &str = "launcher.run_allocation";
    /// Launchers: `BatchSettings::tasks_per_node`.
    pub const BATCH_TASKS_PER_NODE: &str = "launcher.batch_tasks_per_node";
    /// Launchers: `BatchSettings::queue_timeout_secs`.
    pub const BATCH_QUEUE_TIMEOUT: &str = "launcher.batch_queue_timeout";
    /// Deployments: shards whose interfaces are looked up on their node
    /// (`ShardSpec::interfaces`).
    pub const SHARD_INTERFACES: &str = "deployment.shard_interfaces";
    /// Deployments: orc-ai settings the deployment resolves into a module line
    /// (`OrchestratorSettings::ai`).
    pub const AI_SETTINGS: &str = "deployment.ai_settings";
    /// `use_state_dir`: the launcher keeps its files under the orchestrator's state
    /// directory (minor 2). Without it the host does not call it, and the launcher keeps
    /// its files under its default state directory.
    pub const STATE_DIR: &str = "launcher.state_dir";
    /// `companion_ports`: the further ports each shard listens on (minor 2). A plugin
    /// without it is taken to have none.
    pub const COMPANION_PORTS: &str = "deployment.companion_ports";
    /// `use_credentials`: the deployment configures an admin user and restricted clients
    /// on its shards and authenticates as the admin (minor 3). Without it the host answers
    /// that the deployment cannot protect its shards.
    pub const CREDENTIALS: &str = "deployment.credentials";
    /// `plan` with `OrchestratorSettings::tls` set:
    /// the deployment's shards speak TLS with the given files, and it connects to them over
    /// TLS with the authority in the credentials (minor 3). A plugin without it would start
    /// plain shards, so the host refuses to plan with TLS through it.
    pub const TLS: &str = "deployment.tls";
    /// Launchers: `cancel_allocation`, called from another thread while `allocate` waits
    /// for its job to leave the queue (minor 3). Without it a Ctrl-C during the queue
    /// wait takes effect only once `allocate` returns.
    pub const CANCEL_ALLOCATION: &str = "launcher.cancel_allocation";
    /// Deployments: `OrchestratorSettings::replicas` (minor 4): the first
    /// `OrchestratorSettings::shards` servers are masters and the rest their replicas. A
    /// plugin without it would make every server a master, so the host refuses to plan
    /// replicas through it.
    pub const REPLICAS: &str = "deployment.replicas";
    /// Deployments: `PlanRequest::rejoin` (minor 4): shards planned again to come back
    /// into the running database keep their data and cluster files. A plugin without it
    /// could remove them, so the host refuses to plan a rejoin through it.
    pub const REJOIN: &str = "deployment.rejoin";
    /// Launchers: `queue_state`, called from another thread while `allocate` waits, for
    /// the job's state and the scheduler's reason (minor 4). Without it the host shows no
    /// queue state.
    pub const QUEUE_STATE: &str = "launcher.queue_state";
    /// Deployments: `AiSettings::onnx_runtime`, `onnxruntime_lib` and `backend_warmup`
    /// (minor 5). A plugin without it would drop them, so the host refuses to plan them
    /// through it.
    pub const AI_RUNTIME: &str = "deployment.ai_runtime";
    /// Deployments: `AiSettings::tf_runtime` and `tensorflow_lib` (minor 6). A plugin
    /// without it would drop them, so the host refuses to plan them through it.
    pub const TF_RUNTIME: &str = "deployment.tf_runtime";
    /// Deployments: `AiSettings::tflite_runtime` and `litert_lib` (minor 7). A plugin
    /// without it would drop them, so the host refuses to plan them through it.
    pub const TFLITE_RUNTIME: &str = "deployment.tflite_runtime";
}

/// The call a host makes once per component when it loads a plugin (since 1.1): the
/// request is `{"abi": "<major>.<minor>"}` (the host's), the reply
/// `{"abi_minor": <minor>, "capabilities": ["<name>", ...]}` (the plugin's). Plugins built
/// before 1.1 answer it with an error.
pub const HELLO: &str = "hello";

/// One capability: its name, the minor version that added it, and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// The name exchanged at load ([`capability`]).
    pub name: &'static str,
    /// The minor version of [`ABI_VERSION`] that added it.
    pub since_minor: u32,
    /// What an older plugin would not understand, for refusal messages.
    pub about: &'static str,
}

/// Every capability of this minor version, oldest first.
pub const CAPABILITIES: &[Capability] = &[
    Capability {
        name: capability::ALLOCATE,
        since_minor: 1,
        about: "batch jobs that hold an orchestrator (allocate/release)",
    },
    Capability {
        name: capability::MPMD,
        since_minor: 1,
        about: "MPMD steps (several programs launched as one step)",
    },
    Capability {
        name: capability::RUN_ALLOCATION,
        since_minor: 1,
        about: "steps that run inside a named batch job",
    },
    Capability {
        name: capability::BATCH_TASKS_PER_NODE,
        since_minor: 1,
        about: "batch jobs with a number of tasks per node",
    },
    Capability {
        name: capability::BATCH_QUEUE_TIMEOUT,
        since_minor: 1,
        about: "batch jobs with a queue timeout",
    },
    Capability {
        name: capability::SHARD_INTERFACES,
        since_minor: 1,
        about: "shards that look their network interfaces up on their node",
    },
    Capability {
        name: capability::AI_SETTINGS,
        since_minor: 1,
        about: "orc-ai settings to turn into a module line",
    },
    Capability {
        name: capability::STATE_DIR,
        since_minor: 2,
        about: "the orchestrator's state directory for files other nodes must find",
    },
    Capability {
        name: capability::COMPANION_PORTS,
        since_minor: 2,
        about: "further ports each shard listens on",
    },
    Capability {
        name: capability::CREDENTIALS,
        since_minor: 3,
        about: "an admin user with a secret and restricted clients on every shard",
    },
    Capability {
        name: capability::TLS,
        since_minor: 3,
        about: "shards that speak TLS",
    },
    Capability {
        name: capability::CANCEL_ALLOCATION,
        since_minor: 3,
        about: "cancelling a batch job still waiting in the queue",
    },
    Capability {
        name: capability::REPLICAS,
        since_minor: 4,
        about: "replicas of each shard",
    },
    Capability {
        name: capability::REJOIN,
        since_minor: 4,
        about: "servers started again into the running database",
    },
    Capability {
        name: capability::QUEUE_STATE,
        since_minor: 4,
        about: "the state and reason of a batch job waiting in the queue",
    },
    Capability {
        name: capability::AI_RUNTIME,
        since_minor: 5,
        about: "orc-ai's ONNX runtime choice and backend warm-up",
    },
    Capability {
        name: capability::TF_RUNTIME,
        since_minor: 6,
        about: "orc-ai's TF runtime choice (TensorFlow or tract) and TensorFlow library",
    },
    Capability {
        name: capability::TFLITE_RUNTIME,
        since_minor: 7,
        about: "orc-ai's TFLITE runtime choice (LiteRT or tract) and LiteRT library",
    },
];

/// The capabilities a plugin built against `minor` understands.
pub fn capabilities_up_to(minor: u32) -> impl Iterator<Item = &'static str> {
    CAPABILITIES
        .iter()
        .filter(move |c| c.since_minor <= minor)
        .map(|c| c.name)
}

/// The capability called `name`, if this crate knows it.
pub fn capability_info(name: &str) -> Option<&'static Capability> {
    CAPABILITIES.iter().find(|c| c.name == name)
}

/// What kind of component a plugin provides (a `u8` newtype, so new kinds can be added).
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginKind(pub u8);

impl PluginKind {
    /// A workload-manager launcher (`local`, `slurm`, ...).
    pub const LAUNCHER: PluginKind = PluginKind(1);
    /// A database deployment style (`standalone`, `cluster`, ...).
    pub const DEPLOYMENT: PluginKind = PluginKind(2);

    /// A short lowercase name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::LAUNCHER => "launcher",
            Self::DEPLOYMENT => "deployment",
            _ => "unknown",
        }
    }
}

/// One component a plugin file provides.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PluginDescriptor {
    /// Launcher or deployment.
    pub kind: PluginKind,
    /// The name users select it by (`local`, `cluster`, ...).
    pub name: RString,
    /// The component's own version.
    pub version: RString,
    /// One line for `orc plugins`.
    pub description: RString,
}

/// Log levels carried by [`LogSink`] (same order as `tracing::Level`).
pub mod level {
    /// Error.
    pub const ERROR: u8 = 1;
    /// Warning.
    pub const WARN: u8 = 2;
    /// Information.
    pub const INFO: u8 = 3;
    /// Debugging.
    pub const DEBUG: u8 = 4;
    /// Tracing.
    pub const TRACE: u8 = 5;
}

/// Where a plugin sends its log records; the host forwards them to its own subscriber.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct LogSink {
    /// Called once per record with a [`level`], the record's target and its message.
    pub log: extern "C" fn(level: u8, target: RStr<'_>, message: RStr<'_>),
    /// The most verbose [`level`] the host wants to receive.
    pub max_level: u8,
}

/// An instance of a plugin component.
///
/// The request and reply are JSON documents defined by `orc-core`; errors are JSON too.
/// Implementations must not unwind out of `call` (the `orc-core` export macro catches
/// panics and turns them into errors).
#[sabi_trait]
pub trait PluginObject: Send + Sync {
    /// Perform `method` with a JSON `payload`; return the JSON reply or a JSON error.
    fn call(&self, method: RStr<'_>, payload: RStr<'_>) -> RResult<RString, RString>;
}

/// An owned, type-erased [`PluginObject`].
pub type PluginObjectBox = PluginObject_TO<'static, RBox<()>>;

/// The root module every orc plugin exports.
///
/// Fields may only ever be appended after the last prefix field.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = OrcPluginModRef)))]
#[sabi(missing_field(panic))]
pub struct OrcPluginMod {
    /// Must equal the host's [`ABI_VERSION`].
    pub abi_version: u32,
    /// The Cargo package the plugin was built from.
    pub package: RStr<'static>,
    /// That package's version.
    pub package_version: RStr<'static>,
    /// The components this file provides.
    pub descriptors: extern "C" fn() -> RVec<PluginDescriptor>,
    /// Called once after loading; an `RErr` refuses the plugin with that message.
    pub init: extern "C" fn(sink: LogSink) -> RResult<(), RString>,
    /// Create an instance of the component `kind`/`name`.
    #[sabi(last_prefix_field)]
    pub instantiate:
        extern "C" fn(kind: PluginKind, name: RStr<'_>) -> RResult<PluginObjectBox, RString>,
}

impl RootModule for OrcPluginModRef {
    declare_root_module_statics! {OrcPluginModRef}
    const BASE_NAME: &'static str = "orc_plugin";
    const NAME: &'static str = "orc_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
