//! Forming a Redis Cluster from fresh shards and checking it.

use std::time::{Duration, Instant};

use orc_core::{Error, Result, ShardAddress};

use crate::conn::{Login, connect, field, parse_info, query};

/// Number of hash slots in a Redis Cluster.
pub(crate) const SLOTS: u32 = 16384;

/// The slot range of shard `i` of `n`: contiguous and as even as possible.
pub(crate) fn slot_range(i: usize, n: usize) -> (u32, u32) {
    let (i, n) = (i as u64, n as u64);
    let start = (u64::from(SLOTS) * i / n) as u32;
    let end = (u64::from(SLOTS) * (i + 1) / n) as u32 - 1;
    (start, end)
}

/// The `cluster-node-timeout` used while forming. Redis delays a master's move to
/// `cluster_state:ok` by up to the node timeout (its "rejoin delay"); a short timeout while
/// forming makes a cluster ready in Redis's own ~2 s floor, and the configured value is
/// restored once the cluster is verified.
const FORMING_NODE_TIMEOUT_MS: u32 = 500;

/// Assign slots to the first `masters` servers, set distinct config epochs, introduce
/// every node to the first one, wait until every node reports `cluster_state:ok` with all
/// slots and all nodes known, then make each further server a replica of the master
/// [`replica_masters`] picks and wait until each has synchronised.
pub(crate) fn form(
    shards: &[ShardAddress],
    masters: usize,
    login: &Login,
    timeout: Duration,
    node_timeout_ms: u32,
) -> Result<()> {
    if masters == 0 || masters > shards.len() || !shards.len().is_multiple_of(masters) {
        return Err(Error::Database(format!(
            "{} servers cannot be {masters} shards with the same number of replicas each",
            shards.len()
        )));
    }
    let deadline = Instant::now() + timeout;
    let fast = node_timeout_ms.min(FORMING_NODE_TIMEOUT_MS);
    set_node_timeout(shards, login, fast)?;
    if reformed(shards, login)? {
        // A checkpointed cluster restarted from its nodes files: it forms again by itself,
        // replicas included.
        wait_ok(shards, login, deadline)?;
    } else {
        form_slots(shards, masters, login, deadline)?;
        let hosts: Vec<&str> = shards.iter().map(|s| s.host.as_str()).collect();
        let follow = replica_masters(&hosts, masters);
        for (i, m) in follow.iter().enumerate() {
            replicate(&shards[masters + i], &shards[*m], login)?;
        }
        wait_replicas(&shards[masters..], login, deadline)?;
    }
    set_node_timeout(shards, login, node_timeout_ms)
}

/// For each server after the first `masters` (the replicas, in groups of `masters`), the
/// index of the master it follows, given every server's host: a master on another host
/// wherever the hosts allow, each master's replicas on hosts apart from each other, and
/// every master with the same number of replicas. Each group is matched to the masters
/// with the rotation that puts the fewest replicas beside their master (hosts are filled
/// round-robin, so one rotation usually puts none there).
pub(crate) fn replica_masters(hosts: &[&str], masters: usize) -> Vec<usize> {
    let groups = hosts.len().saturating_sub(masters) / masters.max(1);
    let mut used: Vec<Vec<&str>> = hosts.iter().take(masters).map(|h| vec![*h]).collect();
    let mut out = vec![0; groups * masters];
    for g in 1..=groups {
        let base = masters * g;
        let clashes = |shift: usize| {
            (0..masters)
                .filter(|&m| used[m].contains(&hosts[base + (m + shift) % masters]))
                .count()
        };
        let shift = (0..masters).min_by_key(|&s| clashes(s)).unwrap_or(0);
        for (m, hosts_of_m) in used.iter_mut().enumerate() {
            let r = base + (m + shift) % masters;
            out[r - masters] = m;
            hosts_of_m.push(hosts[r]);
        }
    }
    out
}

/// Make `replica` follow `master` (`CLUSTER REPLICATE` with the master's node id).
fn replicate(replica: &ShardAddress, master: &ShardAddress, login: &Login) -> Result<()> {
    let mut con = connect(master, login)?;
    let id: String = query(
        &mut con,
        master,
        redis::cmd("CLUSTER").arg("MYID"),
        "CLUSTER MYID",
    )?;
    let mut con = connect(replica, login)?;
    query::<()>(
        &mut con,
        replica,
        redis::cmd("CLUSTER").arg("REPLICATE").arg(&id),
        "CLUSTER REPLICATE",
    )
}

