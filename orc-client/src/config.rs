//! Client configuration from the SmartRedis environment or from code.

use std::time::Duration;

use crate::error::{Error, Result};

/// How to reach the database and how patient to be, as SmartRedis reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Addresses (`host:port`, or `unix:///path` for a standalone server).
    pub addresses: Vec<String>,
    /// A Redis Cluster (`SR_DB_TYPE=Clustered`) or a single server.
    pub clustered: bool,
    /// Give up connecting after this long (`SR_CONN_TIMEOUT`, seconds, default 100).
    pub connect_timeout: Duration,
    /// Wait between connection attempts (`SR_CONN_INTERVAL`, ms, default 1000).
    pub connect_interval: Duration,
    /// Give up retrying a command after this long (`SR_CMD_TIMEOUT`, seconds, default 100).
    pub command_timeout: Duration,
    /// Wait between command retries (`SR_CMD_INTERVAL`, ms, default 1000).
    pub command_interval: Duration,
    /// Socket read/write timeout (`SR_SOCKET_TIMEOUT`, ms): how long one reply may take.
    /// Unset, the command timeout bounds it; model, script and DAG runs may always take
    /// the model timeout (see [`Config::io_timeout`]).
    pub socket_timeout: Option<Duration>,
    /// `TIMEOUT` sent with `AI.MODELEXECUTE` (`SR_MODEL_TIMEOUT`, ms, default 60 000 000).
    pub model_timeout_ms: u64,
    /// Prefix for keys this client writes (`SSKEYOUT`).
    pub key_out: Option<String>,
    /// Prefixes this client reads from (`SSKEYIN`, comma-separated); the first is the default.
    pub keys_in: Vec<String>,
    /// Password (`SR_PASSWORD`), for deployments with `requirepass`.
    pub password: Option<String>,
    /// User (`SR_USERNAME`), for ACL deployments.
    pub username: Option<String>,
    /// Connect with TLS (`SR_TLS=1`; needs the `tls` feature).
    pub tls: bool,
    /// A PEM file of CA certificates to trust instead of the system store (`SR_TLS_CA_FILE`).
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// The most memory one reply may take, in bytes (`SR_MAX_REPLY_SIZE`, default 2 GiB):
    /// its payload plus a few dozen bytes per value in it. A larger reply is refused and
    /// its connection closed, so a broken or hostile server cannot exhaust the client's
    /// memory. A tensor or model blob is one value: raise it for blobs over 2 GiB.
    pub max_reply_size: u64,
    /// After every write, wait until this many replicas of its shard have it (`WAIT`;
    /// `SR_WAIT_REPLICAS`, default 0: Redis's asynchronous replication, where a write
    /// acknowledged just before its shard's node fails can be lost when a replica takes
    /// over). A write fewer replicas confirm within [`Config::wait_timeout`] fails with
    /// [`Error::NotReplicated`] (it did run).
    pub wait_replicas: u32,
    /// How long a write waits for its replicas (`SR_WAIT_TIMEOUT`, ms, default 1000).
    pub wait_timeout: Duration,
    /// How long to poll for a reply before sleeping on the socket (`SR_SPIN_WAIT_US`, µs,
    /// default [`DEFAULT_SPIN_WAIT_US`]; 0: sleep at once). A reply that arrives while the
    /// client polls needs no wake-up of a sleeping thread, which costs the server and the
    /// client several µs each (tens on a VM); the poll yields the CPU to any other
    /// runnable thread between looks, as MPI libraries do while they wait.
    pub spin_wait: Duration,
}

/// The default [`Config::max_reply_size`]: 2 GiB (Redis's own limit on one value is 512 MB
/// unless `proto-max-bulk-len` is raised).
pub const DEFAULT_MAX_REPLY_SIZE: u64 = 2 << 30;

/// The default [`Config::spin_wait`], in µs: about a loopback or fast-network round trip.
pub const DEFAULT_SPIN_WAIT_US: u64 = 50;

/// The longest [`Config::spin_wait`] accepted from the environment, in µs.
pub const MAX_SPIN_WAIT_US: u64 = 10_000;

