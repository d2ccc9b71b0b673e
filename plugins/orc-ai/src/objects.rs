//! The stored objects: models and scripts with their runtime handles, run statistics and
//! load state, and the registry that `AI._MODELSCAN`, `AI._SCRIPTSCAN` and `INFO` read.
//!
//! An object whose backend cannot build it while the server loads data (RDB, AOF, a
//! replica's stream, `RESTORE`) is kept as stored and reported, never dropped and never a
//! reason to refuse the whole load; it is built on its next use once the backend is there.
//! A client's `AI.MODELSTORE` of something its backend refuses is an error, as before.
//!
//! Statistics and registry entries live as long as the object: `DEL`, overwrite or
//! `FLUSHALL` leaves nothing behind.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use abi_stable::std_types::{RSlice, RString, RVec};
use orc_ai_backend_abi::{
    BackendModelBox, BackendScriptBox, ModelOptions, ScriptOptions, TensorAbi, TensorView,
};

use crate::{
    args::{Reply, text},
    backends::Loaded,
    config::Limits,
    model::{Backend, ModelMeta},
    script::ScriptMeta,
    state::{lock, state},
    tensor::{DType, Data, ExternalBytes, KEEP_EXTERNAL_FROM, Tensor},
};

/// What kind of object a registry entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A model.
    Model,
    /// A script.
    Script,
}

/// Run statistics of one model or script (ephemeral, like RedisAI's).
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Cumulative run time in microseconds.
    pub duration_us: u64,
    /// Samples processed (dim 0 of the first output).
    pub samples: u64,
    /// Runs.
    pub calls: u64,
    /// Failed runs.
    pub errors: u64,
}

/// A registry entry: where an object was stored, its tag, and why it is not loaded.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Model or script.
    pub kind: Kind,
    /// The key it was stored or loaded under.
    pub key: Vec<u8>,
    /// Its tag.
    pub tag: String,
    /// Why its backend could not build it, while that is so.
    pub load_error: Option<String>,
}

static REGISTRY: Mutex<BTreeMap<u64, Entry>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Every live object's entry.
pub fn registry() -> Vec<Entry> {
    lock(&REGISTRY).values().cloned().collect()
}

fn register(kind: Kind, key: &[u8], tag: &str, load_error: Option<String>) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    lock(&REGISTRY).insert(
        id,
        Entry {
            kind,
            key: key.to_vec(),
            tag: tag.to_string(),
            load_error,
        },
    );
    id
}

fn set_load_error(id: u64, e: Option<String>) {
    if let Some(entry) = lock(&REGISTRY).get_mut(&id) {
        entry.load_error = e;
    }
}

/// Where an object comes from: a client (refuse what the backend refuses) or the
/// server's own data (keep it whatever happens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `AI.MODELSTORE` and friends from a client.
    Client,
    /// RDB, AOF, replication, `RESTORE`.
    Stored,
}

/// Run `f` on a thread with a large stack (backends' parsers and compilers recurse over
/// their input), returning its result or the panic as an error.
pub fn on_big_stack<T: Send>(f: impl FnOnce() -> Result<T, String> + Send) -> Result<T, String> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("orc-ai-load".into())
            .stack_size(256 << 20)
            .spawn_scoped(s, f)
            .map_err(|e| format!("cannot start a loader thread: {e}"))?
            .join()
            .unwrap_or_else(|_| Err("the backend panicked while loading (bug)".into()))
    })
}

/// Backend `b`, loaded on first use from the files that may provide it.
pub fn backend(b: Backend) -> Result<Loaded, String> {
    let s = state();
    // The usual case; what a first load needs (a look into BACKENDSPATH for ONNX Runtime)
    // is worked out only when it loads.
    if let Some(l) = s.backends.loaded(b) {
        return Ok(l);
    }
    let (files, init) = {
        let c = lock(&s.config);
        (c.default_backend_files(b), c.backend_init(b))
    };
    s.backends.get(b, &files, &init)
}

/// A runtime handle, built when the object is stored or on its first use after the server
/// loaded it without its backend; why it could not be built is kept in the registry.
struct Lazy<H> {
    handle: OnceLock<H>,
    building: Mutex<()>,
    id: u64,
}

