//! Batch jobs against the scheduler simulator's PBS (`qsub`/`qstat`/`qdel`) and LSF
//! (`bsub`/`bjobs`/`bkill`) commands (`orc-launcher-kit/sim`; neither scheduler can run here): every
//! step submitted outside a job passes the launcher conformance suite as a job of its own;
//! a submission the scheduler refuses, and a job id it does not know, are clear errors;
//! and steps inside a job orc allocated from outside it (through the job agent,
//! `orc_launcher_kit::agent`) pass the suite too, and the agent refuses forged requests
//! and requests for another job.
//!
//! The launchers run their status and cancel commands from this process's `PATH`, so this
//! binary puts the simulator on it first; it holds this one test only.
#![allow(clippy::unwrap_used)]

use orc_core::{BatchSettings, LaunchStep};
use orc_host::PluginHost;
use orc_tests::{conformance, plugin_file};

fn suite(plugin: &str, name: &str, bad_queue: &str, refused: &str, unknown: (&str, &str)) {
    let dir = tempfile::tempdir().unwrap();
    let mut host = PluginHost::new();
    host.load_file(&plugin_file(plugin)).unwrap();
    let l = host.launcher(name).unwrap();
    // A job the scheduler does not know is an error, never "completed".
    conformance::as_batch_jobs(l.as_ref(), dir.path(), unknown.0, unknown.1);
    // Every step was a job of its own, with its generated script.
    let scripts = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".sh")
        })
        .count();
    assert!(scripts >= 7, "{name}: {scripts} job scripts");

    // A queue the scheduler does not have: its words surface.
    let mut s = LaunchStep::new("badq", "true", dir.path());
    s.run.extra.insert("q".into(), Some(bad_queue.into()));
    let err = l.launch(&s).unwrap_err().to_string();
    assert!(err.contains(refused), "{name}: {err}");

    // Steps inside a job held from outside it, through the job's agent.
    let mut b = BatchSettings::default();
    b.nodes = Some(1);
    b.queue_timeout_secs = Some(30);
    conformance::through_agent(l.as_ref(), &b, &[orc_net::hostname()], &|_, _| {});
    // Requests the job's agent must refuse: forged, or for another job.
    let state = std::env::var("ORC_STATE_DIR").unwrap();
    let root = orc_launcher_kit::agent::root(std::path::Path::new(&state));
    conformance::agent_refuses_forgeries(l.as_ref(), &b, &root);
}

#[test]
fn pbs_and_lsf_batch_jobs() {
    let sim = orc_tests::sim().bin();
    let path = format!("{}:{}", sim.display(), std::env::var("PATH").unwrap());
    let spool = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    // SAFETY: the only test in this binary; nothing else runs while the variables change.
    unsafe {
        std::env::set_var("PATH", &path);
        std::env::set_var("ORC_SIM_SPOOL", spool.path());
        // Job agents: their directories, and the orc binary the job scripts run.
        std::env::set_var("ORC_STATE_DIR", state.path());
        std::env::set_var("ORC_BIN", orc_tests::orc_bin());
        std::env::remove_var("PBS_JOBID");
        std::env::remove_var("LSB_JOBID");
    }
    suite(
        "orc_plugin_launcher_pbs",
        "pbs",
        "nosuchqueue",
        "qsub refused the job: Unknown queue",
        ("999999.sim", "PBS does not know job 999999.sim"),
    );
    suite(
        "orc_plugin_launcher_lsf",
        "lsf",
        "nosuchqueue",
        "bsub refused the job: nosuchqueue: No such queue. Job not submitted.",
        ("999999", "LSF does not know job 999999"),
    );
}