/// Wait until every replica reports its link to its master up (the first full sync done).
fn wait_replicas(replicas: &[ShardAddress], login: &Login, deadline: Instant) -> Result<()> {
    poll_until(
        deadline,
        "the replicas did not follow their masters",
        || {
            let mut problems = Vec::new();
            for r in replicas {
                let info = connect(r, login).and_then(|mut con| {
                    query::<String>(
                        &mut con,
                        r,
                        redis::cmd("INFO").arg("replication"),
                        "INFO replication",
                    )
                });
                match info.map(|i| parse_info(&i)) {
                    Ok(i)
                        if field(&i, "role") == Some("slave")
                            && field(&i, "master_link_status") == Some("up") => {}
                    Ok(i) => problems.push(format!(
                        "{r}: role {}, link to its master {}",
                        field(&i, "role").unwrap_or("unknown"),
                        field(&i, "master_link_status").unwrap_or("not set up")
                    )),
                    Err(e) => problems.push(e.to_string()),
                }
            }
            Ok(problems)
        },
    )
}

/// Call `check` (the problems left, or an error to fail at once) until it finds none,
/// backing off from 5 to 50 ms; at `deadline` fail with `failure` and the last problems.
fn poll_until(
    deadline: Instant,
    failure: &str,
    mut check: impl FnMut() -> Result<Vec<String>>,
) -> Result<()> {
    let mut delay = Duration::from_millis(5);
    loop {
        let problems = check()?;
        if problems.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Database(format!(
                "{failure}: {}",
                problems.join("; ")
            )));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Whether every shard already knows all the others and every slot is assigned: the same
/// cluster restarted from the nodes files it kept (`--checkpoints`).
fn reformed(shards: &[ShardAddress], login: &Login) -> Result<bool> {
    let n = shards.len().to_string();
    for shard in shards {
        let info = cluster_info(shard, login)?;
        if field(&info, "cluster_known_nodes") != Some(n.as_str())
            || field(&info, "cluster_slots_assigned") != Some("16384")
        {
            return Ok(false);
        }
    }
    Ok(!shards.is_empty())
}

fn set_node_timeout(shards: &[ShardAddress], login: &Login, ms: u32) -> Result<()> {
    for shard in shards {
        let mut con = connect(shard, login)?;
        let cmd = redis::cmd("CONFIG")
            .arg("SET")
            .arg("cluster-node-timeout")
            .arg(ms)
            .clone();
        query::<()>(&mut con, shard, &cmd, "CONFIG SET cluster-node-timeout")?;
    }
    Ok(())
}

fn form_slots(
    shards: &[ShardAddress],
    masters: usize,
    login: &Login,
    deadline: Instant,
) -> Result<()> {
    for (i, shard) in shards.iter().enumerate() {
        let info = cluster_info(shard, login)?;
        let mut con = connect(shard, login)?;
        if field(&info, "cluster_known_nodes") != Some("1") {
            return Err(Error::Database(format!(
                "shard {shard} already belongs to a cluster (stale nodes file in the data directory?)"
            )));
        }
        if field(&info, "cluster_slots_assigned") != Some("0") {
            // Redis claims the slots of the keys it loads from a snapshot.
            return Err(Error::Database(format!(
                "shard {shard} loaded keys from a snapshot of an earlier run (--checkpoints) but not the cluster they belonged to (its nodes file is named by port: start with the same --port and shard count to come back with the data, or move the data directory's .rdb files away to start empty)"
            )));
        }
        if i < masters {
            add_slots(&mut con, shard, slot_range(i, masters))?;
        }
        query::<()>(
            &mut con,
            shard,
            redis::cmd("CLUSTER").arg("SET-CONFIG-EPOCH").arg(i + 1),
            "CLUSTER SET-CONFIG-EPOCH",
        )?;
    }
    if let Some(first) = shards.first() {
        for shard in &shards[1..] {
            let mut con = connect(shard, login)?;
            query::<()>(
                &mut con,
                shard,
                redis::cmd("CLUSTER")
                    .arg("MEET")
                    .arg(&first.host)
                    .arg(first.port),
                "CLUSTER MEET",
            )?;
        }
    }
    wait_ok(shards, login, deadline)
}

/// Give `shard` the slots `start..=end`.
fn add_slots(
    con: &mut redis::Connection,
    shard: &ShardAddress,
    (start, end): (u32, u32),
) -> Result<()> {
    let added: redis::RedisResult<()> = redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(start)
        .arg(end)
        .query(con);
    if added.is_err() {
        // Redis before 7.0 has no ADDSLOTSRANGE.
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("ADDSLOTS");
        for s in start..=end {
            cmd.arg(s);
        }
        query::<()>(con, shard, &cmd, "CLUSTER ADDSLOTS")?;
    }
    Ok(())
}

/// What one node says about the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeView {
    pub(crate) state: String,
    pub(crate) slots_ok: u32,
    pub(crate) known_nodes: usize,
}

/// The fields of `CLUSTER INFO` at `shard`.
fn cluster_info(shard: &ShardAddress, login: &Login) -> Result<Vec<(String, String)>> {
    let mut con = connect(shard, login)?;
    let info: String = query(
        &mut con,
        shard,
        redis::cmd("CLUSTER").arg("INFO"),
        "CLUSTER INFO",
    )?;
    Ok(parse_info(&info))
}

