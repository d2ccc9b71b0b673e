//! Cobalt batch jobs against the scheduler simulator's Cobalt flavour (`orc-launcher-kit/sim/cobalt`):
//! steps submitted outside a job pass the launcher conformance suite as jobs of their own
//! (Cobalt's `qstat` forgets ended jobs, so exit codes come from the record the job script
//! leaves); steps inside a job orc holds from outside it pass it through the job agent; a
//! refused submission and a job orc never submitted are clear errors.
//!
//! The launcher runs `qstat`/`qdel` from this process's `PATH`, so this binary puts the
//! simulator on it first; it holds this one test only.
#![allow(clippy::unwrap_used)]

use orc_core::{BatchSettings, JobStatus, LaunchStep};
use orc_host::PluginHost;
use orc_tests::{conformance, orc_bin, plugin_file, wait_terminal};

#[test]
fn cobalt_batch_jobs_and_steps_through_the_agent() {
    let path = orc_tests::sim().path_for(true);
    let spool = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    // SAFETY: the only test in this binary; nothing else runs while the variables change.
    unsafe {
        std::env::set_var("PATH", &path);
        std::env::set_var("ORC_SIM_SPOOL", spool.path());
        std::env::set_var("ORC_STATE_DIR", state.path());
        std::env::set_var("ORC_BIN", orc_bin());
        std::env::remove_var("COBALT_JOBID");
    }
    let mut host = PluginHost::new();
    host.load_file(&plugin_file("orc_plugin_launcher_cobalt"))
        .unwrap();
    let l = host.launcher("cobalt").unwrap();

    // Steps outside a job: batch jobs of their own.
    let dir = tempfile::tempdir().unwrap();
    // Cobalt keeps no history: a job orc never submitted is an error, never "completed".
    conformance::as_batch_jobs(
        l.as_ref(),
        dir.path(),
        "999999",
        "Cobalt does not list job 999999",
    );
    let script = std::fs::read_to_string(dir.path().join("ok.cobalt.sh")).unwrap();
    assert!(script.contains("#COBALT --jobname ok\n"), "{script}");
    assert!(script.contains("aprun -n 1 -N 1 sh -c"), "{script}");

    // A cancelled job's script records the TERM it got (Cobalt itself would forget the job).
    let id = l
        .launch(&LaunchStep::new("sleeper", "sleep", dir.path()).args(["600"]))
        .unwrap();
    let s = l.cancel(&id).unwrap();
    assert_eq!(
        (s.status, s.exit_code),
        (JobStatus::Cancelled, Some(143)),
        "{s}"
    );

    // A queue Cobalt does not have: its words surface.
    let mut s = LaunchStep::new("badq", "true", dir.path());
    s.run.extra.insert("q".into(), Some("nosuchqueue".into()));
    let err = l.launch(&s).unwrap_err().to_string();
    assert!(
        err.contains("qsub refused the job: 'nosuchqueue' is not a valid queue"),
        "{err}"
    );

    // Steps inside a job orc holds from outside it, through the job's agent.
    let mut b = BatchSettings::default();
    b.nodes = Some(2);
    b.walltime_secs = Some(600);
    b.queue_timeout_secs = Some(30);
    let nids = ["nid03824".to_string(), "nid03825".to_string()];
    conformance::through_agent(l.as_ref(), &b, &nids, &|place, dir| {
        // Placed on one of the job's nodes; a node outside the job fails with aprun's words.
        let mut on = place(LaunchStep::new("on", "true", dir));
        on.run.hosts = vec!["nid03825".into()];
        let id = l.launch(&on).unwrap();
        assert_eq!(wait_terminal(l.as_ref(), &id).status, JobStatus::Completed);
        let mut off = place(LaunchStep::new("off", "true", dir));
        off.run.hosts = vec!["nid04000".into()];
        let id = l.launch(&off).unwrap();
        assert_eq!(wait_terminal(l.as_ref(), &id).status, JobStatus::Failed);
        let err = std::fs::read_to_string(&off.stderr).unwrap();
        assert!(err.contains("node 4000 is not in job"), "{err}");
    });
    // Requests the job's agent must refuse: forged, or for another job.
    let root = orc_launcher_kit::agent::root(state.path());
    conformance::agent_refuses_forgeries(l.as_ref(), &b, &root);
}
