//! The front of a colocated run: launch the application's ranks through a launcher, each
//! wrapped by `orc colocated-rank`, pass their output on while they run, and return their
//! exit code.

use std::{
    io::Read,
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use orc_core::{Error, JobStatus, LaunchStep, Result, RunSettings, StepId, launcher::AUTO};
use orc_host::PluginHost;

use super::ColocatedSpec;

/// Output of the ranks, as it arrives.
#[derive(Debug)]
pub enum Output<'a> {
    /// From their standard output.
    Stdout(&'a [u8]),
    /// From their standard error.
    Stderr(&'a [u8]),
}

/// What [`run_app`] runs.
#[derive(Debug)]
#[non_exhaustive]
pub struct AppRun {
    /// The launcher's name (`auto`: the allocation this process runs in, else local).
    pub launcher: String,
    /// orc's state directory (a filesystem every node shares): the run's directory, spec
    /// and output files go under `runs/<run id>`.
    pub state_dir: PathBuf,
    /// The databases' spec.
    pub spec: ColocatedSpec,
    /// Ranks and nodes (`tasks`, `nodes`, `tasks_per_node`, extra launcher arguments).
    pub run: RunSettings,
    /// The application and its arguments.
    pub command: Vec<String>,
    /// The `orc` executable every rank runs (`orc colocated-rank`).
    pub orc_exe: PathBuf,
    /// The application's working directory.
    pub cwd: PathBuf,
}

impl AppRun {
    /// A run of `command` with `spec`, in the current directory, by the launcher named.
    pub fn new(
        launcher: &str,
        state_dir: PathBuf,
        spec: ColocatedSpec,
        command: Vec<String>,
        orc_exe: PathBuf,
    ) -> Self {
        Self {
            launcher: launcher.into(),
            state_dir,
            spec,
            run: RunSettings::default(),
            command,
            orc_exe,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        }
    }
}

/// A file being followed: opened once it exists, then read from where it was left.
struct Tail {
    path: PathBuf,
    file: Option<std::fs::File>,
    err: bool,
}

impl Tail {
    fn new(path: &std::path::Path, err: bool) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
            err,
        }
    }

    /// Pass on what was added since the last call.
    fn pump(&mut self, out: &mut dyn FnMut(Output)) {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(f) = &mut self.file else {
            return;
        };
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            out(if self.err {
                Output::Stderr(&buf[..n])
            } else {
                Output::Stdout(&buf[..n])
            });
        }
    }
}

/// Launch the application's ranks, each as `orc colocated-rank SPEC -- COMMAND`, so that
/// every node they land on gets its database first; pass their output to `out` while
/// they run; cancel them when `abort` is set. Returns the exit code: the first non-zero
/// one of a rank, 0 when all succeeded.
///
/// The local launcher starts `run.tasks` ranks (default 1) as processes of their own;
/// workload-manager launchers start one step with that many tasks.
pub fn run_app(
    host: &PluginHost,
    app: &AppRun,
    out: &mut dyn FnMut(Output),
    abort: &AtomicBool,
) -> Result<i32> {
    app.spec.validate()?;
    if app.command.is_empty() {
        return Err(Error::config("no application to run"));
    }
    let name = if app.launcher == AUTO {
        orc_host::detect_in(host, false)
    } else {
        app.launcher.clone()
    };
    let launcher = host.launcher(&name)?;
    launcher.use_state_dir(&app.state_dir)?;
    orc_secure::private_dir(&app.state_dir)?;
    let dir = app.state_dir.join("runs").join(&app.spec.run_id);
    orc_secure::private_dir(&dir)?;
    let spec_file = dir.join("spec.json");
    app.spec.write(&spec_file)?;

    let mut args = vec![
        "--state-dir".to_string(),
        app.state_dir.display().to_string(),
        "colocated-rank".into(),
        spec_file.display().to_string(),
        "--".into(),
    ];
    args.extend(app.command.iter().cloned());
    let base = LaunchStep::new("app", &app.orc_exe, &app.cwd).args(args);
    // Locally each rank is a process of its own; a workload manager starts them as one step.
    let local = name == "local";
    let ranks = if local {
        app.run.tasks.unwrap_or(1).max(1)
    } else {
        1
    };
    let mut steps = Vec::new();
    for r in 0..ranks {
        let mut s = base.clone();
        s.name = if local {
            format!("rank_{r}")
        } else {
            "app".into()
        };
        s.stdout = dir.join(format!("{}.out", s.name));
        s.stderr = dir.join(format!("{}.err", s.name));
        s.run = if local {
            RunSettings::default()
        } else {
            app.run.clone()
        };
        if local {
            s.env.insert("ORC_RANK".into(), r.to_string());
            s.env.insert("ORC_RANKS".into(), ranks.to_string());
        }
        steps.push(s);
    }
    let mut tails: Vec<Tail> = steps
        .iter()
        .flat_map(|s| [Tail::new(&s.stdout, false), Tail::new(&s.stderr, true)])
        .collect();
    let mut ids: Vec<StepId> = Vec::new();
    for s in &steps {
        match launcher.launch(s) {
            Ok(id) => ids.push(id),
            Err(e) => {
                for id in &ids {
                    let _ = launcher.cancel(id);
                }
                return Err(e);
            }
        }
    }
    tracing::info!(run = %app.spec.run_id, ranks, launcher = %name, "application launched");
    let mut cancelled = false;
    let statuses = loop {
        for t in &mut tails {
            t.pump(out);
        }
        let st = launcher.status(&ids)?;
        if st.iter().all(|s| s.status.is_terminal()) {
            break st;
        }
        if !cancelled && abort.load(Ordering::SeqCst) {
            cancelled = true;
            for id in &ids {
                if let Err(e) = launcher.cancel(id) {
                    tracing::warn!("cancelling {id}: {e}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Output files may lag behind the step's end on shared filesystems.
    std::thread::sleep(Duration::from_millis(100));
    for t in &mut tails {
        t.pump(out);
    }
    let code = statuses
        .iter()
        .map(|s| match (s.status, s.exit_code) {
            (_, Some(c)) => c,
            (JobStatus::Completed, None) => 0,
            (JobStatus::Cancelled, None) => 143,
            _ => 1,
        })
        .find(|c| *c != 0)
        .unwrap_or(0);
    if local {
        // Every node directory of a local run is on this machine: stop what a rank that
        // never ran (or was killed) left behind.
        sweep_local(host, &app.spec);
    }
    if cancelled {
        return Err(Error::Interrupted);
    }
    Ok(code)
}

/// Stop and remove every node database of run `spec` still on this machine.
fn sweep_local(host: &PluginHost, spec: &ColocatedSpec) {
    let Ok(dirs) = std::fs::read_dir(super::node_root()) else {
        return;
    };
    let prefix = format!("{}.", spec.run_id);
    for d in dirs.flatten() {
        if !d.file_name().to_string_lossy().starts_with(&prefix) || !d.path().is_dir() {
            continue;
        }
        if let Ok(orc) = crate::Orchestrator::connect(host, &d.path(), &spec.settings.db_identifier)
        {
            tracing::warn!(dir = %d.path().display(), "stopping a colocated database its ranks left");
            let _ = orc.stop();
        }
        let _ = std::fs::remove_dir_all(d.path());
    }
}
