//! The PBS launcher for [orc](orc_core): PBS Pro, steps with PALS `mpiexec` inside a job.
//!
//! Inside a PBS job (`$PBS_JOBID`, hosts from `$PBS_NODEFILE`) every step runs as
//! `mpiexec -n 1 --hosts <host> <command>`, watched and cancelled as a process on the
//! node that runs orc (PBS has no step ids of its own; the step id is the `mpiexec`
//! process's `<pid>@<start time>`, see [`orc_launcher_kit::process`]). [`parse`] reads `qsub`,
//! `qstat` (table and `-f -F json`) and `$PBS_NODEFILE` output and maps PBS states, tested
//! on captured output.
//!
//! Outside a job a step is submitted as a batch job of its own: `qsub` of a generated
//! script ([`batch_script`]) that runs the step with `mpiexec`; its id is the PBS job id,
//! watched with `qstat -f -F json -x` (a job PBS no longer knows is an error, never
//! "completed") and cancelled with `qdel`.
//!
//! An orchestrator as one batch job (`orc db start --launcher pbs --batch`): the job's
//! script ([`allocation_script`]) runs orc's job agent ([`orc_launcher_kit::agent`]), and the shards
//! are `mpiexec` steps the agent starts inside the job; step ids are
//! `agent:<job>:<id inside the job>`, and `orc db stop` ends the job through the agent
//! (then `qdel`). Not yet: `aprun` on PBS systems.
//!
//! ```
//! use orc_core::Launcher;
//! let l = orc_launcher_pbs::PBSLauncher::new();
//! assert_eq!(l.name(), "pbs");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod parse;

use std::{process::Command, time::Duration};

use orc_core::{Allocation, BatchSettings, Error, LaunchStep, Result, StepStatus};
use orc_launcher_kit::{
    Factory, StaticPlugin, agent, process, tools,
    wlm::{Wlm, WlmLauncher},
};

/// The launcher's name.
pub const NAME: &str = "pbs";

/// Registration of [`PBSLauncher`] with the orc plugin host.
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "PBS Pro: mpiexec (PALS) steps inside a job, qsub jobs outside",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Launcher(|| Box::new(PBSLauncher::new())),
};
orc_launcher_kit::register_plugin!(PLUGIN);

/// How long a cancelled batch job may take to end.
const CANCEL_LIMIT: Duration = Duration::from_secs(60);

/// Launches steps through PBS.
pub type PBSLauncher = WlmLauncher<Pbs>;

/// The id of the PBS job this process runs in.
pub fn current_job() -> Option<String> {
    std::env::var("PBS_JOBID").ok().filter(|v| !v.is_empty())
}

fn outside() -> Error {
    Error::launcher(
        NAME,
        "not inside a PBS job ($PBS_JOBID is unset): start orc inside one (`qsub -I`, or from a job script)",
    )
}

/// Errors from the process layer name this launcher.
fn ours(e: Error) -> Error {
    process::attribute(
        e,
        NAME,
        "mpiexec",
        "run orc inside a PBS job on a system with PALS (module load cray-pals)",
    )
}

fn run(cmd: &str, args: &[&str]) -> Result<std::process::Output> {
    tools::output(
        NAME,
        Command::new(cmd).args(args),
        "run orc on a PBS login node (PBS Pro client commands installed)",
    )
}

/// The `qsub` script that runs `step` as a batch job of its own, with `mpiexec`.
pub fn batch_script(step: &LaunchStep) -> Result<String> {
    let tasks = step.run.tasks.unwrap_or(1);
    let cpus = step.run.cpus_per_task.unwrap_or(1);
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&tools::directives(
        "#PBS",
        [
            ("-N", Some(step.name.clone())),
            ("-o", Some(step.stdout.display().to_string())),
            ("-e", Some(step.stderr.display().to_string())),
            (
                "-l",
                step.run.nodes.map(|n| format!("select={n}:ncpus={cpus}")),
            ),
        ],
    )?);
    s.push_str(&tools::extra_directives("#PBS", &step.run.extra, false)?);
    s.push_str(&step.script_prologue()?);
    s.push_str(&format!(
        "exec mpiexec -n {tasks} {}\n",
        step.command_line()
    ));
    Ok(s)
}

