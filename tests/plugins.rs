//! Dynamic loading of the real plugin `.so` files and refusal of broken ones.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use orc_core::{Error, JobStatus, LaunchStep};
use orc_host::{PluginHost, PluginKind, PluginSource};
use orc_tests::*;

fn refusal(host: &mut PluginHost, path: &Path) -> String {
    match host.load_file(path) {
        Err(Error::PluginLoad { path: p, reason }) => {
            assert_eq!(p, path);
            let listed = host
                .refusals()
                .iter()
                .find(|r| r.path == path)
                .expect("the refusal is recorded");
            assert_eq!(listed.reason, reason);
            reason
        }
        other => panic!("{} should be refused, got {other:?}", path.display()),
    }
}

/// Copy a built library under a `liborc_plugin_*` name into `dir`.
fn copy_as(dir: &Path, lib: &str, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(plugin_file(lib), &to).unwrap();
    to
}

#[test]
fn real_plugins_load_dynamically_and_run_a_database() {
    let mut host = PluginHost::new();
    let launchers = host
        .load_file(&plugin_file("orc_plugin_launcher_local"))
        .expect("launcher plugin");
    let deployments = host
        .load_file(&plugin_file("orc_plugin_db_redis"))
        .expect("db plugin");
    assert_eq!(launchers.len(), 1);
    assert_eq!(launchers[0].name, "local");
    assert_eq!(
        deployments
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["standalone", "cluster"]
    );
    for p in host.plugins() {
        match &p.source {
            PluginSource::Dynamic { path, package, .. } => {
                assert!(path.is_absolute());
                assert!(package.starts_with("orc-plugin-"));
            }
            other => panic!("expected a dynamic source, got {other:?}"),
        }
    }
    assert!(host.refusals().is_empty(), "{:?}", host.refusals());
    // Loading the same file again adds nothing and refuses nothing.
    assert!(
        host.load_file(&plugin_file("orc_plugin_db_redis"))
            .unwrap()
            .is_empty()
    );

    // A whole database through the dynamic launcher and deployment (calls cross the ABI).
    let state = State::new();
    let orc = launch(&host, &state, settings("dyn", 2)).expect("launch through plugins");
    assert_eq!(
        orc.status().unwrap().state,
        orc_orchestrator::DbState::Ready
    );
    let addrs = orc.addresses();
    let pids: Vec<u32> = orc
        .record()
        .shards
        .iter()
        .map(|s| step_pid(&s.step.0))
        .collect();
    // Errors cross the boundary with their kind intact.
    let err = orc
        .launcher()
        .status(&[orc_core::StepId("garbage".into())])
        .unwrap_err();
    assert!(matches!(err, Error::Launcher { .. }), "{err:?}");
    orc.stop().unwrap();
    assert_all_gone(&pids, &addrs);
}

#[test]
fn broken_plugin_files_are_refused_with_distinct_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = PluginHost::new();

    let garbage = dir.path().join("liborc_plugin_garbage.so");
    std::fs::write(&garbage, b"this is not an ELF file").unwrap();
    let r = refusal(&mut host, &garbage);
    assert!(r.contains("cannot be opened as a shared library"), "{r}");

    let r = refusal(&mut host, &plugin_file("orc_fixture_not_plugin"));
    assert!(r.contains("is not an orc plugin"), "{r}");

    let r = refusal(&mut host, &plugin_file("orc_fixture_wrong_abi"));
    assert!(
        r.contains("orc plugin ABI version 999") && r.contains("this orc speaks ABI version 1"),
        "{r}"
    );

    let r = refusal(&mut host, &plugin_file("orc_fixture_init_fails"));
    assert!(
        r.contains("refused to initialise: the licence server is unreachable"),
        "{r}"
    );

    let r = refusal(&mut host, &plugin_file("orc_fixture_root_panics"));
    assert!(
        r.contains("panicked while its root module was being loaded"),
        "{r}"
    );

    let r = refusal(&mut host, &dir.path().join("liborc_plugin_missing.so"));
    assert!(r.contains("does not exist"), "{r}");

    assert_eq!(host.refusals().len(), 6);
    assert_eq!(host.plugins().count(), 0);
    // The host is still perfectly usable.
    host.load_file(&plugin_file("orc_plugin_launcher_local"))
        .expect("a good plugin still loads");
    assert!(host.launcher("local").is_ok());
}

