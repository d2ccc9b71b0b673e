//! Orchestrator settings: shard count, ports, interfaces, Redis configuration, module.

use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    step::{BatchSettings, RunSettings},
};

/// The default database identifier; it gives un-suffixed `SSDB` / `SR_DB_TYPE`.
pub const DEFAULT_DB_IDENTIFIER: &str = "orchestrator";

/// Where orc keeps orchestrator directories, reconnect files and job-agent directories
/// when no state directory is given.
///
/// `$ORC_STATE_DIR`, else `$XDG_STATE_HOME/orc`, else `~/.local/state/orc`, else
/// `/tmp/orc-<uid>`. On clusters the home directory is usually shared, so a database
/// started on one node can be found from another.
pub fn default_state_dir() -> PathBuf {
    let set = |k: &str| std::env::var_os(k).filter(|d| !d.is_empty());
    if let Some(d) = set("ORC_STATE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = set("XDG_STATE_HOME") {
        return PathBuf::from(d).join("orc");
    }
    if let Some(h) = set("HOME") {
        return PathBuf::from(h).join(".local/state/orc");
    }
    // The owner of /proc/self is this process's user.
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
    PathBuf::from(format!("/tmp/orc-{uid}"))
}

/// Everything needed to launch one orchestrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct OrchestratorSettings {
    /// Names this database; several can run side by side with different identifiers.
    pub db_identifier: String,
    /// Number of shards (1 or more): the masters, each serving a share of the hash slots.
    pub shards: usize,
    /// Replicas of each shard (0, the default, as SmartSim runs): each follows its master
    /// on another host where the allocation has one, and takes over when the master's node
    /// is lost (Redis Cluster's failover). Needs the cluster deployment; the database runs
    /// `shards * (1 + replicas)` servers (see [`OrchestratorSettings::servers`]).
    #[serde(default)]
    pub replicas: usize,
    /// First port; shard `i` on the same host uses `port + i`. `0` picks free ports.
    pub port: u16,
    /// Network interfaces to bind to; the first one is advertised to clients. Empty (the
    /// default) means loopback on this machine, and each host's own address under a
    /// workload manager. Named interfaces under a workload manager are looked up on each
    /// shard's node, as the shard starts.
    pub interfaces: Vec<String>,
    /// Hosts to place shards on (launcher-dependent; empty means "what the launcher gives").
    pub hosts: Vec<String>,
    /// Launcher name (`local`, `slurm`, ...).
    pub launcher: String,
    /// Under a workload manager, the most shards one host may run (on consecutive ports);
    /// fewer hosts than `shards / shards_per_host` is an error. 1 by default.
    pub shards_per_host: usize,
    /// Launch every shard as one MPMD step (`srun --multi-prog`, one ERF file, `mpiexec
    /// ... : ...`) instead of a step each: fewer scheduler steps on large allocations.
    /// Launchers that start one program per step refuse it.
    #[serde(default)]
    pub single_step: bool,
    /// Deployment style (`standalone`, `cluster`); `None` picks standalone for one shard
    /// and cluster for more.
    pub deployment: Option<String>,
    /// Redis server configuration.
    pub redis: RedisConfig,
    /// A Redis module to load into every shard, with its arguments (taken as it is; see
    /// [`OrchestratorSettings::ai`] for orc-ai).
    pub module: Option<ModuleSpec>,
    /// Load the orc-ai module with these settings into every shard: the deployment finds
    /// the module file and turns the settings into its arguments. Ignored when
    /// [`OrchestratorSettings::module`] is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<AiSettings>,
    /// The server executable; `None` looks up `redis-server` on `PATH`.
    pub server_exe: Option<PathBuf>,
    /// Directory for configuration, output and data files; `None` uses the state directory.
    pub dir: Option<PathBuf>,
    /// How long to wait for the database to be ready, in seconds.
    pub startup_timeout_secs: f64,
    /// Run settings applied to every shard step.
    pub run: RunSettings,
    /// Launch all shards as one batch job with these settings.
    pub batch: Option<BatchSettings>,
    /// Who may do what on the shards (see [`Auth`]).
    #[serde(default)]
    pub auth: Auth,
    /// TLS on the shards' client, replication and cluster-bus connections (`None`: plain
    /// TCP, as SmartSim runs).
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Models, scripts and functions loaded into every shard before the database is
    /// reported ready (in a cluster, a copy per shard as SmartRedis lays them out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preload: Vec<crate::objects::DbObject>,
}

