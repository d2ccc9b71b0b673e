//! The one error type of `orc-core`, shared with plugins over the wire.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while launching, watching or stopping an orchestrator.
///
/// Errors are serialisable so that plugins can return them across the plugin boundary
/// unchanged; every message says what happened and, where possible, what to do.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[serde(with = "io_error_serde")]
        source: std::io::Error,
    },
    /// The settings are invalid.
    #[error("invalid setting: {0}")]
    Config(String),
    /// A required executable is not installed.
    #[error("`{name}` was not found{searched}; {hint}")]
    ExecutableNotFound {
        /// The program name.
        name: String,
        /// Where it was looked for (already formatted, may be empty).
        searched: String,
        /// What to do about it.
        hint: String,
    },
    /// A network interface does not exist or has no IPv4 address.
    #[error("network interface `{name}` {problem}; interfaces on this host: {available}")]
    Interface {
        /// The requested name.
        name: String,
        /// "does not exist" or "has no IPv4 address".
        problem: String,
        /// Comma-separated names that do exist.
        available: String,
    },
    /// A port is already taken.
    #[error(
        "port {port} on {host} is already in use{by}; pick another with --port or stop what holds it"
    )]
    PortInUse {
        /// The host address.
        host: String,
        /// The port.
        port: u16,
        /// Who holds it, when known (formatted, may be empty).
        by: String,
    },
    /// No plugin of that kind and name is registered.
    #[error("unknown {kind} `{name}`; available: {available}{hint}")]
    UnknownPlugin {
        /// `launcher` or `deployment`.
        kind: String,
        /// The requested name.
        name: String,
        /// The names that are available.
        available: String,
        /// Extra advice (formatted, may be empty).
        hint: String,
    },
    /// A plugin file could not be loaded.
    #[error("plugin {}: {reason}", path.display())]
    PluginLoad {
        /// The plugin file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// A plugin misbehaved while serving a call (a panic, an unreadable reply).
    #[error("plugin `{plugin}` failed in `{method}`: {message}")]
    Plugin {
        /// The plugin name.
        plugin: String,
        /// The call.
        method: String,
        /// What went wrong.
        message: String,
    },
    /// A launcher could not launch, query or cancel a step.
    #[error("launcher `{launcher}`: {message}")]
    Launcher {
        /// The launcher name.
        launcher: String,
        /// What went wrong.
        message: String,
    },
    /// The feature exists in the interface but is not implemented by this component yet.
    #[error("{what} is not implemented yet")]
    NotImplemented {
        /// What was asked for.
        what: String,
    },
    /// A database shard failed to start or stopped unexpectedly.
    #[error("shard {shard} ({address}) {message}{}", log_suffix(.log_tail, .log_path))]
    Shard {
        /// Shard index.
        shard: usize,
        /// `host:port`.
        address: String,
        /// What happened.
        message: String,
        /// The last lines of its output.
        log_tail: String,
        /// Its output file.
        log_path: Option<PathBuf>,
    },
    /// The database answered with an error or could not be formed.
    #[error("database: {0}")]
    Database(String),
    /// Something did not happen in time.
    #[error("timed out after {seconds:.1} s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        seconds: f64,
    },
    /// No orchestrator with that identifier is recorded.
    #[error("no orchestrator `{db_identifier}` is running (no reconnect file at {}); start one with `orc db start`", path.display())]
    NotFound {
        /// The identifier.
        db_identifier: String,
        /// Where its reconnect file would be.
        path: PathBuf,
    },
    /// An orchestrator with that identifier already runs.
    #[error("orchestrator `{db_identifier}` is already running (reconnect file {}); stop it with `orc db stop --db {db_identifier}` or choose another --db identifier", path.display())]
    AlreadyRunning {
        /// The identifier.
        db_identifier: String,
        /// Its reconnect file.
        path: PathBuf,
    },
    /// The operation was interrupted on request (Ctrl-C, an abort flag); what it had
    /// started was stopped again.
    #[error("interrupted; everything launched so far was stopped")]
    Interrupted,
    /// A file or directory orc keeps private is not (owned by another user, or open to
    /// others); orc refuses to use it.
    #[error("{}: {problem}", path.display())]
    Insecure {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// Another process holds the lock of this database (starting or stopping it).
    #[error(
        "orchestrator `{db_identifier}` is being started or stopped by another orc process (pid {pid}); wait for it, or stop that process"
    )]
    Busy {
        /// The identifier.
        db_identifier: String,
        /// The holder's pid, as written in the lock file (0 when unknown).
        pid: u32,
    },
    /// A reconnect file or a plugin reply could not be read.
    #[error("{context}: {message}")]
    Format {
        /// What was being read.
        context: String,
        /// The parse error.
        message: String,
    },
}

fn log_suffix(tail: &str, path: &Option<PathBuf>) -> String {
    let mut s = String::new();
    if !tail.trim().is_empty() {
        s.push_str("\n--- last output lines ---\n");
        s.push_str(tail.trim_end());
    }
    if let Some(p) = path {
        s.push_str(&format!("\n(full output: {})", p.display()));
    }
    s
}

impl Error {
    /// Wrap an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An invalid-setting error.
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }

    /// A launcher error.
    pub fn launcher(launcher: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Launcher {
            launcher: launcher.into(),
            message: message.into(),
        }
    }

    /// A "not implemented yet" error.
    pub fn not_implemented(what: impl Into<String>) -> Self {
        Error::NotImplemented { what: what.into() }
    }
}

mod io_error_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Wire {
        kind: String,
        message: String,
    }

    pub(super) fn serialize<S: Serializer>(e: &std::io::Error, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            kind: format!("{:?}", e.kind()),
            message: e.to_string(),
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<std::io::Error, D::Error> {
        let w = Wire::deserialize(d)?;
        let kind = match w.kind.as_str() {
            "NotFound" => std::io::ErrorKind::NotFound,
            "PermissionDenied" => std::io::ErrorKind::PermissionDenied,
            "AddrInUse" => std::io::ErrorKind::AddrInUse,
            "ConnectionRefused" => std::io::ErrorKind::ConnectionRefused,
            "TimedOut" => std::io::ErrorKind::TimedOut,
            "AlreadyExists" => std::io::ErrorKind::AlreadyExists,
            _ => std::io::ErrorKind::Other,
        };
        Ok(std::io::Error::new(kind, w.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_through_json() {
        let e = Error::io(
            "reading x",
            std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        );
        let back: Error = serde_json::from_str(&serde_json::to_string(&e).unwrap()).expect("json");
        match back {
            Error::Io { context, source } => {
                assert_eq!(context, "reading x");
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("unexpected {other:?}"),
        }
        let e = Error::PortInUse {
            host: "127.0.0.1".into(),
            port: 7,
            by: String::new(),
        };
        let back: Error = serde_json::from_str(&serde_json::to_string(&e).unwrap()).expect("json");
        assert_eq!(back.to_string(), e.to_string());
        assert!(
            e.to_string()
                .contains("port 7 on 127.0.0.1 is already in use")
        );
    }

    #[test]
    fn shard_errors_show_the_log_tail() {
        let e = Error::Shard {
            shard: 1,
            address: "127.0.0.1:7000".into(),
            message: "exited at start (exit code 1)".into(),
            log_tail: "FATAL CONFIG FILE ERROR".into(),
            log_path: Some("/tmp/x.log".into()),
        };
        let s = e.to_string();
        assert!(s.contains("shard 1 (127.0.0.1:7000) exited at start"));
        assert!(s.contains("FATAL CONFIG FILE ERROR"));
        assert!(s.contains("/tmp/x.log"));
    }
}
