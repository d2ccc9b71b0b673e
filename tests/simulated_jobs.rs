//! Orchestrators inside PBS and LSF jobs, against orc's scheduler simulator (`orc-launcher-kit/sim`:
//! PALS `mpiexec` and `jsrun` on a one-node "cluster"; neither scheduler can run here): a
//! 3-shard orchestrator started with `--launcher auto`, an application step that stores
//! data through it, and the PBS launcher's exit codes, cancellation and errors for a
//! missing `mpiexec`, a host outside the job and a process outside any job.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use orc_core::{JobStatus, LaunchStep, Launcher};
use orc_launcher_pbs::PBSLauncher;
use orc_tests::*;

const JOB: &str = "4242.sim-pbs";

/// The variables PBS sets inside a job, with the simulator first on `PATH`.
fn job_env(dir: &Path) -> Vec<(String, String)> {
    let nodefile = dir.join("nodefile");
    std::fs::write(&nodefile, format!("{}\n", orc_net::hostname())).unwrap();
    let sim = orc_tests::sim().bin();
    vec![
        ("PBS_JOBID".into(), JOB.into()),
        ("PBS_NODEFILE".into(), nodefile.display().to_string()),
        (
            "PATH".into(),
            format!("{}:{}", sim.display(), std::env::var("PATH").unwrap()),
        ),
    ]
}

fn in_job(mut step: LaunchStep, env: &[(String, String)]) -> LaunchStep {
    for (k, v) in env {
        step = step.env(k, v);
    }
    step
}

