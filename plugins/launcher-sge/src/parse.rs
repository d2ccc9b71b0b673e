//! Parsers for Grid Engine's command output, tested on output captured from Son of Grid
//! Engine 8.1.9 (Debian 12's `gridengine-*` packages).

use orc_launcher_kit::orc_core::{JobStatus, StepStatus};

/// The job id `qsub -terse` printed (`42`, or `42.1-10:1` for an array job).
pub fn qsub_job_id(stdout: &str) -> Option<String> {
    let first = stdout.lines().map(str::trim).find(|l| !l.is_empty())?;
    let id = first.split('.').next().unwrap_or(first);
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_string())
}

/// One `<job_list>` entry of `qstat -xml` (with `-g t`, one per granted queue instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QstatJob {
    /// `JB_job_number`.
    pub id: String,
    /// `state`: `r`, `qw`, `Eqw`, `dr`, ...
    pub state: String,
    /// `queue_name` (`all.q@node1`), empty while pending.
    pub queue: String,
}

impl QstatJob {
    /// The host part of the queue instance (`node1` of `all.q@node1`).
    pub fn host(&self) -> Option<&str> {
        self.queue
            .split_once('@')
            .map(|(_, h)| h)
            .filter(|h| !h.is_empty())
    }
}

fn element<'a>(entry: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = entry.find(&open)? + open.len();
    let len = entry[start..].find(&close)?;
    Some(entry[start..start + len].trim())
}

/// Every `<job_list>` entry of `qstat -xml` output; `None` when it is not qstat XML.
pub fn qstat_xml(xml: &str) -> Option<Vec<QstatJob>> {
    if !xml.contains("<job_info") {
        return None;
    }
    let mut jobs = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<job_list") {
        let tail = &rest[start..];
        let end = tail.find("</job_list>")?;
        let entry = &tail[..end];
        jobs.push(QstatJob {
            id: element(entry, "JB_job_number")?.to_string(),
            state: element(entry, "state")?.to_string(),
            queue: element(entry, "queue_name").unwrap_or("").to_string(),
        });
        rest = &tail[end..];
    }
    Some(jobs)
}

/// The distinct hosts of job `id` in `qstat -g t -xml` output, in the order listed.
pub fn job_hosts(jobs: &[QstatJob], id: &str) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for h in jobs
        .iter()
        .filter(|j| j.id == id)
        .filter_map(QstatJob::host)
    {
        if !hosts.iter().any(|x| x == h) {
            hosts.push(h.to_string());
        }
    }
    hosts
}

/// Our status for a job `qstat` still lists, from its state letters.
///
/// `E` (error: `Eqw`) is failed; `h`, `s`, `S`, `T` (held, suspended) are paused; `qw` is
/// queued; `r`, `t` (transferring), `R` (restarted) are running. A job being deleted
/// (`d`) is still running until it has left `qstat`.
pub fn qstat_status(state: &str) -> Option<StepStatus> {
    let status = if state.contains('E') {
        JobStatus::Failed
    } else if state.contains('d') {
        JobStatus::Running
    } else if state.contains(['h', 's', 'S', 'T']) {
        JobStatus::Paused
    } else if state.contains('q') || state.contains('w') {
        JobStatus::Queued
    } else if state.contains(['r', 't', 'R']) {
        JobStatus::Running
    } else {
        return None;
    };
    let mut s = StepStatus::new(status);
    s.native_state = Some(state.to_string());
    if state.contains('d') {
        s.detail = Some("being deleted".into());
    }
    Some(s)
}

/// The final status of a job from its `qacct -j <id>` record: `failed` (Grid Engine's
/// own failure code, 0 when it ran) and `exit_status`.
pub fn qacct_status(text: &str) -> Option<StepStatus> {
    let field = |name: &str| {
        text.lines().rev().find_map(|l| {
            let (k, v) = l.split_once(char::is_whitespace)?;
            (k == name).then(|| v.trim().to_string())
        })
    };
    let failed = field("failed")?;
    let exit: i32 = field("exit_status")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let failed_code: i32 = failed.split_whitespace().next()?.parse().ok()?;
    let mut s = StepStatus::new(if failed_code == 0 && exit == 0 {
        JobStatus::Completed
    } else {
        JobStatus::Failed
    });
    s.exit_code = Some(exit);
    s.native_state = Some(if failed_code == 0 {
        "finished".into()
    } else {
        "failed".into()
    });
    if failed_code != 0 {
        s.detail = Some(format!("Grid Engine: failed {failed}"));
    }
    Some(s)
}

