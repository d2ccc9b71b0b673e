//! Loading backend plugins (one per runtime, loaded once, never unloaded).
//!
//! A backend is code run as the database's user, so a file is loaded only when it is a
//! regular file owned by that user or root, and neither it nor its directory can be
//! written by anyone else; which files may be named at all is decided by
//! [`crate::config::Config::backend_file`].

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Mutex,
};

use abi_stable::library::{LibraryError, RawLibrary, lib_header_from_raw_library};
use orc_ai_backend_abi::{BACKEND_ABI_VERSION, BackendModRef};

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

fn describe(e: &LibraryError) -> String {
    let s = e.to_string();
    let first = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    match e {
        LibraryError::OpenError { .. } => format!("cannot be opened ({first})"),
        LibraryError::GetSymbolError { .. } => {
            "is not an orc-ai backend plugin (no backend root module)".into()
        }
        LibraryError::AbiInstability(_) => {
            "was built against another orc-ai-backend-abi layout; rebuild it".into()
        }
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => {
            format!(
                "was built against orc-ai-backend-abi {actual_version}, this orc-ai uses {expected_version}; rebuild it"
            )
        }
        _ => first,
    }
}

/// Refuse a file others could have written: it must be a regular file owned by this
/// process's user or root, not writable by group or others, in a directory with the same
/// properties.
pub fn check_trusted(path: &Path) -> Result<(), String> {
    // SAFETY: plain system call.
    let me = unsafe { libc::geteuid() };
    let check = |p: &Path, what: &str| -> Result<(), String> {
        let m = std::fs::metadata(p)
            .map_err(|e| format!("cannot inspect {what} {}: {e}", p.display()))?;
        if m.uid() != me && m.uid() != 0 {
            return Err(format!(
                "{what} {} belongs to uid {}, not to this server's user ({me}) or root; refusing to load code from it",
                p.display(),
                m.uid()
            ));
        }
        if m.mode() & 0o022 != 0 {
            return Err(format!(
                "{what} {} can be written by other users (mode {:o}); refusing to load code from it",
                p.display(),
                m.mode() & 0o7777
            ));
        }
        Ok(())
    };
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    check(path, "file")?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    check(dir, "directory")
}

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
        let raw = RawLibrary::load_at(&path).map_err(|e| fail(describe(&e)))?;
        let raw: &'static RawLibrary = Box::leak(Box::new(raw));
        // SAFETY: `raw` lives for the rest of the process.
        let header = unsafe { lib_header_from_raw_library(raw) }.map_err(|e| fail(describe(&e)))?;
        let module = header
            .init_root_module::<BackendModRef>()
            .map_err(|e| fail(describe(&e)))?;
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