impl<H> Lazy<H> {
    /// From a first build attempt. From a client, a failure is the error to answer; from
    /// stored data, the object is kept, the reason logged and registered.
    fn new(
        kind: Kind,
        key: &[u8],
        tag: &str,
        built: Result<H, String>,
        origin: Origin,
    ) -> Result<Lazy<H>, String> {
        let handle = OnceLock::new();
        let load_error = match built {
            Ok(h) => {
                let _ = handle.set(h);
                None
            }
            Err(e) if origin == Origin::Client => return Err(e),
            Err(e) => {
                crate::state::log_warning(format!(
                    "orc-ai: {} `{}` is kept as stored but not loaded: {e}",
                    if kind == Kind::Model {
                        "model"
                    } else {
                        "script"
                    },
                    text(key)
                ));
                Some(e)
            }
        };
        Ok(Lazy {
            handle,
            building: Mutex::new(()),
            id: register(kind, key, tag, load_error),
        })
    }

    /// The handle, built now with `build` if it was not.
    fn get(&self, build: impl FnOnce() -> Result<H, String>) -> Result<&H, String> {
        if let Some(h) = self.handle.get() {
            return Ok(h);
        }
        let _g = lock(&self.building);
        if let Some(h) = self.handle.get() {
            return Ok(h);
        }
        match build() {
            Ok(h) => {
                set_load_error(self.id, None);
                Ok(self.handle.get_or_init(|| h))
            }
            Err(e) => {
                set_load_error(self.id, Some(e.clone()));
                Err(e)
            }
        }
    }

    fn load_error(&self) -> Option<String> {
        if self.handle.get().is_some() {
            return None;
        }
        lock(&REGISTRY)
            .get(&self.id)
            .and_then(|e| e.load_error.clone())
    }
}

impl<H> Drop for Lazy<H> {
    fn drop(&mut self) {
        lock(&REGISTRY).remove(&self.id);
    }
}

/// A stored model: metadata, the original bytes (for MODELGET, RDB, AOF), the runtime
/// handle once built, and statistics. Shared by `Arc` so running requests keep it alive
/// after a delete.
pub struct Model {
    /// Metadata.
    pub meta: ModelMeta,
    /// Original bytes.
    pub blob: Vec<u8>,
    handle: Lazy<BackendModelBox>,
    /// Run statistics.
    pub stats: Mutex<Stats>,
    /// How fast recent runs were (for runs on the main thread).
    pub pace: crate::exec::inline::Pace,
}

/// The value of an `AI__MODEL` key.
#[derive(Clone)]
pub struct ModelValue(pub Arc<Model>);

fn build_model_handle(meta: &ModelMeta, blob: &[u8]) -> Result<BackendModelBox, String> {
    let opts = {
        let c = lock(&state().config);
        ModelOptions {
            device: meta.device.as_str().into(),
            inputs: meta
                .inputs
                .iter()
                .map(|s| RString::from(s.as_str()))
                .collect(),
            outputs: meta
                .outputs
                .iter()
                .map(|s| RString::from(s.as_str()))
                .collect(),
            inter_op_threads: c.inter_op_parallelism as u32,
            intra_op_threads: c.intra_op_parallelism as u32,
            allow_unsafe_ops: c.torch_allow_unsafe_ops,
            execution_timeout_ms: c.model_execution_timeout,
        }
    };
    on_big_stack(|| {
        let loaded = backend(meta.backend)?;
        (loaded.module.load_model())(RSlice::from_slice(blob), &opts)
            .into_result()
            .map_err(RString::into_string)
    })
}

impl Model {
    /// A model for `key`. From a client, what the backend refuses is an error; from stored
    /// data, the model is kept unloaded and the reason logged and reported.
    pub fn new(
        key: &[u8],
        mut meta: ModelMeta,
        blob: Vec<u8>,
        origin: Origin,
    ) -> Result<Model, Reply> {
        let built = build_model_handle(&meta, &blob).inspect(|h| {
            if meta.backend != Backend::Tf {
                meta.inputs = h.inputs().into_iter().map(|s| s.into_string()).collect();
                meta.outputs = h.outputs().into_iter().map(|s| s.into_string()).collect();
            }
        });
        let handle = Lazy::new(Kind::Model, key, &meta.tag, built, origin)
            .map_err(|e| Reply(format!("ERR {e}")))?;
        Ok(Model {
            meta,
            blob,
            handle,
            stats: Mutex::new(Stats::default()),
            pace: Default::default(),
        })
    }

    /// The runtime handle, built now if the model was stored while its backend could not
    /// build it.
    pub fn handle(&self) -> Result<&BackendModelBox, String> {
        self.handle
            .get(|| build_model_handle(&self.meta, &self.blob))
            .map_err(|e| {
                format!(
                    "ERR the model is stored but its {} backend cannot load it: {e}",
                    self.meta.backend.name()
                )
            })
    }

