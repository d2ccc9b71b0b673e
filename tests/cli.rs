//! The `orc` binary end to end: a 3-shard database started by one process, watched,
//! used, changed and stopped by others.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use orc_orchestrator::Orchestrator;
use orc_tests::*;

#[test]
fn start_status_address_run_config_stop() {
    let state = State::new();
    let out = state.orc(&["db", "start", "--shards", "3", "--port", "0", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let started: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let addrs: Vec<String> = started["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(addrs.len(), 3);
    assert_eq!(started["env"]["SR_DB_TYPE"], "Clustered");
    assert_eq!(started["env"]["SSDB"], addrs.join(","));
    let pids: Vec<u32> = started["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| step_pid(s["step"].as_str().unwrap()))
        .collect();

    // Human status, exit 0 when ready.
    let out = state.orc(&["db", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let t = text(&out.stdout);
    assert!(
        t.contains("READY") && t.matches("cluster ok").count() == 3,
        "{t}"
    );

    // Reconnect from this (second) process through the library.
    let orc = Orchestrator::connect(&static_host(), state.path(), "orchestrator").unwrap();
    assert_eq!(orc.addresses(), addrs);
    assert_eq!(
        orc.status().unwrap().state,
        orc_orchestrator::DbState::Ready
    );

    let out = state.orc(&["db", "address"]);
    assert_eq!(text(&out.stdout).trim(), addrs.join(","));
    let out = state.orc(&["db", "address", "--env"]);
    assert_eq!(
        text(&out.stdout),
        format!("SSDB={}\nSR_DB_TYPE=Clustered\n", addrs.join(","))
    );

    // orc run exports the environment and returns the program's exit code.
    let out = state.orc(&[
        "run",
        "--",
        "sh",
        "-c",
        "echo \"$SSDB|$SR_DB_TYPE\"; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("{}|Clustered", addrs.join(","))
    );

    // Runtime configuration.
    let out = state.orc(&["db", "config", "set", "maxclients", "1000"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = state.orc(&["db", "config", "get", "maxclients"]);
    assert_eq!(text(&out.stdout).trim(), "maxclients 1000");
    let out = state.orc(&["db", "config", "set", "maxmemory", "-1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid setting: `maxmemory -1`"),
        "{}",
        text(&out.stderr)
    );

    // Stop, then nothing is left and status says so.
    let out = state.orc(&["db", "stop", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stopped: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        stopped[0]["shards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["how"] == "shutdown")
    );
    assert_all_gone(&pids, &addrs);
    let out = state.orc(&["db", "status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("no orchestrator `orchestrator` is running"));
}

#[test]
fn restart_keeps_runtime_changes_and_status_reports_a_dead_shard() {
    let state = State::new();
    let out = state.orc(&[
        "db", "start", "--db", "rs", "--shards", "2", "--port", "0", "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        state
            .orc(&[
                "db",
                "config",
                "set",
                "--db",
                "rs",
                "maxmemory-policy",
                "allkeys-lfu"
            ])
            .status
            .success()
    );
    let out = state.orc(&["db", "restart", "--db", "rs"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = state.orc(&["db", "config", "get", "--db", "rs", "maxmemory-policy"]);
    assert_eq!(text(&out.stdout).trim(), "maxmemory-policy allkeys-lfu");

    // Kill shard 0 behind orc's back: status exits 4 and names it.
    let st: serde_json::Value =
        serde_json::from_slice(&state.orc(&["db", "status", "--db", "rs", "--json"]).stdout)
            .unwrap();
    let addr0 = st["addresses"][0].as_str().unwrap().to_string();
    state
        .admin_cmd::<()>("rs", &addr0, &["SHUTDOWN", "NOSAVE"])
        .ok();
    assert!(wait_for(Duration::from_secs(5), || !listening(&addr0)));
    let out = state.orc(&["db", "status", "--db", "rs"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("DOWN"), "{}", text(&out.stdout));
    let out = state.orc(&["db", "stop", "--all"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("was already gone"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn two_databases_and_orc_run_exports_both() {
    let state = State::new();
    for (db, n) in [("sim", "1"), ("ml", "3")] {
        let out = state.orc(&["db", "start", "--db", db, "--shards", n, "--port", "0"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let out = state.orc(&[
        "run",
        "--",
        "sh",
        "-c",
        "echo $SR_DB_TYPE_sim $SR_DB_TYPE_ml",
    ]);
    assert_eq!(text(&out.stdout).trim(), "Standalone Clustered");
    let out = state.orc(&[
        "run",
        "--db",
        "ml",
        "--",
        "sh",
        "-c",
        "echo ${SSDB_sim:-unset}",
    ]);
    assert_eq!(text(&out.stdout).trim(), "unset");
    let out = state.orc(&["db", "status", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let out = state.orc(&["db", "stop", "--all"]);
    assert!(out.status.success());
    assert!(orc_orchestrator::record::list_records(state.path()).is_empty());
}

#[test]
fn single_step_on_a_launcher_without_mpmd_is_refused_cleanly() {
    let state = State::new();
    let port = free_port_range(3).to_string();
    let out = state.orc(&[
        "db",
        "start",
        "--shards",
        "3",
        "--single-step",
        "--port",
        &port,
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("launcher `local`")
            && err.contains("has 3 MPMD parts, and this launcher starts one program per step"),
        "{err}"
    );
    // Nothing was started, and nothing is recorded.
    let p: u16 = port.parse().unwrap();
    for i in 0..3 {
        assert!(!listening(&format!("127.0.0.1:{}", p + i)));
    }
    assert_eq!(state.orc(&["db", "status"]).status.code(), Some(3));
}
