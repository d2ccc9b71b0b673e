//! Orchestrators across the nodes of a real multi-node Slurm: the project's test bed
//! (`scripts/multinode up 4`, started and removed by `scripts/test`), where each node is a
//! network namespace with its own address and hostname and its own `slurmd`, and where, as
//! on many clusters, this ("login") namespace cannot resolve the nodes' names. Shards bind
//! their own node's address and are reached at the address they bound; the cluster is
//! formed from the hosts Slurm gave and verified from here; the SmartRedis Python client
//! runs as a step on another node, an orc-client application as a step orc's launcher
//! places on a node, and orc-client from here; status and stop work from here
//! and leave nothing on any node, also for an orchestrator started inside a job (an sbatch
//! script running `orc db start`). A node lost mid-run (link cut, shard killed) shows in
//! status within seconds, and stop still ends everything without hanging on it. With
//! replicas, a lost node's shard is taken over by its replica on another node while
//! clients write through it. PBS, LSF and Cobalt orchestrators run across the same nodes
//! through the scheduler simulator (`ORC_SIM_NODES`).
#![allow(clippy::unwrap_used)]

use std::{path::PathBuf, process::Command, time::Duration};

use orc_tests::*;

/// The test bed's Slurm configuration (see `scripts/multinode`).
fn slurm_conf() -> PathBuf {
    let base = std::env::var("ORC_MN_BASE").unwrap_or_else(|_| "/run/orc-multinode".into());
    let conf = PathBuf::from(base).join("etc/slurm.conf");
    assert!(
        conf.exists(),
        "the multi-node test bed is not up: run `scripts/multinode up 4` (scripts/test does)"
    );
    conf
}

/// What Slurm says of the test bed's nodes and jobs, for failure messages.
fn slurm_picture() -> String {
    let run = |cmd: &str, args: &[&str]| {
        slurm(cmd)
            .args(args)
            .output()
            .map(|o| {
                format!(
                    "$ {cmd} {}\n{}{}",
                    args.join(" "),
                    text(&o.stdout),
                    text(&o.stderr)
                )
            })
            .unwrap_or_else(|e| format!("{cmd}: {e}\n"))
    };
    run("sinfo", &["-N", "-o", "%N %T %E"]) + &run("squeue", &["-o", "%i %j %T %R %N"])
}

/// A Slurm command against the test bed.
fn slurm(cmd: &str) -> Command {
    let mut c = Command::new(cmd);
    c.env("SLURM_CONF", slurm_conf())
        .env_remove("SLURM_JOB_ID")
        .env_remove("SLURM_JOBID");
    c
}

/// `orc` with this state directory against the test bed's Slurm.
fn orc(state: &State, args: &[&str]) -> std::process::Output {
    state
        .orc_cmd(args)
        .env("SLURM_CONF", slurm_conf())
        .env_remove("SLURM_JOB_ID")
        .env_remove("SLURM_JOBID")
        .output()
        .unwrap()
}

/// The commands of the processes running on node `i`.
fn node_processes(i: usize) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "pids", &format!("orcn{i}")])
        .output()
        .unwrap();
    text(&out.stdout)
        .split_whitespace()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
        .map(|c| c.trim().to_string())
        .collect()
}

