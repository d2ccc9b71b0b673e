//! The job agent: steps inside a batch job for schedulers that cannot attach a step to a
//! job from outside it (PBS Pro, LSF, Cobalt).
//!
//! Slurm runs `srun --jobid` from anywhere, and Grid Engine `qrsh -inherit`; PBS's
//! `mpiexec`, LSF's `jsrun` and Cobalt's `aprun` work only inside the job. So a launcher's
//! [`allocate`](orc_core::Launcher::allocate) submits a job whose script runs
//! `orc agent --launcher <name> <dir>` ([`script_line`]); the agent ([`serve`]) writes the
//! job's allocation to `<dir>`, then carries out launch, status and cancel requests that
//! [`Agent`] drops into `<dir>` from the login node, with the launcher as it works inside
//! the job. `<dir>` is under the orchestrator's state directory (`<state>/agents/<job>`,
//! see [`root`]; launchers learn it through `Launcher::use_state_dir`), which must be on a
//! filesystem that login and compute nodes share, as it must for reconnecting anyway.
//!
//! Requests and replies are JSON files, each written whole and renamed into place, each
//! signed with a secret made for the job ([`key_file`]: written readable by its owner only
//! after the job is submitted; the agent waits for it). The agent trusts nothing it finds:
//! its directories must belong to its user and be closed to others, a request must be a
//! regular file of its user, at most 1 MiB, signed with the job's key and never seen
//! before, and may only launch steps into this job and ask about or cancel steps this
//! agent launched. Every refusal is logged (to the job's output) and answered with an
//! error. The agent counts a heartbeat every second in a file, so a caller tells an agent that is gone
//! (job ended, node lost: the count stands still for 10 s) from one that is busy, without
//! comparing clocks across nodes. On `SIGTERM` (a scheduler ending the job)
//! or a `stop` file ([`Agent::stop`]) the agent cancels every step it launched, then exits.
//!
//! ```
//! use orc_core::StepId;
//! use orc_launcher_kit::agent;
//! let id = agent::wrap_id("77.pbs01", &StepId("4242@99".into()));
//! assert_eq!(id.0, "agent:77.pbs01:4242@99");
//! assert_eq!(agent::parse_id(&id), Some(("77.pbs01", StepId("4242@99".into()))));
//! ```

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime},
};

use serde::{Deserialize, Serialize};

use orc_core::{
    Allocation, BatchSettings, Error, JobStatus, LaunchStep, Launcher, Result, StepId, StepStatus,
    step::shell_quote,
};

/// The file the agent writes once it serves: the job's [`Allocation`].
const READY: &str = "allocation.json";
/// The agent's heartbeat count, rewritten every second.
const HEARTBEAT: &str = "alive";
/// Created to ask the agent to stop.
const STOP: &str = "stop";
/// An agent whose heartbeat count has not changed for this long is gone.
const GONE_AFTER: Duration = Duration::from_secs(10);
/// How long a request may take (a cancel waits for the step to end).
const REPLY_WITHIN: Duration = Duration::from_secs(120);
/// How long a starting agent waits for its job's key (written just after submission).
const KEY_WITHIN: Duration = Duration::from_secs(60);
/// The most bytes a key file may hold.
const KEY_MAX: u64 = 4096;
/// The most bytes a request or reply may hold.
const MESSAGE_MAX: u64 = 1 << 20;
/// How many request names the agent remembers to refuse replays.
const REMEMBERED: usize = 100_000;

/// Where agents keep their directories: `<state dir>/agents`.
pub fn root(state_dir: &Path) -> PathBuf {
    state_dir.join("agents")
}

/// The directory of the agent serving job `job`, under `root` (see [`root`]).
pub fn dir(root: &Path, job: &str) -> PathBuf {
    root.join(job.replace('/', "_"))
}

/// The file holding the secret that signs the requests to, and replies from, the agent of
/// job `job` under `root` (see [`root`]): `<root>/<job>.key`.
pub fn key_file(root: &Path, job: &str) -> PathBuf {
    root.join(format!("{}.key", job.replace('/', "_")))
}

/// The step id, valid anywhere, of step `inner` that the agent of `job` launched.
pub fn wrap_id(job: &str, inner: &StepId) -> StepId {
    StepId(format!("agent:{job}:{inner}"))
}

/// The job and the agent's own id of a step id made by [`wrap_id`].
pub fn parse_id(id: &StepId) -> Option<(&str, StepId)> {
    let (job, inner) = id.0.strip_prefix("agent:")?.split_once(':')?;
    Some((job, StepId(inner.to_string())))
}