/// TLS for a database's connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Tls {
    /// orc makes a certificate authority and a certificate for the shards' hosts in the
    /// database's directory (what [`Tls::Files`] names once it has).
    Generate,
    /// Certificate, key and the authority that signed them, given by the user (or
    /// generated by orc).
    Files(TlsFiles),
}

/// The PEM files of a TLS setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    /// The shards' certificate (valid for every host a shard runs on), also presented to
    /// peers on replication and cluster-bus links.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The certificate authority clients and peers verify it with.
    pub ca: PathBuf,
}

/// How a database guards its shards on a shared machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Auth {
    /// The default: orc connects as an admin user with a generated secret; applications
    /// connect without a password as the default user, which may use data, list and AI
    /// commands but cannot stop, reconfigure or load code into a shard.
    #[default]
    Restricted,
    /// As [`Auth::Restricted`], and every client must also authenticate with a generated
    /// client password (`SR_PASSWORD` / `SR_PASSWORD_FILE`). The SmartRedis clients cannot.
    Password,
    /// No users and no passwords: anyone who can reach a port may do anything
    /// (SmartSim's behaviour).
    Open,
}

impl Auth {
    /// Every mode, by the name users select it with.
    pub const ALL: [(&'static str, Auth); 3] = [
        ("restricted", Auth::Restricted),
        ("password", Auth::Password),
        ("none", Auth::Open),
    ];

    /// The mode called `name` (`restricted`, `password`, `none`).
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                Error::config(format!(
                    "unknown auth mode `{name}`; use restricted (the default), password or none"
                ))
            })
    }

    /// The name users select this mode with.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, a)| *a == self)
            .map_or("restricted", |(n, _)| n)
    }
}

impl Default for OrchestratorSettings {
    fn default() -> Self {
        Self {
            db_identifier: DEFAULT_DB_IDENTIFIER.into(),
            shards: 1,
            replicas: 0,
            port: 6379,
            interfaces: Vec::new(),
            hosts: Vec::new(),
            launcher: "local".into(),
            shards_per_host: 1,
            single_step: false,
            deployment: None,
            redis: RedisConfig::default(),
            module: None,
            ai: None,
            server_exe: None,
            dir: None,
            startup_timeout_secs: 60.0,
            run: RunSettings::default(),
            batch: None,
            auth: Auth::default(),
            tls: None,
            preload: Vec::new(),
        }
    }
}

impl OrchestratorSettings {
    /// The Unix socket the shards also listen on (`unixsocket` in the Redis settings),
    /// when one was given: clients of a standalone database are then sent there.
    pub fn unix_socket(&self) -> Option<&str> {
        self.redis.extra.get("unixsocket").map(String::as_str)
    }

    /// Settings for `shards` shards with every other value at its default.
    pub fn with_shards(shards: usize) -> Self {
        Self {
            shards,
            ..Self::default()
        }
    }

    /// The deployment style that will be used.
    pub fn deployment_name(&self) -> &str {
        match &self.deployment {
            Some(d) => d,
            None if self.shards == 1 && self.replicas == 0 => "standalone",
            None => "cluster",
        }
    }

    /// How many servers the database runs: every shard and its replicas.
    pub fn servers(&self) -> usize {
        self.shards.saturating_mul(self.replicas.saturating_add(1))
    }

