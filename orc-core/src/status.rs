//! Job and step status, as every launcher reports it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The launcher-independent state of a job or step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Created, not yet submitted.
    New,
    /// Submitted, waiting for resources.
    Queued,
    /// Running.
    Running,
    /// Suspended or held.
    Paused,
    /// Finished with exit code 0.
    Completed,
    /// Finished with a non-zero exit code, a signal, or a scheduler failure.
    Failed,
    /// Stopped on request.
    Cancelled,
    /// Could never be started (for example the executable could not be run).
    NeverStarted,
}

impl JobStatus {
    /// True once the job can no longer change state.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::NeverStarted
        )
    }

    /// The lowercase name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::NeverStarted => "never-started",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a launcher knows about one step: our status plus its own words for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepStatus {
    /// The launcher-independent status.
    pub status: JobStatus,
    /// The launcher's native state (`RUNNING`, `R`, `sleeping`, ...), when it has one.
    pub native_state: Option<String>,
    /// The exit code once finished, when the launcher can know it.
    pub exit_code: Option<i32>,
    /// A human-readable note (signal name, reason for pending, ...).
    pub detail: Option<String>,
}

impl StepStatus {
    /// A status with only the launcher-independent part.
    pub fn new(status: JobStatus) -> Self {
        Self {
            status,
            native_state: None,
            exit_code: None,
            detail: None,
        }
    }

    /// A status from all its parts.
    pub fn from_parts(
        status: JobStatus,
        native_state: Option<String>,
        exit_code: Option<i32>,
        detail: Option<String>,
    ) -> Self {
        Self {
            status,
            native_state,
            exit_code,
            detail,
        }
    }

    /// With the launcher's native state.
    pub fn native_state(mut self, state: impl Into<String>) -> Self {
        self.native_state = Some(state.into());
        self
    }

    /// With an exit code.
    pub fn exit_code(mut self, code: Option<i32>) -> Self {
        self.exit_code = code;
        self
    }

    /// With a note.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(n) = &self.native_state {
            write!(f, " (launcher: {n})")?;
        }
        if let Some(c) = self.exit_code {
            write!(f, ", exit code {c}")?;
        }
        if let Some(d) = &self.detail {
            write!(f, ", {d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states() {
        let terminal: Vec<_> = [
            JobStatus::New,
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Paused,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Cancelled,
            JobStatus::NeverStarted,
        ]
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
        assert_eq!(
            terminal,
            [
                JobStatus::Completed,
                JobStatus::Failed,
                JobStatus::Cancelled,
                JobStatus::NeverStarted
            ]
        );
    }

    #[test]
    fn display_keeps_native_state_and_exit_code() {
        let s = StepStatus {
            status: JobStatus::Failed,
            native_state: Some("zombie".into()),
            exit_code: Some(3),
            detail: None,
        };
        assert_eq!(s.to_string(), "failed (launcher: zombie), exit code 3");
    }
}

/// A batch job an allocation waits for, as its scheduler describes it while it is queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueueState {
    /// The job id.
    pub job: String,
    /// The scheduler's word for its state (`PENDING`, `Q`, `PEND`, `queued`).
    pub state: String,
    /// Why it waits, when the scheduler says (`Resources`, `Priority`, ...).
    pub reason: Option<String>,
}

impl QueueState {
    /// Job `job` in `state`, waiting for `reason`.
    pub fn new(job: impl Into<String>, state: impl Into<String>, reason: Option<String>) -> Self {
        Self {
            job: job.into(),
            state: state.into(),
            reason,
        }
    }
}

impl fmt::Display for QueueState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch job {} {}", self.job, self.state)?;
        match &self.reason {
            Some(r) => write!(f, " ({r})"),
            None => Ok(()),
        }
    }
}
