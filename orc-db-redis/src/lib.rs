//! Redis deployment styles for [orc](orc_core): a **standalone** server and a **Redis
//! Cluster** of any number of shards (1 and 2 included, which SmartSim refuses).
//!
//! Each shard gets its own generated `redis.conf` in the orchestrator's directory (so
//! that `CONFIG REWRITE` keeps runtime changes for restarts) and runs `redis-server` in
//! the foreground under the launcher. A cluster is formed without `redis-cli`: slots are
//! assigned evenly, config epochs made distinct, every node meets the first one, and the
//! cluster counts as ready only when every node reports `cluster_state:ok` with all 16384
//! slots and every node known.
//!
//! The crate registers [`STANDALONE`] and [`CLUSTER`] with the plugin host; the
//! `orc-plugin-db-redis` shim exports them as a dynamic plugin.
//!
//! ```
//! use orc_core::{DbDeployment, OrchestratorSettings, PlanRequest, ShardSpec};
//! use orc_db_redis::RedisDeployment;
//!
//! let cluster = RedisDeployment::cluster();
//! let mut settings = OrchestratorSettings::with_shards(1);
//! settings.server_exe = Some("/bin/true".into()); // any existing file, for planning only
//! let mut shard = ShardSpec::new(0, "db_0", "vm", 7000);
//! shard.bind = vec!["127.0.0.1".into()];
//! let dir = tempfile::tempdir()?;
//! let steps = cluster.plan(&PlanRequest::new(settings, vec![shard], dir.path().into()))?;
//! let conf = std::fs::read_to_string(dir.path().join("db_0.conf"))?;
//! assert!(conf.contains("cluster-enabled yes"));
//! assert_eq!(steps[0].args, [dir.path().join("db_0.conf").display().to_string()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod acl;
pub mod ai;
mod cluster;
mod config;
mod conn;
pub mod shard_exec;

use std::{
    path::PathBuf,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use orc_core::{
    Credentials, DbDeployment, DbHealth, Error, LaunchStep, OrchestratorSettings, PlanRequest,
    Probe, Result, ShardAddress, ShardHealth, Tls,
};
use orc_plugin::{Factory, StaticPlugin};

use crate::conn::{Login, connect, field, parse_info, query};

/// The standalone deployment: exactly one Redis server.
pub const STANDALONE: StaticPlugin = StaticPlugin {
    name: "standalone",
    version: env!("CARGO_PKG_VERSION"),
    description: "one Redis server (SR_DB_TYPE=Standalone)",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Deployment(|| Box::new(RedisDeployment::standalone())),
};
orc_plugin::register_plugin!(STANDALONE);

/// The cluster deployment: a Redis Cluster of 1 or more primaries.
pub const CLUSTER: StaticPlugin = StaticPlugin {
    name: "cluster",
    version: env!("CARGO_PKG_VERSION"),
    description: "Redis Cluster of N >= 1 shards (SR_DB_TYPE=Clustered)",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Deployment(|| Box::new(RedisDeployment::cluster())),
};
orc_plugin::register_plugin!(CLUSTER);

/// How far above a cluster shard's port its cluster bus port is (Redis's fixed offset).
pub const CLUSTER_BUS_OFFSET: u16 = 10000;

/// The environment variable that overrides which `redis-server` is used.
pub const SERVER_VAR: &str = "ORC_REDIS_SERVER";

/// A Redis deployment, standalone or clustered.
#[derive(Debug, Clone)]
pub struct RedisDeployment {
    clustered: bool,
    credentials: Arc<RwLock<Option<Credentials>>>,
    /// How orc connects, made from the credentials once (the TLS authority read then).
    login: Arc<RwLock<Login>>,
}

impl RedisDeployment {
    /// One standalone server.
    pub fn standalone() -> Self {
        Self {
            clustered: false,
            credentials: Arc::default(),
            login: Arc::default(),
        }
    }

    /// A Redis Cluster.
    pub fn cluster() -> Self {
        Self {
            clustered: true,
            credentials: Arc::default(),
            login: Arc::default(),
        }
    }

    fn credentials(&self) -> Option<Credentials> {
        self.credentials
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn login(&self) -> Login {
        self.login
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Find the server executable: the setting, `$ORC_REDIS_SERVER`, then `redis-server` on `PATH`.
fn server_exe(settings: &OrchestratorSettings) -> Result<PathBuf> {
    let explicit = settings
        .server_exe
        .clone()
        .or_else(|| std::env::var_os(SERVER_VAR).map(PathBuf::from));
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::ExecutableNotFound {
                name: p.display().to_string(),
                searched: String::new(),
                hint: "check the --redis-server path (or $ORC_REDIS_SERVER)".into(),
            })
        };
    }
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::ExecutableNotFound {
            name: "redis-server".into(),
            searched: format!(" on PATH ({path})"),
            hint:
                "install Redis (Debian: `apt-get install redis-server`) or pass --redis-server PATH"
                    .into(),
        })
}