#[test]
fn duplicate_names_are_refused_and_panics_become_errors() {
    let mut host = PluginHost::new();
    host.load_file(&plugin_file("orc_plugin_launcher_local"))
        .unwrap();
    let added = host.load_file(&plugin_file("orc_fixture_panicky")).unwrap();
    assert_eq!(
        added.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["panicky"]
    );
    let dup = &host.refusals()[0];
    assert!(
        dup.reason
            .contains("provides launcher `local`, which is already provided by"),
        "{}",
        dup.reason
    );
    assert!(
        dup.reason.contains("liborc_plugin_launcher_local.so"),
        "{}",
        dup.reason
    );
    // The real local launcher is the one in use.
    let dir = tempfile::tempdir().unwrap();
    let local = host.launcher("local").unwrap();
    let id = local
        .launch(&LaunchStep::new("t", "true", dir.path()))
        .unwrap();
    let done = wait_for(std::time::Duration::from_secs(5), || {
        local.status(std::slice::from_ref(&id)).unwrap()[0].status == JobStatus::Completed
    });
    assert!(done);
    // A panic inside a plugin call comes back as an error; the host lives on.
    let panicky = host.launcher("panicky").unwrap();
    let err = panicky
        .launch(&LaunchStep::new("boom", "true", dir.path()))
        .unwrap_err();
    match &err {
        Error::Plugin {
            plugin,
            method,
            message,
        } => {
            assert_eq!(plugin, "panicky");
            assert_eq!(method, "launch");
            assert!(
                message.contains("panicked: panicky launcher cannot launch boom"),
                "{message}"
            );
        }
        other => panic!("expected a plugin error, got {other:?}"),
    }
    assert!(panicky.status(&[]).is_err());
    assert_eq!(panicky.allocation().unwrap().hosts, ["localhost"]);
    assert!(
        host.plugins()
            .any(|p| p.kind == PluginKind::Launcher && p.name == "panicky")
    );
}

