//! put + get throughput of 1 KiB, 1 MiB and 16 MiB tensors with 1 and 16 concurrent
//! clients, side by side in one run: orc-client, the SmartRedis Python client, and plain
//! `SET`/`GET` of the same bytes twice: with `redis-benchmark` (one event loop driving every
//! connection: the server and loopback limit) and from as many blocking threads as
//! orc-client's, one connection each (the `redis` crate: plain commands in orc-client's
//! threading, so that the two ratios separate the client's cost from the threads').
//!
//! Run (release): `cargo build --release --workspace` then
//! `cargo bench -p orc-tests --bench client_bench` (`ORC_BENCH_SIZES=1024
//! ORC_BENCH_CLIENTS=16` for some cells only). Writes `target/client_bench.csv` and
//! prints a Markdown table for `docs/benchmarks.md`; `docs/plot_client_bench.py` draws the plot.

use std::{
    process::Command,
    sync::Barrier,
    time::{Duration, Instant},
};

use orc_client::{Client, Config, MemoryLayout};
use orc_tests::*;

const SIZES: [(usize, &str); 3] = [(1024, "1 KiB"), (1 << 20, "1 MiB"), (16 << 20, "16 MiB")];
const CLIENTS: [usize; 2] = [1, 16];

/// Pairs per client: enough for a stable figure, bounded for the 2-core machine.
fn pairs(size: usize, clients: usize) -> usize {
    let per_client_bytes = (256usize << 20) / clients;
    (per_client_bytes / size).clamp(4, 8000)
}

/// Run one client per thread, all timed from the same start: `client(i, ready)` connects
/// and warms up, calls `ready()` (each thread waits there for the others) and returns the
/// seconds of its own loop. The slowest thread's time, as a bulk-synchronous job waits for
/// its slowest rank.
fn on_threads(
    label: &str,
    size: usize,
    clients: usize,
    client: impl Fn(usize, &dyn Fn()) -> f64 + Sync,
) -> f64 {
    let barrier = Barrier::new(clients + 1);
    let times: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let (barrier, client) = (&barrier, &client);
                s.spawn(move || {
                    client(i, &|| {
                        barrier.wait();
                    })
                })
            })
            .collect();
        barrier.wait();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    let slowest = times.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "{label}, {clients} client(s) of {size} B: threads took {:.3} to {slowest:.3} s",
        times.iter().copied().fold(f64::MAX, f64::min)
    );
    slowest
}

fn orc_client(addr: &str, size: usize, clients: usize, n: usize) -> f64 {
    on_threads("orc-client", size, clients, |i, ready| {
        // This shard, and the rest of the SmartRedis environment (SR_SPIN_WAIT_US...) as
        // orc-client reads it.
        let cfg = Config::from_lookup("", |k| match k {
            "SSDB" => Some(addr.to_string()),
            "SR_DB_TYPE" => Some("Standalone".into()),
            _ => std::env::var(k).ok(),
        })
        .expect("config")
        .command_timeout(Duration::from_secs(600));
        let mut c = Client::new(cfg).expect("connect");
        let data = vec![0u8; size];
        let name = format!("oc_{i}");
        c.put_tensor_slice(&name, &data, &[size], MemoryLayout::RowMajor)
            .expect("warm up");
        ready();
        let t = Instant::now();
        for _ in 0..n {
            c.put_tensor_slice(&name, &data, &[size], MemoryLayout::RowMajor)
                .expect("put");
            let back = c.get_tensor(&name).expect("get");
            assert_eq!(back.data.len(), size);
        }
        t.elapsed().as_secs_f64()
    })
}

fn smartredis(addr: &str, size: usize, clients: usize, n: usize) -> f64 {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/bench_smartredis.py");
    let out = Command::new(smartredis_python())
        .arg(script)
        .args([size.to_string(), clients.to_string(), n.to_string()])
        .env("SSDB", addr)
        .env("SR_DB_TYPE", "Standalone")
        .env("SR_LOG_LEVEL", "quiet")
        .output()
        .expect("python");
    text(&out.stdout)
        .trim()
        .lines()
        .last()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("smartredis bench failed: {}", text(&out.stderr)))
}

/// Seconds for `n` plain SET+GET pairs per client, each client a thread blocking on its own
/// connection (the `redis` crate), as orc-client's are; the slowest thread's time, as for
/// orc-client.
fn raw_threads(addr: &str, size: usize, clients: usize, n: usize) -> f64 {
    on_threads("SET+GET from threads", size, clients, |i, ready| {
        let mut con = redis::Client::open(format!("redis://{addr}/"))
            .and_then(|c| c.get_connection())
            .expect("connect");
        let data = vec![0u8; size];
        let key = format!("raw_{i}");
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(&data[..]);
        let mut get = redis::cmd("GET");
        get.arg(&key);
        set.query::<()>(&mut con).expect("warm up");
        ready();
        let t = Instant::now();
        for _ in 0..n {
            set.query::<()>(&mut con).expect("SET");
            let back: Vec<u8> = get.query(&mut con).expect("GET");
            assert_eq!(back.len(), size);
        }
        t.elapsed().as_secs_f64()
    })
}

