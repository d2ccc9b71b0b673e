//! Parsers for Slurm command output and the Slurm state table (tested on captured output).

use orc_core::{JobStatus, StepStatus};

/// The job id printed by `sbatch --parsable` (`12345` or `12345;cluster`).
pub fn sbatch_job_id(stdout: &str) -> Option<String> {
    let first = stdout.lines().map(str::trim).find(|l| !l.is_empty())?;
    let id = first.split(';').next()?.trim();
    (!id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_digit() || c == '_' || c == '+'))
    .then(|| id.to_string())
}

/// The step id from a `srun -v` line `srun: launching StepId=<job>.<step> on host ...`.
pub fn srun_step_id(line: &str) -> Option<String> {
    let rest = line.split("launching StepId=").nth(1)?;
    let id = rest.split_whitespace().next()?.trim_end_matches(',');
    id.contains('.').then(|| id.to_string())
}

/// The allocation granted by `salloc --no-shell` (from its stderr), or the error it printed.
pub fn salloc_job_id(stderr: &str) -> Result<String, String> {
    for line in stderr.lines() {
        if let Some(rest) = line.trim().strip_prefix("salloc: Granted job allocation ") {
            return Ok(rest.trim().to_string());
        }
    }
    for line in stderr.lines() {
        let l = line.trim();
        if let Some(e) = l.strip_prefix("salloc: error: ") {
            return Err(e.trim().to_string());
        }
        if let Some(e) = l.strip_prefix("salloc: ")
            && (e.starts_with("unrecognized option") || e.starts_with("invalid"))
        {
            return Err(e.to_string());
        }
    }
    Err(format!("salloc printed no allocation: {}", stderr.trim()))
}

/// `(state, exit code)` of job or step `id` from `sacct --noheader -p -b --jobs ...` output
/// (`jobid|State|ExitCode|` lines; ids match exactly, so `1` is not `11`).
pub fn sacct_status(stdout: &str, id: &str) -> Option<(String, Option<i32>)> {
    stdout.lines().find_map(|l| {
        let f: Vec<&str> = l.split('|').collect();
        (f.len() >= 3 && f[0].trim() == id).then(|| (f[1].trim().to_string(), exit_code(f[2])))
    })
}

/// The step id of the step called `name` from `sacct --noheader -p --format=jobname,jobid`.
pub fn sacct_step_id(stdout: &str, name: &str) -> Option<String> {
    stdout.lines().find_map(|l| {
        let f: Vec<&str> = l.split('|').collect();
        (f.len() >= 2 && f[0] == name).then(|| f[1].to_string())
    })
}

/// Hosts of job `id` (all its steps) from `sstat <id> -i -n -p -a` (`jobid|node|pids|`).
pub fn sstat_nodes(stdout: &str, id: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in stdout.lines() {
        let f: Vec<&str> = l.split('|').collect();
        if f.len() >= 2 && f[0].split('.').next() == Some(id) && !out.iter().any(|h| h == f[1]) {
            out.push(f[1].to_string());
        }
    }
    out
}

/// `JobState` and `ExitCode` from `scontrol show job <id>` (works without accounting).
pub fn scontrol_job_status(stdout: &str) -> Option<(String, Option<i32>)> {
    let field = |k: &str| {
        stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(k).map(str::to_string))
    };
    let state = field("JobState=")?;
    Some((state, field("ExitCode=").and_then(|e| exit_code(&e))))
}

/// A `Key=value` field of `scontrol show job <id>` output (`Reason`, `Partition`, ...).
pub fn scontrol_field(stdout: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix(prefix.as_str()).map(str::to_string))
}

/// Whether a pending job's `Reason` can never resolve by waiting: the request exceeds what
/// the partition, account or QOS allows, or names what does not exist.
pub fn hopeless_reason(reason: &str) -> bool {
    const HOPELESS: [&str; 12] = [
        "PartitionNodeLimit",
        "PartitionTimeLimit",
        "PartitionConfig",
        "InvalidAccount",
        "InvalidQOS",
        "BadConstraints",
        "QOSMaxNodePerJobLimit",
        "QOSMaxWallDurationPerJobLimit",
        "QOSMaxCpuPerJobLimit",
        "AssocMaxNodesPerJobLimit",
        "AssocMaxWallDurationPerJobLimit",
        "AssocMaxCpuPerJobLimit",
    ];
    HOPELESS.contains(&reason)
}

/// The return code of a Slurm `rc:signal` exit code (a signal gives 128 + signal).
pub fn exit_code(s: &str) -> Option<i32> {
    let (rc, sig) = s.trim().split_once(':').unwrap_or((s.trim(), "0"));
    let rc: i32 = rc.parse().ok()?;
    let sig: i32 = sig.parse().unwrap_or(0);
    Some(if rc == 0 && sig != 0 { 128 + sig } else { rc })
}