impl Default for Config {
    fn default() -> Self {
        Config {
            addresses: Vec::new(),
            clustered: true,
            connect_timeout: Duration::from_secs(100),
            connect_interval: Duration::from_millis(1000),
            command_timeout: Duration::from_secs(100),
            command_interval: Duration::from_millis(1000),
            socket_timeout: None,
            model_timeout_ms: 60_000_000,
            key_out: None,
            keys_in: Vec::new(),
            password: None,
            username: None,
            tls: false,
            tls_ca_file: None,
            max_reply_size: DEFAULT_MAX_REPLY_SIZE,
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(1000),
            spin_wait: Duration::from_micros(DEFAULT_SPIN_WAIT_US),
        }
    }
}

fn positive(name: &str, v: &str) -> Result<u64> {
    match v.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::Config(format!(
            "{name}={v:?} must be a positive integer"
        ))),
    }
}

/// Check an `SSDB` value the way SmartRedis does, and split it.
pub fn parse_ssdb(ssdb: &str) -> Result<Vec<String>> {
    if ssdb.trim().is_empty() {
        return Err(Error::Config(
            "SSDB is empty: set it to host:port[,host:port...] (orc run sets it)".into(),
        ));
    }
    if let Some(bad) = ssdb
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".:,/_-".contains(*c)))
    {
        return Err(Error::Config(format!(
            "SSDB={ssdb:?} contains {bad:?}; expected host:port[,host:port...] or unix:///path"
        )));
    }
    let mut out = Vec::new();
    for part in ssdb.split(',').filter(|p| !p.is_empty()) {
        let part = part.strip_prefix("tcp://").unwrap_or(part);
        if let Some(path) = part.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(Error::Config(format!(
                    "SSDB entry {part:?} has no socket path"
                )));
            }
        } else {
            let (host, port) = part
                .split_once(':')
                .ok_or_else(|| Error::Config(format!("SSDB entry {part:?} is not host:port")))?;
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(Error::Config(format!(
                    "SSDB entry {part:?} is not host:port"
                )));
            }
        }
        out.push(part.to_string());
    }
    if out.is_empty() {
        return Err(Error::Config(format!("SSDB={ssdb:?} has no address")));
    }
    Ok(out)
}

impl Config {
    /// Read the SmartRedis environment. With a `suffix` (a database identifier), each
    /// variable `X` is read as `X_<suffix>`, as SmartRedis's `ConfigOptions` does;
    /// `SR_MODEL_TIMEOUT` is never suffixed.
    pub fn from_env(suffix: &str) -> Result<Config> {
        Self::from_lookup(suffix, |k| std::env::var(k).ok())
    }

