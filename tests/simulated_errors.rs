//! The Cobalt and LSF launchers' errors, against the scheduler simulator's `aprun` and
//! `jsrun` (`orc-launcher-kit/sim`; neither scheduler can run here). The conformance suite runs both
//! in `conformance.rs`.
#![allow(clippy::unwrap_used)]

use orc_core::{JobStatus, LaunchStep, Launcher};
use orc_launcher_cobalt::CobaltLauncher;
use orc_launcher_lsf::LSFLauncher;
use orc_tests::wait_terminal;

#[test]
fn cobalt_steps_outside_the_job_or_its_nodes_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let sim = orc_tests::sim().bin();
    let path = format!("{}:{}", sim.display(), std::env::var("PATH").unwrap());
    let l = CobaltLauncher::new();
    let in_job = |name: &str| {
        LaunchStep::new(name, "true", dir.path())
            .env("COBALT_JOBID", "507998")
            .env("COBALT_PARTNAME", "3824-3827")
            .env("PATH", &path)
    };

    // A node of another job: aprun refuses and the step fails with its message.
    let mut other = in_job("other");
    other.run.hosts = vec!["nid04000".into()];
    let id = l.launch(&other).unwrap();
    assert_eq!(wait_terminal(&l, &id).status, JobStatus::Failed);
    assert!(
        std::fs::read_to_string(&other.stderr)
            .unwrap()
            .contains("node 4000 is not in job 507998")
    );

    // A host that is not a Cray node name.
    let mut login = in_job("login");
    login.run.hosts = vec!["login1".into()];
    let err = l.launch(&login).unwrap_err().to_string();
    assert!(err.contains("aprun takes Cray node names"), "{err}");

    // No aprun on PATH.
    let err = l
        .launch(&in_job("noaprun").env("PATH", "/usr/bin:/bin"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("aprun") && err.contains("ALPS"), "{err}");

    // Outside any Cobalt job a step is a batch job: here no qsub is on PATH.
    let err = l
        .launch(&LaunchStep::new("outside", "true", dir.path()).env("PATH", "/nonexistent"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("qsub") && err.contains("Cobalt login node"),
        "{err}"
    );
    let err = l.allocation().unwrap_err().to_string();
    assert!(err.contains("not inside a Cobalt job"), "{err}");
}

#[test]
fn lsf_steps_outside_the_job_or_its_hosts_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let sim = orc_tests::sim().bin();
    let path = format!("{}:{}", sim.display(), std::env::var("PATH").unwrap());
    let l = LSFLauncher::new();
    let me = orc_net::hostname();
    let in_job = |name: &str| {
        LaunchStep::new(name, "true", dir.path())
            .env("LSB_JOBID", "12345")
            .env("LSB_MCPU_HOSTS", format!("batch1 1 {me} 42"))
            .env("PATH", &path)
            .env(
                "ORC_SIM_SPOOL",
                dir.path().join("spool").display().to_string(),
            )
    };

    // A host of another job.
    let mut other = in_job("other");
    other.run.hosts = vec!["elsewhere".into()];
    let err = l.launch(&other).unwrap_err().to_string();
    assert!(
        err.contains("host `elsewhere` is not part of this job (batch1"),
        "{err}"
    );

    // The launch node is no compute host: jsrun refuses the ERF, the step fails with it.
    let mut launch_node = in_job("launchnode");
    launch_node.run.hosts = vec!["batch1".into()];
    let id = l.launch(&launch_node).unwrap();
    assert_eq!(wait_terminal(&l, &id).status, JobStatus::Failed);
    assert!(
        std::fs::read_to_string(&launch_node.stderr)
            .unwrap()
            .contains("not a compute host of job 12345")
    );
    // Every placed rank is in the resource file (SmartSim 0.8 dropped the first).
    let erf = std::fs::read_to_string(dir.path().join("launchnode.erf")).unwrap();
    assert!(erf.contains("app 0 : true\n"), "{erf}");
    assert!(erf.contains("rank: 0: { host: 0;"), "{erf}");

    // A malformed host list, no jsrun on PATH, and outside any job.
    let mut bad = in_job("bad").env("LSB_MCPU_HOSTS", "batch1 1 node");
    bad.run.hosts = vec!["node".into()];
    let err = l.launch(&bad).unwrap_err().to_string();
    assert!(err.contains("not a list of host and slot pairs"), "{err}");
    let err = l
        .launch(&in_job("nojsrun").env("PATH", "/usr/bin:/bin"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("jsrun") && err.contains("IBM CSM"), "{err}");
    // Outside any job a step becomes a batch job: here no bsub is on PATH.
    let err = l
        .launch(&LaunchStep::new("outside", "true", dir.path()).env("PATH", "/nonexistent"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bsub") && err.contains("LSF login node"),
        "{err}"
    );
    let err = l.allocation().unwrap_err().to_string();
    assert!(err.contains("not inside an LSF job"), "{err}");
}

#[test]
fn lsf_cancel_ends_the_tasks_through_jskill() {
    // JSM leaves a step's tasks running when only jsrun is killed (SmartSim's LSF pain
    // point), and so does the simulator: the launcher's jsrun wrapper must jskill its step.
    let dir = tempfile::tempdir().unwrap();
    let sim = orc_tests::sim().bin();
    let path = format!("{}:{}", sim.display(), std::env::var("PATH").unwrap());
    let spool = dir.path().join("spool");
    let me = orc_net::hostname();
    let l = LSFLauncher::new();
    let marker = format!("orc-jskill-test-{}", std::process::id());
    let step = LaunchStep::new("long", "sh", dir.path())
        .args(["-c", &format!("sleep 600; true {marker}")])
        .env("LSB_JOBID", "777")
        .env("LSB_MCPU_HOSTS", format!("batch1 1 {me} 42"))
        .env("PATH", &path)
        .env("ORC_SIM_SPOOL", spool.display().to_string());
    let id = l.launch(&step).unwrap();
    // The rank itself (its command line starts with the step's; jsrun's and the
    // wrapper's hold the marker too, further on).
    let task = format!("^sh -c sleep 600; true {marker}");
    let running = || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", &task])
            .output()
            .unwrap();
        !out.stdout.is_empty()
    };
    let jslist = || {
        let out = std::process::Command::new(sim.join("jslist"))
            .env("LSB_JOBID", "777")
            .env("ORC_SIM_SPOOL", &spool)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        orc_tests::wait_for(std::time::Duration::from_secs(10), || {
            orc_launcher_lsf::parse::jslist_status(&jslist(), "1").map(|s| s.0)
                == Some("Running".into())
                && running()
        }),
        "{}",
        jslist()
    );
    let s = l.cancel(&id).unwrap();
    assert_eq!(s.status, JobStatus::Cancelled, "{s}");
    assert!(
        orc_tests::wait_for(std::time::Duration::from_secs(10), || !running()),
        "the step's task outlived its cancel"
    );
    assert_eq!(
        orc_launcher_lsf::parse::jslist_status(&jslist(), "1").map(|s| s.0),
        Some("Killed".into()),
        "{}",
        jslist()
    );
}
