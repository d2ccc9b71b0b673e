//! Launchers for workload managers whose steps inside a job are processes of a parallel
//! launcher on the node that runs orc (PBS with PALS `mpiexec`, LSF with `jsrun`, Cobalt
//! with `aprun`). A [`Wlm`] supplies the scheduler's own commands; [`WlmLauncher`] is the
//! [`Launcher`] around it, and its step ids name one of three things:
//!
//! * `agent:<job>:<id>`: a step an agent-held batch job runs ([`crate::agent`]);
//! * `<pid>@<start>`: a parallel-launch process on this node, tracked by a
//!   [`LocalLauncher`];
//! * anything else: a batch job of its own, known to the [`Scheduler`].

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use orc_core::{
    Allocation, BatchSettings, Error, LaunchStep, Launcher, Result, StepId, StepStatus,
};

use crate::{
    LocalLauncher,
    agent::{self, Agent, Scheduler},
};

/// A workload manager's side of a [`WlmLauncher`]; its [`Scheduler`] part gives batch
/// jobs (submit, status, delete) and agent-held jobs.
pub trait Wlm: Scheduler + Send + Sync {
    /// The batch script that runs `step` as a job of its own (it runs outside any job);
    /// the launcher writes it to `<cwd>/<name>.<launcher>.sh` and submits it.
    fn step_script(&self, step: &LaunchStep) -> Result<String>;
    /// `step` (inside a job) as the local process that runs it with the parallel launcher.
    fn parallel(&self, step: &LaunchStep) -> Result<LaunchStep>;
    /// An MPMD `step` (inside a job) as the local process that runs all its parts.
    fn parallel_mpmd(&self, step: &LaunchStep) -> Result<LaunchStep>;
    /// The job this process runs in, with its hosts; outside one, an error saying how to
    /// get one.
    fn allocation(&self) -> Result<Allocation>;
    /// Re-label an error of the process layer as this launcher's (see
    /// [`crate::process::attribute`]).
    fn errors(&self, e: Error) -> Error;
    /// How long a deleted batch job may take to end.
    fn cancel_limit(&self) -> Duration {
        Duration::from_secs(60)
    }
}

/// The [`Launcher`] of a [`Wlm`].
#[derive(Debug, Default)]
pub struct WlmLauncher<W> {
    procs: LocalLauncher,
    wlm: W,
    /// The state directory given by [`Launcher::use_state_dir`].
    state_dir: Mutex<Option<PathBuf>>,
    /// Batch jobs `allocate` is waiting for.
    pending: crate::tools::PendingJobs,
}

impl<W: Wlm + Default> WlmLauncher<W> {
    /// A launcher for steps in the current job (or batch jobs outside one).
    pub fn new() -> Self {
        Self::default()
    }
}

impl<W: Wlm> WlmLauncher<W> {
    fn errors(&self) -> impl Fn(Error) -> Error + '_ {
        |e| self.wlm.errors(e)
    }

    /// Where the job agents' directories are: under the state directory this launcher
    /// was given, else under the default one.
    fn agents(&self) -> PathBuf {
        let given = self
            .state_dir
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        agent::root(&given.unwrap_or_else(orc_core::settings::default_state_dir))
    }

    fn agent(&self, job: &str) -> Agent {
        Agent::new(self.wlm.launcher(), job, &self.agents())
    }

    /// Write `step`'s batch script next to its output and submit it; the job id.
    fn submit_step(&self, step: &LaunchStep) -> Result<StepId> {
        let io = |what: &str, p: &Path| {
            let what = format!("{what} {}", p.display());
            move |e| Error::io(what, e)
        };
        std::fs::create_dir_all(&step.cwd).map_err(io("creating", &step.cwd))?;
        let file = step
            .cwd
            .join(format!("{}.{}.sh", step.name, self.wlm.launcher()));
        // Readable by its owner only, as every file orc writes.
        std::io::Write::write_all(
            &mut orc_secure::create_private(&file)?,
            self.wlm.step_script(step)?.as_bytes(),
        )
        .map_err(io("writing", &file))?;
        let path = step.env.get("PATH").map(String::as_str);
        let id = self.wlm.submit(&file, &step.cwd, path)?;
        tracing::debug!(job = %id, step = %step.name, "submitted");
        Ok(StepId(id))
    }

    fn status_one(&self, id: &StepId) -> Result<StepStatus> {
        let name = self.wlm.launcher();
        if let Some((job, inner)) = agent::parse_id(id) {
            self.agent(job)
                .status(&[inner])?
                .pop()
                .ok_or_else(|| Error::launcher(name, "the agent sent no status"))
        } else if id.0.contains('@') {
            self.procs
                .status(std::slice::from_ref(id))
                .map_err(self.errors())?
                .pop()
                .ok_or_else(|| Error::launcher(name, "no status"))
        } else {
            self.wlm.job_status(&id.0)
        }
    }
}

impl<W: Wlm> Launcher for WlmLauncher<W> {
    fn name(&self) -> &str {
        self.wlm.launcher()
    }

    fn launch(&self, step: &LaunchStep) -> Result<StepId> {
        let name = self.wlm.launcher();
        let var = self.wlm.job_var();
        let current = std::env::var(var).ok().filter(|v| !v.is_empty());
        if let Some(job) = agent::remote_job(step, current.as_deref()) {
            return self.agent(job).launch(step);
        }
        if step.run.allocation.is_none() && current.is_none() && !step.env.contains_key(var) {
            step.refuse_mpmd(name)?;
            return self.submit_step(step);
        }
        let process = if step.mpmd.is_empty() {
            self.wlm.parallel(step)?
        } else {
            self.wlm.parallel_mpmd(step)?
        };
        self.procs.launch(&process).map_err(self.errors())
    }

    fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>> {
        ids.iter().map(|id| self.status_one(id)).collect()
    }

    fn cancel(&self, id: &StepId) -> Result<StepStatus> {
        if let Some((job, inner)) = agent::parse_id(id) {
            self.agent(job).cancel(&inner)
        } else if id.0.contains('@') {
            self.procs.cancel(id).map_err(self.errors())
        } else {
            self.wlm.cancel_job(&id.0, self.wlm.cancel_limit())
        }
    }

    fn allocation(&self) -> Result<Allocation> {
        self.wlm.allocation()
    }

    fn allocate(&self, batch: &BatchSettings, name: &str) -> Result<Allocation> {
        agent::allocate_tracked(&self.wlm, batch, name, &self.agents(), &self.pending)
    }

    fn queue_state(&self, name: &str) -> Result<Option<orc_core::QueueState>> {
        Ok(self.pending.seen(name))
    }

    fn cancel_allocation(&self, name: &str) -> Result<()> {
        match self.pending.job(name) {
            // The waiting allocate sees the job end and reports it.
            Some(job) => self.wlm.kill(&job),
            None => Ok(()),
        }
    }

    fn release(&self, allocation: &str) -> Result<()> {
        agent::release(
            &self.wlm,
            allocation,
            self.wlm.cancel_limit(),
            &self.agents(),
        )
    }

    fn use_state_dir(&self, dir: &Path) -> Result<()> {
        *self.state_dir.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir.to_path_buf());
        self.wlm.use_state_dir(dir);
        Ok(())
    }
}
