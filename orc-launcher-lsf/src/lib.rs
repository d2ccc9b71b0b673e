//! The LSF launcher for [orc](orc_core): steps with `jsrun` inside an LSF job (IBM CSM
//! systems such as Summit and Sierra).
//!
//! Inside a job (`$LSB_JOBID`, hosts from `$LSB_MCPU_HOSTS`, launch node first) a step
//! placed on hosts runs as `jsrun --erf_input <step>.erf` with an explicit resource file
//! that gives every host its rank (the ERF format of [`parse::erf`]); an unplaced step runs
//! as `jsrun -n <tasks> -a 1 -c <cpus>`; an MPMD step as one ERF file with an app per part.
//! Steps are watched as the `jsrun` process on the launch node (`<pid>@<start time>`, see
//! [`orc_launcher_kit::process`]), whose exit code is the step's. JSM leaves a step's tasks
//! running when only `jsrun` dies, so each `jsrun` runs under [`JSRUN_WRAPPER`], which
//! learns its JSM step id from `jslist` (one orc launch at a time per job, so without
//! SmartSim's step-id race) and turns a cancel into `jskill`. [`parse`] reads `bsub`,
//! `bjobs` and `jslist` output and maps LSF's states, tested on captured output.
//!
//! Outside a job a step is submitted as a batch job of its own: `bsub` of a generated
//! script ([`batch_script`]) that runs the step with `jsrun`; its id is the LSF job id,
//! watched with `bjobs -o "jobid stat exit_code"` (a job LSF does not know is an error,
//! never "completed") and cancelled with `bkill`.
//!
//! Not yet: an orchestrator as one batch job (`--batch`).
//!
//! ```
//! use orc_core::Launcher;
//! let l = orc_launcher_lsf::LSFLauncher::new();
//! assert_eq!(l.name(), "lsf");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod parse;

use std::{process::Command, time::Duration};

use orc_core::{
    Allocation, BatchSettings, Error, LaunchStep, Result, StepStatus, step::shell_quote,
};
use orc_launcher_kit::{
    Factory, StaticPlugin, agent, process, tools,
    wlm::{Wlm, WlmLauncher},
};

/// The launcher's name.
pub const NAME: &str = "lsf";

/// The shell around each `jsrun` (its arguments are the jsrun command). It takes this
/// job's launch lock (orc launches in one job, one at a time), notes the JSM steps
/// `jslist` lists, starts `jsrun`, and takes the one new step as its own: the step-id race
/// SmartSim had is closed for orc's launches, and when someone else's `jsrun` starts in
/// the same instant (two new steps) it claims none. On TERM/INT/HUP (also one that came
/// while it was still finding its step) it runs `jskill` on that step (killing `jsrun`
/// alone leaves the tasks running under JSM), and it exits with `jsrun`'s code.
pub const JSRUN_WRAPPER: &str = r#"set -u
cancelled=
trap 'cancelled=1' TERM INT HUP
exec 9>>"${TMPDIR:-/tmp}/orc-jsm-${LSB_JOBID:-none}.lock"
flock 9 2>/dev/null || true
ids() { jslist 2>/dev/null | awk '$1 ~ /^[0-9]+$/ {print $1}'; }
before=$(ids)
"$@" &
j=$!
id=
for _ in $(seq 50); do
    kill -0 "$j" 2>/dev/null; alive=$?
    new=$(ids | grep -vxF -f <(printf '%s\n' $before))
    if [ -n "$new" ]; then
        if [ "$(printf '%s\n' "$new" | wc -l)" -eq 1 ]; then
            id=$new
        else
            echo "orc: several jsrun steps started at once; a cancel will signal jsrun only" >&2
        fi
        break
    fi
    [ "$alive" -eq 0 ] || break
    sleep 0.1
done
exec 9>&-
stop() {
    if [ -n "$id" ]; then jskill "$id" >/dev/null 2>&1; fi
    kill -TERM "$j" 2>/dev/null
}
trap stop TERM INT HUP
[ -z "$cancelled" ] || stop
wait "$j"; r=$?
while kill -0 "$j" 2>/dev/null; do wait "$j"; r=$?; done
exit "$r"
"#;

