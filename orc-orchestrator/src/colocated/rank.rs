//! One rank of a colocated run: find or start the node's database, run the application
//! beside it, and stop the database when the last rank on the node ends.

use std::{
    fs::File,
    os::{fd::AsRawFd, unix::process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use orc_core::{Error, Result, settings::env_suffix};
use orc_host::PluginHost;

use super::{ColocatedSpec, Transport, node_dir, node_root, pinning, socket_in};
use crate::{LaunchOptions, Orchestrator};

/// Marks a node database that is up with its objects loaded.
const READY: &str = "ready";
/// Holds the error of a node database that failed to start.
const FAILED: &str = "failed";

/// An advisory lock on a file, released when dropped.
struct Flock {
    held: File,
}

impl Drop for Flock {
    fn drop(&mut self) {
        crate::lock::unlock(&self.held);
    }
}

impl Flock {
    fn open(path: &Path) -> Result<File> {
        crate::lock::open_lock_file(path)
    }

    fn take(file: File, how: libc::c_int, path: &Path) -> Result<Option<Self>> {
        loop {
            // SAFETY: flock on a descriptor this File owns.
            let rc = unsafe { libc::flock(file.as_raw_fd(), how) };
            if rc == 0 {
                return Ok(Some(Self { held: file }));
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) if how & libc::LOCK_NB != 0 => return Ok(None),
                _ => return Err(Error::io(format!("locking {}", path.display()), e)),
            }
        }
    }

    /// A blocking lock on the file at `path`. The node's last rank removes the directory
    /// (holding both locks): a rank that opened the file before that, or found no
    /// directory, makes it again and locks the file that is there now.
    fn blocking(path: &Path, how: libc::c_int) -> Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        for _ in 0..1000 {
            orc_secure::private_dir(dir)?;
            let file = match Self::open(path) {
                Ok(f) => f,
                Err(_) if !dir.exists() => continue,
                Err(e) => return Err(e),
            };
            let Some(lock) = Self::take(file, how, path)? else {
                continue;
            };
            if lock.is_at(path) {
                return Ok(lock);
            }
        }
        Err(Error::Database(format!(
            "{} kept disappearing while this rank locked it",
            path.display()
        )))
    }

    /// Whether the locked file is still the one at `path`.
    fn is_at(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.held.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }

    fn shared(path: &Path) -> Result<Self> {
        Self::blocking(path, libc::LOCK_SH)
    }

    fn exclusive(path: &Path) -> Result<Self> {
        Self::blocking(path, libc::LOCK_EX)
    }

    fn try_exclusive(path: &Path) -> Result<Option<Self>> {
        Self::take(Self::open(path)?, libc::LOCK_EX | libc::LOCK_NB, path)
    }
}

/// The node's database as this rank sees it.
struct NodeDb {
    dir: PathBuf,
    host: String,
    db: String,
}

impl NodeDb {
    fn owner_file(&self) -> PathBuf {
        node_root().join(format!("{}.{}.owner", self.db, self.host))
    }

    /// Refuse to start when another run's colocated database with this identifier still
    /// runs on this node; else claim the node for this run.
    fn claim(&self, host: &PluginHost) -> Result<()> {
        let owner = self.owner_file();
        if let Ok(other) = std::fs::read_to_string(&owner) {
            let other = PathBuf::from(other.trim());
            if other != self.dir
                && other.starts_with(node_root())
                && let Ok(orc) = Orchestrator::connect(host, &other, &self.db)
                && orc.anything_alive()
            {
                return Err(Error::config(format!(
                    "node {} already runs colocated database `{}` for another job (its files: {}); one colocated database of a name per node: wait for that job, or give this one another --db",
                    self.host,
                    self.db,
                    other.display()
                )));
            }
        }
        orc_secure::write_private(&owner, self.dir.display().to_string().as_bytes())
    }

