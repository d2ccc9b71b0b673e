//! A scheduler status command that fails, or prints something orc cannot read, is an
//! error that shows what it said: never a silent "completed". For PBS (`qstat -f -F json`),
//! LSF (`bjobs -o`), Cobalt (`qstat --header`) and Grid Engine (`qstat -xml`); Slurm's
//! case is in `slurm.rs`.
//!
//! The launchers run their status commands from this process's `PATH`, so this binary
//! puts stand-ins first on it; it holds this one test only.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;

use orc_core::StepId;
use orc_host::PluginHost;
use orc_tests::{plugin_file, site_plugin};

#[test]
fn status_commands_that_fail_or_print_garbage_are_errors() {
    let bin = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    // SAFETY: the only test in this binary; nothing else runs while the variables change.
    unsafe {
        std::env::set_var("PATH", &path);
        std::env::set_var("ORC_STATE_DIR", state.path());
    }
    let sge = site_plugin("launcher-sge", "orc_site_launcher_sge");
    let mut host = PluginHost::new();
    for lib in [
        plugin_file("orc_plugin_launcher_pbs"),
        plugin_file("orc_plugin_launcher_lsf"),
        plugin_file("orc_plugin_launcher_cobalt"),
        sge.path().join("liborc_site_launcher_sge.so"),
    ] {
        host.load_file(&lib).unwrap();
    }
    let cases = [
        ("pbs", "qstat", "12.pbs01"),
        ("lsf", "bjobs", "12"),
        ("cobalt", "qstat", "12"),
        ("sge", "qstat", "12"),
    ];
    for (launcher, command, job) in cases {
        let l = host.launcher(launcher).unwrap();
        for (what, script, said) in [
            ("garbage", "echo 'garbage out'", "garbage out"),
            (
                "failure",
                "echo 'cannot connect to server head1' >&2; exit 1",
                "cannot connect to server head1",
            ),
        ] {
            let exe = bin.path().join(command);
            std::fs::write(&exe, format!("#!/bin/sh\n{script}\n")).unwrap();
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
            match l.status(&[StepId(job.into())]) {
                Ok(s) => panic!("{launcher}, {what}: a status from nothing: {}", s[0]),
                Err(e) => {
                    let e = e.to_string();
                    assert!(e.contains(said), "{launcher}, {what}: {e}");
                }
            }
            std::fs::remove_file(&exe).unwrap();
        }
    }
}
