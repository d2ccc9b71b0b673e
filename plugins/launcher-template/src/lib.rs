//! A launcher plugin for `orc`, built outside the orc workspace: the starting point for
//! a site's own workload manager.
//!
//! It depends on one crate, [`orc_launcher_kit`]. As shipped it runs every step as a
//! process on this machine (the kit's process table), so it builds, loads and passes orc's
//! launcher conformance suite (`tests/conformance.rs`) before you change a line. Each `SITE:` comment marks where a real scheduler's
//! commands go; `plugins/launcher-sge` in the orc repository is a complete launcher
//! (Grid Engine) grown from this file.
//!
//! The contract a launcher keeps (see [`Launcher`]):
//!
//! * [`launch`](Launcher::launch) submits and returns at once with an id you can parse
//!   later, in this process or another one (`orc db stop` runs long after `orc db start`);
//! * [`status`](Launcher::status) never reports a step it does not know as completed:
//!   unknown ids are errors;
//! * [`cancel`](Launcher::cancel) of a step that already ended is not an error;
//! * errors say what happened and what to do ([`Error::launcher`],
//!   [`orc_launcher_kit::tools::output`] for scheduler commands missing from `PATH`).
//!
//! A scheduler whose steps run through a parallel launcher inside a job (`mpiexec`,
//! `jsrun`, `aprun`) is better served by [`orc_launcher_kit::wlm::WlmLauncher`]: implement
//! its `Wlm` trait (submit, status, delete, the parallel launch line) and it does the rest,
//! batch allocations through the job agent included. The README says more.
//!
//! ```
//! use orc_launcher_kit::prelude::*;
//! let l = orc_site_launcher_template::TemplateLauncher::default();
//! assert_eq!(l.name(), "template");
//! assert_eq!(orc_site_launcher_template::PLUGIN.name, "template");
//! ```
#![deny(missing_docs)]

use orc_launcher_kit::{prelude::*, process};

/// The name users select the launcher by: `orc db start --launcher template`.
/// SITE: your scheduler's name.
pub const NAME: &str = "template";

/// What this library provides. `orc plugins` lists it with this description.
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "site launcher template: steps run as local processes",
    crate_name: env!("CARGO_PKG_NAME"),
    factory: Factory::Launcher(|| Box::new(TemplateLauncher::default())),
};

// The plugin's root module: what `orc` finds when it loads the library.
orc_launcher_kit::export_plugins!(PLUGIN);

/// The site launcher.
#[derive(Debug, Default)]
pub struct TemplateLauncher {
    /// Tracks processes started on this machine (a scheduler's client commands, or the
    /// steps themselves). SITE: keep it when steps run through a command that lives as
    /// long as the step (like `srun` or `qrsh`); drop it when the scheduler gives ids.
    procs: LocalLauncher,
}

/// Errors from the process layer name this launcher.
fn ours(e: Error) -> Error {
    process::attribute(e, NAME, "sh", "install a POSIX shell")
}

impl Launcher for TemplateLauncher {
    fn name(&self) -> &str {
        NAME
    }

    fn launch(&self, step: &LaunchStep) -> Result<StepId> {
        // SITE: inside an allocation (your scheduler's job id in the environment, or
        // `step.run.allocation`), wrap the step in the scheduler's task launcher
        // (`process::wrap(step, "srun", args)`); outside one, write a batch script and
        // submit it, returning the scheduler's job id. An MPMD step (`step.mpmd` not
        // empty) runs several programs as one launch (`process::wrap_mpmd`); a launcher
        // that cannot, refuses it (`step.refuse_mpmd(NAME)`).
        self.procs.launch(step).map_err(ours)
    }

    fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>> {
        // SITE: ask the scheduler (one call for all ids where it can), map each native
        // state to a JobStatus, keep the native state and exit code, and return an error
        // for an id the scheduler does not know.
        self.procs.status(ids).map_err(ours)
    }

    fn cancel(&self, id: &StepId) -> Result<StepStatus> {
        // SITE: the scheduler's cancel command, then wait until the job has ended
        // (`orc_launcher_kit::tools::wait_cancelled`).
        self.procs.cancel(id).map_err(ours)
    }

    fn allocation(&self) -> Result<Allocation> {
        // SITE: the job this process runs in and its hosts (from the scheduler's
        // environment), or an error that says how to get one.
        self.procs.allocation().map_err(ours)
    }

    // SITE: `allocate` and `release` give `orc db start --batch`: submit a job that
    // holds the nodes (`BatchSettings` has nodes, tasks per node, walltime, account,
    // queue, extra directives and a queue timeout), wait until it runs, return its id and
    // hosts; steps then name it in `step.run.allocation`, and release ends it. When steps
    // can only start inside the job, `orc_launcher_kit::agent::allocate` runs the kit's job
    // agent in it; keep its files under the directory `use_state_dir` gives.
}