/// Seconds for `n` SET+GET pairs per client from redis-benchmark's requests per second.
fn redis_benchmark(port: u16, size: usize, clients: usize, n: usize) -> f64 {
    let total = n * clients;
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-t",
            "set,get",
            "-d",
            &size.to_string(),
            "-c",
            &clients.to_string(),
            "-n",
            &total.to_string(),
            "-q",
        ])
        .output()
        .expect("redis-benchmark");
    let t = text(&out.stdout).replace('\r', "\n");
    let rps = |verb: &str| -> f64 {
        t.lines()
            .filter(|l| l.starts_with(verb))
            .filter_map(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            .next_back()
            .unwrap_or_else(|| panic!("no {verb} figure in: {t}"))
    };
    // Each client does n SETs and n GETs; the rates are for all clients together.
    (total as f64 / rps("SET:")) + (total as f64 / rps("GET:"))
}

/// CPU seconds the shard at `addr` has used (`INFO cpu`).
fn server_cpu(addr: &str) -> f64 {
    let info: String = redis_cmd(addr, &["INFO", "cpu"]).expect("INFO cpu");
    ["used_cpu_sys:", "used_cpu_user:"]
        .iter()
        .filter_map(|k| info.lines().find_map(|l| l.strip_prefix(k)))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

/// CPU seconds of this process and its finished children (the Python clients,
/// redis-benchmark).
fn process_cpu() -> f64 {
    let secs = |who| {
        // SAFETY: getrusage fills the struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
        t(u.ru_utime) + t(u.ru_stime)
    };
    secs(libc::RUSAGE_SELF) + secs(libc::RUSAGE_CHILDREN)
}

/// Whether `v` is among the comma-separated values of `$var` (every value when unset), to
/// run some cells only: `ORC_BENCH_SIZES=1024 ORC_BENCH_CLIENTS=16`.
fn chosen(var: &str, v: usize) -> bool {
    std::env::var(var).map_or(true, |list| {
        list.split(',').any(|x| x.trim().parse() == Ok(v))
    })
}

fn main() {
    let state = State::new();
    let mut s = ai_settings("bench", 1, &[]);
    s.redis.proto_max_bulk_len = Some("1gb".into());
    let orc = launch(&static_host(), &state, s).expect("orchestrator");
    let addr = orc.addresses()[0].clone();
    let port: u16 = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let mut rows = Vec::new();
    println!(
        "| tensor | clients | orc-client (MiB/s) | SmartRedis Python (MiB/s) | redis-benchmark SET+GET (MiB/s) | SET+GET from threads (MiB/s) | orc-client / SmartRedis | orc-client / redis-benchmark | orc-client / SET+GET from threads |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (size, label) in SIZES
        .into_iter()
        .filter(|(s, _)| chosen("ORC_BENCH_SIZES", *s))
    {
        for clients in CLIENTS
            .into_iter()
            .filter(|c| chosen("ORC_BENCH_CLIENTS", *c))
        {
            let n = pairs(size, clients);
            let bytes = (2 * size * n * clients) as f64 / (1 << 20) as f64;
            let cpu = |who: &str, f: &mut dyn FnMut() -> f64| -> f64 {
                let (server, clients_cpu) = (server_cpu(&addr), process_cpu());
                let wall = f();
                eprintln!(
                    "{who}: {wall:.3} s; CPU seconds: server {:.3}, client side {:.3}",
                    server_cpu(&addr) - server,
                    process_cpu() - clients_cpu
                );
                wall
            };
            let oc = bytes / cpu("orc-client", &mut || orc_client(&addr, size, clients, n));
            let sr = bytes / cpu("SmartRedis", &mut || smartredis(&addr, size, clients, n));
            let rb = bytes
                / cpu("redis-benchmark", &mut || {
                    redis_benchmark(port, size, clients, n)
                });
            let rt = bytes
                / cpu("SET+GET from threads", &mut || {
                    raw_threads(&addr, size, clients, n)
                });
            println!(
                "| {label} | {clients} | {oc:.1} | {sr:.1} | {rb:.1} | {rt:.1} | {:.2} | {:.2} | {:.2} |",
                oc / sr,
                oc / rb,
                oc / rt
            );
            rows.push(format!(
                "{size},{clients},{n},{oc:.3},{sr:.3},{rb:.3},{rt:.3}"
            ));
            redis_cmd::<()>(&addr, &["FLUSHALL"]).expect("flush");
        }
    }
    let csv = target_dir().join("../client_bench.csv");
    std::fs::write(
        &csv,
        format!(
            "size,clients,pairs,orc_client_mibs,smartredis_mibs,redis_benchmark_mibs,raw_threads_mibs\n{}\n",
            rows.join("\n")
        ),
    )
    .expect("csv");
    println!(
        "\n(MiB/s of tensor payload moved by put+get pairs; csv: {})",
        csv.display()
    );
    orc.stop().expect("stop");
}