/// The job a step must reach through an agent: the one its
/// [`RunSettings::allocation`](orc_core::RunSettings::allocation) names, when this process
/// does not run inside it (`current` is the job this process runs in, if any).
pub fn remote_job<'a>(step: &'a LaunchStep, current: Option<&str>) -> Option<&'a str> {
    step.run
        .allocation
        .as_deref()
        .filter(|job| current != Some(*job))
}

/// The job-script line that runs the agent of `launcher` in a directory under `root`,
/// named by the shell variable `job_var` holding the job id (`PBS_JOBID`, `LSB_JOBID`),
/// with the job's key in [`key_file`].
pub fn script_line(launcher: &str, job_var: &str, root: &Path) -> String {
    let root = shell_quote(&root.display().to_string());
    format!(
        "exec {} agent --launcher {} --key-file {root}/\"${job_var}\".key {root}/\"${job_var}\"\n",
        shell_quote(&orc_core::step::orc_exe().display().to_string()),
        shell_quote(launcher),
    )
}

/// A scheduler's side of an agent-held job: the launcher's own job script, submit, status
/// and delete commands. [`allocate`] and [`release`] do the rest.
pub trait Scheduler {
    /// The launcher's name (in messages and the agent's command line).
    fn launcher(&self) -> &str;
    /// The variable holding the job id inside a job (`PBS_JOBID`, `LSB_JOBID`, ...).
    fn job_var(&self) -> &'static str;
    /// The job script: directives for `batch` (nodes, walltime, account, queue, extra),
    /// the job name `name`, output to `output`, and `agent_line` (the [`script_line`] that
    /// runs the agent) at the end. Values that cannot go into a script safely are refused
    /// ([`crate::tools::directive_value`]).
    fn script(
        &self,
        batch: &BatchSettings,
        name: &str,
        output: &Path,
        agent_line: &str,
    ) -> Result<String>;
    /// Submit the script file `file` from directory `cwd`, with `path` as `PATH` when
    /// given (a step's own); the job id.
    fn submit(&self, file: &Path, cwd: &Path, path: Option<&str>) -> Result<String>;
    /// The status of job `job` (terminal once it has ended); for a queued job, the
    /// scheduler's reason in [`StepStatus::detail`] when it gives one.
    fn job_status(&self, job: &str) -> Result<StepStatus>;
    /// Why a queued job with status `status` can never start, with what to change, when
    /// the scheduler says so (PBS: a `Can Never Run` comment): the wait then ends at once.
    /// `None` (the default) when it may still start.
    fn never_starts(&self, status: &StepStatus) -> Option<String> {
        let _ = status;
        None
    }
    /// Delete job `job` (`qdel`, `bkill`); one that already ended is not an error.
    fn kill(&self, job: &str) -> Result<()>;
    /// Keep the scheduler's own files (job records, say) under `dir`, the orchestrator's
    /// state directory (see `Launcher::use_state_dir`). Most schedulers keep none.
    fn use_state_dir(&self, dir: &Path) {
        let _ = dir;
    }

    /// [`Launcher::cancel`] of a batch job: delete it unless it has ended, then wait (at
    /// most `limit`) until it has, and report it cancelled.
    fn cancel_job(&self, job: &str, limit: Duration) -> Result<StepStatus> {
        let s = self.job_status(job)?;
        if s.status.is_terminal() {
            return Ok(s);
        }
        self.kill(job)?;
        crate::tools::wait_cancelled(self.launcher(), &format!("job {job}"), limit, || {
            self.job_status(job)
        })
    }
}

/// [`Launcher::allocate`] for schedulers that need the agent: write the job script under
/// `root` (see [`root`]; created private), submit it, write the job's key, and wait (at
/// most the batch's queue timeout) until the agent serves; a job that fails first is
/// deleted and reported with its output.
pub fn allocate(
    s: &dyn Scheduler,
    batch: &BatchSettings,
    name: &str,
    root: &Path,
) -> Result<Allocation> {
    allocate_tracked(s, batch, name, root, &crate::tools::PendingJobs::default())
}

