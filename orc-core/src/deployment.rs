//! The [`DbDeployment`] trait: how a database style turns settings into shards and forms
//! them into one database.

use std::{fmt, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::{error::Result, settings::OrchestratorSettings, step::LaunchStep};

/// Where one shard will run, decided by the orchestrator before launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShardSpec {
    /// Shard index, from 0.
    pub index: usize,
    /// Step name (`<db_identifier>_<index>`).
    pub name: String,
    /// The host the shard runs on.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Addresses to bind to; the first is advertised to clients and cluster peers.
    pub bind: Vec<String>,
    /// Interfaces to look up on the shard's node as it starts (then `bind` is empty, and
    /// the shard writes the address it advertises to [`ShardSpec::address_file`]).
    #[serde(default)]
    pub interfaces: Vec<String>,
}

impl ShardSpec {
    /// Shard `index`, step `name`, on `host`:`port`, binding nothing yet.
    pub fn new(index: usize, name: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        Self {
            index,
            name: name.into(),
            host: host.into(),
            port,
            bind: Vec::new(),
            interfaces: Vec::new(),
        }
    }

    /// Where a shard whose [`interfaces`](ShardSpec::interfaces) are looked up on its node
    /// writes the address it advertises, in the orchestrator's directory `dir`.
    pub fn address_file(&self, dir: &std::path::Path) -> PathBuf {
        dir.join(format!("{}.address", self.name))
    }

    /// The address clients use (the host name until a node-side address is known).
    pub fn address(&self) -> ShardAddress {
        ShardAddress {
            index: self.index,
            host: self
                .bind
                .first()
                .cloned()
                .unwrap_or_else(|| self.host.clone()),
            port: self.port,
        }
    }
}

/// The address of a running shard.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShardAddress {
    /// Shard index.
    pub index: usize,
    /// Advertised IP address or host name.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl fmt::Display for ShardAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// What a deployment needs to plan the shard steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlanRequest {
    /// The orchestrator settings.
    pub settings: OrchestratorSettings,
    /// One entry per shard.
    pub shards: Vec<ShardSpec>,
    /// The orchestrator's directory (configuration, output, data).
    pub dir: PathBuf,
    /// The shards ran before and come back into the running database (`orc db heal`):
    /// their data and cluster state files must be kept, whatever the checkpoint settings.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rejoin: bool,
}

impl PlanRequest {
    /// What a deployment needs to plan `shards` with `settings` in `dir`.
    pub fn new(settings: OrchestratorSettings, shards: Vec<ShardSpec>, dir: PathBuf) -> Self {
        Self {
            settings,
            shards,
            dir,
            rejoin: false,
        }
    }

    /// The same request for shards that come back into the running database.
    pub fn rejoining(mut self) -> Self {
        self.rejoin = true;
        self
    }
}

impl ShardHealth {
    /// Health of shard `index` at `address`, nothing known yet.
    pub fn new(index: usize, address: impl Into<String>) -> Self {
        Self {
            index,
            address: address.into(),
            ..Self::default()
        }
    }
}

impl Probe {
    /// The shard is ready.
    pub fn ready() -> Self {
        Self {
            ready: true,
            detail: None,
        }
    }

    /// The shard is not ready, for this reason.
    pub fn not_ready(detail: impl Into<String>) -> Self {
        Self {
            ready: false,
            detail: Some(detail.into()),
        }
    }
}

/// The answer to one readiness probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Probe {
    /// The shard answers and can take commands.
    pub ready: bool,
    /// Why not, when not.
    pub detail: Option<String>,
}

/// Health of one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ShardHealth {
    /// Shard index.
    pub index: usize,
    /// `host:port`.
    pub address: String,
    /// It answered.
    pub reachable: bool,
    /// Server version.
    pub version: Option<String>,
    /// `master` / `slave`.
    pub role: Option<String>,
    /// For a replica, the `host:port` of the master it follows.
    #[serde(default)]
    pub replica_of: Option<String>,
    /// Keys stored.
    pub keys: Option<u64>,
    /// Memory used, in bytes.
    pub used_memory: Option<u64>,
    /// Cluster state as this shard sees it (`ok`, `fail`), for clustered deployments.
    pub cluster_state: Option<String>,
    /// Hash slots this shard serves, for clustered deployments.
    pub slots: Option<u32>,
    /// Modules loaded (`name version`).
    pub modules: Vec<String>,
    /// ML backends loaded by the orc-ai module (`NAME runtime path`).
    #[serde(default)]
    pub ai_backends: Vec<String>,
    /// Models and scripts orc-ai keeps as stored but could not load (their backend is
    /// missing or refused them), as `key=... kind=... error=...`; the first ten.
    #[serde(default)]
    pub ai_not_loaded: Vec<String>,
    /// The error when unreachable.
    pub error: Option<String>,
}

