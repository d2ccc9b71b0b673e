//! Helpers for orc's integration tests: locating the built binaries and plugins,
//! isolated state directories that stop whatever they recorded when dropped, and small
//! Redis helpers.
//!
//! ```
//! let state = orc_tests::State::new();
//! assert!(state.path().exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

pub mod models;
pub mod shard;
pub mod writers;

pub use orc_launcher_kit::testing::{conformance, pid_gone, wait_for, wait_terminal};

/// The scheduler simulator of the launcher kit, installed once under the target directory.
pub fn sim() -> orc_launcher_kit::testing::sim::Simulator {
    orc_launcher_kit::testing::sim::Simulator::install(&target_dir().join("orc-sim"))
        .expect("installing the scheduler simulator")
}

// Linked so that their `inventory` registrations exist in the test binaries.
use orc_db_redis as _;
use orc_launcher_cobalt as _;
use orc_launcher_local as _;
use orc_launcher_lsf as _;
use orc_launcher_pbs as _;
use orc_launcher_slurm as _;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use orc_host::PluginHost;
use orc_orchestrator::Orchestrator;

/// The cargo target profile directory the tests were built into (`target/debug`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap().to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

fn built(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        p.display()
    );
    p
}

/// The `orc` binary.
pub fn orc_bin() -> PathBuf {
    built("orc")
}

/// A shared library built by the workspace, e.g. `plugin_file("orc_plugin_db_redis")`.
pub fn plugin_file(lib: &str) -> PathBuf {
    built(&format!("lib{lib}.so"))
}

/// A host with the statically linked local launcher and Redis deployments.
pub fn static_host() -> PluginHost {
    PluginHost::with_static()
}

/// An isolated state directory. Dropping it stops every orchestrator recorded in it, so
/// a failing test leaves no `redis-server` behind.
pub struct State {
    dir: tempfile::TempDir,
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("orc-test-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Run the `orc` binary with this state directory and no inherited plugin path.
    pub fn orc(&self, args: &[&str]) -> Output {
        self.orc_cmd(args).output().unwrap()
    }

    /// Send one command to shard `addr` of database `db` as its admin user (as orc does).
    pub fn admin_cmd<T: redis::FromRedisValue>(
        &self,
        db: &str,
        addr: &str,
        args: &[&str],
    ) -> redis::RedisResult<T> {
        let (user, secret) = admin_login(self.path(), db);
        let client = redis::Client::open(format!("redis://{addr}/"))?;
        let mut con = client.get_connection_with_timeout(Duration::from_secs(2))?;
        redis::cmd("AUTH")
            .arg(&user)
            .arg(&secret)
            .query::<()>(&mut con)?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut con)
    }

    pub fn orc_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(orc_bin());
        c.args(args)
            .env("ORC_STATE_DIR", self.path())
            .env_remove("ORC_PLUGIN_PATH")
            .env_remove("ORC_LOG");
        c
    }
}

impl Drop for State {
    fn drop(&mut self) {
        let host = static_host();
        for path in orc_orchestrator::record::list_records(self.path()) {
            let Ok(rec) = orc_orchestrator::record::OrchestratorRecord::load(&path) else {
                continue;
            };
            let id = rec.settings.db_identifier.clone();
            let orc = Orchestrator::connect(&host, self.path(), &id).or_else(|_| {
                // A launcher the host does not know (a test's own launcher object): its
                // steps here are local processes, which the local launcher can stop.
                Orchestrator::connect_with(
                    self.path(),
                    &id,
                    Box::new(orc_launcher_local::LocalLauncher::new()),
                    host.deployment(&rec.deployment)?,
                )
            });
            if let Ok(orc) = orc {
                let _ = orc.stop();
            }
        }
    }
}

/// The admin user and secret of database `db` under `state_dir`.
pub fn admin_login(state_dir: &Path, db: &str) -> (String, String) {
    let file = state_dir
        .join(db)
        .join(orc_orchestrator::secrets::SECRET_FILE);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    (
        v["admin_user"].as_str().unwrap().to_string(),
        v["admin_secret"].as_str().unwrap().to_string(),
    )
}

