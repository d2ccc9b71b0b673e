//! The **orc** plugin host: knows every launcher and database deployment style available
//! to a program, both those linked into it (registered with `orc_plugin::register_plugin!`)
//! and those in plugin files found on the plugin path (`$ORC_PLUGIN_PATH`, then next to
//! the program), and hands them out as `orc_core` trait objects.
//!
//! Each plugin file is loaded on its own and checked (layout, then
//! [`orc_plugin_abi::ABI_VERSION`]) before anything in it is called. A file that is not a
//! plugin, speaks another ABI version, fails or panics while initialising, or provides a
//! name that is already taken is *refused*: the refusal names the file and the reason,
//! and the host carries on with the rest. Each component is asked which minor version and
//! capabilities it understands; a request that needs more is refused with a message that
//! says so, never sent to be half-understood.
//!
//! # Example
//!
//! ```
//! use orc_host::{PluginHost, PluginKind};
//! // Every component linked into this program plus the plugin files on the plugin path.
//! let host = PluginHost::discover();
//! for p in host.plugins() {
//!     println!("{} {} {} ({})", p.kind, p.name, p.version, p.source);
//! }
//! for r in host.refusals() {
//!     eprintln!("refused {r}");
//! }
//! let err = host.launcher("no-such-launcher").err().expect("unknown");
//! assert!(err.to_string().contains("unknown launcher `no-such-launcher`"));
//! # let _ = PluginKind::Launcher;
//! ```
#![deny(missing_docs)]

mod contract;
mod detect;
mod dynamic;
mod proxy;

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use abi_stable::std_types::{RResult, RStr};
use orc_core::{DbDeployment, Error, Launcher, Result};
pub use orc_plugin::{Factory, PluginKind, StaticPlugin};
use serde::Serialize;

pub use self::detect::detect_in;
use self::{
    contract::Contract,
    dynamic::LoadedLib,
    proxy::{DeploymentProxy, LauncherProxy, Proxy},
};

/// The environment variable listing plugin directories or files (`:`-separated).
pub const PLUGIN_PATH_VAR: &str = "ORC_PLUGIN_PATH";

/// The file-name prefix plugins carry in the directories searched by default.
pub const PLUGIN_FILE_PREFIX: &str = "liborc_plugin_";

/// Where a component comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PluginSource {
    /// Linked into this binary.
    Static {
        /// The crate that registered it.
        crate_name: String,
    },
    /// Loaded from a plugin file.
    Dynamic {
        /// The file.
        path: PathBuf,
        /// The package the file was built from.
        package: String,
        /// That package's version.
        package_version: String,
        /// The plugin ABI it was built against (`1.0`, `1.1`, ...).
        abi: String,
    },
}

impl fmt::Display for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static { crate_name } => write!(f, "built in ({crate_name})"),
            Self::Dynamic {
                path,
                package,
                package_version,
                abi,
            } => {
                write!(
                    f,
                    "{} ({package} {package_version}, plugin ABI {abi})",
                    path.display()
                )
            }
        }
    }
}

/// A component the host can instantiate.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    /// Launcher or deployment.
    pub kind: PluginKind,
    /// The name it is selected by.
    pub name: String,
    /// Its version.
    pub version: String,
    /// One line about it.
    pub description: String,
    /// Where it comes from.
    pub source: PluginSource,
}

/// A plugin file, or one component of it, that was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// A directory or file on the plugin search path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchEntry {
    /// The directory or file.
    pub path: PathBuf,
    /// Only files named `liborc_plugin_*.so` are tried (true for default directories).
    pub prefixed_only: bool,
}

enum Origin {
    Static(Factory),
    Dynamic(Arc<LoadedLib>, Arc<Contract>),
}

struct Entry {
    info: PluginInfo,
    origin: Origin,
}

/// Knows every launcher and deployment style available to this process.
#[derive(Default)]
pub struct PluginHost {
    entries: Vec<Entry>,
    refusals: Vec<Refusal>,
    searched: Vec<SearchEntry>,
}

