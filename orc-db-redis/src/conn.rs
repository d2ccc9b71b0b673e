//! Short-lived synchronous connections to one shard.

use std::time::Duration;

use orc_core::{Error, Result, ShardAddress};

/// How long a connect may take (loopback and cluster networks answer in microseconds).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Who orc authenticates as on a shard (nobody for an open database, else its admin user),
/// and the authority its TLS certificate is verified with (when it speaks TLS).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Login {
    user: Option<(String, String)>,
    tls_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("tls", &self.tls_ca.is_some())
            .finish()
    }
}

impl Login {
    /// Authenticate as `user` with `secret`.
    pub(crate) fn admin(user: &str, secret: &str) -> Self {
        Self {
            user: Some((user.into(), secret.into())),
            tls_ca: None,
        }
    }

    /// Speak TLS, trusting the authority in the PEM text `ca`.
    pub(crate) fn with_tls(mut self, ca: Vec<u8>) -> Self {
        self.tls_ca = Some(ca);
        self
    }
}

fn client(shard: &ShardAddress, login: &Login) -> Result<redis::Client> {
    let bad = |e: redis::RedisError| Error::Database(format!("bad address {shard}: {e}"));
    match &login.tls_ca {
        None => redis::Client::open(format!("redis://{shard}/")).map_err(bad),
        Some(ca) => {
            // rustls needs one process-wide crypto provider; ring is ours (set is fine).
            let _ = rustls::crypto::ring::default_provider().install_default();
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.clone()),
            };
            redis::Client::build_with_tls(format!("rediss://{shard}/"), certs).map_err(bad)
        }
    }
}

/// Open a connection to `shard`, authenticated as `login`.
pub(crate) fn connect(shard: &ShardAddress, login: &Login) -> Result<redis::Connection> {
    let client = client(shard, login)?;
    let mut con = client
        .get_connection_with_timeout(CONNECT_TIMEOUT)
        .map_err(|e| {
            Error::Database(format!(
                "cannot connect to shard {} at {shard}: {e}",
                shard.index
            ))
        })?;
    con.set_read_timeout(Some(COMMAND_TIMEOUT))
        .map_err(|e| Error::Database(e.to_string()))?;
    con.set_write_timeout(Some(COMMAND_TIMEOUT))
        .map_err(|e| Error::Database(e.to_string()))?;
    if let Some((user, secret)) = &login.user {
        redis::cmd("AUTH")
            .arg(user)
            .arg(secret)
            .query::<()>(&mut con)
            .map_err(|e| {
                Error::Database(format!(
                    "shard {} at {shard} refused orc's admin user `{user}`: {e} (is another database on this port, or was its secret file replaced?)",
                    shard.index
                ))
            })?;
    }
    Ok(con)
}

/// Whether nothing listens at `shard` any more: a connection is refused outright.
pub(crate) fn refuses(shard: &ShardAddress) -> bool {
    use std::net::ToSocketAddrs;
    let Ok(mut addrs) = (shard.host.as_str(), shard.port).to_socket_addrs() else {
        return false;
    };
    addrs.next().is_some_and(|a| {
        std::net::TcpStream::connect_timeout(&a, CONNECT_TIMEOUT)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

/// Run `cmd` and map a server error to a message naming the shard and command.
pub(crate) fn query<T: redis::FromRedisValue>(
    con: &mut redis::Connection,
    shard: &ShardAddress,
    cmd: &redis::Cmd,
    what: &str,
) -> Result<T> {
    cmd.query(con)
        .map_err(|e| Error::Database(format!("{what} on {shard}: {e}")))
}

/// Parse `INFO` / `CLUSTER INFO` text into key/value pairs.
pub(crate) fn parse_info(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// One field of parsed info.
pub(crate) fn field<'a>(info: &'a [(String, String)], key: &str) -> Option<&'a str> {
    info.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_text_parses() {
        let info = parse_info(
            "# Server\r\nredis_version:7.0.15\r\n\r\n# Keyspace\r\ndb0:keys=3,expires=0\r\n",
        );
        assert_eq!(field(&info, "redis_version"), Some("7.0.15"));
        assert_eq!(field(&info, "db0"), Some("keys=3,expires=0"));
        assert_eq!(field(&info, "nope"), None);
    }
}