/// Text of an output stream.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Send one command to `addr` (`host:port`) and return the reply.
pub fn redis_cmd<T: redis::FromRedisValue>(addr: &str, args: &[&str]) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(2))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut con)
}

/// Whether something accepts TCP connections at `addr`.
pub fn listening(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)).is_ok()
}

/// The process ids of `orc`'s shards (local steps).
pub fn shard_pids(orc: &Orchestrator) -> Vec<u32> {
    orc.record()
        .shards
        .iter()
        .map(|s| step_pid(&s.step.0))
        .collect()
}

/// The pid part of a local step id (`<pid>@<start>`).
pub fn step_pid(step: &str) -> u32 {
    step.split('@').next().unwrap().parse().unwrap()
}

/// Settings for a test database on free ports in `state`.
pub fn settings(id: &str, shards: usize) -> orc_core::OrchestratorSettings {
    let mut s = orc_core::OrchestratorSettings::with_shards(shards);
    s.db_identifier = id.into();
    s.port = 0;
    s.startup_timeout_secs = 30.0;
    s
}

/// Launch through `host` into `state`.
pub fn launch(
    host: &PluginHost,
    state: &State,
    s: orc_core::OrchestratorSettings,
) -> orc_core::Result<Orchestrator> {
    orc_orchestrator::Orchestrator::launch_with(
        host,
        s,
        orc_orchestrator::LaunchOptions {
            state_dir: state.path().to_path_buf(),
            progress: &mut |_| {},
            abort: None,
        },
    )
}

/// Every shard process of `orc` is gone and nothing listens on its ports.
pub fn assert_all_gone(pids: &[u32], addrs: &[String]) {
    for pid in pids {
        assert!(
            wait_for(Duration::from_secs(10), || pid_gone(*pid)),
            "process {pid} is still running"
        );
    }
    for a in addrs {
        assert!(!listening(a), "something still listens on {a}");
    }
}

/// Settings for a test database with the orc-ai module loaded.
pub fn ai_settings(
    id: &str,
    shards: usize,
    module_args: &[&str],
) -> orc_core::OrchestratorSettings {
    let mut s = settings(id, shards);
    s.module = Some(orc_core::ModuleSpec {
        path: plugin_file("orc_ai"),
        args: module_args.iter().map(|a| a.to_string()).collect(),
    });
    s
}

/// A database of `shards` shards with orc-ai loaded with `module_args`, launched locally
/// into `state`.
pub fn start_ai(state: &State, id: &str, shards: usize, module_args: &[&str]) -> Orchestrator {
    launch(&static_host(), state, ai_settings(id, shards, module_args)).expect("launch with orc-ai")
}

/// The text of `INFO <section>` from the server behind `con`.
pub fn info_section(con: &mut redis::Connection, section: &str) -> String {
    redis::cmd("INFO")
        .arg(section)
        .query::<String>(con)
        .unwrap_or_else(|e| panic!("INFO {section}: {e}"))
}

/// A model or data fixture under `tests/data`.
pub fn data_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(rel)
}

/// A connection to `addr`.
pub fn connect(addr: &str) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap()
}

/// A connection to shard `addr` of database `db` under `state_dir`, as its admin user.
pub fn admin_connect(state_dir: &Path, db: &str, addr: &str) -> redis::Connection {
    let mut con = connect(addr);
    let (user, secret) = admin_login(state_dir, db);
    redis::cmd("AUTH")
        .arg(&user)
        .arg(&secret)
        .query::<()>(&mut con)
        .unwrap();
    con
}

/// Run a command built from byte-string arguments.
pub fn cmd(con: &mut redis::Connection, args: &[&[u8]]) -> redis::RedisResult<redis::Value> {
    let mut c = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
}

