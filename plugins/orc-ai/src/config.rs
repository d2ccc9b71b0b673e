//! Module configuration: load-time arguments, the limits that bound every request, and
//! `AI.CONFIG`.

use std::path::PathBuf;

use crate::{
    args::{Reply, is, text, uint},
    model::Backend,
};

/// Default model chunk size: 511 MiB, as RedisAI.
pub const DEFAULT_CHUNK_SIZE: u64 = 511 * 1024 * 1024;

/// Default `INLINE_RUN_MAX_US`: runs known to take at most half a millisecond may run on
/// the main thread (about what a `GET` of a 4 MiB tensor holds it).
pub const DEFAULT_INLINE_RUN_MAX_US: u64 = 500;

/// The largest `INLINE_RUN_MAX_US` accepted (10 ms: Redis's own slow-log threshold).
pub const MAX_INLINE_RUN_MAX_US: u64 = 10_000;

/// Default `WORKER_SPIN_US`: an idle worker looks for the next request this long before it
/// sleeps, about the time a client takes to send its next one after a reply (measured: 50
/// µs catches none, 100 some, 200 nearly all on loopback).
pub const DEFAULT_WORKER_SPIN_US: u64 = 200;

/// The largest `WORKER_SPIN_US` accepted.
pub const MAX_WORKER_SPIN_US: u64 = 10_000;

/// Bounds on what one request may cost the server. Each is a module argument; the defaults
/// are documented in the README and surfaced as `orc db start` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `MAX_TENSOR_BYTES`: the largest tensor, in bytes, that a request may create: set by a
    /// client (BLOB, VALUES or zero-filled), produced by a model or script, or read back.
    pub max_tensor_bytes: u64,
    /// `MAX_VALUES_REPLY`: the most elements an `AI.TENSORGET ... VALUES` reply may carry
    /// (each becomes a RESP item of up to ~25 bytes; BLOB has no such bound).
    pub max_values_reply: u64,
    /// `MAX_DAG_SIZE`: the most operations plus LOAD and PERSIST keys in one DAG.
    pub max_dag_size: u64,
    /// `MAX_DEVICE_QUEUES`: the most device queues (each with its worker threads) at once.
    pub max_device_queues: u64,
    /// `MODEL_CHUNK_SIZE_MIN`: the smallest `MODEL_CHUNK_SIZE` anyone may set.
    pub min_chunk_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tensor_bytes: 512 * 1024 * 1024,
            max_values_reply: 1 << 20,
            max_dag_size: 1024,
            max_device_queues: 16,
            min_chunk_size: 64 * 1024,
        }
    }
}

/// Which runtime runs a backend's models (`ONNX_RUNTIME`, `TF_RUNTIME`, `TFLITE_RUNTIME`):
/// the runtime's own library (ONNX Runtime, TensorFlow, LiteRT) or tract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeChoice {
    /// The runtime's own library when its plugin and library are present, else tract.
    #[default]
    Auto,
    /// The runtime's own library only (an error where it cannot run).
    Native,
    /// tract only.
    Tract,
}

impl RuntimeChoice {
    /// `auto`, `tract` or the native runtime's `name` (any case).
    fn parse(v: &[u8], name: &str) -> Result<Self, ()> {
        if is(v, "auto") {
            Ok(Self::Auto)
        } else if is(v, name) {
            Ok(Self::Native)
        } else if is(v, "tract") {
            Ok(Self::Tract)
        } else {
            Err(())
        }
    }
}

/// The ONNX Runtime backend plugin's file name (the tract one is [`Backend::file_name`]).
pub const ONNXRUNTIME_BACKEND_FILE: &str = "liborc_ai_backend_onnxruntime.so";

/// The LiteRT (TFLITE) backend plugin's file name.
pub const LITERT_BACKEND_FILE: &str = "liborc_ai_backend_litert.so";

/// The TensorFlow backend plugin's file name (the tract one is [`Backend::file_name`]).
pub const TENSORFLOW_BACKEND_FILE: &str = "liborc_ai_backend_tensorflow.so";

