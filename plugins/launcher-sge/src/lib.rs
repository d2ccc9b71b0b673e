//! A Grid Engine (SGE, Son of Grid Engine, Univa/Altair GE) launcher for `orc`, built as
//! a site plugin: its own crate outside the orc workspace, grown from
//! `plugins/launcher-template`, compiled to `liborc_site_launcher_sge.so` and loaded by
//! `orc` from its plugin path (`$ORC_PLUGIN_PATH`). `orc` itself does not link it.
//!
//! * **Steps inside a job** (`$JOB_ID` set, or [`RunSettings::allocation`] naming one):
//!   each step is a task of the job, started with `qrsh -inherit <host>` (Grid Engine's
//!   tight integration; the job needs a parallel environment with `control_slaves TRUE`)
//!   and watched as the local `qrsh` process. A small shell wrapper on the compute node
//!   records its pid, so a cancel signals the task itself (`qrsh -inherit <host> kill`):
//!   Grid Engine ends the whole job when one of its tasks dies from a signal, so the
//!   wrapper turns signals into exit codes and the other tasks live on. A task the
//!   node's execution daemon refuses (`didn't accept task`: just after a job starts, a
//!   slave host may not yet hold its part of the job) never ran, so it is started again,
//!   up to 5 times a second apart.
//! * **Steps outside a job** are batch jobs of their own: `qsub -terse` of a generated
//!   script ([`batch_script`]); status from `qstat -xml` while the job is known there and
//!   from its accounting record (`qacct -j`) after it ended; cancel with `qdel`.
//! * **Batch orchestrators** (`orc db start --launcher sge --batch`): [`Launcher::allocate`]
//!   submits one job holding `nodes × tasks_per_node` slots of a parallel environment
//!   (`--batch-arg pe=<name>`, or the first one with `control_slaves TRUE`), with
//!   `-l h_rt` (walltime), `-A` (account) and `-q` (queue); shards are tasks in it, and
//!   `orc db stop` ends the job.
//!
//! [`RunSettings::allocation`]: orc_launcher_kit::orc_core::RunSettings::allocation
//!
//! ```
//! use orc_launcher_kit::orc_core::Launcher;
//! let l = orc_site_launcher_sge::SgeLauncher::default();
//! assert_eq!(l.name(), "sge");
//! ```
#![deny(missing_docs)]

pub mod parse;
mod task_start;

use std::{
    io::Write,
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant, SystemTime},
};

use orc_launcher_kit::{
    Factory, LocalLauncher, StaticPlugin,
    orc_core::{
        Allocation, BatchSettings, Error, JobStatus, LaunchStep, Launcher, Result, StepId,
        StepStatus, step::shell_quote,
    },
    process, tools,
};

/// The launcher's name: `orc db start --launcher sge`.
pub const NAME: &str = "sge";

/// What this library provides.
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "Grid Engine: qrsh -inherit tasks inside a job, qsub jobs outside, --batch",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Launcher(|| Box::new(SgeLauncher::default())),
};

orc_launcher_kit::export_plugins!(PLUGIN);

/// How long a deleted job may take to leave `qstat`.
const JOB_END: Duration = Duration::from_secs(60);
/// How long an ended job's accounting record may take to appear beyond the configured
/// flush time, and in all when `qconf -sconf` does not say.
const ACCOUNTING_MARGIN: Duration = Duration::from_secs(5);
const ACCOUNTING_DEFAULT: Duration = Duration::from_secs(20);
/// How long a signalled task may take to end.
const TASK_END: Duration = Duration::from_secs(30);
/// How long a new task is watched for a refusal by its node's execution daemon (it comes
/// at once; a task that wrote its pid file is under way before this).
const TASK_START: Duration = Duration::from_secs(5);
/// How many times a task the execution daemon refused is started again, and how long
/// the launcher waits before each.
const TASK_REFUSALS: u32 = 5;
const REFUSED_PAUSE: Duration = Duration::from_millis(if cfg!(test) { 50 } else { 1000 });
/// The hint for a Grid Engine command missing from `PATH`.
const HINT: &str = "run orc on a Grid Engine submit host (client commands on PATH, $SGE_ROOT set)";

