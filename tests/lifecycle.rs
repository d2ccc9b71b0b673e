//! The orchestrator lifecycle against real `redis-server`, through the library API with
//! the statically linked local launcher and Redis deployments.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use orc_core::{Checkpoints, JobStatus, Orchestrator};
use orc_tests::*;

fn pids(orc: &Orchestrator) -> Vec<u32> {
    orc.record()
        .shards
        .iter()
        .map(|s| step_pid(&s.step.0))
        .collect()
}

#[test]
fn standalone_starts_answers_and_stops_with_nothing_left() {
    let state = State::new();
    let host = static_host();
    let orc = launch(&host, &state, settings("solo", 1)).expect("launch");
    let addrs = orc.addresses();
    assert_eq!(addrs.len(), 1);
    assert_eq!(redis_cmd::<String>(&addrs[0], &["PING"]).unwrap(), "PONG");
    assert_eq!(
        orc.client_env(),
        vec![
            ("SSDB_solo".to_string(), addrs[0].clone()),
            ("SR_DB_TYPE_solo".to_string(), "Standalone".to_string())
        ]
    );
    let record = orc.record_path().to_path_buf();
    assert!(record.exists());
    let st = orc.status().expect("status");
    assert_eq!(st.state, "ready");
    assert_eq!(st.steps[0].as_ref().unwrap().status, JobStatus::Running);
    let p = pids(&orc);
    let report = orc.stop().expect("stop");
    assert_eq!(report[0].how, "shutdown");
    assert!(!record.exists(), "the reconnect file must be removed");
    assert_all_gone(&p, &addrs);
    assert!(orc_core::record::list_records(state.path()).is_empty());
}

fn check_cluster(n: usize) {
    let state = State::new();
    let host = static_host();
    let mut s = settings(&format!("c{n}"), n);
    s.deployment = Some("cluster".into());
    let orc = launch(&host, &state, s).expect("launch");
    assert!(orc.record().clustered);
    let addrs = orc.addresses();
    assert_eq!(addrs.len(), n);
    for a in &addrs {
        let info: String = redis_cmd(a, &["CLUSTER", "INFO"]).unwrap();
        assert!(info.contains("cluster_state:ok"), "{a}: {info}");
        assert!(info.contains("cluster_slots_assigned:16384"), "{a}: {info}");
        assert!(
            info.contains(&format!("cluster_known_nodes:{n}")),
            "{a}: {info}"
        );
        // The configured node timeout is back after the fast formation.
        let t: Vec<String> = redis_cmd(a, &["CONFIG", "GET", "cluster-node-timeout"]).unwrap();
        assert_eq!(t[1], "5000");
    }
    // Keys route by CRC16 slot exactly as clients compute it: every key is accepted by the
    // shard that owns its slot and redirected by the others.
    let health = orc.status().unwrap().health;
    assert!(health.ok, "{:?}", health.problems);
    assert_eq!(
        health.shards.iter().map(|s| s.slots.unwrap()).sum::<u32>(),
        16384
    );
    for key in ["tensor_a", "{sim.0}.x", "dataset.meta", "z"] {
        let slot = orc_client::hash_slot(key.as_bytes());
        let keyslot: i64 = redis_cmd(&addrs[0], &["CLUSTER", "KEYSLOT", key]).unwrap();
        assert_eq!(i64::from(slot), keyslot);
        let accepted: Vec<&String> = addrs
            .iter()
            .filter(|a| redis_cmd::<()>(a, &["SET", key, "v"]).is_ok())
            .collect();
        assert_eq!(
            accepted.len(),
            1,
            "{key} must be owned by exactly one shard"
        );
    }
    let p = pids(&orc);
    orc.stop().expect("stop");
    assert_all_gone(&p, &addrs);
    // No cluster nodes file is left to confuse the next start.
    let left: Vec<_> = std::fs::read_dir(state.path().join(format!("c{n}")))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("nodes-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn cluster_of_one_shard() {
    check_cluster(1);
}

#[test]
fn cluster_of_two_shards() {
    check_cluster(2);
}

#[test]
fn cluster_of_three_shards() {
    check_cluster(3);
}

#[test]
fn cluster_of_five_shards() {
    check_cluster(5);
}

#[test]
fn several_orchestrators_side_by_side() {
    let state = State::new();
    let host = static_host();
    let a = launch(&host, &state, settings("alpha", 1)).expect("alpha");
    let b = launch(&host, &state, settings("beta", 2)).expect("beta");
    let envs: Vec<_> = a.client_env().into_iter().chain(b.client_env()).collect();
    let names: Vec<&str> = envs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "SSDB_alpha",
            "SR_DB_TYPE_alpha",
            "SSDB_beta",
            "SR_DB_TYPE_beta"
        ]
    );
    assert_eq!(envs[3].1, "Clustered");
    // The same identifier twice is refused while the first runs.
    let err = launch(&host, &state, settings("alpha", 1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("already running"), "{err}");
    assert_eq!(Orchestrator::connect_all(&host, state.path()).len(), 2);
    let (pa, aa) = (pids(&a), a.addresses());
    a.stop().unwrap();
    assert_all_gone(&pa, &aa);
    assert_eq!(
        b.status().unwrap().state,
        "ready",
        "stopping alpha must not touch beta"
    );
    b.stop().unwrap();
}