/// Registration of [`LSFLauncher`] with the orc plugin host.
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "LSF: jsrun steps (ERF placement) inside a job, bsub jobs outside",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Launcher(|| Box::new(LSFLauncher::new())),
};
orc_launcher_kit::register_plugin!(PLUGIN);

/// How long a cancelled batch job may take to end.
const CANCEL_LIMIT: Duration = Duration::from_secs(60);

/// Launches steps through LSF.
pub type LSFLauncher = WlmLauncher<Lsf>;

fn outside() -> Error {
    Error::launcher(
        NAME,
        "not inside an LSF job ($LSB_JOBID is unset): start orc inside one (`bsub -Is`, or from a job script)",
    )
}

/// Errors from the process layer name this launcher.
fn ours(e: Error) -> Error {
    process::attribute(
        e,
        NAME,
        "jsrun",
        "run orc inside an LSF job on a system with IBM CSM (jsrun)",
    )
}

/// A variable from the step's environment, else from this process's.
fn var(step: Option<&LaunchStep>, key: &str) -> Option<String> {
    step.and_then(|s| s.env.get(key).cloned())
        .or_else(|| std::env::var(key).ok())
        .filter(|v| !v.is_empty())
}

/// Every host of the job, launch node first.
fn job_hosts(step: Option<&LaunchStep>) -> Result<Vec<String>> {
    let job = var(step, "LSB_JOBID").ok_or_else(outside)?;
    let list = var(step, "LSB_MCPU_HOSTS").ok_or_else(|| {
        Error::launcher(
            NAME,
            format!("inside LSF job {job} but $LSB_MCPU_HOSTS is unset"),
        )
    })?;
    parse::mcpu_hosts(&list).ok_or_else(|| {
        Error::launcher(
            NAME,
            format!("$LSB_MCPU_HOSTS `{list}` is not a list of host and slot pairs"),
        )
    })
}

fn run(cmd: &str, args: &[&str]) -> Result<std::process::Output> {
    tools::output(
        NAME,
        Command::new(cmd).args(args),
        "run orc on an LSF login node (LSF client commands installed)",
    )
}

/// The `bsub` script that runs `step` as a batch job of its own, with `jsrun`.
pub fn batch_script(step: &LaunchStep) -> Result<String> {
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&tools::directives(
        "#BSUB",
        [
            ("-J", Some(step.name.clone())),
            ("-o", Some(step.stdout.display().to_string())),
            ("-e", Some(step.stderr.display().to_string())),
            ("-nnodes", step.run.nodes.map(|n| n.to_string())),
        ],
    )?);
    s.push_str(&tools::extra_directives("#BSUB", &step.run.extra, false)?);
    s.push_str(&step.script_prologue()?);
    let tasks = step.run.tasks.unwrap_or(1);
    let cpus = step.run.cpus_per_task.unwrap_or(1);
    s.push_str(&format!(
        "exec jsrun -n {tasks} -a 1 -c {cpus} {}",
        shell_quote(&step.exe.display().to_string())
    ));
    for a in &step.args {
        s.push(' ');
        s.push_str(&shell_quote(a));
    }
    s.push('\n');
    Ok(s)
}

/// The `bsub` script of a job that holds an orchestrator's nodes: it runs the job agent
/// ([`orc_launcher_kit::agent`]), which starts the shards with `jsrun` inside the job.
pub fn allocation_script(
    batch: &BatchSettings,
    name: &str,
    output: &std::path::Path,
    agent_line: &str,
) -> Result<String> {
    let walltime = batch.walltime_secs.map(|t| {
        let minutes = t.div_ceil(60);
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    });
    let output = output.display().to_string();
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&tools::directives(
        "#BSUB",
        [
            ("-J", Some(name.to_string())),
            ("-nnodes", Some(batch.nodes.unwrap_or(1).max(1).to_string())),
            ("-W", walltime),
            ("-P", batch.account.clone()),
            ("-q", batch.queue.clone()),
            ("-o", Some(output.clone())),
            ("-e", Some(output)),
        ],
    )?);
    s.push_str(&tools::extra_directives("#BSUB", &batch.extra, false)?);
    s.push_str(agent_line);
    Ok(s)
}

