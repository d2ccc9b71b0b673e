//! Parsers for LSF (`bsub`, `bjobs`) and `jsrun`/`jslist` output, and their state tables
//! (tested on captured output).

use orc_core::{JobStatus, StepStatus};

/// The job id from `bsub` output (`Job <12345> is submitted to queue <debug>.`), or the error
/// block LSF printed between dashed rulers (`** ...` lines).
pub fn bsub_job_id(stdout: &str) -> Result<String, String> {
    for l in stdout.lines() {
        if let Some(rest) = l.trim().strip_prefix("Job <")
            && let Some((id, _)) = rest.split_once('>')
            && id.chars().all(|c| c.is_ascii_digit())
        {
            return Ok(id.to_string());
        }
    }
    let errors: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("**"))
        .map(|l| l.trim_matches('*').trim())
        .filter(|l| !l.is_empty())
        .collect();
    Err(if errors.is_empty() {
        "LSF run error".to_string()
    } else {
        errors.join(" ")
    })
}

/// `(status, exit code)` of jsrun step `id` from `jslist` output (the table of steps).
pub fn jslist_status(stdout: &str, id: &str) -> Option<(String, Option<i32>)> {
    stdout.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 7 && f[0] == id).then(|| (f[6].to_string(), f[5].parse().ok()))
    })
}

/// The newest (highest) step id in `jslist` output.
pub fn jslist_max_id(stdout: &str) -> Option<u64> {
    stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .max()
}

/// The state of job `id` from `bjobs -a <ids>` output (third column).
pub fn bjobs_state(stdout: &str, id: &str) -> Option<String> {
    stdout.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 3 && f[0] == id).then(|| f[2].to_string())
    })
}

/// Hosts from a `bjobs -w` EXEC_HOST field (`batch3:a01n02:a01n03`), launch node first,
/// duplicates removed, order kept.
pub fn exec_hosts(field: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for h in field.split(':').filter(|h| !h.is_empty()) {
        let h = h.split('*').next_back().unwrap_or(h).to_string();
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// Our status for a batch job state.
pub fn batch_status(state: &str, exit: Option<i32>) -> Option<StepStatus> {
    let s = match state {
        "RUN" => JobStatus::Running,
        "PEND" | "WAIT" => JobStatus::Queued,
        "PSUSP" | "USUSP" | "SSUSP" => JobStatus::Paused,
        "DONE" => JobStatus::Completed,
        "EXIT" => JobStatus::Failed,
        "ZOMBI" | "UNKWN" => JobStatus::Failed,
        _ => return None,
    };
    Some(StepStatus::from_parts(s, Some(state.into()), exit, None))
}

/// Our status for a jsrun step (the return code decides Complete/Killed steps).
pub fn step_status(state: &str, exit: Option<i32>) -> Option<StepStatus> {
    let s = match state {
        "Running" => JobStatus::Running,
        "Queued" => JobStatus::Queued,
        "Complete" if exit.unwrap_or(0) == 0 => JobStatus::Completed,
        "Complete" => JobStatus::Failed,
        "Killed" => JobStatus::Cancelled,
        _ => return None,
    };
    Some(StepStatus::from_parts(s, Some(state.into()), exit, None))
}

/// `(state, exit code)` of job `id` from `bjobs -noheader -o "jobid stat exit_code"`
/// output (`12345 EXIT 7`; the exit code is `-` when there is none).
pub fn bjobs_fields(stdout: &str, id: &str) -> Option<(String, Option<i32>)> {
    stdout.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 2 && f[0] == id)
            .then(|| (f[1].to_string(), f.get(2).and_then(|c| c.parse().ok())))
    })
}

