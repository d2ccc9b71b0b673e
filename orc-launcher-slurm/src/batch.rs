//! Batch jobs: the `sbatch` script that holds an allocation for an orchestrator's shards,
//! and the one that runs a single step as a job of its own.

use orc_core::{BatchSettings, LaunchStep};

/// A word for a bash script, single-quoted.
fn quote(w: &str) -> String {
    format!("'{}'", w.replace('\'', r"'\''"))
}

/// The batch script that runs `step` as a job of its own: its resources as `#SBATCH`
/// directives, its environment exported, and its command run directly (with `srun` when it
/// asks for several tasks or nodes).
pub fn step_script(step: &LaunchStep) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let mut directive = |k: &str, v: &str| s.push_str(&format!("#SBATCH --{k}={v}\n"));
    directive("job-name", &step.name);
    directive("output", &step.stdout.display().to_string());
    directive("error", &step.stderr.display().to_string());
    directive("chdir", &step.cwd.display().to_string());
    if let Some(n) = step.run.nodes {
        directive("nodes", &n.to_string());
    }
    if let Some(n) = step.run.tasks {
        directive("ntasks", &n.to_string());
    }
    if let Some(n) = step.run.tasks_per_node {
        directive("ntasks-per-node", &n.to_string());
    }
    if let Some(n) = step.run.cpus_per_task {
        directive("cpus-per-task", &n.to_string());
    }
    if !step.run.hosts.is_empty() {
        directive("nodelist", &step.run.hosts.join(","));
    }
    for (k, v) in &step.run.extra {
        match v {
            Some(v) => s.push_str(&format!("#SBATCH --{k}={v}\n")),
            None => s.push_str(&format!("#SBATCH --{k}\n")),
        }
    }
    for (k, v) in &step.env {
        s.push_str(&format!("export {k}={}\n", quote(v)));
    }
    let parallel = step.run.tasks.is_some_and(|t| t > 1) || step.run.nodes.is_some_and(|n| n > 1);
    s.push_str(if parallel { "exec srun " } else { "exec " });
    s.push_str(&quote(&step.exe.display().to_string()));
    for a in &step.args {
        s.push(' ');
        s.push_str(&quote(a));
    }
    s.push('\n');
    s
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
pub fn script(batch: &BatchSettings, name: &str, nodes: u32) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let mut directive = |k: &str, v: Option<&str>| {
        s.push_str("#SBATCH --");
        s.push_str(k);
        if let Some(v) = v {
            s.push('=');
            s.push_str(v);
        }
        s.push('\n');
    };
    directive("job-name", Some(name));
    directive("nodes", Some(&nodes.to_string()));
    directive("output", Some("/dev/null"));
    if let Some(t) = batch.walltime_secs {
        directive("time", Some(&walltime(t)));
    }
    if let Some(a) = &batch.account {
        directive("account", Some(a));
    }
    if let Some(q) = &batch.queue {
        directive("partition", Some(q));
    }
    for (k, v) in &batch.extra {
        directive(k, v.as_deref());
    }
    s.push_str("# Held by orc: the database shards run as steps of this job.\n");
    s.push_str("exec sleep infinity\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_scripts() {
        let mut step = LaunchStep::new("app", "/bin/echo", "/work")
            .args(["it's", "two words"])
            .env("X", "a b");
        let s = step_script(&step);
        for line in [
            "#SBATCH --job-name=app",
            "#SBATCH --output=/work/app.out",
            "#SBATCH --chdir=/work",
            "export X='a b'",
            r"exec '/bin/echo' 'it'\''s' 'two words'",
        ] {
            assert!(s.lines().any(|l| l == line), "{line} missing from\n{s}");
        }
        step.run.tasks = Some(4);
        assert!(step_script(&step).contains("\nexec srun '/bin/echo'"));
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
        let s = script(&b, "orc-db", 3);
        for line in [
            "#SBATCH --job-name=orc-db",
            "#SBATCH --nodes=3",
            "#SBATCH --time=00:10:00",
            "#SBATCH --account=proj",
            "#SBATCH --partition=debug",
            "#SBATCH --exclusive",
            "#SBATCH --constraint=gpu",
        ] {
            assert!(s.lines().any(|l| l == line), "{line} missing from\n{s}");
        }
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(!s.contains("--account=\n"));
    }
}