/// Cancels the test's batch jobs however the test ends.
struct Jobs(&'static str);

impl Drop for Jobs {
    fn drop(&mut self) {
        let _ = slurm("scancel").args(["--name", self.0]).output();
    }
}

fn check_across_nodes(db: &'static str, job_name: &'static str, extra: &[&str], nodes: usize) {
    let _jobs = Jobs(job_name);
    let state = State::new();
    let port = free_port_range(2).to_string();
    let mut args = vec![
        "db",
        "start",
        "--db",
        db,
        "--launcher",
        "slurm",
        "--batch",
        "--port",
        &port,
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = orc(&state, &args);
    // Every shard is reached at its own node's address (no node name resolves here), on
    // `nodes` nodes, and the cluster formed from the hosts Slurm gave.
    let addrs = started_across_nodes(&state, db, &out, nodes, db);
    let v = start_json(&out);
    let mut hosts: Vec<&str> = addrs
        .iter()
        .map(|a| a.rsplit_once(':').unwrap().0)
        .collect();
    hosts.sort();
    hosts.dedup();
    for a in &addrs {
        let info: String = state.admin_cmd(db, a, &["CLUSTER", "INFO"]).unwrap();
        assert!(
            info.contains(&format!("cluster_known_nodes:{}", addrs.len())),
            "{a}: {info}"
        );
    }
    let st = orc(&state, &["db", "status", "--db", db]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stdout));

    // orc-client here stores and reads through every shard.
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let mut client =
        orc_client::Client::new(orc_client::Config::new(&refs, true).unwrap()).unwrap();
    for i in 0..32 {
        let t = orc_client::Tensor::from_slice(
            &[i as f32, 2.0],
            &[2],
            orc_client::MemoryLayout::RowMajor,
        )
        .unwrap();
        client.put_tensor(&format!("from-login-{i}"), &t).unwrap();
    }
    for i in 0..32 {
        assert!(client.tensor_exists(&format!("from-login-{i}")).unwrap());
    }

    // The SmartRedis Python client, as a step of the database's job on another node than
    // the first shard's, stores, reads and runs models through it.
    let job = v["shards"][0]["step"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let last_node: u32 = hosts
        .last()
        .and_then(|h| h.rsplit('.').next())
        .and_then(|o| o.parse().ok())
        .map(|o: u32| o - 10)
        .unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/smartredis_compat.py");
    let app = slurm("srun")
        .args([
            "--jobid",
            &job,
            "--overlap",
            "-N1",
            "-n1",
            "-w",
            &format!("orcn{last_node}"),
        ])
        .arg(smartredis_python())
        .arg(&script)
        .env("SSDB", addrs.join(","))
        .env("SR_DB_TYPE", "Clustered")
        .env("SR_LOG_LEVEL", "quiet")
        .output()
        .unwrap();
    assert!(
        app.status.success() && text(&app.stdout).contains("checks passed"),
        "SmartRedis on orcn{last_node}:\n{}\n{}",
        text(&app.stdout),
        text(&app.stderr)
    );

    // orc-client in an application that orc's Slurm launcher starts as a step of the job
    // on the first shard's node (as `orc run` users' applications are).
    let first_node: u32 = hosts
        .first()
        .and_then(|h| h.rsplit('.').next())
        .and_then(|o| o.parse().ok())
        .map(|o: u32| o - 10)
        .unwrap();
    let l = orc_launcher_slurm::SlurmLauncher::new();
    let mut app = orc_core::LaunchStep::new(
        "app",
        target_dir().join("examples/simulation"),
        state.path(),
    )
    .args(["3"])
    .env("SSDB", addrs.join(","))
    .env("SR_DB_TYPE", "Clustered");
    app.run.allocation = Some(job.clone());
    app.run.hosts = vec![format!("orcn{first_node}")];
    let id = orc_core::Launcher::launch(&l, &app).unwrap();
    let done = wait_terminal(&l, &id);
    assert_eq!(
        (done.status, done.exit_code),
        (orc_core::JobStatus::Completed, Some(0)),
        "{done}: {}",
        std::fs::read_to_string(&app.stderr).unwrap_or_default()
    );
    assert_eq!(client.get_list_length("sim_steps").unwrap(), 3);

    // Stop from here: nothing left on any node, and the job is gone.
    let out = orc(&state, &["db", "stop", "--db", db]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        wait_for(Duration::from_secs(15), || (1..=4).all(|i| {
            !node_processes(i)
                .iter()
                .any(|c| c.starts_with("redis") || c.starts_with("orc"))
        })),
        "processes left on the nodes: {:?}",
        (1..=4).map(node_processes).collect::<Vec<_>>()
    );
    let q = slurm("squeue")
        .args(["--name", job_name, "--noheader"])
        .output()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || {
            let q = slurm("squeue")
                .args(["--name", job_name, "--noheader"])
                .output()
                .unwrap();
            text(&q.stdout).trim().is_empty()
        }),
        "the batch job is left: {}",
        text(&q.stdout)
    );
}

// One test: each part checks that nothing of it is left on any node.
#[test]
fn batch_orchestrators_across_nodes() {
    // SAFETY: the only test in this binary, before any thread starts. The test's own
    // clean-up (State's drop, through the Slurm launcher) must reach the test bed too.
    unsafe { std::env::set_var("SLURM_CONF", slurm_conf()) };
    // One shard per node on four nodes.
    check_across_nodes("mn4", "orc-mn4", &["--shards", "4"], 4);
    // Two shards per host on two nodes.
    check_across_nodes(
        "mn22",
        "orc-mn22",
        &["--nodes", "2", "--shards", "4", "--shards-per-host", "2"],
        2,
    );
    // Every shard as one MPMD step (srun --multi-prog), bound to the nodes' `eth0`.
    check_across_nodes(
        "mnss",
        "orc-mnss",
        &["--shards", "3", "--single-step", "--interface", "eth0"],
        3,
    );
    an_orchestrator_started_inside_a_job();
    colocated_across_nodes();
    python_drivers_on_slurm();
    node_failure_is_reported_and_stopped();
    replicas_take_over_a_lost_node();
    simulated_schedulers_across_nodes();
    grid_engine_across_nodes();
}

