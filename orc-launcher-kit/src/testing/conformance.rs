//! One conformance suite for every launcher: launch, status, exit codes, output files,
//! environment, cancellation (also of an ended step) and bad step ids. Each launcher's test
//! calls [`run`] with a way to put a step where that launcher runs it (an allocation, a
//! job's environment); [`as_batch_jobs`] and [`through_agent`] cover steps outside any job
//! and batch allocations. A failed check panics with the launcher's name and what it did.

use std::{path::Path, time::Duration};

use orc_core::{BatchSettings, JobStatus, LaunchStep, Launcher, StepId, StepStatus};

use super::{pid_gone, wait_for, wait_terminal};

/// Where the suite runs: the launcher, a scratch directory, and how a step is placed.
pub struct Target<'a> {
    /// The launcher under test.
    pub launcher: &'a dyn Launcher,
    /// A directory for the steps' working directory and output files.
    pub dir: &'a Path,
    /// Puts a step inside the launcher's allocation or job.
    pub place: &'a dyn Fn(LaunchStep) -> LaunchStep,
}

impl Target<'_> {
    fn step(&self, name: &str, script: &str) -> LaunchStep {
        (self.place)(LaunchStep::new(name, "sh", self.dir).args(["-c", script]))
    }

    fn status(&self, id: &StepId) -> StepStatus {
        self.launcher
            .status(std::slice::from_ref(id))
            .unwrap_or_else(|e| panic!("{}: status of {id}: {e}", self.launcher.name()))
            .remove(0)
    }

    fn finish(&self, id: &StepId) -> StepStatus {
        wait_terminal(self.launcher, id)
    }
}

/// Run every check against `t`.
pub fn run(t: &Target<'_>) {
    let name = t.launcher.name().to_string();

    // Exit codes, both ways, with the native state kept.
    let ok = t.step("ok", "echo out; echo err >&2");
    let id = t.launcher.launch(&ok).unwrap();
    let s = t.finish(&id);
    assert_eq!(
        (s.status, s.exit_code),
        (JobStatus::Completed, Some(0)),
        "{name}: {s}"
    );
    assert!(s.native_state.is_some(), "{name}: no native state in {s}");
    // Output files.
    assert_eq!(
        std::fs::read_to_string(&ok.stdout).unwrap(),
        "out\n",
        "{name}"
    );
    assert_eq!(
        std::fs::read_to_string(&ok.stderr).unwrap(),
        "err\n",
        "{name}"
    );

    let id = t.launcher.launch(&t.step("fails", "exit 7")).unwrap();
    let s = t.finish(&id);
    assert_eq!(
        (s.status, s.exit_code),
        (JobStatus::Failed, Some(7)),
        "{name}: {s}"
    );

    // The step's environment and working directory.
    let env = t
        .step("env", "echo \"$ORC_CONFORMANCE\" \"$(pwd)\"")
        .env("ORC_CONFORMANCE", "x y");
    let id = t.launcher.launch(&env).unwrap();
    assert_eq!(t.finish(&id).status, JobStatus::Completed, "{name}");
    let dir = t.dir.canonicalize().unwrap();
    assert_eq!(
        std::fs::read_to_string(&env.stdout).unwrap(),
        format!("x y {}\n", dir.display()),
        "{name}"
    );

    // Several steps at once, watched together, in order.
    let ids: Vec<StepId> = [0, 3, 0]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            t.launcher
                .launch(&t.step(&format!("many{i}"), &format!("sleep 0.2; exit {c}")))
                .unwrap()
        })
        .collect();
    assert!(wait_for(Duration::from_secs(60), || t
        .launcher
        .status(&ids)
        .unwrap()
        .iter()
        .all(|s| s.status.is_terminal())));
    let codes: Vec<Option<i32>> = t
        .launcher
        .status(&ids)
        .unwrap()
        .iter()
        .map(|s| s.exit_code)
        .collect();
    assert_eq!(codes, [Some(0), Some(3), Some(0)], "{name}");

    // Cancellation of a running step, then of the same step again.
    let id = t.launcher.launch(&t.step("sleeps", "sleep 120")).unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || t.status(&id).status
            == JobStatus::Running),
        "{name}: {}",
        t.status(&id)
    );
    let s = t.launcher.cancel(&id).unwrap();
    assert_eq!(s.status, JobStatus::Cancelled, "{name}: {s}");
    assert!(t.status(&id).status.is_terminal(), "{name}");
    assert!(
        t.launcher.cancel(&id).unwrap().status.is_terminal(),
        "{name}: cancelling an ended step is no error"
    );

    // A step id that is not one of this launcher's is an error, never "completed".
    let bad = StepId("not a step id".into());
    match t.launcher.status(std::slice::from_ref(&bad)) {
        Err(_) => {}
        Ok(s) => panic!("{name}: status of a bogus id: {}", s[0]),
    }
}

