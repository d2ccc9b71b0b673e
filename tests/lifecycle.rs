//! The orchestrator lifecycle against real `redis-server`, through the library API with
//! the statically linked local launcher and Redis deployments.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use orc_core::{Checkpoints, JobStatus};
use orc_orchestrator::Orchestrator;
use orc_tests::*;

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
    assert_eq!(st.state, orc_orchestrator::DbState::Ready);
    assert_eq!(st.steps[0].as_ref().unwrap().status, JobStatus::Running);
    let p = shard_pids(&orc);
    let report = orc.stop().expect("stop");
    assert_eq!(report[0].how, orc_orchestrator::StopWay::Shutdown);
    assert!(!record.exists(), "the reconnect file must be removed");
    assert_all_gone(&p, &addrs);
    assert!(orc_orchestrator::record::list_records(state.path()).is_empty());
}

fn check_cluster(n: usize) {
    let state = State::new();
    let host = static_host();
    let mut s = settings(&format!("c{n}"), n);
    s.deployment = Some("cluster".into());
    // Fixed ports, so that the restart below reuses the nodes files' names.
    let port = free_port_range(n as u16);
    s.port = port;
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
        let t: Vec<String> = state
            .admin_cmd(
                &format!("c{n}"),
                a,
                &["CONFIG", "GET", "cluster-node-timeout"],
            )
            .unwrap();
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
    let p = shard_pids(&orc);
    orc.stop().expect("stop");
    assert_all_gone(&p, &addrs);
    // The cluster's nodes files stay with its data; the next start's plan removes them
    // (a shard must not rejoin the old cluster), so the same cluster starts again.
    let left = std::fs::read_dir(state.path().join(format!("c{n}")))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("nodes-"))
        .count();
    assert_eq!(left, n, "one nodes file per shard");
    let mut s = settings(&format!("c{n}"), n);
    s.deployment = Some("cluster".into());
    s.port = port;
    let again = launch(&host, &state, s).expect("the same cluster starts again");
    assert_eq!(again.addresses(), addrs);
    assert!(again.status().unwrap().health.ok);
    again.stop().expect("stop");
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
    let (pa, aa) = (shard_pids(&a), a.addresses());
    a.stop().unwrap();
    assert_all_gone(&pa, &aa);
    assert_eq!(
        b.status().unwrap().state,
        orc_orchestrator::DbState::Ready,
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
        let v: Vec<String> = state
            .admin_cmd("cfg", &a, &["CONFIG", "GET", "maxmemory"])
            .unwrap();
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
    let v: Vec<String> = state
        .admin_cmd(
            "cfg",
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
    let p = shard_pids(&orc);
    let addrs = orc.addresses();
    // SAFETY: signalling a process we started.
    unsafe { libc_kill(p[1]) };
    assert!(wait_for(Duration::from_secs(5), || pid_gone(p[1])));
    let st = orc.status().unwrap();
    assert_ne!(st.state, orc_orchestrator::DbState::Ready);
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
    assert_eq!(report[1].how, orc_orchestrator::StopWay::AlreadyGone);
    assert_eq!(report[0].how, orc_orchestrator::StopWay::Shutdown);
    assert_all_gone(&p, &addrs);
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

unsafe fn libc_kill(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { kill(pid as i32, 9) };
}

/// An embedder's own launcher: the local launcher underneath, every launch and batch
/// request counted, and batch jobs that hold this machine.
struct Embedded {
    inner: orc_launcher_local::LocalLauncher,
    launches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    batches: std::sync::Arc<std::sync::Mutex<Vec<orc_core::BatchSettings>>>,
}

impl orc_core::Launcher for Embedded {
    fn name(&self) -> &str {
        "embedded"
    }
    fn launch(&self, step: &orc_core::LaunchStep) -> orc_core::Result<orc_core::StepId> {
        self.launches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut local = step.clone();
        local.run.allocation = None; // the "job" is this machine
        self.inner.launch(&local)
    }
    fn status(&self, ids: &[orc_core::StepId]) -> orc_core::Result<Vec<orc_core::StepStatus>> {
        self.inner.status(ids)
    }
    fn cancel(&self, id: &orc_core::StepId) -> orc_core::Result<orc_core::StepStatus> {
        self.inner.cancel(id)
    }
    fn allocation(&self) -> orc_core::Result<orc_core::Allocation> {
        self.inner.allocation()
    }
    fn allocate(
        &self,
        batch: &orc_core::BatchSettings,
        _name: &str,
    ) -> orc_core::Result<orc_core::Allocation> {
        self.batches.lock().unwrap().push(batch.clone());
        Ok(orc_core::Allocation::new(
            Some("job-1".into()),
            vec!["127.0.0.1".into()],
        ))
    }
    fn release(&self, _allocation: &str) -> orc_core::Result<()> {
        Ok(())
    }
}

fn embedded() -> (
    Embedded,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::Mutex<Vec<orc_core::BatchSettings>>>,
) {
    let launches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let batches = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    (
        Embedded {
            inner: orc_launcher_local::LocalLauncher::new(),
            launches: launches.clone(),
            batches: batches.clone(),
        },
        launches,
        batches,
    )
}

#[test]
fn an_embedder_runs_an_orchestrator_with_a_launcher_object_of_its_own() {
    let state = State::new();
    let (launcher, launches, _) = embedded();
    let mut seen = Vec::new();
    let mut progress = |p: &orc_orchestrator::Progress| seen.push(format!("{p:?}"));
    let orc = Orchestrator::builder(ai_settings("mine", 2, &[]))
        .launcher(Box::new(launcher))
        .deployment(Box::new(orc_db_redis::RedisDeployment::cluster()))
        .state_dir(state.path())
        .progress(&mut progress)
        .launch()
        .expect("launched with the embedder's objects, no plugin host");
    assert_eq!(launches.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(orc.record().launcher, "embedded");
    assert_cluster_holds_data(&orc.addresses());
    assert!(seen.iter().any(|p| p == "Ready"), "{seen:?}");
    // Another process reconnects with objects of its own.
    let (again, _, _) = embedded();
    let back = Orchestrator::connect_with(
        state.path(),
        "mine",
        Box::new(again),
        Box::new(orc_db_redis::RedisDeployment::cluster()),
    )
    .unwrap();
    assert_eq!(
        back.status().unwrap().state,
        orc_orchestrator::DbState::Ready
    );
    let pids = shard_pids(&back);
    let addrs = back.addresses();
    let report = back.stop().unwrap();
    assert!(
        report
            .iter()
            .all(|s| s.how == orc_orchestrator::StopWay::Shutdown)
    );
    assert_all_gone(&pids, &addrs);
}

#[test]
fn the_library_sizes_batch_jobs_as_the_cli_does() {
    let state = State::new();
    // Three shards, three per host: one node of three tasks.
    let (launcher, _, batches) = embedded();
    let mut s = settings("batched", 3);
    s.shards_per_host = 3;
    s.port = free_port_range(3);
    s.batch = Some(orc_core::BatchSettings::default());
    let orc = Orchestrator::builder(s)
        .launcher(Box::new(launcher))
        .deployment(Box::new(orc_db_redis::RedisDeployment::cluster()))
        .state_dir(state.path())
        .launch()
        .unwrap();
    let asked = batches.lock().unwrap()[0].clone();
    assert_eq!((asked.nodes, asked.tasks_per_node), (Some(3 / 3), Some(3)));
    assert_eq!(orc.record().batch_job.as_ref().unwrap().0, "job-1");
    orc.stop().unwrap();
    // Three shards, one per host: three nodes (the job here holds one, so the start is
    // refused after the request; what matters is what was asked for).
    let (launcher, _, batches) = embedded();
    let mut s = settings("wide", 3);
    s.batch = Some(orc_core::BatchSettings::default());
    let e = Orchestrator::builder(s)
        .launcher(Box::new(launcher))
        .deployment(Box::new(orc_db_redis::RedisDeployment::cluster()))
        .state_dir(state.path())
        .launch()
        .unwrap_err();
    assert_eq!(batches.lock().unwrap()[0].nodes, Some(3), "{e}");
}

#[test]
fn a_failing_test_leaves_no_shard_of_an_embedded_launcher_behind() {
    // A test that panics before it stops its orchestrator drops its `State`, which must
    // stop the shards even when the host does not know the launcher they were started by.
    let state = State::new();
    let (launcher, _, _) = embedded();
    let orc = Orchestrator::builder(settings("left", 1))
        .launcher(Box::new(launcher))
        .deployment(Box::new(orc_db_redis::RedisDeployment::standalone()))
        .state_dir(state.path())
        .launch()
        .unwrap();
    let (p, addrs) = (shard_pids(&orc), orc.addresses());
    drop(orc); // not stopped
    assert!(listening(&addrs[0]));
    drop(state);
    assert_all_gone(&p, &addrs);
}