/// Restores node `i`'s link when the test ends, however it ends.
struct LinkDown(usize);

impl LinkDown {
    fn cut(i: usize) -> Self {
        let ok = Command::new("ip")
            .args(["link", "set", &format!("orcmnv{i}"), "down"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot cut node {i}'s link");
        LinkDown(i)
    }
}

impl Drop for LinkDown {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "set", &format!("orcmnv{}", self.0), "up"])
            .status();
    }
}

/// Node `i` is lost: its link cut and the shards on it killed (a node that dies with its
/// processes). The link comes back when the guard drops.
fn lose_node(i: usize) -> LinkDown {
    let down = LinkDown::cut(i);
    let out = Command::new("ip")
        .args(["netns", "pids", &format!("orcn{i}")])
        .output()
        .unwrap();
    for pid in text(&out.stdout).split_whitespace() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "redis-server" {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
    down
}

/// A node lost mid-run (its link cut, its shard killed): status says so within seconds
/// from here, stop ends everything else and the job without waiting on the dead node, and
/// once the node is back nothing of the database is left on it.
fn node_failure_is_reported_and_stopped() {
    let _jobs = Jobs("orc-mnlost");
    let state = State::new();
    let port = free_port_range(1).to_string();
    let out = orc(
        &state,
        &[
            "db",
            "start",
            "--db",
            "mnlost",
            "--launcher",
            "slurm",
            "--batch",
            "--shards",
            "4",
            "--port",
            &port,
            "--no-ai",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    {
        let _down = lose_node(2);
        let t = std::time::Instant::now();
        let st = orc(&state, &["db", "status", "--db", "mnlost"]);
        assert_eq!(st.status.code(), Some(4), "{}", text(&st.stdout));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let report = text(&st.stdout);
        assert!(
            report.contains("shard 1 (10.251.0.12:") && report.contains("unreachable"),
            "{report}"
        );
        // The lost node is named.
        assert!(
            report
                .lines()
                .any(|l| l.contains("shard 1 ") && l.contains("DOWN") && l.ends_with(" on orcn2")),
            "{report}"
        );
        let t = std::time::Instant::now();
        let out = orc(&state, &["db", "stop", "--db", "mnlost"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        // SHUTDOWN to the lost shard times out at once; the job's release does not wait
        // on the lost node.
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "stop took {:?}",
            t.elapsed()
        );
        for i in [1, 3, 4] {
            assert!(
                wait_for(Duration::from_secs(10), || !node_processes(i)
                    .iter()
                    .any(|c| c.starts_with("redis"))),
                "shards left on orcn{i}"
            );
        }
    }
    // The node is back: no shard runs there (its step daemons exit on Slurm's own
    // schedule; see replicas_take_over_a_lost_node).
    assert!(
        wait_for(Duration::from_secs(30), || !node_processes(2)
            .iter()
            .any(|c| c.starts_with("redis"))),
        "left on orcn2: {:?}",
        node_processes(2)
    );
    assert!(orc_orchestrator::record::list_records(state.path()).is_empty());
}

/// An orchestrator started inside an allocation (an sbatch script running `orc db start`
/// on the job's first node), then watched, used and stopped from the login namespace.
fn an_orchestrator_started_inside_a_job() {
    let _jobs = Jobs("orc-inside");
    let state = State::new();
    let port = free_port_range(1);
    let script = state.path().join("inside.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\n#SBATCH --job-name=orc-inside\n#SBATCH --nodes=3\n#SBATCH --output={out}\n\
             export ORC_STATE_DIR={state}\n\
             {orc} db start --db inside --launcher slurm --shards 3 --port {port} || exit 1\n\
             exec sleep 600\n",
            out = state.path().join("inside.out").display(),
            state = state.path().display(),
            orc = orc_bin().display(),
        ),
    )
    .unwrap();
    let out = slurm("sbatch").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record = orc_orchestrator::record::record_path(state.path(), "inside");
    let ready =
        || orc_orchestrator::record::OrchestratorRecord::load(&record).is_ok_and(|r| r.ready);
    assert!(
        wait_for(Duration::from_secs(60), ready),
        "the orchestrator inside the job never became ready: {}",
        std::fs::read_to_string(state.path().join("inside.out")).unwrap_or_default()
    );
    let rec = orc_orchestrator::record::OrchestratorRecord::load(&record).unwrap();
    let addrs: Vec<String> = rec.shards.iter().map(|s| s.address.to_string()).collect();
    assert!(
        addrs.iter().all(|a| a.starts_with("10.251.0.")),
        "{addrs:?}"
    );
    // From the login namespace: status, a client, stop.
    let st = orc(&state, &["db", "status", "--db", "inside"]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stdout));
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let mut client =
        orc_client::Client::new(orc_client::Config::new(&refs, true).unwrap()).unwrap();
    let t = orc_client::Tensor::from_slice(&[1.0f32], &[1], orc_client::MemoryLayout::RowMajor)
        .unwrap();
    client.put_tensor("inside", &t).unwrap();
    assert!(client.tensor_exists("inside").unwrap());
    let out = orc(&state, &["db", "stop", "--db", "inside"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for i in 1..=4 {
        assert!(
            wait_for(Duration::from_secs(10), || !node_processes(i)
                .iter()
                .any(|c| c.starts_with("redis"))),
            "shards left on orcn{i}"
        );
    }
}

/// The application of the colocated runs: one line per rank, from inside it.
const COLO_APP: &str = r#"#!/bin/sh
R="redis-cli -s ${SSDB#unix://}"
pid=$($R INFO server | tr -d '\r' | sed -n 's/^process_id://p')
$R AI.TENSORSET in$SLURM_PROCID FLOAT 1 3 VALUES 1 1 1 >/dev/null
$R AI.MODELEXECUTE lin INPUTS 1 in$SLURM_PROCID OUTPUTS 1 out$SLURM_PROCID >/dev/null
out=$($R AI.TENSORGET out$SLURM_PROCID VALUES | tr '\n' ' ')
echo "rank=$SLURM_PROCID host=$(hostname) db=$pid out=$out"
sleep ${SLEEP:-0}
exit ${CODE:-0}
"#;

/// Each rank's (host, database pid, model output), checked: `ranks` ranks, each with the
/// model's answer, and exactly one database per node they ran on.
fn colocated_ranks(output: &str, ranks: usize) -> std::collections::BTreeMap<String, String> {
    let mut per_host = std::collections::BTreeMap::new();
    let lines: Vec<&str> = output.lines().filter(|l| l.starts_with("rank=")).collect();
    assert_eq!(lines.len(), ranks, "{output}");
    for l in lines {
        let field = |k: &str| {
            l.split(' ')
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            l.contains("out=9.5 11"),
            "the model was not loaded before the rank: {l}"
        );
        let old = per_host.insert(field("host"), field("db"));
        if let Some(old) = old {
            assert_eq!(old, field("db"), "two databases on one node: {output}");
        }
    }
    let pids: std::collections::BTreeSet<&String> = per_host.values().collect();
    assert_eq!(pids.len(), per_host.len(), "{output}");
    per_host
}

/// `orc run --colocated` on the real Slurm across nodes: inside a job of 2 nodes (4 ranks,
/// `srun` by orc's launcher), and as a batch job of its own from here; N ranks on M nodes
/// give exactly M databases, each with the model loaded before its ranks start; the
/// application's exit code comes back, and nothing is left on any node.
fn colocated_across_nodes() {
    let _jobs = Jobs("orc-colo");
    let state = State::new();
    let dir = state.path();
    std::fs::write(dir.join("app.sh"), COLO_APP).unwrap();
    std::fs::set_permissions(
        dir.join("app.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let model = format!(
        "lin={},backend=ONNX",
        data_file("models/linear.onnx").display()
    );
    let script = dir.join("colo.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\n#SBATCH --job-name=orc-colo\n#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=2\n#SBATCH --output={out}\n\
             export ORC_STATE_DIR={state}\n\
             CODE=3 {orc} run --colocated -n 4 -N 2 --model {model} -- {app}\n\
             echo exit=$? > {done}\n",
            out = dir.join("colo.out").display(),
            state = dir.display(),
            orc = orc_bin().display(),
            app = dir.join("app.sh").display(),
            done = dir.join("colo.done").display(),
        ),
    )
    .unwrap();
    let out = slurm("sbatch").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let done = dir.join("colo.done");
    assert!(
        wait_for(Duration::from_secs(90), || done.exists()),
        "the colocated job never ended: {}",
        std::fs::read_to_string(dir.join("colo.out")).unwrap_or_default()
    );
    let output = std::fs::read_to_string(dir.join("colo.out")).unwrap();
    assert_eq!(
        std::fs::read_to_string(&done).unwrap().trim(),
        "exit=3",
        "{output}"
    );
    let hosts = colocated_ranks(&output, 4);
    assert_eq!(hosts.len(), 2, "{output}");
    no_shard_left("colocated inside a job");
    // As a batch job of its own, from here.
    let out = state
        .orc_cmd(&[
            "run",
            "--colocated",
            "--launcher",
            "slurm",
            "-n",
            "3",
            "-N",
            "3",
            "--model",
            &model,
            "--run-arg",
            "job-name=orc-colo",
            "--",
        ])
        .arg(dir.join("app.sh"))
        .env("SLURM_CONF", slurm_conf())
        .env_remove("SLURM_JOB_ID")
        .env_remove("SLURM_JOBID")
        .output()
        .unwrap();
    let output = text(&out.stdout);
    assert!(out.status.success(), "{output}{}", text(&out.stderr));
    assert_eq!(colocated_ranks(&output, 3).len(), 3, "{output}");
    no_shard_left("colocated batch job");
    // `scancel` of a running colocated job ends ranks and databases on every node.
    let run = state
        .orc_cmd(&[
            "run",
            "--colocated",
            "--launcher",
            "slurm",
            "-n",
            "2",
            "-N",
            "2",
            "--run-arg",
            "job-name=orc-colo",
            "--",
        ])
        .arg(dir.join("app.sh"))
        .env("SLEEP", "300")
        .env("SLURM_CONF", slurm_conf())
        .env_remove("SLURM_JOB_ID")
        .env_remove("SLURM_JOBID")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let both_up = || {
        (1..=4)
            .filter(|i| node_processes(*i).iter().any(|c| c.starts_with("redis")))
            .count()
            == 2
    };
    assert!(
        wait_for(Duration::from_secs(60), both_up),
        "the colocated databases never ran"
    );
    let out = slurm("scancel")
        .args(["--name", "orc-colo"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run.wait_with_output().unwrap();
    assert!(!out.status.success(), "a cancelled job reported success");
    no_shard_left("colocated job cancelled");
    let left: Vec<_> = std::fs::read_dir("/tmp")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("orc-"))
        .flat_map(|e| {
            std::fs::read_dir(e.path().join("colo"))
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|e| e.path().is_dir())
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "node directories left: {left:?}");
}

/// The SmartSim tutorial driver ported to orc's Python package (`examples/driver.py`) on
/// the real Slurm across nodes: inside a job of 3 nodes (database shards and every model
/// as `srun` steps), and from here with the database as a batch job of its own and each
/// model as a batch job; everything completes and nothing is left on any node.
fn python_drivers_on_slurm() {
    let _jobs = Jobs("orc-py");
    let state = State::new();
    let dir = state.path();
    let py = smartredis_python();
    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/driver.py");
    let bin_dir = orc_bin().parent().unwrap().to_path_buf();
    let env = format!(
        "export ORC_AI_MODULE={ai} PATH={bin}:$PATH SR_LOG_LEVEL=quiet\n",
        ai = plugin_file("orc_ai").display(),
        bin = bin_dir.display()
    );
    let script = dir.join("driver.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\n#SBATCH --job-name=orc-py\n#SBATCH --nodes=3\n#SBATCH --output={out}\n{env}\
             {py} {driver} --launcher slurm --db-nodes 3\necho exit=$? > {done}\n",
            out = dir.join("driver.out").display(),
            py = py.display(),
            driver = driver.display(),
            done = dir.join("driver.done").display(),
        ),
    )
    .unwrap();
    let out = slurm("sbatch").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let done = dir.join("driver.done");
    let log = || std::fs::read_to_string(dir.join("driver.out")).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(120), || done.exists()),
        "the driver job never ended: {}",
        log()
    );
    assert_eq!(
        std::fs::read_to_string(&done).unwrap().trim(),
        "exit=0",
        "{}",
        log()
    );
    assert!(log().contains("sim_3 mean 14"), "{}", log());
    assert!(log().contains("database at 10.251.0."), "{}", log());
    no_shard_left("python driver inside a job");
    // From here: the database as a batch job, the models as batch jobs.
    let out = Command::new(&py)
        .arg(&driver)
        .args(["--launcher", "slurm", "--db-nodes", "2", "--batch"])
        .env("ORC_AI_MODULE", plugin_file("orc_ai"))
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("SR_LOG_LEVEL", "quiet")
        .env("SLURM_CONF", slurm_conf())
        .env_remove("SLURM_JOB_ID")
        .env_remove("SLURM_JOBID")
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("sim_0 mean 3.5"), "{stdout}");
    no_shard_left("python driver with a batch database");
}

/// Three shards with a replica each on three nodes (two servers per node, each replica on
/// another node than its master): a node is lost while two orc-client applications write
/// and read through the cluster from here. The lost master's replica on another node takes
/// its slots over, the clients carry on, no write confirmed with `WAIT` is lost, status
/// names the lost node and the replica that took over; once the node is back, `orc db heal`
/// makes the database whole again, and stop ends everything.
fn replicas_take_over_a_lost_node() {
    let _jobs = Jobs("orc-mnrep");
    let state = State::new();
    let port = free_port_range(2).to_string();
    let out = orc(
        &state,
        &[
            "db",
            "start",
            "--db",
            "mnrep",
            "--launcher",
            "slurm",
            "--batch",
            "--shards",
            "3",
            "--replicas",
            "1",
            "--nodes",
            "3",
            "--shards-per-host",
            "2",
            "--cluster-node-timeout",
            "2000",
            "--port",
            &port,
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let status = |state: &State| -> serde_json::Value {
        let st = orc(state, &["db", "status", "--db", "mnrep", "--json"]);
        serde_json::from_slice(&st.stdout).unwrap()
    };
    let before = status(&state);
    let shards = before["health"]["shards"].as_array().unwrap().clone();
    let addrs: Vec<String> = shards
        .iter()
        .map(|h| h["address"].as_str().unwrap().to_string())
        .collect();
    let node_of = |addr: &str| -> usize {
        let ip = addr.rsplit_once(':').unwrap().0;
        ip.rsplit('.').next().unwrap().parse::<usize>().unwrap() - 10
    };
    // Each replica follows a master on another node.
    for h in &shards[3..] {
        let master = h["replica_of"].as_str().unwrap();
        assert_ne!(
            node_of(master),
            node_of(h["address"].as_str().unwrap()),
            "{h}"
        );
    }
    let victim = node_of(&addrs[1]);
    let heir = shards
        .iter()
        .position(|h| h["replica_of"].as_str() == Some(addrs[1].as_str()))
        .unwrap();

    let writers = writers::Pair::start(&addrs);
    std::thread::sleep(Duration::from_millis(700));
    {
        let _down = lose_node(victim);
        let lost = std::time::Instant::now();
        // The heir takes the slots over, and every shard that answers says the cluster is ok.
        let taken_over = |v: &serde_json::Value| {
            let sh = v["health"]["shards"].as_array().unwrap();
            sh[heir]["role"] == "master"
                && sh[heir]["slots"].as_u64().unwrap_or(0) > 0
                && sh
                    .iter()
                    .filter(|h| h["reachable"] == true)
                    .all(|h| h["cluster_state"] == "ok")
        };
        let mut now = status(&state);
        while !taken_over(&now) {
            assert!(
                lost.elapsed() < Duration::from_secs(40),
                "no failover: {now}"
            );
            std::thread::sleep(Duration::from_millis(200));
            now = status(&state);
        }
        let failover = lost.elapsed();
        assert!(
            writers.progress(3, Duration::from_secs(30)),
            "the clients did not carry on"
        );
        let (plain, waiting) = writers.finish();
        let counts = writers::check_pair(&addrs, &plain, &waiting, lost + failover);
        eprintln!("failover across nodes in {failover:?}; {counts}");

        // Status names the lost node and the replica that took over.
        let st = orc(&state, &["db", "status", "--db", "mnrep"]);
        assert_eq!(st.status.code(), Some(4), "{}", text(&st.stdout));
        let report = text(&st.stdout);
        assert!(
            report.lines().any(|l| l.contains("shard 1 ")
                && l.contains("DOWN")
                && l.ends_with(&format!(" on orcn{victim}"))),
            "{report}"
        );
        assert!(
            report.lines().any(|l| l.contains(&format!("shard {heir} "))
                && l.contains("a replica that took a shard over")),
            "{report}"
        );
        assert!(
            report.contains("every hash slot is still served"),
            "{report}"
        );
    }
    // The node is back. It left the database's job when it was lost (the job runs on,
    // `--no-kill`), so `orc db heal` starts its servers again there as jobs of their own:
    // they rejoin as replicas and the database is whole again. (Slurm may take a while to
    // take the node back and start the job on a loaded 2-core machine: once it took over 90 s.)
    let out = orc(&state, &["db", "heal", "--db", "mnrep", "--timeout", "180"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        slurm_picture()
    );
    let healed = status(&state);
    let sh = healed["health"]["shards"].as_array().unwrap();
    assert!(
        sh.iter().all(|h| h["reachable"] == true),
        "{healed}\n{}",
        slurm_picture()
    );
    assert_eq!(sh[1]["replica_of"], addrs[heir].as_str(), "{healed}");
    let out = orc(&state, &["db", "stop", "--db", "mnrep"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Nothing of the database runs on any node. (The node's step daemons of the job it
    // left report to slurmctld on Slurm's own retry schedule, up to a minute, and exit.)
    for i in 1..=4 {
        assert!(
            wait_for(Duration::from_secs(30), || !node_processes(i)
                .iter()
                .any(|c| c.starts_with("redis"))),
            "left on orcn{i}: {:?}",
            node_processes(i)
        );
    }
    assert!(
        slurm("squeue")
            .args([
                "--noheader",
                "--name",
                "orc-mnrep,mnrep_0,mnrep_1,mnrep_2,mnrep_3,mnrep_4,mnrep_5",
            ])
            .output()
            .map(|o| text(&o.stdout).trim().is_empty())
            .unwrap(),
        "jobs left"
    );
    assert!(orc_orchestrator::record::list_records(state.path()).is_empty());
}

/// The shard addresses of a successful `orc db start --json` (`out`): each on one of
/// `nodes` distinct test-bed nodes, and a cluster every shard of which says is ok (asked
/// from here as `db`'s admin). `what` names the case in messages.
fn started_across_nodes(
    state: &State,
    db: &str,
    out: &std::process::Output,
    nodes: usize,
    what: &str,
) -> Vec<String> {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let addrs = json_strings(&start_json(out), "addresses");
    let mut hosts: Vec<&str> = addrs
        .iter()
        .map(|a| a.rsplit_once(':').unwrap().0)
        .collect();
    assert!(
        hosts.iter().all(|h| h.starts_with("10.251.0.")),
        "{what}: {addrs:?}"
    );
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), nodes, "{what}: shards on {hosts:?}");
    for a in &addrs {
        let info: String = state.admin_cmd(db, a, &["CLUSTER", "INFO"]).unwrap();
        assert!(info.contains("cluster_state:ok"), "{what} {a}: {info}");
    }
    addrs
}

/// orc-client, from here, stores 16 tensors through the cluster at `addrs`.
fn store_through(addrs: &[String]) {
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let mut client =
        orc_client::Client::new(orc_client::Config::new(&refs, true).unwrap()).unwrap();
    for i in 0..16 {
        client
            .put_tensor_slice(
                &format!("t{i}"),
                &[i as f32],
                &[1],
                orc_client::MemoryLayout::RowMajor,
            )
            .unwrap();
    }
    assert!(client.tensor_exists("t15").unwrap());
}

/// No shard runs on any node any more (after a stop).
fn no_shard_left(what: &str) {
    for i in 1..=4 {
        assert!(
            wait_for(Duration::from_secs(10), || !node_processes(i)
                .iter()
                .any(|c| c.starts_with("redis"))),
            "{what}: shards left on orcn{i}: {:?}",
            node_processes(i)
        );
    }
}

/// PBS, LSF and Cobalt orchestrators across the test bed's nodes, through the scheduler
/// simulator told about the nodes (`ORC_SIM_NODES`, `ORC_SIM_ON_NODE`): a PBS job script
/// runs on its first node, and `mpiexec`, `jsrun` and `aprun` start each shard on its own
/// node, where it looks its address up (the nodes' names do not resolve here). Each
/// orchestrator is verified, used and stopped from here, with nothing left on any node.
fn simulated_schedulers_across_nodes() {
    let sim = orc_tests::sim();
    let on_node = format!("{}/../scripts/multinode on", env!("CARGO_MANIFEST_DIR"));
    for (launcher, extra) in [
        ("pbs", &["--shards", "3"][..]),
        ("lsf", &["--shards", "4", "--shards-per-host", "2"][..]),
        ("cobalt", &["--shards", "3"][..]),
    ] {
        let state = State::new();
        let spool = tempfile::tempdir().unwrap();
        let db = format!("sim{launcher}");
        let run = |args: &[&str]| {
            state
                .orc_cmd(args)
                .env("PATH", sim.path_for(launcher == "cobalt"))
                .env("ORC_SIM_SPOOL", spool.path())
                .env("ORC_SIM_NODES", "orcn1,orcn2,orcn3,orcn4")
                .env("ORC_SIM_ON_NODE", &on_node)
                .env_remove("PBS_JOBID")
                .env_remove("LSB_JOBID")
                .env_remove("COBALT_JOBID")
                .output()
                .unwrap()
        };
        let mut args = vec![
            "db",
            "start",
            "--db",
            &db,
            "--launcher",
            launcher,
            "--batch",
            "--port",
            "0",
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = run(&args);
        let nodes = if launcher == "lsf" { 2 } else { 3 };
        let addrs = started_across_nodes(&state, &db, &out, nodes, launcher);
        let st = run(&["db", "status", "--db", &db]);
        assert_eq!(
            st.status.code(),
            Some(0),
            "{launcher}: {}",
            text(&st.stdout)
        );
        // Nodes by the scheduler's names for them (Cobalt's are Cray node ids).
        let named = if launcher == "cobalt" {
            " on nid0"
        } else {
            " on orcn"
        };
        assert!(text(&st.stdout).contains(named), "{}", text(&st.stdout));
        store_through(&addrs);
        let out = run(&["db", "stop", "--db", &db]);
        assert!(out.status.success(), "{launcher}: {}", text(&out.stderr));
        if launcher == "pbs" {
            // More nodes than the machine has: PBS keeps the job queued with a `Can Never
            // Run` comment; orc says so at once, with what to change, and deletes the job.
            let t = std::time::Instant::now();
            let out = run(&[
                "db",
                "start",
                "--db",
                "toomany",
                "--launcher",
                "pbs",
                "--batch",
                "--shards",
                "6",
                "--port",
                "0",
                "--no-ai",
            ]);
            assert!(!out.status.success());
            let e = text(&out.stderr);
            assert!(e.contains("can never start"), "{e}");
            assert!(
                e.contains("Can Never Run: Insufficient amount of resource: nodes (R: 6 A: 4"),
                "{e}"
            );
            assert!(e.contains("--shards-per-host"), "{e}");
            assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
            assert!(orc_orchestrator::record::list_records(state.path()).is_empty());
        }
        no_shard_left(launcher);
    }
}

/// A Grid Engine orchestrator across the nodes: the site plugin `launcher-sge` against a
/// Grid Engine cell whose execd runs on every node (`scripts/sge-multinode`, started by
/// `scripts/test`). Grid Engine resolves every host name, so `orc` runs where the nodes'
/// names resolve (the cell's login namespace); the shards start on their nodes with
/// `qrsh -inherit`, and are used from here.
fn grid_engine_across_nodes() {
    let plugins = site_plugin("launcher-sge", "orc_site_launcher_sge");
    let state = State::new();
    let script = format!("{}/../scripts/sge-multinode", env!("CARGO_MANIFEST_DIR"));
    let run = |args: &[&str]| {
        let out = Command::new(&script)
            .arg("exec")
            .arg(orc_bin())
            .arg("--state-dir")
            .arg(state.path())
            .args(args)
            .env("ORC_PLUGIN_PATH", plugins.path())
            .env_remove("ORC_STATE_DIR")
            .output()
            .unwrap();
        assert!(
            !text(&out.stderr).contains("not up"),
            "the multi-node Grid Engine is not up: run scripts/sge-multinode up (scripts/test does)"
        );
        out
    };
    let out = run(&[
        "db",
        "start",
        "--db",
        "sgemn",
        "--launcher",
        "sge",
        "--batch",
        // The cell also has parallel environments no queue offers (make, ...): the plugin
        // picks the one a queue does.
        "--shards",
        "3",
        "--port",
        "0",
        "--json",
    ]);
    let addrs = started_across_nodes(&state, "sgemn", &out, 3, "grid engine");
    store_through(&addrs);
    let st = run(&["db", "status", "--db", "sgemn"]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stdout));
    let out = run(&["db", "stop", "--db", "sgemn"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    no_shard_left("grid engine");
    assert!(orc_orchestrator::record::list_records(state.path()).is_empty());
}