/// Launches steps through Grid Engine.
#[derive(Debug, Default)]
pub struct SgeLauncher {
    procs: LocalLauncher,
}

/// The id of the Grid Engine job this process runs in.
pub fn current_job() -> Option<String> {
    std::env::var("JOB_ID").ok().filter(|v| !v.is_empty())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
}

fn said(out: &Output) -> String {
    let err = text(&out.stderr);
    if err.is_empty() {
        text(&out.stdout)
    } else {
        err
    }
}

fn run(cmd: &str, args: &[&str]) -> Result<Output> {
    tools::output(NAME, Command::new(cmd).args(args), HINT)
}

/// Every job `qstat -g t -xml` lists, one entry per granted queue instance.
fn qstat() -> Result<Vec<parse::QstatJob>> {
    let out = run("qstat", &["-g", "t", "-xml"])?;
    match parse::qstat_xml(&String::from_utf8_lossy(&out.stdout)) {
        Some(jobs) if out.status.success() => Ok(jobs),
        _ => Err(Error::launcher(
            NAME,
            format!("qstat -g t -xml printed no job list: {}", said(&out)),
        )),
    }
}

/// The status of job `id` while `qstat` lists it, `None` once it has left.
fn listed_status(id: &str) -> Result<Option<StepStatus>> {
    let jobs = qstat()?;
    let Some(job) = jobs.iter().find(|j| j.id == id) else {
        return Ok(None);
    };
    parse::qstat_status(&job.state).map(Some).ok_or_else(|| {
        Error::launcher(
            NAME,
            format!(
                "job {id} is in state {}, which orc does not know",
                job.state
            ),
        )
    })
}

