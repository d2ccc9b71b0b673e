//! How long `orc db start` takes to a verified database, and `orc db stop` to zero
//! processes, for 1 shard (standalone), 1 shard (cluster) and 3 shards (cluster).
//!
//! Run: `cargo build --release -p orc-cli -p orc-plugin-launcher-local -p orc-plugin-db-redis`
//! then `cargo bench -p orc-tests --bench lifecycle_bench [-- RUNS]`. Prints a Markdown
//! table (min / median / max over RUNS, default 10) for `docs/benchmarks.md`.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use orc_tests::{State, orc_bin, pid_gone, step_pid, text};

struct Sample {
    start: f64,
    stop: f64,
    gone: f64,
}

fn once(state: &State, shards: &str, deployment: &str) -> Sample {
    let t = Instant::now();
    let out = state.orc(&[
        "db",
        "start",
        "--shards",
        shards,
        "--deployment",
        deployment,
        "--port",
        "0",
        "--json",
    ]);
    let start = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "start failed: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let pids: Vec<u32> = v["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| step_pid(s["step"].as_str().expect("step")))
        .collect();
    let t = Instant::now();
    let out = state.orc(&["db", "stop"]);
    let stop = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "stop failed: {}", text(&out.stderr));
    while !pids.iter().all(|p| pid_gone(*p)) {
        assert!(t.elapsed() < Duration::from_secs(30), "shards did not exit");
        std::thread::sleep(Duration::from_micros(200));
    }
    Sample {
        start,
        stop,
        gone: t.elapsed().as_secs_f64(),
    }
}

fn stats(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let med = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    format!("{:.3} / {:.3} / {:.3}", v[0], med, v[v.len() - 1])
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    println!("orc binary: {}", orc_bin().display());
    println!("runs per case: {runs}\n");
    println!(
        "| case | `orc db start` → verified (s) | `orc db stop` returns (s) | stop → 0 processes (s) |"
    );
    println!("|---|---|---|---|");
    for (label, shards, deployment) in [
        ("1 shard, standalone", "1", "standalone"),
        ("1 shard, cluster", "1", "cluster"),
        ("3 shards, cluster", "3", "cluster"),
    ] {
        let state = State::new();
        let samples: Vec<Sample> = (0..runs)
            .map(|_| once(&state, shards, deployment))
            .collect();
        println!(
            "| {label} | {} | {} | {} |",
            stats(samples.iter().map(|s| s.start).collect()),
            stats(samples.iter().map(|s| s.stop).collect()),
            stats(samples.iter().map(|s| s.gone).collect()),
        );
    }
    println!("\n(min / median / max; each start and stop is a separate `orc` process)");
}
