//! A bare `redis-server` with a module, for tests that need full control of its command
//! line and data directory (restarts with other module arguments, AOF, DUMP payloads).
//! It is killed when dropped, so a failing test leaves nothing running.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A running `redis-server` on a free loopback port.
pub struct Shard {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// Its data directory.
    pub dir: PathBuf,
}

impl Shard {
    /// Start `redis-server` in `dir` loading `module` with `args`, plus `config` directives.
    /// A port taken between the check and the server's bind (a client's ephemeral port,
    /// say) is retried on another.
    pub fn start(dir: &Path, module: &Path, args: &[&str], config: &[(&str, &str)]) -> Shard {
        for _ in 0..5 {
            let mut s = Self::try_start(dir, module, args, config);
            if s.alive() {
                return s;
            }
            if !s.log().contains("Address already in use") {
                panic!("redis-server did not start:\n{}", s.log());
            }
        }
        panic!("no free port for redis-server after 5 tries");
    }

    fn try_start(dir: &Path, module: &Path, args: &[&str], config: &[(&str, &str)]) -> Shard {
        let port = crate::free_port_range(1);
        let _ = std::fs::remove_file(dir.join("redis.log"));
        let mut c = Command::new("redis-server");
        c.arg("--port")
            .arg(port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--save")
            .arg("")
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .arg("--loadmodule")
            .arg(module)
            .args(args);
        for (k, v) in config {
            c.arg(format!("--{k}")).arg(v);
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        let mut s = Shard {
            child,
            addr: format!("127.0.0.1:{port}"),
            dir: dir.to_path_buf(),
        };
        let up = crate::wait_for(Duration::from_secs(20), || {
            !s.alive() || crate::redis_cmd::<String>(&s.addr, &["PING"]).is_ok()
        });
        assert!(up, "redis-server on {} did not start", s.addr);
        s
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// `SHUTDOWN` (saving as configured) and wait for the process to end.
    pub fn shutdown(mut self, save: bool) {
        let _ = crate::redis_cmd::<String>(
            &self.addr,
            &["SHUTDOWN", if save { "SAVE" } else { "NOSAVE" }],
        );
        let _ = crate::wait_for(Duration::from_secs(20), || !self.alive());
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Redis's CRC-64 (Jones polynomial, reflected), as DUMP payloads carry it.
pub fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut crc = 0u64;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// A DUMP payload with `body` in place of the original's value (version and checksum
/// recomputed), so RESTORE reaches the module's loader whatever `body` holds.
pub fn redump(original: &[u8], body: &[u8]) -> Vec<u8> {
    let version = &original[original.len() - 10..original.len() - 8];
    let mut out = body.to_vec();
    out.extend_from_slice(version);
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The value part of a DUMP payload (without version and checksum).
pub fn dump_body(payload: &[u8]) -> &[u8] {
    &payload[..payload.len() - 10]
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc64_matches_redis() {
        assert_eq!(super::crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }
}
