//! Parsers for PBS Pro command output and the PBS state table (tested on captured output).

use orc_core::{JobStatus, StepStatus};

/// The job id printed by `qsub` (`12345.sdb`), or the error it printed (`qsub: Unknown queue`).
pub fn qsub_job_id(stdout: &str, stderr: &str) -> Result<String, String> {
    if let Some(e) = stderr.lines().map(str::trim).find(|l| !l.is_empty()) {
        return Err(e.strip_prefix("qsub: ").unwrap_or(e).to_string());
    }
    let id = stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or("qsub printed no job id")?;
    if id.split('.').next().is_some_and(|n| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_digit() || c == '[' || c == ']')
    }) {
        Ok(id.to_string())
    } else {
        Err(format!("qsub printed `{id}`, not a job id"))
    }
}

/// The state letter of job `id` from the tabular `qstat <ids>` output, or `None` when the
/// job is not listed. Long ids are truncated by qstat, so a truncated prefix also matches.
pub fn qstat_state(stdout: &str, id: &str) -> Option<String> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("---"))
        .skip(1)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let listed = f.first()?;
            let matches = *listed == id
                || (listed.ends_with('*') && id.starts_with(listed.trim_end_matches('*')));
            (matches && f.len() >= 5).then(|| f[4].to_string())
        })
}

/// Drop lines that make `qstat -f -F json` output invalid JSON (PBS prints unescaped
/// strings in some fields), as SmartSim does, until it parses.
pub fn clean_json(text: &str) -> Option<serde_json::Value> {
    let mut lines: Vec<&str> = text.lines().collect();
    for _ in 0..lines.len().max(1) {
        match serde_json::from_str::<serde_json::Value>(&lines.join("\n")) {
            Ok(v) => return Some(v),
            Err(e) => {
                let bad = e.line().checked_sub(1)?;
                if bad >= lines.len() {
                    return None;
                }
                lines.remove(bad);
            }
        }
    }
    None
}

/// `(job_state, Exit_status)` of job `id` from `qstat -f -F json` output.
pub fn qstat_json_status(v: &serde_json::Value, id: &str) -> Option<(String, Option<i32>)> {
    let job = v.get("Jobs")?.get(id)?;
    let state = job.get("job_state")?.as_str()?.to_string();
    let exit = job
        .get("Exit_status")
        .and_then(serde_json::Value::as_i64)
        .map(|e| e as i32);
    Some((state, exit))
}

/// The scheduler's `comment` on job `id` (why a queued job waits: `Not Running: ...`, or
/// `Can Never Run: ...`) from `qstat -f -F json` output.
pub fn qstat_json_comment(v: &serde_json::Value, id: &str) -> Option<String> {
    let c = v.get("Jobs")?.get(id)?.get("comment")?.as_str()?.trim();
    (!c.is_empty()).then(|| c.to_string())
}

/// Hosts of job `id` from its `exec_vnode` (`(server_1:ncpus=1)+(server_2:ncpus=1)`), sorted
/// and unique.
pub fn exec_hosts(v: &serde_json::Value, id: &str) -> Vec<String> {
    let vnode = v
        .get("Jobs")
        .and_then(|j| j.get(id))
        .and_then(|j| j.get("exec_vnode"))
        .and_then(|s| s.as_str())
        .unwrap_or("");
    let mut hosts: Vec<String> = vnode
        .split('+')
        .filter_map(|part| {
            part.trim()
                .trim_start_matches('(')
                .split(':')
                .next()
                .map(str::to_string)
        })
        .filter(|h| !h.is_empty())
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Hosts from a `$PBS_NODEFILE` (domains stripped, duplicates removed, order kept).
pub fn nodefile_hosts(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let h = l.split('.').next().unwrap_or(l).to_string();
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// Our status for a PBS state letter (exit code honoured for finished jobs).
pub fn status(state: &str, exit: Option<i32>) -> Option<StepStatus> {
    let s = match state {
        "R" | "B" | "E" => JobStatus::Running,
        "Q" | "W" | "T" => JobStatus::Queued,
        "H" | "S" | "U" | "M" => JobStatus::Paused,
        "F" | "X" => match exit {
            Some(0) => JobStatus::Completed,
            // PBS reports a job deleted before it ran with Exit_status -1 or a deletion code.
            Some(e) if e < 0 => JobStatus::Cancelled,
            Some(_) => JobStatus::Failed,
            None => JobStatus::Completed,
        },
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
        // Captured output from SmartSim's PBS parser tests (shared/reference/smartsim.md §4.3).
        let table = "Job id            Name             User              Time Use S Queue\n----------------  ---------------- ----------------  -------- - -----\n1289903.sdb       jobname          username          00:00:00 R queue\n";
        assert_eq!(qstat_state(table, "1289903.sdb").as_deref(), Some("R"));
        assert_eq!(qstat_state(table, "9999999.sdb"), None);
        assert_eq!(
            qsub_job_id("", "qsub: Unknown queue").unwrap_err(),
            "Unknown queue"
        );
        assert_eq!(qsub_job_id("12345.sdb\n", "").unwrap(), "12345.sdb");
        assert!(qsub_job_id("garbage here\n", "").is_err());
        let json = r#"{"pbs_server":"sdb","Jobs":{"16705.sdb":{"Job_Name":"run.sh","job_state":"R","exec_vnode":"(server_1:ncpus=1)+(server_2:ncpus=1)"}}}"#;
        let v = clean_json(json).unwrap();
        assert_eq!(qstat_json_status(&v, "16705.sdb"), Some(("R".into(), None)));
        assert_eq!(exec_hosts(&v, "16705.sdb"), ["server_1", "server_2"]);
        assert_eq!(qstat_json_comment(&v, "16705.sdb"), None);
        let queued = r#"{"Jobs":{"7.sdb":{"job_state":"Q","comment":"Can Never Run: Insufficient amount of resource: ncpus (R: 8 A: 4 T: 4)"}}}"#;
        let v = clean_json(queued).unwrap();
        assert!(
            qstat_json_comment(&v, "7.sdb")
                .unwrap()
                .starts_with("Can Never Run: Insufficient")
        );
        // A line with an unescaped quote is dropped and the rest still parses.
        let broken = "{\n\"Jobs\":{\"1.x\":{\n\"Variable_List\":\"A=\"b\"\",\n\"job_state\":\"F\",\n\"Exit_status\":2\n}}\n}";
        let v = clean_json(broken).unwrap();
        assert_eq!(qstat_json_status(&v, "1.x"), Some(("F".into(), Some(2))));
        assert_eq!(
            nodefile_hosts("nid1.cray\nnid1.cray\nnid2\n"),
            ["nid1", "nid2"]
        );
    }

    #[test]
    fn state_table() {
        assert_eq!(status("R", None).unwrap().status, JobStatus::Running);
        assert_eq!(status("Q", None).unwrap().status, JobStatus::Queued);
        assert_eq!(status("H", None).unwrap().status, JobStatus::Paused);
        assert_eq!(status("F", Some(0)).unwrap().status, JobStatus::Completed);
        assert_eq!(status("F", Some(3)).unwrap().status, JobStatus::Failed);
        assert!(status("Z", None).is_none());
    }
}
