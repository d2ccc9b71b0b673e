//! Parsers for Cobalt (`qsub`, `qstat`) output and the Cobalt state table (tested on
//! captured output).

use orc_core::{JobStatus, StepStatus};

/// The job id from `qsub` output: the first line that is a plain integer.
pub fn qsub_job_id(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
}

/// The state of job `id` from `qstat --header JobId:State ...` output.
pub fn qstat_state(stdout: &str, id: &str) -> Option<String> {
    stdout.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 2 && f[0] == id).then(|| f[1].to_string())
    })
}

/// The job id of the job called `name` from `qstat --header JobName:JobId ...` output.
pub fn qstat_job_id(stdout: &str, name: &str) -> Option<String> {
    stdout.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 2 && f[0] == name).then(|| f[1].to_string())
    })
}

/// Our status for a Cobalt state.
pub fn status(state: &str) -> Option<StepStatus> {
    let s = match state {
        "running" => JobStatus::Running,
        "queued" | "starting" => JobStatus::Queued,
        "dep_hold" | "user_hold" | "admin_hold" => JobStatus::Paused,
        "dep_fail" => JobStatus::Failed,
        "terminating" | "killing" | "exiting" => JobStatus::Running, // still shutting down
        _ => return None,
    };
    Some(StepStatus::from_parts(s, Some(state.into()), None, None))
}

/// Host names (`nid03824`) of a `$COBALT_PARTNAME` node list (`3824-3827,4000`); `None`
/// for anything else.
pub fn partname_hosts(part: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for item in part.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (a, b) = item.split_once('-').unwrap_or((item, item));
        let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if b < a || b - a > 100_000 {
            return None;
        }
        out.extend((a..=b).map(|n| format!("nid{n:05}")));
    }
    (!out.is_empty()).then_some(out)
}

/// The node id `aprun -L` takes for a host name (`nid03824` → `3824`).
pub fn nid(host: &str) -> Option<u32> {
    host.strip_prefix("nid")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists() {
        assert_eq!(
            partname_hosts("3824-3826,4000").unwrap(),
            ["nid03824", "nid03825", "nid03826", "nid04000"]
        );
        assert_eq!(partname_hosts("12").unwrap(), ["nid00012"]);
        assert_eq!(partname_hosts(""), None);
        assert_eq!(partname_hosts("5-3"), None);
        assert_eq!(partname_hosts("nid1"), None);
        assert_eq!(nid("nid03824"), Some(3824));
        assert_eq!(nid("login1"), None);
    }

    #[test]
    fn captured_samples() {
        // Captured output from SmartSim v0.4.2's Cobalt tests (shared/reference/smartsim.md §4.6).
        let qsub = "Job routed to queue 'debug-flat-quad'.\nMemory mode set to flat quad for queue debug-flat-quad\n507998\n";
        assert_eq!(qsub_job_id(qsub).as_deref(), Some("507998"));
        assert_eq!(qsub_job_id("qsub: error\n"), None);
        let table = "JobId   State\n=============\n507998  running\n507999  queued\n";
        assert_eq!(qstat_state(table, "507998").as_deref(), Some("running"));
        assert_eq!(qstat_state(table, "1"), None);
        assert_eq!(
            qstat_job_id("JobName JobId\norc_0 507998\n", "orc_0").as_deref(),
            Some("507998")
        );
        assert_eq!(status("dep_fail").unwrap().status, JobStatus::Failed);
        assert_eq!(status("user_hold").unwrap().status, JobStatus::Paused);
        assert!(status("weird").is_none());
    }
}
