//! The Slurm launcher on a real single-node Slurm (started by `scripts/slurm up`, which
//! `scripts/test` runs): a 3-shard orchestrator inside an allocation, an application step
//! that stores and reads data through it, cancellation, exit codes, and a clean stop.
#![allow(clippy::unwrap_used)]

use std::{path::Path, time::Duration};

use orc_core::{JobStatus, LaunchStep, Launcher, StepId};
use orc_launcher_slurm::{SlurmLauncher, allocate, release};
use orc_tests::*;

/// An allocation released when the test ends, however it ends.
struct Alloc(String);

impl Alloc {
    fn new() -> Alloc {
        Alloc(allocate(1, "orc-test", &[]).expect("salloc: is Slurm up? run `scripts/slurm up`"))
    }
}

impl Drop for Alloc {
    fn drop(&mut self) {
        let _ = release(&self.0);
    }
}

fn steps_of(job: &str) -> String {
    let out = std::process::Command::new("squeue")
        .args(["--steps", "--jobs", job, "--noheader", "--format", "%i %j"])
        .output()
        .unwrap();
    text(&out.stdout)
}

#[test]
fn a_three_shard_orchestrator_inside_an_allocation() {
    let alloc = Alloc::new();
    let state = State::new();
    // One shard per node unless told otherwise: a one-node allocation cannot hold three.
    let out = state
        .orc_cmd(&["db", "start", "--launcher", "slurm", "--shards", "3"])
        .env("SLURM_JOB_ID", &alloc.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("3 shards need 3 host(s) at 1 shard(s) per host, but the allocation has 1")
            && err.contains("--shards-per-host 3"),
        "{err}"
    );
    assert!(
        steps_of(&alloc.0).trim().is_empty(),
        "{}",
        steps_of(&alloc.0)
    );
    let out = state
        .orc_cmd(&[
            "db",
            "start",
            // Inside an allocation `auto` is Slurm.
            "--launcher",
            "auto",
            "--shards",
            "3",
            "--shards-per-host",
            "3",
            "--port",
            &free_port_range(3).to_string(),
            "--json",
        ])
        .env("SLURM_JOB_ID", &alloc.0)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["launcher"], "slurm");
    let steps = json_strings(&v, "step");
    assert!(
        steps
            .iter()
            .all(|s| s.starts_with(&format!("{}.", alloc.0))),
        "{steps:?}"
    );
    assert_eq!(steps_of(&alloc.0).lines().count(), 3);
    let st = state.orc(&["db", "status"]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stdout));
    assert!(
        text(&st.stdout).contains("launcher: RUNNING"),
        "{}",
        text(&st.stdout)
    );

    // An application step in the same allocation stores and reads data through the database.
    let l = SlurmLauncher::new();
    let orc = orc_orchestrator::Orchestrator::connect(&static_host(), state.path(), "orchestrator")
        .unwrap();
    let mut app = LaunchStep::new(
        "app",
        target_dir().join("examples/simulation"),
        state.path(),
    )
    .args(["3"]);
    for (k, val) in orc.client_env() {
        app = app.env(k, val);
    }
    let id = l.launch(&in_alloc(app.clone(), &alloc.0)).unwrap();
    let done = wait_terminal(&l, &id);
    assert_eq!(
        (done.status, done.exit_code),
        (JobStatus::Completed, Some(0)),
        "{done}: {}",
        std::fs::read_to_string(&app.stderr).unwrap_or_default()
    );
    assert!(
        std::fs::read_to_string(&app.stdout)
            .unwrap()
            .contains("step 2")
    );
    let addrs = orc.addresses();
    let a: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let mut c = orc_client::Client::new(orc_client::Config::new(&a, true).unwrap()).unwrap();
    assert_eq!(c.get_list_length("sim_steps").unwrap(), 3);

    // Stop: every shard shut down, no step left in the allocation.
    let out = state.orc(&["db", "stop"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        wait_for(Duration::from_secs(10), || steps_of(&alloc.0)
            .trim()
            .is_empty()),
        "{}",
        steps_of(&alloc.0)
    );
    for a in &addrs {
        assert!(!listening(a));
    }
}

/// `step` placed in allocation `job`.
fn in_alloc(mut step: LaunchStep, job: &str) -> LaunchStep {
    step.run.allocation = Some(job.into());
    step
}