fn is_connection_closed(e: &redis::RedisError) -> bool {
    e.is_connection_dropped() || e.is_io_error() || e.is_unrecoverable_error()
}

impl DbDeployment for RedisDeployment {
    fn name(&self) -> &str {
        if self.clustered {
            "cluster"
        } else {
            "standalone"
        }
    }

    fn clustered(&self) -> bool {
        self.clustered
    }

    fn companion_ports(&self) -> Vec<u16> {
        if self.clustered {
            vec![CLUSTER_BUS_OFFSET]
        } else {
            Vec::new()
        }
    }

    fn use_credentials(&self, credentials: &Credentials) -> Result<()> {
        acl::check_user_name(&credentials.admin_user)?;
        let mut login = Login::admin(&credentials.admin_user, &credentials.admin_secret);
        if let Some(ca) = &credentials.tls_ca {
            let pem = std::fs::read(ca)
                .map_err(|e| Error::io(format!("reading the TLS authority {}", ca.display()), e))?;
            login = login.with_tls(pem);
        }
        *self.login.write().unwrap_or_else(PoisonError::into_inner) = login;
        *self
            .credentials
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(credentials.clone());
        Ok(())
    }

    fn plan(&self, req: &PlanRequest) -> Result<Vec<LaunchStep>> {
        if !self.clustered && req.shards.len() != 1 {
            return Err(Error::config(format!(
                "the standalone deployment has exactly one shard, not {}",
                req.shards.len()
            )));
        }
        if matches!(req.settings.tls, Some(Tls::Generate)) {
            return Err(Error::config(
                "TLS certificates are generated by the orchestrator before planning; give their files (Tls::Files)",
            ));
        }
        let exe = server_exe(&req.settings)?;
        let mut req = req.clone();
        if let (None, Some(ai)) = (&req.settings.module, &req.settings.ai) {
            req.settings.module = Some(ai::module_spec(ai)?);
        }
        if let (Some(m), Some(c)) = (&mut req.settings.module, self.credentials())
            && ai::is_orc_ai(&m.path)
            && !m.args.iter().any(|a| a.eq_ignore_ascii_case("ADMIN_USER"))
        {
            // Only this user may load backends or change protected settings.
            m.args.extend(["ADMIN_USER".into(), c.admin_user]);
        }
        let req = &req;
        if let Some(m) = &req.settings.module
            && !m.path.is_file()
        {
            return Err(Error::config(format!(
                "the Redis module {} does not exist",
                m.path.display()
            )));
        }
        orc_secure::private_dir(&req.dir)?;
        let users = self.credentials().map(|c| acl::users(&c));
        req.shards
            .iter()
            .map(|shard| {
                let conf = req.dir.join(format!("{}.conf", shard.name));
                let text = config::render(
                    &req.settings,
                    shard,
                    &req.dir,
                    self.clustered,
                    users.as_deref(),
                );
                orc_secure::write_private(&conf, text.as_bytes())?;
                if !req.rejoin {
                    config::remove_unkept_data(&req.settings, &req.dir, shard)?;
                }
                let mut step = if shard.interfaces.is_empty() {
                    LaunchStep::new(&shard.name, &exe, &req.dir).args([conf.display().to_string()])
                } else {
                    // The interfaces exist on the shard's node: `orc-shard-exec` looks them up
                    // there, records the address and runs redis-server bound to it.
                    let exec = shard_exec::ShardExec {
                        interfaces: shard.interfaces.clone(),
                        address_file: shard.address_file(&req.dir),
                        announce: self.clustered,
                        command: vec![exe.display().to_string(), conf.display().to_string()],
                    };
                    LaunchStep::new(&shard.name, shard_exec::program(), &req.dir).args(exec.args())
                };
                step.run = req.settings.run.clone();
                step.run.hosts = vec![shard.host.clone()];
                if req
                    .settings
                    .module
                    .as_ref()
                    .is_some_and(|m| ai::is_orc_ai(&m.path))
                {
                    let current = std::env::var("MALLOC_CONF").ok();
                    if let Some((k, v)) = ai::shard_env(current.as_deref()) {
                        step.env.insert(k.into(), v.into());
                    }
                }
                Ok(step)
            })
            .collect()
    }