/// The text of an error reply as a client reads it (`ERR ...`, `WRONGTYPE ...`).
pub fn err_text(r: redis::RedisResult<redis::Value>) -> String {
    let e = r.expect_err("expected an error reply");
    // redis-rs splits the code from the detail; put them back together.
    match (e.code(), e.detail()) {
        (Some(c), Some(d)) => format!("{c} {d}"),
        (Some(c), None) => c.to_string(),
        _ => e.to_string(),
    }
}

/// Run a command written as one line of words (no binary or empty arguments).
pub fn line(con: &mut redis::Connection, words: &str) -> redis::RedisResult<redis::Value> {
    let args: Vec<&[u8]> = words.split_whitespace().map(str::as_bytes).collect();
    cmd(con, &args)
}

/// The bytes of a bulk or simple string reply.
pub fn bulk(v: &redis::Value) -> Vec<u8> {
    match v {
        redis::Value::BulkString(b) => b.clone(),
        redis::Value::SimpleString(s) => s.clone().into_bytes(),
        other => panic!("not a string: {other:?}"),
    }
}

/// The items of an array reply.
pub fn array(v: redis::Value) -> Vec<redis::Value> {
    match v {
        redis::Value::Array(a) => a,
        other => panic!("not an array: {other:?}"),
    }
}

/// Store `tests/data/models/linear.onnx` (`y = x·W + b`, 3 inputs, 2 outputs) as the ONNX
/// model `key`, tagged `v1`.
pub fn store_linear(con: &mut redis::Connection, key: &str) {
    let blob = std::fs::read(data_file("models/linear.onnx")).unwrap();
    let r = cmd(
        con,
        &[
            b"AI.MODELSTORE",
            key.as_bytes(),
            b"ONNX",
            b"CPU",
            b"TAG",
            b"v1",
            b"BLOB",
            &blob,
        ],
    )
    .unwrap();
    assert_eq!(r, redis::Value::Okay);
}

/// `AI.SCRIPTSET key CPU SOURCE src`.
pub fn scriptset(
    con: &mut redis::Connection,
    key: &str,
    src: &str,
) -> redis::RedisResult<redis::Value> {
    cmd(
        con,
        &[
            b"AI.SCRIPTSET",
            key.as_bytes(),
            b"CPU",
            b"SOURCE",
            src.as_bytes(),
        ],
    )
}

/// Little-endian bytes of `f32` values.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `f32` values from little-endian bytes.
pub fn f32_from(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The venv `scripts/ensure-deps` makes (`$ORC_VENV`, else `~/.cache/orc/venv`).
pub fn venv() -> PathBuf {
    std::env::var_os("ORC_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                });
            cache.join("orc/venv")
        })
}

/// The Python with the real SmartRedis client (`$ORC_PYTHON`, else the venv that
/// `scripts/ensure-deps` makes).
pub fn smartredis_python() -> PathBuf {
    if let Some(p) = std::env::var_os("ORC_PYTHON") {
        return PathBuf::from(p);
    }
    let py = venv().join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run ./scripts/ensure-deps (it installs smartredis==0.6.1)",
        py.display()
    );
    py
}

/// The ONNX Runtime library of the `onnxruntime` package `scripts/ensure-deps` installs in
/// the venv (`$ORT_DYLIB_PATH` when set).
pub fn onnxruntime_lib() -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let lib = venv().join("lib");
    let found = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|py| py.path().join("site-packages/onnxruntime/capi"))
        .flat_map(|capi| std::fs::read_dir(capi).into_iter().flatten().flatten())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so."))
        });
    found.unwrap_or_else(|| {
        panic!(
            "no onnxruntime package in {}: run ./scripts/ensure-deps (it installs onnxruntime)",
            lib.display()
        )
    })
}

/// A first port `p` such that `p..p + n` and their cluster bus ports (`+ 10000`) are free on
/// loopback: workload-manager launchers give shards on one host consecutive ports and
/// cannot pick free ones on a remote node, so tests on a single-node scheduler choose. The
/// ports come from orc-net, below the kernel's ephemeral range, from the same registry the
/// orchestrator picks free ports from in this process, so no two tests get the same ones.
pub fn free_port_range(n: u16) -> u16 {
    orc_net::free_port_block(&[std::net::IpAddr::from([127, 0, 0, 1])], n, &[10000])
        .expect("a free port range")
}

