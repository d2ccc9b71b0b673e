//! `orc._orc`: the native part of the `orc` Python package. It starts, reconnects to,
//! watches and stops orchestrators through `orc-orchestrator`, and launches, watches and
//! cancels entities through orc's launchers; the Python package builds SmartSim's
//! `Experiment` API on top. Everything crosses as JSON text or plain Python values, every
//! error as `orc.OrcError` with orc's own message, and long calls release the GIL and stop
//! cleanly on Ctrl-C.
//!
//! # Example
//!
//! ```python
//! from orc import _orc
//! record = _orc.start_database('{"shards": 1, "port": 0}', "/tmp/state")
//! _orc.stop_database("/tmp/state", "orchestrator")
//! ```

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use orc_core::{OrchestratorSettings, StepId};
use orc_host::PluginHost;
use orc_orchestrator::{LaunchOptions, Orchestrator};
use pyo3::{exceptions::PyException, prelude::*};

// Their launchers and deployments register themselves when linked.
use orc_db_redis as _;
use orc_launcher_cobalt as _;
use orc_launcher_local as _;
use orc_launcher_lsf as _;
use orc_launcher_pbs as _;
use orc_launcher_slurm as _;

pyo3::create_exception!(_orc, OrcError, PyException, "An error orc reported.");

fn err(e: impl std::fmt::Display) -> PyErr {
    OrcError::new_err(e.to_string())
}

/// The plugin host, found once per process (linked launchers and deployments, and site
/// plugins from `ORC_PLUGIN_PATH`).
fn host() -> &'static PluginHost {
    static HOST: std::sync::OnceLock<PluginHost> = std::sync::OnceLock::new();
    HOST.get_or_init(PluginHost::discover)
}

/// Run `work` on a thread of its own without the GIL; a Ctrl-C meanwhile sets the flag it
/// is given, waits for it to finish (it stops what it started) and raises
/// `KeyboardInterrupt`.
fn interruptible<T: Send + 'static>(
    py: Python<'_>,
    work: impl FnOnce(Arc<AtomicBool>) -> Result<T, String> + Send + 'static,
) -> PyResult<T> {
    let abort = Arc::new(AtomicBool::new(false));
    let flag = abort.clone();
    let handle = std::thread::spawn(move || work(flag));
    loop {
        if handle.is_finished() {
            break;
        }
        if let Err(e) = py.check_signals() {
            abort.store(true, Ordering::SeqCst);
            let _ = py.detach(|| handle.join());
            return Err(e);
        }
        py.detach(|| std::thread::sleep(Duration::from_millis(20)));
    }
    match handle.join() {
        Ok(r) => r.map_err(OrcError::new_err),
        Err(_) => Err(OrcError::new_err("orc panicked; this is a bug")),
    }
}

/// Merge JSON `patch` into `base` (objects key by key, anything else replaced).
fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// Orchestrator settings from a JSON object of overrides; `redis_config` (an object of
/// `redis.conf` directives) is applied through orc's own checks.
fn settings_from(json: &str) -> PyResult<OrchestratorSettings> {
    let mut patch: serde_json::Value = serde_json::from_str(json).map_err(err)?;
    let redis_config = patch
        .as_object_mut()
        .and_then(|o| o.remove("redis_config"))
        .unwrap_or_default();
    let mut base = serde_json::to_value(OrchestratorSettings::default()).map_err(err)?;
    merge(&mut base, patch);
    let mut s: OrchestratorSettings =
        serde_json::from_value(base).map_err(|e| err(format!("database settings: {e}")))?;
    if let serde_json::Value::Object(conf) = redis_config {
        for (k, v) in conf {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            s.redis.apply(&k, &v).map_err(err)?;
        }
    }
    Ok(s)
}

/// The launcher `auto` picks here (`batch`: for a batch job outside any allocation).
#[pyfunction]
fn detect_launcher(batch: bool) -> String {
    orc_host::detect_in(host(), batch)
}

/// Start a database with settings (a JSON object of overrides of orc's defaults) under
/// `state_dir`, wait until it is verified, and return its reconnect record (JSON).
#[pyfunction]
fn start_database(py: Python<'_>, settings: &str, state_dir: &str) -> PyResult<String> {
    let settings = settings_from(settings)?;
    let state_dir = PathBuf::from(state_dir);
    interruptible(py, move |abort| {
        let orc = Orchestrator::launch_with(
            host(),
            settings,
            LaunchOptions {
                state_dir,
                progress: &mut |_| {},
                abort: Some(abort),
            },
        )
        .map_err(|e| e.to_string())?;
        serde_json::to_string(orc.record()).map_err(|e| e.to_string())
    })
}

fn connect(state_dir: &str, db: &str) -> PyResult<Orchestrator> {
    Orchestrator::connect(host(), std::path::Path::new(state_dir), db).map_err(err)
}

/// The reconnect record (JSON) of database `db` under `state_dir`, once it is checked.
#[pyfunction]
fn database_record(state_dir: &str, db: &str) -> PyResult<String> {
    serde_json::to_string(connect(state_dir, db)?.record()).map_err(err)
}

/// The status of database `db` (JSON: state, launcher steps, health of every shard).
#[pyfunction]
fn database_status(py: Python<'_>, state_dir: &str, db: &str) -> PyResult<String> {
    let orc = connect(state_dir, db)?;
    py.detach(|| orc.status().map_err(|e| e.to_string()))
        .map_err(OrcError::new_err)
        .and_then(|s| serde_json::to_string(&s).map_err(err))
}