/// The suite on steps launched outside any job, each a batch job of its own; then a job id
/// the scheduler never had (`never_had`) must be an error that `says` so.
pub fn as_batch_jobs(l: &dyn Launcher, dir: &Path, never_had: &str, says: &str) {
    run(&Target {
        launcher: l,
        dir,
        place: &|s| s,
    });
    let e = l
        .status(&[StepId(never_had.into())])
        .unwrap_err()
        .to_string();
    assert!(e.contains(says), "{}: {e}", l.name());
}

/// Puts a step inside a job.
pub type Place<'a> = &'a dyn Fn(LaunchStep) -> LaunchStep;

/// The suite inside a batch job the launcher allocates from outside it, reached through
/// the job's agent ([`crate::agent`]): the job must have `hosts`; `more` runs further
/// checks inside it (given how to place a step there and a scratch directory). Then a step
/// still running when the job is released must end with it, and the agent must be gone.
pub fn through_agent(
    l: &dyn Launcher,
    batch: &BatchSettings,
    hosts: &[String],
    more: &dyn Fn(Place<'_>, &Path),
) {
    let name = l.name().to_string();
    let alloc = l
        .allocate(batch, &format!("orc-conformance-{name}"))
        .unwrap();
    let job = alloc.id.clone().unwrap();
    assert_eq!(alloc.hosts, hosts, "{name}");
    let place = |mut s: LaunchStep| {
        s.run.allocation = Some(job.clone());
        s
    };
    let inside = tempfile::tempdir().unwrap();
    run(&Target {
        launcher: l,
        dir: inside.path(),
        place: &place,
    });
    more(&place, inside.path());

    let id = l
        .launch(&place(
            LaunchStep::new("long", "sleep", inside.path()).args(["600"]),
        ))
        .unwrap();
    assert!(id.0.starts_with(&format!("agent:{job}:")), "{name}: {id}");
    let pid: u32 =
        id.0.rsplit(':')
            .next()
            .and_then(|local| local.split('@').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {id} names no process"));
    l.release(&job).unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || pid_gone(pid)),
        "{name}: step left running after the job was released"
    );
    let e = l.status(&[id]).unwrap_err().to_string();
    assert!(
        e.contains(&format!("no agent serves batch job {job}")),
        "{name}: {e}"
    );
    // Releasing again is no error.
    l.release(&job).unwrap();
}

/// The agent of a job the launcher allocates, whose directories lie under `root` (see
/// [`crate::agent::root`]), refuses a request not signed with the job's key and one that
/// launches into another job, runs neither, answers each with an error and logs it in the
/// job's output; signed requests of the job still work, and nothing is left after release.
pub fn agent_refuses_forgeries(l: &dyn Launcher, batch: &BatchSettings, root: &Path) {
    use crate::agent;
    let name = l.name().to_string();
    let job_name = format!("orc-forgeries-{name}");
    let alloc = l.allocate(batch, &job_name).unwrap();
    let job = alloc.id.clone().unwrap();
    let dir = agent::dir(root, &job);
    let key = agent::read_key(&agent::key_file(root, &job)).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("forged");
    let launch = |into: &str| {
        let mut s =
            LaunchStep::new("forged", "touch", scratch.path()).args([marker.display().to_string()]);
        s.run.allocation = Some(into.to_string());
        serde_json::json!({ "op": "launch", "step": s }).to_string()
    };
    let send = |file: &str, body: String, key: &[u8]| {
        let signed = agent::Signed {
            mac: orc_secure::sign(key, &agent::request_message(file, &body)),
            body,
        };
        let tmp = dir.join("requests").join(format!("{file}.part"));
        orc_secure::write_private(&tmp, &serde_json::to_vec(&signed).unwrap()).unwrap();
        std::fs::rename(&tmp, dir.join("requests").join(file)).unwrap();
        let reply = dir.join("replies").join(file);
        assert!(
            wait_for(Duration::from_secs(20), || reply.exists()),
            "{name}: the agent did not answer {file}"
        );
        let text = std::fs::read_to_string(&reply).unwrap();
        std::fs::remove_file(&reply).unwrap();
        text
    };
    let other_key = orc_secure::random_secret().into_bytes();
    let reply = send("0-forged.json", launch(&job), &other_key);
    assert!(
        reply.contains("signature is not the job"),
        "{name}: {reply}"
    );
    let reply = send("0-elsewhere.json", launch("elsewhere.1"), &key);
    assert!(reply.contains("not into this job"), "{name}: {reply}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!marker.exists(), "{name}: a refused request ran");

    // The login side's own signed requests still work.
    let ok = LaunchStep::new("fine", "true", scratch.path());
    let mut ok = ok;
    ok.run.allocation = Some(job.clone());
    let id = l.launch(&ok).unwrap();
    assert_eq!(wait_terminal(l, &id).status, JobStatus::Completed, "{name}");

    l.release(&job).unwrap();
    let output = std::fs::read_to_string(root.join(format!("{job_name}.out"))).unwrap_or_default();
    assert!(
        output.contains("agent refused a request") && output.contains("0-forged.json"),
        "{name}: the refusal is not in the job's output:\n{output}"
    );
    assert!(!dir.exists(), "{name}: the agent's directory is left");
    assert!(
        !agent::key_file(root, &job).exists(),
        "{name}: the job's key is left"
    );
}
