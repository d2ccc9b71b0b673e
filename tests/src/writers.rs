//! Applications that write and read through a failure: each writes `prefix.i` for
//! i = 0, 1, ... and reads it back, and says what it saw.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use orc_client::{Client, Config, Error, MemoryLayout};

/// What one writing client saw.
#[derive(Default)]
pub struct Writes {
    /// Keys whose write was acknowledged (and, with `WAIT`, confirmed by a replica).
    pub acked: Vec<String>,
    /// Keys written, but not confirmed by a replica within the wait timeout.
    pub unreplicated: Vec<String>,
    /// When each acknowledgement came.
    pub times: Vec<Instant>,
    /// Any other error (there must be none).
    pub errors: Vec<String>,
}

/// A client of the cluster at `addrs` that rides out a failover: patient (30 s per
/// command), and quick to give up on a shard that stopped answering (0.5 s per read).
pub fn client_config(addrs: &[String]) -> Config {
    let a: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let mut cfg = Config::new(&a, true)
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .command_timeout(Duration::from_secs(30))
        .intervals(Duration::from_millis(100), Duration::from_millis(100));
    // A shard that stops answering costs a retry, not the whole command timeout.
    cfg.socket_timeout = Some(Duration::from_millis(500));
    cfg
}

/// Write (and read back) `prefix.i` for i = 0, 1, ... until `stop`, counting each
/// acknowledged write in `acks`.
pub fn writer(
    cfg: Config,
    prefix: &'static str,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) -> Writes {
    let waits = cfg.wait_replicas > 0;
    let mut c = Client::new(cfg).unwrap();
    let mut w = Writes::default();
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("{prefix}.{i}");
        // Whether a replica confirmed the write: then it must never be lost.
        let confirmed = match c.put_tensor_slice(&key, &[i as f32], &[1], MemoryLayout::RowMajor) {
            Ok(()) => {
                w.acked.push(key.clone());
                w.times.push(Instant::now());
                acks.fetch_add(1, Ordering::Relaxed);
                waits
            }
            Err(Error::NotReplicated { .. }) => {
                w.unreplicated.push(key.clone());
                false
            }
            Err(e) => {
                w.errors.push(format!("{key}: {e}"));
                false
            }
        };
        match c.get_tensor(&key) {
            Ok(t) if t.to_vec::<f32>(MemoryLayout::RowMajor).unwrap() == [i as f32] => {}
            Ok(_) => w.errors.push(format!("{key}: read back another value")),
            // An unconfirmed write acknowledged by a master that died before its replica
            // had it is lost when the replica takes over (counted at the end).
            Err(Error::NotFound { .. }) if !confirmed => {}
            Err(e) => w.errors.push(format!("{key}: reading back: {e}")),
        }
        i += 1;
    }
    w
}

/// Two applications writing through a failure: one with Redis's asynchronous replication
/// (keys `async.i`), one that waits for a replica after each write (`wait.i`, `WAIT 1`
/// within 0.5 s).
pub struct Pair {
    stop: Arc<AtomicBool>,
    acks: [Arc<AtomicUsize>; 2],
    plain: std::thread::JoinHandle<Writes>,
    waiting: std::thread::JoinHandle<Writes>,
}

impl Pair {
    /// Start both against the cluster at `addrs`.
    pub fn start(addrs: &[String]) -> Pair {
        let stop = Arc::new(AtomicBool::new(false));
        let acks: [Arc<AtomicUsize>; 2] = [Arc::default(), Arc::default()];
        let plain = {
            let (cfg, stop, acks) = (client_config(addrs), stop.clone(), acks[0].clone());
            std::thread::spawn(move || writer(cfg, "async", stop, acks))
        };
        let waiting = {
            let cfg = client_config(addrs).wait_replicas(1, Duration::from_millis(500));
            let (stop, acks) = (stop.clone(), acks[1].clone());
            std::thread::spawn(move || writer(cfg, "wait", stop, acks))
        };
        Pair {
            stop,
            acks,
            plain,
            waiting,
        }
    }

