//! Colocated databases: one standalone shard with orc-ai on every node an application
//! runs on, beside its ranks, reached over a Unix socket or loopback TCP, with its models
//! loaded before any rank starts, and stopped when the last rank on the node ends.
//!
//! `orc run --colocated` writes a [`ColocatedSpec`] and launches every rank as
//! `orc colocated-rank SPEC -- APP ARGS` through the launcher ([`run_app`]). On each node
//! the ranks meet in a private node directory ([`node_dir`]): the first to take its start
//! lock starts the database there ([`run_rank`]) as an orchestrator of its own (a local
//! launch recorded in that directory), the others wait for it; every rank holds a shared
//! lock while its application runs, and the rank that ends last stops the database.

mod app;
pub mod pinning;
mod rank;

use std::path::{Path, PathBuf};

use orc_core::{Error, OrchestratorSettings, Result, settings::validate_unix_socket};
use serde::{Deserialize, Serialize};

pub use app::{AppRun, Output, run_app};
pub use rank::run_rank;

/// How a rank reaches its node's database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// A Unix socket: `path`, or `<node dir>/redis.sock` when `None`.
    Unix {
        /// The socket path on every node.
        path: Option<String>,
    },
    /// Loopback TCP on `port` (also bound to the settings' other interfaces).
    Tcp {
        /// The port on every node.
        port: u16,
    },
}

/// Everything a rank needs to find or start its node's database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ColocatedSpec {
    /// Names this run's node directories (letters and digits).
    pub run_id: String,
    /// The node database: standalone, one shard, local launcher (port and socket are
    /// set per node from `transport`).
    pub settings: OrchestratorSettings,
    /// Unix socket or TCP.
    pub transport: Transport,
    /// CPUs for the database when `pin` is not given: the first this many of the rank's.
    pub db_cpus: usize,
    /// The database's CPUs, when given.
    pub pin: Option<Vec<usize>>,
    /// More environment for the application (key prefixing).
    pub env: Vec<(String, String)>,
}

impl ColocatedSpec {
    /// A spec for run `run_id` with these settings and transport, 1 database CPU.
    pub fn new(run_id: &str, settings: OrchestratorSettings, transport: Transport) -> Self {
        Self {
            run_id: run_id.into(),
            settings,
            transport,
            db_cpus: 1,
            pin: None,
            env: Vec::new(),
        }
    }

    /// Check what can be checked before any rank starts.
    pub fn validate(&self) -> Result<()> {
        if self.run_id.is_empty()
            || self.run_id.len() > 32
            || !self.run_id.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(Error::config(format!(
                "run id `{}`: 1 to 32 letters and digits",
                self.run_id
            )));
        }
        if self.settings.shards != 1 || self.settings.replicas != 0 {
            return Err(Error::config(
                "a colocated database is one standalone shard per node",
            ));
        }
        if self.settings.batch.is_some() {
            return Err(Error::config(
                "a colocated database runs inside the application's job, not as a batch job of its own",
            ));
        }
        if self.db_cpus == 0 || self.db_cpus > 1024 {
            return Err(Error::config("--db-cpus: 1 to 1024"));
        }
        match &self.transport {
            Transport::Unix { path: Some(p) } => validate_unix_socket(p)?,
            Transport::Unix { path: None } => {
                validate_unix_socket(
                    &socket_in(&node_dir(&self.run_id, "n"))
                        .display()
                        .to_string(),
                )
                .map_err(|e| {
                    Error::config(format!(
                        "{e} (it is made under $TMPDIR: set TMPDIR shorter, or give --unix-socket)"
                    ))
                })?;
            }
            Transport::Tcp { port: 0 } => {
                return Err(Error::config(
                    "--port 0: a colocated database needs a port its ranks know in advance",
                ));
            }
            Transport::Tcp { .. } => {}
        }
        self.settings.validate()
    }

    /// Read a spec written by [`ColocatedSpec::write`], refusing one another user could
    /// have written.
    pub fn read(path: &Path) -> Result<Self> {
        let text = orc_secure::read_private(path, 4 << 20)?;
        serde_json::from_slice(&text).map_err(|e| Error::Format {
            context: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Write it to `path`, readable by its owner only.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Format {
            context: "serialising the run spec".into(),
            message: e.to_string(),
        })?;
        orc_secure::write_private(path, &json)
    }
}

/// A fresh run id: 12 random hex digits.
pub fn new_run_id() -> String {
    orc_secure::random_secret()[..12].to_string()
}

/// Where this user's colocated databases keep their node directories on a node:
/// `$TMPDIR/orc-<uid>/colo` (node-local storage; `/tmp` without `TMPDIR`).
pub fn node_root() -> PathBuf {
    let tmp = std::env::var_os("TMPDIR")
        .filter(|t| !t.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    tmp.join(format!("orc-{}", orc_secure::euid())).join("colo")
}

/// The directory of run `run_id` on node `host` (the host is part of the name so that
/// nodes sharing a `/tmp`, as test beds do, keep theirs apart).
pub fn node_dir(run_id: &str, host: &str) -> PathBuf {
    node_root().join(format!("{run_id}.{host}"))
}

/// The default socket in a node directory.
pub fn socket_in(dir: &Path) -> PathBuf {
    dir.join("redis.sock")
}
