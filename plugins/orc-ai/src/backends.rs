//! Loading backend plugins (one per runtime, loaded once, never unloaded).
//!
//! A backend is code run as the database's user, so a file is loaded only when it is a
//! regular file owned by that user or root, and neither it nor its directory can be
//! written by anyone else; which files may be named at all is decided by
//! [`crate::config::Config::backend_file`].

use std::{collections::HashMap, path::PathBuf, sync::Mutex};

use orc_ai_backend_abi::{BACKEND_ABI_VERSION, BackendModRef};
pub use orc_dylib::check_trusted;

use crate::model::Backend;

/// A loaded backend.
#[derive(Clone)]
pub struct Loaded {
    /// Its file.
    pub path: PathBuf,
    /// Its root module.
    pub module: BackendModRef,
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
    /// The backend, loading it from `file` on first use.
    pub fn get(&self, b: Backend, file: PathBuf) -> Result<Loaded, String> {
        if let Some(l) = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&b)
        {
            return Ok(l.clone());
        }
        self.load(b, file)
    }

    /// Whether `b` is loaded.
    pub fn is_loaded(&self, b: Backend) -> bool {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&b)
    }

    /// Names and runtimes of the loaded backends.
    pub fn list(&self) -> Vec<(Backend, String, PathBuf)> {
        let l = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = l
            .iter()
            .map(|(b, x)| (*b, x.module.runtime().to_string(), x.path.clone()))
            .collect();
        v.sort_by_key(|(b, _, _)| b.code());
        v
    }

    /// Load `b` from `path` (an error when another file already provides it).
    pub fn load(&self, b: Backend, path: PathBuf) -> Result<Loaded, String> {
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
        let l = Loaded {
            path: path.clone(),
            module,
        };
        loaded.insert(b, l.clone());
        Ok(l)
    }
}
