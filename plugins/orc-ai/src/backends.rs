//! Loading backend plugins (one per runtime, loaded once, never unloaded).
//!
//! A backend is initialised once right after loading (`init` of [`orc_ai_backend_abi::BackendMod`]): it loads its
//! runtime and warms it up, and answers the runtime it runs on. When no file is named, the
//! files that may provide a backend are tried in order of preference
//! ([`crate::config::Config::default_backend_files`]): ONNX Runtime, then tract, for ONNX;
//! TensorFlow, then tract, for TF; LiteRT, then tract, for TFLITE.
//!
//! A backend is code run as the database's user, so a file is loaded only when it is a
//! regular file owned by that user or root, and neither it nor its directory can be
//! written by anyone else; which files may be named at all is decided by
//! [`crate::config::Config::backend_file`].

use std::{collections::HashMap, path::PathBuf, sync::Mutex};

use orc_ai_backend_abi::{BACKEND_ABI_VERSION, BackendInit, BackendModRef};
pub use orc_dylib::check_trusted;

use crate::model::Backend;

/// A loaded backend.
#[derive(Clone)]
pub struct Loaded {
    /// Its file.
    pub path: PathBuf,
    /// Its root module.
    pub module: BackendModRef,
    /// The runtime it runs on, as its `init` answered (`onnxruntime 1.31.1 (...)`).
    pub runtime: String,
}

/// The backends loaded so far.
#[derive(Default)]
pub struct Backends {
    loaded: Mutex<HashMap<Backend, Loaded>>,
}

/// How refusals name a backend library.
const NAMES: orc_dylib::Names<'static> = orc_dylib::Names::new(
    "orc-ai backend plugin",
    "orc-ai-backend-abi",
    "orc_ai_backend_abi::export_backend!",
);

impl Backends {
    /// The backend, loading it on first use from the first of `files` that loads and
    /// initialises. A missing file is passed over unless it is the last; a file that fails
    /// is logged and the next one tried.
    pub fn get(&self, b: Backend, files: &[PathBuf], init: &BackendInit) -> Result<Loaded, String> {
        if let Some(l) = self.loaded(b) {
            return Ok(l);
        }
        let mut failed = Vec::new();
        for (i, file) in files.iter().enumerate() {
            if i + 1 < files.len() && !file.exists() {
                continue;
            }
            match self.load(b, file.clone(), init) {
                Ok(l) => {
                    if !failed.is_empty() {
                        crate::state::log_warning(format!(
                            "orc-ai: the {} backend runs on {} ({})",
                            b.name(),
                            l.runtime,
                            failed.join("; ")
                        ));
                    }
                    return Ok(l);
                }
                Err(e) => failed.push(e),
            }
        }
        Err(failed.join("; "))
    }

    /// Backend `b` if it is loaded.
    pub fn loaded(&self, b: Backend) -> Option<Loaded> {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&b)
            .cloned()
    }

    /// Names and runtimes of the loaded backends.
    pub fn list(&self) -> Vec<(Backend, String, PathBuf)> {
        let l = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = l
            .iter()
            .map(|(b, x)| (*b, x.runtime.clone(), x.path.clone()))
            .collect();
        v.sort_by_key(|(b, _, _)| b.code());
        v
    }

    /// Load `b` from `path` and initialise it (an error when another file already provides
    /// it).
    pub fn load(&self, b: Backend, path: PathBuf, init: &BackendInit) -> Result<Loaded, String> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = loaded.get(&b) {
            if l.path == path {
                return Ok(l.clone());
            }
            return Err(format!(
                "the {} backend is already loaded from {}",
                b.name(),
                l.path.display()
            ));
        }
        let fail = |why: String| {
            format!(
                "Could not load backend {} from {}: {why}",
                b.name(),
                path.display()
            )
        };
        if !path.is_file() {
            return Err(fail(format!(
                "no such file (looked for {}; set BACKENDSPATH or AI.CONFIG LOADBACKEND {} <path>)",
                b.file_name(),
                b.name()
            )));
        }
        check_trusted(&path).map_err(fail)?;
        let module = orc_dylib::load::<BackendModRef>(&path, &NAMES).map_err(fail)?;
        if module.abi_version() != BACKEND_ABI_VERSION {
            return Err(fail(format!(
                "built for backend ABI version {}, this orc-ai speaks version {BACKEND_ABI_VERSION}; rebuild it",
                module.abi_version()
            )));
        }
        if module.name().as_str() != b.name() {
            return Err(fail(format!(
                "it is the {} backend, not {}",
                module.name(),
                b.name()
            )));
        }
        let runtime = (module.init())(init)
            .into_result()
            .map_err(|e| fail(e.into()))?;
        let l = Loaded {
            path: path.clone(),
            module,
            runtime: runtime.into(),
        };
        loaded.insert(b, l.clone());
        Ok(l)
    }
}