    /// As [`Config::from_env`], with a custom lookup (for tests and embedding).
    pub fn from_lookup(suffix: &str, get: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let name = |k: &str| {
            if suffix.is_empty() {
                k.to_string()
            } else {
                format!("{k}_{suffix}")
            }
        };
        let var = |k: &str| get(&name(k));
        let ssdb = var("SSDB").ok_or_else(|| {
            Error::Config(format!(
                "{} is not set (orc run sets it for running databases)",
                name("SSDB")
            ))
        })?;
        let mut c = Config {
            addresses: parse_ssdb(&ssdb)?,
            ..Config::default()
        };
        c.clustered = var("SR_DB_TYPE").is_none_or(|t| t.eq_ignore_ascii_case("clustered"));
        if let Some(v) = var("SR_CONN_TIMEOUT") {
            c.connect_timeout = Duration::from_secs(positive(&name("SR_CONN_TIMEOUT"), &v)?);
        }
        if let Some(v) = var("SR_CONN_INTERVAL") {
            c.connect_interval = Duration::from_millis(positive(&name("SR_CONN_INTERVAL"), &v)?);
        }
        if let Some(v) = var("SR_CMD_TIMEOUT") {
            c.command_timeout = Duration::from_secs(positive(&name("SR_CMD_TIMEOUT"), &v)?);
        }
        if let Some(v) = var("SR_CMD_INTERVAL") {
            c.command_interval = Duration::from_millis(positive(&name("SR_CMD_INTERVAL"), &v)?);
        }
        if let Some(v) = var("SR_SOCKET_TIMEOUT") {
            c.socket_timeout = Some(Duration::from_millis(positive(
                &name("SR_SOCKET_TIMEOUT"),
                &v,
            )?));
        }
        if let Some(v) = var("SR_MAX_REPLY_SIZE") {
            c.max_reply_size = positive(&name("SR_MAX_REPLY_SIZE"), &v)?;
        }
        if let Some(v) = var("SR_WAIT_REPLICAS") {
            c.wait_replicas = v.trim().parse().map_err(|_| {
                Error::Config(format!(
                    "{}={v:?} must be a number of replicas",
                    name("SR_WAIT_REPLICAS")
                ))
            })?;
        }
        if let Some(v) = var("SR_WAIT_TIMEOUT") {
            c.wait_timeout = Duration::from_millis(positive(&name("SR_WAIT_TIMEOUT"), &v)?);
        }
        if let Some(v) = get("SR_MODEL_TIMEOUT") {
            c.model_timeout_ms = positive("SR_MODEL_TIMEOUT", &v)?;
        }
        c.key_out = var("SSKEYOUT").filter(|s| !s.is_empty());
        c.keys_in = var("SSKEYIN")
            .map(|s| {
                s.split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        c.password = var("SR_PASSWORD").filter(|s| !s.is_empty());
        if c.password.is_none()
            && let Some(file) = var("SR_PASSWORD_FILE").filter(|s| !s.is_empty())
        {
            c.password = Some(read_password_file(&name("SR_PASSWORD_FILE"), &file)?);
        }
        c.username = var("SR_USERNAME").filter(|s| !s.is_empty());
        c.tls = var("SR_TLS")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
        c.tls_ca_file = var("SR_TLS_CA_FILE")
            .filter(|s| !s.is_empty())
            .map(Into::into);
        if let Some(v) = var("SR_SPIN_WAIT_US") {
            let us = v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= MAX_SPIN_WAIT_US)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{}={v:?} must be an integer from 0 to {MAX_SPIN_WAIT_US}",
                        name("SR_SPIN_WAIT_US")
                    ))
                })?;
            c.spin_wait = Duration::from_micros(us);
        }
        Ok(c)
    }

    /// A configuration for `addresses` (clustered when `clustered`), defaults otherwise.
    pub fn new(addresses: &[&str], clustered: bool) -> Result<Config> {
        Ok(Config {
            addresses: parse_ssdb(&addresses.join(","))?,
            clustered,
            ..Config::default()
        })
    }

    /// How long one read or write may block: the socket timeout (else the command
    /// timeout), and for a command that may run as long as a model (`long`) at least the
    /// model timeout. Never unbounded: a hung shard cannot hang the client.
    pub fn io_timeout(&self, long: bool) -> Duration {
        let base = self
            .socket_timeout
            .unwrap_or(self.command_timeout)
            .max(Duration::from_millis(1));
        if long {
            base.max(
                Duration::from_millis(self.model_timeout_ms).saturating_add(Duration::from_secs(5)),
            )
        } else {
            base
        }
    }

    /// Set the connection timeout.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Set the command timeout.
    pub fn command_timeout(mut self, d: Duration) -> Self {
        self.command_timeout = d;
        self
    }

    /// Set the retry intervals for connections and commands.
    pub fn intervals(mut self, connect: Duration, command: Duration) -> Self {
        self.connect_interval = connect;
        self.command_interval = command;
        self
    }

    /// Connect with TLS, trusting the CA certificates in `ca_file` (PEM) when given.
    pub fn tls(mut self, ca_file: Option<&std::path::Path>) -> Self {
        self.tls = true;
        self.tls_ca_file = ca_file.map(Into::into);
        self
    }

    /// Set the most memory one reply may take (bytes; see [`Config::max_reply_size`]).
    pub fn max_reply_size(mut self, bytes: u64) -> Self {
        self.max_reply_size = bytes;
        self
    }

    /// Wait after every write until `replicas` replicas have it, at most `timeout` (see
    /// [`Config::wait_replicas`]).
    pub fn wait_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.wait_replicas = replicas;
        self.wait_timeout = timeout;
        self
    }

    /// Poll for a reply this long before sleeping on the socket (see [`Config::spin_wait`]).
    pub fn spin_wait(mut self, d: Duration) -> Self {
        self.spin_wait = d;
        self
    }

    /// Set the password (and optionally the user).
    pub fn password(mut self, password: &str, username: Option<&str>) -> Self {
        self.password = Some(password.into());
        self.username = username.map(Into::into);
        self
    }
}

