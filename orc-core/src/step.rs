//! Launch steps and the run and batch settings they carry.

use std::{collections::BTreeMap, fmt, path::PathBuf};

use serde::{Deserialize, Serialize};

/// The launcher-specific identity of a launched step (a pid, a Slurm `job.step`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepId(pub String);

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How one step runs: resources and placement. Launchers ignore what they cannot honour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSettings {
    /// Number of nodes.
    pub nodes: Option<u32>,
    /// Number of tasks (ranks).
    pub tasks: Option<u32>,
    /// Tasks per node.
    pub tasks_per_node: Option<u32>,
    /// CPUs per task.
    pub cpus_per_task: Option<u32>,
    /// Hosts to run on.
    pub hosts: Vec<String>,
    /// Extra launcher arguments (`--name value`, or a flag when the value is `None`).
    pub extra: BTreeMap<String, Option<String>>,
    /// The allocation (batch job) to run in; `None` is the one this process runs in.
    #[serde(default)]
    pub allocation: Option<String>,
}

/// How a batch job is requested from a workload manager.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BatchSettings {
    /// Number of nodes.
    pub nodes: Option<u32>,
    /// Tasks (processes) each node must be able to run; schedulers that count slots or
    /// cores (Grid Engine, PBS `mpiprocs`) reserve `nodes * tasks_per_node`. An
    /// orchestrator sets it to its shards per host when unset.
    #[serde(default)]
    pub tasks_per_node: Option<u32>,
    /// Walltime in seconds.
    pub walltime_secs: Option<u64>,
    /// Account or project to charge.
    pub account: Option<String>,
    /// Queue or partition.
    pub queue: Option<String>,
    /// Extra scheduler directives.
    pub extra: BTreeMap<String, Option<String>>,
    /// How long to wait for the job to leave the queue, in seconds; `None` waits forever.
    #[serde(default)]
    pub queue_timeout_secs: Option<u64>,
}

/// One thing to run: a command with its environment, directory, output files and settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LaunchStep {
    /// A name unique within the experiment (`orchestrator_0`).
    pub name: String,
    /// The executable (a path or a name looked up on `PATH`).
    pub exe: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables to add.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Where standard output goes.
    pub stdout: PathBuf,
    /// Where standard error goes.
    pub stderr: PathBuf,
    /// Resources and placement.
    pub run: RunSettings,
    /// Further programs launched together with this one as a single MPMD launch (one step,
    /// one id): each part has its own command, environment, directory, output files and
    /// hosts (`run.hosts`, one task each). Launchers that cannot launch MPMD refuse a step
    /// with parts ([`LaunchStep::refuse_mpmd`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mpmd: Vec<LaunchStep>,
}

/// One program of an MPMD launch, ready for a parallel launcher: a script that enters the
/// part's directory, sets its environment and runs it with its output files, and the host
/// it should run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpmdPart {
    /// `/bin/sh` runs this script as the part.
    pub script: PathBuf,
    /// The part's host, when placed.
    pub host: Option<String>,
}

impl LaunchStep {
    /// A step that runs `exe` in `cwd`, writing `<cwd>/<name>.out` and `<name>.err`.
    pub fn new(name: impl Into<String>, exe: impl Into<PathBuf>, cwd: impl Into<PathBuf>) -> Self {
        let name = name.into();
        let cwd = cwd.into();
        Self {
            stdout: cwd.join(format!("{name}.out")),
            stderr: cwd.join(format!("{name}.err")),
            name,
            exe: exe.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd,
            run: RunSettings::default(),
            mpmd: Vec::new(),
        }
    }

    /// The step and its MPMD parts, in rank order (parts have no parts of their own).
    pub fn parts(&self) -> impl Iterator<Item = &LaunchStep> {
        std::iter::once(self).chain(self.mpmd.iter())
    }

    /// An error for a launcher that cannot launch MPMD steps, when this step has parts.
    pub fn refuse_mpmd(&self, launcher: &str) -> crate::Result<()> {
        if self.mpmd.is_empty() {
            return Ok(());
        }
        Err(crate::Error::launcher(
            launcher,
            format!(
                "step {} has {} MPMD parts, and this launcher starts one program per step: \
                 launch the parts as steps of their own",
                self.name,
                self.mpmd.len() + 1
            ),
        ))
    }

    /// Write one script per part (`<cwd>/<part>.mpmd.sh`, see [`MpmdPart`]) for a parallel
    /// launcher to run with `/bin/sh`, rank `i` running part `i`.
    pub fn mpmd_parts(&self) -> crate::Result<Vec<MpmdPart>> {
        self.parts()
            .map(|p| {
                std::fs::create_dir_all(&p.cwd)
                    .map_err(|e| crate::Error::io(format!("creating {}", p.cwd.display()), e))?;
                let script = p.cwd.join(format!("{}.mpmd.sh", p.name));
                let body = format!(
                    "#!/bin/sh\n{}exec {} >{} 2>{}\n",
                    p.script_prologue()?,
                    p.command_line(),
                    shell_quote(&p.stdout.display().to_string()),
                    shell_quote(&p.stderr.display().to_string()),
                );
                std::fs::write(&script, body)
                    .map_err(|e| crate::Error::io(format!("writing {}", script.display()), e))?;
                Ok(MpmdPart {
                    script,
                    host: p.run.hosts.first().cloned(),
                })
            })
            .collect()
    }