    /// Wait (at most `timeout`) until each has had at least `n` more writes acknowledged;
    /// false if one has not.
    pub fn progress(&self, n: usize, timeout: Duration) -> bool {
        let start: Vec<usize> = self
            .acks
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .acks
                .iter()
                .zip(&start)
                .all(|(a, s)| a.load(Ordering::Relaxed) >= s + n)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Stop both: what the asynchronous one and the waiting one saw.
    pub fn finish(self) -> (Writes, Writes) {
        self.stop.store(true, Ordering::Relaxed);
        (self.plain.join().unwrap(), self.waiting.join().unwrap())
    }
}

/// The keys of `keys` (tensors) the cluster at `addrs` does not have.
pub fn missing(addrs: &[String], keys: &[String]) -> Vec<String> {
    let mut c = Client::new(client_config(addrs)).unwrap();
    keys.iter()
        .filter(|k| !c.tensor_exists(k).unwrap())
        .cloned()
        .collect()
}

/// Check what two writers saw through a failover that ended at `after`: neither had an
/// error, both had writes acknowledged after it, the waiting one was told when its writes
/// could not be confirmed, and none of its confirmed writes is lost. Returns a line with
/// the counts (acknowledged and lost writes of each).
pub fn check_pair(addrs: &[String], plain: &Writes, waiting: &Writes, after: Instant) -> String {
    for (name, w) in [("async", plain), ("wait", waiting)] {
        assert!(w.errors.is_empty(), "{name}: {:?}", w.errors);
        let later = w.times.iter().filter(|t| **t > after).count();
        assert!(
            later > 0,
            "{name}: no write acknowledged after the failover"
        );
    }
    // The shard whose replica took over has none left: said, not hidden.
    assert!(
        !waiting.unreplicated.is_empty(),
        "writes to the promoted replica (which has no replica) were reported as replicated"
    );
    let lost_plain = missing(addrs, &plain.acked);
    let lost_waiting = missing(addrs, &waiting.acked);
    let lost_unreplicated = missing(addrs, &waiting.unreplicated);
    assert!(
        lost_waiting.is_empty(),
        "confirmed writes lost: {lost_waiting:?}"
    );
    format!(
        "asynchronous: {} acknowledged, {} lost; with WAIT: {} confirmed, {} lost, {} not confirmed ({} of them lost)",
        plain.acked.len(),
        lost_plain.len(),
        waiting.acked.len(),
        lost_waiting.len(),
        waiting.unreplicated.len(),
        lost_unreplicated.len()
    )
}

/// What the SmartRedis Python writer saw.
#[derive(Debug)]
pub struct SmartRedisWrites {
    /// Keys whose write returned, with when (seconds since the Unix epoch).
    pub acked: Vec<(String, f64)>,
    /// Errors SmartRedis raised (it gives up on a command after its own timeouts).
    pub errors: Vec<String>,
    /// Keys written but not found when read back (lost with a master that died).
    pub lost_reads: Vec<String>,
}

/// The SmartRedis Python client writing and reading through a failure
/// (`tests/python/failover_writer.py`).
pub struct SmartRedisWriter {
    child: std::process::Child,
    stop: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SmartRedisWriter {
    /// Start it against the cluster at `addrs`.
    pub fn start(addrs: &[String]) -> SmartRedisWriter {
        let dir = tempfile::tempdir().unwrap();
        let stop = dir.path().join("stop");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/failover_writer.py");
        let child = std::process::Command::new(crate::smartredis_python())
            .arg(script)
            .arg(&stop)
            .env("SSDB", addrs.join(","))
            .env("SR_DB_TYPE", "Clustered")
            .env("SR_LOG_LEVEL", "QUIET")
            // A command SmartRedis cannot get through gives up after 3 s, not 100.
            .env("SR_CMD_TIMEOUT", "3")
            .env("SR_CMD_INTERVAL", "100")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        SmartRedisWriter {
            child,
            stop,
            _dir: dir,
        }
    }

    /// Stop it: what it saw.
    pub fn finish(self) -> SmartRedisWrites {
        std::fs::write(&self.stop, b"").unwrap();
        let out = self.child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
            panic!(
                "the SmartRedis writer said no result ({e}): {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let strings = |k: &str| -> Vec<String> {
            v[k].as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        SmartRedisWrites {
            acked: v["acked"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_f64().unwrap()))
                .collect(),
            errors: strings("errors"),
            lost_reads: strings("lost_reads"),
        }
    }
}

impl SmartRedisWrites {
    /// Writes that returned after `after`.
    pub fn acked_after(&self, after: std::time::SystemTime) -> usize {
        let t = after
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        self.acked.iter().filter(|(_, at)| *at > t).count()
    }
}

/// A new SmartRedis client against the cluster at `addrs` reads `keys` (tensors) and
/// writes and reads one of its own; panics with what it said if it cannot.
pub fn smartredis_check(addrs: &[String], keys: &[String]) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/failover_writer.py");
    let out = std::process::Command::new(crate::smartredis_python())
        .arg(script)
        .arg("check")
        .args(keys)
        .env("SSDB", addrs.join(","))
        .env("SR_DB_TYPE", "Clustered")
        .env("SR_LOG_LEVEL", "QUIET")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("check: ok"),
        "a new SmartRedis client after the failover: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