/// The module's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where backend plugins are looked for (fixed at load unless
    /// [`Config::allow_backend_paths`]).
    pub backends_path: PathBuf,
    /// Worker threads per device queue.
    pub threads_per_queue: u64,
    /// Threads between operators (0: runtime default).
    pub inter_op_parallelism: u64,
    /// Threads inside operators (0: runtime default).
    pub intra_op_parallelism: u64,
    /// Chunk size for MODELGET, RDB and AOF.
    pub model_chunk_size: u64,
    /// `INLINE_RUN_MAX_US`: model and script runs known to take at most this many µs run
    /// on Redis's main thread while no queue has work ([`crate::exec::inline`]); 0: never.
    pub inline_run_max_us: u64,
    /// `WORKER_SPIN_US`: a worker whose queue is empty looks for new work this many µs
    /// (yielding the CPU between looks) before it sleeps, so that a client's next request
    /// does not wait for a sleeping thread to be woken; 0: sleep at once.
    pub worker_spin_us: u64,
    /// A run (model, script or DAG) still going after this many ms is interrupted and its
    /// clients answered with an error.
    pub model_execution_timeout: u64,
    /// Backend memory limit in MB (accepted for compatibility, not enforced).
    pub backend_memory_limit: u64,
    /// Per-request bounds.
    pub limits: Limits,
    /// `ALLOW_BACKEND_PATHS yes`: clients may change BACKENDSPATH and load backends from
    /// any path at run time (off: only files by name from the BACKENDSPATH fixed at load).
    pub allow_backend_paths: bool,
    /// `TORCH_ALLOW_UNSAFE_OPS yes`: TorchScript that reads or writes files, uses the
    /// network or starts work outside the request is accepted (for sites that trust every
    /// client).
    pub torch_allow_unsafe_ops: bool,
    /// Backends to load at start, with explicit paths when given.
    pub preload: Vec<(Backend, Option<String>)>,
    /// `BACKENDS_WARMUP yes|no`: load every backend present in BACKENDSPATH in the
    /// background when the module loads, so the first request does not pay for it.
    pub warm_up: bool,
    /// `ONNX_RUNTIME auto|onnxruntime|tract`.
    pub onnx_runtime: RuntimeChoice,
    /// `ONNXRUNTIME_LIB path`: the ONNX Runtime library (else `$ORT_DYLIB_PATH`, else
    /// `libonnxruntime.so*` in BACKENDSPATH).
    pub onnxruntime_lib: Option<PathBuf>,
    /// `TF_RUNTIME auto|tensorflow|tract`.
    pub tf_runtime: RuntimeChoice,
    /// `TENSORFLOW_LIB path`: TensorFlow's C API library (else `$ORC_TENSORFLOW_LIB`, else
    /// `libtensorflow_cc.so*` or `libtensorflow.so*` in BACKENDSPATH).
    pub tensorflow_lib: Option<PathBuf>,
    /// `TFLITE_RUNTIME auto|litert|tract`.
    pub tflite_runtime: RuntimeChoice,
    /// `LITERT_LIB path`: LiteRT's library (else `$ORC_LITERT_LIB`, else `libLiteRt.so` in
    /// BACKENDSPATH).
    pub litert_lib: Option<PathBuf>,
    /// `ADMIN_USER name`: only this ACL user may load backends, move BACKENDSPATH or use
    /// `CONFIG` without limits ([`crate::guard`]); `None`: nothing is restricted.
    pub admin_user: Option<String>,
}

/// The keys of `KEY VALUE` module arguments.
const KEYS: [&str; 25] = [
    "ADMIN_USER",
    "BACKENDSPATH",
    "THREADS_PER_QUEUE",
    "INTER_OP_PARALLELISM",
    "INTRA_OP_PARALLELISM",
    "MODEL_CHUNK_SIZE",
    "INLINE_RUN_MAX_US",
    "WORKER_SPIN_US",
    "MODEL_EXECUTION_TIMEOUT",
    "BACKEND_MEMORY_LIMIT",
    "MAX_TENSOR_BYTES",
    "MAX_VALUES_REPLY",
    "MAX_DAG_SIZE",
    "MAX_DEVICE_QUEUES",
    "MODEL_CHUNK_SIZE_MIN",
    "ALLOW_BACKEND_PATHS",
    "TORCH_ALLOW_UNSAFE_OPS",
    "BACKENDS_WARMUP",
    "ONNX_RUNTIME",
    "ONNXRUNTIME_LIB",
    "TF_RUNTIME",
    "TENSORFLOW_LIB",
    "TFLITE_RUNTIME",
    "LITERT_LIB",
    "ALLOW_UNSAFE_OPS",
];