/// The status of batch job `id`: from `qstat`, then from its accounting record.
fn job_status(id: &str) -> Result<StepStatus> {
    if !id.bytes().all(|b| b.is_ascii_digit()) || id.is_empty() {
        return Err(Error::launcher(
            NAME,
            format!("{id:?} is neither a Grid Engine job id nor a task orc started"),
        ));
    }
    if let Some(s) = listed_status(id)? {
        return Ok(s);
    }
    // Gone from qstat: the record qacct reads is written within the flush time.
    let deadline = Instant::now() + accounting_wait();
    loop {
        let out = run("qacct", &["-j", id])?;
        if let Some(s) = parse::qacct_status(&String::from_utf8_lossy(&out.stdout)) {
            return Ok(s);
        }
        if Instant::now() >= deadline {
            return Err(Error::launcher(
                NAME,
                format!(
                    "Grid Engine knows no job {id}: qstat does not list it and qacct -j {id} says: {}",
                    said(&out)
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// How long to wait for an ended job's accounting record (read once per process).
fn accounting_wait() -> Duration {
    static WAIT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *WAIT.get_or_init(|| {
        run("qconf", &["-sconf"])
            .ok()
            .and_then(|o| parse::accounting_flush(&String::from_utf8_lossy(&o.stdout)))
            .map_or(ACCOUNTING_DEFAULT, |f| f + ACCOUNTING_MARGIN)
    })
}

/// `qdel` a job, then wait until it has left `qstat`; the status it ended with.
fn delete(id: &str) -> Result<()> {
    if listed_status(id)?.is_none() {
        return Ok(());
    }
    let out = run("qdel", &[id])?;
    if !out.status.success() && !said(&out).contains("does not exist") {
        return Err(Error::launcher(NAME, format!("qdel {id}: {}", said(&out))));
    }
    let deadline = Instant::now() + JOB_END;
    while let Some(s) = listed_status(id)? {
        if Instant::now() >= deadline {
            return Err(Error::launcher(
                NAME,
                format!(
                    "job {id} is still listed ({}) {} s after qdel",
                    s.native_state.unwrap_or_default(),
                    JOB_END.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// A name Grid Engine accepts for `qsub -N`.
fn job_name(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n.starts_with(|c: char| c.is_ascii_alphabetic()) {
        n
    } else {
        format!("j{n}")
    }
}

/// The `qsub` script that runs `step` as a batch job of its own.
pub fn batch_script(step: &LaunchStep) -> Result<String> {
    let mut s = String::from("#!/bin/sh\n");
    s.push_str(&tools::directives(
        "#$",
        [
            ("-N", job_name(&step.name)),
            ("-o", step.stdout.display().to_string()),
            ("-e", step.stderr.display().to_string()),
            ("-wd", step.cwd.display().to_string()),
            ("-S", "/bin/sh".into()),
        ]
        .map(|(k, v)| (k, Some(v))),
    )?);
    s.push_str(&tools::extra_directives("#$", &step.run.extra, false)?);
    s.push_str(&step.script_prologue()?);
    s.push_str(&format!("exec {}\n", step.command_line()));
    Ok(s)
}

/// Submit a job with `qsub -terse`, the script as a file or on stdin; its id.
fn qsub(
    args: &[String],
    script: Option<&str>,
    cwd: Option<&Path>,
    path: Option<&String>,
) -> Result<String> {
    let mut cmd = Command::new("qsub");
    cmd.arg("-terse").args(args).envs(path.map(|p| ("PATH", p)));
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let out = match script {
        None => tools::output(NAME, &mut cmd, HINT)?,
        Some(script) => {
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => Error::ExecutableNotFound {
                        name: "qsub".into(),
                        searched: " on PATH".into(),
                        hint: HINT.into(),
                    },
                    _ => Error::launcher(NAME, format!("could not run qsub: {e}")),
                })?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(script.as_bytes()).map_err(|e| {
                    Error::launcher(NAME, format!("writing the job script to qsub: {e}"))
                })?;
            }
            child
                .wait_with_output()
                .map_err(|e| Error::launcher(NAME, format!("waiting for qsub: {e}")))?
        }
    };
    match parse::qsub_job_id(&String::from_utf8_lossy(&out.stdout)) {
        Some(id) if out.status.success() => Ok(id),
        _ => Err(Error::launcher(
            NAME,
            format!("qsub refused the job: {}", said(&out)),
        )),
    }
}

/// Submit `step` as a batch job of its own; its id is the job id.
fn submit(step: &LaunchStep) -> Result<StepId> {
    std::fs::create_dir_all(&step.cwd)
        .map_err(|e| Error::io(format!("creating {}", step.cwd.display()), e))?;
    let file = step.cwd.join(format!("{}.sge.sh", step.name));
    std::fs::write(&file, batch_script(step)?)
        .map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
    let id = qsub(
        &[file.display().to_string()],
        None,
        Some(&step.cwd),
        step.env.get("PATH"),
    )?;
    tracing::debug!(job = %id, step = %step.name, "submitted");
    Ok(StepId(id))
}

/// The hosts of job `job`: `$PE_HOSTFILE` inside it, `qstat` from outside.
fn job_hosts(job: &str) -> Result<Vec<String>> {
    if current_job().as_deref() == Some(job)
        && let Ok(file) = std::env::var("PE_HOSTFILE")
        && let Ok(t) = std::fs::read_to_string(&file)
    {
        let hosts = parse::pe_hostfile(&t);
        if !hosts.is_empty() {
            return Ok(hosts);
        }
    }
    let hosts = parse::job_hosts(&qstat()?, job);
    if hosts.is_empty() {
        return Err(Error::launcher(
            NAME,
            format!("job {job} is not running: qstat lists no host for it"),
        ));
    }
    Ok(hosts)
}

/// A step started as a task of a job: `task:<job>:<host>:<local id>:<pid file>`.
struct Task<'a> {
    job: &'a str,
    host: &'a str,
    local: StepId,
    pidfile: &'a Path,
}

impl<'a> Task<'a> {
    fn parse(id: &'a StepId) -> Option<Self> {
        let mut p = id.0.strip_prefix("task:")?.splitn(4, ':');
        Some(Task {
            job: p.next()?,
            host: p.next()?,
            local: StepId(p.next()?.to_string()),
            pidfile: Path::new(p.next()?),
        })
    }
}

fn nonce() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
        ^ u128::from(std::process::id())
}

/// The command run on the compute node: it records its pid, runs the step, forwards
/// TERM/INT/HUP to it and always ends with an exit code, never by a signal (Grid Engine
/// kills the whole job when a task dies from a signal).
fn task_wrapper(step: &LaunchStep, pidfile: &Path) -> String {
    format!(
        "cd {} || exit 1; echo $$ > {}; trap 'kill -TERM $c 2>/dev/null' TERM INT HUP; \
         {} & c=$!; wait $c; r=$?; while kill -0 $c 2>/dev/null; do wait $c; r=$?; done; rm -f {1}; exit $r",
        shell_quote(&step.cwd.display().to_string()),
        shell_quote(&pidfile.display().to_string()),
        step.command_line()
    )
}

/// Errors from the process layer name this launcher.
fn ours(e: Error) -> Error {
    process::attribute(e, NAME, "qrsh", HINT)
}

impl SgeLauncher {
    /// Start `step` as a task of job `job` with `qrsh -inherit`.
    fn task(&self, step: &LaunchStep, job: &str) -> Result<StepId> {
        if step.run.tasks.unwrap_or(1) > 1 {
            return Err(Error::launcher(
                NAME,
                format!(
                    "step {} asks for {} tasks, but a Grid Engine step inside a job is one task \
                     (qrsh -inherit): launch one step per task, or run an MPI launcher built \
                     with Grid Engine support as the step",
                    step.name,
                    step.run.tasks.unwrap_or(1)
                ),
            ));
        }
        let host = match step.run.hosts.first() {
            Some(h) => h.clone(),
            None => job_hosts(job)?.remove(0),
        };
        std::fs::create_dir_all(&step.cwd)
            .map_err(|e| Error::io(format!("creating {}", step.cwd.display()), e))?;
        let pidfile = step
            .cwd
            .join(format!(".{}.{:x}.sge-task", step.name, nonce()));
        let mut wrapped = step.clone();
        wrapped.exe = "qrsh".into();
        wrapped.args = vec![
            "-inherit".into(),
            "-V".into(),
            host.clone(),
            task_wrapper(step, &pidfile),
        ];
        wrapped.env.insert("JOB_ID".into(), job.into());
        wrapped
            .env
            .entry("SGE_TASK_ID".into())
            .or_insert_with(|| "undefined".into());
        let outputs = [step.stdout.as_path(), step.stderr.as_path()];
        let mut refusals = 0;
        let local = loop {
            let local = self.procs.launch(&wrapped).map_err(ours)?;
            if refusals == TASK_REFUSALS
                || !task_start::refused(&self.procs, &local, &pidfile, &outputs, TASK_START)?
            {
                break local;
            }
            refusals += 1;
            tracing::warn!(
                step = %step.name, job, host = %host, attempt = refusals,
                "the execution daemon did not accept the task yet; starting it again"
            );
            std::thread::sleep(REFUSED_PAUSE);
        };
        Ok(StepId(format!(
            "task:{job}:{host}:{local}:{}",
            pidfile.display()
        )))
    }

    fn task_status(&self, t: &Task<'_>) -> Result<StepStatus> {
        Ok(self
            .procs
            .status(std::slice::from_ref(&t.local))
            .map_err(ours)?
            .remove(0))
    }

    /// Signal the task on its node (`qrsh -inherit <host> kill -TERM <pid>`).
    fn signal_task(t: &Task<'_>) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let pid = loop {
            match std::fs::read_to_string(t.pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            {
                Some(pid) => break pid,
                None if Instant::now() >= deadline => {
                    return Err(Error::launcher(
                        NAME,
                        format!("the task never wrote its pid to {}", t.pidfile.display()),
                    ));
                }
                None => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let out = tools::output(
            NAME,
            Command::new("qrsh")
                .args(["-inherit", t.host, "kill", "-TERM", &pid.to_string()])
                .env("JOB_ID", t.job)
                .env("SGE_TASK_ID", "undefined"),
            HINT,
        )?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::launcher(
                NAME,
                format!(
                    "signalling task {pid} of job {} on {}: {}",
                    t.job,
                    t.host,
                    said(&out)
                ),
            ))
        }
    }

    fn cancel_task(&self, t: &Task<'_>) -> Result<StepStatus> {
        let s = self.task_status(t)?;
        if s.status.is_terminal() {
            return Ok(s);
        }
        let what = format!("task of job {} on {}", t.job, t.host);
        let ended = Self::signal_task(t)
            .and_then(|()| tools::wait_cancelled(NAME, &what, TASK_END, || self.task_status(t)));
        let s = match ended {
            Ok(s) => s,
            Err(e) => {
                // Ending the local qrsh makes Grid Engine end the task, and with it the job.
                tracing::warn!(error = %e, "stopping the task through its qrsh client instead");
                self.procs.cancel(&t.local).map_err(ours)?
            }
        };
        let _ = std::fs::remove_file(t.pidfile);
        Ok(s)
    }

    /// The first parallel environment whose tasks `qrsh -inherit` can start.
    fn find_pe() -> Result<String> {
        let out = run("qconf", &["-spl"])?;
        let list = String::from_utf8_lossy(&out.stdout).into_owned();
        let usable: Vec<&str> = list
            .split_whitespace()
            .filter(|pe| {
                run("qconf", &["-sp", pe]).is_ok_and(|out| {
                    parse::pe_controls_slaves(&String::from_utf8_lossy(&out.stdout))
                })
            })
            .collect();
        // One a queue offers first: a job asking for one that no queue has waits for ever
        // (a fresh installation's `make`, say).
        let offered = Self::offered_pes();
        if let Some(pe) = usable.iter().find(|pe| offered.iter().any(|o| o == *pe)) {
            return Ok(pe.to_string());
        }
        if let Some(pe) = usable.first() {
            return Ok(pe.to_string());
        }
        Err(Error::launcher(
            NAME,
            format!(
                "no Grid Engine parallel environment has control_slaves TRUE ({}), and orc starts \
                 shards inside a job with qrsh -inherit: ask the admins for one, or name one with \
                 --batch-arg pe=<name>",
                if list.trim().is_empty() {
                    "qconf -spl lists none".to_string()
                } else {
                    format!(
                        "qconf -spl: {}",
                        list.split_whitespace().collect::<Vec<_>>().join(", ")
                    )
                }
            ),
        ))
    }

    /// The parallel environments some queue offers (`pe_list` of `qconf -sq` for every
    /// queue of `qconf -sql`); empty when that cannot be read.
    fn offered_pes() -> Vec<String> {
        let Ok(out) = run("qconf", &["-sql"]) else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|q| run("qconf", &["-sq", q]).ok())
            .flat_map(|out| parse::queue_pes(&String::from_utf8_lossy(&out.stdout)))
            .collect()
    }

    /// Wait until batch job `job` runs.
    fn wait_running(job: &str, timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let s = job_status(job)?;
            match s.status {
                JobStatus::Running if s.detail.is_none() => return Ok(()),
                JobStatus::Queued | JobStatus::Paused => {}
                _ => {
                    return Err(Error::launcher(
                        NAME,
                        format!("batch job {job} did not start: {s} (see qstat -j {job})"),
                    ));
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::launcher(
                    NAME,
                    format!(
                        "timed out waiting for batch job {job} to leave the queue (still {}; raise the queue timeout)",
                        s.native_state.unwrap_or_default()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Launcher for SgeLauncher {
    fn name(&self) -> &str {
        NAME
    }

    fn launch(&self, step: &LaunchStep) -> Result<StepId> {
        step.refuse_mpmd(NAME)?;
        let job = step
            .run
            .allocation
            .clone()
            .or_else(|| step.env.get("JOB_ID").cloned())
            .or_else(current_job);
        match job {
            Some(job) => self.task(step, &job),
            None => submit(step),
        }
    }

    fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>> {
        ids.iter()
            .map(|id| match Task::parse(id) {
                Some(t) => self.task_status(&t),
                None => job_status(&id.0),
            })
            .collect()
    }

    fn cancel(&self, id: &StepId) -> Result<StepStatus> {
        if let Some(t) = Task::parse(id) {
            return self.cancel_task(&t);
        }
        let s = job_status(&id.0)?;
        if s.status.is_terminal() {
            return Ok(s);
        }
        delete(&id.0)?;
        tools::wait_cancelled(NAME, &format!("job {id} after qdel"), JOB_END, || {
            job_status(&id.0)
        })
    }

    fn allocation(&self) -> Result<Allocation> {
        let job = current_job().ok_or_else(|| {
            Error::launcher(
                NAME,
                "not inside a Grid Engine job ($JOB_ID is unset): start orc inside one (qsub, \
                 qrsh), or use --batch",
            )
        })?;
        let hosts = job_hosts(&job)?;
        Ok(Allocation::new(Some(job), hosts))
    }

    fn allocate(&self, batch: &BatchSettings, name: &str) -> Result<Allocation> {
        let pe = match batch.extra.get("pe") {
            Some(Some(pe)) => tools::directive_value(pe)?.to_string(),
            _ => Self::find_pe()?,
        };
        let slots = batch.nodes.unwrap_or(1).max(1) * batch.tasks_per_node.unwrap_or(1).max(1);
        let mut args: Vec<String> = [
            "-N",
            &job_name(name),
            "-o",
            "/dev/null",
            "-j",
            "y",
            "-S",
            "/bin/sh",
            "-pe",
            &pe,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(slots.to_string());
        if let Some(t) = batch.walltime_secs {
            args.extend(["-l".into(), format!("h_rt={t}")]);
        }
        if let Some(a) = &batch.account {
            args.extend(["-A".into(), tools::directive_value(a)?.into()]);
        }
        if let Some(q) = &batch.queue {
            args.extend(["-q".into(), tools::directive_value(q)?.into()]);
        }
        for (k, v) in batch.extra.iter().filter(|(k, _)| k.as_str() != "pe") {
            args.push(format!("-{}", tools::directive_key(k)?));
            if let Some(v) = v {
                args.push(tools::directive_value(v)?.into());
            }
        }
        let job = qsub(&args, Some("exec sleep infinity\n"), None, None)?;
        tracing::info!(job = %job, pe = %pe, slots, "batch job submitted; waiting for it to run");
        let hosts = Self::wait_running(&job, batch.queue_timeout_secs.map(Duration::from_secs))
            .and_then(|()| job_hosts(&job));
        match hosts {
            Ok(hosts) => Ok(Allocation::new(Some(job), hosts)),
            Err(e) => {
                let _ = delete(&job);
                Err(e)
            }
        }
    }

    fn release(&self, allocation: &str) -> Result<()> {
        delete(allocation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_round_trip() {
        let id = StepId("task:12:node1:4242@99:/scratch/a:b/.x.sge-task".into());
        let t = Task::parse(&id).unwrap();
        assert_eq!(
            (t.job, t.host, t.local.0.as_str()),
            ("12", "node1", "4242@99")
        );
        assert_eq!(t.pidfile, Path::new("/scratch/a:b/.x.sge-task"));
        assert!(Task::parse(&StepId("12".into())).is_none());
    }

    /// A job's task started through a stand-in `qrsh` (first on the step's `PATH`) that
    /// refuses the first `refuse` starts the way Grid Engine's does, then runs the command.
    /// Returns the step's final status, its output and errors, and how often `qrsh` was
    /// started.
    fn refused_task(refuse: u32, command: &str) -> (StepStatus, String, String, u32) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        let qrsh = bin.join("qrsh");
        std::fs::write(
            &qrsh,
            format!(
                "#!/bin/sh\nn=$(cat \"$0.count\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$0.count\"\n\
                 if [ $n -le {refuse} ]; then echo \"error: executing task of job $JOB_ID failed: \
                 execution daemon on host \\\"$3\\\" didn't accept task\" >&2; exit 1; fi\n\
                 [ \"$1 $2\" = \"-inherit -V\" ] || exit 9\nexec sh -c \"$4\"\n"
            ),
        )
        .expect("qrsh");
        std::fs::set_permissions(&qrsh, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut step = LaunchStep::new("app", "sh", dir.path().join("w"))
            .args(["-c", command])
            .env("PATH", &path);
        step.run.hosts = vec!["node1".into()];
        step.run.allocation = Some("7".into());
        let l = SgeLauncher::default();
        let id = l.launch(&step).expect("launch");
        let s = orc_launcher_kit::testing::wait_terminal(&l, &id);
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let starts = read(&bin.join("qrsh.count"))
            .trim()
            .parse()
            .expect("a count");
        (s, read(&step.stdout), read(&step.stderr), starts)
    }

    #[test]
    fn a_refused_task_is_started_again() {
        let (s, out, _, starts) = refused_task(2, "echo ran on $JOB_ID");
        assert_eq!(
            (s.status, s.exit_code),
            (JobStatus::Completed, Some(0)),
            "{s}"
        );
        assert_eq!(out, "ran on 7\n");
        assert_eq!(starts, 3);
    }

    #[test]
    fn a_task_refused_every_time_fails_with_grid_engines_words() {
        let (s, out, err, starts) = refused_task(99, "echo never");
        assert_eq!((s.status, s.exit_code), (JobStatus::Failed, Some(1)), "{s}");
        assert_eq!(starts, TASK_REFUSALS + 1);
        assert_eq!(out, "");
        assert!(
            err.contains("execution daemon on host \"node1\" didn't accept task"),
            "{err}"
        );
    }

    #[test]
    fn a_task_that_fails_by_itself_is_not_started_again() {
        let (s, _, err, starts) = refused_task(0, "echo failing >&2; exit 3");
        assert_eq!((s.status, s.exit_code), (JobStatus::Failed, Some(3)), "{s}");
        assert_eq!((err.as_str(), starts), ("failing\n", 1));
    }

    #[test]
    fn hostile_values_never_reach_a_job_script() {
        for v in orc_launcher_kit::testing::scripts::HOSTILE {
            let mut step = LaunchStep::new("app", "/bin/true", "/w");
            step.run.extra.insert("l".into(), Some(v.into()));
            assert!(batch_script(&step).is_err(), "{v:?}");
            let step = LaunchStep::new("app", "/bin/true", "/w").env(v, "x");
            assert!(batch_script(&step).is_err(), "{v:?}");
        }
        let step = LaunchStep::new("app", "/bin/echo", "/w")
            .args(["$(id)"])
            .env("X", "a\n$(id)");
        let s = batch_script(&step).unwrap();
        assert!(
            s.contains("export X='a\n$(id)'\nexec /bin/echo '$(id)'\n"),
            "{s}"
        );
    }

    #[test]
    fn scripts_and_names() {
        assert_eq!(job_name("orchestrator_0"), "orchestrator_0");
        assert_eq!(job_name("0 x/y"), "j0_x_y");
        let s = LaunchStep::new("app", "/bin/echo", "/tmp/w d")
            .args(["a b"])
            .env("K", "it's");
        // A directory with a space cannot be a directive (`#$ -wd`): a clear error.
        assert!(batch_script(&s).is_err());
        let mut plain = s.clone();
        plain.cwd = "/tmp/wd".into();
        plain.stdout = "/tmp/wd/app.out".into();
        plain.stderr = "/tmp/wd/app.err".into();
        let script = batch_script(&plain).unwrap();
        assert!(script.contains("#$ -N app\n"), "{script}");
        assert!(script.contains("cd /tmp/wd || exit 1\n"), "{script}");
        assert!(script.contains("export K='it'\\''s'\n"), "{script}");
        assert!(script.ends_with("exec /bin/echo 'a b'\n"), "{script}");
        let w = task_wrapper(&s, Path::new("/tmp/w d/.p"));
        assert!(
            w.starts_with("cd '/tmp/w d' || exit 1; echo $$ > '/tmp/w d/.p';"),
            "{w}"
        );
        assert!(w.contains("/bin/echo 'a b' & c=$!"), "{w}");
    }
}