impl fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginHost")
            .field("plugins", &self.plugins().collect::<Vec<_>>())
            .field("refusals", &self.refusals)
            .finish()
    }
}

impl PluginHost {
    /// A host that knows nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// A host with every statically registered component (in order of kind and name).
    pub fn with_static() -> Self {
        let mut host = Self::new();
        // Link order is arbitrary; list them by name.
        let mut linked: Vec<_> = orc_plugin::linked().collect();
        linked.sort_by_key(|p| (p.factory.kind(), p.name));
        for p in linked {
            let info = PluginInfo {
                kind: p.factory.kind(),
                name: p.name.into(),
                version: p.version.into(),
                description: p.description.into(),
                source: PluginSource::Static {
                    crate_name: p.crate_name.into(),
                },
            };
            if host.find(info.kind, &info.name).is_none() {
                host.entries.push(Entry {
                    info,
                    origin: Origin::Static(p.factory),
                });
            }
        }
        host
    }

    /// Static components plus every plugin on [`PluginHost::search_path`].
    pub fn discover() -> Self {
        let mut host = Self::with_static();
        for entry in Self::search_path() {
            host.load_entry(&entry);
        }
        host
    }

    /// The plugin search path: the entries of `$ORC_PLUGIN_PATH` (every `.so` in a listed
    /// directory; a listed file whatever its name), then the directory of the running
    /// executable and its `plugins/` and `../lib/orc/plugins` directories (files named
    /// `liborc_plugin_*.so` only).
    pub fn search_path() -> Vec<SearchEntry> {
        let mut out: Vec<SearchEntry> = std::env::var_os(PLUGIN_PATH_VAR)
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|path| SearchEntry {
                        path,
                        prefixed_only: false,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            for path in [
                dir.clone(),
                dir.join("plugins"),
                dir.join("../lib/orc/plugins"),
            ] {
                out.push(SearchEntry {
                    path,
                    prefixed_only: true,
                });
            }
        }
        out
    }