    fn release(&self) {
        let owner = self.owner_file();
        if std::fs::read_to_string(&owner).is_ok_and(|o| Path::new(o.trim()) == self.dir) {
            let _ = std::fs::remove_file(owner);
        }
    }

    /// Start the node's database (called under the start lock, by one rank).
    fn start(
        &self,
        host: &PluginHost,
        spec: &ColocatedSpec,
        db_cpus: &[usize],
        abort: &Arc<AtomicBool>,
    ) -> Result<()> {
        self.claim(host)?;
        let mut settings = spec.settings.clone();
        settings.launcher = "local".into();
        settings.dir = None;
        match &spec.transport {
            Transport::Unix { path } => {
                let sock = path
                    .clone()
                    .unwrap_or_else(|| socket_in(&self.dir).display().to_string());
                if Path::new(&sock).exists() {
                    if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                        return Err(Error::config(format!(
                            "socket {sock} on node {} is in use by another database; give another --unix-socket",
                            self.host
                        )));
                    }
                    let _ = std::fs::remove_file(&sock);
                }
                settings.redis.extra.insert("unixsocket".into(), sock);
                // orc manages the database over loopback TCP on a free port.
                settings.port = 0;
            }
            Transport::Tcp { port } => settings.port = *port,
        }
        let orc = Orchestrator::launch_with(
            host,
            settings,
            LaunchOptions {
                state_dir: self.dir.clone(),
                progress: &mut |_| {},
                abort: Some(abort.clone()),
            },
        )?;
        if let Some(pid) = orc
            .record()
            .shards
            .first()
            .and_then(|s| step_pid(&s.step.0))
        {
            pinning::pin_process(pid, db_cpus)?;
            tracing::info!(pid, cpus = %pinning::format_cpu_list(db_cpus), "database pinned");
        }
        Ok(())
    }

    /// Stop the node's database (called by the last rank, under the start lock).
    fn stop(&self, host: &PluginHost) {
        match Orchestrator::connect(host, &self.dir, &self.db) {
            Ok(orc) => {
                if let Err(e) = orc.stop() {
                    tracing::warn!("stopping the colocated database on {}: {e}", self.host);
                }
            }
            Err(e) => tracing::debug!("no colocated database to stop on {}: {e}", self.host),
        }
        self.release();
    }
}

