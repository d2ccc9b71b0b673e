//! The `orc` Python package (python/, PyO3) against real orc: its pytest suite
//! (`python/tests`: databases, ensembles of real SmartRedis programs, key prefixing,
//! status, reconnect from a second process, bad input) and the SmartSim tutorial port in
//! `examples/driver.py`. `scripts/test` installs the package into the SmartRedis venv
//! (`scripts/python-install`) before the tests.
#![allow(clippy::unwrap_used)]

use std::{path::PathBuf, process::Command};

use orc_tests::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv's Python, with orc-ai and `orc` from this build.
fn python() -> Command {
    let py = smartredis_python();
    let ok = Command::new(&py)
        .args(["-c", "import orc, pytest"])
        .status()
        .unwrap();
    assert!(
        ok.success(),
        "the orc package or pytest is missing from {}: run scripts/python-install",
        py.display()
    );
    let mut c = Command::new(py);
    let bin = orc_bin();
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    c.env("ORC_AI_MODULE", plugin_file("orc_ai"))
        .env("PATH", path)
        .env_remove("ORC_STATE_DIR")
        .env_remove("SLURM_JOB_ID")
        .env_remove("SLURM_JOBID")
        .env("SR_LOG_LEVEL", "quiet")
        .current_dir(repo());
    c
}

#[test]
fn the_pytest_suite_passes() {
    let dir = tempfile::tempdir().unwrap();
    let out = python()
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "python/tests",
        ])
        .arg(format!(
            "--basetemp={}",
            dir.path().join("pytest").display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn the_tutorial_driver_runs() {
    let out = python().arg("examples/driver.py").output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for member in 0..4 {
        let mean = 3.5 * f64::from(member + 1);
        assert!(
            stdout.contains(&format!("sim_{member} mean {mean}")),
            "sim_{member}: {stdout}"
        );
    }
    assert!(stdout.contains("| analysis"), "{stdout}");
}
