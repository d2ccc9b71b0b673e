//! Colocated databases on this machine (`orc run --colocated`, local launcher): ranks on
//! one node share exactly one database, ready with its objects before any rank starts,
//! reached over a Unix socket or loopback TCP, pinned off the ranks' CPUs, stopped after
//! the last rank with the application's exit code passed on, also on Ctrl-C; and every
//! error the user can make is reported before the application starts.
#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeSet,
    path::PathBuf,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use orc_tests::*;

/// The application every test runs: one line of facts per rank, from inside the rank.
const APP: &str = r#"#!/bin/sh
set -e
if [ -n "$SSDB_colo" ]; then SSDB=$SSDB_colo SR_DB_TYPE=$SR_DB_TYPE_colo; fi
ORC_RANK=${ORC_RANK:-$PMI_RANK}
case "$SSDB" in
  unix://*) R="redis-cli -s ${SSDB#unix://}" ;;
  *) R="redis-cli -h ${SSDB%:*} -p ${SSDB##*:}" ;;
esac
pid=$($R INFO server | tr -d '\r' | sed -n 's/^process_id://p')
$R AI.TENSORSET in$ORC_RANK FLOAT 1 3 VALUES 1 1 1 >/dev/null
$R AI.MODELEXECUTE lin INPUTS 1 in$ORC_RANK OUTPUTS 1 out$ORC_RANK >/dev/null
out=$($R AI.TENSORGET out$ORC_RANK VALUES | tr '\n' ' ')
$R AI.SCRIPTEXECUTE dbl double INPUTS 1 in$ORC_RANK OUTPUTS 1 d$ORC_RANK >/dev/null
dbl=$($R AI.TENSORGET d$ORC_RANK VALUES | tr '\n' ' ')
cpus() { sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/$1/status; }
echo "rank=$ORC_RANK ssdb=$SSDB type=$SR_DB_TYPE pid=$pid out=$out dbl=$dbl app_cpus=$(cpus $$) db_cpus=$(cpus $pid) keyout=$SSKEYOUT keyin=$SSKEYIN"
sleep ${SLEEP:-0}
exit ${CODE:-0}
"#;

/// A state directory, a private TMPDIR for the node directories, the app and its objects;
/// any database a failed test leaves is stopped on drop.
struct Colo {
    state: State,
}

