//! The launcher conformance suite (`orc_tests::conformance`) on the local launcher, linked
//! and loaded as a dynamic plugin (through the plugin ABI), and on the PBS, Cobalt and LSF
//! launchers' plugins inside jobs of the scheduler simulator (`orc-launcher-kit/sim`). The Slurm
//! launcher runs it in `slurm.rs`.
#![allow(clippy::unwrap_used)]

use orc_core::LaunchStep;
use orc_host::PluginHost;
use orc_tests::{conformance, plugin_file};

#[test]
fn local_launcher_linked() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run(&conformance::Target {
        launcher: &orc_launcher_local::LocalLauncher::new(),
        dir: dir.path(),
        place: &|s| s,
    });
}

#[test]
fn local_launcher_as_a_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = PluginHost::new();
    host.load_file(&plugin_file("orc_plugin_launcher_local"))
        .unwrap();
    let l = host.launcher("local").unwrap();
    conformance::run(&conformance::Target {
        launcher: l.as_ref(),
        dir: dir.path(),
        place: &|s| s,
    });
}

#[test]
fn pbs_launcher_as_a_plugin_inside_a_simulated_job() {
    let dir = tempfile::tempdir().unwrap();
    let nodefile = dir.path().join("nodefile");
    std::fs::write(&nodefile, format!("{}\n", orc_net::hostname())).unwrap();
    let sim = orc_tests::sim().bin();
    let path = format!("{}:{}", sim.display(), std::env::var("PATH").unwrap());
    let mut host = PluginHost::new();
    host.load_file(&plugin_file("orc_plugin_launcher_pbs"))
        .unwrap();
    let l = host.launcher("pbs").unwrap();
    let place = |s: LaunchStep| {
        s.env("PBS_JOBID", "77.sim-pbs")
            .env("PBS_NODEFILE", nodefile.display().to_string())
            .env("PATH", &path)
    };
    conformance::run(&conformance::Target {
        launcher: l.as_ref(),
        dir: dir.path(),
        place: &place,
    });
}

#[test]
fn cobalt_launcher_as_a_plugin_inside_a_simulated_job() {
    let dir = tempfile::tempdir().unwrap();
    let sim = orc_tests::sim().bin();
    let path = format!("{}:{}", sim.display(), std::env::var("PATH").unwrap());
    let mut host = PluginHost::new();
    host.load_file(&plugin_file("orc_plugin_launcher_cobalt"))
        .unwrap();
    let l = host.launcher("cobalt").unwrap();
    let place = |mut s: LaunchStep| {
        s.run.hosts = vec!["nid03825".into()];
        s.env("COBALT_JOBID", "507998")
            .env("COBALT_PARTNAME", "3824-3827")
            .env("PATH", &path)
    };
    conformance::run(&conformance::Target {
        launcher: l.as_ref(),
        dir: dir.path(),
        place: &place,
    });
}

fn lsf_suite(placed: bool) {
    let dir = tempfile::tempdir().unwrap();
    let sim = orc_tests::sim().bin();
    let path = format!("{}:{}", sim.display(), std::env::var("PATH").unwrap());
    let mut host = PluginHost::new();
    host.load_file(&plugin_file("orc_plugin_launcher_lsf"))
        .unwrap();
    let l = host.launcher("lsf").unwrap();
    let me = orc_net::hostname();
    let spool = tempfile::tempdir().unwrap();
    let place = |mut s: LaunchStep| {
        if placed {
            s.run.hosts = vec![me.clone()];
        }
        s.env("LSB_JOBID", "12345")
            .env("LSB_MCPU_HOSTS", format!("batch1 1 {me} 42"))
            .env("PATH", &path)
            // The simulated JSM's step table, this test's own.
            .env("ORC_SIM_SPOOL", spool.path().display().to_string())
    };
    conformance::run(&conformance::Target {
        launcher: l.as_ref(),
        dir: dir.path(),
        place: &place,
    });
}

#[test]
fn lsf_launcher_as_a_plugin_inside_a_simulated_job() {
    lsf_suite(false);
}

#[test]
fn lsf_launcher_placing_steps_with_erf_files() {
    lsf_suite(true);
}