/// Health of the whole database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DbHealth {
    /// Every shard answers and (for a cluster) all slots are served and the state is ok.
    pub ok: bool,
    /// Why not, when not.
    pub problems: Vec<String>,
    /// Per shard.
    pub shards: Vec<ShardHealth>,
}

/// The users a deployment configures on its shards and authenticates with: orc's admin
/// user, and the password every other client must give (only with
/// [`Auth::Password`](crate::settings::Auth::Password)). Secrets never show in `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Credentials {
    /// The admin user's name.
    pub admin_user: String,
    /// The admin user's secret.
    pub admin_secret: String,
    /// The password of the default user, when clients must authenticate.
    #[serde(default)]
    pub client_password: Option<String>,
    /// The certificate authority to verify the shards with, when they speak TLS.
    #[serde(default)]
    pub tls_ca: Option<std::path::PathBuf>,
}

impl Credentials {
    /// Admin user `admin_user` with `admin_secret`, and clients without a password.
    pub fn new(admin_user: impl Into<String>, admin_secret: impl Into<String>) -> Self {
        Self {
            admin_user: admin_user.into(),
            admin_secret: admin_secret.into(),
            client_password: None,
            tls_ca: None,
        }
    }

    /// The shards speak TLS, verified with the authority in `ca`.
    pub fn with_tls_ca(mut self, ca: impl Into<std::path::PathBuf>) -> Self {
        self.tls_ca = Some(ca.into());
        self
    }

    /// Clients must authenticate with `password`.
    pub fn with_client_password(mut self, password: impl Into<String>) -> Self {
        self.client_password = Some(password.into());
        self
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("admin_user", &self.admin_user)
            .field("admin_secret", &"<redacted>")
            .field(
                "client_password",
                &self.client_password.as_ref().map(|_| "<redacted>"),
            )
            .field("tls_ca", &self.tls_ca)
            .finish()
    }
}

/// A database deployment style (standalone Redis, Redis Cluster, ...).
pub trait DbDeployment: Send + Sync {
    /// The name users select this style by.
    fn name(&self) -> &str;

    /// Whether clients must use cluster routing (`SR_DB_TYPE=Clustered`).
    fn clustered(&self) -> bool;

    /// Further ports each shard listens on, as offsets above its client port (a Redis
    /// Cluster's bus: `+10000`). Placement keeps them free too, and ports are chosen so
    /// that no shard's companion port is another's client port.
    fn companion_ports(&self) -> Vec<u16> {
        Vec::new()
    }

    /// Configure the shards planned from now on with these users, and authenticate every
    /// later call (probe, form, health, shutdown, config) as the admin. Called before
    /// [`plan`](DbDeployment::plan) and after reconnecting. A deployment that cannot
    /// protect its shards says so (the default), and orc then refuses to start it unless
    /// authentication is turned off.
    fn use_credentials(&self, credentials: &Credentials) -> Result<()> {
        let _ = credentials;
        Err(crate::Error::NotImplemented {
            what: format!("authentication in the `{}` deployment", self.name()),
        })
    }

    /// One launch step per shard. Checks that the server executable exists.
    fn plan(&self, request: &PlanRequest) -> Result<Vec<LaunchStep>>;

    /// One quick readiness check of a shard (no waiting).
    fn probe(&self, shard: &ShardAddress) -> Result<Probe>;

    /// Form the database from its ready shards and wait, up to `timeout_secs`, until it is
    /// verified (for a cluster: all slots served, state ok on every shard).
    fn form(
        &self,
        shards: &[ShardAddress],
        settings: &OrchestratorSettings,
        timeout_secs: f64,
    ) -> Result<()>;

    /// Check every shard and the database as a whole.
    fn health(&self, shards: &[ShardAddress]) -> Result<DbHealth>;

    /// Ask one shard to shut down, saving its data first when `save` is true.
    fn shutdown(&self, shard: &ShardAddress, save: bool) -> Result<()>;

    /// Change one configuration value on a running shard and keep it in its config file.
    fn config_set(&self, shard: &ShardAddress, key: &str, value: &str) -> Result<()>;

    /// Read one configuration value (glob patterns allowed) from a running shard.
    fn config_get(&self, shard: &ShardAddress, key: &str) -> Result<Vec<(String, String)>>;
}