/// [`allocate`], with the job listed in `pending` while it waits in the queue, so that a
/// launcher's [`cancel_allocation`](orc_core::Launcher::cancel_allocation) can cancel it.
pub fn allocate_tracked(
    s: &dyn Scheduler,
    batch: &BatchSettings,
    name: &str,
    root: &Path,
    pending: &crate::tools::PendingJobs,
) -> Result<Allocation> {
    orc_secure::private_dir(root)?;
    let output = root.join(format!("{name}.out"));
    let file = root.join(format!("{name}.{}.sh", s.launcher()));
    let line = script_line(s.launcher(), s.job_var(), root);
    write_whole(&file, s.script(batch, name, &output, &line)?.as_bytes())?;
    let job = s.submit(&file, root, None)?;
    tracing::info!(job = %job, "batch job submitted; waiting for its agent");
    let agent = Agent::new(s.launcher(), &job, root);
    if let Err(e) = orc_secure::write_private(&agent.key, orc_secure::random_secret().as_bytes()) {
        let _ = s.kill(&job);
        return Err(e);
    }
    let waiting = pending.waiting(name, &job);
    let ready = agent.wait_ready(
        batch.queue_timeout_secs.map(Duration::from_secs),
        &output,
        || {
            let st = s.job_status(&job)?;
            if st.status == JobStatus::Queued {
                pending.saw(name, &st);
            }
            match s.never_starts(&st) {
                Some(why) => Err(Error::launcher(
                    s.launcher(),
                    format!("batch job {job} can never start: {why}"),
                )),
                None => Ok(st),
            }
        },
    );
    drop(waiting);
    match ready {
        Ok(alloc) => Ok(Allocation::new(Some(job), alloc.hosts)),
        Err(e) => {
            let _ = s.kill(&job);
            agent.clean_up();
            Err(e)
        }
    }
}

/// [`Launcher::release`] for jobs made by [`allocate`] under `root`: see
/// [`Agent::release`].
pub fn release(s: &dyn Scheduler, job: &str, grace: Duration, root: &Path) -> Result<()> {
    Agent::new(s.launcher(), job, root).release(grace, || s.job_status(job), || s.kill(job))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Launch { step: Box<LaunchStep> },
    Status { ids: Vec<StepId> },
    Cancel { id: StepId },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Ok(serde_json::Value),
    Err(Error),
}

/// A request or reply as it lies in a file: the message's JSON text and its signature.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Signed {
    pub(crate) body: String,
    pub(crate) mac: String,
}

/// What a request named `name` signs: its name (so it cannot be replayed under another)
/// and its body.
pub(crate) fn request_message(name: &str, body: &str) -> Vec<u8> {
    format!("request\n{name}\n{body}").into_bytes()
}

/// What the reply to a request named `name` signs.
fn reply_message(name: &str, body: &str) -> Vec<u8> {
    format!("reply\n{name}\n{body}").into_bytes()
}

