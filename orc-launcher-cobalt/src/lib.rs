//! The Cobalt launcher for [orc](orc_core): steps with `aprun` inside a Cobalt job.
//!
//! Inside a job (`$COBALT_JOBID`, nodes from `$COBALT_PARTNAME`, named `nidNNNNN`) every
//! step runs as `aprun -n <tasks> -N 1 [-L <nid>] [-d <cpus>] <command>`, watched and
//! cancelled as a process on the node that runs orc (Cobalt has no step ids; the step id
//! is the `aprun` process's `<pid>@<start time>`, see [`orc_launcher_kit::process`]). [`parse`]
//! reads `qsub` and `qstat` output and maps Cobalt's states, tested on captured output.
//!
//! Outside a job a step is a batch job of its own: `qsub` of a generated script
//! ([`batch_script`]) that runs it with `aprun`, watched with `qstat --header JobId:State`
//! and cancelled with `qdel`. Cobalt's `qstat` forgets a job the moment it ends, so the
//! script leaves the exit code in `<state dir>/cobalt-jobs/<job>.exit` (also when it is
//! killed with TERM); a job orc never submitted is an error, never "completed".
//!
//! An orchestrator as one batch job (`--batch`): the job's script
//! ([`allocation_script`]) runs orc's job agent ([`orc_launcher_kit::agent`]), which starts the
//! shards with `aprun` inside the job.
//!
//! ```
//! use orc_core::Launcher;
//! let l = orc_launcher_cobalt::CobaltLauncher::new();
//! assert_eq!(l.name(), "cobalt");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod parse;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use orc_core::{
    Allocation, BatchSettings, Error, JobStatus, LaunchStep, Result, StepStatus, step::shell_quote,
};
use orc_launcher_kit::{
    Factory, StaticPlugin, agent, process, tools,
    wlm::{Wlm, WlmLauncher},
};

/// The launcher's name.
pub const NAME: &str = "cobalt";

/// Registration of [`CobaltLauncher`] with the orc plugin host.
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "Cobalt: aprun steps inside a job, qsub jobs outside, --batch",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Launcher(|| Box::new(CobaltLauncher::new())),
};
orc_launcher_kit::register_plugin!(PLUGIN);

/// Launches steps through Cobalt.
pub type CobaltLauncher = WlmLauncher<Cobalt>;

/// The id of the Cobalt job this process runs in.
pub fn current_job() -> Option<String> {
    std::env::var("COBALT_JOBID").ok().filter(|v| !v.is_empty())
}

fn outside() -> Error {
    Error::launcher(
        NAME,
        "not inside a Cobalt job ($COBALT_JOBID is unset): start orc inside one (`qsub -I`, or from a job script)",
    )
}

/// Errors from the process layer name this launcher.
fn ours(e: Error) -> Error {
    process::attribute(
        e,
        NAME,
        "aprun",
        "run orc inside a Cobalt job on a Cray system (aprun comes with ALPS)",
    )
}

/// The node id `aprun -L` takes for host `h` (`nid03824` → `3824`).
fn node_id(h: &str) -> Result<String> {
    parse::nid(h).map(|n| n.to_string()).ok_or_else(|| {
        Error::launcher(
            NAME,
            format!("cannot place a step on `{h}`: aprun takes Cray node names (nidNNNNN)"),
        )
    })
}

/// How long a deleted job may take to end.
const CANCEL_LIMIT: Duration = Duration::from_secs(60);
/// The hint for a Cobalt client command missing from `PATH`.
const HINT: &str = "run orc on a Cobalt login node (qsub, qstat, qdel on PATH), or inside a job";

fn run(cmd: &str, args: &[&str]) -> Result<std::process::Output> {
    tools::output(NAME, Command::new(cmd).args(args), HINT)
}

/// Where batch jobs leave their exit codes (`<job>.exit`) and orc marks the jobs it
/// submitted (`<job>.submitted`), under the state directory `state_dir`.
pub fn records(state_dir: &Path) -> PathBuf {
    state_dir.join("cobalt-jobs")
}