    fn probe(&self, shard: &ShardAddress) -> Result<Probe> {
        let mut con = match connect(shard, &self.login()) {
            Ok(c) => c,
            Err(e) => {
                return Ok(Probe::not_ready(e.to_string()));
            }
        };
        match redis::cmd("PING").query::<String>(&mut con) {
            Ok(p) if p == "PONG" => Ok(Probe::ready()),
            Ok(other) => Ok(Probe::not_ready(format!("PING answered {other}"))),
            // LOADING (a snapshot is being read) and the like: not ready yet.
            Err(e) => Ok(Probe::not_ready(e.to_string())),
        }
    }

    fn form(
        &self,
        shards: &[ShardAddress],
        settings: &OrchestratorSettings,
        timeout_secs: f64,
    ) -> Result<()> {
        if self.clustered {
            cluster::form(
                shards,
                shards.len() / (settings.replicas + 1),
                &self.login(),
                Duration::from_secs_f64(timeout_secs),
                settings.redis.cluster_node_timeout_ms,
            )
        } else {
            let health = self.health(shards)?;
            if health.ok {
                Ok(())
            } else {
                Err(Error::Database(health.problems.join("; ")))
            }
        }
    }

    fn health(&self, shards: &[ShardAddress]) -> Result<DbHealth> {
        let mut out = DbHealth::default();
        out.ok = true;
        let mut slots_total = 0;
        let login = self.login();
        for shard in shards {
            let h = shard_health(shard, &login, self.clustered);
            if !h.reachable {
                out.ok = false;
                out.problems
                    .push(format!("shard {} ({shard}) is unreachable", shard.index));
            }
            if self.clustered && h.reachable && h.cluster_state.as_deref() != Some("ok") {
                out.ok = false;
                out.problems.push(format!(
                    "shard {} ({shard}) reports cluster_state:{}",
                    shard.index,
                    h.cluster_state.as_deref().unwrap_or("unknown")
                ));
            }
            slots_total += h.slots.unwrap_or(0);
            out.shards.push(h);
        }
        if self.clustered && slots_total != cluster::SLOTS {
            out.ok = false;
            out.problems.push(format!(
                "{slots_total} of {} hash slots are served by shards that answer{}",
                cluster::SLOTS,
                if out.shards.iter().any(|h| h.replica_of.is_some()) {
                    " (a replica takes over a lost shard's slots after the cluster node timeout)"
                } else {
                    ""
                }
            ));
        } else if self.clustered && out.shards.iter().any(|h| !h.reachable) {
            out.problems.push(
                "every hash slot is still served (replicas took over): clients work, with fewer copies of the data".into(),
            );
        }
        Ok(out)
    }

    fn shutdown(&self, shard: &ShardAddress, save: bool) -> Result<()> {
        let mut con = connect(shard, &self.login())?;
        let r: redis::RedisResult<()> = redis::cmd("SHUTDOWN")
            .arg(if save { "SAVE" } else { "NOSAVE" })
            .query(&mut con);
        match r {
            Ok(()) => Ok(()),
            Err(e) if is_connection_closed(&e) => Ok(()), // the server went away, as asked
            Err(e) => Err(Error::Database(format!(
                "SHUTDOWN on {shard} was refused: {e}"
            ))),
        }
    }