#[test]
fn exit_codes_cancellation_and_errors() {
    let alloc = Alloc::new();
    let dir = tempfile::tempdir().unwrap();
    let l = SlurmLauncher::new();
    let failing = LaunchStep::new("fails", "sh", dir.path()).args(["-c", "echo oops >&2; exit 7"]);
    let id = l.launch(&in_alloc(failing.clone(), &alloc.0)).unwrap();
    let s = wait_terminal(&l, &id);
    assert_eq!((s.status, s.exit_code), (JobStatus::Failed, Some(7)), "{s}");
    assert_eq!(
        std::fs::read_to_string(&failing.stderr).unwrap().trim(),
        "oops"
    );
    let sleeper = LaunchStep::new("sleeps", "sleep", dir.path()).args(["120"]);
    let id = l.launch(&in_alloc(sleeper, &alloc.0)).unwrap();
    assert_eq!(
        l.status(std::slice::from_ref(&id)).unwrap()[0].status,
        JobStatus::Running
    );
    // Another process (a fresh launcher) sees it and cancels it.
    let other = SlurmLauncher::new();
    assert_eq!(
        other.status(std::slice::from_ref(&id)).unwrap()[0]
            .native_state
            .as_deref(),
        Some("RUNNING")
    );
    assert_eq!(other.cancel(&id).unwrap().status, JobStatus::Cancelled);
    assert!(
        other.cancel(&id).unwrap().status.is_terminal(),
        "cancelling an ended step is fine"
    );
    // Outside an allocation, and with bad step ids: clear errors.
    let e = SlurmLauncher::new().allocation().unwrap_err().to_string();
    assert!(e.contains("not inside a Slurm allocation"), "{e}");
    assert!(l.status(&[StepId("nonsense".into())]).is_err());
    // A job that does not exist.
    let e = l
        .launch(&in_alloc(
            LaunchStep::new("x", "true", dir.path()),
            "999999",
        ))
        .unwrap_err()
        .to_string();
    assert!(e.contains("srun exited"), "{e}");
}

/// Cancels the batch jobs of one database when the test ends, however it ends.
struct BatchJobs(&'static str);

impl Drop for BatchJobs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("scancel")
            .args(["--name", self.0])
            .output();
    }
}

fn job_line(job: &str) -> String {
    let out = std::process::Command::new("squeue")
        .args(["--jobs", job, "--noheader", "--format", "%i %j %T"])
        .output()
        .unwrap();
    text(&out.stdout)
}

/// `orc db start --db <db> --launcher slurm --batch <extra>`, from outside any allocation.
fn start_batch(state: &State, db: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["db", "start", "--db", db, "--launcher", "slurm", "--batch"];
    args.extend_from_slice(extra);
    state
        .orc_cmd(&args)
        .env_remove("SLURM_JOB_ID")
        .env_remove("SLURM_JOBID")
        .output()
        .unwrap()
}

