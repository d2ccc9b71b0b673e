//! PBS batch jobs against the scheduler simulator's `qsub`/`qstat`/`qdel` (`tests/sim`;
//! PBS cannot run here): every step submitted outside a job passes the launcher
//! conformance suite as a job of its own; a submission PBS refuses, and a job id PBS does
//! not know, are clear errors.
//!
//! The launcher runs `qstat`/`qdel` from this process's `PATH`, so this binary puts the
//! simulator on it before anything else runs; it holds this one test only.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use orc_core::{LaunchStep, StepId, plugin::PluginHost};
use orc_tests::{conformance, plugin_file};

#[test]
fn pbs_batch_jobs() {
    let sim = Path::new(env!("CARGO_MANIFEST_DIR")).join("sim/bin");
    let path = format!("{}:{}", sim.display(), std::env::var("PATH").unwrap());
    let spool = tempfile::tempdir().unwrap();
    // SAFETY: the only test in this binary; nothing else runs while the variables change.
    unsafe {
        std::env::set_var("PATH", &path);
        std::env::set_var("ORC_SIM_SPOOL", spool.path());
        std::env::remove_var("PBS_JOBID");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut host = PluginHost::new();
    host.load_file(&plugin_file("orc_plugin_launcher_pbs"))
        .unwrap();
    let l = host.launcher("pbs").unwrap();
    conformance::run(&conformance::Target {
        launcher: l.as_ref(),
        dir: dir.path(),
        place: &|s| s,
    });
    // Every step was a job of its own, with its generated script.
    assert!(dir.path().join("fails.pbs.sh").exists());

    // A queue PBS does not have: its words surface.
    let mut s = LaunchStep::new("badq", "true", dir.path());
    s.run.extra.insert("q".into(), Some("nosuchqueue".into()));
    let err = l.launch(&s).unwrap_err().to_string();
    assert!(err.contains("qsub refused the job: Unknown queue"), "{err}");

    // A job PBS does not know is an error, never "completed".
    let err = l
        .status(&[StepId("999999.sim".into())])
        .unwrap_err()
        .to_string();
    assert!(err.contains("PBS does not know job 999999.sim"), "{err}");
}
