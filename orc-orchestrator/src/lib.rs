//! The **orc** Orchestrator lifecycle: launch the database shards a deployment style
//! plans through a launcher, wait until each answers, form them into one database, write
//! a reconnect file, watch, change settings and stop them with nothing left. Usable from
//! any Rust program; the `orc` CLI is a thin shell over it.
//!
//! Data flows one way: [`OrchestratorSettings`] -> deployment (plan: one step per
//! shard) -> launcher (runs the steps) -> shards -> clients ([`Orchestrator::client_env`]).
//! The launcher and the deployment are `orc_core` trait objects: yours, or ones the
//! plugin host ([`PluginHost`]) finds by name.
//!
//! # Example
//!
//! Launch a one-shard database with whatever plugins are installed, print how clients
//! reach it, and stop it:
//!
//! ```no_run
//! use orc_orchestrator::{Orchestrator, OrchestratorSettings, PluginHost};
//!
//! let host = PluginHost::discover();
//! let mut settings = OrchestratorSettings::with_shards(1);
//! settings.port = 0; // any free port
//! let orc = Orchestrator::builder(settings)
//!     .host(&host)
//!     .state_dir("/tmp/orc-example")
//!     .launch()?;
//! for (k, v) in orc.client_env() {
//!     println!("{k}={v}");
//! }
//! orc.stop()?;
//! # Ok::<(), orc_core::Error>(())
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::print_stdout))]

pub mod colocated;
mod heal;
mod lock;
mod logs;
mod placement;
pub mod preload;
pub mod record;
pub mod secrets;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

pub use heal::Healed;
use orc_core::{
    Auth, Credentials, DbDeployment, DbHealth, JobStatus, LaunchStep, Launcher, PlanRequest,
    ShardAddress, StepId, StepStatus, Tls,
    launcher::AUTO,
    settings::{env_suffix, validate_config_value},
};
pub use orc_core::{Error, OrchestratorSettings, Result};
pub use orc_host::PluginHost;

use crate::record::{OrchestratorRecord, RECORD_FORMAT, ShardRecord};

/// How long a shard gets to exit after `SHUTDOWN` before the launcher cancels it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What happens while an orchestrator starts, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// Every shard step was handed to the launcher.
    Launched {
        /// Number of shards.
        shards: usize,
    },
    /// One more shard answers.
    ShardReady {
        /// Shards answering so far.
        ready: usize,
        /// Number of shards.
        total: usize,
    },
    /// The batch job that will hold the shards waits in the queue (shown when its state
    /// or the scheduler's reason changes).
    Queued(orc_core::QueueState),
    /// The shards are being formed into one database.
    Forming,
    /// The settings' models, scripts and functions are being loaded into every shard.
    Loading {
        /// How many objects.
        objects: usize,
    },
    /// The database is verified and recorded.
    Ready,
}

/// Options for [`Orchestrator::launch_with`].
pub struct LaunchOptions<'a> {
    /// Where reconnect files live (default [`orc_core::settings::default_state_dir`]).
    pub state_dir: PathBuf,
    /// Called as the launch progresses.
    pub progress: &'a mut dyn FnMut(&Progress),
    /// Set to abort the launch (for example from a Ctrl-C handler); every launched shard
    /// is then stopped.
    pub abort: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for LaunchOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchOptions")
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

/// How one shard ended when its orchestrator was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopWay {
    /// It exited on request (`SHUTDOWN`).
    Shutdown,
    /// The launcher had to stop it.
    Cancelled,
    /// It was not running any more.
    AlreadyGone,
}

/// How one shard ended when the orchestrator was stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardStop {
    /// Shard index.
    pub index: usize,
    /// `host:port`.
    pub address: String,
    /// How it ended.
    pub how: StopWay,
    /// Its final status.
    pub status: StepStatus,
}

/// The state of a database as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DbState {
    /// Every shard runs and the database is healthy.
    Ready,
    /// Some shards answer, not all is well.
    Degraded,
    /// No shard answers.
    Down,
}

impl std::fmt::Display for DbState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DbState::Ready => "ready",
            DbState::Degraded => "degraded",
            DbState::Down => "down",
        })
    }
}

/// The state of a running orchestrator.
#[derive(Debug, Clone, Serialize)]
pub struct OrchestratorStatus {
    /// Ready, degraded or down.
    pub state: DbState,
    /// The database identifier.
    pub db_identifier: String,
    /// Deployment style.
    pub deployment: String,
    /// Launcher.
    pub launcher: String,
    /// Client addresses.
    pub addresses: Vec<String>,
    /// The host (node) each shard runs on, in shard order.
    pub hosts: Vec<String>,
    /// How many of the servers were started as shards (masters): the first ones; the
    /// rest were started as their replicas (a replica now a master took a shard over).
    pub masters: usize,
    /// Per-step launcher status, in shard order (an error message when unknown).
    pub steps: Vec<std::result::Result<StepStatus, String>>,
    /// What the database says about itself.
    pub health: DbHealth,
    /// The reconnect file.
    pub record_path: PathBuf,
    /// The data directory.
    pub dir: PathBuf,
    /// The Unix socket a standalone database also listens on.
    pub unix_socket: Option<String>,
    /// The models, scripts and functions loaded into every shard at start.
    pub loaded: Vec<orc_core::DbObject>,
}