#[test]
fn a_three_shard_orchestrator_as_a_batch_job() {
    let _guard = BatchJobs("orc-batchdb");
    let state = State::new();
    let port = free_port_range(3).to_string();
    let out = start_batch(
        &state,
        "batchdb",
        &[
            "--nodes",
            "1",
            "--walltime",
            "10",
            "--shards",
            "3",
            "--shards-per-host",
            "3",
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
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = json_strings(&v, "step");
    // Every shard is a step of one job, which Slurm runs under our name and time limit.
    let job = steps[0].split('.').next().unwrap().to_string();
    assert!(
        steps.iter().all(|s| s.starts_with(&format!("{job}."))),
        "{steps:?}"
    );
    assert_eq!(
        job_line(&job).trim(),
        format!("{job} orc-batchdb RUNNING"),
        "the batch job"
    );
    // The job's own `batch` step holds the nodes; the shards are the other three.
    let shard_steps = steps_of(&job)
        .lines()
        .filter(|l| l.contains("batchdb_"))
        .count();
    assert_eq!(shard_steps, 3, "{}", steps_of(&job));

    // A verified cluster that holds data.
    let orc =
        orc_orchestrator::Orchestrator::connect(&static_host(), state.path(), "batchdb").unwrap();
    assert_eq!(
        orc.record().batch_job.as_ref().map(|j| j.0.as_str()),
        Some(job.as_str())
    );
    let addrs = orc.addresses();
    assert_cluster_holds_data(&addrs);
    let st = state.orc(&["db", "status", "--db", "batchdb"]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stdout));
    // Secure by default under Slurm too: clients cannot stop or reconfigure a shard, orc's
    // own admin connections (status above, stop below) work, and the files are private.
    for a in &addrs {
        for args in [
            &["SHUTDOWN", "NOSAVE"][..],
            &["CONFIG", "SET", "dir", "/tmp"],
            &["CLUSTER", "RESET"],
        ] {
            let e = redis_cmd::<()>(a, args)
                .unwrap_err()
                .to_string()
                .to_ascii_uppercase();
            assert!(e.contains("NOPERM"), "{args:?} at {a}: {e}");
        }
    }
    use std::os::unix::fs::MetadataExt;
    for f in [
        orc.record_path().to_path_buf(),
        state.path().join("batchdb/secret.json"),
    ] {
        assert_eq!(
            std::fs::metadata(&f).unwrap().mode() & 0o077,
            0,
            "{}",
            f.display()
        );
    }

    // A status command that prints garbage, or fails, is reported as such: never "completed".
    for (what, script) in [
        ("garbage", "#!/bin/sh\necho 'garbage out'\n"),
        (
            "failure",
            "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller' >&2\nexit 1\n",
        ),
    ] {
        let bin = state.path().join(format!("fake-{what}"));
        std::fs::create_dir_all(&bin).unwrap();
        let exe = bin.join("scontrol");
        std::fs::write(&exe, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let st = state
            .orc_cmd(&["db", "status", "--db", "batchdb"])
            .env("PATH", path)
            .output()
            .unwrap();
        let out = text(&st.stdout);
        assert_eq!(st.status.code(), Some(4), "{what}: {out}");
        assert!(
            out.contains("process unknown (launcher `slurm`: scontrol show step"),
            "{what}: {out}"
        );
        assert!(!out.to_lowercase().contains("completed"), "{what}: {out}");
        let said = if what == "garbage" {
            "unexpected output: garbage out"
        } else {
            "Unable to contact slurm controller"
        };
        assert!(out.contains(said), "{what}: {out}");
    }

    // Stop: no shard, no step and no job left.
    let out = state.orc(&["db", "stop", "--db", "batchdb"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        wait_for(Duration::from_secs(10), || job_line(&job).trim().is_empty()),
        "{}",
        job_line(&job)
    );
    for a in &addrs {
        assert!(!listening(a));
    }
}

#[test]
fn a_batch_job_slurm_refuses() {
    let _guard = BatchJobs("orc-refused");
    let state = State::new();
    let out = start_batch(
        &state,
        "refused",
        &["--queue", "no-such-partition", "--port", "0"],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("sbatch refused the job"), "{err}");
    assert!(err.to_lowercase().contains("partition"), "{err}");
    // Nothing is left to stop.
    let st = state.orc(&["db", "status", "--db", "refused"]);
    assert_eq!(st.status.code(), Some(3), "{}", text(&st.stdout));
}

#[test]
fn a_batch_job_whose_shards_die_is_cancelled() {
    let _guard = BatchJobs("orc-dies");
    let state = State::new();
    let port = free_port_range(1).to_string();
    let out = start_batch(
        &state,
        "dies",
        &["--port", &port, "--redis-config", "no-such-directive=1"],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("exited while starting"), "{err}");
    assert!(err.contains("no-such-directive"), "{err}");
    // The job that held the shard is gone with it, and nothing is left to stop.
    let out = std::process::Command::new("squeue")
        .args(["--name", "orc-dies", "--noheader"])
        .output()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || {
            let o = std::process::Command::new("squeue")
                .args(["--name", "orc-dies", "--noheader"])
                .output()
                .unwrap();
            text(&o.stdout).trim().is_empty()
        }),
        "{}",
        text(&out.stdout)
    );
    let st = state.orc(&["db", "status", "--db", "dies"]);
    assert_eq!(st.status.code(), Some(3), "{}", text(&st.stdout));
}

#[test]
fn a_batch_job_that_ended_under_orc_still_stops_cleanly() {
    let _guard = BatchJobs("orc-ended");
    let state = State::new();
    let port = free_port_range(1).to_string();
    let out = start_batch(&state, "ended", &["--port", &port, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let step = v["shards"][0]["step"].as_str().unwrap().to_string();
    let job = step.split('.').next().unwrap().to_string();
    let addr = v["addresses"][0].as_str().unwrap().to_string();

    // The job ends under orc's feet (walltime, an admin's scancel).
    let out = std::process::Command::new("scancel")
        .arg(&job)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(wait_for(Duration::from_secs(15), || job_line(&job)
        .trim()
        .is_empty()));
    assert!(wait_for(Duration::from_secs(5), || !listening(&addr)));
    let st = state.orc(&["db", "status", "--db", "ended"]);
    assert_eq!(st.status.code(), Some(4), "{}", text(&st.stdout));
    assert!(text(&st.stdout).contains("DOWN"), "{}", text(&st.stdout));

    // Stopping it is no error: the shard and the job are reported gone, the record removed.
    let out = state.orc(&["db", "stop", "--db", "ended"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("already gone"),
        "{}",
        text(&out.stdout)
    );
    let st = state.orc(&["db", "status", "--db", "ended"]);
    assert_eq!(st.status.code(), Some(3), "{}", text(&st.stdout));
}

#[test]
fn the_slurm_plugin_passes_the_launcher_conformance_suite() {
    let alloc = Alloc::new();
    let dir = tempfile::tempdir().unwrap();
    let mut host = orc_host::PluginHost::new();
    host.load_file(&plugin_file("orc_plugin_launcher_slurm"))
        .unwrap();
    let l = host.launcher("slurm").unwrap();
    let job = alloc.0.clone();
    let place = move |mut s: LaunchStep| {
        s.run.allocation = Some(job.clone());
        s
    };
    conformance::run(&conformance::Target {
        launcher: l.as_ref(),
        dir: dir.path(),
        place: &place,
    });
}

#[test]
fn steps_outside_an_allocation_pass_the_conformance_suite_as_batch_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = orc_host::PluginHost::new();
    host.load_file(&plugin_file("orc_plugin_launcher_slurm"))
        .unwrap();
    let l = host.launcher("slurm").unwrap();
    // The test process is in no allocation, so every step is an sbatch job of its own.
    assert!(orc_launcher_slurm::current_job().is_none());
    // A job Slurm never had is an error, never "completed".
    conformance::as_batch_jobs(
        l.as_ref(),
        dir.path(),
        "999999",
        "Slurm no longer knows job 999999",
    );
}

#[test]
fn jobs_the_controller_has_forgotten_are_read_from_the_job_completion_log() {
    // `scripts/slurm up` keeps no accounting database but a job completion log
    // (JobCompType=jobcomp/filetxt), as many small sites do. The controller forgets a job
    // MinJobAge (300 s) after it ends; then its final state comes from `sacct -c`.
    let dir = tempfile::tempdir().unwrap();
    let l = SlurmLauncher::new();
    assert!(orc_launcher_slurm::current_job().is_none());
    let step = LaunchStep::new("exits3", "sh", dir.path()).args(["-c", "exit 3"]);
    let id = l.launch(&step).unwrap();
    let ended = wait_terminal(&l, &id);
    assert_eq!(
        (ended.status, ended.exit_code),
        (JobStatus::Failed, Some(3)),
        "{ended}"
    );
    let mut from_log = None;
    assert!(
        wait_for(Duration::from_secs(10), || {
            from_log = orc_launcher_slurm::accounting_status(&id.0).unwrap();
            from_log.is_some()
        }),
        "job {id} never reached the job completion log"
    );
    let s = from_log.unwrap();
    assert_eq!(
        (s.status, s.exit_code, s.native_state.as_deref()),
        (JobStatus::Failed, Some(3), Some("FAILED")),
        "{s}"
    );
    assert_eq!(s.detail.as_deref(), Some("from the job completion log"));
    // A job no record has stays unknown.
    assert_eq!(
        orc_launcher_slurm::accounting_status("999999").unwrap(),
        None
    );
}

/// `orc db start --json` of `shards` shards on the one host of `alloc`, with `extra`
/// options; its output and first port.
fn start_inside(
    state: &State,
    alloc: &Alloc,
    shards: u16,
    extra: &[&str],
) -> (serde_json::Value, u16) {
    let port = free_port_range(shards);
    let (n, p) = (shards.to_string(), port.to_string());
    let mut args = vec![
        "db",
        "start",
        "--launcher",
        "slurm",
        "--shards",
        &n,
        "--shards-per-host",
        &n,
        "--port",
        &p,
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = state
        .orc_cmd(&args)
        .env("SLURM_JOB_ID", &alloc.0)
        .output()
        .unwrap();
    (start_json(&out), port)
}

#[test]
fn named_interfaces_are_looked_up_on_the_shards_node() {
    // With --interface under a workload manager each shard starts through `orc-shard-exec`
    // on its node, which binds it to that node's address of the interface and tells orc.
    let alloc = Alloc::new();
    let state = State::new();
    let (v, p) = start_inside(&state, &alloc, 2, &["--interface", "lo"]);
    let addrs = json_strings(&v, "addresses");
    assert_eq!(
        addrs,
        [format!("127.0.0.1:{p}"), format!("127.0.0.1:{}", p + 1)]
    );
    let dir = Path::new(v["dir"].as_str().unwrap()).to_path_buf();
    let conf = std::fs::read_to_string(dir.join("orchestrator_0.conf")).unwrap();
    assert!(!conf.contains("\nbind "), "{conf}");
    assert_eq!(
        std::fs::read_to_string(dir.join("orchestrator_0.address"))
            .unwrap()
            .trim(),
        "127.0.0.1"
    );
    assert_cluster_holds_data(&addrs);
    let out = state.orc(&["db", "stop"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for a in &addrs {
        assert!(!listening(a), "{a}");
    }
}

#[test]
fn every_shard_as_one_multi_prog_step() {
    // `--single-step`: one `srun --multi-prog` step runs every shard, rank i being shard i,
    // each writing its own output files.
    let alloc = Alloc::new();
    let state = State::new();
    let (v, _) = start_inside(&state, &alloc, 3, &["--single-step"]);
    let steps = json_strings(&v, "step");
    assert!(steps.iter().all(|s| *s == steps[0]), "{steps:?}");
    assert!(steps[0].starts_with(&format!("{}.", alloc.0)), "{steps:?}");
    let listed = steps_of(&alloc.0);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let dir = Path::new(v["dir"].as_str().unwrap()).to_path_buf();
    let conf = std::fs::read_to_string(dir.join("orchestrator_0.multi-prog")).unwrap();
    assert_eq!(conf.lines().count(), 3, "{conf}");
    assert!(conf.starts_with("0 /bin/sh "), "{conf}");
    let addrs = json_strings(&v, "addresses");
    assert_cluster_holds_data(&addrs);
    for i in 0..3 {
        let log = std::fs::read_to_string(dir.join(format!("orchestrator_{i}.out"))).unwrap();
        assert!(
            log.contains("Ready to accept connections"),
            "shard {i}: {log}"
        );
    }
    let out = state.orc(&["db", "stop"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        wait_for(Duration::from_secs(10), || steps_of(&alloc.0)
            .trim()
            .is_empty()),
        "{}",
        steps_of(&alloc.0)
    );
    for a in &addrs {
        assert!(!listening(a), "{a}");
    }
}

/// The jobs named `name` Slurm still lists.
fn jobs_named(name: &str) -> String {
    let out = std::process::Command::new("squeue")
        .args(["--name", name, "--noheader", "--format", "%i %T %r"])
        .output()
        .unwrap();
    text(&out.stdout)
}

#[test]
fn a_batch_job_waiting_in_the_queue_shows_why_and_sigterm_cancels_it() {
    let _guard = BatchJobs("orc-queued");
    let state = State::new();
    // A start time an hour away: the job waits in the queue (Reason=BeginTime).
    let child = state
        .orc_cmd(&[
            "db",
            "start",
            "--db",
            "queued",
            "--launcher",
            "slurm",
            "--batch",
            "--batch-arg",
            "begin=now+3600",
            "--shards",
            "2",
            "--shards-per-host",
            "2",
            "--port",
            "0",
            "--no-ai",
        ])
        .env_remove("SLURM_JOB_ID")
        .env_remove("SLURM_JOBID")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || jobs_named("orc-queued")
            .contains("PENDING")),
        "the job never pended: {}",
        jobs_named("orc-queued")
    );
    // The wait shows the job's state and Slurm's reason (asked every second).
    std::thread::sleep(Duration::from_millis(2500));
    let t = std::time::Instant::now();
    // SIGTERM (what `timeout` and batch systems send) cancels it like Ctrl-C, which the
    // security tests send at every moment of a start.
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.lines()
            .any(|l| l.contains("batch job ") && l.contains(" PENDING (BeginTime)")),
        "{said}"
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(
        wait_for(Duration::from_secs(10), || jobs_named("orc-queued")
            .trim()
            .is_empty()),
        "the pending job is left: {}",
        jobs_named("orc-queued")
    );
    assert!(orc_orchestrator::record::list_records(state.path()).is_empty());
}

#[test]
fn a_batch_job_that_can_never_start_is_reported_at_once() {
    let _guard = BatchJobs("orc-toomany");
    let state = State::new();
    let t = std::time::Instant::now();
    // Two nodes on a one-node cluster: Slurm keeps it pending for ever (PartitionNodeLimit).
    let out = start_batch(
        &state,
        "toomany",
        &["--nodes", "2", "--shards", "2", "--port", "0", "--no-ai"],
    );
    assert!(!out.status.success());
    let e = text(&out.stderr);
    // Slurm names it PartitionConfig or PartitionNodeLimit, depending on when it looks.
    assert!(e.contains("can never start (Slurm says Partition"), "{e}");
    assert!(e.contains("it asks for 2 node(s) but partition"), "{e}");
    assert!(e.contains("use --nodes 1 or fewer"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert!(
        wait_for(Duration::from_secs(10), || jobs_named("orc-toomany")
            .trim()
            .is_empty()),
        "the job is left: {}",
        jobs_named("orc-toomany")
    );
}