/// How many ranks run on this node, when the launcher says: `ORC_RANKS` (orc's local
/// launches, every rank on this machine).
fn expected_ranks() -> Option<u64> {
    std::env::var("ORC_RANKS")
        .ok()?
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

impl NodeDb {
    fn joined_file(&self) -> PathBuf {
        self.dir.join("joined")
    }

    /// Ranks of this run that came to this node so far.
    fn joined(&self) -> u64 {
        std::fs::read_to_string(self.joined_file())
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// One more rank came (called under the start lock).
    fn count_joined(&self) -> Result<()> {
        orc_secure::write_private(
            &self.joined_file(),
            (self.joined() + 1).to_string().as_bytes(),
        )
    }
}

/// The pid of a local launcher's step id (`<pid>@<start>`).
fn step_pid(step: &str) -> Option<u32> {
    step.split('@').next()?.parse().ok()
}

/// Run one rank: make sure the node's database runs (starting it if this rank is the
/// first), then run `command` with `SSDB` pointing at it, pinned off the database's CPUs
/// unless already bound; when it ends, stop the database if no other rank on the node
/// still runs. `abort` (set from a signal handler) is passed on to the application as
/// SIGTERM. Returns the application's exit code (128 + signal when a signal ended it).
pub fn run_rank(
    host: &PluginHost,
    spec: &ColocatedSpec,
    command: &[String],
    abort: &Arc<AtomicBool>,
) -> Result<i32> {
    let (prog, args) = command
        .split_first()
        .ok_or_else(|| Error::config("no application to run"))?;
    let host_name = orc_net::hostname();
    let node = NodeDb {
        dir: node_dir(&spec.run_id, &host_name),
        host: host_name,
        db: spec.settings.db_identifier.clone(),
    };
    orc_secure::private_dir(&node_root())?;
    orc_secure::private_dir(&node.dir)?;
    let ranks_lock = node.dir.join("ranks.lock");
    let start_lock = node.dir.join("start.lock");
    let running = Flock::shared(&ranks_lock)?;
    let ready = node.ready(host, spec, abort, &start_lock);
    let code = match ready {
        Ok(place) => run_app(host, &node, spec, &place, prog, args, abort),
        Err(e) => Err(e),
    };
    // The last rank on the node to end stops the database and removes the node's files
    // (also after a failed start, whose teardown already stopped the server).
    drop(running);
    let _start = Flock::exclusive(&start_lock)?;
    // The last: no other rank runs, and every rank the node expects has come (when that is
    // known: a rank that starts late would otherwise find its database gone and start
    // another).
    let all_came = expected_ranks().is_none_or(|n| node.joined() >= n);
    if all_came && let Some(_last) = Flock::try_exclusive(&ranks_lock)? {
        node.stop(host);
        let _ = std::fs::remove_dir_all(&node.dir);
    }
    code
}

impl NodeDb {
    /// Make sure the node's database runs with its objects (the first rank to get here
    /// starts it) and decide the CPUs.
    fn ready(
        &self,
        host: &PluginHost,
        spec: &ColocatedSpec,
        abort: &Arc<AtomicBool>,
        start_lock: &Path,
    ) -> Result<pinning::Placement> {
        let _start = Flock::exclusive(start_lock)?;
        self.count_joined()?;
        let failed = |why: String| Error::Format {
            context: format!("the colocated database on {}", self.host),
            message: format!("did not start: {why}"),
        };
        if let Ok(why) = std::fs::read_to_string(self.dir.join(FAILED)) {
            return Err(failed(why));
        }
        let place = pinning::place(
            &pinning::affinity(0)?,
            &pinning::available_cpus(),
            spec.db_cpus,
            spec.pin.as_deref(),
        )?;
        if !self.dir.join(READY).exists() {
            if let Err(e) = self.start(host, spec, &place.db, abort) {
                let why = e.to_string();
                let _ = orc_secure::write_private(&self.dir.join(FAILED), why.as_bytes());
                return Err(failed(why));
            }
            orc_secure::write_private(&self.dir.join(READY), b"")?;
        }
        Ok(place)
    }
}

/// Run the application beside the node's database; its exit code.
fn run_app(
    host: &PluginHost,
    node: &NodeDb,
    spec: &ColocatedSpec,
    place: &pinning::Placement,
    prog: &str,
    args: &[String],
    abort: &AtomicBool,
) -> Result<i32> {
    let orc = Orchestrator::connect(host, &node.dir, &node.db)?;
    let mut cmd = Command::new(prog);
    cmd.args(args);
    let suffix = env_suffix(&node.db);
    for (k, v) in orc.client_env() {
        cmd.env(k, v);
    }
    if let Transport::Tcp { port } = spec.transport {
        // The ranks use loopback, whatever other interfaces the database also binds.
        cmd.env(format!("SSDB{suffix}"), format!("127.0.0.1:{port}"));
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(cpus) = place.app.clone() {
        // SAFETY: only an async-signal-safe system call between fork and exec.
        unsafe {
            cmd.pre_exec(move || pinning::set_affinity(0, &cpus));
        }
    }
    let code = match cmd.spawn() {
        Ok(mut child) => wait_forwarding(&mut child, abort),
        Err(e) => {
            tracing::error!("could not run `{prog}` on {}: {e}", node.host);
            if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            }
        }
    };
    Ok(code)
}

/// Wait for the application, sending it SIGTERM once `abort` is set.
fn wait_forwarding(child: &mut std::process::Child, abort: &AtomicBool) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    let mut sent = false;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
            }
            Ok(None) => {}
            Err(_) => return 1,
        }
        if !sent && abort.load(Ordering::SeqCst) {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            sent = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
