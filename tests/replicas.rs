//! Replicas and failover on one machine (the multi-node form is in `tests/multinode.rs`):
//! a 3-shard cluster with one replica each, a master killed while two orc-client
//! applications write and read through it, one with Redis's asynchronous replication and
//! one that waits for its replica (`WAIT`), and the SmartRedis Python client with them
//! (which does not ride a failover out: a new SmartRedis client after it does the work). The replica takes the lost shard's slots over,
//! both clients carry on, status names the lost shard and the replica that took over, the
//! writes acknowledged are counted back, `orc db heal` brings the lost server back as a
//! replica, and stop leaves nothing.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use orc_tests::{
    writers::{Pair, SmartRedisWriter, check_pair, missing, smartredis_check},
    *,
};

#[test]
fn a_replica_takes_over_a_lost_shard_while_clients_write() {
    let state = State::new();
    let mut s = ai_settings("replicas", 3, &[]);
    s.replicas = 1;
    // Short enough for a quick test, long enough that a busy 2-core machine does not make
    // a live master look failed.
    s.redis.cluster_node_timeout_ms = 2000;
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

    // Three applications write and read through the failure: two orc-client ones and
    // the SmartRedis Python client.
    let writers = Pair::start(&addrs);
    let smartredis = SmartRedisWriter::start(&addrs);
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
    assert!(
        writers.progress(3, Duration::from_secs(20)),
        "the clients did not carry on"
    );
    let recovered = std::time::SystemTime::now();
    std::thread::sleep(Duration::from_millis(1500));
    let (plain, waiting) = writers.finish();
    let sr = smartredis.finish();
    let counts = check_pair(&orc.addresses(), &plain, &waiting, lost + failover);
    eprintln!(
        "failover in {failover:?}; {counts}; SmartRedis: {} acknowledged, {} errors {:?}, {} read back missing",
        sr.acked.len(),
        sr.errors.len(),
        sr.errors.iter().take(3).collect::<Vec<_>>(),
        sr.lost_reads.len()
    );
    // SmartRedis 0.6.1 keeps trying the lost master (it refreshes its slot map only on a
    // MOVED reply), so a running SmartRedis client does not ride the failover out (what it
    // did is printed above); a new one works at once, and reads what orc-client wrote.
    eprintln!(
        "SmartRedis: {} writes returned after the failover",
        sr.acked_after(recovered)
    );
    // Keys orc-client wrote that survived the failover (acknowledged writes the lost master
    // had not passed on are gone: counted above).
    let lost = missing(&orc.addresses(), &plain.acked);
    let some: Vec<String> = plain
        .acked
        .iter()
        .filter(|k| !lost.contains(k))
        .step_by(997)
        .take(8)
        .cloned()
        .collect();
    // SmartRedis connects to one SSDB address picked at random: the address orc gives now
    // leaves the lost server out.
    let out = state.orc(&["db", "address", "--db", "replicas", "--env"]);
    let live: Vec<String> = text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("SSDB_replicas="))
        .unwrap_or_else(|| panic!("no SSDB in {}", text(&out.stdout)))
        .trim_matches('\'')
        .split(',')
        .map(str::to_owned)
        .collect();
    assert!(!live.contains(&addrs[1]), "{live:?}");
    assert_eq!(live.len(), 5, "{live:?}");
    smartredis_check(&live, &some);

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

    // The lost server is started again: it rejoins as the replica of the one that took
    // its place, and the database is whole again.
    let out = state.orc(&["db", "heal", "--db", "replicas"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("started again"),
        "{}",
        text(&out.stdout)
    );
    drop(orc);
    let orc =
        orc_orchestrator::Orchestrator::connect(&static_host(), state.path(), "replicas").unwrap();
    let healed = orc.status().unwrap();
    assert_eq!(
        healed.state,
        orc_orchestrator::DbState::Ready,
        "{:?}",
        healed.health
    );
    assert_eq!(
        healed.health.shards[1].replica_of.as_deref(),
        Some(addrs[took_over].as_str()),
        "{:?}",
        healed.health.shards[1]
    );
    // Nothing to do when every server answers.
    let out = state.orc(&["db", "heal", "--db", "replicas"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("nothing to start again"));

    let pids = shard_pids(&orc);
    let addrs = orc.addresses();
    orc.stop().unwrap();
    assert_all_gone(&pids, &addrs);
}
