//! Orchestrators as one batch job on PBS and LSF, against the scheduler simulator
//! (`orc-launcher-kit/sim`): from outside any job, `orc db start --batch` submits one job whose script
//! runs orc's job agent, the agent starts every shard inside the job (`mpiexec`, `jsrun`),
//! and `orc db stop` ends the job with nothing left running. On Cobalt the shards' nodes
//! (`nid03824`) have names that do not resolve here, so the shards bind to an interface
//! looked up on their node (`--interface lo`, through `orc-shard-exec`).
#![allow(clippy::unwrap_used)]

use std::{path::PathBuf, process::Command};

use orc_tests::*;

/// A state directory and a simulator spool, and `orc` commands that use both from
/// outside any job.
struct Site {
    state: State,
    /// What `$ORC_STATE_DIR` names: `orc` is given `--state-dir` instead, and nothing
    /// (job agents, job records) may land here.
    decoy: tempfile::TempDir,
    spool: tempfile::TempDir,
    path: String,
}

impl Site {
    /// The simulator's PBS and LSF commands, or its Cobalt flavour first for `cobalt`.
    fn new(launcher: &str) -> Site {
        let path = orc_tests::sim().path_for(launcher == "cobalt");
        Site {
            state: State::new(),
            decoy: tempfile::tempdir().unwrap(),
            spool: tempfile::tempdir().unwrap(),
            path,
        }
    }

    fn cmd(&self, exe: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        let mut c = Command::new(exe);
        c.args(args)
            .env("PATH", &self.path)
            .env("ORC_SIM_SPOOL", self.spool.path())
            .env("ORC_STATE_DIR", self.decoy.path())
            .env_remove("ORC_PLUGIN_PATH")
            .env_remove("PBS_JOBID")
            .env_remove("LSB_JOBID")
            .env_remove("COBALT_JOBID");
        c
    }

    fn orc(&self, args: &[&str]) -> std::process::Output {
        let state = self.state.path().display().to_string();
        let mut all = vec!["--state-dir", state.as_str()];
        all.extend_from_slice(args);
        self.cmd(orc_bin(), &all).output().unwrap()
    }

    /// Nothing was written under `$ORC_STATE_DIR`: the state directory `orc` was given
    /// reached the launcher and its job agent.
    fn assert_decoy_untouched(&self) {
        let left: Vec<_> = std::fs::read_dir(self.decoy.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "written under $ORC_STATE_DIR: {left:?}");
    }

    fn agents(&self) -> PathBuf {
        self.state.path().join("agents")
    }
}