/// Hosts from `$LSB_MCPU_HOSTS` (`batch1 1 a01n02 42 a01n03 42`: host, slots, ...), launch
/// node first, duplicates removed, order kept; `None` when the list is malformed.
pub fn mcpu_hosts(text: &str) -> Option<Vec<String>> {
    let f: Vec<&str> = text.split_whitespace().collect();
    if f.is_empty() || !f.len().is_multiple_of(2) {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    for pair in f.chunks(2) {
        pair[1].parse::<u32>().ok()?;
        if !out.iter().any(|h| h == pair[0]) {
            out.push(pair[0].to_string());
        }
    }
    Some(out)
}

/// A `jsrun --erf_input` file that runs `command` once on each of the hosts at `hosts`
/// (indices into the job's host list, 0 being the launch node), `cpus` cores per rank.
/// Every host gets its rank: SmartSim 0.8's ERF dropped the first one.
pub fn erf(command: &str, hosts: &[usize], cpus: u32) -> String {
    let ranks: Vec<(usize, usize)> = hosts.iter().map(|h| (*h, 0)).collect();
    erf_apps(&[command], &ranks, cpus)
}

/// An MPMD `jsrun --erf_input` file: one `app` line per command, and rank `i` on host
/// index `ranks[i].0` running app `ranks[i].1`, `cpus` cores each.
pub fn erf_apps(commands: &[&str], ranks: &[(usize, usize)], cpus: u32) -> String {
    let mut s = String::from("launch_distribution : packed\n");
    for (i, c) in commands.iter().enumerate() {
        s.push_str(&format!("app {i} : {c}\n"));
    }
    let last = cpus.max(1) - 1;
    for (rank, (h, app)) in ranks.iter().enumerate() {
        s.push_str(&format!(
            "rank: {rank}: {{ host: {h}; cpu: {{0-{last}}} }} : app {app}\n"
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpmd_erf_files() {
        let e = erf_apps(&["/bin/sh a.sh", "/bin/sh b.sh"], &[(1, 0), (2, 1)], 2);
        assert_eq!(
            e,
            "launch_distribution : packed\napp 0 : /bin/sh a.sh\napp 1 : /bin/sh b.sh\n\
             rank: 0: { host: 1; cpu: {0-1} } : app 0\nrank: 1: { host: 2; cpu: {0-1} } : app 1\n"
        );
    }

    #[test]
    fn bjobs_output_format() {
        let out = "12345 EXIT 7\n12346 DONE -\n12347 RUN -\n";
        assert_eq!(bjobs_fields(out, "12345"), Some(("EXIT".into(), Some(7))));
        assert_eq!(bjobs_fields(out, "12346"), Some(("DONE".into(), None)));
        assert_eq!(bjobs_fields(out, "1234"), None);
        assert_eq!(bjobs_fields("Job <1> is not found", "1"), None);
    }

    #[test]
    fn mcpu_host_lists() {
        assert_eq!(
            mcpu_hosts("batch1 1 a01n02 42 a01n03 42").unwrap(),
            ["batch1", "a01n02", "a01n03"]
        );
        assert_eq!(mcpu_hosts("h1 4 h1 4").unwrap(), ["h1"]);
        assert_eq!(mcpu_hosts("batch1 1 a01n02"), None);
        assert_eq!(mcpu_hosts("a b"), None);
        assert_eq!(mcpu_hosts(""), None);
    }

    #[test]
    fn erf_files_give_every_host_a_rank() {
        let e = erf("redis-server /d/a.conf", &[1, 2, 3], 2);
        assert_eq!(
            e,
            "launch_distribution : packed\napp 0 : redis-server /d/a.conf\n\
             rank: 0: { host: 1; cpu: {0-1} } : app 0\n\
             rank: 1: { host: 2; cpu: {0-1} } : app 0\n\
             rank: 2: { host: 3; cpu: {0-1} } : app 0\n"
        );
    }

    #[test]
    fn captured_samples() {
        // Captured output from SmartSim's LSF parser tests (shared/reference/smartsim.md §4.4).
        let jslist = "ID   ID       nrs    per RS    per RS    status         status\n===============================================================================\n    3    0         1         1         0         1       Complete\n    2    0         3   various   various       137         Killed\n    1    1         4   various   various         0        Running\n";
        assert_eq!(
            jslist_status(jslist, "1"),
            Some(("Running".into(), Some(0)))
        );
        assert_eq!(
            jslist_status(jslist, "2"),
            Some(("Killed".into(), Some(137)))
        );
        assert_eq!(jslist_max_id(jslist), Some(3));
        assert_eq!(
            bsub_job_id("Job <12345> is submitted to queue <debug>.\n").unwrap(),
            "12345"
        );
        let olcf = "------------------------------------------------------------\n** Project not specified. Please specify a project with -P. **\n------------------------------------------------------------\n";
        assert_eq!(
            bsub_job_id(olcf).unwrap_err(),
            "Project not specified. Please specify a project with -P."
        );
        assert_eq!(bsub_job_id("").unwrap_err(), "LSF run error");
        let bjobs = "JOBID   USER    STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME\n12345   user    RUN   batch      login1      batch3      orc        Nov 29 12:00\n";
        assert_eq!(bjobs_state(bjobs, "12345").as_deref(), Some("RUN"));
        assert_eq!(
            exec_hosts("batch3:a01n02:a01n03:a01n02"),
            ["batch3", "a01n02", "a01n03"]
        );
    }

    #[test]
    fn state_tables() {
        assert_eq!(
            batch_status("EXIT", Some(1)).unwrap().status,
            JobStatus::Failed
        );
        assert_eq!(
            batch_status("PEND", None).unwrap().status,
            JobStatus::Queued
        );
        assert_eq!(
            step_status("Complete", Some(1)).unwrap().status,
            JobStatus::Failed
        );
        assert_eq!(
            step_status("Complete", Some(0)).unwrap().status,
            JobStatus::Completed
        );
        assert!(batch_status("???", None).is_none());
    }
}
