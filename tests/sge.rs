//! The Grid Engine launcher, a site plugin built from `plugins/launcher-sge` outside the
//! workspace and loaded from `$ORC_PLUGIN_PATH`, on a real single-node Grid Engine
//! (started by `scripts/sge up`, which `scripts/test` runs): a 3-shard orchestrator as one
//! batch job, an orchestrator and an application step inside a job, the conformance suite
//! inside a job and as batch jobs, and the faults a user meets.
#![allow(clippy::unwrap_used)]

use std::{process::Command, time::Duration};

use orc_core::{BatchSettings, JobStatus, LaunchStep, Launcher};
use orc_host::PluginHost;
use orc_tests::*;

/// The plugin, built and put in a directory of its own.
fn plugin() -> tempfile::TempDir {
    site_plugin("launcher-sge", "orc_site_launcher_sge")
}

/// A host with the linked components and the Grid Engine plugin.
fn host(plugins: &tempfile::TempDir) -> PluginHost {
    let mut host = PluginHost::with_static();
    host.load_file(&plugins.path().join("liborc_site_launcher_sge.so"))
        .unwrap();
    host
}

/// Deletes Grid Engine jobs (by id or name) when the test ends, however it ends.
struct Qdel(String);

impl Drop for Qdel {
    fn drop(&mut self) {
        let _ = Command::new("qdel").args(["-f", &self.0]).output();
    }
}

/// A job holding `slots` slots of the `orc` parallel environment, deleted at the end.
fn job(l: &dyn Launcher, name: &str, slots: u32) -> Qdel {
    let mut b = BatchSettings::default();
    b.nodes = Some(1);
    b.tasks_per_node = Some(slots);
    b.queue_timeout_secs = Some(60);
    let a = l
        .allocate(&b, name)
        .expect("a Grid Engine job: is Grid Engine up? run `scripts/sge up`");
    assert_eq!(a.hosts, [orc_net::hostname()]);
    Qdel(a.id.unwrap())
}

/// The state letters `qstat` shows for a job (`r`, `qw`, ...), empty once it has gone.
fn job_state(id: &str) -> String {
    let out = Command::new("qstat").output().unwrap();
    text(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&id))
        .map(|w| w[4].to_string())
        .unwrap_or_default()
}

/// The ids of the jobs named `name`.
fn jobs_named(name: &str) -> Vec<String> {
    let out = Command::new("qstat").arg("-xml").output().unwrap();
    let xml = text(&out.stdout);
    xml.split("<job_list")
        .skip(1)
        .filter(|e| e.contains(&format!("<JB_name>{name}</JB_name>")))
        .map(|e| {
            let s = e.find("<JB_job_number>").unwrap() + "<JB_job_number>".len();
            e[s..s + e[s..].find('<').unwrap()].to_string()
        })
        .collect()
}

fn in_job(mut s: LaunchStep, job: &str) -> LaunchStep {
    s.run.allocation = Some(job.into());
    s
}

#[test]
fn the_sge_plugin_passes_the_conformance_suite_inside_a_job() {
    let plugins = plugin();
    let host = host(&plugins);
    let l = host.launcher("sge").unwrap();
    let job = job(l.as_ref(), "orc-conformance", 8);
    let dir = tempfile::tempdir().unwrap();
    let id = job.0.clone();
    conformance::run(&conformance::Target {
        launcher: l.as_ref(),
        dir: dir.path(),
        place: &|s| in_job(s, &id),
    });
    // Grid Engine ends a job when one of its tasks dies from a signal; a step that crashes,
    // or one orc cancels, must not take the job (and every shard in it) along.
    let crash = in_job(
        LaunchStep::new("crash", "sh", dir.path()).args(["-c", "kill -SEGV $$"]),
        &job.0,
    );
    let c = l.launch(&crash).unwrap();
    let s = wait_terminal(l.as_ref(), &c);
    assert_eq!(
        (s.status, s.exit_code),
        (JobStatus::Failed, Some(139)),
        "{s}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(job_state(&job.0), "r", "the job outlived its tasks");
}

#[test]
fn steps_outside_a_job_pass_the_conformance_suite_as_batch_jobs() {
    let plugins = plugin();
    let host = host(&plugins);
    let l = host.launcher("sge").unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A job Grid Engine never had is an error, never "completed".
    conformance::as_batch_jobs(
        l.as_ref(),
        dir.path(),
        "999999",
        "Grid Engine knows no job 999999",
    );
}

#[test]
fn a_three_shard_orchestrator_as_one_grid_engine_job() {
    let plugins = plugin();
    let _guard = Qdel("orc-sgedb".into());
    let state = State::new();
    let port = free_port_range(3).to_string();
    let out = state
        .orc_cmd(&[
            "db",
            "start",
            "--db",
            "sgedb",
            "--launcher",
            "sge",
            "--batch",
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
        ])
        .env("ORC_PLUGIN_PATH", plugins.path())
        .env_remove("JOB_ID")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["launcher"], "sge");
    let steps = json_strings(&v, "step");
    // One job holds every shard, as tasks, with our name, slots and walltime.
    let ids = jobs_named("orc-sgedb");
    assert_eq!(ids.len(), 1, "{ids:?}");
    let job = &ids[0];
    assert_eq!(job_state(job), "r");
    assert!(
        steps.iter().all(|s| s.starts_with(&format!("task:{job}:"))),
        "{steps:?}"
    );
    let detail = text(
        &Command::new("qstat")
            .args(["-j", job])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(
        detail.contains("parallel environment:  orc range: 3"),
        "{detail}"
    );
    assert!(detail.contains("h_rt=600"), "{detail}");

    // A verified cluster that holds data.
    let host = host(&plugins);
    let orc = orc_orchestrator::Orchestrator::connect(&host, state.path(), "sgedb").unwrap();
    assert_eq!(
        orc.record().batch_job.as_ref().map(|j| j.0.as_str()),
        Some(job.as_str())
    );
    let addrs = orc.addresses();
    assert_cluster_holds_data(&addrs);
    let st = state
        .orc_cmd(&["db", "status", "--db", "sgedb"])
        .env("ORC_PLUGIN_PATH", plugins.path())
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stdout));

    // Stop: no shard, no task, no job and no qrsh left.
    let out = state
        .orc_cmd(&["db", "stop", "--db", "sgedb"])
        .env("ORC_PLUGIN_PATH", plugins.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        wait_for(Duration::from_secs(20), || job_state(job).is_empty()),
        "{}",
        job_state(job)
    );
    for a in &addrs {
        assert!(!listening(a), "{a}");
    }
    let qrsh = Command::new("pgrep")
        .args(["-f", "sgedb_"])
        .output()
        .unwrap();
    assert!(
        text(&qrsh.stdout).is_empty(),
        "left running: {}",
        text(&qrsh.stdout)
    );
    assert!(jobs_named("orc-sgedb").is_empty());
}