/// The hosts of `$PE_HOSTFILE` (`host slots queue processors` per line).
pub fn pe_hostfile(text: &str) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for h in text.lines().filter_map(|l| l.split_whitespace().next()) {
        if !hosts.iter().any(|x| x == h) {
            hosts.push(h.to_string());
        }
    }
    hosts
}

/// Whether `qconf -sp <pe>` output describes a parallel environment whose tasks can be
/// started with `qrsh -inherit` (`control_slaves TRUE`).
pub fn pe_controls_slaves(text: &str) -> bool {
    text.lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next() == Some("control_slaves")
            && w.next().is_some_and(|v| v.eq_ignore_ascii_case("true"))
    })
}

/// How long Grid Engine may hold a finished job's accounting record before writing it
/// (`reporting_params` of `qconf -sconf`: `accounting_flush_time`, else `flush_time`).
pub fn accounting_flush(sconf: &str) -> Option<std::time::Duration> {
    let joined = sconf.replace("\\\n", " ");
    let params = joined
        .lines()
        .find_map(|l| l.strip_prefix("reporting_params"))?;
    let value = |key: &str| {
        params.split_whitespace().find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then_some(v)
        })
    };
    let hms = value("accounting_flush_time").or_else(|| value("flush_time"))?;
    let mut secs = 0u64;
    for part in hms.split(':') {
        secs = secs * 60 + part.parse::<u64>().ok()?;
    }
    Some(std::time::Duration::from_secs(secs))
}

