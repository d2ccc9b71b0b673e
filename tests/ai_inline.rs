//! Runs of small models and scripts on Redis's main thread (`INLINE_RUN_MAX_US`), against
//! a real `redis-server` with orc-ai: when they happen, that they answer as a worker would,
//! and that the request TIMEOUT and MODEL_EXECUTION_TIMEOUT still hold for them.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use orc_tests::*;
use redis::Value;

/// A field of `INFO ai_execution` (`ai_<name>`).
fn execution_info(con: &mut redis::Connection, name: &str) -> u64 {
    let info = info_section(con, "ai_execution");
    let key = format!("ai_{name}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key} in {info}"))
        .trim()
        .parse()
        .unwrap()
}

/// `calls` of `AI.INFO key`.
fn calls(con: &mut redis::Connection, key: &str) -> i64 {
    let v = array(line(con, &format!("AI.INFO {key}")).unwrap());
    let i = v
        .iter()
        .position(|x| {
            matches!(x, Value::BulkString(b) if b == b"calls")
                || matches!(x, Value::SimpleString(s) if s == "calls")
        })
        .unwrap();
    match &v[i + 1] {
        Value::Int(n) => *n,
        other => panic!("calls: {other:?}"),
    }
}

fn output(con: &mut redis::Connection, key: &str) -> Vec<f32> {
    f32_from(&bulk(
        &line(con, &format!("AI.TENSORGET {key} BLOB")).unwrap(),
    ))
}

