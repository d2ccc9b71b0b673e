//! Put + get throughput of one client: writes a tensor of SIZE bytes under its own keys and
//! reads it back, for SECONDS, then prints one JSON line (`pairs`, `bytes` moved, `secs`).
//! The database comes from the environment (`SSDB`, `SR_DB_TYPE`), as `orc run` sets it.
//!
//! `orc run -- cargo run --release -p orc-client --example throughput SIZE SECONDS [NAME]`
//! (`scripts/bench-multinode` runs several on each node of the multi-node test bed).

use std::{
    error::Error,
    time::{Duration, Instant},
};

use orc_client::{Client, MemoryLayout};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().ok_or("SIZE is missing")?.parse()?;
    let secs: f64 = args.next().ok_or("SECONDS is missing")?.parse()?;
    let name = args
        .next()
        .unwrap_or_else(|| std::process::id().to_string());
    let mut client = Client::from_env()?;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    // A few keys, rewritten: memory stays bounded however long it runs.
    let keys: Vec<String> = (0..4).map(|i| format!("{name}.{i}")).collect();
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut pairs = 0u64;
    while start.elapsed() < limit {
        let key = &keys[(pairs % 4) as usize];
        client.put_tensor_slice(key, &data, &[size], MemoryLayout::RowMajor)?;
        let t = client.get_tensor(key)?;
        if t.data.len() != size {
            return Err(format!("{key}: read back {} bytes", t.data.len()).into());
        }
        pairs += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"name\":\"{name}\",\"pairs\":{pairs},\"bytes\":{},\"secs\":{secs:.3}}}",
        pairs * 2 * size as u64
    );
    Ok(())
}