/// LSF's commands for a [`WlmLauncher`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Lsf;

impl agent::Scheduler for Lsf {
    fn launcher(&self) -> &str {
        NAME
    }
    fn job_var(&self) -> &'static str {
        "LSB_JOBID"
    }
    fn script(
        &self,
        batch: &BatchSettings,
        name: &str,
        output: &std::path::Path,
        agent_line: &str,
    ) -> Result<String> {
        allocation_script(batch, name, output, agent_line)
    }
    fn submit(
        &self,
        file: &std::path::Path,
        cwd: &std::path::Path,
        path: Option<&str>,
    ) -> Result<String> {
        let out = tools::output(
            NAME,
            Command::new("bsub")
                .arg(file)
                .current_dir(cwd)
                .envs(path.map(|p| ("PATH", p))),
            "run orc on an LSF login node, or inside a job",
        )?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match parse::bsub_job_id(&stdout) {
            Ok(id) if out.status.success() => Ok(id),
            Ok(_) | Err(_) if !stderr.trim().is_empty() => Err(Error::launcher(
                NAME,
                format!("bsub refused the job: {}", stderr.trim()),
            )),
            Ok(_) => Err(Error::launcher(
                NAME,
                format!("bsub failed ({})", out.status),
            )),
            Err(e) => Err(Error::launcher(NAME, format!("bsub refused the job: {e}"))),
        }
    }
    fn job_status(&self, id: &str) -> Result<StepStatus> {
        let out = run("bjobs", &["-noheader", "-o", "jobid stat exit_code", id])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        match parse::bjobs_fields(&text, id) {
            // DONE means exit code 0, which bjobs shows as `-`.
            Some((state, exit)) => {
                let mut st = parse::batch_status(
                    &state,
                    if state == "DONE" {
                        exit.or(Some(0))
                    } else {
                        exit
                    },
                )
                .ok_or_else(|| {
                    Error::launcher(
                        NAME,
                        format!("job {id} is in state {state}, which orc does not know"),
                    )
                })?;
                if state == "PEND" {
                    // Why it waits (LSF's pending reason), for progress lines.
                    st.detail = run("bjobs", &["-noheader", "-o", "pend_reason", id])
                        .ok()
                        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                        .filter(|r| !r.is_empty() && r != "-");
                }
                Ok(st)
            }
            None if err.contains("not found") => Err(Error::launcher(
                NAME,
                format!("LSF does not know job {id} (cleaned from its history, or not a job id)"),
            )),
            None => Err(Error::launcher(
                NAME,
                format!(
                    "bjobs gave no state for job {id}: {}",
                    if err.trim().is_empty() {
                        text.trim()
                    } else {
                        err.trim()
                    }
                ),
            )),
        }
    }
    fn kill(&self, id: &str) -> Result<()> {
        let out = run("bkill", &[id])?;
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !err.contains("already finished") {
            return Err(Error::launcher(NAME, format!("bkill {id}: {}", err.trim())));
        }
        Ok(())
    }
}

/// `w` (`jsrun <args>` with the step's environment and files) under [`JSRUN_WRAPPER`],
/// which learns its JSM step id and turns a cancel into `jskill`: JSM leaves a step's
/// tasks running when only `jsrun` is killed.
fn jsrun_wrapped(w: &LaunchStep) -> Result<LaunchStep> {
    process::resolve_exe(
        std::path::Path::new("jsrun"),
        w.env.get("PATH").map(String::as_str),
    )
    .map_err(ours)?;
    let mut wrapped = w.clone();
    wrapped.exe = "bash".into();
    wrapped.args = ["-c", JSRUN_WRAPPER, "orc-jsrun", "jsrun"]
        .into_iter()
        .map(String::from)
        .chain(w.args.iter().cloned())
        .collect();
    Ok(wrapped)
}