    fn config_set(&self, shard: &ShardAddress, key: &str, value: &str) -> Result<()> {
        let mut con = connect(shard, &self.login())?;
        query::<()>(
            &mut con,
            shard,
            redis::cmd("CONFIG").arg("SET").arg(key).arg(value),
            &format!("CONFIG SET {key} {value}"),
        )?;
        query::<()>(
            &mut con,
            shard,
            redis::cmd("CONFIG").arg("REWRITE"),
            "CONFIG REWRITE",
        )?;
        // Redis rewrites the file with its own umask; it holds secrets, keep it private.
        let info: String = query(&mut con, shard, redis::cmd("INFO").arg("server"), "INFO")?;
        if let Some(file) = field(&parse_info(&info), "config_file").filter(|f| !f.is_empty()) {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600));
        }
        Ok(())
    }

    fn config_get(&self, shard: &ShardAddress, key: &str) -> Result<Vec<(String, String)>> {
        let mut con = connect(shard, &self.login())?;
        let flat: Vec<String> = query(
            &mut con,
            shard,
            redis::cmd("CONFIG").arg("GET").arg(key),
            &format!("CONFIG GET {key}"),
        )?;
        Ok(flat
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect())
    }
}

fn shard_health(shard: &ShardAddress, login: &Login, clustered: bool) -> ShardHealth {
    let mut h = ShardHealth::new(shard.index, shard.to_string());
    let mut con = match connect(shard, login) {
        Ok(c) => c,
        Err(e) => {
            h.error = Some(e.to_string());
            return h;
        }
    };
    let info: String = match redis::cmd("INFO").query(&mut con) {
        Ok(i) => i,
        Err(e) => {
            h.error = Some(e.to_string());
            return h;
        }
    };
    h.reachable = true;
    let info = parse_info(&info);
    h.version = field(&info, "redis_version").map(str::to_owned);
    h.role = field(&info, "role").map(str::to_owned);
    if h.role.as_deref() == Some("slave")
        && let (Some(host), Some(port)) = (field(&info, "master_host"), field(&info, "master_port"))
    {
        h.replica_of = Some(format!("{host}:{port}"));
    }
    h.used_memory = field(&info, "used_memory").and_then(|v| v.parse().ok());
    h.keys = Some(
        info.iter()
            .filter(|(k, _)| k.starts_with("db"))
            .filter_map(|(_, v)| v.split(',').find_map(|kv| kv.strip_prefix("keys=")))
            .filter_map(|n| n.parse::<u64>().ok())
            .sum(),
    );
    if let Ok(modules) = redis::cmd("MODULE")
        .arg("LIST")
        .query::<Vec<redis::Value>>(&mut con)
    {
        h.modules = modules.iter().filter_map(module_name).collect();
    }
    if h.modules.iter().any(|m| m.starts_with("ai "))
        && let Ok(b) = redis::cmd("AI.CONFIG")
            .arg("GET")
            .arg("BACKENDS")
            .query::<Vec<String>>(&mut con)
    {
        h.ai_backends = b;
    }
    if h.modules.iter().any(|m| m.starts_with("ai "))
        && let Ok(section) = redis::cmd("INFO")
            .arg("ai_objects")
            .query::<String>(&mut con)
    {
        h.ai_not_loaded = parse_info(&section)
            .into_iter()
            .filter(|(k, _)| k.starts_with("ai_not_loaded_"))
            .map(|(_, v)| v)
            .collect();
    }
    if clustered {
        if let Ok(v) = cluster::view(shard, login) {
            h.cluster_state = Some(v.state);
        }
        h.slots = cluster::own_slots(shard, login).ok();
    }
    h
}

/// `name ver` from one `MODULE LIST` entry (a flat list or a map, depending on RESP).
fn module_name(v: &redis::Value) -> Option<String> {
    let pairs: Vec<(String, String)> = match v {
        redis::Value::Array(items) => items
            .chunks(2)
            .filter_map(|c| match c {
                [k, val] => Some((value_text(k)?, value_text(val)?)),
                _ => None,
            })
            .collect(),
        redis::Value::Map(m) => m
            .iter()
            .filter_map(|(k, val)| Some((value_text(k)?, value_text(val)?)))
            .collect(),
        _ => return None,
    };
    let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone());
    Some(format!(
        "{} {}",
        get("name")?,
        get("ver").unwrap_or_default()
    ))
}

fn value_text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}
