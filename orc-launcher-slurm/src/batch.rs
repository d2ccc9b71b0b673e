//! Batch jobs: the `sbatch` script that holds an allocation for an orchestrator's shards.

use orc_core::BatchSettings;

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
