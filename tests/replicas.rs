//! Replicas and failover on one machine (the multi-node form is in `tests/multinode.rs`):
//! a 3-shard cluster with one replica each, a master killed while two orc-client
//! applications write and read through it, one with Redis's asynchronous replication and
//! one that waits for its replica (`WAIT`). The replica takes the lost shard's slots over,
//! both clients carry on, status names the lost shard and the replica that took over, the
//! writes acknowledged are counted back, and stop leaves nothing.
#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use orc_client::{Client, Config, Error, MemoryLayout};
use orc_tests::*;

/// What one writing client saw.
#[derive(Default)]
struct Writes {
    /// Keys whose write was acknowledged (and, with `WAIT`, confirmed by a replica).
    acked: Vec<String>,
    /// Keys written, but not confirmed by a replica within the wait timeout.
    unreplicated: Vec<String>,
    /// When each acknowledgement came.
    times: Vec<Instant>,
    /// Any other error (there must be none).
    errors: Vec<String>,
}

fn client_config(addrs: &[String]) -> Config {
    let a: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let mut cfg = Config::new(&a, true)
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .command_timeout(Duration::from_secs(30))
        .intervals(Duration::from_millis(100), Duration::from_millis(100));
    // A shard that stops answering costs a retry, not the whole command timeout.
    cfg.socket_timeout = Some(Duration::from_millis(500));
    cfg
}

/// Write `prefix.i` for i = 0, 1, ... until `stop`, reading each back.
fn writer(cfg: Config, prefix: &'static str, stop: Arc<AtomicBool>) -> Writes {
    let mut c = Client::new(cfg).unwrap();
    let mut w = Writes::default();
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("{prefix}.{i}");
        match c.put_tensor_slice(&key, &[i as f32], &[1], MemoryLayout::RowMajor) {
            Ok(()) => {
                w.acked.push(key.clone());
                w.times.push(Instant::now());
            }
            Err(Error::NotReplicated { .. }) => w.unreplicated.push(key.clone()),
            Err(e) => w.errors.push(format!("{key}: {e}")),
        }
        match c.get_tensor(&key) {
            Ok(t) if t.to_vec::<f32>(MemoryLayout::RowMajor).unwrap() == [i as f32] => {}
            Ok(_) => w.errors.push(format!("{key}: read back another value")),
            Err(e) => w.errors.push(format!("{key}: reading back: {e}")),
        }
        i += 1;
    }
    w
}