/// The parallel environments of a queue's `qconf -sq` output (`pe_list make mpi`, with
/// host-specific lists such as `[host=orc,mpi]` counted too).
pub fn queue_pes(sq: &str) -> Vec<String> {
    let Some(line) = sq.lines().find(|l| l.starts_with("pe_list")) else {
        return Vec::new();
    };
    line["pe_list".len()..]
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .map(|w| w.rsplit('=').next().unwrap_or(w))
        .filter(|w| !w.is_empty() && *w != "NONE")
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // `qstat -xml` with a running parallel job, two running jobs and a pending one.
    const QSTAT: &str = r#"<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>1</JB_job_number>
      <JAT_prio>0.26019</JAT_prio>
      <JB_name>hold</JB_name>
      <JB_owner>root</JB_owner>
      <state>dr</state>
      <JAT_start_time>2026-11-30T00:55:49</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>3</slots>
    </job_list>
    <job_list state="running">
      <JB_job_number>2</JB_job_number>
      <JAT_prio>0.25000</JAT_prio>
      <JB_name>fails</JB_name>
      <JB_owner>root</JB_owner>
      <state>r</state>
      <JAT_start_time>2026-11-30T00:56:52</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>4</JB_job_number>
      <JAT_prio>0.75000</JAT_prio>
      <JB_name>toobig</JB_name>
      <JB_owner>root</JB_owner>
      <state>qw</state>
      <JB_submission_time>2026-11-30T00:56:51</JB_submission_time>
      <queue_name></queue_name>
      <slots>100</slots>
    </job_list>
  </job_info>
</job_info>
"#;

    // `qstat -g t -xml`: one entry per granted queue instance (MASTER and SLAVEs).
    const QSTAT_T: &str = r#"<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>1</JB_job_number>
      <state>r</state>
      <queue_name>all.q@node2</queue_name>
      <master>MASTER</master>
      <slots>1</slots>
    </job_list>
    <job_list state="running">
      <JB_job_number>1</JB_job_number>
      <state>r</state>
      <queue_name>all.q@node2</queue_name>
      <master>SLAVE</master>
      <slots>1</slots>
    </job_list>
    <job_list state="running">
      <JB_job_number>1</JB_job_number>
      <state>r</state>
      <queue_name>all.q@node1</queue_name>
      <master>SLAVE</master>
      <slots>1</slots>
    </job_list>
  </queue_info>
  <job_info>
  </job_info>
</job_info>
"#;

    // `qacct -j 2` (abridged) of a job that exited 5, and of a job killed by `qdel`.
    const QACCT_EXIT: &str = "==============================================================
qname        all.q               
hostname     vm                  
jobname      fails               
jobnumber    2                   
taskid       undefined
granted_pe   NONE                
slots        1                   
failed       0    
exit_status  5                   
ru_wallclock 0s
";
    const QACCT_KILLED: &str = "==============================================================
qname        all.q               
jobnumber    1                   
failed       100 : assumedly after job
exit_status  137                  (Killed)
";

    #[test]
    fn qsub_terse_ids() {
        assert_eq!(qsub_job_id("3\n").as_deref(), Some("3"));
        assert_eq!(qsub_job_id("\n17.1-10:1\n").as_deref(), Some("17"));
        assert_eq!(
            qsub_job_id(r#"Your job 2 ("fails") has been submitted"#),
            None
        );
        assert_eq!(qsub_job_id(""), None);
    }

    #[test]
    fn qstat_xml_entries_and_states() {
        let jobs = qstat_xml(QSTAT).unwrap();
        let ids: Vec<_> = jobs
            .iter()
            .map(|j| (j.id.as_str(), j.state.as_str()))
            .collect();
        assert_eq!(ids, [("1", "dr"), ("2", "r"), ("4", "qw")]);
        assert_eq!(jobs[1].host(), Some("vm"));
        assert_eq!(jobs[2].host(), None);
        let s = qstat_status("dr").unwrap();
        assert_eq!(s.status, JobStatus::Running);
        assert_eq!(s.detail.as_deref(), Some("being deleted"));
        assert_eq!(qstat_status("qw").unwrap().status, JobStatus::Queued);
        assert_eq!(qstat_status("hqw").unwrap().status, JobStatus::Paused);
        assert_eq!(qstat_status("Eqw").unwrap().status, JobStatus::Failed);
        assert_eq!(qstat_status("t").unwrap().status, JobStatus::Running);
        assert_eq!(qstat_status("s").unwrap().status, JobStatus::Paused);
        assert_eq!(qstat_status("Rr").unwrap().status, JobStatus::Running);
        assert_eq!(qstat_status("x"), None);
    }

    #[test]
    fn qstat_xml_rejects_garbage() {
        assert_eq!(qstat_xml("error: commlib error: got select error"), None);
        assert_eq!(qstat_xml(""), None);
        // A truncated document is not silently an empty job list.
        assert_eq!(qstat_xml(&QSTAT[..QSTAT.len() / 2]), None);
        assert_eq!(
            qstat_xml(QSTAT_T.split("<queue_info>").next().unwrap()),
            Some(vec![])
        );
    }

    #[test]
    fn hosts_of_a_parallel_job() {
        let jobs = qstat_xml(QSTAT_T).unwrap();
        assert_eq!(job_hosts(&jobs, "1"), ["node2", "node1"]);
        assert!(job_hosts(&jobs, "9").is_empty());
        assert_eq!(
            pe_hostfile("node2 2 all.q@node2 UNDEFINED\nnode1 1 all.q@node1 UNDEFINED\n"),
            ["node2", "node1"]
        );
    }

    #[test]
    fn qacct_records() {
        let s = qacct_status(QACCT_EXIT).unwrap();
        assert_eq!((s.status, s.exit_code), (JobStatus::Failed, Some(5)));
        assert_eq!(s.native_state.as_deref(), Some("finished"));
        let s = qacct_status(QACCT_KILLED).unwrap();
        assert_eq!((s.status, s.exit_code), (JobStatus::Failed, Some(137)));
        assert_eq!(
            s.detail.as_deref(),
            Some("Grid Engine: failed 100 : assumedly after job")
        );
        let ok = QACCT_EXIT.replace("exit_status  5", "exit_status  0");
        assert_eq!(qacct_status(&ok).unwrap().status, JobStatus::Completed);
        assert_eq!(qacct_status("error: job id 99 not found"), None);
        assert_eq!(qacct_status("failed 0\nexit_status banana\n"), None);
    }

    #[test]
    fn accounting_flush_times() {
        use std::time::Duration;
        let conf = "execd_spool_dir              /var/spool/gridengine/execd\nreporting_params             accounting=true reporting=false \\\n                             flush_time=00:00:15 joblog=false sharelog=00:00:00\nfinished_jobs                100\n";
        assert_eq!(accounting_flush(conf), Some(Duration::from_secs(15)));
        let conf = conf.replace("joblog", "accounting_flush_time=00:01:02 joblog");
        assert_eq!(accounting_flush(&conf), Some(Duration::from_secs(62)));
        assert_eq!(accounting_flush("error: access denied"), None);
    }

    #[test]
    fn parallel_environments() {
        assert_eq!(
            queue_pes("qname all.q\npe_list               make mpi,[orcn1=orc,smp]\nslots 4\n"),
            ["make", "mpi", "orc", "smp"]
        );
        assert!(queue_pes("pe_list NONE\n").is_empty());
        let pe = "pe_name            orc\nslots              999\ncontrol_slaves     TRUE\njob_is_first_task  FALSE\n";
        assert!(pe_controls_slaves(pe));
        assert!(!pe_controls_slaves(&pe.replace("TRUE", "FALSE")));
        assert!(!pe_controls_slaves(
            "error: parallel environment \"x\" does not exist"
        ));
    }
}
