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

/// Assign slots, set distinct config epochs, introduce every node to the first one, then
/// wait until every node reports `cluster_state:ok` with all slots and all nodes known.
pub(crate) fn form(
    shards: &[ShardAddress],
    login: &Login,
    timeout: Duration,
    node_timeout_ms: u32,
) -> Result<()> {
    let fast = node_timeout_ms.min(FORMING_NODE_TIMEOUT_MS);
    set_node_timeout(shards, login, fast)?;
    if reformed(shards, login)? {
        // A checkpointed cluster restarted from its nodes files: it forms again by itself.
        wait_ok(shards, login, Instant::now() + timeout)?;
    } else {
        form_slots(shards, login, timeout)?;
    }
    set_node_timeout(shards, login, node_timeout_ms)
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

fn form_slots(shards: &[ShardAddress], login: &Login, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let n = shards.len();
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
        let (start, end) = slot_range(i, n);
        let added: redis::RedisResult<()> = redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(start)
            .arg(end)
            .query(&mut con);
        if added.is_err() {
            // Redis before 7.0 has no ADDSLOTSRANGE.
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("ADDSLOTS");
            for s in start..=end {
                cmd.arg(s);
            }
            query::<()>(&mut con, shard, &cmd, "CLUSTER ADDSLOTS")?;
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
    let mut delay = Duration::from_millis(5);
    let mut refusing: Vec<Option<Instant>> = vec![None; n];
    loop {
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
        if problems.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Database(format!(
                "the cluster did not become ready: {}",
                problems.join("; ")
            )));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
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
    fn cluster_nodes_lines_count_slots() {
        let line =
            "07c3 127.0.0.1:30004@31004 myself,master - 0 0 1 connected 0-5460 5462 [5461->-e7d1]";
        assert_eq!(count_slots(line), 5462);
        assert_eq!(count_slots("a b c d e f g h"), 0);
    }
}