#[test]
fn default_identifier_gives_unsuffixed_env() {
    let state = State::new();
    let host = static_host();
    let orc = launch(&host, &state, settings("orchestrator", 1)).expect("launch");
    let keys: Vec<String> = orc.client_env().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["SSDB", "SR_DB_TYPE"]);
    orc.stop().unwrap();
}

#[test]
fn runtime_config_changes_are_kept_for_restarts() {
    let state = State::new();
    let host = static_host();
    let mut orc = launch(&host, &state, settings("cfg", 2)).expect("launch");
    orc.config_set("maxmemory", "123mb").expect("set");
    orc.config_set("maxmemory-policy", "allkeys-lru")
        .expect("set");
    for a in orc.addresses() {
        let v: Vec<String> = redis_cmd(&a, &["CONFIG", "GET", "maxmemory"]).unwrap();
        assert_eq!(v[1], (123u64 * 1024 * 1024).to_string());
    }
    // Bad values are refused before any shard is touched.
    assert!(orc.config_set("maxmemory", "29GG").is_err());
    assert!(
        orc.config_set("maxmemory-policy", "invalid-policy")
            .is_err()
    );
    // The server's own refusal comes back as an error too.
    let err = orc
        .config_set("no-such-redis-setting", "1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("CONFIG SET"), "{err}");
    // Written to each shard's config file (CONFIG REWRITE) and to the reconnect file.
    let conf = std::fs::read_to_string(orc.record().dir.join("cfg_0.conf")).unwrap();
    assert!(
        conf.contains("maxmemory 123mb") || conf.contains("maxmemory 128974848"),
        "{conf}"
    );
    let settings_now = Orchestrator::connect(&host, state.path(), "cfg")
        .unwrap()
        .record()
        .settings
        .clone();
    assert_eq!(settings_now.redis.maxmemory.as_deref(), Some("123mb"));
    // A restart with the recorded settings keeps the change.
    orc.stop().unwrap();
    let again = launch(&host, &state, settings_now).expect("relaunch");
    let v: Vec<String> = redis_cmd(
        &again.addresses()[0],
        &["CONFIG", "GET", "maxmemory-policy"],
    )
    .unwrap();
    assert_eq!(v[1], "allkeys-lru");
    again.stop().unwrap();
}

#[test]
fn checkpoints_save_on_stop_and_load_on_restart() {
    let state = State::new();
    let host = static_host();
    let mut s = settings("ckpt", 1);
    s.redis.checkpoints = Some(Checkpoints {
        every_secs: 900,
        min_changes: 1,
    });
    let orc = launch(&host, &state, s.clone()).expect("launch");
    let addr = orc.addresses()[0].clone();
    redis_cmd::<()>(&addr, &["SET", "kept", "42"]).unwrap();
    orc.stop().unwrap();
    assert!(
        state.path().join("ckpt/ckpt_0.rdb").exists(),
        "SHUTDOWN SAVE must write the snapshot"
    );
    let orc = launch(&host, &state, s).expect("relaunch");
    let v: String = redis_cmd(&orc.addresses()[0], &["GET", "kept"]).unwrap();
    assert_eq!(v, "42");
    orc.stop().unwrap();
}

#[test]
fn a_killed_shard_shows_in_status_and_stop_still_cleans_up() {
    let state = State::new();
    let host = static_host();
    let orc = launch(&host, &state, settings("hurt", 3)).expect("launch");
    let p = pids(&orc);
    let addrs = orc.addresses();
    // SAFETY: signalling a process we started.
    unsafe { libc_kill(p[1]) };
    assert!(wait_for(Duration::from_secs(5), || pid_gone(p[1])));
    let st = orc.status().unwrap();
    assert_ne!(st.state, "ready");
    assert!(!st.health.shards[1].reachable);
    let s1 = st.steps[1].as_ref().unwrap();
    assert_eq!(s1.status, JobStatus::Failed, "{s1}");
    assert!(
        s1.detail.as_deref().unwrap_or("").contains("SIGKILL"),
        "{s1}"
    );
    assert!(
        st.health.problems.iter().any(|p| p.contains("shard 1")),
        "{:?}",
        st.health.problems
    );
    let report = orc.stop().unwrap();
    assert_eq!(report[1].how, "already-gone");
    assert_eq!(report[0].how, "shutdown");
    assert_all_gone(&p, &addrs);
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

unsafe fn libc_kill(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { kill(pid as i32, 9) };
}