/// Read a job's key from `file`: a private file of this user (see
/// [`orc_secure::read_private`]).
pub(crate) fn read_key(file: &Path) -> Result<Vec<u8>> {
    let bytes = orc_secure::read_private(file, KEY_MAX)?;
    let key = bytes.trim_ascii().to_vec();
    if key.len() < 32 {
        return Err(Error::Insecure {
            path: file.to_path_buf(),
            problem: "holds no key (too short)".into(),
        });
    }
    Ok(key)
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

/// Write `bytes` to `path` whole, readable by its owner only: a temporary file renamed
/// into place.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    orc_secure::create_private(&tmp)?
        .write_all(bytes)
        .map_err(io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("renaming into", path))
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// Wait (at most [`KEY_WITHIN`], while not signalled) for the job's key, which the login
/// side writes just after the job is submitted, and read it.
fn wait_for_key(file: &Path) -> Result<Vec<u8>> {
    let deadline = Instant::now() + KEY_WITHIN;
    while !file.exists() && Instant::now() < deadline && !SIGNALLED.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    read_key(file)
}

/// Serve the requests dropped into `dir` with `launcher` (which runs inside the job) until
/// a `stop` file appears or the process gets `SIGTERM`, `SIGINT` or `SIGHUP` (handlers are
/// installed here: call it from a binary's main thread). Requests must be signed with the
/// key in `key_file` (see the module's documentation for all that is checked). Every step
/// it launched that is still running is cancelled before it returns.
pub fn serve(launcher: &dyn Launcher, dir: &Path, key_file: &Path) -> Result<()> {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
    if let Some(root) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        orc_secure::check_private_dir(root)?;
    }
    let requests = dir.join("requests");
    let replies = dir.join("replies");
    for d in [dir, &requests, &replies] {
        orc_secure::private_dir(d)?;
    }
    let key = wait_for_key(key_file)?;
    let alloc = launcher.allocation()?;
    let job = alloc.id.clone().unwrap_or_else(|| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    write_whole(&dir.join(READY), &json(&alloc))?;
    tracing::info!(dir = %dir.display(), job = %job, hosts = ?alloc.hosts, "agent serving");

    let mut served = Served {
        launcher,
        job,
        key,
        launched: Vec::new(),
        seen: std::collections::HashSet::new(),
        seen_order: std::collections::VecDeque::new(),
    };
    let mut beat: Option<Instant> = None;
    let mut beats: u64 = 0;
    while !SIGNALLED.load(Ordering::SeqCst) && !dir.join(STOP).exists() {
        if beat.is_none_or(|b| b.elapsed() >= Duration::from_secs(1)) {
            beats += 1;
            let _ = write_whole(&dir.join(HEARTBEAT), beats.to_string().as_bytes());
            beat = Some(Instant::now());
        }
        let mut names: Vec<PathBuf> = std::fs::read_dir(&requests)
            .map_err(io("reading", &requests))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        for path in names {
            let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            let reply = served.answer(&path, &name);
            let _ = std::fs::remove_file(&path);
            let body = String::from_utf8(json(&reply)).unwrap_or_default();
            let signed = Signed {
                mac: orc_secure::sign(&served.key, &reply_message(&name, &body)),
                body,
            };
            write_whole(&replies.join(&name), &json(&signed))?;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!(
        steps = served.launched.len(),
        "agent stopping; cancelling its steps"
    );
    let _ = std::fs::remove_file(dir.join(READY));
    for id in &served.launched {
        let running = launcher
            .status(std::slice::from_ref(id))
            .map(|s| s.first().is_some_and(|s| !s.status.is_terminal()))
            .unwrap_or(false);
        if running && let Err(e) = launcher.cancel(id) {
            tracing::warn!(step = %id, error = %e, "could not cancel");
        }
    }
    Ok(())
}

/// What a serving agent knows: its launcher, job and key, the steps it launched and the
/// requests it has seen.
struct Served<'a> {
    launcher: &'a dyn Launcher,
    job: String,
    key: Vec<u8>,
    launched: Vec<StepId>,
    seen: std::collections::HashSet<String>,
    seen_order: std::collections::VecDeque<String>,
}

impl Served<'_> {
    fn refuse(&self, name: &str, why: String) -> Reply {
        tracing::warn!(request = %name, reason = %why, "agent refused a request");
        Reply::Err(Error::launcher(
            self.launcher.name(),
            format!(
                "the agent of batch job {} refused request {name}: {why}",
                self.job
            ),
        ))
    }

    /// Check, decode and carry out the request in `path`.
    fn answer(&mut self, path: &Path, name: &str) -> Reply {
        let bytes = match orc_secure::read_private(path, MESSAGE_MAX) {
            Ok(b) => b,
            Err(e) => return self.refuse(name, e.to_string()),
        };
        let signed: Signed = match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => return self.refuse(name, format!("not a signed request ({e})")),
        };
        if !orc_secure::verify(&self.key, &request_message(name, &signed.body), &signed.mac) {
            return self.refuse(name, "its signature is not the job's".into());
        }
        if !self.seen.insert(name.to_string()) {
            return self.refuse(name, "it was seen before (a replay)".into());
        }
        self.seen_order.push_back(name.to_string());
        if self.seen_order.len() > REMEMBERED
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        let req: Request = match serde_json::from_str(&signed.body) {
            Ok(r) => r,
            Err(e) => return self.refuse(name, format!("it cannot be read ({e})")),
        };
        if let Err(why) = self.allowed(&req) {
            return self.refuse(name, why);
        }
        self.handle(req)
    }

    /// Whether this agent may carry out `req`: launches into its own job only, status and
    /// cancel of its own steps only.
    fn allowed(&self, req: &Request) -> std::result::Result<(), String> {
        let foreign = |id: &StepId| !self.launched.contains(id);
        match req {
            Request::Launch { step } => match step.run.allocation.as_deref() {
                Some(job) if job == self.job => Ok(()),
                other => Err(format!(
                    "it launches into {}, not into this job",
                    other.map_or("no job".to_string(), |j| format!("job {j}"))
                )),
            },
            Request::Status { ids } => match ids.iter().find(|id| foreign(id)) {
                Some(id) => Err(format!("step {id} is not one this agent launched")),
                None => Ok(()),
            },
            Request::Cancel { id } if foreign(id) => {
                Err(format!("step {id} is not one this agent launched"))
            }
            Request::Cancel { .. } => Ok(()),
        }
    }

    fn handle(&mut self, req: Request) -> Reply {
        let launcher = self.launcher;
        let value = match req {
            Request::Launch { step } => launcher.launch(&step).map(|id| {
                self.launched.push(id.clone());
                serde_json::to_value(id)
            }),
            Request::Status { ids } => launcher.status(&ids).map(serde_json::to_value),
            Request::Cancel { id } => launcher.cancel(&id).map(serde_json::to_value),
        };
        match value {
            Ok(Ok(v)) => Reply::Ok(v),
            Ok(Err(e)) => Reply::Err(Error::launcher(launcher.name(), e.to_string())),
            Err(e) => Reply::Err(e),
        }
    }
}

