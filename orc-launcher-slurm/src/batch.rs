//! Batch jobs: the `sbatch` script that holds an allocation for an orchestrator's shards,
//! and the one that runs a single step as a job of its own.

use orc_core::{BatchSettings, LaunchStep, Result};
use orc_launcher_kit::tools::{directive_key, directive_value};

/// `#SBATCH --<k>[=<v>]`, with the key and value checked for a script line.
fn directive(s: &mut String, k: &str, v: Option<&str>) -> Result<()> {
    s.push_str("#SBATCH --");
    s.push_str(directive_key(k)?);
    if let Some(v) = v {
        s.push('=');
        s.push_str(directive_value(v)?);
    }
    s.push('\n');
    Ok(())
}

/// The batch script that runs `step` as a job of its own: its resources as `#SBATCH`
/// directives, its environment exported, and its command run directly (with `srun` when it
/// asks for several tasks or nodes). Values that cannot go into a script safely are
/// refused.
pub fn step_script(step: &LaunchStep) -> Result<String> {
    let mut s = String::from("#!/bin/bash\n");
    let num = |n: Option<u32>| n.map(|n| n.to_string());
    let hosts = (!step.run.hosts.is_empty()).then(|| step.run.hosts.join(","));
    for (k, v) in [
        ("job-name", Some(step.name.clone())),
        ("output", Some(step.stdout.display().to_string())),
        ("error", Some(step.stderr.display().to_string())),
        ("chdir", Some(step.cwd.display().to_string())),
        ("nodes", num(step.run.nodes)),
        ("ntasks", num(step.run.tasks)),
        ("ntasks-per-node", num(step.run.tasks_per_node)),
        ("cpus-per-task", num(step.run.cpus_per_task)),
        ("nodelist", hosts),
    ] {
        if let Some(v) = v {
            directive(&mut s, k, Some(&v))?;
        }
    }
    for (k, v) in &step.run.extra {
        directive(&mut s, k, v.as_deref())?;
    }
    s.push_str(&step.env_exports()?);
    let parallel = step.run.tasks.is_some_and(|t| t > 1) || step.run.nodes.is_some_and(|n| n > 1);
    s.push_str(if parallel { "exec srun " } else { "exec " });
    s.push_str(&step.command_line());
    s.push('\n');
    Ok(s)
}

/// Slurm's `--time` form (`D-HH:MM:SS`) of a walltime in seconds.
pub fn walltime(secs: u64) -> String {
    let (d, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// The batch script for job `name` with `nodes` nodes. The job itself only waits: every
/// shard joins it as a step (`srun --jobid`), so the shards get the hosts Slurm gave and
/// `scancel` of the job ends them all.
pub fn script(batch: &BatchSettings, name: &str, nodes: u32) -> Result<String> {
    let mut s = String::from("#!/bin/bash\n");
    directive(&mut s, "job-name", Some(name))?;
    directive(&mut s, "nodes", Some(&nodes.to_string()))?;
    directive(&mut s, "output", Some("/dev/null"))?;
    // A database job that lost a node must end (and say so), not start again later on
    // other nodes with an empty database while clients still hold the old addresses.
    directive(&mut s, "no-requeue", None)?;
    // Nor may a lost node end the job: the shards on the other nodes keep serving (their
    // replicas take the lost shards over), and `orc db stop` cancels the job.
    directive(&mut s, "no-kill", None)?;
    if let Some(t) = batch.walltime_secs {
        directive(&mut s, "time", Some(&walltime(t)))?;
    }
    if let Some(a) = &batch.account {
        directive(&mut s, "account", Some(a))?;
    }
    if let Some(q) = &batch.queue {
        directive(&mut s, "partition", Some(q))?;
    }
    for (k, v) in &batch.extra {
        directive(&mut s, k, v.as_deref())?;
    }
    s.push_str("# Held by orc: the database shards run as steps of this job.\n");
    s.push_str("exec sleep infinity\n");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_scripts() {
        let mut step = LaunchStep::new("app", "/bin/echo", "/work")
            .args(["it's", "two words"])
            .env("X", "a b");
        let s = step_script(&step).unwrap();
        for line in [
            "#SBATCH --job-name=app",
            "#SBATCH --output=/work/app.out",
            "#SBATCH --chdir=/work",
            "export X='a b'",
            r"exec /bin/echo 'it'\''s' 'two words'",
        ] {
            assert!(s.lines().any(|l| l == line), "{line} missing from\n{s}");
        }
        step.run.tasks = Some(4);
        assert!(
            step_script(&step)
                .unwrap()
                .contains("\nexec srun /bin/echo")
        );
    }

    #[test]
    fn walltimes() {
        assert_eq!(walltime(59), "00:00:59");
        assert_eq!(walltime(3600 + 120 + 3), "01:02:03");
        assert_eq!(walltime(2 * 86_400 + 5), "2-00:00:05");
    }

    #[test]
    fn script_has_every_directive() {
        let mut b = BatchSettings::default();
        b.walltime_secs = Some(600);
        b.account = Some("proj".into());
        b.queue = Some("debug".into());
        b.extra.insert("exclusive".into(), None);
        b.extra.insert("constraint".into(), Some("gpu".into()));
        let s = script(&b, "orc-db", 3).unwrap();
        for line in [
            "#SBATCH --job-name=orc-db",
            "#SBATCH --nodes=3",
            "#SBATCH --time=00:10:00",
            "#SBATCH --account=proj",
            "#SBATCH --partition=debug",
            "#SBATCH --exclusive",
            "#SBATCH --constraint=gpu",
            "#SBATCH --no-requeue",
            "#SBATCH --no-kill",
        ] {
            assert!(s.lines().any(|l| l == line), "{line} missing from\n{s}");
        }
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(!s.contains("--account=\n"));
    }

    #[test]
    fn hostile_values_never_reach_a_script() {
        orc_launcher_kit::testing::scripts::refuse_hostile_values(
            &|b: &BatchSettings| script(b, "db", 1),
            &step_script,
        );
        // A directory with a space cannot be a directive: a clear error, not a broken job.
        let e = step_script(&LaunchStep::new("app", "/bin/true", "/my work"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot go into a job-script directive"), "{e}");
    }
}
