//! `orc-shard-exec`: the start of a shard whose network interfaces exist on its own node.
//!
//! When shards are told to bind to named interfaces (`--interface ib0`) under a workload
//! manager, those interfaces are looked up on the node the shard lands on, not where orc
//! plans it. The planned step therefore runs this crate's `orc-shard-exec` program
//! ([`program`]) there with [`ShardExec::args`]; it looks the addresses up, writes the
//! first to the shard's address file for orc to read, and becomes
//! `redis-server --bind <addresses>` ([`ShardExec::exec`]).
//!
//! ```
//! use orc_db_redis::shard_exec::ShardExec;
//! let s = ShardExec {
//!     interfaces: vec!["ib0".into(), "lo".into()],
//!     address_file: "/run/db/db_0.address".into(),
//!     announce: true,
//!     command: vec!["redis-server".into(), "/run/db/db_0.conf".into()],
//! };
//! let args = s.args();
//! assert_eq!(args[..3], ["--interfaces", "ib0,lo", "--address-file"]);
//! assert_eq!(ShardExec::parse(&args)?, s);
//! # Ok::<(), orc_core::Error>(())
//! ```

use std::{
    net::IpAddr,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Command,
};

use orc_core::{Error, Result};

/// The program that runs a [`ShardExec`].
pub const PROGRAM: &str = "orc-shard-exec";

/// Where [`PROGRAM`] is for shards on other nodes: `$ORC_SHARD_EXEC`, else next to the
/// `orc` program that runs (`orc_core::step::orc_exe`), else from `PATH`.
pub fn program() -> PathBuf {
    if let Some(p) = std::env::var_os("ORC_SHARD_EXEC").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let orc = orc_core::step::orc_exe();
    match orc.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if dir.join(PROGRAM).is_file() => dir.join(PROGRAM),
        _ => PROGRAM.into(),
    }
}

/// What `orc-shard-exec` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardExec {
    /// The interfaces to bind; the first one's address is advertised.
    pub interfaces: Vec<String>,
    /// Where to write the advertised address.
    pub address_file: PathBuf,
    /// Also announce that address to cluster peers (`--cluster-announce-ip`).
    pub announce: bool,
    /// The server command (`redis-server <conf>`).
    pub command: Vec<String>,
}

impl ShardExec {
    /// The arguments of [`PROGRAM`] that run it (what [`ShardExec::parse`] reads).
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--interfaces".to_string(),
            self.interfaces.join(","),
            "--address-file".into(),
            self.address_file.display().to_string(),
        ];
        if self.announce {
            a.push("--announce".into());
        }
        a.push("--".into());
        a.extend(self.command.iter().cloned());
        a
    }

    /// Read the arguments of [`PROGRAM`].
    pub fn parse(args: &[String]) -> Result<Self> {
        let bad = |m: String| Error::config(format!("{PROGRAM}: {m}"));
        let mut interfaces = Vec::new();
        let mut address_file = None;
        let mut announce = false;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--interfaces" => {
                    let v = it
                        .next()
                        .ok_or_else(|| bad("--interfaces needs a value".into()))?;
                    interfaces.extend(v.split(',').filter(|s| !s.is_empty()).map(String::from));
                }
                "--address-file" => {
                    let v = it
                        .next()
                        .ok_or_else(|| bad("--address-file needs a value".into()))?;
                    address_file = Some(PathBuf::from(v));
                }
                "--announce" => announce = true,
                "--" => break,
                other => return Err(bad(format!("unexpected argument `{other}`"))),
            }
        }
        let command: Vec<String> = it.cloned().collect();
        if interfaces.is_empty() {
            return Err(bad("no --interfaces given".into()));
        }
        if command.is_empty() {
            return Err(bad("no server command after `--`".into()));
        }
        Ok(Self {
            interfaces,
            address_file: address_file.ok_or_else(|| bad("no --address-file given".into()))?,
            announce,
            command,
        })
    }

    /// Look the interfaces up here, write the advertised address, and become the server
    /// bound to them. Returns only when that fails.
    pub fn exec(&self) -> Error {
        match self.prepare() {
            Ok(mut cmd) => {
                let e = cmd.exec();
                Error::io(format!("running {}", self.command[0]), e)
            }
            Err(e) => e,
        }
    }

    fn prepare(&self) -> Result<Command> {
        let ips = orc_net::resolve_on_node(&self.interfaces)?;
        let first = ips
            .first()
            .ok_or_else(|| Error::config("no interface address to bind"))?
            .to_string();
        write_whole(&self.address_file, &format!("{first}\n"))?;
        let (exe, args) = self
            .command
            .split_first()
            .ok_or_else(|| Error::config("no server command"))?;
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .arg("--bind")
            .args(ips.iter().map(IpAddr::to_string));
        if self.announce {
            cmd.args(["--cluster-announce-ip", &first]);
        }
        Ok(cmd)
    }
}

/// Write `text` to `path` whole: a temporary file renamed into place.
fn write_whole(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_clear_errors() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = ShardExec::parse(&s(&["--address-file", "/x", "--", "redis-server"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no --interfaces"), "{e}");
        let e = ShardExec::parse(&s(&["--interfaces", "lo", "--address-file", "/x"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no server command"), "{e}");
        let e = ShardExec::parse(&s(&["--bogus"])).unwrap_err().to_string();
        assert!(e.contains("unexpected argument `--bogus`"), "{e}");
    }

    #[test]
    fn an_unknown_interface_fails_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let s = ShardExec {
            interfaces: vec!["nosuchnic0".into()],
            address_file: dir.path().join("a"),
            announce: false,
            command: vec!["/bin/true".into()],
        };
        let e = s.exec().to_string();
        assert!(e.contains("`nosuchnic0` does not exist"), "{e}");
        assert!(!dir.path().join("a").exists());
    }
}