/// The `qsub` script of a job that holds an orchestrator's nodes: it runs the job agent
/// ([`orc_launcher_kit::agent`]), which starts the shards with `mpiexec` inside the job.
pub fn allocation_script(
    batch: &BatchSettings,
    name: &str,
    output: &std::path::Path,
    agent_line: &str,
) -> Result<String> {
    let nodes = batch.nodes.unwrap_or(1).max(1);
    let per_node = batch.tasks_per_node.unwrap_or(1).max(1);
    let walltime = batch
        .walltime_secs
        .map(|t| format!("walltime={:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60));
    let output = output.display().to_string();
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&tools::directives(
        "#PBS",
        [
            ("-N", Some(name.to_string())),
            (
                "-l",
                Some(format!(
                    "select={nodes}:ncpus={per_node}:mpiprocs={per_node}"
                )),
            ),
            ("-l", walltime),
            ("-A", batch.account.clone()),
            ("-q", batch.queue.clone()),
            ("-o", Some(output.clone())),
            ("-e", Some(output)),
        ],
    )?);
    s.push_str(&tools::extra_directives("#PBS", &batch.extra, false)?);
    s.push_str(agent_line);
    Ok(s)
}

/// PBS's commands for a [`WlmLauncher`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Pbs;

impl agent::Scheduler for Pbs {
    fn launcher(&self) -> &str {
        NAME
    }
    fn job_var(&self) -> &'static str {
        "PBS_JOBID"
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
            Command::new("qsub")
                .arg(file)
                .current_dir(cwd)
                .envs(path.map(|p| ("PATH", p))),
            "run orc on a PBS login node, or inside a job",
        )?;
        parse::qsub_job_id(
            &String::from_utf8_lossy(&out.stdout),
            &String::from_utf8_lossy(&out.stderr),
        )
        .map_err(|e| Error::launcher(NAME, format!("qsub refused the job: {e}")))
    }
    fn job_status(&self, id: &str) -> Result<StepStatus> {
        let out = run("qstat", &["-f", "-F", "json", "-x", id])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        let doc = parse::clean_json(&text);
        match doc.as_ref().and_then(|d| parse::qstat_json_status(d, id)) {
            Some((state, exit)) => {
                let mut st = parse::status(&state, exit).ok_or_else(|| {
                    Error::launcher(
                        NAME,
                        format!("job {id} is in state {state}, which orc does not know"),
                    )
                })?;
                if st.status == orc_core::JobStatus::Queued {
                    st.detail = doc.as_ref().and_then(|d| parse::qstat_json_comment(d, id));
                }
                Ok(st)
            }
            None if err.contains("Unknown Job Id") => Err(Error::launcher(
                NAME,
                format!(
                    "PBS does not know job {id} (finished without job history, or not a job id)"
                ),
            )),
            None => Err(Error::launcher(
                NAME,
                format!(
                    "qstat -f -F json -x {id} gave no state for it: {}",
                    if err.trim().is_empty() {
                        text.trim()
                    } else {
                        err.trim()
                    }
                ),
            )),
        }
    }
    fn never_starts(&self, status: &StepStatus) -> Option<String> {
        let comment = status.detail.as_deref()?;
        comment.starts_with("Can Never Run").then(|| {
            format!(
                "PBS says `{comment}`: ask for what the queue has (fewer nodes with --nodes, several shards per node with --shards-per-host, or another --queue)"
            )
        })
    }
    fn kill(&self, id: &str) -> Result<()> {
        let out = run("qdel", &[id])?;
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !err.contains("finished") {
            return Err(Error::launcher(NAME, format!("qdel {id}: {}", err.trim())));
        }
        Ok(())
    }
}

impl Wlm for Pbs {
    fn step_script(&self, step: &LaunchStep) -> Result<String> {
        batch_script(step)
    }

    fn parallel(&self, step: &LaunchStep) -> Result<LaunchStep> {
        let n = step.run.tasks.unwrap_or(1).to_string();
        let mut args = vec!["-n".to_string(), n];
        if !step.run.hosts.is_empty() {
            args.extend(["--hosts".into(), step.run.hosts.join(",")]);
        }
        if let Some(c) = step.run.cpus_per_task {
            args.extend(["--depth".into(), c.to_string()]);
        }
        for (k, v) in &step.run.extra {
            args.push(format!("--{k}"));
            args.extend(v.clone());
        }
        Ok(process::wrap(step, "mpiexec", args))
    }

    fn parallel_mpmd(&self, step: &LaunchStep) -> Result<LaunchStep> {
        process::wrap_mpmd(step, "mpiexec", |part| {
            let mut seg = vec!["-n".to_string(), "1".into()];
            if let Some(h) = &part.host {
                seg.extend(["--hosts".into(), h.clone()]);
            }
            Ok(seg)
        })
    }

    fn allocation(&self) -> Result<Allocation> {
        let job = current_job().ok_or_else(outside)?;
        let file = std::env::var("PBS_NODEFILE").map_err(|_| {
            Error::launcher(
                NAME,
                format!("inside PBS job {job} but $PBS_NODEFILE is unset"),
            )
        })?;
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Error::io(format!("reading $PBS_NODEFILE {file}"), e))?;
        let hosts = parse::nodefile_hosts(&text);
        if hosts.is_empty() {
            return Err(Error::launcher(
                NAME,
                format!("$PBS_NODEFILE {file} lists no hosts"),
            ));
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