    /// Check everything that can be checked without touching the system.
    pub fn validate(&self) -> Result<()> {
        validate_identifier(&self.db_identifier)?;
        if self.shards == 0 {
            return Err(Error::config("the shard count must be at least 1"));
        }
        if self.shards_per_host == 0 {
            return Err(Error::config("shards per host must be at least 1"));
        }
        if self.replicas > 16 {
            return Err(Error::config(format!(
                "{} replicas of each shard: at most 16",
                self.replicas
            )));
        }
        let servers = self.servers();
        if self.port != 0 && usize::from(self.port) + servers - 1 > usize::from(u16::MAX) {
            return Err(Error::config(format!(
                "ports {}..{} do not fit below 65536",
                self.port,
                usize::from(self.port) + servers - 1
            )));
        }
        if self.deployment_name() == "standalone" && self.shards != 1 {
            return Err(Error::config(format!(
                "the standalone deployment has exactly one shard, not {}; use --deployment cluster",
                self.shards
            )));
        }
        if self.deployment_name() == "standalone" && self.replicas > 0 {
            return Err(Error::config(
                "replicas take over through Redis Cluster's failover: use --deployment cluster with --replicas",
            ));
        }
        if !self.startup_timeout_secs.is_finite() || self.startup_timeout_secs <= 0.0 {
            return Err(Error::config("the startup timeout must be positive"));
        }
        let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let mut names = std::collections::BTreeSet::new();
        for o in &self.preload {
            o.clone().validate(&here)?;
            if !names.insert(o.name()) {
                return Err(Error::config(format!(
                    "two objects to load are named `{}`",
                    o.name()
                )));
            }
        }
        if let Some(sock) = self.unix_socket() {
            validate_unix_socket(sock)?;
            if self.servers() > 1 {
                return Err(Error::config(format!(
                    "a Unix socket ({sock}) serves one server: a database of {} servers is reached over TCP",
                    self.servers()
                )));
            }
        }
        if self.tls.is_some() && self.auth == Auth::Open {
            return Err(Error::config(
                "TLS guards a protected database: use --auth restricted (the default) or password with --tls",
            ));
        }
        self.redis.validate()
    }

    /// Environment-variable suffix for this database: empty for the default identifier,
    /// `_<db_identifier>` otherwise (SmartSim's convention).
    pub fn env_suffix(&self) -> String {
        env_suffix(&self.db_identifier)
    }
}

/// The `SSDB` suffix for a database identifier.
pub fn env_suffix(db_identifier: &str) -> String {
    if db_identifier == DEFAULT_DB_IDENTIFIER {
        String::new()
    } else {
        format!("_{db_identifier}")
    }
}

/// Database identifiers become file and variable names: letters, digits, `_` and `-`.
pub fn validate_identifier(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::config(format!(
            "database identifier `{id}` must be 1 to 64 letters, digits, `_` or `-`"
        )));
    }
    Ok(())
}

/// The longest Unix socket path (`sun_path` holds 108 bytes with its final zero).
pub const MAX_SOCKET_PATH: usize = 107;

/// Check a Unix socket path: absolute, short enough for `sun_path`, and made of characters
/// a `unix://` address carries (SmartSim's rule: letters, digits and `.:,_-/`).
pub fn validate_unix_socket(path: &str) -> Result<()> {
    if !path.starts_with('/') {
        return Err(Error::config(format!(
            "Unix socket `{path}`: give an absolute path"
        )));
    }
    if path.len() > MAX_SOCKET_PATH {
        return Err(Error::config(format!(
            "Unix socket `{path}` is {} bytes long; a socket path holds at most {MAX_SOCKET_PATH} (sun_path): choose a shorter one",
            path.len()
        )));
    }
    if !path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".:,_-/".contains(c))
    {
        return Err(Error::config(format!(
            "Unix socket `{path}`: use only letters, digits and . : , _ - /"
        )));
    }
    Ok(())
}

/// Periodic snapshots to disk (`save <seconds> <changes>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoints {
    /// Snapshot at most every this many seconds...
    pub every_secs: u64,
    /// ...when at least this many keys changed.
    pub min_changes: u64,
}

/// The Redis configuration orc manages; anything else goes in `extra`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `maxmemory` (`3gb`, `500mb`, bytes).
    pub maxmemory: Option<String>,
    /// `maxmemory-policy`.
    pub maxmemory_policy: Option<String>,
    /// `maxclients`.
    pub maxclients: Option<u32>,
    /// `proto-max-bulk-len` (at least `1mb`).
    pub proto_max_bulk_len: Option<String>,
    /// Snapshots to disk; `None` disables them (`save ""`). With checkpoints on, a stop
    /// saves first and a restart loads the data back.
    pub checkpoints: Option<Checkpoints>,
    /// `cluster-node-timeout` in milliseconds once the cluster is formed.
    pub cluster_node_timeout_ms: u32,
    /// Any other `redis.conf` directive.
    pub extra: BTreeMap<String, String>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            maxmemory: None,
            maxmemory_policy: None,
            maxclients: None,
            proto_max_bulk_len: None,
            checkpoints: None,
            cluster_node_timeout_ms: 5000,
            extra: BTreeMap::new(),
        }
    }
}

