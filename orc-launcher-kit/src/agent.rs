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
//! Requests and replies are JSON files, each written whole and renamed into place. The
//! agent counts a heartbeat every second in a file, so a caller tells an agent that is gone
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
    Allocation, BatchSettings, Error, LaunchStep, Launcher, Result, StepId, StepStatus,
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

/// Where agents keep their directories: `<state dir>/agents`.
pub fn root(state_dir: &Path) -> PathBuf {
    state_dir.join("agents")
}

/// The directory of the agent serving job `job`, under `root` (see [`root`]).
pub fn dir(root: &Path, job: &str) -> PathBuf {
    root.join(job.replace('/', "_"))
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
/// named by the shell variable `job_var` holding the job id (`PBS_JOBID`, `LSB_JOBID`).
pub fn script_line(launcher: &str, job_var: &str, root: &Path) -> String {
    format!(
        "exec {} agent --launcher {} {}/\"${job_var}\"\n",
        shell_quote(&orc_core::step::orc_exe().display().to_string()),
        shell_quote(launcher),
        shell_quote(&root.display().to_string()),
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
    /// The status of job `job` (terminal once it has ended).
    fn job_status(&self, job: &str) -> Result<StepStatus>;
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
/// `root` (see [`root`]), submit it, and wait (at most the batch's queue timeout) until the
/// agent serves; a job that fails first is deleted and reported with its output.
pub fn allocate(
    s: &dyn Scheduler,
    batch: &BatchSettings,
    name: &str,
    root: &Path,
) -> Result<Allocation> {
    create_private_dir(root)?;
    let output = root.join(format!("{name}.out"));
    let file = root.join(format!("{name}.{}.sh", s.launcher()));
    let line = script_line(s.launcher(), s.job_var(), root);
    std::fs::write(&file, s.script(batch, name, &output, &line)?).map_err(io("writing", &file))?;
    let job = s.submit(&file, root, None)?;
    tracing::info!(job = %job, "batch job submitted; waiting for its agent");
    let agent = Agent::new(s.launcher(), &job, root);
    match agent.wait_ready(
        batch.queue_timeout_secs.map(Duration::from_secs),
        &output,
        || s.job_status(&job),
    ) {
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

/// Create `dir` (and its parents) readable by its owner only: requests carry commands
/// the agent runs.
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("creating", dir))
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

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

/// Write `bytes` to `path` whole: a temporary file renamed into place.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("renaming into", path))
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// Serve the requests dropped into `dir` with `launcher` (which runs inside the job) until
/// a `stop` file appears or the process gets `SIGTERM`, `SIGINT` or `SIGHUP` (handlers are
/// installed here: call it from a binary's main thread). Every step it launched that is
/// still running is cancelled before it returns.
pub fn serve(launcher: &dyn Launcher, dir: &Path) -> Result<()> {
    let requests = dir.join("requests");
    let replies = dir.join("replies");
    for d in [&requests, &replies] {
        std::fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
    let alloc = launcher.allocation()?;
    write_whole(&dir.join(READY), &json(&alloc))?;
    tracing::info!(dir = %dir.display(), hosts = ?alloc.hosts, "agent serving");

    let mut launched: Vec<StepId> = Vec::new();
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
            let reply = match std::fs::read(&path) {
                Ok(bytes) => match serde_json::from_slice::<Request>(&bytes) {
                    Ok(req) => handle(launcher, req, &mut launched),
                    Err(e) => Reply::Err(Error::launcher(
                        launcher.name(),
                        format!("the agent got a request it cannot read: {e}"),
                    )),
                },
                Err(_) => continue,
            };
            if let Some(name) = path.file_name() {
                write_whole(&replies.join(name), &json(&reply))?;
            }
            let _ = std::fs::remove_file(&path);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!(
        steps = launched.len(),
        "agent stopping; cancelling its steps"
    );
    let _ = std::fs::remove_file(dir.join(READY));
    for id in &launched {
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

fn handle(launcher: &dyn Launcher, req: Request, launched: &mut Vec<StepId>) -> Reply {
    let value = match req {
        Request::Launch { step } => launcher.launch(&step).map(|id| {
            launched.push(id.clone());
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

/// The login-node side: sends requests to the agent of one job.
#[derive(Debug, Clone)]
pub struct Agent {
    launcher: String,
    job: String,
    dir: PathBuf,
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
        write_whole(&request, &json(req))?;
        let deadline = Instant::now() + REPLY_WITHIN;
        // The agent counts its heartbeats; an agent whose count stands still is gone.
        // (Counting, not file times: the login node's clock need not match the node's.)
        let beats = || std::fs::read_to_string(self.dir.join(HEARTBEAT)).ok();
        let mut last_beat = beats();
        let mut beat_seen = Instant::now();
        loop {
            if let Ok(bytes) = std::fs::read(&reply) {
                let _ = std::fs::remove_file(&reply);
                return match serde_json::from_slice::<Reply>(&bytes) {
                    Ok(Reply::Ok(v)) => Ok(v),
                    Ok(Reply::Err(e)) => Err(e),
                    Err(e) => Err(self.error(format!("unreadable reply from the agent: {e}"))),
                };
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

    /// Remove the agent's directory once the job has ended.
    pub fn clean_up(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
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
        let a = Agent {
            launcher: "lsf".into(),
            job: "7".into(),
            dir: dir.clone(),
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
}
