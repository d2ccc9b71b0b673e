//! The Slurm launcher for [orc](orc_core).
//!
//! Steps run with `srun --overlap` inside an allocation: the one this process runs in
//! (`$SLURM_JOB_ID`), or one made with `salloc --no-shell` (see [`allocate`]). A step id is
//! Slurm's own `<job>.<step>`, so any later process can watch it (`scontrol show step`) and
//! cancel it (`scancel`). While the launching process lives it also knows each step's exit
//! code from its `srun`. Works without accounting: the controller (`scontrol show job|step`)
//! answers while it remembers a job, and only then are Slurm's records asked
//! ([`accounting_status`]: `sacct` where accounting exists, `sacct -c` for the job completion
//! log). [`parse`] holds the output parsers and the state table, tested on captured output.
//!
//! Outside any allocation a step is submitted as a batch job of its own
//! ([`batch::step_script`]); its id is the job id, watched with `scontrol show job`.
//!
//! Batch mode ([`Launcher::allocate`]): `sbatch --parsable` submits a generated script
//! ([`batch::script`]) whose job holds the nodes; the shards join it as steps and
//! [`Launcher::release`] cancels it.
//!
//! ```
//! use orc_core::Launcher;
//! let l = orc_launcher_slurm::SlurmLauncher::new();
//! assert_eq!(l.name(), "slurm");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod batch;
pub mod parse;

use std::{
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use orc_core::{
    Allocation, BatchSettings, Error, JobStatus, LaunchStep, Launcher, Result, StepId, StepStatus,
};
use orc_launcher_kit::{
    Factory, StaticPlugin,
    process::{Children, exit_status},
    tools,
};

/// The launcher's name.
pub const NAME: &str = "slurm";

/// Registration of [`SlurmLauncher`] with the orc plugin host.
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "Slurm: srun steps in an allocation, sbatch jobs, --batch orchestrators; scontrol, scancel",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Launcher(|| Box::new(SlurmLauncher::new())),
};
orc_launcher_kit::register_plugin!(PLUGIN);

/// How long `scancel` of a batch job may take to end it.
const JOB_END: Duration = Duration::from_secs(60);

/// How long a cancelled batch job may stay COMPLETING before `release` stops waiting for
/// it (healthy nodes finish in well under a second).
const COMPLETING_GRACE: Duration = Duration::from_secs(3);

/// How long a launched step may take to appear in `squeue`.
const STEP_APPEAR: Duration = Duration::from_secs(30);

/// Launches steps through Slurm.
#[derive(Debug, Default)]
pub struct SlurmLauncher {
    children: Children<String>,
    counter: AtomicU64,
    /// Batch jobs `allocate` is waiting for.
    pending: tools::PendingJobs,
}

fn run(cmd: &str, args: &[&str]) -> Result<std::process::Output> {
    tools::output(
        NAME,
        Command::new(cmd).args(args),
        "run orc on a Slurm login or compute node (slurm-client installed)",
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
}

/// The job id of the allocation this process runs in.
pub fn current_job() -> Option<String> {
    ["SLURM_JOB_ID", "SLURM_JOBID"]
        .iter()
        .find_map(|k| std::env::var(k).ok())
        .filter(|v| !v.is_empty())
}

/// Hosts of job `job` (`scontrol show job`, expanded with `scontrol show hostnames`).
pub fn job_hosts(job: &str) -> Result<Vec<String>> {
    let out = run("scontrol", &["show", "job", job])?;
    if !out.status.success() {
        return Err(Error::launcher(
            NAME,
            format!("scontrol show job {job}: {}", text(&out.stderr)),
        ));
    }
    let info = text(&out.stdout);
    let list = info
        .split_whitespace()
        .find_map(|w| w.strip_prefix("NodeList="))
        .filter(|l| *l != "(null)")
        .ok_or_else(|| {
            Error::launcher(
                NAME,
                format!(
                    "job {job} has no nodes yet (state: {:?})",
                    parse::scontrol_job_status(&info).map(|s| s.0)
                ),
            )
        })?;
    let out = run("scontrol", &["show", "hostnames", list])?;
    Ok(text(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|h| !h.is_empty())
        .collect())
}

/// Get an allocation of `nodes` nodes (`salloc --no-shell`) and return its job id.
pub fn allocate(nodes: u32, name: &str, extra: &[&str]) -> Result<String> {
    let n = nodes.to_string();
    let mut args = vec!["--no-shell", "-N", &n, "-J", name];
    args.extend_from_slice(extra);
    let out = run("salloc", &args)?;
    parse::salloc_job_id(&String::from_utf8_lossy(&out.stderr))
        .map_err(|e| Error::launcher(NAME, format!("salloc refused: {e}")))
}

/// Release an allocation (`scancel`).
pub fn release(job: &str) -> Result<()> {
    let out = run("scancel", &[job])?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::launcher(
            NAME,
            format!("scancel {job}: {}", text(&out.stderr)),
        ))
    }
}