#[test]
fn orc_plugins_lists_sources_and_refusals() {
    let state = State::new();
    let dir = tempfile::tempdir().unwrap();
    copy_as(dir.path(), "orc_fixture_wrong_abi", "wrong_abi.so");
    copy_as(dir.path(), "orc_fixture_not_plugin", "not_plugin.so");
    copy_as(dir.path(), "orc_fixture_panicky", "panicky.so");
    let out = state
        .orc_cmd(&["plugins", "--json"])
        .env("ORC_PLUGIN_PATH", dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "refusals give exit code 5: {}",
        text(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // The panicky fixture comes first on the path, so its `local` wins and the real
    // plugin's `local` (next to the binary) is the duplicate.
    for n in ["panicky", "local", "standalone", "cluster"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let refused: Vec<String> = v["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r["path"], r["reason"]))
        .collect();
    assert!(
        refused
            .iter()
            .any(|r| r.contains("wrong_abi.so") && r.contains("ABI version 999")),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|r| r.contains("not_plugin.so") && r.contains("not an orc plugin")),
        "{refused:?}"
    );
    assert!(
        refused.iter().any(
            |r| r.contains("liborc_plugin_launcher_local.so") && r.contains("already provided")
        ),
        "{refused:?}"
    );

    // Without a plugin path, the real plugins next to the binary are found, nothing refused.
    let out = state.orc(&["plugins"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let t = text(&out.stdout);
    assert!(
        t.contains("liborc_plugin_launcher_local.so") && t.contains("liborc_plugin_db_redis.so"),
        "{t}"
    );

    // Without orc-ai next to it, `orc db start` says where it looked and what to do.
    let empty_ai = tempfile::tempdir().unwrap();
    let lonely_ai = empty_ai.path().join("orc");
    // (its plugins are found: only the module is missing)
    let plugin_file = plugin_file("orc_plugin_launcher_local");
    let plugin_dir = plugin_file.parent().unwrap();
    std::fs::copy(orc_bin(), &lonely_ai).unwrap();
    let out = std::process::Command::new(&lonely_ai)
        .args(["db", "start", "--port", "0"])
        .env("ORC_STATE_DIR", state.path())
        .env("ORC_PLUGIN_PATH", plugin_dir)
        .env_remove("ORC_AI_MODULE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(
        e.contains("the orc-ai module was not found") && e.contains("--no-ai"),
        "{e}"
    );

    // With plugins missing, `orc db start` explains where it looked.
    let empty = tempfile::tempdir().unwrap();
    let lonely = empty.path().join("orc");
    std::fs::copy(orc_bin(), &lonely).unwrap();
    let out = std::process::Command::new(&lonely)
        .args(["db", "start", "--port", "0", "--no-ai"])
        .env("ORC_STATE_DIR", state.path())
        .env_remove("ORC_PLUGIN_PATH")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let e = text(&out.stderr);
    assert!(
        e.contains("unknown launcher `local`; available: none") && e.contains("ORC_PLUGIN_PATH"),
        "{e}"
    );
}

/// The launcher built against orc-plugin-abi 1.0 (`tests/legacy/launcher-abi-1-0`).
fn legacy_plugin() -> (tempfile::TempDir, PathBuf) {
    legacy_plugin_with(&[])
}

/// The same launcher with cargo `features` (`minor-1`: built against 1.1).
fn legacy_plugin_with(features: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = external_plugin_with(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("legacy/launcher-abi-1-0"),
        "orc_fixture_launcher_abi_1_0",
        features,
    );
    let file = dir.path().join("liborc_fixture_launcher_abi_1_0.so");
    (dir, file)
}

#[test]
fn a_plugin_built_against_minor_1_is_never_sent_what_minor_2_added() {
    let (_keep, file) = legacy_plugin_with(&["minor-1"]);
    let mut host = PluginHost::new();
    host.load_file(&file).expect("an ABI 1.1 plugin loads");
    host.load_file(&plugin_file("orc_plugin_db_redis")).unwrap();
    let legacy = host.plugins().find(|p| p.name == "legacy").unwrap();
    match &legacy.source {
        PluginSource::Dynamic { abi, .. } => assert_eq!(abi, "1.1"),
        other => panic!("{other:?}"),
    }
    // The plugin answers `unknown method` to anything it does not know, so a launch that
    // sent it `use_state_dir` (minor 2) would fail: the host must leave it out.
    let l = host.launcher("legacy").unwrap();
    l.use_state_dir(Path::new("/nonexistent/state"))
        .expect("not sent, so no error");
    let state = State::new();
    let mut s = settings("legacy11", 1);
    s.launcher = "legacy".into();
    let orc = launch(&host, &state, s).expect("an orchestrator through the 1.1 launcher");
    let addrs = orc.addresses();
    assert_eq!(redis_cmd::<String>(&addrs[0], &["PING"]).unwrap(), "PONG");
    orc.stop().unwrap();
    assert!(!listening(&addrs[0]));
}

#[test]
fn a_plugin_built_against_the_previous_minor_works_for_what_it_declared() {
    let (_keep, file) = legacy_plugin();
    let mut host = PluginHost::new();
    host.load_file(&file).expect("an ABI 1.0 plugin loads");
    host.load_file(&plugin_file("orc_plugin_db_redis")).unwrap();
    let legacy = host.plugins().find(|p| p.name == "legacy").unwrap();
    match &legacy.source {
        PluginSource::Dynamic { abi, .. } => assert_eq!(abi, "1.0"),
        other => panic!("{other:?}"),
    }
    let l = host.launcher("legacy").unwrap();
    let dir = tempfile::tempdir().unwrap();
    // What minor 0 had: launch, status, cancel, allocation.
    let mut step = LaunchStep::new("fails", "/bin/sh", dir.path());
    step.args = vec!["-c".into(), "exit 3".into()];
    let id = l.launch(&step).unwrap();
    let st = wait_terminal(l.as_ref(), &id);
    assert_eq!((st.status, st.exit_code), (JobStatus::Failed, Some(3)));
    let mut sleeper = LaunchStep::new("sleeps", "sleep", dir.path());
    sleeper.args = vec!["30".into()];
    let id = l.launch(&sleeper).unwrap();
    assert_eq!(l.cancel(&id).unwrap().status, JobStatus::Cancelled);
    assert_eq!(l.allocation().unwrap().hosts, ["localhost"]);
    // What it cannot understand is refused by the host, naming the capability, instead of
    // being sent and silently cut short (an MPMD step would start only its first part).
    let mut mpmd = LaunchStep::new("mpmd", "true", dir.path());
    mpmd.mpmd = vec![LaunchStep::new("part", "true", dir.path())];
    let e = l.launch(&mpmd).unwrap_err().to_string();
    assert!(
        e.contains("orc-plugin-abi 1.0") && e.contains("launcher.mpmd") && e.contains("MPMD"),
        "{e}"
    );
    let mut in_job = LaunchStep::new("in_job", "true", dir.path());
    in_job.run.allocation = Some("42".into());
    let e = l.launch(&in_job).unwrap_err().to_string();
    assert!(e.contains("launcher.run_allocation"), "{e}");
    let e = l
        .allocate(&orc_core::BatchSettings::default(), "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("launcher.allocate"), "{e}");
    // And a whole database through it.
    let state = State::new();
    let mut s = settings("legacy", 1);
    s.launcher = "legacy".into();
    let orc = launch(&host, &state, s).expect("an orchestrator through the 1.0 launcher");
    assert_eq!(
        orc.status().unwrap().state,
        orc_orchestrator::DbState::Ready
    );
    let addrs = orc.addresses();
    assert_eq!(redis_cmd::<String>(&addrs[0], &["PING"]).unwrap(), "PONG");
    orc.stop().unwrap();
    assert!(!listening(&addrs[0]));
}

#[test]
fn plugins_of_this_minor_declare_every_capability_and_orc_plugins_shows_the_abi() {
    let mut host = PluginHost::new();
    host.load_file(&plugin_file("orc_plugin_launcher_slurm"))
        .unwrap();
    let slurm = host.plugins().find(|p| p.name == "slurm").unwrap();
    match &slurm.source {
        PluginSource::Dynamic { abi, .. } => assert_eq!(
            abi,
            &format!(
                "{}.{}",
                orc_plugin_abi::ABI_VERSION,
                orc_plugin_abi::ABI_MINOR
            )
        ),
        other => panic!("{other:?}"),
    }
    // What a deployment declares of its own reaches the host through the plugin: a Redis
    // Cluster's shards also listen on their bus port.
    host.load_file(&plugin_file("orc_plugin_db_redis")).unwrap();
    assert_eq!(
        host.deployment("cluster").unwrap().companion_ports(),
        [orc_db_redis::CLUSTER_BUS_OFFSET]
    );
    assert!(
        host.deployment("standalone")
            .unwrap()
            .companion_ports()
            .is_empty()
    );
    let state = State::new();
    let (_keep, legacy) = legacy_plugin();
    let out = state
        .orc_cmd(&["plugins"])
        .env("ORC_PLUGIN_PATH", &legacy)
        .output()
        .unwrap();
    let t = text(&out.stdout);
    let current = format!(
        "plugin ABI {}.{}",
        orc_plugin_abi::ABI_VERSION,
        orc_plugin_abi::ABI_MINOR
    );
    assert!(t.contains("plugin ABI 1.0") && t.contains(&current), "{t}");
}
