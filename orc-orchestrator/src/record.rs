//! The reconnect file: what any later process needs to find, watch and stop a database.
//!
//! It is plain JSON at `<state dir>/<db_identifier>/orchestrator.json`, written atomically.

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use orc_core::{Error, OrchestratorSettings, Result, ShardAddress, StepId};

/// The reconnect-file format version this crate writes.
pub const RECORD_FORMAT: u32 = 1;
/// The longest reconnect file read (a record of 10,000 shards is about 5 MB).
pub const MAX_RECORD_BYTES: u64 = 64 << 20;
/// The reconnect file's name inside an orchestrator directory.
pub const RECORD_FILE: &str = "orchestrator.json";

/// One launched shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// Shard index.
    pub index: usize,
    /// Step name.
    pub name: String,
    /// Host it runs on.
    pub host: String,
    /// Advertised address.
    pub address: ShardAddress,
    /// The launcher's id for its step.
    pub step: StepId,
    /// Its standard output file.
    pub stdout: PathBuf,
    /// Its standard error file.
    pub stderr: PathBuf,
    /// Where the shard writes the address it advertises when its interfaces are looked up
    /// on its node ([`orc_core::ShardSpec::address_file`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_file: Option<PathBuf>,
}

/// Everything recorded about a running orchestrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrchestratorRecord {
    /// [`RECORD_FORMAT`] at the time of writing.
    pub format: u32,
    /// The orc-core version that wrote it.
    pub orc_version: String,
    /// The settings it was started with, including runtime changes since.
    pub settings: OrchestratorSettings,
    /// Launcher name.
    pub launcher: String,
    /// Deployment style.
    pub deployment: String,
    /// Whether clients must use cluster routing.
    pub clustered: bool,
    /// The data directory (configuration, output and snapshot files of the shards).
    pub dir: PathBuf,
    /// The shards.
    pub shards: Vec<ShardRecord>,
    /// The batch job holding all shards, when launched as one.
    pub batch_job: Option<StepId>,
    /// Seconds since the Unix epoch when it became ready.
    pub started_at: u64,
    /// The pid of the process that launched it.
    pub launched_by_pid: u32,
    /// The host that process ran on (empty in records of older orc versions). Shards that
    /// are local processes there can be watched and stopped only from there.
    #[serde(default)]
    pub launched_on: String,
    /// False while shards are still starting (the file is written before waiting, so an
    /// interrupted start can still be cleaned up).
    #[serde(default)]
    pub ready: bool,
}

impl OrchestratorRecord {
    /// The host this record's shards run on, when they are processes of another host than
    /// this one (`this_host`): their launcher can neither see nor stop them from here.
    /// Scheduler steps and batch jobs are visible from any node, so this is `None` for them.
    pub fn other_host(&self, this_host: &str) -> Option<&str> {
        let local_process = |id: &StepId| {
            id.0.split_once('@').is_some_and(|(pid, start)| {
                !pid.is_empty()
                    && pid.bytes().all(|b| b.is_ascii_digit())
                    && start.bytes().all(|b| b.is_ascii_digit())
            })
        };
        let bound = self.batch_job.is_none() && self.shards.iter().any(|s| local_process(&s.step));
        (bound && !self.launched_on.is_empty() && self.launched_on != this_host)
            .then_some(self.launched_on.as_str())
    }

    /// The shard addresses, in shard order.
    pub fn addresses(&self) -> Vec<ShardAddress> {
        self.shards.iter().map(|s| s.address.clone()).collect()
    }

    /// Write to `path` atomically and durably (a private temporary file beside it, synced,
    /// then renamed), readable by its owner only, in a private directory.
    pub fn save(&self, path: &Path) -> Result<()> {
        let parent = path.parent().unwrap_or(Path::new("."));
        orc_secure::private_dir(parent)?;
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Format {
            context: "serialising the reconnect file".into(),
            message: e.to_string(),
        })?;
        orc_secure::write_private(path, &json)
    }

    /// Read a reconnect file (at most [`MAX_RECORD_BYTES`]).
    pub fn load(path: &Path) -> Result<Self> {
        let mut bytes = Vec::new();
        fs::File::open(path)
            .and_then(|f| {
                use std::io::Read;
                f.take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes)
            })
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            return Err(Error::Format {
                context: format!("reconnect file {}", path.display()),
                message: format!("longer than {MAX_RECORD_BYTES} bytes"),
            });
        }
        let rec: Self = serde_json::from_slice(&bytes).map_err(|e| Error::Format {
            context: format!("reconnect file {}", path.display()),
            message: e.to_string(),
        })?;
        if rec.format > RECORD_FORMAT {
            return Err(Error::Format {
                context: format!("reconnect file {}", path.display()),
                message: format!(
                    "format {} was written by a newer orc (this one reads up to {RECORD_FORMAT})",
                    rec.format
                ),
            });
        }
        Ok(rec)
    }
}

/// The directory of orchestrator `db_identifier` under `state_dir` (its default data
/// directory, and always the home of its reconnect file).
pub fn orchestrator_dir(state_dir: &Path, db_identifier: &str) -> PathBuf {
    state_dir.join(db_identifier)
}

/// The reconnect file of orchestrator `db_identifier` under `state_dir`.
pub fn record_path(state_dir: &Path, db_identifier: &str) -> PathBuf {
    orchestrator_dir(state_dir, db_identifier).join(RECORD_FILE)
}

/// Every reconnect file under `state_dir`, sorted by identifier.
pub fn list_records(state_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(state_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(RECORD_FILE))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: &str, batch: Option<&str>, on: &str) -> OrchestratorRecord {
        OrchestratorRecord {
            format: RECORD_FORMAT,
            orc_version: "0".into(),
            settings: OrchestratorSettings::default(),
            launcher: "x".into(),
            deployment: "standalone".into(),
            clustered: false,
            dir: PathBuf::from("/d"),
            shards: vec![ShardRecord {
                index: 0,
                name: "s_0".into(),
                host: "h".into(),
                address: ShardAddress {
                    index: 0,
                    host: "127.0.0.1".into(),
                    port: 1,
                },
                step: StepId(step.into()),
                stdout: PathBuf::from("/d/o"),
                stderr: PathBuf::from("/d/e"),
                address_file: None,
            }],
            batch_job: batch.map(|b| StepId(b.into())),
            started_at: 0,
            launched_by_pid: 1,
            ready: true,
            launched_on: on.into(),
        }
    }

    #[test]
    fn only_local_processes_of_another_host_are_out_of_sight() {
        assert_eq!(record("42@7", None, "a").other_host("b"), Some("a"));
        assert_eq!(record("42@7", None, "a").other_host("a"), None);
        // Older records do not say where they ran.
        assert_eq!(record("42@7", None, "").other_host("b"), None);
        // Scheduler steps, agent steps and batch jobs are visible from any node.
        assert_eq!(record("1234.5", None, "a").other_host("b"), None);
        assert_eq!(record("agent:9:42@7", None, "a").other_host("b"), None);
        assert_eq!(record("42@7", Some("9"), "a").other_host("b"), None);
    }
}