impl RedisConfig {
    /// The directives this configuration sets, as `redis.conf` key/value pairs.
    pub fn directives(&self) -> Vec<(String, String)> {
        let mut d = Vec::new();
        if let Some(v) = &self.maxmemory {
            d.push(("maxmemory".into(), v.clone()));
        }
        if let Some(v) = &self.maxmemory_policy {
            d.push(("maxmemory-policy".into(), v.clone()));
        }
        if let Some(v) = self.maxclients {
            d.push(("maxclients".into(), v.to_string()));
        }
        if let Some(v) = &self.proto_max_bulk_len {
            d.push(("proto-max-bulk-len".into(), v.clone()));
        }
        let save = match self.checkpoints {
            Some(c) => format!("{} {}", c.every_secs, c.min_changes),
            None => String::new(),
        };
        d.push(("save".into(), save));
        for (k, v) in &self.extra {
            d.push((k.clone(), v.clone()));
        }
        d
    }

    /// Check every managed value (Redis checks `extra` itself at start).
    pub fn validate(&self) -> Result<()> {
        for (k, v) in self.directives() {
            validate_config_value(&k, &v)?;
        }
        if self.cluster_node_timeout_ms < 100 {
            return Err(Error::config(
                "cluster-node-timeout must be at least 100 ms",
            ));
        }
        Ok(())
    }

    /// Record a runtime change so that a restart keeps it.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<()> {
        validate_config_value(key, value)?;
        let key = key.to_ascii_lowercase();
        match key.as_str() {
            "maxmemory" => self.maxmemory = Some(value.into()),
            "maxmemory-policy" => self.maxmemory_policy = Some(value.into()),
            "maxclients" => {
                self.maxclients = Some(value.parse().map_err(|_| bad(&key, value, "a number"))?)
            }
            "proto-max-bulk-len" => self.proto_max_bulk_len = Some(value.into()),
            "save" => self.checkpoints = parse_save(value)?,
            "cluster-node-timeout" => {
                self.cluster_node_timeout_ms = value
                    .parse()
                    .map_err(|_| bad(&key, value, "milliseconds"))?
            }
            _ => {
                self.extra.insert(key, value.into());
            }
        }
        Ok(())
    }
}

const POLICIES: &[&str] = &[
    "volatile-lru",
    "allkeys-lru",
    "volatile-lfu",
    "allkeys-lfu",
    "volatile-random",
    "allkeys-random",
    "volatile-ttl",
    "noeviction",
];

fn bad(key: &str, value: &str, expected: &str) -> Error {
    Error::config(format!("`{key} {value}`: expected {expected}"))
}

/// Parse a Redis memory size (`100`, `3gb`, `512mb`, `10k`) into bytes.
pub fn parse_memory(value: &str) -> Option<u64> {
    let v = value.trim().to_ascii_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

fn parse_save(value: &str) -> Result<Option<Checkpoints>> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    match parts.as_slice() {
        [] => Ok(None),
        [s, c] => Ok(Some(Checkpoints {
            every_secs: s
                .parse()
                .map_err(|_| bad("save", value, "`<seconds> <changes>`"))?,
            min_changes: c
                .parse()
                .map_err(|_| bad("save", value, "`<seconds> <changes>`"))?,
        })),
        _ => Err(bad(
            "save",
            value,
            "`<seconds> <changes>` or an empty string",
        )),
    }
}