/// The login-node side: sends requests to the agent of one job.
#[derive(Debug, Clone)]
pub struct Agent {
    launcher: String,
    job: String,
    dir: PathBuf,
    key: PathBuf,
    gone_after: Duration,
}

impl Agent {
    /// The agent of job `job`, started by launcher `launcher`, with its directory under
    /// `root` (see [`root`]).
    pub fn new(launcher: &str, job: &str, root: &Path) -> Self {
        Self {
            launcher: launcher.into(),
            job: job.into(),
            dir: dir(root, job),
            key: key_file(root, job),
            gone_after: GONE_AFTER,
        }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::launcher(self.launcher.clone(), message)
    }

    /// Wait until the agent serves, and return the job's allocation. `job_status` tells a
    /// job that ended (then this is an error with the job's status and the last lines of
    /// its `output` file) from one still queued; `timeout` bounds the wait (`None`:
    /// forever).
    pub fn wait_ready(
        &self,
        timeout: Option<Duration>,
        output: &Path,
        mut job_status: impl FnMut() -> Result<StepStatus>,
    ) -> Result<Allocation> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let ready = self.dir.join(READY);
        loop {
            if let Ok(bytes) = std::fs::read(&ready) {
                return serde_json::from_slice(&bytes)
                    .map_err(|e| self.error(format!("reading {}: {e}", ready.display())));
            }
            let s = job_status()?;
            if s.status.is_terminal() {
                let text = std::fs::read_to_string(output).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(10)..].join("\n");
                return Err(self.error(format!(
                    "batch job {} ended before its agent served ({s}); its output ({}):\n{}",
                    self.job,
                    output.display(),
                    if tail.trim().is_empty() {
                        "(empty)"
                    } else {
                        tail.trim_end()
                    }
                )));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(self.error(format!(
                    "timed out waiting for batch job {} to leave the queue (still {}; raise the queue timeout)",
                    self.job,
                    s.native_state.unwrap_or_else(|| s.status.to_string())
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn call(&self, req: &Request) -> Result<serde_json::Value> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        if !self.dir.join(READY).exists() {
            return Err(self.error(format!(
                "no agent serves batch job {} (it has ended, or never started)",
                self.job
            )));
        }
        let key = read_key(&self.key)?;
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!(
            "{nanos}-{}-{}.json",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let request = self.dir.join("requests").join(&name);
        let reply = self.dir.join("replies").join(&name);
        let body = String::from_utf8(json(req)).unwrap_or_default();
        let signed = Signed {
            mac: orc_secure::sign(&key, &request_message(&name, &body)),
            body,
        };
        write_whole(&request, &json(&signed))?;
        let deadline = Instant::now() + REPLY_WITHIN;
        // The agent counts its heartbeats; an agent whose count stands still is gone.
        // (Counting, not file times: the login node's clock need not match the node's.)
        let beats = || std::fs::read_to_string(self.dir.join(HEARTBEAT)).ok();
        let mut last_beat = beats();
        let mut beat_seen = Instant::now();
        loop {
            if reply.exists() {
                let read = orc_secure::read_private(&reply, MESSAGE_MAX);
                let _ = std::fs::remove_file(&reply);
                return self.open_reply(&key, &name, read?);
            }
            let now_beat = beats();
            if now_beat != last_beat {
                last_beat = now_beat;
                beat_seen = Instant::now();
            }
            let silent = beat_seen.elapsed() > self.gone_after;
            if silent || Instant::now() >= deadline || !self.dir.join(READY).exists() {
                let _ = std::fs::remove_file(&request);
                return Err(self.error(format!(
                    "the agent of batch job {} does not answer (is the job still running?)",
                    self.job
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Check the signature of the reply to request `name` and decode it.
    fn open_reply(&self, key: &[u8], name: &str, bytes: Vec<u8>) -> Result<serde_json::Value> {
        let signed: Signed = serde_json::from_slice(&bytes)
            .map_err(|e| self.error(format!("unreadable reply from the agent: {e}")))?;
        if !orc_secure::verify(key, &reply_message(name, &signed.body), &signed.mac) {
            return Err(self.error(format!(
                "a reply to request {name} is not signed with the key of batch job {}; ignoring it",
                self.job
            )));
        }
        match serde_json::from_str::<Reply>(&signed.body) {
            Ok(Reply::Ok(v)) => Ok(v),
            Ok(Reply::Err(e)) => Err(e),
            Err(e) => Err(self.error(format!("unreadable reply from the agent: {e}"))),
        }
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, v: serde_json::Value) -> Result<T> {
        serde_json::from_value(v).map_err(|e| self.error(format!("unexpected agent reply: {e}")))
    }

    /// Launch `step` inside the job; its id (made with [`wrap_id`]).
    pub fn launch(&self, step: &LaunchStep) -> Result<StepId> {
        let v = self.call(&Request::Launch {
            step: Box::new(step.clone()),
        })?;
        Ok(wrap_id(&self.job, &self.decode(v)?))
    }

    /// The status of steps this agent launched (ids as [`parse_id`] returns them).
    pub fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>> {
        let v = self.call(&Request::Status { ids: ids.to_vec() })?;
        self.decode(v)
    }

    /// Cancel a step this agent launched.
    pub fn cancel(&self, id: &StepId) -> Result<StepStatus> {
        let v = self.call(&Request::Cancel { id: id.clone() })?;
        self.decode(v)
    }

    /// Ask the agent to cancel its steps and exit, which ends the job.
    pub fn stop(&self) -> Result<()> {
        let stop = self.dir.join(STOP);
        std::fs::write(&stop, b"").map_err(io("writing", &stop))
    }

    /// Remove the agent's directory and the job's key once the job has ended.
    pub fn clean_up(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.key);
    }

    /// End the job: ask the agent to stop (it cancels its steps and exits, which ends the
    /// job) and wait up to `grace` for `job_status` to be terminal; then `kill` it with the
    /// scheduler (`qdel`, `bkill`) and wait as long again. The directory is removed after.
    pub fn release(
        &self,
        grace: Duration,
        mut job_status: impl FnMut() -> Result<StepStatus>,
        kill: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let ended = |job_status: &mut dyn FnMut() -> Result<StepStatus>| {
            let deadline = Instant::now() + grace;
            loop {
                let s = job_status()?;
                if s.status.is_terminal() {
                    return Ok(None);
                }
                if Instant::now() >= deadline {
                    return Ok(Some(s));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        };
        if !job_status()?.status.is_terminal() {
            self.stop()?;
            if ended(&mut job_status)?.is_some() {
                tracing::warn!(job = %self.job, "the agent did not end the job; killing it");
                kill()?;
                if let Some(s) = ended(&mut job_status)? {
                    return Err(self.error(format!(
                        "batch job {} is still {s} {} s after it was killed",
                        self.job,
                        grace.as_secs()
                    )));
                }
            }
        }
        self.clean_up();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use orc_core::JobStatus;

    use super::*;

    #[test]
    fn ids() {
        let id = wrap_id("12", &StepId("99@1".into()));
        assert_eq!(parse_id(&id), Some(("12", StepId("99@1".into()))));
        assert_eq!(parse_id(&StepId("99@1".into())), None);
    }

    #[test]
    fn a_request_to_no_agent_is_an_error_at_once() {
        let a = Agent {
            launcher: "pbs".into(),
            job: "1".into(),
            dir: tempfile::tempdir().unwrap().path().join("gone"),
            key: PathBuf::from("/nonexistent/1.key"),
            gone_after: GONE_AFTER,
        };
        let t = Instant::now();
        let e = a.status(&[StepId("1@1".into())]).unwrap_err().to_string();
        assert!(e.contains("no agent serves batch job 1"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(1));
        let e = a
            .wait_ready(None, Path::new("/nonexistent"), || {
                Ok(StepStatus::new(JobStatus::Failed))
            })
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("batch job 1 ended before its agent served"),
            "{e}"
        );
    }

    #[test]
    fn an_agent_whose_heartbeat_stands_still_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("7");
        std::fs::create_dir_all(dir.join("requests")).unwrap();
        std::fs::create_dir_all(dir.join("replies")).unwrap();
        std::fs::write(dir.join(READY), b"{}").unwrap();
        std::fs::write(dir.join(HEARTBEAT), b"41").unwrap();
        let key = key_file(tmp.path(), "7");
        orc_secure::write_private(&key, orc_secure::random_secret().as_bytes()).unwrap();
        let a = Agent {
            launcher: "lsf".into(),
            job: "7".into(),
            dir: dir.clone(),
            key,
            gone_after: Duration::from_millis(300),
        };
        let e = a.cancel(&StepId("1@1".into())).unwrap_err().to_string();
        assert!(
            e.contains("the agent of batch job 7 does not answer"),
            "{e}"
        );
        // The unanswered request is taken back.
        assert_eq!(std::fs::read_dir(dir.join("requests")).unwrap().count(), 0);
    }

    /// Drop `bytes` as request `name` (mode `mode`) into `dir` and wait for the agent's
    /// reply, checked with `key`: the error it answers with, if any.
    fn raw_request(dir: &Path, key: &[u8], name: &str, bytes: &[u8], mode: u32) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let tmp = dir.join("requests").join(format!("{name}.part"));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
        std::fs::rename(&tmp, dir.join("requests").join(name)).unwrap();
        wait_reply(dir, key, name)
    }

    fn wait_reply(dir: &Path, key: &[u8], name: &str) -> Option<String> {
        let reply = dir.join("replies").join(name);
        let t = Instant::now();
        while !reply.exists() {
            assert!(t.elapsed() < Duration::from_secs(10), "no reply to {name}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let signed: Signed = serde_json::from_slice(&std::fs::read(&reply).unwrap()).unwrap();
        std::fs::remove_file(&reply).unwrap();
        assert!(orc_secure::verify(
            key,
            &reply_message(name, &signed.body),
            &signed.mac
        ));
        match serde_json::from_str::<Reply>(&signed.body).unwrap() {
            Reply::Ok(_) => None,
            Reply::Err(e) => Some(e.to_string()),
        }
    }

    fn signed(key: &[u8], name: &str, req: &Request) -> Vec<u8> {
        let body = serde_json::to_string(req).unwrap();
        json(&Signed {
            mac: orc_secure::sign(key, &request_message(name, &body)),
            body,
        })
    }

    #[test]
    fn the_agent_serves_signed_requests_of_its_job_and_refuses_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let root = root(tmp.path());
        orc_secure::private_dir(&root).unwrap();
        let job = "42";
        let key_path = key_file(&root, job);
        orc_secure::write_private(&key_path, orc_secure::random_secret().as_bytes()).unwrap();
        let key = read_key(&key_path).unwrap();
        let dir = dir(&root, job);
        let work = tmp.path().join("work");
        let marker = work.join("forged");
        let local = crate::LocalLauncher::default();
        /// Stops the agent when the test ends, passed or failed (else the scope hangs).
        struct StopOnDrop(Agent);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                let _ = self.0.stop();
            }
        }
        std::thread::scope(|scope| {
            let served = scope.spawn(|| serve(&local, &dir, &key_path));
            let guard = StopOnDrop(Agent::new("local", job, &root));
            let agent = &guard.0;
            let running = || Ok(StepStatus::new(JobStatus::Running));
            agent
                .wait_ready(Some(Duration::from_secs(10)), &root.join("out"), running)
                .unwrap();

            // The login side's own requests work.
            let mut sleeper = LaunchStep::new("sleeper", "sleep", &work).args(["60"]);
            sleeper.run.allocation = Some(job.into());
            let id = agent.launch(&sleeper).unwrap();
            let (_, inner) = parse_id(&id).unwrap();
            let s = agent.status(std::slice::from_ref(&inner)).unwrap();
            assert_eq!(s[0].status, JobStatus::Running);

            let mut forged =
                LaunchStep::new("forged", "touch", &work).args([marker.display().to_string()]);
            forged.run.allocation = Some(job.into());
            let launch = Request::Launch {
                step: Box::new(forged.clone()),
            };
            let wrong_key = orc_secure::random_secret().into_bytes();
            let refused = |name: &str, bytes: &[u8], mode: u32, why: &str| {
                let e = raw_request(&dir, &key, name, bytes, mode)
                    .unwrap_or_else(|| panic!("{name} was carried out"));
                assert!(
                    e.contains("refused request") && e.contains(why),
                    "{name}: {e}"
                );
            };
            // Signed with another key, or not at all.
            refused(
                "1-a.json",
                &signed(&wrong_key, "1-a.json", &launch),
                0o600,
                "signature",
            );
            refused("1-b.json", &json(&launch), 0o600, "not a signed request");
            // Signed for another name: the signature covers the name.
            refused(
                "1-c.json",
                &signed(&key, "1-other.json", &launch),
                0o600,
                "signature",
            );
            // Readable or writable by others.
            refused(
                "1-d.json",
                &signed(&key, "1-d.json", &launch),
                0o644,
                "other users",
            );
            // Too large.
            let mut big = signed(&key, "1-e.json", &launch);
            big.resize(MESSAGE_MAX as usize + 10, b' ');
            refused("1-e.json", &big, 0o600, "more than");
            // A launch into another job.
            let mut elsewhere = forged.clone();
            elsewhere.run.allocation = Some("43".into());
            let req = Request::Launch {
                step: Box::new(elsewhere),
            };
            refused(
                "1-f.json",
                &signed(&key, "1-f.json", &req),
                0o600,
                "not into this job",
            );
            // Status and cancel of steps it did not launch.
            let other = StepId(format!("{}@1", std::process::id()));
            let req = Request::Status {
                ids: vec![inner.clone(), other.clone()],
            };
            refused(
                "1-g.json",
                &signed(&key, "1-g.json", &req),
                0o600,
                "not one this agent launched",
            );
            let req = Request::Cancel { id: other };
            refused(
                "1-h.json",
                &signed(&key, "1-h.json", &req),
                0o600,
                "not one this agent launched",
            );
            // A symbolic link.
            let target = tmp.path().join("elsewhere.json");
            std::fs::write(&target, signed(&key, "1-i.json", &launch)).unwrap();
            std::os::unix::fs::symlink(&target, dir.join("requests").join("1-i.json")).unwrap();
            let e = wait_reply(&dir, &key, "1-i.json").expect("a link was followed");
            assert!(e.contains("refused request"), "{e}");
            // A replay of a request carried out before.
            let status = Request::Status {
                ids: vec![inner.clone()],
            };
            let once = signed(&key, "2-a.json", &status);
            assert_eq!(raw_request(&dir, &key, "2-a.json", &once, 0o600), None);
            refused("2-a.json", &once, 0o600, "replay");
            // A file of another user (only root can make one).
            if orc_secure::euid() == 0 {
                let name = "2-b.json";
                let tmp_file = dir.join("requests").join("2-b.part");
                std::fs::write(&tmp_file, signed(&key, name, &launch)).unwrap();
                std::fs::set_permissions(
                    &tmp_file,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .unwrap();
                std::os::unix::fs::chown(&tmp_file, Some(65534), Some(65534)).unwrap();
                std::fs::rename(&tmp_file, dir.join("requests").join(name)).unwrap();
                let e = wait_reply(&dir, &key, name).expect("a foreign file was obeyed");
                assert!(e.contains("belongs to uid 65534"), "{e}");
            }
            std::thread::sleep(Duration::from_millis(300));
            assert!(!marker.exists(), "a refused request ran");

            // Stopping cancels the step it launched.
            agent.stop().unwrap();
            served.join().unwrap().unwrap();
            let pid: i32 = inner.0.split('@').next().unwrap().parse().unwrap();
            let t = Instant::now();
            // SAFETY: signal 0 only checks that the process exists.
            while unsafe { libc::kill(pid, 0) } == 0 {
                assert!(t.elapsed() < Duration::from_secs(10), "step left running");
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    }

    #[test]
    fn an_agent_directory_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = root(tmp.path());
        orc_secure::private_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        let key = key_file(&root, "5");
        let e = serve(&crate::LocalLauncher::default(), &dir(&root, "5"), &key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("can be written by other users"), "{e}");
        assert!(
            !dir(&root, "5").exists(),
            "the agent created its directory anyway"
        );
    }

    #[test]
    fn a_reply_not_signed_with_the_key_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let a = Agent::new("pbs", "9", tmp.path());
        let key = orc_secure::random_secret().into_bytes();
        let body = serde_json::to_string(&Reply::Ok(serde_json::json!("9@1"))).unwrap();
        let forged = json(&Signed {
            mac: orc_secure::sign(
                b"another key entirely, 32 bytes long",
                &reply_message("n", &body),
            ),
            body: body.clone(),
        });
        let e = a.open_reply(&key, "n", forged).unwrap_err().to_string();
        assert!(e.contains("not signed with the key of batch job 9"), "{e}");
        let good = json(&Signed {
            mac: orc_secure::sign(&key, &reply_message("n", &body)),
            body,
        });
        assert_eq!(
            a.open_reply(&key, "n", good).unwrap(),
            serde_json::json!("9@1")
        );
    }

    #[test]
    fn the_job_script_runs_the_agent_with_its_key() {
        let line = script_line("pbs", "PBS_JOBID", Path::new("/state dir/agents"));
        assert!(
            line.contains("agent --launcher pbs --key-file '/state dir/agents'/\"$PBS_JOBID\".key '/state dir/agents'/\"$PBS_JOBID\""),
            "{line}"
        );
        assert_eq!(
            key_file(Path::new("/s/agents"), "12/3"),
            Path::new("/s/agents/12_3.key")
        );
    }
}