/// The client environment of database `db` (`SSDB`, `SR_DB_TYPE`, ...), as pairs.
#[pyfunction]
fn database_env(state_dir: &str, db: &str) -> PyResult<Vec<(String, String)>> {
    Ok(connect(state_dir, db)?.client_env())
}

/// Change a Redis setting on every shard now, and keep it for restarts.
#[pyfunction]
fn database_config_set(state_dir: &str, db: &str, key: &str, value: &str) -> PyResult<()> {
    connect(state_dir, db)?.config_set(key, value).map_err(err)
}

/// Load objects (a JSON list of orc `DbObject`s: models, scripts, functions) into every
/// shard of running database `db`, as SmartRedis's `set_model` / `set_script` would.
#[pyfunction]
fn database_load(py: Python<'_>, state_dir: &str, db: &str, objects: &str) -> PyResult<()> {
    let objects: Vec<orc_core::DbObject> =
        serde_json::from_str(objects).map_err(|e| err(format!("objects: {e}")))?;
    let orc = connect(state_dir, db)?;
    py.detach(|| orc.load(&objects).map_err(|e| e.to_string()))
        .map_err(OrcError::new_err)
}

/// Check a colocated run's spec (JSON) and write it where its ranks read it (private);
/// returns the path. The ranks run `orc colocated-rank PATH -- APP`.
#[pyfunction]
fn write_colocated_spec(spec: &str, path: &str) -> PyResult<String> {
    // The node databases' settings go through the same checks as a standard database's.
    let mut v: serde_json::Value = serde_json::from_str(spec).map_err(err)?;
    let settings = v
        .as_object_mut()
        .and_then(|o| o.remove("settings"))
        .unwrap_or_else(|| serde_json::json!({}));
    let settings = serde_json::to_value(settings_from(&settings.to_string())?).map_err(err)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("settings".into(), settings);
    }
    let spec: orc_orchestrator::colocated::ColocatedSpec =
        serde_json::from_value(v).map_err(|e| err(format!("colocated settings: {e}")))?;
    spec.validate().map_err(err)?;
    let mut checked = spec.clone();
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    for o in &mut checked.settings.preload {
        o.validate(&here).map_err(err)?;
    }
    checked.write(std::path::Path::new(path)).map_err(err)?;
    Ok(path.to_string())
}

/// A fresh id for a colocated run.
#[pyfunction]
fn new_run_id() -> String {
    orc_orchestrator::colocated::new_run_id()
}

/// Stop database `db`: SHUTDOWN every shard, then cancel what is left. JSON: how each
/// shard ended.
#[pyfunction]
fn stop_database(py: Python<'_>, state_dir: &str, db: &str) -> PyResult<String> {
    let orc = connect(state_dir, db)?;
    py.detach(|| orc.stop().map_err(|e| e.to_string()))
        .map_err(OrcError::new_err)
        .and_then(|s| serde_json::to_string(&s).map_err(err))
}

/// One of orc's launchers (by name: local, slurm, pbs, lsf, cobalt, a site plugin's), which
/// launches, watches and cancels steps. Keep one per experiment: some launchers remember
/// the processes they started.
#[pyclass(frozen, module = "orc._orc")]
struct Launcher {
    inner: Box<dyn orc_core::Launcher>,
}

#[pymethods]
impl Launcher {
    #[new]
    fn new(name: &str, state_dir: &str) -> PyResult<Self> {
        let inner = host().launcher(name).map_err(err)?;
        inner
            .use_state_dir(std::path::Path::new(state_dir))
            .map_err(err)?;
        Ok(Self { inner })
    }

    /// The launcher's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// Launch a step (a JSON `LaunchStep`); its id.
    fn launch(&self, py: Python<'_>, step: &str) -> PyResult<String> {
        let step: orc_core::LaunchStep =
            serde_json::from_str(step).map_err(|e| err(format!("step: {e}")))?;
        py.detach(|| self.inner.launch(&step).map_err(|e| e.to_string()))
            .map(|id| id.0)
            .map_err(OrcError::new_err)
    }

    /// The status of several steps (JSON list of `StepStatus`).
    fn status(&self, py: Python<'_>, ids: Vec<String>) -> PyResult<String> {
        let ids: Vec<StepId> = ids.into_iter().map(StepId).collect();
        py.detach(|| self.inner.status(&ids).map_err(|e| e.to_string()))
            .map_err(OrcError::new_err)
            .and_then(|s| serde_json::to_string(&s).map_err(err))
    }

    /// Stop a step; its final status (JSON).
    fn cancel(&self, py: Python<'_>, id: String) -> PyResult<String> {
        py.detach(|| self.inner.cancel(&StepId(id)).map_err(|e| e.to_string()))
            .map_err(OrcError::new_err)
            .and_then(|s| serde_json::to_string(&s).map_err(err))
    }
}

/// The native module.
#[pymodule]
fn _orc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("OrcError", m.py().get_type::<OrcError>())?;
    m.add_function(wrap_pyfunction!(detect_launcher, m)?)?;
    m.add_function(wrap_pyfunction!(start_database, m)?)?;
    m.add_function(wrap_pyfunction!(database_record, m)?)?;
    m.add_function(wrap_pyfunction!(database_status, m)?)?;
    m.add_function(wrap_pyfunction!(database_env, m)?)?;
    m.add_function(wrap_pyfunction!(database_config_set, m)?)?;
    m.add_function(wrap_pyfunction!(stop_database, m)?)?;
    m.add_function(wrap_pyfunction!(database_load, m)?)?;
    m.add_function(wrap_pyfunction!(write_colocated_spec, m)?)?;
    m.add_function(wrap_pyfunction!(new_run_id, m)?)?;
    m.add_class::<Launcher>()?;
    Ok(())
}