impl Wlm for Lsf {
    fn step_script(&self, step: &LaunchStep) -> Result<String> {
        batch_script(step)
    }

    fn parallel(&self, step: &LaunchStep) -> Result<LaunchStep> {
        let cpus = step.run.cpus_per_task.unwrap_or(1);
        let wrapped = if step.run.hosts.is_empty() {
            let n = step.run.tasks.unwrap_or(1).to_string();
            let args = vec![
                "-n".into(),
                n,
                "-a".into(),
                "1".into(),
                "-c".into(),
                cpus.to_string(),
            ];
            process::wrap(step, "jsrun", args)
        } else {
            let all = job_hosts(Some(step))?;
            let at = step
                .run
                .hosts
                .iter()
                .map(|h| {
                    all.iter().position(|a| a == h).ok_or_else(|| {
                        Error::launcher(
                            NAME,
                            format!("host `{h}` is not part of this job ({})", all.join(" ")),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let command: Vec<String> = std::iter::once(step.exe.display().to_string())
                .chain(step.args.iter().cloned())
                .map(|w| shell_quote(&w))
                .collect();
            let file = step.cwd.join(format!("{}.erf", step.name));
            std::fs::create_dir_all(&step.cwd)
                .map_err(|e| Error::io(format!("creating {}", step.cwd.display()), e))?;
            std::fs::write(&file, parse::erf(&command.join(" "), &at, cpus))
                .map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
            let mut w = step.clone();
            w.exe = "jsrun".into();
            w.args = vec!["--erf_input".into(), file.display().to_string()];
            w
        };
        jsrun_wrapped(&wrapped)
    }

    /// An MPMD step: one ERF file with an app per part, each rank on its part's host
    /// (the first compute host when the part names none).
    fn parallel_mpmd(&self, step: &LaunchStep) -> Result<LaunchStep> {
        let all = job_hosts(Some(step))?;
        let first_compute = usize::from(all.len() > 1);
        let parts = step.mpmd_parts()?;
        let commands: Vec<String> = parts
            .iter()
            .map(|p| format!("/bin/sh {}", shell_quote(&p.script.display().to_string())))
            .collect();
        let ranks = parts
            .iter()
            .enumerate()
            .map(|(app, p)| match &p.host {
                None => Ok((first_compute, app)),
                Some(h) => all
                    .iter()
                    .position(|a| a == h)
                    .map(|at| (at, app))
                    .ok_or_else(|| {
                        Error::launcher(
                            NAME,
                            format!("host `{h}` is not part of this job ({})", all.join(" ")),
                        )
                    }),
            })
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&str> = commands.iter().map(String::as_str).collect();
        let file = step.cwd.join(format!("{}.erf", step.name));
        let cpus = step.run.cpus_per_task.unwrap_or(1);
        std::fs::write(&file, parse::erf_apps(&refs, &ranks, cpus))
            .map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
        let mut w = step.clone();
        w.exe = "jsrun".into();
        w.args = vec!["--erf_input".into(), file.display().to_string()];
        w.mpmd.clear();
        (w.stdout, w.stderr) = step.launcher_output();
        jsrun_wrapped(&w)
    }

    fn allocation(&self) -> Result<Allocation> {
        let job = var(None, "LSB_JOBID").ok_or_else(outside)?;
        let mut hosts = job_hosts(None)?;
        // The launch node runs no ranks when the job has compute nodes.
        if hosts.len() > 1 {
            hosts.remove(0);
        }
        Ok(Allocation::new(Some(job), hosts))
    }

    fn errors(&self, e: Error) -> Error {
        ours(e)
    }

    fn cancel_limit(&self) -> Duration {
        CANCEL_LIMIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_never_reach_a_job_script() {
        orc_launcher_kit::testing::scripts::refuse_hostile_values(
            &|b: &BatchSettings| {
                allocation_script(b, "db", std::path::Path::new("/w/db.out"), "exec true\n")
            },
            &batch_script,
        );
    }
}