/// The `qsub` script that runs `step` as a batch job of its own with `aprun`, leaving its
/// exit code in `records` (see [`records`]).
pub fn batch_script(step: &LaunchStep, records: &Path) -> Result<String> {
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&tools::directives(
        "#COBALT",
        [
            ("--jobname", step.name.clone()),
            ("-o", step.stdout.display().to_string()),
            ("-e", step.stderr.display().to_string()),
            ("--cwd", step.cwd.display().to_string()),
            ("-n", step.run.nodes.unwrap_or(1).max(1).to_string()),
        ]
        .map(|(k, v)| (k, Some(v))),
    )?);
    s.push_str(&tools::extra_directives("#COBALT", &step.run.extra, true)?);
    s.push_str(&format!(
        "record={}/\"$COBALT_JOBID.exit\"\n",
        shell_quote(&records.display().to_string())
    ));
    s.push_str("trap 'echo 143 > \"$record\"; exit 143' TERM\n");
    s.push_str(&format!(
        "cd {} || {{ echo 1 > \"$record\"; exit 1; }}\n",
        shell_quote(&step.cwd.display().to_string())
    ));
    s.push_str(&step.env_exports()?);
    s.push_str(&format!(
        "aprun -n {} -N {} {} &\nwait $!\nrc=$?\necho $rc > \"$record\"\nexit $rc\n",
        step.run.tasks.unwrap_or(1),
        step.run.tasks_per_node.unwrap_or(1),
        step.command_line()
    ));
    Ok(s)
}

/// The `qsub` script of a job that holds an orchestrator's nodes: it runs the job agent
/// ([`orc_launcher_kit::agent`]), which starts the shards with `aprun` inside the job.
pub fn allocation_script(
    batch: &BatchSettings,
    name: &str,
    output: &Path,
    agent_line: &str,
) -> Result<String> {
    let output = output.display().to_string();
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&tools::directives(
        "#COBALT",
        [
            ("--jobname", Some(name.to_string())),
            ("-n", Some(batch.nodes.unwrap_or(1).max(1).to_string())),
            (
                "-t",
                batch.walltime_secs.map(|t| t.div_ceil(60).to_string()),
            ),
            ("-q", batch.queue.clone()),
            ("-A", batch.account.clone()),
            ("-o", Some(output.clone())),
            ("-e", Some(output)),
        ],
    )?);
    s.push_str(&tools::extra_directives("#COBALT", &batch.extra, true)?);
    s.push_str(agent_line);
    Ok(s)
}

/// Cobalt's commands for a [`WlmLauncher`].
#[derive(Debug, Default)]
pub struct Cobalt {
    /// The state directory given by `use_state_dir`.
    state_dir: std::sync::Mutex<Option<PathBuf>>,
}

impl Cobalt {
    fn records(&self) -> PathBuf {
        let given = self
            .state_dir
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        records(&given.unwrap_or_else(orc_core::settings::default_state_dir))
    }
}

