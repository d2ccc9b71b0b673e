//! Status and cancel for workload-manager launchers built on this crate (PBS, LSF,
//! Cobalt), whose step ids name one of three things:
//!
//! * `agent:<job>:<id>`: a step an agent-held batch job runs ([`orc_core::agent`]);
//! * `<pid>@<start>`: a parallel-launch process on this node (`mpiexec`, `jsrun`,
//!   `aprun` inside the job), tracked by a [`LocalLauncher`];
//! * anything else: a batch job of its own, known to the [`Scheduler`].

use std::time::Duration;

use orc_core::{
    Error, Launcher, Result, StepId, StepStatus,
    agent::{self, Agent, Scheduler},
};

use crate::LocalLauncher;

/// One launcher's view of its steps.
pub struct Steps<'a> {
    /// The processes it started on this node.
    pub procs: &'a LocalLauncher,
    /// Its scheduler's job commands.
    pub scheduler: &'a dyn Scheduler,
    /// Re-labels errors of the process layer as the launcher's (see [`crate::attribute`]).
    pub errors: fn(Error) -> Error,
    /// How long a deleted batch job may take to end.
    pub cancel_limit: Duration,
}

impl Steps<'_> {
    fn one(&self, id: &StepId) -> Result<StepStatus> {
        if let Some((job, inner)) = agent::parse_id(id) {
            Agent::new(self.scheduler.launcher(), job)
                .status(&[inner])?
                .pop()
                .ok_or_else(|| {
                    Error::launcher(self.scheduler.launcher(), "the agent sent no status")
                })
        } else if id.0.contains('@') {
            self.procs
                .status(std::slice::from_ref(id))
                .map_err(self.errors)?
                .pop()
                .ok_or_else(|| Error::launcher(self.scheduler.launcher(), "no status"))
        } else {
            self.scheduler.job_status(&id.0)
        }
    }

    /// [`Launcher::status`].
    pub fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>> {
        ids.iter().map(|id| self.one(id)).collect()
    }

    /// [`Launcher::cancel`].
    pub fn cancel(&self, id: &StepId) -> Result<StepStatus> {
        if let Some((job, inner)) = agent::parse_id(id) {
            Agent::new(self.scheduler.launcher(), job).cancel(&inner)
        } else if id.0.contains('@') {
            self.procs.cancel(id).map_err(self.errors)
        } else {
            self.scheduler.cancel_job(&id.0, self.cancel_limit)
        }
    }
}