    /// Why the model is not loaded, if it is not.
    pub fn load_error(&self) -> Option<String> {
        self.handle.load_error()
    }
}

/// A stored script.
pub struct Script {
    /// Metadata and source.
    pub meta: ScriptMeta,
    handle: Lazy<BackendScriptBox>,
    /// Run statistics.
    pub stats: Mutex<Stats>,
    /// How fast recent runs were (for runs on the main thread).
    pub pace: crate::exec::inline::Pace,
}

/// The value of an `AI_SCRIPT` key.
#[derive(Clone)]
pub struct ScriptValue(pub Arc<Script>);

fn build_script_handle(meta: &ScriptMeta) -> Result<BackendScriptBox, String> {
    let opts = ScriptOptions {
        device: meta.device.as_str().into(),
        entry_points: meta
            .entry_points
            .iter()
            .map(|e| RString::from(e.as_str()))
            .collect::<RVec<_>>(),
        allow_unsafe_ops: lock(&state().config).torch_allow_unsafe_ops,
    };
    on_big_stack(|| {
        let loaded = backend(Backend::Torch)?;
        (loaded.module.load_script())(meta.source.as_str().into(), &opts)
            .into_result()
            .map_err(RString::into_string)
    })
}

impl Script {
    /// A script for `key` (errors and origins as [`Model::new`]; script errors from
    /// libtorch are passed through without ERR, as RedisAI).
    pub fn new(key: &[u8], meta: ScriptMeta, origin: Origin) -> Result<Script, Reply> {
        let built = build_script_handle(&meta);
        let handle = Lazy::new(Kind::Script, key, &meta.tag, built, origin).map_err(Reply)?;
        Ok(Script {
            meta,
            handle,
            stats: Mutex::new(Stats::default()),
            pace: Default::default(),
        })
    }

    /// The runtime handle, built now if needed (as [`Model::handle`]).
    pub fn handle(&self) -> Result<&BackendScriptBox, String> {
        self.handle
            .get(|| build_script_handle(&self.meta))
            .map_err(|e| {
                format!("ERR the script is stored but the TORCH backend cannot load it: {e}")
            })
    }

    /// Why the script is not loaded, if it is not.
    pub fn load_error(&self) -> Option<String> {
        self.handle.load_error()
    }
}

/// A tensor lent to a backend for a run: its own shape and bytes, read in place (a copy of
/// every input per run cost a large model's run a few ms of memory traffic and page faults).
pub fn view_of(t: &Tensor) -> TensorView<'_> {
    let (code, bits) = t.dtype.dlpack();
    TensorView::new(code as u8, bits as u8, &t.shape, &t.data)
}

/// Bytes a backend allocated, freed by that backend's allocator when the last tensor
/// sharing them goes (backends are never unloaded).
struct BackendBytes(RVec<u8>);

impl ExternalBytes for BackendBytes {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A tensor from a backend, checked (shape, data, size limit) before it is stored.
pub fn from_abi(t: TensorAbi, limits: &Limits) -> Result<Tensor, Reply> {
    let dtype = DType::from_dlpack(u64::from(t.code), u64::from(t.bits)).ok_or_else(|| {
        Reply(format!(
            "ERR the backend returned an unsupported tensor type (code {}, bits {})",
            t.code, t.bits
        ))
    })?;
    // A large output keeps the buffer the backend filled (a copy otherwise: abi_stable
    // copies a vector made in another library when it is turned into a `Vec`).
    let data = if t.data.len() >= KEEP_EXTERNAL_FROM {
        Data::external(Box::new(BackendBytes(t.data)))
    } else {
        t.data.into_vec().into()
    };
    Tensor::new_limited(dtype, t.shape.into_vec(), data, limits).map_err(|e| {
        Reply(format!(
            "ERR the backend returned an unusable tensor: {}",
            e.0.trim_start_matches("ERR ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reads_the_servers_own_bytes() {
        let data: Vec<u8> = (0..24u8).collect();
        let t = Tensor::new(DType::Float, vec![2, 3], data.into()).unwrap();
        let v = view_of(&t);
        assert_eq!((v.code, v.bits), (2, 32));
        assert_eq!(v.shape.as_slice(), &[2, 3]);
        // The very bytes the tensor holds, not a copy of them.
        assert_eq!(v.data.as_slice().as_ptr(), t.data.as_ptr());
        assert_eq!(v.data.len(), 24);
    }
}