/// A launcher crate built outside the workspace, as a site admin builds one:
/// `plugins/<dir>` compiled by its own `cargo build` into a target directory beside ours.
/// Returns a fresh directory holding only its `lib<lib>.so`, for `$ORC_PLUGIN_PATH`.
pub fn site_plugin(dir: &str, lib: &str) -> tempfile::TempDir {
    external_plugin(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plugins")
            .join(dir),
        lib,
    )
}

/// Build the plugin crate at `crate_dir` (a crate of its own, outside the workspace, with its
/// own lock file) and copy `lib<lib>.so` into a fresh directory for `$ORC_PLUGIN_PATH`.
pub fn external_plugin(crate_dir: &Path, lib: &str) -> tempfile::TempDir {
    external_plugin_with(crate_dir, lib, &[])
}

/// [`external_plugin`] with cargo `features` enabled (built in a target directory of their
/// own, so that builds with other features do not replace it).
pub fn external_plugin_with(crate_dir: &Path, lib: &str, features: &[&str]) -> tempfile::TempDir {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let manifest = crate_dir.join("Cargo.toml");
    let target = if features.is_empty() {
        target_dir().join("../site-plugins")
    } else {
        target_dir().join(format!("../site-plugins-{}", features.join("-")))
    };
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--offline",
            "--locked",
            "--quiet",
            "--features",
            &features.join(","),
            "--manifest-path",
        ])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building {}: {}",
        manifest.display(),
        text(&out.stderr)
    );
    let file = format!("lib{lib}.so");
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(target.join("debug").join(&file), plugins.path().join(&file)).unwrap();
    plugins
}

/// Store 20 tensors through a cluster client on `addrs` (keys hashed across every shard)
/// and read each back: the database is a working cluster.
pub fn assert_cluster_holds_data(addrs: &[String]) {
    use orc_client::MemoryLayout::RowMajor;
    let a: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let mut c = orc_client::Client::new(orc_client::Config::new(&a, true).unwrap()).unwrap();
    for i in 0..20 {
        c.put_tensor_slice(&format!("t{i}"), &[i as f32, 2.0], &[2], RowMajor)
            .unwrap();
    }
    for i in 0..20 {
        let t = c.get_tensor(&format!("t{i}")).unwrap();
        assert_eq!(t.to_vec::<f32>(RowMajor).unwrap(), [i as f32, 2.0]);
    }
}

/// The JSON `orc db start --json` printed, once the command has succeeded.
pub fn start_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "orc db start: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The strings of `orc db start --json` output: each shard's `step` id, or `addresses`.
pub fn json_strings(v: &serde_json::Value, what: &str) -> Vec<String> {
    let list = if what == "step" {
        &v["shards"]
    } else {
        &v[what]
    };
    list.as_array()
        .unwrap_or_else(|| panic!("no {what} in {v}"))
        .iter()
        .map(|x| {
            let x = if what == "step" { &x["step"] } else { x };
            x.as_str().unwrap().to_string()
        })
        .collect()
}

/// The backends the shard behind `con` has loaded (`AI.CONFIG GET BACKENDS`: `NAME runtime
/// path` each).
pub fn loaded_backends(con: &mut redis::Connection) -> Vec<String> {
    array(line(con, "AI.CONFIG GET BACKENDS").unwrap())
        .iter()
        .map(|b| String::from_utf8(bulk(b)).unwrap())
        .collect()
}

/// Protobuf bytes: field `n`, length-delimited, holding `body` (for hand-made ONNX and
/// TensorFlow models).
pub fn proto_field(n: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![n << 3 | 2];
    let mut len = body.len();
    while len >= 0x80 {
        v.push((len & 0x7f) as u8 | 0x80);
        len >>= 7;
    }
    v.push(len as u8);
    v.extend_from_slice(body);
    v
}