/// A launched (or reconnected) orchestrator.
pub struct Orchestrator {
    record: OrchestratorRecord,
    record_path: PathBuf,
    launcher: Box<dyn Launcher>,
    deployment: Box<dyn DbDeployment>,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A launch being prepared: settings, and optionally the launcher and deployment objects
/// (an embedder's own, say), the plugin host that provides named ones, the state
/// directory, a progress callback and an abort flag. See [`Orchestrator::builder`].
pub struct Builder<'a> {
    settings: OrchestratorSettings,
    host: Option<&'a PluginHost>,
    launcher: Option<Box<dyn Launcher>>,
    deployment: Option<Box<dyn DbDeployment>>,
    state_dir: Option<PathBuf>,
    progress: Option<&'a mut dyn FnMut(&Progress)>,
    abort: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for Builder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("settings", &self.settings)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl<'a> Builder<'a> {
    /// The host that provides launchers and deployments by name (default: every component
    /// linked in plus the plugins on the plugin path, [`PluginHost::discover`]).
    pub fn host(mut self, host: &'a PluginHost) -> Self {
        self.host = Some(host);
        self
    }

    /// Launch with this launcher object instead of the one named in the settings.
    pub fn launcher(mut self, launcher: Box<dyn Launcher>) -> Self {
        self.launcher = Some(launcher);
        self
    }

    /// Form the database with this deployment object instead of the named one.
    pub fn deployment(mut self, deployment: Box<dyn DbDeployment>) -> Self {
        self.deployment = Some(deployment);
        self
    }

    /// Keep the reconnect file under `dir` (default [`orc_core::settings::default_state_dir`]).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Call `progress` as the launch goes on.
    pub fn progress(mut self, progress: &'a mut dyn FnMut(&Progress)) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Abort the launch (every launched shard stopped, [`Error::Interrupted`]) once `flag`
    /// is set, from a Ctrl-C handler say.
    pub fn abort_on(mut self, flag: Arc<AtomicBool>) -> Self {
        self.abort = Some(flag);
        self
    }

    /// Launch every shard, wait until each answers, form and verify the database, and write
    /// the reconnect file. On any failure every launched shard is stopped again.
    pub fn launch(self) -> Result<Orchestrator> {
        let owned;
        let host = match self.host {
            Some(h) => h,
            None if self.launcher.is_some() && self.deployment.is_some() => {
                owned = PluginHost::new();
                &owned
            }
            None => {
                owned = PluginHost::discover();
                &owned
            }
        };
        let mut settings = self.settings;
        let launcher = match self.launcher {
            Some(l) => {
                settings.launcher = l.name().into();
                l
            }
            None => {
                if settings.launcher == AUTO {
                    settings.launcher = orc_host::detect_in(host, settings.batch.is_some());
                    tracing::info!(launcher = %settings.launcher, "launcher chosen by `auto`");
                }
                host.launcher(&settings.launcher)?
            }
        };
        let deployment = match self.deployment {
            Some(d) => {
                settings.deployment = Some(d.name().into());
                d
            }
            None => host.deployment(settings.deployment_name())?,
        };
        let mut nothing = |_: &Progress| {};
        let opts = LaunchOptions {
            state_dir: self
                .state_dir
                .unwrap_or_else(orc_core::settings::default_state_dir),
            progress: self.progress.unwrap_or(&mut nothing),
            abort: self.abort,
        };
        Orchestrator::launch_objects(host, settings, launcher, deployment, opts)
    }
}

impl Orchestrator {
    /// Prepare a launch with `settings`: give it launcher and deployment objects or let it
    /// find them by name, then [`Builder::launch`].
    ///
    /// ```no_run
    /// use orc_orchestrator::{Orchestrator, OrchestratorSettings};
    /// let orc = Orchestrator::builder(OrchestratorSettings::with_shards(3))
    ///     .state_dir("/tmp/orc-state")
    ///     .launch()?;
    /// orc.stop()?;
    /// # Ok::<(), orc_core::Error>(())
    /// ```
    pub fn builder<'a>(settings: OrchestratorSettings) -> Builder<'a> {
        Builder {
            settings,
            host: None,
            launcher: None,
            deployment: None,
            state_dir: None,
            progress: None,
            abort: None,
        }
    }

    /// Launch with default options (state directory from the environment, no progress).
    pub fn launch(host: &PluginHost, settings: OrchestratorSettings) -> Result<Self> {
        Self::builder(settings).host(host).launch()
    }

    /// Launch with `opts` (see [`Builder`] for launching with objects of your own).
    pub fn launch_with(
        host: &PluginHost,
        settings: OrchestratorSettings,
        opts: LaunchOptions<'_>,
    ) -> Result<Self> {
        let mut b = Self::builder(settings)
            .host(host)
            .state_dir(opts.state_dir)
            .progress(opts.progress);
        if let Some(a) = opts.abort {
            b = b.abort_on(a);
        }
        b.launch()
    }

    #[tracing::instrument(skip_all, fields(db = %settings.db_identifier, shards = settings.shards))]
    fn launch_objects(
        host: &PluginHost,
        settings: OrchestratorSettings,
        launcher: Box<dyn Launcher>,
        deployment: Box<dyn DbDeployment>,
        opts: LaunchOptions<'_>,
    ) -> Result<Self> {
        settings.validate()?;
        launcher.use_state_dir(&opts.state_dir)?;
        orc_secure::private_dir(&opts.state_dir)?;
        let home = record::orchestrator_dir(&opts.state_dir, &settings.db_identifier);
        orc_secure::private_dir(&home)?;
        // One orc process at a time starts or stops this database; held until we return.
        let _lock = lock::DbLock::acquire(&home, &settings.db_identifier)?;
        // `Err(Interrupted)` once the caller asked to abort.
        let interrupted = || match opts.abort.as_deref() {
            Some(a) if a.load(Ordering::SeqCst) => Err(Error::Interrupted),
            _ => Ok(()),
        };
        let record_path = record::record_path(&opts.state_dir, &settings.db_identifier);
        if record_path.exists() {
            // Only a record whose shards are verifiably all gone is replaced; one that
            // cannot be checked (a plugin missing, an unreadable file) is never deleted.
            let existing = Self::connect(host, &opts.state_dir, &settings.db_identifier)?;
            existing.refuse_if_elsewhere("started again")?;
            if existing.anything_alive() {
                return Err(Error::AlreadyRunning {
                    db_identifier: settings.db_identifier.clone(),
                    path: record_path,
                });
            }
            tracing::info!(path = %record_path.display(), "replacing the reconnect file of a database that is gone");
            std::fs::remove_file(&record_path)
                .map_err(|e| Error::io(format!("removing {}", record_path.display()), e))?;
        }
        let credentials = secrets::create(&home, settings.auth)?;
        if let Some(c) = &credentials {
            use_credentials(deployment.as_ref(), c)?;
        }
        let dir = settings.dir.clone().unwrap_or_else(|| home.clone());
        orc_secure::private_dir(&dir)?;
        let dir = dir.canonicalize().unwrap_or(dir);

        let mut orc = Orchestrator {
            record: OrchestratorRecord {
                format: RECORD_FORMAT,
                orc_version: env!("CARGO_PKG_VERSION").into(),
                launcher: launcher.name().into(),
                deployment: deployment.name().into(),
                clustered: deployment.clustered(),
                settings: settings.clone(),
                dir: dir.clone(),
                shards: Vec::new(),
                batch_job: None,
                started_at: 0,
                launched_by_pid: std::process::id(),
                launched_on: orc_net::hostname(),
                ready: false,
            },
            record_path,
            launcher,
            deployment,
        };
        // Written (and synced) before anything is launched, and after every launch, so that
        // `orc db stop` can clean up whenever this process dies.
        orc.record.save(&orc.record_path)?;
        let launcher = orc.launcher.as_ref();

        // Batch mode: one job of our own holds every shard.
        let (alloc, batch_job) = match &settings.batch {
            Some(b) => {
                let name = format!("orc-{}", settings.db_identifier);
                let mut b = b.clone();
                let per_host = settings.shards_per_host.max(1);
                b.nodes.get_or_insert(
                    u32::try_from(settings.servers().div_ceil(per_host)).unwrap_or(u32::MAX),
                );
                b.tasks_per_node
                    .get_or_insert(u32::try_from(per_host).unwrap_or(u32::MAX));
                let alloc = orc.or_teardown(allocate_unless_aborted(
                    launcher,
                    &b,
                    &name,
                    opts.abort.as_deref(),
                    opts.progress,
                ))?;
                let job = alloc.id.clone().map(StepId);
                (alloc, job)
            }
            None => (orc.or_teardown(launcher.allocation())?, None),
        };
        orc.record.batch_job = batch_job.clone();
        orc.or_teardown(orc.record.save(&orc.record_path))?;
        orc.or_teardown(interrupted())?;
        // TLS: certificates for every host a shard runs on, made now that they are known;
        // orc's own connections then verify the shards with their authority.
        let settings = orc.or_teardown(prepare_tls(&settings, &alloc, &home))?;
        if let (Some(c), Some(_)) = (&credentials, &settings.tls) {
            orc.or_teardown(use_credentials(
                orc.deployment.as_ref(),
                &with_tls(c.clone(), &settings),
            ))?;
        }
        orc.record.settings = settings.clone();
        let deployment = orc.deployment.as_ref();
        let planned =
            placement::place(&settings, &alloc, &deployment.companion_ports()).and_then(|shards| {
                let steps = deployment.plan(&PlanRequest::new(
                    settings.clone(),
                    shards.clone(),
                    dir.clone(),
                ))?;
                if steps.len() != shards.len() {
                    return Err(Error::Plugin {
                        plugin: deployment.name().into(),
                        method: "plan".into(),
                        message: format!(
                            "planned {} steps for {} shards",
                            steps.len(),
                            shards.len()
                        ),
                    });
                }
                Ok((shards, steps))
            });
        let (shards, mut steps) = orc.or_teardown(planned)?;
        if let Some(job) = &batch_job {
            for step in &mut steps {
                step.run.allocation = Some(job.0.clone());
            }
        }

        // One MPMD step for every shard when asked (and there are several), else a step each.
        let launches: Vec<LaunchStep> = if orc.record.settings.single_step && steps.len() > 1 {
            let mut all = steps[0].clone();
            all.mpmd = steps[1..].to_vec();
            vec![all]
        } else {
            steps.clone()
        };
        for spec in &shards {
            if !spec.interfaces.is_empty() {
                let _ = std::fs::remove_file(spec.address_file(&orc.record.dir));
            }
        }
        for step in &launches {
            orc.or_teardown(interrupted())?;
            let id = orc.or_teardown(orc.launcher.launch(step))?;
            // Recorded as soon as launched, so a failure later still cleans this up; every
            // part of an MPMD step is one shard.
            let first = orc.record.shards.len();
            for (spec, step) in shards[first..].iter().zip(step.parts()) {
                tracing::debug!(shard = spec.index, step = %id, "shard launched");
                orc.record.shards.push(ShardRecord {
                    index: spec.index,
                    name: spec.name.clone(),
                    host: spec.host.clone(),
                    address: spec.address(),
                    step: id.clone(),
                    stdout: step.stdout.clone(),
                    stderr: step.stderr.clone(),
                    address_file: (!spec.interfaces.is_empty())
                        .then(|| spec.address_file(&orc.record.dir)),
                });
            }
            orc.or_teardown(orc.record.save(&orc.record_path))?;
        }
        (opts.progress)(&Progress::Launched {
            shards: steps.len(),
        });

        let started = Instant::now();
        let timeout = Duration::from_secs_f64(orc.record.settings.startup_timeout_secs);
        let result = orc
            .wait_ready(started + timeout, opts.progress, opts.abort.as_deref())
            .and_then(|()| {
                (opts.progress)(&Progress::Forming);
                let left = timeout
                    .saturating_sub(started.elapsed())
                    .as_secs_f64()
                    .max(1.0);
                orc.form_unless_aborted(left, opts.abort.as_deref())
            });
        orc.or_teardown(result.map_err(|e| orc.explain_failure(e)))?;
        if !orc.record.settings.preload.is_empty() {
            (opts.progress)(&Progress::Loading {
                objects: orc.record.settings.preload.len(),
            });
            orc.or_teardown(interrupted())?;
            let loaded = orc.load_objects(credentials.as_ref(), &orc.record.settings.preload);
            orc.or_teardown(loaded)?;
        }
        orc.record.ready = true;
        orc.record.started_at = now_unix();
        orc.or_teardown(orc.record.save(&orc.record_path))?;
        (opts.progress)(&Progress::Ready);
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "orchestrator ready"
        );
        Ok(orc)
    }

    /// Load models, scripts and functions into a running database, as at start (each
    /// checked first; in a cluster a copy per shard). They are not added to the record:
    /// a restart loads only the objects it was started with.
    pub fn load(&self, objects: &[orc_core::DbObject]) -> Result<()> {
        let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let mut checked = objects.to_vec();
        for o in &mut checked {
            o.validate(&here)?;
        }
        let credentials = secrets::load(self.home(), self.record.settings.auth)?;
        self.load_objects(credentials.as_ref(), &checked)
    }

    /// Load `objects` into every shard as the admin user (see [`preload`]).
    fn load_objects(
        &self,
        credentials: Option<&Credentials>,
        objects: &[orc_core::DbObject],
    ) -> Result<()> {
        let settings = &self.record.settings;
        let ca = match &settings.tls {
            Some(Tls::Files(f)) => Some(f.ca.as_path()),
            _ => None,
        };
        let target = preload::Target {
            addresses: self.addresses(),
            clustered: self.record.clustered,
            admin: credentials.map(|c| (c.admin_user.as_str(), c.admin_secret.as_str())),
            tls_ca: ca,
        };
        preload::load_all(&target, objects)
    }

    /// Form the database on a helper thread, so that an abort (Ctrl-C) is seen at once:
    /// the shards are then stopped, which ends the forming too.
    fn form_unless_aborted(&self, timeout_secs: f64, abort: Option<&AtomicBool>) -> Result<()> {
        let addresses = self.record.addresses();
        let form = || {
            self.deployment
                .form(&addresses, &self.record.settings, timeout_secs)
        };
        let Some(abort) = abort else {
            return form();
        };
        let mut stopped = false;
        let formed = while_watching("forming the database", form, || {
            if !stopped && abort.load(Ordering::SeqCst) {
                // Stopping the shards makes the forming fail fast.
                self.teardown_quietly();
                stopped = true;
            }
        });
        if stopped {
            Err(Error::Interrupted)
        } else {
            formed
        }
    }

    /// Shards whose interfaces are looked up on their node write the address they
    /// advertise to a file as they start; take it into the record once it is there.
    fn learn_address(&mut self, i: usize) -> Result<bool> {
        let shard = &mut self.record.shards[i];
        let Some(file) = &shard.address_file else {
            return Ok(true);
        };
        let Ok(text) = std::fs::read_to_string(file) else {
            return Ok(false);
        };
        let ip: std::net::IpAddr = text.trim().parse().map_err(|_| Error::Shard {
            shard: shard.index,
            address: shard.address.to_string(),
            message: format!("{} holds no IP address: {:?}", file.display(), text.trim()),
            log_tail: String::new(),
            log_path: None,
        })?;
        shard.address.host = ip.to_string();
        shard.address_file = None;
        Ok(true)
    }

    fn wait_ready(
        &mut self,
        deadline: Instant,
        progress: &mut dyn FnMut(&Progress),
        abort: Option<&AtomicBool>,
    ) -> Result<()> {
        let total = self.record.shards.len();
        let mut ready = vec![false; total];
        let mut delay = Duration::from_millis(2);
        let mut last_status_check = Instant::now() - Duration::from_secs(1);
        loop {
            for i in 0..total {
                if !ready[i] && !self.learn_address(i)? {
                    continue;
                }
                let shard = &self.record.shards[i];
                if !ready[i] && self.deployment.probe(&shard.address)?.ready {
                    ready[i] = true;
                    progress(&Progress::ShardReady {
                        ready: ready.iter().filter(|r| **r).count(),
                        total,
                    });
                }
            }
            if ready.iter().all(|r| *r) {
                return Ok(());
            }
            if abort.is_some_and(|a| a.load(Ordering::SeqCst)) {
                return Err(Error::Interrupted);
            }
            // Catch shards that died at start without waiting for the timeout.
            if last_status_check.elapsed() >= Duration::from_millis(50) {
                last_status_check = Instant::now();
                let ids: Vec<StepId> = self.record.shards.iter().map(|s| s.step.clone()).collect();
                for (shard, st) in self.record.shards.iter().zip(self.launcher.status(&ids)?) {
                    if st.status.is_terminal() {
                        return Err(
                            self.shard_error(shard, format!("exited while starting ({st})"))
                        );
                    }
                }
            }
            if Instant::now() >= deadline {
                let waiting: Vec<String> = self
                    .record
                    .shards
                    .iter()
                    .zip(&ready)
                    .filter(|(_, r)| !**r)
                    .map(|(s, _)| s.address.to_string())
                    .collect();
                return Err(Error::Timeout {
                    what: format!("shard(s) {} to answer", waiting.join(", ")),
                    seconds: self.record.settings.startup_timeout_secs,
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }

    fn shard_error(&self, shard: &ShardRecord, message: String) -> Error {
        let mut tail = logs::tail(&shard.stdout, 12);
        let err_tail = logs::tail(&shard.stderr, 12);
        if !err_tail.is_empty() {
            if !tail.is_empty() {
                tail.push('\n');
            }
            tail.push_str(&err_tail);
        }
        let hint = port_hint(&tail, shard);
        Error::Shard {
            shard: shard.index,
            address: shard.address.to_string(),
            message: format!("{message}{hint}"),
            log_tail: tail,
            log_path: Some(shard.stdout.clone()),
        }
    }

    /// Turn a timeout or a formation failure into a shard error when a shard is to blame.
    fn explain_failure(&self, e: Error) -> Error {
        // An interruption stopped the shards itself: they are not to blame.
        if matches!(e, Error::Shard { .. } | Error::Interrupted) {
            return e;
        }
        let ids: Vec<StepId> = self.record.shards.iter().map(|s| s.step.clone()).collect();
        if let Ok(statuses) = self.launcher.status(&ids) {
            for (shard, st) in self.record.shards.iter().zip(statuses) {
                if st.status.is_terminal() {
                    return self.shard_error(shard, format!("exited while starting ({st}); {e}"));
                }
            }
        }
        e
    }

    /// Reconnect to orchestrator `db_identifier` from its reconnect file under `state_dir`.
    pub fn connect(host: &PluginHost, state_dir: &Path, db_identifier: &str) -> Result<Self> {
        let record_path = record::record_path(state_dir, db_identifier);
        if !record_path.exists() {
            return Err(Error::NotFound {
                db_identifier: db_identifier.into(),
                path: record_path,
            });
        }
        let record = OrchestratorRecord::load(&record_path)?;
        let launcher = host.launcher(&record.launcher)?;
        let deployment = host.deployment(&record.deployment)?;
        Self::connect_with(state_dir, db_identifier, launcher, deployment)
    }

    /// Reconnect to orchestrator `db_identifier` under `state_dir` through launcher and
    /// deployment objects of your own (those it was launched with, or equivalent ones).
    pub fn connect_with(
        state_dir: &Path,
        db_identifier: &str,
        launcher: Box<dyn Launcher>,
        deployment: Box<dyn DbDeployment>,
    ) -> Result<Self> {
        let record_path = record::record_path(state_dir, db_identifier);
        if !record_path.exists() {
            return Err(Error::NotFound {
                db_identifier: db_identifier.into(),
                path: record_path,
            });
        }
        launcher.use_state_dir(state_dir)?;
        // Another user's files could make orc stop their processes or talk to their
        // servers: only this user's private state is trusted.
        orc_secure::check_private_dir(state_dir)?;
        if let Some(home) = record_path.parent() {
            orc_secure::check_private_dir(home)?;
        }
        orc_secure::check_private_file(&record_path)?;
        let record = OrchestratorRecord::load(&record_path)?;
        if let Some(home) = record_path.parent()
            && let Some(c) = secrets::load(home, record.settings.auth)?
        {
            use_credentials(deployment.as_ref(), &with_tls(c, &record.settings))?;
        }
        Ok(Self {
            record,
            record_path,
            launcher,
            deployment,
        })
    }

    /// Every recorded orchestrator under `state_dir` (reconnect files that cannot be read
    /// are returned as errors).
    pub fn connect_all(host: &PluginHost, state_dir: &Path) -> Vec<Result<Self>> {
        record::list_records(state_dir)
            .into_iter()
            .filter_map(|p| {
                p.parent()
                    .and_then(|d| d.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .map(|id| Self::connect(host, state_dir, &id))
            .collect()
    }

    /// The recorded state.
    pub fn record(&self) -> &OrchestratorRecord {
        &self.record
    }

    /// The reconnect file.
    pub fn record_path(&self) -> &Path {
        &self.record_path
    }

    /// The database identifier.
    pub fn db_identifier(&self) -> &str {
        &self.record.settings.db_identifier
    }

    /// Client addresses (`ip:port`), in shard order.
    pub fn addresses(&self) -> Vec<String> {
        self.record
            .shards
            .iter()
            .map(|s| s.address.to_string())
            .collect()
    }

    /// The environment SmartRedis clients read: `SSDB<suffix>` (comma-separated
    /// addresses) and `SR_DB_TYPE<suffix>` (`Clustered` or `Standalone`), where the
    /// suffix is empty for the default identifier and `_<db_identifier>` otherwise; with
    /// `--auth password` also `SR_PASSWORD_FILE<suffix>`, and with TLS `SR_TLS<suffix>=1`
    /// and `SR_TLS_CA_FILE<suffix>` (read by orc-client). A cluster's `SSDB` lists the
    /// servers that accept a connection now (all of them when none does).
    pub fn client_env(&self) -> Vec<(String, String)> {
        let suffix = env_suffix(self.db_identifier());
        let kind = if self.record.clustered {
            "Clustered"
        } else {
            "Standalone"
        };
        // A cluster's clients find every shard from any one address, and SmartRedis connects
        // to one picked at random: after a failover, give only the servers that accept a
        // connection (all of them when none does, or for a single server).
        let mut addresses = self.addresses();
        if self.record.clustered && addresses.len() > 1 {
            let live: Vec<String> = addresses
                .iter()
                .filter(|a| accepts_connections(a))
                .cloned()
                .collect();
            if !live.is_empty() {
                addresses = live;
            }
        }
        // A standalone server that also listens on a Unix socket is reached there (on its
        // own node; applications elsewhere must use the TCP address of `addresses`).
        let ssdb = match self.record.settings.unix_socket() {
            Some(sock) if !self.record.clustered => format!("unix://{sock}"),
            _ => addresses.join(","),
        };
        let mut env = vec![
            (format!("SSDB{suffix}"), ssdb),
            (format!("SR_DB_TYPE{suffix}"), kind.into()),
        ];
        if self.record.settings.auth == Auth::Password {
            let (k, v) = secrets::client_env(self.home(), self.db_identifier());
            env.push((k, v.display().to_string()));
        }
        if let Some(Tls::Files(f)) = &self.record.settings.tls {
            env.push((format!("SR_TLS{suffix}"), "1".into()));
            env.push((
                format!("SR_TLS_CA_FILE{suffix}"),
                f.ca.display().to_string(),
            ));
        }
        env
    }

    fn anything_alive(&self) -> bool {
        let ids: Vec<StepId> = self.record.shards.iter().map(|s| s.step.clone()).collect();
        match self.launcher.status(&ids) {
            Ok(st) => st.iter().any(|s| !s.status.is_terminal()),
            Err(_) => self
                .record
                .shards
                .iter()
                .any(|s| self.deployment.probe(&s.address).is_ok_and(|p| p.ready)),
        }
    }

    /// The host the shards run on when they are processes of another host (see
    /// [`OrchestratorRecord::other_host`]).
    pub fn runs_elsewhere(&self) -> Option<String> {
        self.record
            .other_host(&orc_net::hostname())
            .map(str::to_string)
    }

    /// Refuse to `what` (stop, replace) a database whose shards are processes of another
    /// host: from here they look gone although they may run, and their record is the only
    /// way to stop them.
    fn refuse_if_elsewhere(&self, what: &str) -> Result<()> {
        match self.runs_elsewhere() {
            Some(other) => Err(Error::launcher(
                self.record.launcher.clone(),
                format!(
                    "orchestrator `{}` runs on host {other} (its shards are processes there, which this host, {}, cannot see); it cannot be {what} from here: run `orc db stop --db {}` on {other}",
                    self.db_identifier(),
                    orc_net::hostname(),
                    self.db_identifier()
                ),
            )),
            None => Ok(()),
        }
    }

    /// Launcher status of every shard and the database's own health. Shards that are
    /// processes of another host are reported as such, not as gone.
    pub fn status(&self) -> Result<OrchestratorStatus> {
        let ids: Vec<StepId> = self.record.shards.iter().map(|s| s.step.clone()).collect();
        let steps: Vec<std::result::Result<StepStatus, String>> = if let Some(other) =
            self.runs_elsewhere()
        {
            let msg = format!(
                "runs on host {other}: its processes cannot be seen from {} (run `orc db status` there)",
                orc_net::hostname()
            );
            ids.iter().map(|_| Err(msg.clone())).collect()
        } else {
            match self.launcher.status(&ids) {
                Ok(v) => v.into_iter().map(Ok).collect(),
                Err(e) => ids.iter().map(|_| Err(e.to_string())).collect(),
            }
        };
        let health = self.deployment.health(&self.record.addresses())?;
        let running = steps
            .iter()
            .filter(|s| matches!(s, Ok(st) if st.status == JobStatus::Running))
            .count();
        let reachable = health.shards.iter().filter(|s| s.reachable).count();
        let state = if health.ok && running == steps.len() {
            DbState::Ready
        } else if reachable == 0 {
            DbState::Down
        } else {
            DbState::Degraded
        };
        Ok(OrchestratorStatus {
            state,
            db_identifier: self.db_identifier().into(),
            masters: self.record.settings.shards,
            deployment: self.record.deployment.clone(),
            launcher: self.record.launcher.clone(),
            addresses: self.addresses(),
            hosts: self.record.shards.iter().map(|s| s.host.clone()).collect(),
            steps,
            health,
            record_path: self.record_path.clone(),
            dir: self.record.dir.clone(),
            unix_socket: self.record.settings.unix_socket().map(Into::into),
            loaded: self.record.settings.preload.clone(),
        })
    }

    /// Change a Redis setting on every shard now, and keep it for restarts (it is written
    /// to each shard's configuration file and to the reconnect file).
    pub fn config_set(&mut self, key: &str, value: &str) -> Result<()> {
        validate_config_value(key, value)?;
        let mut settings = self.record.settings.clone();
        settings.redis.apply(key, value)?;
        for shard in &self.record.shards {
            self.deployment.config_set(&shard.address, key, value)?;
        }
        self.record.settings = settings;
        self.record.save(&self.record_path)
    }

    /// Read a Redis setting from the first shard.
    pub fn config_get(&self, key: &str) -> Result<Vec<(String, String)>> {
        let first = self
            .record
            .shards
            .first()
            .ok_or_else(|| Error::Database("no shards".into()))?;
        self.deployment.config_get(&first.address, key)
    }

    /// Stop every shard: `SHUTDOWN` (saving first when checkpoints are on), then the
    /// launcher's cancel for any shard still running after a grace period. Removes the
    /// reconnect file. Shards that are already gone are reported as such.
    #[tracing::instrument(skip_all, fields(db = %self.record.settings.db_identifier))]
    pub fn stop(self) -> Result<Vec<ShardStop>> {
        self.refuse_if_elsewhere("stopped")?;
        let _lock = lock::DbLock::acquire(self.home(), self.db_identifier())?;
        let save = self.record.settings.redis.checkpoints.is_some();
        let report = self.teardown(save)?;
        secrets::remove(self.home());
        match std::fs::remove_file(&self.record_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::io(
                    format!("removing {}", self.record_path.display()),
                    e,
                ));
            }
        }
        Ok(report)
    }

    /// `r`, after stopping everything launched so far when it is an error (a start that
    /// fails or is interrupted leaves nothing).
    fn or_teardown<T>(&self, r: Result<T>) -> Result<T> {
        r.inspect_err(|_| self.teardown_quietly())
    }

    fn teardown_quietly(&self) {
        if let Err(e) = self.teardown(false) {
            tracing::warn!("cleaning up after a failed launch: {e}");
        }
        let _ = std::fs::remove_file(&self.record_path);
        secrets::remove(self.home());
    }

    /// The orchestrator's directory under the state directory (reconnect file, secrets).
    fn home(&self) -> &Path {
        self.record_path.parent().unwrap_or(Path::new("."))
    }

    fn teardown(&self, save: bool) -> Result<Vec<ShardStop>> {
        let report = self.teardown_shards(save);
        // The batch job goes last, whatever happened to the shards: it ends them all.
        if let Some(job) = &self.record.batch_job {
            self.launcher.release(&job.0)?;
        }
        let mut report = report?;
        // Shards left to the job's end: their status now.
        let left: Vec<usize> = report
            .iter()
            .filter(|r| !r.status.status.is_terminal())
            .map(|r| r.index)
            .collect();
        if !left.is_empty() {
            let ids: Vec<StepId> = left
                .iter()
                .map(|i| self.record.shards[*i].step.clone())
                .collect();
            if let Ok(now) = self.launcher.status(&ids) {
                for (i, st) in left.iter().zip(now) {
                    report[*i].status = st;
                }
            }
        }
        Ok(report)
    }

    fn teardown_shards(&self, save: bool) -> Result<Vec<ShardStop>> {
        let shards = &self.record.shards;
        let ids: Vec<StepId> = shards.iter().map(|s| s.step.clone()).collect();
        let before = self.launcher.status(&ids)?;
        let mut how: Vec<Option<StopWay>> = before
            .iter()
            .map(|s| s.status.is_terminal().then_some(StopWay::AlreadyGone))
            .collect();
        // A protected database's shards accept only this database's admin secret, so one
        // that answers at its address is ours even when the launcher says its step is gone
        // (a launcher looking at another cluster, say, with the wrong SLURM_CONF): it is
        // shut down rather than left running without a record.
        let protected = self.record.settings.auth != orc_core::Auth::Open;
        for (i, shard) in shards.iter().enumerate() {
            if how[i].is_none() || protected {
                match self.deployment.shutdown(&shard.address, save) {
                    Ok(()) => {
                        if how[i].is_some() {
                            tracing::warn!(
                                shard = i,
                                "the launcher said shard {i}'s step had ended, but the shard answered: shut down"
                            );
                        }
                        how[i] = Some(StopWay::Shutdown);
                    }
                    Err(e) => tracing::debug!(shard = i, "SHUTDOWN failed, will cancel: {e}"),
                }
            }
        }
        // Wait for the shards to exit on their own, then cancel what is left.
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let last = loop {
            let now = self.launcher.status(&ids)?;
            let pending = now
                .iter()
                .zip(&how)
                .filter(|(s, h)| !s.status.is_terminal() && **h == Some(StopWay::Shutdown))
                .count();
            if pending == 0 || Instant::now() >= deadline {
                break now;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut out = Vec::new();
        for (i, shard) in shards.iter().enumerate() {
            let (how, status) = if last[i].status.is_terminal() {
                (how[i].unwrap_or(StopWay::AlreadyGone), last[i].clone())
            } else if how[i].is_none() && self.record.batch_job.is_some() {
                // Unreachable (its node lost, say): the batch job's release ends it,
                // without waiting here for a step on a node that may never answer.
                (StopWay::Cancelled, last[i].clone())
            } else {
                (StopWay::Cancelled, self.launcher.cancel(&shard.step)?)
            };
            out.push(ShardStop {
                index: i,
                address: shard.address.to_string(),
                how,
                status,
            });
        }
        Ok(out)
    }

    /// The launcher in use.
    pub fn launcher(&self) -> &dyn Launcher {
        self.launcher.as_ref()
    }

    /// The deployment style in use.
    pub fn deployment(&self) -> &dyn DbDeployment {
        self.deployment.as_ref()
    }

    /// Addresses as [`ShardAddress`] values.
    pub fn shard_addresses(&self) -> Vec<ShardAddress> {
        self.record.addresses()
    }
}

/// `work` on a helper thread, with `tick` called on this one every 10 ms until it ends
/// (to watch for an abort while `work` blocks); a panic in `work` is an error naming
/// `what`.
fn while_watching<T: Send>(
    what: &str,
    work: impl FnOnce() -> Result<T> + Send,
    mut tick: impl FnMut(),
) -> Result<T> {
    std::thread::scope(|scope| {
        let running = scope.spawn(work);
        while !running.is_finished() {
            tick();
            std::thread::sleep(Duration::from_millis(10));
        }
        running.join().unwrap_or_else(|p| {
            Err(Error::Database(format!(
                "{what} panicked: {}",
                orc_dylib::panic_message(p.as_ref())
            )))
        })
    })
}

/// `launcher.allocate(batch, name)` on a helper thread, so that an abort (Ctrl-C) during
/// the queue wait is seen at once: the pending job is then cancelled
/// ([`Launcher::cancel_allocation`]), which makes the allocation fail; one that was granted
/// meanwhile is released. Launchers that cannot cancel a pending job are waited for.
fn allocate_unless_aborted(
    launcher: &dyn Launcher,
    batch: &orc_core::BatchSettings,
    name: &str,
    abort: Option<&AtomicBool>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<orc_core::Allocation> {
    let never = AtomicBool::new(false);
    let abort = abort.unwrap_or(&never);
    let mut last_try: Option<Instant> = None;
    // The job's state and the scheduler's reason, asked every second while it waits.
    let mut last_look = Instant::now();
    let mut shown: Option<orc_core::QueueState> = None;
    let result = while_watching(
        "allocating",
        || launcher.allocate(batch, name),
        || {
            if last_look.elapsed() >= Duration::from_secs(1) {
                last_look = Instant::now();
                match launcher.queue_state(name) {
                    Ok(Some(q)) if shown.as_ref() != Some(&q) => {
                        progress(&Progress::Queued(q.clone()));
                        shown = Some(q);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!("queue state of the batch job: {e}"),
                }
            }
            // Asked again every half second: the job may not be submitted (and known to
            // the launcher) yet when the abort comes.
            if !abort.load(Ordering::SeqCst)
                || last_try.is_some_and(|t| t.elapsed() < Duration::from_millis(500))
            {
                return;
            }
            let first = last_try.is_none();
            last_try = Some(Instant::now());
            match launcher.cancel_allocation(name) {
                Ok(()) if first => tracing::info!("interrupted: cancelling the pending batch job"),
                Err(e) if first => tracing::warn!(
                    "interrupted, but the pending batch job cannot be cancelled now ({e}); it is released once the scheduler answers"
                ),
                _ => {}
            }
        },
    );
    if last_try.is_none() {
        return result;
    }
    if let Ok(a) = &result
        && let Some(job) = &a.id
    {
        let _ = launcher.release(job);
    }
    Err(Error::Interrupted)
}

/// Whether something accepts a TCP connection at `addr` (`host:port`) within 300 ms.
fn accepts_connections(addr: &str) -> bool {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs().is_ok_and(|mut all| {
        all.any(|sa| std::net::TcpStream::connect_timeout(&sa, Duration::from_millis(300)).is_ok())
    })
}

/// `c` with the TLS authority of `settings`, when the shards speak TLS.
fn with_tls(c: Credentials, settings: &OrchestratorSettings) -> Credentials {
    match &settings.tls {
        Some(Tls::Files(f)) => c.with_tls_ca(f.ca.clone()),
        _ => c,
    }
}

/// `settings` with their TLS files: generated into `<home>/tls` for every host of `alloc`
/// (and this one, and loopback) when asked for, else as given (checked to exist).
fn prepare_tls(
    settings: &OrchestratorSettings,
    alloc: &orc_core::Allocation,
    home: &Path,
) -> Result<OrchestratorSettings> {
    let mut s = settings.clone();
    match &settings.tls {
        None => {}
        Some(Tls::Generate) => {
            let mut hosts: Vec<String> = alloc.hosts.clone();
            hosts.extend(settings.hosts.iter().cloned());
            hosts.extend(["127.0.0.1".into(), "::1".into(), "localhost".into()]);
            hosts.push(orc_net::hostname());
            for h in alloc.hosts.iter().chain(&settings.hosts) {
                if let Ok(addrs) = std::net::ToSocketAddrs::to_socket_addrs(&(h.as_str(), 0)) {
                    hosts.extend(addrs.map(|a| a.ip().to_string()));
                }
            }
            let files = orc_secure::tls::generate(
                &home.join(secrets::TLS_DIR),
                &hosts,
                &settings.db_identifier,
            )?;
            s.tls = Some(Tls::Files(files));
        }
        Some(Tls::Files(f)) => {
            for p in [&f.cert, &f.key, &f.ca] {
                if !p.is_file() {
                    return Err(Error::config(format!(
                        "the TLS file {} does not exist",
                        p.display()
                    )));
                }
            }
            orc_secure::read_private(&f.key, 1 << 20).map(|_| ())?;
        }
        Some(_) => return Err(Error::config("this TLS setting is not known to this orc")),
    }
    Ok(s)
}

/// Hand the database's credentials to its deployment; one that cannot protect its shards
/// is refused unless authentication is off.
fn use_credentials(deployment: &dyn DbDeployment, c: &Credentials) -> Result<()> {
    deployment.use_credentials(c).map_err(|e| match e {
        Error::NotImplemented { what } => Error::config(format!(
            "{what} is not available, so its shards cannot be protected; start it with `--auth none` to run it open to every local user"
        )),
        other => other,
    })
}

fn port_hint(tail: &str, shard: &ShardRecord) -> String {
    if tail.contains("Address already in use") {
        format!(
            "; port {} is already in use on {}: pick another with --port or stop what holds it",
            shard.address.port, shard.address.host
        )
    } else {
        String::new()
    }
}