impl agent::Scheduler for Cobalt {
    fn launcher(&self) -> &str {
        NAME
    }
    fn job_var(&self) -> &'static str {
        "COBALT_JOBID"
    }
    fn script(
        &self,
        batch: &BatchSettings,
        name: &str,
        output: &Path,
        agent_line: &str,
    ) -> Result<String> {
        allocation_script(batch, name, output, agent_line)
    }
    fn submit(&self, file: &Path, cwd: &Path, path: Option<&str>) -> Result<String> {
        let dir = &self.records();
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let out = tools::output(
            NAME,
            Command::new("qsub")
                .arg(file)
                .current_dir(cwd)
                .envs(path.map(|p| ("PATH", p))),
            HINT,
        )?;
        let id = parse::qsub_job_id(&String::from_utf8_lossy(&out.stdout))
            .filter(|_| out.status.success())
            .ok_or_else(|| {
                let err = String::from_utf8_lossy(&out.stderr);
                let said = if err.trim().is_empty() {
                    String::from_utf8_lossy(&out.stdout).trim().to_string()
                } else {
                    err.trim().to_string()
                };
                Error::launcher(NAME, format!("qsub refused the job: {said}"))
            })?;
        let mark = dir.join(format!("{id}.submitted"));
        std::fs::write(&mark, b"")
            .map_err(|e| Error::io(format!("writing {}", mark.display()), e))?;
        Ok(id)
    }
    fn job_status(&self, id: &str) -> Result<StepStatus> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::launcher(
                NAME,
                format!("{id:?} is not a Cobalt job id"),
            ));
        }
        let out = run("qstat", &["--header", "JobId:State", id])?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !(text.trim().is_empty() || text.contains("JobId")) {
            return Err(Error::launcher(
                NAME,
                format!(
                    "qstat --header JobId:State {id} failed or printed something else: {}",
                    [text.trim(), String::from_utf8_lossy(&out.stderr).trim()]
                        .join(" ")
                        .trim()
                ),
            ));
        }
        if let Some(state) = parse::qstat_state(&text, id) {
            return parse::status(&state).ok_or_else(|| {
                Error::launcher(
                    NAME,
                    format!("job {id} is in state {state}, which orc does not know"),
                )
            });
        }
        let dir = self.records();
        if let Ok(t) = std::fs::read_to_string(dir.join(format!("{id}.exit"))) {
            let code: i32 = t.trim().parse().map_err(|_| {
                Error::launcher(
                    NAME,
                    format!("job {id} left an exit record orc cannot read: {t:?}"),
                )
            })?;
            let mut s = StepStatus::new(if code == 0 {
                JobStatus::Completed
            } else {
                JobStatus::Failed
            });
            s.exit_code = Some(code);
            s.native_state = Some("done".into());
            return Ok(s);
        }
        if dir.join(format!("{id}.submitted")).exists() {
            let mut s = StepStatus::new(JobStatus::Failed);
            s.native_state = Some("done".into());
            s.detail = Some(
                "ended without an exit record (killed, out of walltime, or its node failed)".into(),
            );
            return Ok(s);
        }
        Err(Error::launcher(
            NAME,
            format!(
                "Cobalt does not list job {id}, and orc did not submit it (Cobalt keeps no history \
                 of ended jobs)"
            ),
        ))
    }
    fn kill(&self, id: &str) -> Result<()> {
        let out = run("qdel", &[id])?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::launcher(
                NAME,
                format!("qdel {id}: {}", String::from_utf8_lossy(&out.stderr).trim()),
            ))
        }
    }
    fn use_state_dir(&self, dir: &Path) {
        *self.state_dir.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir.to_path_buf());
    }
}

impl Wlm for Cobalt {
    fn step_script(&self, step: &LaunchStep) -> Result<String> {
        batch_script(step, &self.records())
    }

    fn parallel(&self, step: &LaunchStep) -> Result<LaunchStep> {
        let tasks = step.run.tasks.unwrap_or(1).to_string();
        let per_node = step.run.tasks_per_node.unwrap_or(1).to_string();
        let mut args = vec!["-n".to_string(), tasks, "-N".into(), per_node];
        if !step.run.hosts.is_empty() {
            let nids = step
                .run
                .hosts
                .iter()
                .map(|h| node_id(h))
                .collect::<Result<Vec<_>>>()?;
            args.extend(["-L".into(), nids.join(",")]);
        }
        if let Some(c) = step.run.cpus_per_task {
            args.extend(["-d".into(), c.to_string()]);
        }
        for (k, v) in &step.run.extra {
            args.push(if k.len() == 1 {
                format!("-{k}")
            } else {
                format!("--{k}")
            });
            args.extend(v.clone());
        }
        Ok(process::wrap(step, "aprun", args))
    }

    fn parallel_mpmd(&self, step: &LaunchStep) -> Result<LaunchStep> {
        process::wrap_mpmd(step, "aprun", |part| {
            let mut seg = vec!["-n".to_string(), "1".into(), "-N".into(), "1".into()];
            if let Some(h) = &part.host {
                seg.extend(["-L".into(), node_id(h)?]);
            }
            Ok(seg)
        })
    }

    fn allocation(&self) -> Result<Allocation> {
        let job = current_job().ok_or_else(outside)?;
        let part = std::env::var("COBALT_PARTNAME").map_err(|_| {
            Error::launcher(
                NAME,
                format!("inside Cobalt job {job} but $COBALT_PARTNAME is unset"),
            )
        })?;
        let hosts = parse::partname_hosts(&part).ok_or_else(|| {
            Error::launcher(
                NAME,
                format!("$COBALT_PARTNAME `{part}` is not a node list like 3824-3827,4000"),
            )
        })?;
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
            &|b: &BatchSettings| allocation_script(b, "db", Path::new("/w/db.out"), "exec true\n"),
            &|s: &LaunchStep| batch_script(s, Path::new("/w/records")),
        );
    }
}