/// `y = x·W + b` ten times, a millisecond apart: the answers of the main thread match the
/// worker's, and how many ran inline is returned.
fn ten_linear_runs(con: &mut redis::Connection) -> u64 {
    store_linear(con, "m");
    line(con, "AI.TENSORSET x FLOAT 1 3 VALUES 1 2 3").unwrap();
    let before = execution_info(con, "inline_runs");
    line(con, "AI.MODELEXECUTE m INPUTS 1 x OUTPUTS 1 first").unwrap();
    let expected = output(con, "first");
    for i in 0..9 {
        line(con, "DEL y").unwrap();
        assert_eq!(
            line(con, "AI.MODELEXECUTE m INPUTS 1 x OUTPUTS 1 y").unwrap(),
            Value::Okay
        );
        assert_eq!(output(con, "y"), expected, "run {}", i + 2);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(calls(con, "m"), 10);
    execution_info(con, "inline_runs") - before
}

#[test]
fn small_runs_are_answered_on_the_main_thread_once_known_to_be_small() {
    let state = State::new();
    // The widest bound, so that a loaded test machine does not send runs back to the queue.
    let orc = start_ai(&state, "inline", 1, &["INLINE_RUN_MAX_US", "10000"]);
    let mut con = connect(&orc.addresses()[0]);
    assert_eq!(
        line(&mut con, "AI.CONFIG GET INLINE_RUN_MAX_US").unwrap(),
        Value::Int(10000)
    );
    // The first two runs go to the worker (nothing is known of the model yet).
    let inline = ten_linear_runs(&mut con);
    assert!((5..=8).contains(&inline), "{inline} of 10 runs inline");
    // A script too, with the same answers as its worker runs.
    scriptset(&mut con, "s", "def double(a):\n    return a * 2\n").unwrap();
    let before = execution_info(&mut con, "inline_runs");
    for _ in 0..6 {
        line(&mut con, "DEL d").unwrap();
        line(&mut con, "AI.SCRIPTEXECUTE s double INPUTS 1 x OUTPUTS 1 d").unwrap();
        assert_eq!(output(&mut con, "d"), [2.0, 4.0, 6.0]);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(execution_info(&mut con, "inline_runs") - before >= 2);
    // Models that batch always go through their queue.
    let blob = std::fs::read(data_file("models/linear.onnx")).unwrap();
    cmd(
        &mut con,
        &[
            b"AI.MODELSTORE",
            b"batched",
            b"ONNX",
            b"CPU",
            b"BATCHSIZE",
            b"4",
            b"BLOB",
            &blob,
        ],
    )
    .unwrap();
    let before = execution_info(&mut con, "inline_runs");
    for _ in 0..5 {
        line(&mut con, "AI.MODELEXECUTE batched INPUTS 1 x OUTPUTS 1 b").unwrap();
    }
    assert_eq!(execution_info(&mut con, "inline_runs"), before);
    orc.stop().unwrap();

    // INLINE_RUN_MAX_US 0: every run goes to the worker.
    let orc = start_ai(&state, "noinline", 1, &["INLINE_RUN_MAX_US", "0"]);
    let mut con = connect(&orc.addresses()[0]);
    assert_eq!(ten_linear_runs(&mut con), 0);
    // Out of range: the module refuses to load, and says which argument.
    orc.stop().unwrap();
    let e = launch(
        &static_host(),
        &state,
        ai_settings("badinline", 1, &["INLINE_RUN_MAX_US", "10001"]),
    );
    assert!(e.is_err(), "INLINE_RUN_MAX_US 10001 was accepted");
}

/// A script whose running time depends on its input's value, not its shape: `n` loop
/// iterations (interruptible, as every TorchScript loop in orc-ai).
const COUNT: &str = "def count(n):\n    i = 0\n    k = int(n.item())\n    while i < k:\n        i += 1\n    return n + 1\n";

#[test]
fn timeouts_hold_for_runs_on_the_main_thread() {
    let state = State::new();
    let orc = start_ai(
        &state,
        "inlinetimeout",
        1,
        &[
            "INLINE_RUN_MAX_US",
            "10000",
            "MODEL_EXECUTION_TIMEOUT",
            "1000",
        ],
    );
    let addr = orc.addresses()[0].clone();
    let mut con = connect(&addr);
    scriptset(&mut con, "c", COUNT).unwrap();
    line(&mut con, "AI.TENSORSET small INT64 1 VALUES 1").unwrap();
    line(&mut con, "AI.TENSORSET huge INT64 1 VALUES 100000000000").unwrap();
    let fast = |con: &mut redis::Connection| {
        // The first run compiles (tens of ms), the next two go to the worker.
        for _ in 0..5 {
            line(con, "AI.SCRIPTEXECUTE c count INPUTS 1 small OUTPUTS 1 o").unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    fast(&mut con);
    let inline = execution_info(&mut con, "inline_runs");
    assert!(inline >= 1, "the small count never ran inline");
    // Same shape, so it runs on the main thread, and loops far beyond the execution
    // timeout: the watchdog stops it and the client hears why; nothing is written.
    let t = Instant::now();
    let e = err_text(line(
        &mut con,
        "AI.SCRIPTEXECUTE c count INPUTS 1 huge OUTPUTS 1 never",
    ));
    assert!(e.contains("MODEL_EXECUTION_TIMEOUT"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(execution_info(&mut con, "inline_runs"), inline + 1);
    assert_eq!(execution_info(&mut con, "runs_timed_out"), 1);
    assert_eq!(line(&mut con, "EXISTS never").unwrap(), Value::Int(0));
    // The server answers everyone again. The slow run sent the script back to its queue,
    // and the main thread runs nothing inline for as long as that run took.
    assert_eq!(
        line(&mut connect(&addr), "PING").unwrap(),
        Value::SimpleString("PONG".into())
    );
    fast(&mut con);
    assert_eq!(execution_info(&mut con, "inline_runs"), inline + 1);
    std::thread::sleep(Duration::from_millis(1100));
    fast(&mut con);
    let inline = execution_info(&mut con, "inline_runs");
    assert!(inline >= 2, "no run inline after the main thread rested");
    // A request TIMEOUT shorter than an inline run answers TIMEDOUT and writes nothing.
    // Half a million iterations: about 70 ms here, far above 1 ms, far below 1000 ms.
    line(&mut con, "AI.TENSORSET some INT64 1 VALUES 500000").unwrap();
    let r = line(
        &mut con,
        "AI.SCRIPTEXECUTE c count INPUTS 1 some OUTPUTS 1 late TIMEOUT 1",
    );
    assert_eq!(execution_info(&mut con, "inline_runs"), inline + 1);
    assert_eq!(r.unwrap(), Value::SimpleString("TIMEDOUT".into()));
    assert_eq!(line(&mut con, "EXISTS late").unwrap(), Value::Int(0));
    orc.stop().unwrap();
}

#[test]
fn idle_workers_look_for_the_next_request_before_sleeping() {
    let state = State::new();
    // Every run goes to the worker; spins from none to the longest, and one so short that a
    // request often lands just as the worker goes to sleep (a lost wake-up would hold it
    // for the queue's 250 ms recheck or longer).
    for spin in ["0", "1", "10000"] {
        let id = format!("spin{spin}");
        let orc = start_ai(
            &state,
            &id,
            1,
            &["INLINE_RUN_MAX_US", "0", "WORKER_SPIN_US", spin],
        );
        let mut con = connect(&orc.addresses()[0]);
        assert_eq!(
            line(&mut con, "AI.CONFIG GET WORKER_SPIN_US").unwrap(),
            Value::Int(spin.parse().unwrap())
        );
        assert!(info_section(&mut con, "ai_limits").contains(&format!("worker_spin_us:{spin}")));
        assert_eq!(ten_linear_runs(&mut con), 0);
        // Requests from two clients at once, and after pauses longer than the spin.
        let addr = orc.addresses()[0].clone();
        let other = std::thread::spawn(move || {
            let mut con = connect(&addr);
            line(&mut con, "AI.TENSORSET x2 FLOAT 1 3 VALUES 1 2 3").unwrap();
            for _ in 0..100 {
                line(&mut con, "AI.MODELEXECUTE m INPUTS 1 x2 OUTPUTS 1 y2").unwrap();
            }
        });
        let t = std::time::Instant::now();
        for i in 0..200 {
            line(&mut con, "AI.MODELEXECUTE m INPUTS 1 x OUTPUTS 1 y").unwrap();
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        other.join().unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "300 small runs took {:?}: a request waited for a sleeping worker",
            t.elapsed()
        );
        orc.stop().unwrap();
    }
    let e = launch(
        &static_host(),
        &state,
        ai_settings("badspin", 1, &["WORKER_SPIN_US", "10001"]),
    );
    assert!(e.is_err(), "WORKER_SPIN_US 10001 was accepted");
}