/// The simulator's word for job `job`'s state (PBS `job_state`, LSF `STAT`, Cobalt's
/// state; empty once Cobalt has forgotten it).
fn job_state(site: &Site, launcher: &str, job: &str) -> String {
    if launcher == "cobalt" {
        let out = site
            .cmd("qstat", &["--header", "JobId:State", job])
            .output()
            .unwrap();
        text(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{job} ")))
            .unwrap_or("")
            .trim()
            .to_string()
    } else if launcher == "pbs" {
        let out = site
            .cmd("qstat", &["-f", "-F", "json", "-x", job])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["Jobs"][job]["job_state"].as_str().unwrap().to_string()
    } else {
        let out = site
            .cmd("bjobs", &["-noheader", "-o", "jobid stat exit_code", job])
            .output()
            .unwrap();
        text(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    }
}

fn an_orchestrator_as_one_batch_job(
    launcher: &str,
    queue: &str,
    directives: &[&str],
    extra: &[&str],
) {
    let site = Site::new(launcher);
    let db = format!("{launcher}db");
    let port = free_port_range(3).to_string();
    let mut args = vec![
        "db",
        "start",
        "--db",
        &db,
        "--launcher",
        launcher,
        "--batch",
        "--nodes",
        "1",
        "--walltime",
        "10",
        "--queue",
        queue,
        "--account",
        "proj1",
        "--shards",
        "3",
        "--shards-per-host",
        "3",
        "--port",
        &port,
        "--json",
    ];
    args.extend_from_slice(extra);
    let v = start_json(&site.orc(&args));
    let steps = json_strings(&v, "step");
    // Every shard is a step the agent of one job started inside it.
    let job = steps[0]
        .strip_prefix("agent:")
        .and_then(|s| s.rsplit_once(':'))
        .map(|(j, _)| j.to_string())
        .unwrap_or_else(|| panic!("{launcher}: {steps:?}"));
    assert!(
        steps
            .iter()
            .all(|s| s.starts_with(&format!("agent:{job}:"))),
        "{steps:?}"
    );
    if extra.contains(&"--single-step") {
        // One MPMD launch holds every shard.
        assert!(steps.iter().all(|s| *s == steps[0]), "{steps:?}");
    } else {
        assert_eq!(
            steps.iter().collect::<std::collections::HashSet<_>>().len(),
            steps.len(),
            "{steps:?}"
        );
    }
    assert!(
        ["R", "RUN", "running"].contains(&job_state(&site, launcher, &job).as_str()),
        "{launcher}: job {job} is {}",
        job_state(&site, launcher, &job)
    );
    let script = std::fs::read_dir(site.agents())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".sh"))
        .unwrap();
    let script = std::fs::read_to_string(script).unwrap();
    for d in directives {
        assert!(script.contains(d), "{launcher}: no `{d}` in\n{script}");
    }

    // A verified cluster that holds data; status works from outside the job.
    let addrs = json_strings(&v, "addresses");
    assert_cluster_holds_data(&addrs);
    let st = site.orc(&["db", "status", "--db", &db]);
    assert_eq!(
        st.status.code(),
        Some(0),
        "{launcher}: {}",
        text(&st.stdout)
    );
    assert!(
        text(&st.stdout).contains("process running"),
        "{}",
        text(&st.stdout)
    );

    // Stop: the shards shut down, the agent ends the job, nothing is left.
    let out = site.orc(&["db", "stop", "--db", &db]);
    assert!(out.status.success(), "{launcher}: {}", text(&out.stderr));
    assert!(
        ["F", "DONE", ""].contains(&job_state(&site, launcher, &job).as_str()),
        "{launcher}: job {job} is {}",
        job_state(&site, launcher, &job)
    );
    for a in &addrs {
        assert!(!listening(a), "{launcher}: {a}");
    }
    assert!(
        !site.agents().join(&job).exists(),
        "the agent's directory is left"
    );
    let agent = Command::new("pgrep")
        .args(["-f", &site.agents().join(&job).display().to_string()])
        .output()
        .unwrap();
    assert!(
        text(&agent.stdout).is_empty(),
        "agent left: {}",
        text(&agent.stdout)
    );
    site.assert_decoy_untouched();
}

#[test]
fn a_three_shard_orchestrator_as_one_pbs_job() {
    an_orchestrator_as_one_batch_job(
        "pbs",
        "workq",
        &[
            "#PBS -N orc-pbsdb",
            "#PBS -l select=1:ncpus=3:mpiprocs=3",
            "#PBS -l walltime=00:10:00",
            "#PBS -A proj1",
            "#PBS -q workq",
        ],
        &[],
    );
}

#[test]
fn a_three_shard_orchestrator_as_one_lsf_job() {
    an_orchestrator_as_one_batch_job(
        "lsf",
        "normal",
        &[
            "#BSUB -J orc-lsfdb",
            "#BSUB -nnodes 1",
            "#BSUB -W 00:10",
            "#BSUB -P proj1",
            "#BSUB -q normal",
        ],
        &[],
    );
}

#[test]
fn a_three_shard_orchestrator_as_one_cobalt_job_bound_on_its_node() {
    an_orchestrator_as_one_batch_job(
        "cobalt",
        "default",
        &[
            "#COBALT --jobname orc-cobaltdb",
            "#COBALT -n 1",
            "#COBALT -t 10",
            "#COBALT -q default",
            "#COBALT -A proj1",
        ],
        &["--interface", "lo"],
    );
}