/// Our status for a Slurm state, keeping the native state and exit code. Unlike SmartSim,
/// TIMEOUT, DEADLINE and a non-zero exit code are failures, and an unknown state is an
/// error for the caller (never a silent "Completed").
pub fn status(state: &str, exit: Option<i32>) -> Option<StepStatus> {
    let base = state
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches('+');
    let s = match base {
        "RUNNING" | "CONFIGURING" | "COMPLETING" | "STAGE_OUT" => JobStatus::Running,
        "PENDING" | "REQUEUED" | "REQUEUE_FED" | "REQUEUE_HOLD" | "RESV_DEL_HOLD" => {
            JobStatus::Queued
        }
        "SUSPENDED" | "STOPPED" | "PREEMPTED" | "RESIZING" | "SIGNALING" | "SPECIAL_EXIT" => {
            JobStatus::Paused
        }
        "COMPLETED" if exit.unwrap_or(0) == 0 => JobStatus::Completed,
        "COMPLETED" | "FAILED" | "TIMEOUT" | "DEADLINE" | "NODE_FAIL" | "OUT_OF_MEMORY"
        | "BOOT_FAIL" => JobStatus::Failed,
        "CANCELLED" | "REVOKED" => JobStatus::Cancelled,
        _ => return None,
    };
    Some(StepStatus::from_parts(
        s,
        Some(state.to_string()),
        exit,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_samples() {
        // Captured output from SmartSim's Slurm parser tests (shared/reference/smartsim.md §4.2).
        let salloc = "salloc: Granted job allocation 118568\nsalloc: Waiting for resource configuration\nsalloc: Nodes nid00116 are ready for job";
        assert_eq!(salloc_job_id(salloc).unwrap(), "118568");
        assert_eq!(
            salloc_job_id("salloc: error: Job submit/allocate failed: Job dependency problem")
                .unwrap_err(),
            "Job submit/allocate failed: Job dependency problem"
        );
        assert_eq!(
            salloc_job_id("salloc: unrecognized option '--no-a-option'").unwrap_err(),
            "unrecognized option '--no-a-option'"
        );
        assert_eq!(
            sstat_nodes(
                "118594.extern|nid00028|38671|\n118594.0|nid00028|38703|",
                "118594"
            ),
            ["nid00028"]
        );
        let many = "30000.extern|nid00034|1|\n30000.0|nid00034|2|\n30000.1|nid00035|45174|\n30000.2|nid00036|3|";
        assert_eq!(
            sstat_nodes(many, "30000"),
            ["nid00034", "nid00035", "nid00036"]
        );
        let steps =
            "SmartSim|119225|\nextern|119225.extern|\nm1-119225.0|119225.0|\nm2-119225.1|119225.1|";
        assert_eq!(
            sacct_step_id(steps, "m1-119225.0").as_deref(),
            Some("119225.0")
        );
        assert_eq!(
            sacct_status("29917893.2|COMPLETED|0:0|", "29917893.2"),
            Some(("COMPLETED".into(), Some(0)))
        );
        assert_eq!(
            sacct_status("22999.10|COMPLETED|0:0|\n22999.1|FAILED|1:0|", "22999.1"),
            Some(("FAILED".into(), Some(1)))
        );
        assert_eq!(
            sacct_status("22999.10|COMPLETED|0:0|", "22999.1"),
            None,
            "no prefix matches"
        );
        assert_eq!(sbatch_job_id("12345\n").as_deref(), Some("12345"));
        assert_eq!(sbatch_job_id("12345;cluster\n").as_deref(), Some("12345"));
        assert_eq!(
            sbatch_job_id("sbatch: error: Batch job submission failed"),
            None
        );
        let scontrol = "JobId=7 JobName=wrap\n   UserId=root(0) GroupId=root(0)\n   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)\n   ExitCode=7:0\n";
        assert_eq!(
            scontrol_field(scontrol, "Reason").as_deref(),
            Some("NonZeroExitCode")
        );
        assert_eq!(scontrol_field(scontrol, "Partition"), None);
        assert!(hopeless_reason("PartitionNodeLimit"));
        assert!(!hopeless_reason("Resources") && !hopeless_reason("Priority"));
        assert_eq!(
            scontrol_job_status(scontrol),
            Some(("FAILED".into(), Some(7)))
        );
    }

    #[test]
    fn state_table() {
        assert_eq!(status("RUNNING", None).unwrap().status, JobStatus::Running);
        assert_eq!(status("PENDING", None).unwrap().status, JobStatus::Queued);
        assert_eq!(
            status("CANCELLED by 0", Some(0)).unwrap().status,
            JobStatus::Cancelled
        );
        assert_eq!(
            status("CANCELLED+", None).unwrap().status,
            JobStatus::Cancelled
        );
        assert_eq!(
            status("TIMEOUT", Some(0)).unwrap().status,
            JobStatus::Failed
        );
        assert_eq!(
            status("COMPLETED", Some(3)).unwrap().status,
            JobStatus::Failed
        );
        let s = status("COMPLETED", Some(0)).unwrap();
        assert_eq!(
            (s.status, s.native_state.as_deref(), s.exit_code),
            (JobStatus::Completed, Some("COMPLETED"), Some(0))
        );
        assert!(
            status("GARBAGE", None).is_none(),
            "unknown states are not guessed"
        );
        assert_eq!(exit_code("0:15"), Some(143));
        assert_eq!(exit_code("x"), None);
    }
}