    /// Output files for the parallel launcher itself when it runs the parts of an MPMD
    /// step (each part writes its own): `<cwd>/<name>.launch.out` and `.launch.err`.
    pub fn launcher_output(&self) -> (PathBuf, PathBuf) {
        (
            self.cwd.join(format!("{}.launch.out", self.name)),
            self.cwd.join(format!("{}.launch.err", self.name)),
        )
    }

    /// Add arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Add an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Replace the run settings.
    pub fn run_settings(mut self, run: RunSettings) -> Self {
        self.run = run;
        self
    }

    /// The job-script lines that enter the step's directory and export its environment:
    /// `cd <cwd> || exit 1`, then `export K=V` per variable (shell-quoted).
    pub fn script_prologue(&self) -> crate::Result<String> {
        Ok(format!(
            "cd {} || exit 1\n{}",
            shell_quote(&self.cwd.display().to_string()),
            self.env_exports()?
        ))
    }

    /// `export NAME='value'` lines for the step's environment, values quoted for the
    /// shell. A name that is not a shell variable name (letters, digits, `_`, not starting
    /// with a digit) is refused: written into a script it could run commands.
    pub fn env_exports(&self) -> crate::Result<String> {
        let mut s = String::new();
        for (k, v) in &self.env {
            if !is_env_name(k) {
                return Err(crate::Error::config(format!(
                    "step {}: {k:?} is not an environment variable name (letters, digits and _, not starting with a digit)",
                    self.name
                )));
            }
            s.push_str(&format!("export {k}={}\n", shell_quote(v)));
        }
        Ok(s)
    }

    /// The command line, shell-quoted, for messages.
    pub fn command_line(&self) -> String {
        std::iter::once(self.exe.display().to_string())
            .chain(self.args.iter().cloned())
            .map(|a| shell_quote(&a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The `orc` binary to run on other nodes (job agents, shard starters): `$ORC_BIN`, else
/// this process when it is `orc`, else `orc` from `PATH`.
pub fn orc_exe() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("ORC_BIN").filter(|p| !p.is_empty()) {
        return p.into();
    }
    std::env::current_exe()
        .ok()
        .filter(|p| p.file_name().is_some_and(|n| n == "orc"))
        .unwrap_or_else(|| "orc".into())
}

/// Whether `name` can be an environment variable in a shell script (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_env_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Quote `s` for a POSIX shell when it needs quoting.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// An allocation the launcher runs inside, or the machine it runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Allocation {
    /// The scheduler's job id of the allocation, `None` for the local machine.
    pub id: Option<String>,
    /// The hosts available, in the scheduler's order.
    pub hosts: Vec<String>,
}

impl Allocation {
    /// The allocation with scheduler id `id` (`None`: this machine) holding `hosts`.
    pub fn new(id: Option<String>, hosts: Vec<String>) -> Self {
        Self { id, hosts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_quoted() {
        let s = LaunchStep::new("a", "/bin/echo", "/tmp").args(["x y", "it's", "plain"]);
        assert_eq!(s.command_line(), r#"/bin/echo 'x y' 'it'\''s' plain"#);
        assert_eq!(s.stdout, PathBuf::from("/tmp/a.out"));
        let mut m = LaunchStep::new("m", "x", "/tmp");
        m.mpmd = vec![
            LaunchStep::new("m1", "y", "/tmp"),
            LaunchStep::new("m2", "z", "/tmp"),
        ];
        let names: Vec<&str> = m.parts().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["m", "m1", "m2"]);
        assert!(
            m.refuse_mpmd("local")
                .unwrap_err()
                .to_string()
                .contains("3 MPMD parts")
        );
        let s = LaunchStep::new("a", "x", "/tmp/w d").env("K", "it's");
        assert_eq!(
            s.script_prologue().unwrap(),
            "cd '/tmp/w d' || exit 1\nexport K='it'\\''s'\n"
        );
        // Values are quoted whatever they hold; names must be names.
        let s = LaunchStep::new("a", "x", "/w").env("K", "$(id)\nrm -rf ~");
        assert_eq!(s.env_exports().unwrap(), "export K='$(id)\nrm -rf ~'\n");
        for bad in ["A;B", "1A", "A B", "A=B", "", "A\nB", "$(id)"] {
            let s = LaunchStep::new("a", "x", "/w").env(bad, "v");
            assert!(s.script_prologue().is_err(), "{bad:?}");
        }
        assert!(is_env_name("_A1") && !is_env_name("a-b"));
    }
}
