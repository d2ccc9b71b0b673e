//! The scheduler simulator: stand-ins for the commands of PBS Pro (`qsub`, `qstat`,
//! `qdel`, PALS `mpiexec`), LSF with JSM (`bsub`, `bjobs`, `bkill`, `jsrun`, `jslist`,
//! `jskill`) and Cobalt (`qsub`, `qstat`, `qdel`, `cqsub`, ALPS `aprun`). They really run
//! what they are given as processes on this machine and answer in the real tools' formats
//! and error texts (see `sim/README.md` in this crate). They need `bash` and `python3`.
//!
//! [`Simulator::install`] writes them into a directory; put [`Simulator::bin`] first on
//! the `PATH` of the launcher under test (and [`Simulator::cobalt_bin`] before it for
//! Cobalt, whose `qsub` differs from PBS's). Batch jobs keep their state under
//! `$ORC_SIM_SPOOL`.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let sim = orc_launcher_kit::testing::sim::Simulator::install(dir.path())?;
//! assert!(sim.bin().join("qsub").is_file());
//! let path = sim.path_for(false);
//! assert!(path.starts_with(&sim.bin().display().to_string()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use orc_core::{Error, Result};

/// Every file of the simulator: path in the tree, contents, whether it is a program.
const FILES: &[(&str, &str, bool)] = &[
    ("bin/aprun", include_str!("../../sim/bin/aprun"), true),
    ("bin/bjobs", include_str!("../../sim/bin/bjobs"), true),
    ("bin/bkill", include_str!("../../sim/bin/bkill"), true),
    ("bin/bsub", include_str!("../../sim/bin/bsub"), true),
    ("bin/jskill", include_str!("../../sim/bin/jskill"), true),
    ("bin/jslist", include_str!("../../sim/bin/jslist"), true),
    ("bin/jsrun", include_str!("../../sim/bin/jsrun"), true),
    ("bin/mpiexec", include_str!("../../sim/bin/mpiexec"), true),
    ("bin/qdel", include_str!("../../sim/bin/qdel"), true),
    ("bin/qstat", include_str!("../../sim/bin/qstat"), true),
    ("bin/qsub", include_str!("../../sim/bin/qsub"), true),
    (
        "cobalt/bin/cqsub",
        include_str!("../../sim/cobalt/bin/cqsub"),
        true,
    ),
    (
        "cobalt/bin/qdel",
        include_str!("../../sim/cobalt/bin/qdel"),
        true,
    ),
    (
        "cobalt/bin/qstat",
        include_str!("../../sim/cobalt/bin/qstat"),
        true,
    ),
    (
        "cobalt/bin/qsub",
        include_str!("../../sim/cobalt/bin/qsub"),
        true,
    ),
    ("lib/jsm.sh", include_str!("../../sim/lib/jsm.sh"), false),
    (
        "lib/nodes.sh",
        include_str!("../../sim/lib/nodes.sh"),
        false,
    ),
    (
        "lib/ranks.sh",
        include_str!("../../sim/lib/ranks.sh"),
        false,
    ),
    (
        "lib/sched_sim.py",
        include_str!("../../sim/lib/sched_sim.py"),
        false,
    ),
];

/// An installed simulator.
#[derive(Debug, Clone)]
pub struct Simulator {
    root: PathBuf,
}

impl Simulator {
    /// Write the simulator into `root` (created if needed; files already there with the
    /// same contents are left alone, so several tests may share one directory).
    pub fn install(root: &Path) -> Result<Self> {
        for (rel, text, program) in FILES {
            let path = root.join(rel);
            if std::fs::read(&path).is_ok_and(|b| b == text.as_bytes()) {
                continue;
            }
            let io = |what: &str| {
                let what = format!("{what} {}", path.display());
                move |e| Error::io(what, e)
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io("creating the directory of"))?;
            }
            // Written under another name and renamed: a test running the old file while
            // another installs never sees half a script.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, text).map_err(io("writing"))?;
            let mode = if *program { 0o755 } else { 0o644 };
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
                .map_err(io("setting the mode of"))?;
            std::fs::rename(&tmp, &path).map_err(io("installing"))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// The PBS, LSF and parallel-launcher commands (`aprun` included).
    pub fn bin(&self) -> PathBuf {
        self.root.join("bin")
    }

    /// The Cobalt batch commands, to put before [`Simulator::bin`].
    pub fn cobalt_bin(&self) -> PathBuf {
        self.root.join("cobalt/bin")
    }

    /// A `PATH` with the simulator first (Cobalt's commands too when `cobalt`), then this
    /// process's `PATH`.
    pub fn path_for(&self, cobalt: bool) -> String {
        let mut dirs = Vec::new();
        if cobalt {
            dirs.push(self.cobalt_bin().display().to_string());
        }
        dirs.push(self.bin().display().to_string());
        if let Ok(p) = std::env::var("PATH") {
            dirs.push(p);
        }
        dirs.join(":")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_every_file_and_reinstalls_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let sim = Simulator::install(dir.path()).unwrap();
        for (rel, text, program) in FILES {
            let p = dir.path().join(rel);
            assert_eq!(std::fs::read_to_string(&p).unwrap(), *text, "{rel}");
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, if *program { 0o755 } else { 0o644 }, "{rel}");
        }
        std::fs::write(sim.bin().join("qsub"), "broken").unwrap();
        Simulator::install(dir.path()).unwrap();
        assert!(
            std::fs::read_to_string(sim.bin().join("qsub"))
                .unwrap()
                .contains("sched_sim")
        );
    }
}