#[test]
fn a_replica_takes_over_a_lost_shard_while_clients_write() {
    let state = State::new();
    let mut s = ai_settings("replicas", 3, &[]);
    s.replicas = 1;
    s.redis.cluster_node_timeout_ms = 1000;
    let orc = launch(&static_host(), &state, s).unwrap();
    let addrs = orc.addresses();
    assert_eq!(addrs.len(), 6);

    // Three masters with the slots, each followed by one replica.
    let before = orc.status().unwrap();
    assert_eq!(before.masters, 3);
    for (i, h) in before.health.shards.iter().enumerate() {
        if i < 3 {
            assert_eq!(h.role.as_deref(), Some("master"), "{h:?}");
            assert!(h.slots.unwrap() > 5000, "{h:?}");
        } else {
            assert_eq!(h.role.as_deref(), Some("slave"), "{h:?}");
            assert_eq!(h.slots, Some(0), "{h:?}");
        }
    }
    let mut followed: Vec<String> = before.health.shards[3..]
        .iter()
        .map(|h| h.replica_of.clone().unwrap())
        .collect();
    followed.sort();
    let mut masters = addrs[..3].to_vec();
    masters.sort();
    assert_eq!(followed, masters, "each master has one replica");

    // Two applications write and read through the failure.
    let stop = Arc::new(AtomicBool::new(false));
    let plain = {
        let (cfg, stop) = (client_config(&addrs), stop.clone());
        std::thread::spawn(move || writer(cfg, "async", stop))
    };
    let waiting = {
        let cfg = client_config(&addrs).wait_replicas(1, Duration::from_millis(500));
        let stop = stop.clone();
        std::thread::spawn(move || writer(cfg, "wait", stop))
    };
    std::thread::sleep(Duration::from_millis(700));

    // Shard 1's master dies.
    let pids = shard_pids(&orc);
    let lost = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pids[1].to_string()])
            .status()
            .unwrap()
            .success()
    );
    let promoted = |st: &orc_orchestrator::OrchestratorStatus| {
        st.health.shards.iter().position(|h| {
            h.index >= 3 && h.role.as_deref() == Some("master") && h.slots.unwrap_or(0) > 0
        })
    };
    let mut st = orc.status().unwrap();
    while promoted(&st).is_none()
        || st
            .health
            .shards
            .iter()
            .any(|h| h.reachable && h.cluster_state.as_deref() != Some("ok"))
    {
        assert!(
            lost.elapsed() < Duration::from_secs(30),
            "no failover: {:?}",
            st.health
        );
        std::thread::sleep(Duration::from_millis(100));
        st = orc.status().unwrap();
    }
    let failover = lost.elapsed();
    let took_over = promoted(&st).unwrap();
    assert_eq!(
        st.health.shards[took_over].replica_of, None,
        "{:?}",
        st.health.shards[took_over]
    );
    // The promoted replica was shard 1's.
    assert_eq!(
        before.health.shards[took_over].replica_of.as_deref(),
        Some(addrs[1].as_str())
    );
    assert!(!st.health.shards[1].reachable);
    assert!(
        st.health
            .problems
            .iter()
            .any(|p| p.contains("every hash slot is still served")),
        "{:?}",
        st.health.problems
    );
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    let plain = plain.join().unwrap();
    let waiting = waiting.join().unwrap();

    // Both carried on: no error, and writes acknowledged after the failover.
    for (name, w) in [("async", &plain), ("wait", &waiting)] {
        assert!(w.errors.is_empty(), "{name}: {:?}", w.errors);
        let after = w.times.iter().filter(|t| **t > lost + failover).count();
        assert!(
            after > 0,
            "{name}: no write acknowledged after the failover"
        );
    }
    // The waiting client's writes to the shard that lost its replica are no longer
    // confirmed: said, not hidden.
    assert!(
        !waiting.unreplicated.is_empty(),
        "writes to the promoted replica (which has none) were reported as replicated"
    );

    // Count back what was acknowledged.
    let mut reader = Client::new(client_config(&orc.addresses())).unwrap();
    let mut missing = |keys: &[String]| -> Vec<String> {
        keys.iter()
            .filter(|k| !reader.tensor_exists(k).unwrap())
            .cloned()
            .collect()
    };
    let lost_plain = missing(&plain.acked);
    let lost_waiting = missing(&waiting.acked);
    let lost_unreplicated = missing(&waiting.unreplicated);
    eprintln!(
        "failover in {failover:?}; asynchronous: {} acknowledged, {} lost; with WAIT: {} confirmed, {} lost, {} not confirmed ({} of them lost)",
        plain.acked.len(),
        lost_plain.len(),
        waiting.acked.len(),
        lost_waiting.len(),
        waiting.unreplicated.len(),
        lost_unreplicated.len()
    );
    assert!(
        lost_waiting.is_empty(),
        "confirmed writes lost: {lost_waiting:?}"
    );

    // The command line says the same.
    let out = state.orc(&["db", "status", "--db", "replicas"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stdout));
    let report = text(&out.stdout);
    assert!(
        report.contains("a replica that took a shard over"),
        "{report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.contains("shard 1 ") && l.contains("DOWN")),
        "{report}"
    );

    let pids = shard_pids(&orc);
    let addrs = orc.addresses();
    orc.stop().unwrap();
    assert_all_gone(&pids, &addrs);
}