#[test]
fn a_three_shard_orchestrator_inside_a_pbs_job() {
    let state = State::new();
    let env = job_env(state.path());
    let orc_in_job = |args: &[&str]| {
        let mut c = state.orc_cmd(args);
        c.envs(env.iter().map(|(k, v)| (k, v)))
            .env_remove("SLURM_JOB_ID")
            .env_remove("SLURM_JOBID");
        c.output().unwrap()
    };
    let out = orc_in_job(&[
        "db",
        "start",
        "--launcher",
        "auto",
        "--shards",
        "3",
        "--shards-per-host",
        "3",
        "--port",
        &free_port_range(3).to_string(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["launcher"], "pbs", "inside a PBS job `auto` is PBS");
    let st = orc_in_job(&["db", "status"]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stdout));

    // An application step in the same job stores data through the database.
    let orc = orc_orchestrator::Orchestrator::connect(&static_host(), state.path(), "orchestrator")
        .unwrap();
    let l = PBSLauncher::new();
    let mut app = in_job(
        LaunchStep::new(
            "app",
            target_dir().join("examples/simulation"),
            state.path(),
        )
        .args(["3"]),
        &env,
    );
    app.run.hosts = vec![orc_net::hostname()];
    for (k, val) in orc.client_env() {
        app = app.env(k, val);
    }
    let id = l.launch(&app).unwrap();
    let done = wait_terminal(&l, &id);
    assert_eq!(
        (done.status, done.exit_code),
        (JobStatus::Completed, Some(0)),
        "{done}: {}",
        std::fs::read_to_string(&app.stderr).unwrap_or_default()
    );
    let addrs = orc.addresses();
    let a: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let mut c = orc_client::Client::new(orc_client::Config::new(&a, true).unwrap()).unwrap();
    assert_eq!(c.get_list_length("sim_steps").unwrap(), 3);

    let out = orc_in_job(&["db", "stop"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for a in &addrs {
        assert!(!listening(a), "{a}");
    }
}

#[test]
fn exit_codes_cancellation_and_errors() {
    let state = State::new();
    let env = job_env(state.path());
    let l = PBSLauncher::new();
    let step = |name: &str, script: &str| {
        in_job(
            LaunchStep::new(name, "sh", state.path()).args(["-c", script]),
            &env,
        )
    };

    let id = l.launch(&step("fails", "exit 3")).unwrap();
    let s = wait_terminal(&l, &id);
    assert_eq!((s.status, s.exit_code), (JobStatus::Failed, Some(3)), "{s}");

    let id = l.launch(&step("ok", "echo hello")).unwrap();
    let s = wait_terminal(&l, &id);
    assert_eq!(
        (s.status, s.exit_code),
        (JobStatus::Completed, Some(0)),
        "{s}"
    );
    assert_eq!(
        std::fs::read_to_string(state.path().join("ok.out")).unwrap(),
        "hello\n"
    );

    let id = l.launch(&step("sleeps", "sleep 60")).unwrap();
    let s = l.cancel(&id).unwrap();
    assert_eq!(s.status, JobStatus::Cancelled, "{s}");
    // Cancelling again is no error.
    assert!(l.cancel(&id).unwrap().status.is_terminal());

    // A host outside the job: mpiexec refuses, and the step fails with its message.
    let mut elsewhere = step("elsewhere", "true");
    elsewhere.run.hosts = vec!["not-in-this-job".into()];
    let id = l.launch(&elsewhere).unwrap();
    let s = wait_terminal(&l, &id);
    assert_eq!(s.status, JobStatus::Failed, "{s}");
    assert!(
        std::fs::read_to_string(&elsewhere.stderr)
            .unwrap()
            .contains("host not-in-this-job is not part of job 4242.sim-pbs")
    );

    // No mpiexec on PATH.
    let no_mpiexec = step("nompi", "true").env("PATH", "/usr/bin:/bin");
    let err = l.launch(&no_mpiexec).unwrap_err().to_string();
    assert!(err.contains("mpiexec") && err.contains("PALS"), "{err}");

    // Outside any PBS job a step becomes a batch job: here no qsub is on PATH.
    let outside = LaunchStep::new("outside", "true", state.path()).env("PATH", "/nonexistent");
    let err = l.launch(&outside).unwrap_err().to_string();
    assert!(
        err.contains("qsub") && err.contains("PBS login node"),
        "{err}"
    );
    let err = l.allocation().unwrap_err().to_string();
    assert!(err.contains("not inside a PBS job"), "{err}");
}

/// The same inside a simulated LSF job: shards placed with ERF files by `jsrun` on the
/// compute host (the launch node `batch1` gets none).
#[test]
fn a_three_shard_orchestrator_inside_an_lsf_job() {
    let state = State::new();
    let sim = orc_tests::sim().bin();
    let env = [
        (
            "ORC_SIM_SPOOL".to_string(),
            state.path().join("spool").display().to_string(),
        ),
        ("LSB_JOBID".to_string(), "12345".to_string()),
        (
            "LSB_MCPU_HOSTS".into(),
            format!("batch1 1 {} 42", orc_net::hostname()),
        ),
        (
            "PATH".into(),
            format!("{}:{}", sim.display(), std::env::var("PATH").unwrap()),
        ),
    ];
    let orc_in_job = |args: &[&str]| {
        let mut c = state.orc_cmd(args);
        c.envs(env.iter().map(|(k, v)| (k, v)))
            .env_remove("SLURM_JOB_ID")
            .env_remove("SLURM_JOBID")
            .env_remove("PBS_JOBID");
        c.output().unwrap()
    };
    let out = orc_in_job(&[
        "db",
        "start",
        "--launcher",
        "auto",
        "--shards",
        "3",
        "--shards-per-host",
        "3",
        "--port",
        &free_port_range(3).to_string(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["launcher"], "lsf", "inside an LSF job `auto` is LSF");
    let dir = v["dir"].as_str().unwrap();
    let erf = std::fs::read_to_string(Path::new(dir).join("orchestrator_0.erf")).unwrap();
    assert!(erf.contains("rank: 0: { host: 1;"), "{erf}");
    let st = orc_in_job(&["db", "status"]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stdout));
    let addrs = json_strings(&v, "addresses");
    let a: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let mut c = orc_client::Client::new(orc_client::Config::new(&a, true).unwrap()).unwrap();
    c.put_tensor_slice("t", &[1.5f64], &[1], orc_client::MemoryLayout::RowMajor)
        .unwrap();
    assert!(c.tensor_exists("t").unwrap());
    let out = orc_in_job(&["db", "stop"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for a in &addrs {
        assert!(!listening(a), "{a}");
    }
}