/// The password in `file` (named by `var`): its first line, at most 4 KiB.
fn read_password_file(var: &str, file: &str) -> Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(4096).read_to_string(&mut text))
        .map_err(|e| Error::Config(format!("{var}={file}: {e}")))?;
    let pw = text.lines().next().unwrap_or("").to_string();
    if pw.is_empty() {
        return Err(Error::Config(format!(
            "{var}={file}: the file holds no password"
        )));
    }
    Ok(pw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn smartredis_environment() {
        let c = Config::from_lookup(
            "",
            env(&[
                ("SSDB", "127.0.0.1:6379,tcp://10.0.0.2:7000"),
                ("SR_DB_TYPE", "Standalone"),
            ]),
        )
        .unwrap();
        assert_eq!(c.addresses, ["127.0.0.1:6379", "10.0.0.2:7000"]);
        assert!(!c.clustered);
        let c = Config::from_lookup(
            "ml",
            env(&[
                ("SSDB_ml", "h:1"),
                ("SR_CONN_TIMEOUT_ml", "3"),
                ("SR_CONN_TIMEOUT", "99"),
                ("SR_MODEL_TIMEOUT", "5"),
                ("SSKEYIN_ml", "a,b"),
                ("SR_MAX_REPLY_SIZE_ml", "1048576"),
                ("SR_WAIT_REPLICAS_ml", "1"),
                ("SR_WAIT_TIMEOUT_ml", "250"),
                ("SR_SPIN_WAIT_US_ml", "0"),
            ]),
        )
        .unwrap();
        assert_eq!(c.spin_wait, Duration::ZERO);
        assert!(c.clustered, "Clustered is the default");
        assert_eq!(c.max_reply_size, 1 << 20);
        assert_eq!(c.wait_replicas, 1);
        assert_eq!(c.wait_timeout, Duration::from_millis(250));
        assert_eq!(c.connect_timeout, Duration::from_secs(3));
        assert_eq!(c.model_timeout_ms, 5);
        assert_eq!(c.keys_in, ["a", "b"]);
        assert!(Config::from_lookup("", env(&[("SSDB", "unix:///tmp/r.sock")])).is_ok());
    }

    #[test]
    fn malformed_ssdb_and_values_are_refused() {
        for bad in [
            "",
            "localhost",
            "host:",
            ":7000",
            "h:99999",
            "h:1;rm",
            "[::1]:6379",
            "unix://",
        ] {
            assert!(parse_ssdb(bad).is_err(), "{bad:?}");
        }
        let e = Config::from_lookup("", env(&[])).unwrap_err().to_string();
        assert!(e.contains("SSDB is not set"), "{e}");
        let e = Config::from_lookup("", env(&[("SSDB", "h:1"), ("SR_CMD_TIMEOUT", "-1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SR_CMD_TIMEOUT"), "{e}");
        for bad in ["10001", "-1", "fast"] {
            let e = Config::from_lookup("", env(&[("SSDB", "h:1"), ("SR_SPIN_WAIT_US", bad)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("SR_SPIN_WAIT_US"), "{e}");
        }
        let c = Config::from_lookup("", env(&[("SSDB", "h:1")])).unwrap();
        assert_eq!(c.spin_wait, Duration::from_micros(DEFAULT_SPIN_WAIT_US));
    }
}