    /// Load what one search-path entry holds; problems become refusals.
    pub fn load_entry(&mut self, entry: &SearchEntry) {
        self.searched.push(entry.clone());
        if entry.path.is_file() {
            let _ = self.load_file(&entry.path); // refusals are recorded
            return;
        }
        let Ok(read) = std::fs::read_dir(&entry.path) else {
            return;
        };
        let mut files: Vec<PathBuf> = read
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "so"))
            .filter(|p| {
                !entry.prefixed_only
                    || p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(PLUGIN_FILE_PREFIX))
            })
            .collect();
        files.sort();
        for f in files {
            let _ = self.load_file(&f); // refusals are recorded
        }
    }

    /// Load one plugin file. Returns the components it added; a refusal is recorded (see
    /// [`PluginHost::refusals`]) and returned as [`Error::PluginLoad`].
    pub fn load_file(&mut self, path: &Path) -> Result<Vec<PluginInfo>> {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self
            .entries
            .iter()
            .any(|e| matches!(&e.origin, Origin::Dynamic(l, _) if l.path == canonical))
        {
            return Ok(Vec::new()); // the same file reached twice through the search path
        }
        let (lib, descriptors) = match dynamic::load(&canonical) {
            Ok(x) => x,
            Err(reason) => return Err(self.refuse(path, reason)),
        };
        let mut added = Vec::new();
        let mut refused = Vec::new();
        for d in descriptors {
            let Some(kind) = PluginKind::from_abi(d.kind) else {
                refused.push(format!(
                    "provides `{}` of unknown kind {} (a newer plugin?)",
                    d.name, d.kind.0
                ));
                continue;
            };
            if let Some(existing) = self.find(kind, d.name.as_str()) {
                refused.push(format!(
                    "provides {kind} `{}`, which is already provided by {}; remove one of them from the plugin path",
                    d.name, existing.info.source
                ));
                continue;
            }
            let contract = Contract::ask(&lib, d.kind, d.name.as_str());
            let info = PluginInfo {
                kind,
                name: d.name.into_string(),
                version: d.version.into_string(),
                description: d.description.into_string(),
                source: PluginSource::Dynamic {
                    path: canonical.clone(),
                    package: lib.package.clone(),
                    package_version: lib.package_version.clone(),
                    abi: format!("{}.{}", orc_plugin_abi::ABI_VERSION, contract.minor),
                },
            };
            tracing::debug!(plugin = %info.name, kind = %kind, file = %canonical.display(), "plugin loaded");
            added.push(info.clone());
            self.entries.push(Entry {
                info,
                origin: Origin::Dynamic(lib.clone(), Arc::new(contract)),
            });
        }
        for reason in refused {
            self.refuse(path, reason);
        }
        Ok(added)
    }

    fn refuse(&mut self, path: &Path, reason: String) -> Error {
        tracing::warn!(file = %path.display(), "plugin refused: {reason}");
        let r = Refusal {
            path: path.to_path_buf(),
            reason,
        };
        let err = Error::PluginLoad {
            path: r.path.clone(),
            reason: r.reason.clone(),
        };
        self.refusals.push(r);
        err
    }

    fn find(&self, kind: PluginKind, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.info.kind == kind && e.info.name == name)
    }

    /// Every accepted component, in load order.
    pub fn plugins(&self) -> impl Iterator<Item = &PluginInfo> {
        self.entries.iter().map(|e| &e.info)
    }

    /// Every refused file or component.
    pub fn refusals(&self) -> &[Refusal] {
        &self.refusals
    }

    /// The search-path entries that were looked at.
    pub fn searched(&self) -> &[SearchEntry] {
        &self.searched
    }

    fn unknown(&self, kind: PluginKind, name: &str) -> Error {
        let names: Vec<&str> = self
            .entries
            .iter()
            .filter(|e| e.info.kind == kind)
            .map(|e| e.info.name.as_str())
            .collect();
        let mut hint = String::new();
        if !self.refusals.is_empty() {
            hint.push_str(&format!(
                " ({} plugin file(s) were refused; run `orc plugins`)",
                self.refusals.len()
            ));
        }
        if names.is_empty() {
            hint.push_str(&format!(
                "; no {kind} plugin was found: put the plugin .so files on ${PLUGIN_PATH_VAR} or next to the orc binary"
            ));
        }
        Error::UnknownPlugin {
            kind: kind.to_string(),
            name: name.into(),
            available: if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            },
            hint,
        }
    }

    fn instantiate(
        &self,
        kind: PluginKind,
        name: &str,
    ) -> Result<(Option<Factory>, Option<Proxy>)> {
        let entry = self
            .find(kind, name)
            .ok_or_else(|| self.unknown(kind, name))?;
        match &entry.origin {
            Origin::Static(f) => Ok((Some(*f), None)),
            Origin::Dynamic(lib, contract) => {
                match (lib.module.instantiate())(kind.to_abi(), RStr::from_str(name)) {
                    RResult::ROk(obj) => Ok((
                        None,
                        Some(Proxy::new(name.into(), obj, lib.clone(), contract.clone())),
                    )),
                    RResult::RErr(e) => Err(Error::PluginLoad {
                        path: lib.path.clone(),
                        reason: e.into_string(),
                    }),
                }
            }
        }
    }

    /// A new instance of launcher `name`.
    pub fn launcher(&self, name: &str) -> Result<Box<dyn Launcher>> {
        match self.instantiate(PluginKind::Launcher, name)? {
            (Some(Factory::Launcher(f)), _) => Ok(f()),
            (_, Some(proxy)) => Ok(Box::new(LauncherProxy(proxy))),
            _ => Err(self.unknown(PluginKind::Launcher, name)),
        }
    }

    /// A new instance of deployment style `name`.
    pub fn deployment(&self, name: &str) -> Result<Box<dyn DbDeployment>> {
        match self.instantiate(PluginKind::Deployment, name)? {
            (Some(Factory::Deployment(f)), _) => Ok(f()),
            (_, Some(proxy)) => Ok(Box::new(DeploymentProxy::new(proxy)?)),
            _ => Err(self.unknown(PluginKind::Deployment, name)),
        }
    }
}