impl Config {
    /// Defaults, with backends next to the module file.
    pub fn new(module_dir: PathBuf) -> Self {
        Config {
            backends_path: module_dir,
            threads_per_queue: 1,
            inter_op_parallelism: 0,
            intra_op_parallelism: 0,
            model_chunk_size: DEFAULT_CHUNK_SIZE,
            inline_run_max_us: DEFAULT_INLINE_RUN_MAX_US,
            worker_spin_us: DEFAULT_WORKER_SPIN_US,
            model_execution_timeout: 5000,
            backend_memory_limit: 0,
            limits: Limits::default(),
            allow_backend_paths: false,
            torch_allow_unsafe_ops: false,
            preload: Vec::new(),
            warm_up: true,
            onnx_runtime: RuntimeChoice::Auto,
            onnxruntime_lib: None,
            tf_runtime: RuntimeChoice::Auto,
            tensorflow_lib: None,
            tflite_runtime: RuntimeChoice::Auto,
            litert_lib: None,
            admin_user: None,
        }
    }

    /// Apply load-time `KEY VALUE` arguments (BACKENDSPATH first, then in order).
    /// A backend name alone (`ONNX`) or with a path (`ONNX path`) is preloaded.
    pub fn apply_args(&mut self, args: &[&[u8]]) -> Result<(), Reply> {
        let mut pairs = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let k = args[i];
            if let Some(b) = Backend::parse(k) {
                // `ONNX` alone, or `ONNX <path>` when the next word is not a key.
                let next = args
                    .get(i + 1)
                    .filter(|n| Backend::parse(n).is_none() && !is_key(n));
                self.preload.push((b, next.map(|n| text(n))));
                i += if next.is_some() { 2 } else { 1 };
                continue;
            }
            let v = args.get(i + 1).ok_or_else(|| {
                Reply(format!(
                    "ERR error processing argument: {} (missing value)",
                    text(k)
                ))
            })?;
            pairs.push((k, *v));
            i += 2;
        }
        pairs.sort_by_key(|(k, _)| !is(k, "BACKENDSPATH"));
        for (k, v) in pairs {
            self.set(k, v).map_err(|_| {
                Reply(format!(
                    "ERR error processing argument: {} {}",
                    text(k),
                    text(v)
                ))
            })?;
        }
        if self.model_chunk_size < self.limits.min_chunk_size {
            return Err(Reply(format!(
                "ERR error processing argument: MODEL_CHUNK_SIZE {} is below MODEL_CHUNK_SIZE_MIN {}",
                self.model_chunk_size, self.limits.min_chunk_size
            )));
        }
        Ok(())
    }

    fn set(&mut self, k: &[u8], v: &[u8]) -> Result<(), ()> {
        let pos = || uint(v).filter(|n| *n > 0).ok_or(());
        let yes_no = || {
            if is(v, "yes") {
                Ok(true)
            } else if is(v, "no") {
                Ok(false)
            } else {
                Err(())
            }
        };
        let l = &mut self.limits;
        if is(k, "BACKENDSPATH") {
            self.backends_path = PathBuf::from(text(v));
        } else if is(k, "THREADS_PER_QUEUE") {
            self.threads_per_queue = uint(v).filter(|n| (1..=256).contains(n)).ok_or(())?;
        } else if is(k, "INTER_OP_PARALLELISM") {
            self.inter_op_parallelism = uint(v).filter(|n| *n <= 1024).ok_or(())?;
        } else if is(k, "INTRA_OP_PARALLELISM") {
            self.intra_op_parallelism = uint(v).filter(|n| *n <= 1024).ok_or(())?;
        } else if is(k, "MODEL_CHUNK_SIZE") {
            self.model_chunk_size = pos()?;
        } else if is(k, "WORKER_SPIN_US") {
            self.worker_spin_us = uint(v).filter(|n| *n <= MAX_WORKER_SPIN_US).ok_or(())?;
        } else if is(k, "INLINE_RUN_MAX_US") {
            self.inline_run_max_us = uint(v).filter(|n| *n <= MAX_INLINE_RUN_MAX_US).ok_or(())?;
        } else if is(k, "MODEL_EXECUTION_TIMEOUT") {
            self.model_execution_timeout = uint(v).filter(|n| *n >= 1000).ok_or(())?;
        } else if is(k, "BACKEND_MEMORY_LIMIT") {
            self.backend_memory_limit = pos()?;
        } else if is(k, "MAX_TENSOR_BYTES") {
            l.max_tensor_bytes = pos()?;
        } else if is(k, "MAX_VALUES_REPLY") {
            l.max_values_reply = pos()?;
        } else if is(k, "MAX_DAG_SIZE") {
            l.max_dag_size = pos()?;
        } else if is(k, "MAX_DEVICE_QUEUES") {
            l.max_device_queues = uint(v).filter(|n| (1..=4096).contains(n)).ok_or(())?;
        } else if is(k, "MODEL_CHUNK_SIZE_MIN") {
            l.min_chunk_size = pos()?;
        } else if is(k, "ALLOW_BACKEND_PATHS") {
            self.allow_backend_paths = yes_no()?;
        } else if is(k, "TORCH_ALLOW_UNSAFE_OPS") || is(k, "ALLOW_UNSAFE_OPS") {
            self.torch_allow_unsafe_ops = yes_no()?;
        } else if is(k, "BACKENDS_WARMUP") {
            self.warm_up = yes_no()?;
        } else if is(k, "ONNX_RUNTIME") {
            self.onnx_runtime = RuntimeChoice::parse(v, "onnxruntime")?;
        } else if is(k, "ONNXRUNTIME_LIB") {
            if v.is_empty() {
                return Err(());
            }
            self.onnxruntime_lib = Some(PathBuf::from(text(v)));
        } else if is(k, "TF_RUNTIME") {
            self.tf_runtime = RuntimeChoice::parse(v, "tensorflow")?;
        } else if is(k, "TENSORFLOW_LIB") {
            if v.is_empty() {
                return Err(());
            }
            self.tensorflow_lib = Some(PathBuf::from(text(v)));
        } else if is(k, "TFLITE_RUNTIME") {
            self.tflite_runtime = RuntimeChoice::parse(v, "litert")?;
        } else if is(k, "LITERT_LIB") {
            if v.is_empty() {
                return Err(());
            }
            self.litert_lib = Some(PathBuf::from(text(v)));
        } else if is(k, "ADMIN_USER") {
            let name = text(v);
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return Err(());
            }
            self.admin_user = Some(name);
        } else {
            return Err(());
        }
        Ok(())
    }

    /// The file of a backend preloaded by a module argument (`TORCH [file]`): module
    /// arguments come from whoever starts the server, so any path is taken (relative ones
    /// under BACKENDSPATH).
    pub fn preload_file(&self, b: Backend, explicit: Option<&str>) -> PathBuf {
        match explicit {
            Some(p) if p.starts_with('/') => PathBuf::from(p),
            Some(p) => self.backends_path.join(p),
            None => self.backends_path.join(b.file_name()),
        }
    }

    /// The plugin files that may provide `b` when none is named, in order of preference:
    /// the plugin on the runtime's own library (ONNX Runtime for ONNX, TensorFlow for TF,
    /// LiteRT for TFLITE), then tract, as [`Config::onnx_runtime`], [`Config::tf_runtime`]
    /// and [`Config::tflite_runtime`] allow.
    pub fn default_backend_files(&self, b: Backend) -> Vec<PathBuf> {
        let own = self.backends_path.join(b.file_name());
        let (choice, native) = match b {
            Backend::Onnx => (self.onnx_runtime, ONNXRUNTIME_BACKEND_FILE),
            Backend::Tf => (self.tf_runtime, TENSORFLOW_BACKEND_FILE),
            Backend::TfLite => (self.tflite_runtime, LITERT_BACKEND_FILE),
            Backend::Torch => return vec![own],
        };
        let native = self.backends_path.join(native);
        match choice {
            RuntimeChoice::Auto => vec![native, own],
            RuntimeChoice::Native => vec![native],
            RuntimeChoice::Tract => vec![own],
        }
    }

    /// The ONNX Runtime library to hand the ONNX Runtime backend: [`Config::onnxruntime_lib`]
    /// (which the module fills from `$ORT_DYLIB_PATH` at load when not given), else the
    /// newest `libonnxruntime.so*` in BACKENDSPATH.
    pub fn onnxruntime_library(&self) -> Option<PathBuf> {
        if let Some(p) = &self.onnxruntime_lib {
            return Some(p.clone());
        }
        self.newest_library(&["libonnxruntime"])
    }

    /// The TensorFlow library to hand the TensorFlow backend: [`Config::tensorflow_lib`]
    /// (which the module fills from `$ORC_TENSORFLOW_LIB` at load when not given), else the
    /// newest `libtensorflow_cc.so*` or `libtensorflow.so*` in BACKENDSPATH.
    pub fn tensorflow_library(&self) -> Option<PathBuf> {
        if let Some(p) = &self.tensorflow_lib {
            return Some(p.clone());
        }
        self.newest_library(&["libtensorflow_cc", "libtensorflow"])
    }

    /// The LiteRT library to hand the LiteRT backend: [`Config::litert_lib`] (which the
    /// module fills from `$ORC_LITERT_LIB` at load when not given), else the newest
    /// `libLiteRt.so*` in BACKENDSPATH.
    pub fn litert_library(&self) -> Option<PathBuf> {
        if let Some(p) = &self.litert_lib {
            return Some(p.clone());
        }
        self.newest_library(&["libLiteRt"])
    }

    /// The newest `STEM.so` or `STEM.so.*` in BACKENDSPATH, for any of `stems`.
    fn newest_library(&self, stems: &[&str]) -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.backends_path)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    stems.iter().any(|s| {
                        n.strip_prefix(s)
                            .is_some_and(|r| r == ".so" || r.starts_with(".so."))
                    })
                })
            })
            .collect();
        found.sort_by_key(|p| version_key(p));
        found.pop()
    }

    /// What backend `b` is told when it loads: the runtime library it loads at run time
    /// (ONNX Runtime's for ONNX, TensorFlow's for TF, LiteRT's for TFLITE) and the thread
    /// settings.
    pub fn backend_init(&self, b: Backend) -> orc_ai_backend_abi::BackendInit {
        let library = match b {
            Backend::Onnx => self.onnxruntime_library(),
            Backend::Tf => self.tensorflow_library(),
            Backend::TfLite => self.litert_library(),
            Backend::Torch => None,
        };
        orc_ai_backend_abi::BackendInit {
            runtime_library: library
                .map(|p| p.display().to_string())
                .unwrap_or_default()
                .into(),
            inter_op_threads: u32::try_from(self.inter_op_parallelism).unwrap_or(0),
            intra_op_threads: u32::try_from(self.intra_op_parallelism).unwrap_or(0),
        }
    }

    /// The plugin file for `b`: a bare file name (or the default name) inside
    /// BACKENDSPATH; with [`Config::allow_backend_paths`] also any path (relative ones
    /// under BACKENDSPATH). Refuses names that would leave BACKENDSPATH.
    pub fn backend_file(&self, b: Backend, explicit: Option<&str>) -> Result<PathBuf, String> {
        let Some(p) = explicit else {
            return Ok(self.backends_path.join(b.file_name()));
        };
        if self.allow_backend_paths {
            return Ok(if p.starts_with('/') {
                PathBuf::from(p)
            } else {
                self.backends_path.join(p)
            });
        }
        if p.is_empty() || p.contains('/') || p == "." || p == ".." || p.contains('\0') {
            return Err(format!(
                "backends load by file name from BACKENDSPATH ({}) only; `{p}` is a path (module argument ALLOW_BACKEND_PATHS yes allows paths)",
                self.backends_path.display()
            ));
        }
        Ok(self.backends_path.join(p))
    }
}