/// Submit a batch script on stdin (`sbatch --parsable`) and return the job id.
fn submit(script: &str) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("sbatch")
        .arg("--parsable")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::ExecutableNotFound {
                    name: "sbatch".into(),
                    searched: " on PATH".into(),
                    hint: "run orc on a Slurm login node (slurm-client installed)".into(),
                }
            } else {
                Error::launcher(NAME, format!("could not run sbatch: {e}"))
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(|e| {
            Error::launcher(NAME, format!("writing the batch script to sbatch: {e}"))
        })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::launcher(NAME, format!("waiting for sbatch: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match parse::sbatch_job_id(&stdout) {
        Some(id) if out.status.success() => Ok(id),
        _ => Err(Error::launcher(
            NAME,
            format!(
                "sbatch refused the job ({}): {}",
                out.status,
                text(&out.stderr).trim_start_matches("sbatch: ")
            ),
        )),
    }
}

/// What `scontrol show job` prints about job `job`; `None` once Slurm has forgotten it.
fn job_info(job: &str) -> Result<Option<String>> {
    let out = run("scontrol", &["show", "job", job])?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if err.contains("Invalid job id") || err.contains("not found") {
            return Ok(None);
        }
        return Err(Error::launcher(
            NAME,
            format!("scontrol show job {job}: {}", err.trim()),
        ));
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The state of job `job` in its `scontrol show job` output `info`, with Slurm's reason
/// as the detail while it is queued.
fn job_status(job: &str, info: &str) -> Result<StepStatus> {
    let (state, exit) = parse::scontrol_job_status(info).ok_or_else(|| {
        Error::launcher(
            NAME,
            format!(
                "scontrol show job {job} printed no JobState: {}",
                info.trim()
            ),
        )
    })?;
    let mut st = parse::status(&state, exit).ok_or_else(|| {
        Error::launcher(
            NAME,
            format!("job {job} is in state {state}, which orc does not know"),
        )
    })?;
    if st.status == JobStatus::Queued {
        st.detail = parse::scontrol_field(info, "Reason").filter(|r| r != "None");
    }
    Ok(st)
}

/// The state of job `job` from `scontrol show job`; `None` once Slurm has forgotten it.
fn job_state(job: &str) -> Result<Option<StepStatus>> {
    job_info(job)?
        .map(|info| job_status(job, &info))
        .transpose()
}

/// The final state of job or step `id` from Slurm's records once the controller has
/// forgotten it: the accounting database (`sacct`) where there is one, else the job
/// completion log (`sacct -c`, jobs only, as with `JobCompType=jobcomp/filetxt`). `None`
/// when neither knows it (or the site keeps neither).
pub fn accounting_status(id: &str) -> Result<Option<StepStatus>> {
    let fields = [
        "--format=jobid,state,exitcode",
        "--parsable2",
        "--noheader",
        "-j",
        id,
    ];
    for completion_log in [false, true] {
        let mut args: Vec<&str> = Vec::new();
        if completion_log {
            args.push("-c");
        }
        args.extend(fields);
        let out = match run("sacct", &args) {
            Ok(out) => out,
            // A site without sacct keeps no records orc could read.
            Err(Error::ExecutableNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some((state, exit)) = parse::sacct_status(&text, id) {
            let mut s = parse::status(&state, exit).ok_or_else(|| {
                Error::launcher(
                    NAME,
                    format!("{id} is in state {state}, which orc does not know"),
                )
            })?;
            s.detail = Some(if completion_log {
                "from the job completion log".into()
            } else {
                "from accounting".into()
            });
            return Ok(Some(s));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || err.contains("accounting storage is disabled") {
            continue;
        }
        tracing::debug!(id, error = %err.trim(), "sacct failed");
    }
    Ok(None)
}

/// Why pending job `job` (its `scontrol show job` output `info`) can never start, with
/// what to change, when Slurm's reason says so (see [`parse::hopeless_reason`]).
fn hopeless(job: &str, info: &str) -> Option<String> {
    let reason = parse::scontrol_field(info, "Reason")?;
    if !parse::hopeless_reason(&reason) {
        return None;
    }
    let partition = parse::scontrol_field(info, "Partition").unwrap_or_default();
    let asked = parse::scontrol_field(info, "NumNodes").unwrap_or_default();
    let nodes: Option<u64> = run("sinfo", &["-h", "-p", &partition, "-o", "%D"])
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok());
    // `NumNodes=2` or, for a range, `NumNodes=2-2`: the least it needs counts.
    let least = asked.split('-').next().and_then(|n| n.parse::<u64>().ok());
    let too_many = matches!(
        (least, nodes),
        (Some(a), Some(n)) if a > n
    );
    let advice = match reason.as_str() {
        "PartitionNodeLimit" | "PartitionConfig" if too_many => {
            let n = nodes.unwrap_or_default();
            format!(
                "it asks for {} node(s) but partition {partition} has {n}: use --nodes {n} or fewer, with --shards-per-host so the shards fit",
                least.unwrap_or_default()
            )
        }
        "PartitionTimeLimit"
        | "QOSMaxWallDurationPerJobLimit"
        | "AssocMaxWallDurationPerJobLimit" => {
            "its walltime is above the limit: lower --walltime".into()
        }
        "InvalidAccount" | "InvalidQOS" => "check --account and --batch-arg qos".into(),
        _ => "change the request (--nodes, --walltime, --queue, --account)".into(),
    };
    Some(format!(
        "batch job {job} can never start (Slurm says {reason}): {advice}"
    ))
}

/// Wait while job `job` is queued (at most `limit`), telling `seen` each state it is seen
/// queued in; an error if it ends instead of running, or can never start.
fn wait_running(
    job: &str,
    limit: Option<Duration>,
    mut seen: impl FnMut(&StepStatus),
) -> Result<()> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut last_note = Instant::now();
    loop {
        let info = job_info(job)?;
        let state = info.as_deref().map(|i| job_status(job, i)).transpose()?;
        if let Some(s) = &state
            && s.status == JobStatus::Queued
        {
            seen(s);
        }
        match state {
            Some(s) if s.status == JobStatus::Running => return Ok(()),
            Some(s) if s.status.is_terminal() => {
                return Err(Error::launcher(
                    NAME,
                    format!("batch job {job} ended before it ran ({s})"),
                ));
            }
            None => {
                return Err(Error::launcher(
                    NAME,
                    format!("batch job {job} vanished from Slurm before it ran"),
                ));
            }
            Some(s) if limit.is_some_and(|l| started.elapsed() >= l) => {
                return Err(Error::Timeout {
                    what: format!(
                        "batch job {job} to leave the queue (still {}; raise the queue timeout)",
                        s.native_state.unwrap_or_default()
                    ),
                    seconds: started.elapsed().as_secs_f64(),
                });
            }
            Some(_) if let Some(why) = info.as_deref().and_then(|i| hopeless(job, i)) => {
                return Err(Error::launcher(NAME, why));
            }
            Some(s) => {
                if last_note.elapsed() >= Duration::from_secs(30) {
                    tracing::info!(job, state = ?s.native_state, "batch job still waiting");
                    last_note = Instant::now();
                }
            }
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

impl SlurmLauncher {
    /// A launcher for steps in the current allocation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Start `srun` (its options in `cmd`) running `step`'s program, and return the step id
    /// it reports.
    fn spawn_srun(&self, mut cmd: Command, step: &LaunchStep, name: &str) -> Result<StepId> {
        cmd.arg(&step.exe)
            .args(&step.args)
            .envs(&step.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::ExecutableNotFound {
                    name: "srun".into(),
                    searched: " on PATH".into(),
                    hint: "install slurm-client".into(),
                }
            } else {
                Error::launcher(NAME, format!("could not start srun: {e}"))
            }
        })?;
        // `srun -v` names the step it launches ("launching StepId=<job>.<step> ..."); a
        // thread reads its stderr, so the pipe never fills, and keeps the last lines for errors.
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| Error::launcher(NAME, "srun has no stderr"))?;
        let (tx, rx) = std::sync::mpsc::channel::<std::result::Result<String, String>>();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut tail: Vec<String> = Vec::new();
            let mut sent = false;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(|l| l.ok())
            {
                if !sent && let Some(id) = parse::srun_step_id(&line) {
                    let _ = tx.send(Ok(id));
                    sent = true;
                } else if !line.contains("srun: ") || line.contains("error") {
                    tail.push(line);
                    if tail.len() > 20 {
                        tail.remove(0);
                    }
                }
            }
            if !sent {
                let _ = tx.send(Err(tail.join("\n")));
            }
        });
        match rx.recv_timeout(STEP_APPEAR) {
            Ok(Ok(id)) => {
                tracing::debug!(step = %id, name = %name, "srun step started");
                self.children.insert(id.clone(), child);
                Ok(StepId(id))
            }
            Ok(Err(tail)) => {
                let exit = child.wait().map(|e| e.to_string()).unwrap_or_default();
                Err(Error::launcher(
                    NAME,
                    format!(
                        "srun exited ({exit}) before its step started: {}",
                        tail.trim()
                    ),
                ))
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(Error::launcher(
                    NAME,
                    format!(
                        "step {name} did not start within {} s",
                        STEP_APPEAR.as_secs()
                    ),
                ))
            }
        }
    }

    fn job(&self) -> Result<String> {
        current_job().ok_or_else(|| {
            Error::launcher(
                NAME,
                "not inside a Slurm allocation: start orc inside one (`salloc -N <nodes>`), or set SLURM_JOB_ID to an allocation you own",
            )
        })
    }

    fn status_one(&self, id: &StepId) -> Result<StepStatus> {
        if !id.0.contains('.') {
            if id.0.is_empty() || !id.0.chars().all(|c| c.is_ascii_digit() || c == '_') {
                return Err(Error::launcher(
                    NAME,
                    format!("`{id}` is not a Slurm job or step id (<job> or <job>.<step>)"),
                ));
            }
            if let Some(s) = job_state(&id.0)? {
                return Ok(s);
            }
            return accounting_status(&id.0)?.ok_or_else(|| {
                Error::launcher(
                    NAME,
                    format!(
                        "Slurm no longer knows job {id} (it ended more than MinJobAge ago, or never existed), and neither accounting nor the job completion log has it"
                    ),
                )
            });
        }
        if let Ok(Some(exit)) = self.children.exited(&id.0) {
            return Ok(exit_status(exit, "srun exited"));
        }
        let out = run("scontrol", &["show", "step", &id.0])?;
        let info = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success()
            && let Some(state) = info
                .split_whitespace()
                .find_map(|w| w.strip_prefix("State="))
        {
            return parse::status(state, None).ok_or_else(|| {
                Error::launcher(
                    NAME,
                    format!("step {id} is in state {state}, which orc does not know"),
                )
            });
        }
        let gone = |t: &str| {
            t.contains("not found")
                || t.contains("Invalid job step")
                || t.contains("Invalid job id")
        };
        if gone(&info) || gone(&err) {
            // Our own srun exits moments after its step leaves Slurm's tables: wait for it,
            // so the exit code is known.
            if let Some(exit) = self.children.wait_exited(&id.0, Duration::from_secs(5)) {
                return Ok(exit_status(exit, "srun exited"));
            }
            // The step has left Slurm's tables: it ended. Accounting may know how.
            if let Some(s) = accounting_status(&id.0)? {
                return Ok(s);
            }
            return Ok(StepStatus::from_parts(
                JobStatus::Completed,
                Some("gone".into()),
                None,
                Some("the step has ended; its exit code is unknown to this process".into()),
            ));
        }
        let said = if err.trim().is_empty() {
            format!("unexpected output: {}", info.trim())
        } else {
            err.trim().to_string()
        };
        Err(Error::launcher(
            NAME,
            format!("scontrol show step {id}: {said}"),
        ))
    }
}

impl Launcher for SlurmLauncher {
    fn name(&self) -> &str {
        NAME
    }

    fn launch(&self, step: &LaunchStep) -> Result<StepId> {
        let job = match (&step.run.allocation, current_job()) {
            (Some(j), _) => j.clone(),
            (None, Some(j)) => j,
            // Outside any allocation a step is a batch job of its own.
            (None, None) => {
                step.refuse_mpmd(NAME)?;
                std::fs::create_dir_all(&step.cwd)
                    .map_err(|e| Error::io(format!("creating {}", step.cwd.display()), e))?;
                let id = submit(&batch::step_script(step)?)?;
                tracing::debug!(job = %id, step = %step.name, "submitted");
                return Ok(StepId(id));
            }
        };
        // Step names are unique, so the step can be found again.
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{}-{n}", step.name, std::process::id());
        let mut cmd = Command::new("srun");
        cmd.args(["-v", "--jobid", &job, "--overlap", "--job-name", &name])
            .arg(format!("--chdir={}", step.cwd.display()));
        if step.mpmd.is_empty() {
            // One task on one node unless the step asks for more (an application's ranks).
            let run = &step.run;
            let parallel =
                run.tasks.is_some() || run.nodes.is_some() || run.tasks_per_node.is_some();
            if parallel {
                for (flag, n) in [
                    ("--nodes", run.nodes),
                    ("--ntasks", run.tasks),
                    ("--ntasks-per-node", run.tasks_per_node),
                ] {
                    if let Some(n) = n {
                        cmd.arg(format!("{flag}={n}"));
                    }
                }
                if !run.hosts.is_empty() {
                    cmd.arg(format!("--nodelist={}", run.hosts.join(",")));
                }
            } else {
                cmd.args(["--nodes", "1", "--ntasks", "1"]);
                if let Some(h) = run.hosts.first() {
                    cmd.arg(format!("--nodelist={h}"));
                }
            }
            cmd.arg(format!("--output={}", step.stdout.display()))
                .arg(format!("--error={}", step.stderr.display()));
        } else {
            // MPMD: one task per part, rank i running part i (`--multi-prog`), on the
            // parts' hosts in rank order; each part writes its own output files.
            let parts = step.mpmd_parts()?;
            let (out, err) = step.launcher_output();
            // A lost node ends only its own ranks, not the whole step (`--no-kill`).
            cmd.arg(format!("--ntasks={}", parts.len()))
                .arg("--overcommit")
                .arg("--no-kill")
                .arg(format!("--output={}", out.display()))
                .arg(format!("--error={}", err.display()));
            let hosts: Option<Vec<&str>> = parts.iter().map(|p| p.host.as_deref()).collect();
            if let Some(hosts) = hosts {
                cmd.arg(format!("--nodelist={}", hosts.join(",")))
                    .arg("--distribution=arbitrary");
            }
            let conf = step.cwd.join(format!("{}.multi-prog", step.name));
            let lines: String = parts
                .iter()
                .enumerate()
                .map(|(rank, p)| {
                    format!(
                        "{rank} /bin/sh {}\n",
                        orc_core::step::shell_quote(&p.script.display().to_string())
                    )
                })
                .collect();
            std::fs::write(&conf, lines)
                .map_err(|e| Error::io(format!("writing {}", conf.display()), e))?;
            cmd.arg("--multi-prog");
            let mut program = step.clone();
            program.exe = conf;
            program.args.clear();
            return self.spawn_srun(cmd, &program, &name);
        }
        if let Some(c) = step.run.cpus_per_task {
            cmd.arg(format!("--cpus-per-task={c}"));
        }
        for (k, v) in &step.run.extra {
            match v {
                Some(v) => cmd.arg(format!("--{k}={v}")),
                None => cmd.arg(format!("--{k}")),
            };
        }
        self.spawn_srun(cmd, step, &name)
    }

    fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>> {
        ids.iter().map(|id| self.status_one(id)).collect()
    }

    fn cancel(&self, id: &StepId) -> Result<StepStatus> {
        let s = self.status_one(id)?;
        if s.status.is_terminal() {
            return Ok(s);
        }
        let out = run("scancel", &[&id.0])?;
        if !out.status.success() {
            return Err(Error::launcher(
                NAME,
                format!("scancel {id}: {}", text(&out.stderr)),
            ));
        }
        let s = tools::wait_cancelled(
            NAME,
            &format!("{id} after scancel"),
            Duration::from_secs(30),
            || self.status_one(id),
        )?;
        self.children.forget(&id.0);
        Ok(s)
    }

    fn allocate(&self, batch: &BatchSettings, name: &str) -> Result<Allocation> {
        let nodes = batch.nodes.unwrap_or(1).max(1);
        let script = batch::script(batch, name, nodes)?;
        let job = submit(&script)?;
        tracing::info!(job = %job, nodes, "batch job submitted; waiting for it to run");
        let waiting = self.pending.waiting(name, &job);
        let ran = wait_running(
            &job,
            batch.queue_timeout_secs.map(Duration::from_secs),
            |st| self.pending.saw(name, st),
        );
        drop(waiting);
        match ran {
            Ok(()) => {}
            Err(e) => {
                let _ = release(&job);
                return Err(e);
            }
        }
        let hosts = match job_hosts(&job) {
            Ok(h) => h,
            Err(e) => {
                let _ = release(&job);
                return Err(e);
            }
        };
        Ok(Allocation::new(Some(job), hosts))
    }

    fn queue_state(&self, name: &str) -> Result<Option<orc_core::QueueState>> {
        Ok(self.pending.seen(name))
    }

    fn cancel_allocation(&self, name: &str) -> Result<()> {
        match self.pending.job(name) {
            // The waiting allocate sees the job end and reports it.
            Some(job) => release(&job),
            None => Ok(()),
        }
    }

    fn release(&self, allocation: &str) -> Result<()> {
        match job_state(allocation)? {
            None => return Ok(()),
            Some(s) if s.status.is_terminal() => return Ok(()),
            Some(_) => release(allocation)?,
        }
        let cancelled = Instant::now();
        let deadline = cancelled + JOB_END;
        loop {
            match job_state(allocation)? {
                None => return Ok(()),
                Some(s) if s.status.is_terminal() => return Ok(()),
                // Cancelled and ending: what is left waits on a node that does not answer
                // (lost, say); Slurm ends it when the node answers or is declared down.
                // Nothing of the job runs anywhere else, so the caller need not wait.
                Some(s)
                    if s.native_state.as_deref() == Some("COMPLETING")
                        && cancelled.elapsed() >= COMPLETING_GRACE =>
                {
                    tracing::info!(
                        job = allocation,
                        "batch job cancelled; still completing on a node that does not answer"
                    );
                    return Ok(());
                }
                Some(s) if Instant::now() >= deadline => {
                    return Err(Error::launcher(
                        NAME,
                        format!(
                            "batch job {allocation} still {} {} s after scancel",
                            s.native_state.unwrap_or_default(),
                            JOB_END.as_secs()
                        ),
                    ));
                }
                Some(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn allocation(&self) -> Result<Allocation> {
        let job = self.job()?;
        let hosts = job_hosts(&job)?;
        Ok(Allocation::new(Some(job), hosts))
    }
}
