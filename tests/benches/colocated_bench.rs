//! Per-rank latency of `put_tensor` (1 KiB), `get_tensor` and `run_model` (a small ONNX
//! model), side by side in one run: a colocated database over a Unix socket, a colocated
//! database over loopback TCP, and a standard orchestrator shard (TCP), with 1 and 4 ranks.
//!
//! Run (release): `cargo build --release --workspace` then
//! `cargo bench -p orc-tests --bench colocated_bench`. Prints a Markdown table for
//! `docs/benchmarks.md`. The ranks are this program again (`--rank`), started by
//! `orc run --colocated` or, for the standard shard, with `orc run`.

use std::{process::Stdio, time::Instant};

use orc_client::{Client, MemoryLayout};
use orc_tests::*;

const CALLS: usize = 2000;
const WARM_UP: usize = 100;

/// p50 and p99 in microseconds.
fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

/// One rank: time each call, print `lat put p50 p99 get p50 p99 run p50 p99`.
fn rank() {
    let mut c = Client::from_env().expect("client from SSDB");
    let rank = std::env::var("SLURM_PROCID")
        .or_else(|_| std::env::var("ORC_RANK"))
        .unwrap_or_else(|_| std::process::id().to_string());
    let (t, x, y) = (format!("t{rank}"), format!("x{rank}"), format!("y{rank}"));
    let data = vec![7u8; 1024];
    let layout = MemoryLayout::RowMajor;
    c.put_tensor_slice(&x, &[1.0f32, 1.0, 1.0], &[1, 3], layout)
        .expect("put input");
    let mut time = |f: &mut dyn FnMut(&mut Client)| {
        for _ in 0..WARM_UP {
            f(&mut c);
        }
        let v: Vec<f64> = (0..CALLS)
            .map(|_| {
                let s = Instant::now();
                f(&mut c);
                s.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        percentiles(v)
    };
    let put = time(&mut |c| c.put_tensor_slice(&t, &data, &[1024], layout).expect("put"));
    let get = time(&mut |c| {
        c.get_tensor(&t).expect("get");
    });
    let run = time(&mut |c| c.run_model("lin", &[&x], &[&y]).expect("run_model"));
    println!(
        "lat {:.1} {:.1} {:.1} {:.1} {:.1} {:.1}",
        put.0, put.1, get.0, get.1, run.0, run.1
    );
}

/// The medians over ranks of each figure in their `lat` lines.
fn summarise(outputs: &[String]) -> Vec<f64> {
    let rows: Vec<Vec<f64>> = outputs
        .iter()
        .flat_map(|o| o.lines())
        .filter_map(|l| l.strip_prefix("lat "))
        .map(|l| l.split(' ').map(|w| w.parse().expect("figure")).collect())
        .collect();
    assert!(!rows.is_empty(), "no rank reported: {outputs:?}");
    (0..6)
        .map(|i| {
            let mut col: Vec<f64> = rows.iter().map(|r| r[i]).collect();
            col.sort_by(f64::total_cmp);
            col[col.len() / 2]
        })
        .collect()
}

/// One `nice 19` busy loop per online CPU, stopped on drop.
struct Spinners(Vec<std::process::Child>);

impl Spinners {
    fn start() -> Self {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self(
            (0..n)
                .map(|_| {
                    std::process::Command::new("nice")
                        .args(["-n", "19", "sh", "-c", "while :; do :; done"])
                        .spawn()
                        .expect("nice")
                })
                .collect(),
        )
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--rank") {
        return rank();
    }
    let me = std::env::current_exe().expect("this program");
    let model = format!(
        "lin={},backend=ONNX",
        data_file("models/linear.onnx").display()
    );
    println!(
        "| CPUs | database | ranks | put 1 KiB p50 / p99 (us) | get p50 / p99 | run_model p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|");
    for (awake, ranks) in [(false, 1usize), (false, 4), (true, 1), (true, 4)] {
        // Idle virtual CPUs halt, and waking one costs tens of microseconds here: with
        // `awake`, a lowest-priority spinner per CPU keeps them running (as busy compute
        // nodes are), so the figures show the database rather than the wake-ups.
        let _spinners = awake.then(Spinners::start);
        std::thread::sleep(std::time::Duration::from_millis(500));
        let n = ranks.to_string();
        let state = State::new();
        let cpus = if awake { "awake" } else { "idle" };
        let row = |name: &str, f: &[f64]| {
            println!(
                "| {cpus} | {name} | {ranks} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} |",
                f[0], f[1], f[2], f[3], f[4], f[5]
            )
        };
        let all_cpus = std::fs::read_to_string("/sys/devices/system/cpu/online")
            .expect("online CPUs")
            .trim()
            .to_string();
        for (name, extra) in [
            ("colocated, Unix socket", vec![]),
            (
                "colocated, Unix socket, unpinned (--pin all)",
                vec!["--pin".to_string(), all_cpus.clone()],
            ),
            (
                "colocated, loopback TCP",
                vec!["--port".to_string(), free_port_range(1).to_string()],
            ),
        ] {
            let mut args = vec!["run", "--colocated", "-n", &n, "--model", &model];
            args.extend(extra.iter().map(String::as_str));
            args.push("--");
            let out = state
                .orc_cmd(&args)
                .arg(&me)
                .arg("--rank")
                .stderr(Stdio::inherit())
                .output()
                .expect("orc run");
            assert!(out.status.success(), "{name}");
            row(name, &summarise(&[text(&out.stdout)]));
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let start = state.orc(&["db", "start", "--port", "0", "--model", &model]);
        assert!(start.status.success(), "{}", text(&start.stderr));
        let children: Vec<_> = (0..ranks)
            .map(|_| {
                state
                    .orc_cmd(&["run", "--"])
                    .arg(&me)
                    .arg("--rank")
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("orc run")
            })
            .collect();
        let outs: Vec<String> = children
            .into_iter()
            .map(|c| text(&c.wait_with_output().expect("rank").stdout))
            .collect();
        row("standard shard, TCP", &summarise(&outs));
        assert!(state.orc(&["db", "stop"]).status.success());
    }
}