#[test]
fn every_shard_as_one_mpmd_step() {
    // `--single-step`: one `mpiexec ... : ...`, one ERF file with an app per shard, one
    // `aprun ... : ...`.
    an_orchestrator_as_one_batch_job("pbs", "workq", &[], &["--single-step"]);
    an_orchestrator_as_one_batch_job("lsf", "normal", &[], &["--single-step"]);
    an_orchestrator_as_one_batch_job(
        "cobalt",
        "default",
        &[],
        &["--single-step", "--interface", "lo"],
    );
}

#[test]
fn batch_jobs_that_fail_are_reported_and_removed() {
    let site = Site::new("pbs");
    // The scheduler refuses the submission: its words surface.
    let out = site.orc(&[
        "db",
        "start",
        "--db",
        "badq",
        "--launcher",
        "pbs",
        "--batch",
        "--queue",
        "nosuchqueue",
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("qsub refused the job: Unknown queue"), "{err}");

    // The job starts but its agent cannot: the job's own output explains.
    for launcher in ["pbs", "lsf"] {
        let out = site
            .cmd(
                orc_bin(),
                &[
                    "db",
                    "start",
                    "--db",
                    "noagent",
                    "--launcher",
                    launcher,
                    "--batch",
                ],
            )
            .env("ORC_BIN", "/nonexistent/orc")
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{launcher}: {err}");
        assert!(
            err.contains("ended before its agent served"),
            "{launcher}: {err}"
        );
        assert!(err.contains("/nonexistent/orc"), "{launcher}: {err}");
        assert!(site.state.path().join("agents").exists());
        let left: Vec<_> = std::fs::read_dir(site.agents())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".sh") && !n.ends_with(".out"))
            .collect();
        assert!(left.is_empty(), "{launcher}: {left:?}");
    }

    // An interface the shards' node does not have: the shard's own words, and no job left.
    let out = site.orc(&[
        "db",
        "start",
        "--db",
        "noif",
        "--launcher",
        "pbs",
        "--batch",
        "--interface",
        "nope0",
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("exited while starting"), "{err}");
    assert!(
        err.contains("network interface `nope0` does not exist"),
        "{err}"
    );
    let out = site.cmd("qstat", &[]).output().unwrap();
    assert!(
        text(&out.stdout).trim().is_empty(),
        "jobs left: {}",
        text(&out.stdout)
    );
}

/// While the job waits in the queue (the simulator holds each job 3 s,
/// `ORC_SIM_PEND_SECS`), orc shows its state and the scheduler's reason: PBS's comment,
/// LSF's pending reason, Cobalt's state (its `qstat` gives no reason); then it starts.
#[test]
fn queue_waits_show_the_schedulers_state_and_reason() {
    for (launcher, said) in [
        (
            "pbs",
            " Q (Not Running: Insufficient amount of resource: ncpus)",
        ),
        ("lsf", " PEND (New job is waiting for scheduling;)"),
        ("cobalt", " queued"),
    ] {
        let site = Site::new(launcher);
        let state = site.state.path().display().to_string();
        let mut args = vec!["--state-dir", state.as_str()];
        let db = format!("q{launcher}");
        args.extend_from_slice(&[
            "db",
            "start",
            "--db",
            &db,
            "--launcher",
            launcher,
            "--batch",
            "--shards",
            "1",
            "--port",
            "0",
            "--no-ai",
        ]);
        if launcher == "cobalt" {
            args.extend_from_slice(&["--interface", "lo"]);
        }
        let out = site
            .cmd(orc_bin(), &args)
            .env("ORC_SIM_PEND_SECS", "3")
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(out.status.success(), "{launcher}: {err}");
        assert!(
            err.lines()
                .any(|l| l.contains("batch job ") && l.ends_with(said)),
            "{launcher}: {err}"
        );
        let out = site.orc(&["db", "stop", "--db", &db]);
        assert!(out.status.success(), "{launcher}: {}", text(&out.stderr));
    }
}