/// Validate a value for a Redis configuration key orc knows about; other keys pass.
pub fn validate_config_value(key: &str, value: &str) -> Result<()> {
    let key = key.to_ascii_lowercase();
    if key.is_empty() || key.chars().any(|c| c.is_whitespace()) {
        return Err(Error::config(format!("`{key}` is not a configuration key")));
    }
    if value.contains('\n') {
        return Err(Error::config(format!(
            "the value for `{key}` contains a newline"
        )));
    }
    match key.as_str() {
        "maxmemory" => {
            parse_memory(value)
                .ok_or_else(|| bad(&key, value, "a size such as 3gb, 500mb or 1048576"))?;
        }
        "proto-max-bulk-len" => {
            let n = parse_memory(value).ok_or_else(|| bad(&key, value, "a size such as 1gb"))?;
            if n < 1024 * 1024 {
                return Err(bad(&key, value, "at least 1mb"));
            }
        }
        "maxmemory-policy" if !POLICIES.contains(&value) => {
            return Err(bad(&key, value, &format!("one of {}", POLICIES.join(", "))));
        }
        "maxclients" => match value.parse::<u32>() {
            Ok(n) if n >= 1 => {}
            _ => return Err(bad(&key, value, "a whole number of at least 1")),
        },
        "save" => {
            parse_save(value)?;
        }
        "port"
        | "bind"
        | "cluster-enabled"
        | "cluster-config-file"
        | "dir"
        | "pidfile"
        | "loadmodule"
        | "daemonize"
        | "protected-mode"
        | "user"
        | "aclfile"
        | "requirepass"
        | "masteruser"
        | "masterauth"
        | "enable-protected-configs"
        | "enable-debug-command"
        | "enable-module-command"
        | "unixsocketperm" => {
            return Err(Error::config(format!(
                "`{key}` is managed by orc and cannot be set directly (use the matching orc option)"
            )));
        }
        k if k.starts_with("tls-") => {
            return Err(Error::config(format!(
                "`{key}` is managed by orc and cannot be set directly (use --tls, or --tls-cert, --tls-key and --tls-ca)"
            )));
        }
        _ => {}
    }
    Ok(())
}

/// Settings of the orc-ai module; `None` and `false` leave the module's defaults (see the
/// module's documentation for each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AiSettings {
    /// Worker threads per device queue (`THREADS_PER_QUEUE`).
    pub threads_per_queue: Option<u64>,
    /// Threads between operators (`INTER_OP_PARALLELISM`).
    pub inter_op_threads: Option<u64>,
    /// Threads inside an operator (`INTRA_OP_PARALLELISM`).
    pub intra_op_threads: Option<u64>,
    /// The largest tensor a request may create, in bytes (`MAX_TENSOR_BYTES`).
    pub max_tensor_bytes: Option<u64>,
    /// The most elements of a VALUES reply (`MAX_VALUES_REPLY`).
    pub max_values_reply: Option<u64>,
    /// The most operations plus LOAD/PERSIST keys in one DAG (`MAX_DAG_SIZE`).
    pub max_dag_size: Option<u64>,
    /// The most device queues (`MAX_DEVICE_QUEUES`).
    pub max_device_queues: Option<u64>,
    /// The smallest model chunk size clients may set (`MODEL_CHUNK_SIZE_MIN`).
    pub min_chunk_size: Option<u64>,
    /// How long any run may take, in ms (`MODEL_EXECUTION_TIMEOUT`).
    pub execution_timeout_ms: Option<u64>,
    /// Let clients load backends from any path (`ALLOW_BACKEND_PATHS yes`).
    pub allow_backend_paths: bool,
    /// Accept TorchScript that reaches outside the server (`TORCH_ALLOW_UNSAFE_OPS yes`).
    pub allow_unsafe_torchscript: bool,
    /// Backends to load at start (`onnx`, `torch`, `tflite`, `tf`).
    pub backends: Vec<String>,
    /// Which runtime runs ONNX models (`ONNX_RUNTIME auto|onnxruntime|tract`).
    pub onnx_runtime: Option<String>,
    /// The ONNX Runtime library (`ONNXRUNTIME_LIB`; the module's default is
    /// `$ORT_DYLIB_PATH`, then `libonnxruntime.so*` in its BACKENDSPATH).
    pub onnxruntime_lib: Option<PathBuf>,
    /// Which runtime runs TF models (`TF_RUNTIME auto|tensorflow|tract`).
    pub tf_runtime: Option<String>,
    /// TensorFlow's C API library (`TENSORFLOW_LIB`; the module's default is
    /// `$ORC_TENSORFLOW_LIB`, then `libtensorflow_cc.so*` / `libtensorflow.so*` in its
    /// BACKENDSPATH).
    pub tensorflow_lib: Option<PathBuf>,
    /// Which runtime runs TFLITE models (`TFLITE_RUNTIME auto|litert|tract`).
    pub tflite_runtime: Option<String>,
    /// LiteRT's library (`LITERT_LIB`; the module's default is `$ORC_LITERT_LIB`, then
    /// `libLiteRt.so` in its BACKENDSPATH).
    pub litert_lib: Option<PathBuf>,
    /// Load the backends present in the background when a shard starts (`BACKENDS_WARMUP`;
    /// on unless set to false).
    pub backend_warmup: bool,
    /// Further module arguments, passed as they are, last.
    pub extra_args: Vec<String>,
    /// The module file; `None` lets the deployment find it (`$ORC_AI_MODULE`, then next
    /// to the running program or in its `../lib/orc/`).
    pub module: Option<PathBuf>,
}