#[test]
fn an_orchestrator_and_an_application_inside_a_job() {
    let plugins = plugin();
    let host = host(&plugins);
    let l = host.launcher("sge").unwrap();
    let job = job(l.as_ref(), "orc-injob", 3);
    let state = State::new();
    let start = |extra: &[&str]| {
        let mut args = vec!["db", "start", "--launcher", "sge"];
        args.extend_from_slice(extra);
        state
            .orc_cmd(&args)
            .env("ORC_PLUGIN_PATH", plugins.path())
            .env("JOB_ID", &job.0)
            .output()
            .unwrap()
    };
    // One shard per host unless told otherwise; this job has one host.
    let out = start(&["--shards", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("2 shards need 2 host(s) at 1 shard(s) per host"),
        "{}",
        text(&out.stderr)
    );
    // Inside a Grid Engine job, `auto` finds the site plugin whose allocation is this job.
    let port = free_port_range(2).to_string();
    let out = state
        .orc_cmd(&[
            "db",
            "start",
            "--launcher",
            "auto",
            "--shards",
            "2",
            "--shards-per-host",
            "2",
            "--port",
            &port,
            "--json",
        ])
        .env("ORC_PLUGIN_PATH", plugins.path())
        .env("JOB_ID", &job.0)
        .output()
        .unwrap();
    assert_eq!(start_json(&out)["launcher"], "sge");

    // An application step in the same job stores and reads data through the database.
    let orc = orc_orchestrator::Orchestrator::connect(&host, state.path(), "orchestrator").unwrap();
    let mut app = LaunchStep::new(
        "app",
        target_dir().join("examples/simulation"),
        state.path(),
    )
    .args(["3"]);
    for (k, val) in orc.client_env() {
        app = app.env(k, val);
    }
    let id = l.launch(&in_job(app.clone(), &job.0)).unwrap();
    let done = wait_terminal(l.as_ref(), &id);
    assert_eq!(
        (done.status, done.exit_code),
        (JobStatus::Completed, Some(0)),
        "{done}: {}",
        std::fs::read_to_string(&app.stderr).unwrap_or_default()
    );
    let addrs = orc.addresses();
    let a: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let mut c = orc_client::Client::new(orc_client::Config::new(&a, true).unwrap()).unwrap();
    assert_eq!(c.get_list_length("sim_steps").unwrap(), 3);

    let out = state
        .orc_cmd(&["db", "stop"])
        .env("ORC_PLUGIN_PATH", plugins.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    for a in &addrs {
        assert!(!listening(a), "{a}");
    }
    // The shards were tasks: the job that held them is still there for more work.
    assert_eq!(job_state(&job.0), "r");
}

#[test]
fn grid_engine_faults_are_reported() {
    let plugins = plugin();
    let state = State::new();
    let batch = |db: &str, extra: &[&str], path: Option<&str>| {
        let mut args = vec!["db", "start", "--db", db, "--launcher", "sge", "--batch"];
        args.extend_from_slice(extra);
        let mut cmd = state.orc_cmd(&args);
        cmd.env("ORC_PLUGIN_PATH", plugins.path())
            .env_remove("JOB_ID");
        if let Some(p) = path {
            cmd.env("PATH", p);
        }
        cmd.output().unwrap()
    };

    // The scheduler's commands are missing.
    let out = batch("nopath", &[], Some("/nonexistent"));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("qconf") && err.contains("Grid Engine submit host"),
        "{err}"
    );

    // A submission Grid Engine rejects: its own words surface, and no job is left.
    let _g = Qdel("orc-badpe".into());
    let out = batch("badpe", &["--batch-arg", "pe=nope"], None);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("qsub refused the job"), "{err}");
    assert!(err.contains("\"nope\""), "{err}");
    assert!(jobs_named("orc-badpe").is_empty());

    // A job that never leaves the queue is deleted when the queue timeout runs out.
    let _g = Qdel("orc-toolong".into());
    let out = batch(
        "toolong",
        &[
            "--nodes",
            "1",
            "--shards-per-host",
            "100000",
            "--queue-timeout",
            "3",
        ],
        None,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("timed out waiting for batch job"), "{err}");
    assert!(
        wait_for(Duration::from_secs(10), || jobs_named("orc-toolong")
            .is_empty()),
        "a job was left queued"
    );

    // Outside any job, without --batch, there is nothing to run in.
    let out = state
        .orc_cmd(&["db", "start", "--launcher", "sge"])
        .env("ORC_PLUGIN_PATH", plugins.path())
        .env_remove("JOB_ID")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not inside a Grid Engine job"), "{err}");
}
