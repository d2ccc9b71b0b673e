//! Bad input and faults: each gives a clear error and leaves nothing behind.
#![allow(clippy::unwrap_used)]

use std::{net::TcpListener, time::Duration};

use orc_core::Error;
use orc_orchestrator::Orchestrator;
use orc_tests::*;

/// No redis-server of this state directory may be running and no record may remain.
fn assert_clean(state: &State) {
    assert!(
        orc_orchestrator::record::list_records(state.path()).is_empty(),
        "a reconnect file was left behind"
    );
    let mine = state.path().display().to_string();
    let ok = wait_for(Duration::from_secs(10), || {
        !std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            // Shards run in their data directory, under the state directory.
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
            let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
            !zombie && cwd.display().to_string().starts_with(&mine)
        })
    });
    assert!(ok, "a process started for {mine} is still running");
}

#[test]
fn port_already_in_use() {
    let state = State::new();
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let mut s = settings("busy", 1);
    s.port = port;
    let err = launch(&static_host(), &state, s).unwrap_err();
    assert!(matches!(err, Error::PortInUse { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("port {port} on 127.0.0.1 is already in use")),
        "{msg}"
    );
    assert!(msg.contains("--port"), "{msg}");
    assert_clean(&state);
}

#[test]
fn port_taken_between_check_and_start_is_reported_from_the_server_log() {
    // A cluster's bus port (port + 10000) is checked as well.
    let state = State::new();
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let bus = held.local_addr().unwrap().port();
    if bus < 20000 {
        return; // cannot place a shard 10000 below this port
    }
    let mut s = settings("bus", 1);
    s.deployment = Some("cluster".into());
    s.port = bus - 10000;
    let err = launch(&static_host(), &state, s).unwrap_err().to_string();
    assert!(
        err.contains(&format!("port {bus}")) && err.contains("already in use"),
        "{err}"
    );
    assert_clean(&state);
}

#[test]
fn redis_server_missing() {
    let state = State::new();
    let mut s = settings("nobin", 1);
    s.server_exe = Some("/nonexistent/redis-server".into());
    let err = launch(&static_host(), &state, s).unwrap_err();
    assert!(matches!(err, Error::ExecutableNotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/redis-server"),
        "{err}"
    );
    // Without any redis-server on PATH the message says how to install it.
    let out = state
        .orc_cmd(&["db", "start", "--port", "0", "--db", "nobin2"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(
        e.contains("`redis-server` was not found on PATH")
            && e.contains("apt-get install redis-server"),
        "{e}"
    );
    assert_clean(&state);
}

#[test]
fn a_shard_that_exits_at_start_shows_its_log() {
    let state = State::new();
    let mut s = settings("badconf", 3);
    s.redis
        .extra
        .insert("no-such-directive".into(), "yes".into());
    let began = std::time::Instant::now();
    let err = launch(&static_host(), &state, s).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Shard { .. }), "{msg}");
    assert!(msg.contains("exited while starting"), "{msg}");
    assert!(
        msg.contains("Bad directive or wrong number of arguments"),
        "{msg}"
    );
    assert!(msg.contains("no-such-directive"), "{msg}");
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "must not wait for the timeout"
    );
    assert_clean(&state);
}

#[test]
fn an_interface_that_does_not_exist() {
    let state = State::new();
    let mut s = settings("nic", 1);
    s.interfaces = vec!["lo".into(), "ib-nope0".into()];
    let err = launch(&static_host(), &state, s).unwrap_err().to_string();
    assert!(
        err.contains("network interface `ib-nope0` does not exist"),
        "{err}"
    );
    assert!(
        err.contains("interfaces on this host: ") && err.contains("lo"),
        "{err}"
    );
    assert_clean(&state);
}

#[test]
fn unknown_launcher_and_deployment_names() {
    let state = State::new();
    let host = static_host();
    let mut s = settings("names", 1);
    s.launcher = "slurmish".into();
    let err = launch(&host, &state, s).unwrap_err().to_string();
    assert!(
        err.contains("unknown launcher `slurmish`; available: cobalt, local, lsf, pbs, slurm"),
        "{err}"
    );
    let mut s = settings("names", 1);
    s.deployment = Some("keydb-sentinel".into());
    let err = launch(&host, &state, s).unwrap_err().to_string();
    assert!(err.contains("unknown deployment `keydb-sentinel`"), "{err}");
    assert!(
        err.contains("cluster") && err.contains("standalone"),
        "{err}"
    );
    assert_clean(&state);
}

#[test]
fn startup_timeout_stops_what_was_launched() {
    let state = State::new();
    let mut s = settings("slow", 2);
    s.startup_timeout_secs = 0.001;
    let err = launch(&static_host(), &state, s).unwrap_err();
    assert!(
        matches!(err, Error::Timeout { .. } | Error::Database(_)),
        "{err}"
    );
    assert_clean(&state);
}

#[test]
fn stop_on_an_orchestrator_that_is_already_gone() {
    let state = State::new();
    let host = static_host();
    // Nothing recorded at all: a clear error with its own exit code.
    let out = state.orc(&["db", "stop", "--db", "ghost"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no orchestrator `ghost` is running"),
        "{}",
        text(&out.stderr)
    );
    assert!(matches!(
        Orchestrator::connect(&host, state.path(), "ghost"),
        Err(Error::NotFound { .. })
    ));
    // Recorded, but every shard died: stop says so and cleans the record.
    let orc = launch(&host, &state, settings("dead", 2)).unwrap();
    let pids: Vec<u32> = orc
        .record()
        .shards
        .iter()
        .map(|s| step_pid(&s.step.0))
        .collect();
    for a in orc.addresses() {
        let _ = state.admin_cmd::<()>("dead", &a, &["SHUTDOWN", "NOSAVE"]);
    }
    assert!(wait_for(Duration::from_secs(5), || pids
        .iter()
        .all(|p| pid_gone(*p))));
    let out = state.orc(&["db", "stop", "--db", "dead"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).matches("was already gone").count(),
        2,
        "{}",
        text(&out.stdout)
    );
    assert_clean(&state);
    drop(orc);
}

#[test]
fn bad_settings_are_refused_before_launch() {
    let state = State::new();
    let host = static_host();
    for (mutate, expect) in [
        (
            Box::new(|s: &mut orc_core::OrchestratorSettings| s.shards = 0) as Box<dyn Fn(&mut _)>,
            "at least 1",
        ),
        (
            Box::new(|s: &mut orc_core::OrchestratorSettings| s.db_identifier = "a b".into()),
            "database identifier",
        ),
        (
            Box::new(|s: &mut orc_core::OrchestratorSettings| {
                s.redis.maxmemory = Some("3.5gb".into())
            }),
            "maxmemory",
        ),
        (
            Box::new(|s: &mut orc_core::OrchestratorSettings| {
                s.shards = 2;
                s.deployment = Some("standalone".into());
            }),
            "exactly one shard",
        ),
    ] {
        let mut s = settings("bad", 1);
        mutate(&mut s);
        let err = launch(&host, &state, s).unwrap_err().to_string();
        assert!(err.contains(expect), "{err}");
    }
    assert_clean(&state);
}

/// The launcher says every shard's process is gone (here: the recorded process ids are
/// wrong, as when a launcher looks at another cluster), but the shards still answer: stop
/// shuts them down with the database's admin secret instead of leaving them running
/// without a record.
#[test]
fn stop_shuts_down_shards_the_launcher_lost_track_of() {
    let state = State::new();
    let orc = launch(&static_host(), &state, settings("lost-track", 2)).unwrap();
    let pids = shard_pids(&orc);
    let addrs = orc.addresses();
    let path = orc.record_path().to_path_buf();
    drop(orc);
    let mut rec = orc_orchestrator::record::OrchestratorRecord::load(&path).unwrap();
    for s in &mut rec.shards {
        s.step = orc_core::StepId("999999999@1".into());
    }
    rec.save(&path).unwrap();
    let out = state.orc(&["db", "stop", "--db", "lost-track"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_all_gone(&pids, &addrs);
    assert_clean(&state);
}