impl Default for AiSettings {
    fn default() -> Self {
        AiSettings {
            threads_per_queue: None,
            inter_op_threads: None,
            intra_op_threads: None,
            max_tensor_bytes: None,
            max_values_reply: None,
            max_dag_size: None,
            max_device_queues: None,
            min_chunk_size: None,
            execution_timeout_ms: None,
            allow_backend_paths: false,
            allow_unsafe_torchscript: false,
            backends: Vec::new(),
            onnx_runtime: None,
            onnxruntime_lib: None,
            tf_runtime: None,
            tensorflow_lib: None,
            tflite_runtime: None,
            litert_lib: None,
            backend_warmup: true,
            extra_args: Vec::new(),
            module: None,
        }
    }
}

impl AiSettings {
    /// The module arguments for these settings.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (k, v) in [
            ("THREADS_PER_QUEUE", self.threads_per_queue),
            ("INTER_OP_PARALLELISM", self.inter_op_threads),
            ("INTRA_OP_PARALLELISM", self.intra_op_threads),
            ("MAX_TENSOR_BYTES", self.max_tensor_bytes),
            ("MAX_VALUES_REPLY", self.max_values_reply),
            ("MAX_DAG_SIZE", self.max_dag_size),
            ("MAX_DEVICE_QUEUES", self.max_device_queues),
            ("MODEL_CHUNK_SIZE_MIN", self.min_chunk_size),
            ("MODEL_EXECUTION_TIMEOUT", self.execution_timeout_ms),
        ] {
            if let Some(v) = v {
                args.extend([k.to_string(), v.to_string()]);
            }
        }
        for (k, on) in [
            ("ALLOW_BACKEND_PATHS", self.allow_backend_paths),
            ("TORCH_ALLOW_UNSAFE_OPS", self.allow_unsafe_torchscript),
        ] {
            if on {
                args.extend([k.to_string(), "yes".to_string()]);
            }
        }
        if let Some(r) = &self.onnx_runtime {
            args.extend(["ONNX_RUNTIME".to_string(), r.clone()]);
        }
        if let Some(l) = &self.onnxruntime_lib {
            args.extend(["ONNXRUNTIME_LIB".to_string(), l.display().to_string()]);
        }
        if let Some(r) = &self.tf_runtime {
            args.extend(["TF_RUNTIME".to_string(), r.clone()]);
        }
        if let Some(l) = &self.tensorflow_lib {
            args.extend(["TENSORFLOW_LIB".to_string(), l.display().to_string()]);
        }
        if let Some(r) = &self.tflite_runtime {
            args.extend(["TFLITE_RUNTIME".to_string(), r.clone()]);
        }
        if let Some(l) = &self.litert_lib {
            args.extend(["LITERT_LIB".to_string(), l.display().to_string()]);
        }
        if !self.backend_warmup {
            args.extend(["BACKENDS_WARMUP".to_string(), "no".to_string()]);
        }
        args.extend(self.backends.iter().map(|b| b.to_ascii_uppercase()));
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// A Redis module loaded into every shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleSpec {
    /// The module's shared library.
    pub path: PathBuf,
    /// Its load-time arguments.
    pub args: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ai_settings_become_module_arguments() {
        let o = AiSettings {
            threads_per_queue: Some(2),
            max_dag_size: Some(7),
            allow_unsafe_torchscript: true,
            backends: vec!["onnx".into()],
            extra_args: vec!["BACKENDSPATH".into(), "/b".into()],
            ..AiSettings::default()
        };
        assert_eq!(
            o.args(),
            [
                "THREADS_PER_QUEUE",
                "2",
                "MAX_DAG_SIZE",
                "7",
                "TORCH_ALLOW_UNSAFE_OPS",
                "yes",
                "ONNX",
                "BACKENDSPATH",
                "/b"
            ]
        );
        assert!(AiSettings::default().args().is_empty());
        let o = AiSettings {
            onnx_runtime: Some("tract".into()),
            onnxruntime_lib: Some("/o/libonnxruntime.so.1.31.1".into()),
            tf_runtime: Some("tensorflow".into()),
            tensorflow_lib: Some("/t/libtensorflow_cc.so.2".into()),
            tflite_runtime: Some("litert".into()),
            litert_lib: Some("/l/libLiteRt.so".into()),
            backend_warmup: false,
            ..AiSettings::default()
        };
        assert_eq!(
            o.args(),
            [
                "ONNX_RUNTIME",
                "tract",
                "ONNXRUNTIME_LIB",
                "/o/libonnxruntime.so.1.31.1",
                "TF_RUNTIME",
                "tensorflow",
                "TENSORFLOW_LIB",
                "/t/libtensorflow_cc.so.2",
                "TFLITE_RUNTIME",
                "litert",
                "LITERT_LIB",
                "/l/libLiteRt.so",
                "BACKENDS_WARMUP",
                "no"
            ]
        );
    }

    #[test]
    fn default_deployment_follows_shard_count() {
        assert_eq!(
            OrchestratorSettings::with_shards(1).deployment_name(),
            "standalone"
        );
        assert_eq!(
            OrchestratorSettings::with_shards(2).deployment_name(),
            "cluster"
        );
        let mut s = OrchestratorSettings::with_shards(2);
        s.deployment = Some("standalone".into());
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("exactly one shard")
        );
        assert!(OrchestratorSettings::with_shards(0).validate().is_err());
        // Two shards are fine (SmartSim refuses them).
        assert!(OrchestratorSettings::with_shards(2).validate().is_ok());
    }

    #[test]
    fn config_values_are_checked_like_smartsim_tests() {
        for (k, v) in [
            ("save", "1 1"),
            ("maxmemory", "3gb"),
            ("maxmemory-policy", "allkeys-lru"),
            ("maxclients", "100"),
            ("proto-max-bulk-len", "2147483648"),
            ("save", ""),
            ("hz", "20"),
        ] {
            validate_config_value(k, v).unwrap_or_else(|e| panic!("{k} {v}: {e}"));
        }
        for (k, v) in [
            ("maxmemory", "-1"),
            ("maxmemory", "2.4"),
            ("maxmemory", "29GG"),
            ("maxmemory", "3.5gb"),
            ("maxclients", "-3"),
            ("maxclients", "36893488147419103232"),
            ("proto-max-bulk-len", "100"),
            ("maxmemory-policy", "invalid-policy"),
            ("save", "1"),
            ("port", "7000"),
            ("bad key", "1"),
        ] {
            assert!(
                validate_config_value(k, v).is_err(),
                "{k} {v} should be refused"
            );
        }
    }

    #[test]
    fn apply_keeps_changes() {
        let mut c = RedisConfig::default();
        c.apply("maxmemory", "1gb").expect("ok");
        c.apply("save", "60 10").expect("ok");
        c.apply("hz", "50").expect("ok");
        let d = c.directives();
        assert!(d.contains(&("maxmemory".into(), "1gb".into())));
        assert!(d.contains(&("save".into(), "60 10".into())));
        assert!(d.contains(&("hz".into(), "50".into())));
        assert_eq!(env_suffix("orchestrator"), "");
        assert_eq!(env_suffix("db2"), "_db2");
        assert!(validate_identifier("a b").is_err());
    }
}
