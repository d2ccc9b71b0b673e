//! orc-client while the cluster changes under it: slots resharded between shards (MOVED and
//! ASK followed, the slot map refreshed) and a shard that goes away and comes back.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use orc_client::{Client, Config, MemoryLayout, hash_slot};
use orc_tests::*;

fn client(orc: &orc_orchestrator::Orchestrator, timeout: Duration) -> Client {
    let addrs = orc.addresses();
    let a: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let cfg = Config::new(&a, true)
        .unwrap()
        .connect_timeout(timeout)
        .command_timeout(timeout)
        .intervals(Duration::from_millis(100), Duration::from_millis(100));
    Client::new(cfg).unwrap()
}

fn node_id(addr: &str) -> String {
    redis_cmd::<String>(addr, &["CLUSTER", "MYID"]).unwrap()
}

fn owner(addrs: &[String], slot: u16) -> usize {
    addrs
        .iter()
        .position(|a| {
            redis_cmd::<i64>(a, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]).is_ok() && {
                let nodes: String = redis_cmd(a, &["CLUSTER", "NODES"]).unwrap();
                let mine = nodes
                    .lines()
                    .find(|l| l.contains("myself"))
                    .unwrap()
                    .to_string();
                mine.split_whitespace()
                    .skip(8)
                    .any(|r| match r.split_once('-') {
                        Some((x, y)) => {
                            (x.parse::<u16>().unwrap()..=y.parse::<u16>().unwrap()).contains(&slot)
                        }
                        None => r.parse::<u16>().ok() == Some(slot),
                    })
            }
        })
        .unwrap()
}

#[test]
fn a_client_keeps_working_while_slots_move() {
    let state = State::new();
    let orc = launch(&static_host(), &state, ai_settings("reshard", 3, &[])).unwrap();
    let addrs = orc.addresses();
    let mut c = client(&orc, Duration::from_secs(10));
    c.put_tensor_slice("{mv}.a", &[1.0f32, 2.0], &[2], MemoryLayout::RowMajor)
        .unwrap();
    let slot = hash_slot(b"{mv}");
    let src = owner(&addrs, slot);
    let dst = (src + 1) % addrs.len();
    let (src_id, dst_id) = (node_id(&addrs[src]), node_id(&addrs[dst]));
    let s = slot.to_string();
    // Moving slots is the admin's business (clients cannot).
    let admin = |a: &str, args: &[&str]| state.admin_cmd::<()>("reshard", a, args);
    assert!(redis_cmd::<()>(&addrs[dst], &["CLUSTER", "SETSLOT", &s, "STABLE"]).is_err());
    admin(
        &addrs[dst],
        &["CLUSTER", "SETSLOT", &s, "IMPORTING", &src_id],
    )
    .unwrap();
    admin(
        &addrs[src],
        &["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst_id],
    )
    .unwrap();
    let (host, port) = addrs[dst].split_once(':').unwrap();
    let (user, secret) = admin_login(state.path(), "reshard");
    admin(
        &addrs[src],
        &[
            "MIGRATE", host, port, "", "0", "5000", "AUTH2", &user, &secret, "KEYS", "{mv}.a",
        ],
    )
    .unwrap();
    // Mid-migration: the moved key is reached through ASK, and a new key lands on the target.
    assert_eq!(
        c.get_tensor("{mv}.a")
            .unwrap()
            .to_vec::<f32>(MemoryLayout::RowMajor)
            .unwrap(),
        [1.0, 2.0]
    );
    c.put_tensor_slice("{mv}.b", &[3i32], &[1], MemoryLayout::RowMajor)
        .unwrap();
    assert!(redis_cmd::<i64>(&addrs[dst], &["CLUSTER", "COUNTKEYSINSLOT", &s]).unwrap() >= 2);
    // Migration done: every node learns the new owner; the client follows MOVED.
    for a in &addrs {
        admin(a, &["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]).unwrap();
    }
    assert_eq!(
        c.get_tensor("{mv}.b")
            .unwrap()
            .to_vec::<i32>(MemoryLayout::RowMajor)
            .unwrap(),
        [3]
    );
    c.put_tensor_slice("{mv}.c", &[4u8], &[1], MemoryLayout::RowMajor)
        .unwrap();
    assert_eq!(owner(&addrs, slot), dst);
    // Datasets (pipelines) on the moved slot work too.
    let mut ds = orc_client::DataSet::new("mv").unwrap();
    ds.add_meta_scalar("n", 1i32).unwrap();
    c.put_dataset(&ds).unwrap();
    assert!(c.dataset_exists("mv").unwrap());
    orc.stop().unwrap();
}

/// Shuts down (and reaps) a shard restarted outside the orchestrator, even when the test fails.
struct Restarted(String, std::process::Child);

impl Drop for Restarted {
    fn drop(&mut self) {
        if redis_cmd::<()>(&self.0, &["SHUTDOWN", "NOSAVE"]).is_err() {
            let _ = self.1.kill();
        }
        let _ = self.1.wait();
    }
}

#[test]
fn a_client_rides_out_a_shard_restart() {
    let state = State::new();
    let orc = launch(&static_host(), &state, ai_settings("restart", 3, &[])).unwrap();
    let addrs = orc.addresses();
    let mut c = client(&orc, Duration::from_secs(30));
    let slot = hash_slot(b"{rs}");
    let victim = owner(&addrs, slot);
    c.put_tensor_slice("{rs}.before", &[1.0f64], &[1], MemoryLayout::RowMajor)
        .unwrap();
    let shard = orc.record().shards[victim].clone();
    let conf = orc.record().dir.join(format!("{}.conf", shard.name));
    let exe = which_redis_server();
    state
        .admin_cmd::<()>("restart", &addrs[victim], &["SHUTDOWN", "NOSAVE"])
        .ok();
    assert!(wait_for(Duration::from_secs(5), || !listening(
        &addrs[victim]
    )));
    let dir = orc.record().dir.clone();
    let addr = addrs[victim].clone();
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        let child = std::process::Command::new(exe)
            .arg(&conf)
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Restarted(addr, child)
    });
    // The write waits out the outage (retries within the command timeout) and lands.
    c.put_tensor_slice("{rs}.after", &[2.0f64], &[1], MemoryLayout::RowMajor)
        .unwrap();
    let _guard = restarter.join().unwrap();
    assert_eq!(
        c.get_tensor("{rs}.after")
            .unwrap()
            .to_vec::<f64>(MemoryLayout::RowMajor)
            .unwrap(),
        [2.0]
    );
    orc.stop().unwrap();
}

fn which_redis_server() -> std::path::PathBuf {
    std::env::split_paths(&std::env::var("PATH").unwrap())
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .unwrap()
}
