//! Command-line syntax.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// orc: start, watch and stop Orchestrator databases (Redis shards with orc-ai) for HPC
/// experiments, and run applications against them.
#[derive(Debug, Parser)]
#[command(name = "orc", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Where reconnect files and default data directories live.
    #[arg(long, global = true, env = "ORC_STATE_DIR", value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace); `ORC_LOG` takes a tracing filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Manage orchestrator databases.
    #[command(subcommand)]
    Db(DbCommand),
    /// List the launchers and deployment styles found, where from, and refused plugin files.
    Plugins,
    /// Run a command with SSDB / SR_DB_TYPE set for running orchestrators.
    Run(Box<RunArgs>),
    /// Serve launch, status and cancel requests inside a batch job (run by the job scripts
    /// of launchers whose schedulers cannot start steps in a job from outside it).
    #[command(hide = true)]
    Agent(AgentArgs),
    /// One rank of `orc run --colocated`: start or find the node's database, run the
    /// application beside it, stop the database after the node's last rank.
    #[command(hide = true)]
    ColocatedRank(RankArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The launcher that starts steps inside this job.
    #[arg(long)]
    pub(crate) launcher: String,
    /// The file holding the job's key, which signs every request (`<state dir>/agents/<job id>.key`).
    #[arg(long)]
    pub(crate) key_file: PathBuf,
    /// The directory requests arrive in (`<state dir>/agents/<job id>`).
    pub(crate) dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct DbSelect {
    /// The database identifier.
    #[arg(long = "db", value_name = "ID", default_value = orc_core::settings::DEFAULT_DB_IDENTIFIER)]
    pub(crate) db: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DbCommand {
    /// Launch a database and wait until it is verified.
    Start(Box<StartArgs>),
    /// Show launcher status and database health (exit 0 ready, 4 degraded, 3 not running).
    Status {
        #[command(flatten)]
        select: DbSelect,
        /// Every recorded database.
        #[arg(long, conflicts_with = "db")]
        all: bool,
    },
    /// Print client addresses (comma-separated), or the client environment with --env.
    Address {
        #[command(flatten)]
        select: DbSelect,
        /// Print `SSDB=...` and `SR_DB_TYPE=...` lines for `eval` / `export`.
        #[arg(long)]
        env: bool,
    },
    /// Stop a database: SHUTDOWN every shard (saving first with checkpoints), then cancel
    /// what is left.
    Stop {
        #[command(flatten)]
        select: DbSelect,
        /// Every recorded database.
        #[arg(long, conflicts_with = "db")]
        all: bool,
    },
    /// Stop a database and start it again with its recorded settings (runtime changes
    /// included).
    Restart {
        #[command(flatten)]
        select: DbSelect,
    },
    /// Start again every server that no longer runs, on its node with its data directory:
    /// it rejoins the database (a lost master whose replica took over comes back as that
    /// replica's replica). Exit 0 once the database is whole again.
    Heal {
        #[command(flatten)]
        select: DbSelect,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
        timeout: f64,
    },
    /// Read or change Redis settings of a running database.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Read a setting (glob patterns allowed) from the first shard.
    Get {
        #[command(flatten)]
        select: DbSelect,
        /// The key, e.g. maxmemory.
        key: String,
    },
    /// Change a setting on every shard now and keep it for restarts.
    Set {
        #[command(flatten)]
        select: DbSelect,
        /// The key, e.g. maxmemory.
        key: String,
        /// The value, e.g. 3gb.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
}

/// Models, scripts and functions to load into every shard before anything uses it.
#[derive(Debug, Args, Default)]
pub(crate) struct ObjectArgs {
    /// Load a model (repeatable): NAME=PATH,backend=ONNX|TORCH|TF|TFLITE, then optional
    /// device=CPU|GPU|GPU:n, batch=N, min-batch=N, min-batch-timeout=MS, inputs=A;B,
    /// outputs=A;B, tag=T, devices-per-node=N, first-device=N (comma-separated).
    #[arg(long = "model", value_name = "NAME=PATH,backend=B,...")]
    pub(crate) models: Vec<String>,
    /// Load a TorchScript source file: NAME=PATH, optionally ,device=D (repeatable).
    #[arg(long = "script", value_name = "NAME=PATH[,device=D]")]
    pub(crate) scripts: Vec<String>,
    /// Load one Python function from a file as a script, as SmartRedis's set_function
    /// does: NAME=FILE.py:FUNCTION, optionally ,device=D (repeatable).
    #[arg(long = "function", value_name = "NAME=FILE.py:FUNC[,device=D]")]
    pub(crate) functions: Vec<String>,
    /// Load every object a TOML file lists (`[[model]]`, `[[script]]`, `[[function]]` tables
    /// with the keys above; paths relative to the file).
    #[arg(long = "objects", value_name = "FILE")]
    pub(crate) objects: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    #[command(flatten)]
    pub(crate) select: DbSelect,
    #[command(flatten)]
    pub(crate) objects: ObjectArgs,
    /// Also listen on this Unix socket (standalone databases; readable and writable by
    /// you only): clients on its node then get SSDB=unix://PATH.
    #[arg(long, value_name = "PATH")]
    pub(crate) unix_socket: Option<PathBuf>,
    /// Number of shards (1 is standalone unless --deployment cluster).
    #[arg(long, short = 'n', default_value_t = 1)]
    pub(crate) shards: usize,
    /// Replicas of each shard, on other nodes where the allocation has them: when a
    /// shard's node is lost its replica takes over (Redis Cluster failover; needs 3 shards
    /// or more to elect). The database runs shards * (1 + N) servers.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) replicas: usize,
    /// First port; shard i on one host uses port + i. 0 picks free ports.
    #[arg(long, short, default_value_t = 6379)]
    pub(crate) port: u16,
    /// Network interfaces to bind (comma-separated); the first is advertised. Default:
    /// loopback on this machine, each node's own address under a workload manager; named
    /// interfaces are looked up on each shard's node.
    #[arg(long, short, value_delimiter = ',')]
    pub(crate) interface: Vec<String>,
    /// Launch every shard as one MPMD step (srun --multi-prog, one ERF file, mpiexec or
    /// aprun with `:`) instead of a step each (workload-manager launchers).
    #[arg(long)]
    pub(crate) single_step: bool,
    /// Hosts to place shards on (comma-separated; workload-manager launchers).
    #[arg(long, value_delimiter = ',')]
    pub(crate) hosts: Vec<String>,
    /// Launcher plugin: local, slurm, pbs, lsf, cobalt, one from a site plugin, or auto (the
    /// allocation orc runs in, a site plugin's job included; with --batch, the scheduler
    /// found on PATH; else local).
    #[arg(long, short, default_value = "local")]
    pub(crate) launcher: String,
    /// Under a workload manager, the most servers (shards and replicas) one host may run
    /// (on consecutive ports).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) shards_per_host: usize,
    /// Submit a batch job of its own that holds every shard (workload-manager launchers),
    /// instead of running inside the current allocation.
    #[arg(long)]
    pub(crate) batch: bool,
    /// Batch: number of nodes (default: servers / shards per host).
    #[arg(long, value_name = "N", requires = "batch")]
    pub(crate) nodes: Option<u32>,
    /// Batch: walltime in minutes.
    #[arg(long, value_name = "MINUTES", requires = "batch")]
    pub(crate) walltime: Option<u64>,
    /// Batch: account (project) to charge.
    #[arg(long, requires = "batch")]
    pub(crate) account: Option<String>,
    /// Batch: queue (Slurm partition).
    #[arg(long, requires = "batch")]
    pub(crate) queue: Option<String>,
    /// Batch: another scheduler directive, NAME or NAME=VALUE (repeatable).
    #[arg(long = "batch-arg", value_name = "NAME[=VALUE]", requires = "batch")]
    pub(crate) batch_args: Vec<String>,
    /// Batch: seconds to wait for the job to leave the queue before cancelling it.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 600,
        requires = "batch"
    )]
    pub(crate) queue_timeout: u64,
    /// Deployment style (standalone, cluster); default: standalone for 1 shard, else cluster.
    #[arg(long, short)]
    pub(crate) deployment: Option<String>,
    /// The redis-server executable (default: $ORC_REDIS_SERVER, then PATH).
    #[arg(long, value_name = "PATH")]
    pub(crate) redis_server: Option<PathBuf>,
    /// Data directory (default: STATE_DIR/ID).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// maxmemory, e.g. 3gb.
    #[arg(long)]
    pub(crate) maxmemory: Option<String>,
    /// maxmemory-policy (eviction), e.g. allkeys-lru.
    #[arg(long)]
    pub(crate) eviction_policy: Option<String>,
    /// maxclients.
    #[arg(long)]
    pub(crate) maxclients: Option<u32>,
    /// proto-max-bulk-len (largest value a client may send), e.g. 1gb.
    #[arg(long)]
    pub(crate) max_message_size: Option<String>,
    /// Snapshot to disk every SECONDS when at least CHANGES keys changed ("SECONDS CHANGES");
    /// stop then saves first and a restart loads the data back.
    #[arg(long, value_name = "SECONDS CHANGES")]
    pub(crate) checkpoints: Option<String>,
    /// cluster-node-timeout in milliseconds.
    #[arg(long, value_name = "MS")]
    pub(crate) cluster_node_timeout: Option<u32>,
    /// Any other redis.conf directive, KEY=VALUE (repeatable).
    #[arg(long = "redis-config", value_name = "KEY=VALUE")]
    pub(crate) redis_config: Vec<String>,
    /// A Redis module to load into every shard (default: orc-ai, found next to orc or at
    /// $ORC_AI_MODULE).
    #[arg(long, value_name = "PATH")]
    pub(crate) module: Option<PathBuf>,
    /// Start plain Redis shards, without orc-ai.
    #[arg(long, conflicts_with = "module")]
    pub(crate) no_ai: bool,
    /// Who may do what: `restricted` (default: orc connects as an admin user with a
    /// generated secret; applications, SmartRedis included, connect without a password
    /// but cannot stop, reconfigure or load code into a shard), `password` (every client
    /// must also give the generated client password: SR_PASSWORD_FILE; SmartRedis cannot),
    /// or `none` (open to every user of the machine, as SmartSim runs it).
    #[arg(long, value_name = "MODE", default_value = "restricted")]
    pub(crate) auth: String,
    /// TLS on every client, replication and cluster-bus connection, with a certificate
    /// authority and a certificate for the shards' hosts generated into the database's
    /// directory (clients get SR_TLS and SR_TLS_CA_FILE; SmartRedis cannot use TLS).
    #[arg(long)]
    pub(crate) tls: bool,
    /// TLS with your own certificate (PEM) instead of a generated one; needs --tls-key and
    /// --tls-ca.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (readable by its owner only).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// The certificate authority that signed --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// orc-ai: worker threads per device queue.
    #[arg(long, value_name = "N")]
    pub(crate) threads_per_queue: Option<u32>,
    /// orc-ai: threads between operators.
    #[arg(long, value_name = "N")]
    pub(crate) inter_op_threads: Option<u32>,
    /// orc-ai: threads inside an operator.
    #[arg(long, value_name = "N")]
    pub(crate) intra_op_threads: Option<u32>,
    /// orc-ai: the largest tensor one request may create, in bytes (default 512 MiB).
    #[arg(long, value_name = "BYTES")]
    pub(crate) ai_max_tensor_bytes: Option<u64>,
    /// orc-ai: the most elements an `AI.TENSORGET ... VALUES` reply may hold (default 1 Mi).
    #[arg(long, value_name = "N")]
    pub(crate) ai_max_values_reply: Option<u64>,
    /// orc-ai: the most operations plus LOAD/PERSIST keys in one DAG (default 1024).
    #[arg(long, value_name = "N")]
    pub(crate) ai_max_dag_size: Option<u64>,
    /// orc-ai: the most device queues (each with its worker threads) at once (default 16).
    #[arg(long, value_name = "N")]
    pub(crate) ai_max_device_queues: Option<u64>,
    /// orc-ai: the smallest MODEL_CHUNK_SIZE a client may set, in bytes (default 64 KiB).
    #[arg(long, value_name = "BYTES")]
    pub(crate) ai_min_chunk_size: Option<u64>,
    /// orc-ai: stop any run (model, script, DAG) still going after this many ms and answer
    /// its clients with an error (default 5000; at least 1000).
    #[arg(long, value_name = "MS")]
    pub(crate) ai_execution_timeout: Option<u64>,
    /// orc-ai: let clients change BACKENDSPATH and load backends from any path at run time
    /// (off: only files by name from the directory fixed at start).
    #[arg(long)]
    pub(crate) ai_allow_backend_paths: bool,
    /// orc-ai: accept TorchScript that reads or writes files, uses the network or starts
    /// work outside a request (for sites that trust every client).
    #[arg(long)]
    pub(crate) ai_allow_unsafe_torchscript: bool,
    /// orc-ai: load these ML backends at start (onnx, torch, tflite, tf; comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub(crate) ai_backends: Vec<String>,
    /// orc-ai: which runtime runs ONNX models: ONNX Runtime where its library is found,
    /// else tract (auto), or only one of them.
    #[arg(long, value_name = "RUNTIME", value_parser = ["auto", "onnxruntime", "tract"])]
    pub(crate) onnx_runtime: Option<String>,
    /// orc-ai: the ONNX Runtime library (`libonnxruntime.so*`, e.g. from the onnxruntime
    /// Python package's capi/ directory; default: $ORT_DYLIB_PATH, then BACKENDSPATH).
    #[arg(long, value_name = "FILE")]
    pub(crate) onnxruntime_lib: Option<std::path::PathBuf>,
    /// orc-ai: which runtime runs TF models: TensorFlow where its library is found, else
    /// tract (auto), or only one of them.
    #[arg(long, value_name = "RUNTIME", value_parser = ["auto", "tensorflow", "tract"])]
    pub(crate) tf_runtime: Option<String>,
    /// orc-ai: TensorFlow's C API library (e.g. libtensorflow_cc.so.2 from the tensorflow
    /// Python package's directory; default: $ORC_TENSORFLOW_LIB, then BACKENDSPATH).
    #[arg(long, value_name = "FILE")]
    pub(crate) tensorflow_lib: Option<std::path::PathBuf>,
    /// orc-ai: which runtime runs TFLITE models: LiteRT where its library is found, else
    /// tract (auto), or only one of them.
    #[arg(long, value_name = "RUNTIME", value_parser = ["auto", "litert", "tract"])]
    pub(crate) tflite_runtime: Option<String>,
    /// orc-ai: LiteRT's library (libLiteRt.so from the ai-edge-litert Python package's
    /// ai_edge_litert/ directory; default: $ORC_LITERT_LIB, then BACKENDSPATH).
    #[arg(long, value_name = "FILE")]
    pub(crate) litert_lib: Option<std::path::PathBuf>,
    /// orc-ai: do not load the backends present in the background when a shard starts
    /// (the first request that needs one then loads it).
    #[arg(long)]
    pub(crate) no_backend_warmup: bool,
    /// An argument for the module (repeatable, in order).
    #[arg(long = "module-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub(crate) module_args: Vec<String>,
    /// Seconds to wait for the database to be ready.
    #[arg(long, default_value_t = 60.0)]
    pub(crate) timeout: f64,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Databases to export (repeatable; default: every running one). With --colocated,
    /// the identifier of the colocated databases (its SSDB suffix).
    #[arg(long = "db", value_name = "ID")]
    pub(crate) dbs: Vec<String>,
    /// Key prefixing as SmartSim's ensembles use it: SSKEYOUT=NAME (this application's
    /// keys get the prefix NAME.).
    #[arg(long, value_name = "NAME")]
    pub(crate) key_prefix: Option<String>,
    /// Key prefixing: read keys of these other applications (SSKEYIN=A,B).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub(crate) consume: Vec<String>,
    #[command(flatten)]
    pub(crate) colocated: ColocatedArgs,
    /// The command and its arguments.
    #[arg(
        trailing_var_arg = true,
        required = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub(crate) command: Vec<String>,
}

/// `orc run --colocated`: a database on every node of the application.
#[derive(Debug, Args)]
pub(crate) struct ColocatedArgs {
    /// Start one standalone shard with orc-ai on every node the application's ranks run
    /// on, ready (objects loaded) before any rank starts and stopped when the ranks end;
    /// ranks reach it over a Unix socket (default) or loopback TCP (--port).
    #[arg(long)]
    pub(crate) colocated: bool,
    /// Colocated: the Unix socket on each node (default: one in a private directory under
    /// $TMPDIR).
    #[arg(
        long,
        value_name = "PATH",
        requires = "colocated",
        conflicts_with = "port"
    )]
    pub(crate) unix_socket: Option<String>,
    /// Colocated: serve loopback TCP on this port instead of a Unix socket.
    #[arg(long, short, requires = "colocated")]
    pub(crate) port: Option<u16>,
    /// Colocated TCP: also bind these interfaces (comma-separated); ranks use loopback.
    #[arg(long, short, value_delimiter = ',', requires = "port")]
    pub(crate) interface: Vec<String>,
    /// Colocated: CPUs for the database (the first N of each rank's CPUs); ranks are kept
    /// off them unless something already bound them.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "colocated")]
    pub(crate) db_cpus: usize,
    /// Colocated: the database's CPUs, as a list (0-1,4).
    #[arg(long, value_name = "CPULIST", requires = "colocated")]
    pub(crate) pin: Option<String>,
    /// Colocated: the launcher that starts the ranks (local, slurm, pbs, lsf, cobalt, a
    /// site plugin's, or auto: the allocation orc runs in, else local).
    #[arg(long, short, default_value = "auto", requires = "colocated")]
    pub(crate) launcher: String,
    /// Colocated: number of ranks.
    #[arg(long, short = 'n', value_name = "N", requires = "colocated")]
    pub(crate) ntasks: Option<u32>,
    /// Colocated: number of nodes (workload-manager launchers).
    #[arg(long, short = 'N', value_name = "N", requires = "colocated")]
    pub(crate) nodes: Option<u32>,
    /// Colocated: ranks per node (workload-manager launchers).
    #[arg(long, value_name = "N", requires = "colocated")]
    pub(crate) tasks_per_node: Option<u32>,
    /// Colocated: another argument for the parallel launcher, NAME or NAME=VALUE
    /// (repeatable; e.g. cpu-bind=cores for srun).
    #[arg(long = "run-arg", value_name = "NAME[=VALUE]", requires = "colocated")]
    pub(crate) run_args: Vec<String>,
    #[command(flatten)]
    pub(crate) objects: ObjectArgs,
    /// Colocated: the redis-server executable on the nodes (default: $ORC_REDIS_SERVER,
    /// then PATH).
    #[arg(long, value_name = "PATH", requires = "colocated")]
    pub(crate) redis_server: Option<PathBuf>,
    /// Colocated: who may do what (restricted, password, none; see `orc db start`).
    #[arg(
        long,
        value_name = "MODE",
        default_value = "restricted",
        requires = "colocated"
    )]
    pub(crate) auth: String,
    /// Colocated: orc-ai worker threads per device queue.
    #[arg(long, value_name = "N", requires = "colocated")]
    pub(crate) threads_per_queue: Option<u32>,
    /// Colocated: orc-ai threads between operators.
    #[arg(long, value_name = "N", requires = "colocated")]
    pub(crate) inter_op_threads: Option<u32>,
    /// Colocated: orc-ai threads inside an operator.
    #[arg(long, value_name = "N", requires = "colocated")]
    pub(crate) intra_op_threads: Option<u32>,
    /// Colocated: any other redis.conf directive, KEY=VALUE (repeatable).
    #[arg(
        long = "redis-config",
        value_name = "KEY=VALUE",
        requires = "colocated"
    )]
    pub(crate) redis_config: Vec<String>,
    /// Colocated: seconds each database may take to be ready.
    #[arg(long, default_value_t = 60.0, requires = "colocated")]
    pub(crate) timeout: f64,
}

#[derive(Debug, Args)]
pub(crate) struct RankArgs {
    /// The run's spec file.
    pub(crate) spec: PathBuf,
    /// The application and its arguments.
    #[arg(trailing_var_arg = true, required = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}