impl Colo {
    fn new() -> Self {
        let state = State::new();
        let dir = state.path();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        std::fs::write(dir.join("app.sh"), APP).unwrap();
        std::fs::set_permissions(
            dir.join("app.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::fs::copy(data_file("models/linear.onnx"), dir.join("linear.onnx")).unwrap();
        std::fs::write(
            dir.join("fns.py"),
            "import torch\n\ndef double(x):\n    return x * 2\n",
        )
        .unwrap();
        Self { state }
    }

    fn tmp(&self) -> PathBuf {
        self.state.path().join("tmp")
    }

    /// Where this user's node directories are.
    fn node_root(&self) -> PathBuf {
        self.tmp()
            .join(format!("orc-{}", unsafe { libc::geteuid() }))
            .join("colo")
    }

    /// `orc run --colocated ARGS -- ./app.sh`, in the state directory.
    fn cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = self.state.orc_cmd(&["run", "--colocated"]);
        c.args(args)
            .arg("--")
            .arg("./app.sh")
            .current_dir(self.state.path())
            .env("TMPDIR", self.tmp())
            .envs(env.iter().copied());
        c
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.cmd(args, env).output().unwrap()
    }

    /// Node directories left behind (none once a run ended).
    fn leftovers(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.node_root())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

impl Drop for Colo {
    fn drop(&mut self) {
        let host = static_host();
        for dir in self.leftovers().into_iter().filter(|d| d.is_dir()) {
            for db in ["orchestrator", "colo"] {
                if let Ok(orc) = orc_orchestrator::Orchestrator::connect(&host, &dir, db) {
                    let _ = orc.stop();
                }
            }
        }
    }
}

/// The `key=value` facts of each rank's line.
fn facts(stdout: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    stdout
        .lines()
        .filter(|l| l.starts_with("rank="))
        .map(|l| {
            let mut m = std::collections::BTreeMap::new();
            let mut key = String::new();
            for word in l.split(' ') {
                match word.split_once('=') {
                    Some((k, v)) => {
                        key = k.to_string();
                        m.insert(key.clone(), v.to_string());
                    }
                    // Tensor values are several words.
                    None => {
                        let e = m.entry(key.clone()).or_default();
                        if !word.is_empty() {
                            e.push(' ');
                            e.push_str(word);
                        }
                    }
                }
            }
            m
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie is gone as a server.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.split(") ").nth(1).unwrap_or("").starts_with('Z'))
}

const OBJECTS: [&str; 4] = [
    "--model",
    "lin=linear.onnx,backend=ONNX",
    "--function",
    "dbl=fns.py:double",
];

#[test]
fn ranks_on_a_node_share_one_database_over_a_unix_socket() {
    let c = Colo::new();
    let mut args = vec!["-n", "3", "--key-prefix", "sim", "--consume", "a,b"];
    args.extend(OBJECTS);
    let out = c.run(&args, &[("CODE", "3"), ("SLEEP", "0.5")]);
    let stdout = text(&out.stdout);
    let ranks = facts(&stdout);
    assert_eq!(ranks.len(), 3, "{stdout}\n{}", text(&out.stderr));
    // The application's exit code comes back.
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let pids: BTreeSet<&str> = ranks.iter().map(|r| r["pid"].as_str()).collect();
    assert_eq!(pids.len(), 1, "exactly one database on the node: {stdout}");
    let pid: u32 = pids.first().unwrap().parse().unwrap();
    for r in &ranks {
        assert!(r["ssdb"].starts_with("unix://"), "{r:?}");
        assert!(
            r["ssdb"].starts_with(&format!("unix://{}", c.node_root().display())),
            "{r:?}"
        );
        assert_eq!(r["type"], "Standalone");
        // The model and the function were there before the rank started.
        assert_eq!(r["out"].trim(), "9.5 11", "{r:?}");
        assert_eq!(r["dbl"].trim(), "2 2 2", "{r:?}");
        assert_eq!((r["keyout"].as_str(), r["keyin"].as_str()), ("sim", "a,b"));
        // The database on the first CPU, the ranks off it (on machines with several).
        assert_eq!(r["db_cpus"], "0", "{r:?}");
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
        if online.trim() != "0" {
            let app = orc_orchestrator::colocated::pinning::parse_cpu_list(&r["app_cpus"]).unwrap();
            assert!(!app.contains(&0), "{r:?}");
        }
    }
    assert!(!alive(pid), "the database outlived the application");
    assert!(
        c.leftovers().iter().all(|p| !p.is_dir()),
        "{:?}",
        c.leftovers()
    );
}

#[test]
fn tcp_pinning_and_the_database_named() {
    let c = Colo::new();
    let port = free_port_range(1);
    let p = port.to_string();
    let mut args = vec![
        "--port",
        &p,
        "--db-cpus",
        "2",
        "--pin",
        "1",
        "--db",
        "colo",
        "-n",
        "2",
    ];
    args.extend(OBJECTS);
    let out = c.run(&args, &[]);
    let stdout = text(&out.stdout);
    let ranks = facts(&stdout);
    assert_eq!(ranks.len(), 2, "{stdout}\n{}", text(&out.stderr));
    assert!(out.status.success(), "{}", text(&out.stderr));
    for r in &ranks {
        assert_eq!(r["ssdb"], format!("127.0.0.1:{port}"));
        assert_eq!(r["out"].trim(), "9.5 11");
        // --pin wins over --db-cpus.
        assert_eq!(r["db_cpus"], "1", "{r:?}");
    }
    assert!(!listening(&format!("127.0.0.1:{port}")));
}

#[test]
fn ctrl_c_stops_the_ranks_and_the_database() {
    let c = Colo::new();
    let mut args = vec!["-n", "2"];
    args.extend(OBJECTS);
    let child = c
        .cmd(&args, &[("SLEEP", "60")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until both ranks told their database's pid.
    let out_file = |r: usize| {
        std::fs::read_dir(c.state.path().join("runs"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path().join(format!("rank_{r}.out")))
    };
    let started = Instant::now();
    let pid: u32 = loop {
        let lines: Vec<String> = (0..2)
            .filter_map(|r| out_file(r).and_then(|f| std::fs::read_to_string(f).ok()))
            .collect();
        let f = facts(&lines.concat());
        if f.len() == 2 {
            break f[0]["pid"].parse().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ranks never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(alive(pid));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let stopped = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(15));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("interrupted"),
        "{}",
        text(&out.stderr)
    );
    let gone = Instant::now();
    while alive(pid) && gone.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(pid), "the database outlived Ctrl-C");
}

/// Runs that must fail before the application starts: the error, and no rank output.
fn refused(c: &Colo, args: &[&str], expect: &[&str]) {
    let out = c.run(args, &[]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        facts(&text(&out.stdout)).is_empty(),
        "the application ran: {args:?}"
    );
    for e in expect {
        assert!(err.contains(e), "{args:?}: `{e}` not in {err}");
    }
}

#[test]
fn errors_come_before_the_application() {
    let c = Colo::new();
    // A model file that is not there: refused before anything starts.
    refused(&c, &["--model", "m=gone.onnx,backend=ONNX"], &["gone.onnx"]);
    // A model its backend rejects: the database starts, the load fails, no rank runs.
    std::fs::write(c.state.path().join("bad.onnx"), b"not a model").unwrap();
    refused(
        &c,
        &["-n", "2", "--model", "m=bad.onnx,backend=ONNX"],
        &["could not load model `m`", "did not start"],
    );
    // A GPU model on a CPU-only build: refused by its backend, clearly.
    refused(
        &c,
        &[
            "--model",
            "m=linear.onnx,backend=ONNX,device=GPU,devices-per-node=2",
        ],
        &["could not load model `m`", "CPU only"],
    );
    // A socket path too long for sun_path.
    let long = format!("/tmp/{}/r.sock", "x".repeat(120));
    refused(&c, &["--unix-socket", &long], &["sun_path"]);
    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    refused(&c, &["--port", &port], &["did not start", &port]);
    // A database that cannot start (its server exits at once): its log is shown.
    refused(&c, &["--redis-server", "/bin/false"], &["did not start"]);
    // A TMPDIR so long that the default socket cannot fit.
    let out = c
        .cmd(&[], &[])
        .env("TMPDIR", format!("/tmp/{}", "y".repeat(100)))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("TMPDIR"),
        "{}",
        text(&out.stderr)
    );
    // Nothing of any failed run is left.
    assert!(
        c.leftovers().iter().all(|p| !p.is_dir()),
        "{:?}",
        c.leftovers()
    );
    drop(taken);
}

#[test]
fn a_node_runs_one_colocated_database_of_a_name() {
    let c = Colo::new();
    let mut args = vec!["-n", "1"];
    args.extend(OBJECTS);
    let first = c
        .cmd(&args, &[("SLEEP", "20")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !c.leftovers().iter().any(|p| p.join("ready").exists()) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the first run never got ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = c.run(&args, &[]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("already runs colocated database `orchestrator` for another job"),
        "{err}"
    );
    // Another name is fine beside it.
    let mut named = args.clone();
    named.extend(["--db", "colo"]);
    let out = c.run(&named, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(facts(&text(&out.stdout)).len(), 1);
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    let _ = first.wait_with_output();
    assert!(
        c.leftovers().iter().all(|p| !p.is_dir()),
        "{:?}",
        c.leftovers()
    );
}

#[test]
fn a_standard_database_preloads_and_serves_a_unix_socket() {
    let c = Colo::new();
    let dir = c.state.path();
    let sock = dir.join("db.sock");
    std::fs::write(
        dir.join("objects.toml"),
        "[[model]]\nname = \"lin\"\npath = \"linear.onnx\"\nbackend = \"ONNX\"\ntag = \"v1\"\n\n[[function]]\nname = \"dbl\"\npath = \"fns.py\"\nfunction = \"double\"\n",
    )
    .unwrap();
    let objects = dir.join("objects.toml");
    let sock_s = sock.display().to_string();
    let out = c.state.orc(&[
        "db",
        "start",
        "--port",
        "0",
        "--unix-socket",
        &sock_s,
        "--objects",
        objects.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let env = text(&c.state.orc(&["db", "address", "--env"]).stdout);
    assert!(env.contains(&format!("SSDB=unix://{sock_s}")), "{env}");
    let mode = std::fs::metadata(&sock).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o077,
        0
    );
    let status = text(&c.state.orc(&["db", "status"]).stdout);
    assert!(
        status.contains("loaded at start: model lin (ONNX on CPU)"),
        "{status}"
    );
    assert!(
        status.contains("function dbl (`double` on CPU)"),
        "{status}"
    );
    // `orc run` hands the socket to an application, which finds both objects.
    let run = c
        .state
        .orc_cmd(&["run", "--", "./app.sh"])
        .current_dir(dir)
        .env("ORC_RANK", "0")
        .output()
        .unwrap();
    let f = facts(&text(&run.stdout));
    assert_eq!(f.len(), 1, "{}", text(&run.stderr));
    assert_eq!(
        (f[0]["out"].trim(), f[0]["dbl"].trim()),
        ("9.5 11", "2 2 2")
    );
    assert!(c.state.orc(&["db", "stop"]).status.success());
}

#[test]
fn a_cluster_holds_a_copy_of_each_object_on_every_shard() {
    let state = State::new();
    let model = data_file("models/linear.onnx");
    let spec = format!("lin={},backend=ONNX", model.display());
    let out = state.orc(&[
        "--json", "db", "start", "-n", "3", "--port", "0", "--model", &spec,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let addrs = json_strings(&start_json(&out), "addresses");
    // orc-client's run_model finds a copy on whichever shard holds its inputs.
    let config =
        orc_client::Config::new(&addrs.iter().map(String::as_str).collect::<Vec<_>>(), true)
            .unwrap();
    let mut client = orc_client::Client::new(config).unwrap();
    for i in 0..12 {
        let input = format!("x{i}");
        let layout = orc_client::MemoryLayout::RowMajor;
        client
            .put_tensor_slice(&input, &[1.0f32, 1.0, 1.0], &[1, 3], layout)
            .unwrap();
        client
            .run_model("lin", &[&input], &[&format!("y{i}")])
            .unwrap();
        let y = client.get_tensor(&format!("y{i}")).unwrap();
        assert_eq!(y.to_vec::<f32>(layout).unwrap(), [9.5, 11.0]);
    }
    // Each shard has its own copy, under its hash-slot prefix.
    for a in &addrs {
        let keys: Vec<Vec<u8>> = state
            .admin_cmd("orchestrator", a, &["KEYS", "*lin*"])
            .unwrap();
        assert_eq!(keys.len(), 1, "{a}: {keys:?}");
    }
    assert!(state.orc(&["db", "stop"]).status.success());
}

/// Inside PBS, LSF and Cobalt jobs (the scheduler simulator's `mpiexec`, `jsrun` and `aprun` start the
/// ranks): `--launcher auto` finds the job, the ranks are one parallel step, and they share
/// one database on the node.
#[test]
fn inside_simulated_pbs_lsf_and_cobalt_jobs() {
    let sim = sim().bin();
    let path = format!("{}:{}", sim.display(), std::env::var("PATH").unwrap());
    let c = Colo::new();
    let nodefile = c.state.path().join("nodefile");
    std::fs::write(&nodefile, format!("{}\n", orc_net::hostname())).unwrap();
    let spool = c.state.path().join("spool").display().to_string();
    let hosts = format!("batch1 1 {} 42", orc_net::hostname());
    let nodefile = nodefile.display().to_string();
    let pbs = [
        ("PBS_JOBID", "4242.sim-pbs"),
        ("PBS_NODEFILE", nodefile.as_str()),
        ("PATH", path.as_str()),
    ];
    let lsf = [
        ("LSB_JOBID", "12345"),
        ("LSB_MCPU_HOSTS", hosts.as_str()),
        ("ORC_SIM_SPOOL", spool.as_str()),
        ("PATH", path.as_str()),
    ];
    for (name, env) in [("pbs", &pbs[..]), ("lsf", &lsf[..])] {
        let mut args = vec!["-n", "3"];
        args.extend(OBJECTS);
        let out = c
            .cmd(&args, &[("CODE", "0")])
            .envs(env.iter().copied())
            .env_remove("SLURM_JOB_ID")
            .env_remove("SLURM_JOBID")
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        let ranks = facts(&stdout);
        assert!(
            out.status.success(),
            "{name}: {stdout}{}",
            text(&out.stderr)
        );
        assert_eq!(ranks.len(), 3, "{name}: {stdout}{}", text(&out.stderr));
        let pids: BTreeSet<&str> = ranks.iter().map(|r| r["pid"].as_str()).collect();
        assert_eq!(pids.len(), 1, "{name}: one database on the node: {stdout}");
        assert!(
            ranks.iter().all(|r| r["out"].trim() == "9.5 11"),
            "{name}: {stdout}"
        );
        let pid: u32 = pids.first().unwrap().parse().unwrap();
        assert!(!alive(pid), "{name}: the database outlived the application");
        assert!(
            c.leftovers().iter().all(|p| !p.is_dir()),
            "{name}: {:?}",
            c.leftovers()
        );
    }
}

/// The demo's experiment (the real SmartRedis client: datasets, lists, an ONNX model and a
/// TorchScript function) against a colocated database over a Unix socket and over TCP.
#[test]
fn the_demo_experiment_runs_colocated_with_smartredis() {
    let c = Colo::new();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let experiment = repo.join("examples/experiment.py");
    let port = free_port_range(1).to_string();
    for (name, args, ssdb) in [
        ("uds", vec![], "unix://".to_string()),
        (
            "tcp",
            vec!["--port", port.as_str()],
            format!("127.0.0.1:{port}"),
        ),
    ] {
        let mut cmd = c.state.orc_cmd(&["run", "--colocated"]);
        cmd.args(&args)
            .arg("--")
            .arg(smartredis_python())
            .arg(&experiment)
            .env("TMPDIR", c.tmp())
            .env("SR_LOG_LEVEL", "quiet");
        let out = cmd.output().unwrap();
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("database: Standalone {ssdb}")),
            "{name}: {stdout}"
        );
        assert!(stdout.contains("analysis: step_3"), "{name}: {stdout}");
        assert!(
            c.leftovers().iter().all(|p| !p.is_dir()),
            "{name}: {:?}",
            c.leftovers()
        );
    }
}