pub(crate) fn view(shard: &ShardAddress, login: &Login) -> Result<NodeView> {
    let info = cluster_info(shard, login)?;
    Ok(NodeView {
        state: field(&info, "cluster_state")
            .unwrap_or("unknown")
            .to_string(),
        slots_ok: field(&info, "cluster_slots_ok")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        known_nodes: field(&info, "cluster_known_nodes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    })
}

/// Slots served by the node itself, from `CLUSTER NODES`.
pub(crate) fn own_slots(shard: &ShardAddress, login: &Login) -> Result<u32> {
    let mut con = connect(shard, login)?;
    let nodes: String = query(
        &mut con,
        shard,
        redis::cmd("CLUSTER").arg("NODES"),
        "CLUSTER NODES",
    )?;
    let mine = nodes.lines().find(|l| {
        l.split_whitespace()
            .nth(2)
            .is_some_and(|f| f.contains("myself"))
    });
    Ok(mine.map(count_slots).unwrap_or(0))
}

/// Count the slots listed on one `CLUSTER NODES` line (fields 9 onwards).
pub(crate) fn count_slots(line: &str) -> u32 {
    line.split_whitespace()
        .skip(8)
        .filter(|f| !f.starts_with('['))
        .map(|f| match f.split_once('-') {
            Some((a, b)) => match (a.parse::<u32>(), b.parse::<u32>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => u32::from(f.parse::<u32>().is_ok()),
        })
        .sum()
}

/// How long a shard may refuse connections while the cluster forms before it counts as
/// gone (it was stopped, or died).
const GONE_AFTER: Duration = Duration::from_millis(500);

fn wait_ok(shards: &[ShardAddress], login: &Login, deadline: Instant) -> Result<()> {
    let n = shards.len();
    let mut refusing: Vec<Option<Instant>> = vec![None; n];
    poll_until(deadline, "the cluster did not become ready", || {
        let mut problems = Vec::new();
        for (i, shard) in shards.iter().enumerate() {
            match view(shard, login) {
                Ok(v) if v.state == "ok" && v.slots_ok == SLOTS && v.known_nodes == n => {}
                Ok(v) => problems.push(format!(
                    "{shard}: state {}, {} of {SLOTS} slots ok, {} of {n} nodes known",
                    v.state, v.slots_ok, v.known_nodes
                )),
                Err(e) => {
                    // A shard that refuses connections is gone: fail now, not at the deadline.
                    if crate::conn::refuses(shard) {
                        let since = *refusing[i].get_or_insert_with(Instant::now);
                        if since.elapsed() >= GONE_AFTER {
                            return Err(Error::Database(format!(
                                "shard {shard} stopped while the cluster formed (it refuses connections)"
                            )));
                        }
                    } else {
                        refusing[i] = None;
                    }
                    problems.push(e.to_string());
                }
            }
        }
        Ok(problems)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_ranges_cover_everything_once() {
        for n in 1..=7 {
            let mut next = 0;
            for i in 0..n {
                let (a, b) = slot_range(i, n);
                assert_eq!(a, next);
                assert!(b >= a);
                next = b + 1;
            }
            assert_eq!(next, SLOTS);
        }
        assert_eq!(slot_range(0, 3), (0, 5460));
        assert_eq!(slot_range(2, 3), (10922, 16383));
    }

    #[test]
    fn replicas_follow_masters_on_other_hosts() {
        // Three nodes, one server each round: the plain order would put every replica
        // beside its master.
        let hosts = ["a", "b", "c", "a", "b", "c"];
        let m = replica_masters(&hosts, 3);
        assert_eq!(m.len(), 3);
        for (i, master) in m.iter().enumerate() {
            assert_ne!(hosts[3 + i], hosts[*master], "{m:?}");
        }
        let mut sorted = m.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2], "one replica each");
        // Two replicas each on four nodes: apart from their master and each other.
        let hosts = ["a", "b", "c", "d", "a", "b", "c", "d", "a", "b", "c", "d"];
        let m = replica_masters(&hosts, 4);
        for master in 0..4 {
            let mut on: Vec<&str> = vec![hosts[master]];
            on.extend((0..8).filter(|i| m[*i] == master).map(|i| hosts[4 + i]));
            assert_eq!(on.len(), 3, "{m:?}");
            on.sort();
            on.dedup();
            assert_eq!(on.len(), 3, "replicas of {master} share a host: {m:?}");
        }
        // Two per host on two nodes.
        let hosts = ["a", "b", "a", "b"];
        assert_eq!(replica_masters(&hosts, 2), [1, 0]);
        // One host: nothing better is possible, and nothing is lost.
        assert_eq!(replica_masters(&["h"; 4], 2), [0, 1]);
        assert!(replica_masters(&["h"; 3], 3).is_empty());
    }

    #[test]
    fn cluster_nodes_lines_count_slots() {
        let line =
            "07c3 127.0.0.1:30004@31004 myself,master - 0 0 1 connected 0-5460 5462 [5461->-e7d1]";
        assert_eq!(count_slots(line), 5462);
        assert_eq!(count_slots("a b c d e f g h"), 0);
    }
}