/// Sort key of `libonnxruntime.so.1.31.1`: its numeric version parts (none for the bare name).
fn version_key(p: &std::path::Path) -> Vec<u64> {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("libonnxruntime.so."))
        .map(|v| v.split('.').map(|x| x.parse().unwrap_or(0)).collect())
        .unwrap_or_default()
}

fn is_key(a: &[u8]) -> bool {
    KEYS.iter().any(|k| is(a, k))
}

/// A parsed `AI.CONFIG` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigCmd {
    /// `LOADBACKEND <backend> <path>`.
    LoadBackend(Backend, String),
    /// `BACKENDSPATH <path>`.
    BackendsPath(String),
    /// `MODEL_CHUNK_SIZE <n>`.
    ChunkSize(u64),
    /// `GET <name>`.
    Get(String),
}

/// Parse `AI.CONFIG` arguments after the command name.
pub fn parse_config(args: &[&[u8]]) -> Result<ConfigCmd, Reply> {
    let arity = || crate::args::arity("AI.CONFIG");
    let sub = args.first().ok_or_else(arity)?;
    if is(sub, "LOADBACKEND") {
        if args.len() < 3 {
            return Err(arity());
        }
        let b = Backend::parse(args[1]).ok_or_else(|| Reply::new("ERR unsupported backend"))?;
        Ok(ConfigCmd::LoadBackend(b, text(args[2])))
    } else if is(sub, "BACKENDSPATH") {
        Ok(ConfigCmd::BackendsPath(text(args.get(1).ok_or_else(
            || Reply::new("ERR BACKENDSPATH: missing path argument"),
        )?)))
    } else if is(sub, "MODEL_CHUNK_SIZE") {
        let v = args
            .get(1)
            .ok_or_else(|| Reply::new("ERR MODEL_CHUNK_SIZE: missing chunk size"))?;
        Ok(ConfigCmd::ChunkSize(
            uint(v)
                .filter(|n| *n > 0)
                .ok_or_else(|| Reply::new("ERR MODEL_CHUNK_SIZE: invalid chunk size"))?,
        ))
    } else if is(sub, "GET") {
        Ok(ConfigCmd::Get(
            text(args.get(1).ok_or_else(arity)?).to_ascii_uppercase(),
        ))
    } else {
        Err(Reply::new("ERR unsupported subcommand"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(s: &str) -> Vec<&[u8]> {
        s.split(' ')
            .filter(|x| !x.is_empty())
            .map(str::as_bytes)
            .collect()
    }

    #[test]
    fn load_args() {
        let mut c = Config::new("/m".into());
        c.apply_args(&sp(
            "THREADS_PER_QUEUE 4 BACKENDSPATH /b ONNX MODEL_CHUNK_SIZE 1048576 TORCH t.so MAX_DAG_SIZE 7 TORCH_ALLOW_UNSAFE_OPS yes",
        ))
        .unwrap();
        assert_eq!(c.threads_per_queue, 4);
        assert_eq!(c.model_chunk_size, 1 << 20);
        assert_eq!(c.limits.max_dag_size, 7);
        assert!(c.torch_allow_unsafe_ops);
        assert!(!c.allow_backend_paths);
        assert_eq!(c.backends_path, PathBuf::from("/b"));
        assert_eq!(
            c.preload,
            vec![(Backend::Onnx, None), (Backend::Torch, Some("t.so".into()))]
        );
        assert_eq!(
            c.backend_file(Backend::Onnx, None).unwrap(),
            PathBuf::from("/b/liborc_ai_backend_onnx.so")
        );
        assert_eq!(
            c.backend_file(Backend::Torch, Some("t.so")).unwrap(),
            PathBuf::from("/b/t.so")
        );
        let mut c = Config::new("/m".into());
        assert_eq!(
            c.apply_args(&sp("THREADS_PER_QUEUE 0")).unwrap_err().0,
            "ERR error processing argument: THREADS_PER_QUEUE 0"
        );
        assert!(c.apply_args(&sp("NOPE 1")).is_err());
        assert!(c.apply_args(&sp("MODEL_EXECUTION_TIMEOUT 10")).is_err());
        assert!(c.apply_args(&sp("ALLOW_BACKEND_PATHS maybe")).is_err());
        assert_eq!(c.inline_run_max_us, DEFAULT_INLINE_RUN_MAX_US);
        assert_eq!(c.worker_spin_us, DEFAULT_WORKER_SPIN_US);
        c.apply_args(&sp("WORKER_SPIN_US 0")).unwrap();
        assert_eq!(c.worker_spin_us, 0);
        assert!(c.apply_args(&sp("WORKER_SPIN_US 10001")).is_err());
        assert!(c.apply_args(&sp("WORKER_SPIN_US -1")).is_err());
        c.apply_args(&sp("INLINE_RUN_MAX_US 0")).unwrap();
        assert_eq!(c.inline_run_max_us, 0);
        c.apply_args(&sp("INLINE_RUN_MAX_US 10000")).unwrap();
        assert_eq!(c.inline_run_max_us, 10_000);
        assert!(c.apply_args(&sp("INLINE_RUN_MAX_US 10001")).is_err());
        assert!(c.apply_args(&sp("INLINE_RUN_MAX_US -1")).is_err());
        let e = Config::new("/m".into())
            .apply_args(&sp("MODEL_CHUNK_SIZE 10"))
            .unwrap_err();
        assert!(e.0.contains("below MODEL_CHUNK_SIZE_MIN"), "{e}");
        assert!(
            Config::new("/m".into())
                .apply_args(&sp("MODEL_CHUNK_SIZE 10 MODEL_CHUNK_SIZE_MIN 1"))
                .is_ok()
        );
    }

    #[test]
    fn onnx_runtime_choice_and_library() {
        let dir = std::env::temp_dir().join(format!("orc-ai-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = Config::new(dir.clone());
        assert_eq!(
            c.default_backend_files(Backend::Onnx),
            [
                dir.join(ONNXRUNTIME_BACKEND_FILE),
                dir.join("liborc_ai_backend_onnx.so")
            ]
        );
        assert_eq!(
            c.default_backend_files(Backend::Torch),
            [dir.join("liborc_ai_backend_torch.so")]
        );
        c.apply_args(&sp("ONNX_RUNTIME tract BACKENDS_WARMUP no"))
            .unwrap();
        assert_eq!(
            c.default_backend_files(Backend::Onnx),
            [dir.join("liborc_ai_backend_onnx.so")]
        );
        assert!(!c.warm_up);
        c.apply_args(&sp("ONNX_RUNTIME onnxruntime")).unwrap();
        assert_eq!(
            c.default_backend_files(Backend::Onnx),
            [dir.join(ONNXRUNTIME_BACKEND_FILE)]
        );
        assert!(c.apply_args(&sp("ONNX_RUNTIME mxnet")).is_err());
        // The newest library in BACKENDSPATH, unless one is named.
        assert_eq!(c.onnxruntime_library(), None);
        for v in [
            "libonnxruntime.so.1.9.0",
            "libonnxruntime.so.1.20.1",
            "libother.so",
        ] {
            std::fs::write(dir.join(v), b"").unwrap();
        }
        assert_eq!(
            c.onnxruntime_library(),
            Some(dir.join("libonnxruntime.so.1.20.1"))
        );
        c.apply_args(&sp("ONNXRUNTIME_LIB /x/libonnxruntime.so"))
            .unwrap();
        assert_eq!(
            c.onnxruntime_library(),
            Some(PathBuf::from("/x/libonnxruntime.so"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tf_runtime_choice_and_library() {
        let dir = std::env::temp_dir().join(format!("orc-ai-tfcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = Config::new(dir.clone());
        let tract = dir.join("liborc_ai_backend_tf.so");
        assert_eq!(
            c.default_backend_files(Backend::Tf),
            [dir.join(TENSORFLOW_BACKEND_FILE), tract.clone()]
        );
        c.apply_args(&sp("TF_RUNTIME tract")).unwrap();
        assert_eq!(c.default_backend_files(Backend::Tf), [tract]);
        c.apply_args(&sp("TF_RUNTIME TensorFlow")).unwrap();
        assert_eq!(
            c.default_backend_files(Backend::Tf),
            [dir.join(TENSORFLOW_BACKEND_FILE)]
        );
        assert!(c.apply_args(&sp("TF_RUNTIME keras")).is_err());
        // Each backend is told its own runtime's library.
        assert_eq!(c.tensorflow_library(), None);
        for v in [
            "libtensorflow_framework.so.2",
            "libtensorflow_cc.so.2",
            "libonnxruntime.so.1.20.1",
        ] {
            std::fs::write(dir.join(v), b"").unwrap();
        }
        assert_eq!(
            c.tensorflow_library(),
            Some(dir.join("libtensorflow_cc.so.2"))
        );
        let lib = |b| c.backend_init(b).runtime_library.to_string();
        assert_eq!(
            lib(Backend::Tf),
            dir.join("libtensorflow_cc.so.2").display().to_string()
        );
        assert_eq!(
            lib(Backend::Onnx),
            dir.join("libonnxruntime.so.1.20.1").display().to_string()
        );
        assert_eq!(lib(Backend::Torch), "");
        c.apply_args(&sp(
            "TENSORFLOW_LIB /t/libtensorflow.so.2 ALLOW_UNSAFE_OPS yes",
        ))
        .unwrap();
        assert_eq!(
            c.tensorflow_library(),
            Some(PathBuf::from("/t/libtensorflow.so.2"))
        );
        assert!(c.torch_allow_unsafe_ops);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tflite_runtime_choice_and_library() {
        let dir = std::env::temp_dir().join(format!("orc-ai-tflitecfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = Config::new(dir.clone());
        let tract = dir.join("liborc_ai_backend_tflite.so");
        let litert = dir.join(LITERT_BACKEND_FILE);
        assert_eq!(
            c.default_backend_files(Backend::TfLite),
            [litert.clone(), tract.clone()]
        );
        c.apply_args(&sp("TFLITE_RUNTIME tract")).unwrap();
        assert_eq!(c.default_backend_files(Backend::TfLite), [tract]);
        c.apply_args(&sp("TFLITE_RUNTIME LiteRT")).unwrap();
        assert_eq!(c.default_backend_files(Backend::TfLite), [litert]);
        assert!(c.apply_args(&sp("TFLITE_RUNTIME tensorflow")).is_err());
        // TORCH has one runtime whatever the others say.
        assert_eq!(
            c.default_backend_files(Backend::Torch),
            [dir.join("liborc_ai_backend_torch.so")]
        );
        assert_eq!(c.litert_library(), None);
        std::fs::write(dir.join("libLiteRt.so"), b"").unwrap();
        let lib = |c: &Config| c.backend_init(Backend::TfLite).runtime_library.to_string();
        assert_eq!(lib(&c), dir.join("libLiteRt.so").display().to_string());
        c.apply_args(&sp("LITERT_LIB /l/libLiteRt.so")).unwrap();
        assert_eq!(lib(&c), "/l/libLiteRt.so");
        assert!(c.apply_args(&[b"LITERT_LIB".as_slice(), b""]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn backend_files_stay_in_backendspath() {
        let c = Config::new("/b".into());
        for bad in ["../x.so", "/etc/x.so", "a/b.so", "..", ""] {
            let e = c.backend_file(Backend::Onnx, Some(bad)).unwrap_err();
            assert!(e.contains("ALLOW_BACKEND_PATHS"), "{bad}: {e}");
        }
        let mut open = c.clone();
        open.allow_backend_paths = true;
        assert_eq!(
            open.backend_file(Backend::Onnx, Some("/x/y.so")).unwrap(),
            PathBuf::from("/x/y.so")
        );
        assert_eq!(
            open.backend_file(Backend::Onnx, Some("d/y.so")).unwrap(),
            PathBuf::from("/b/d/y.so")
        );
    }

    #[test]
    fn config_commands() {
        assert_eq!(
            parse_config(&sp("GET model_chunk_size")).unwrap(),
            ConfigCmd::Get("MODEL_CHUNK_SIZE".into())
        );
        assert_eq!(
            parse_config(&sp("MODEL_CHUNK_SIZE 0")).unwrap_err().0,
            "ERR MODEL_CHUNK_SIZE: invalid chunk size"
        );
        assert_eq!(
            parse_config(&sp("MODEL_CHUNK_SIZE")).unwrap_err().0,
            "ERR MODEL_CHUNK_SIZE: missing chunk size"
        );
        assert_eq!(
            parse_config(&sp("FOO")).unwrap_err().0,
            "ERR unsupported subcommand"
        );
        assert_eq!(
            parse_config(&sp("LOADBACKEND CAFFE x")).unwrap_err().0,
            "ERR unsupported backend"
        );
        assert_eq!(
            parse_config(&sp("BACKENDSPATH")).unwrap_err().0,
            "ERR BACKENDSPATH: missing path argument"
        );
    }
}
