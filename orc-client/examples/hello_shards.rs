//! A tiny program for `orc run`: reads `SSDB` / `SR_DB_TYPE`, stores a few keys on the
//! shard that owns each key's hash slot (CRC16, as every SmartRedis client routes), reads
//! them back and prints where each one lives.
//!
//! `orc run -- cargo run -p orc-client --example hello_shards`

use std::{collections::BTreeMap, error::Error};

use orc_client::hash_slot;

fn main() -> Result<(), Box<dyn Error>> {
    let ssdb =
        std::env::var("SSDB").map_err(|_| "SSDB is not set: run me with `orc run -- ...`")?;
    let kind = std::env::var("SR_DB_TYPE").unwrap_or_else(|_| "Standalone".into());
    let addrs: Vec<&str> = ssdb.split(',').collect();
    println!("database: {kind}, {} shard(s): {ssdb}", addrs.len());

    let mut cons = Vec::new();
    let mut owner: BTreeMap<u16, usize> = BTreeMap::new(); // first slot of a range -> shard
    for (i, a) in addrs.iter().enumerate() {
        let mut con = redis::Client::open(format!("redis://{a}/"))?.get_connection()?;
        if kind == "Clustered" {
            // Each shard reports the slot ranges it serves (CLUSTER NODES, "myself" line).
            let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut con)?;
            let mine = nodes
                .lines()
                .find(|l| l.contains("myself"))
                .ok_or("no myself line")?;
            for range in mine
                .split_whitespace()
                .skip(8)
                .filter(|r| !r.starts_with('['))
            {
                let start = range.split('-').next().unwrap_or(range).parse::<u16>()?;
                owner.insert(start, i);
            }
        }
        cons.push(con);
    }
    for step in 0..6 {
        let key = format!("hello.step_{step}");
        let slot = hash_slot(key.as_bytes());
        let shard = owner
            .range(..=slot)
            .next_back()
            .map(|(_, s)| *s)
            .unwrap_or(0);
        let value = format!("payload {step}");
        redis::cmd("SET")
            .arg(&key)
            .arg(&value)
            .query::<()>(&mut cons[shard])?;
        let back: String = redis::cmd("GET").arg(&key).query(&mut cons[shard])?;
        assert_eq!(back, value);
        println!(
            "  {key:<14} slot {slot:>5} -> shard {shard} ({})  read back: {back}",
            addrs[shard]
        );
    }
    Ok(())
}
