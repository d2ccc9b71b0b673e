//! Loading one plugin file: open, check layout and ABI version, initialise, describe.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use abi_stable::{
    library::{LibraryError, RawLibrary, RootModuleError, lib_header_from_raw_library},
    std_types::{RResult, RStr},
};
use orc_plugin_abi::{ABI_VERSION, LogSink, OrcPluginModRef, PluginDescriptor, level};

/// A loaded plugin library. Libraries are never unloaded (plugins may leave threads or
/// statics behind), so this only keeps the root module.
pub(crate) struct LoadedLib {
    pub(crate) path: PathBuf,
    pub(crate) module: OrcPluginModRef,
    pub(crate) package: String,
    pub(crate) package_version: String,
}

impl std::fmt::Debug for LoadedLib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedLib")
            .field("path", &self.path)
            .field("package", &self.package)
            .finish()
    }
}

extern "C" fn host_log(lvl: u8, target: RStr<'_>, message: RStr<'_>) {
    let (target, message) = (target.as_str(), message.as_str());
    match lvl {
        level::ERROR => tracing::error!(target: "orc::plugin", plugin_target = target, "{message}"),
        level::WARN => tracing::warn!(target: "orc::plugin", plugin_target = target, "{message}"),
        level::INFO => tracing::info!(target: "orc::plugin", plugin_target = target, "{message}"),
        level::DEBUG => tracing::debug!(target: "orc::plugin", plugin_target = target, "{message}"),
        _ => tracing::trace!(target: "orc::plugin", plugin_target = target, "{message}"),
    }
}

fn host_sink() -> LogSink {
    let max = tracing::level_filters::LevelFilter::current();
    let max_level = match max.into_level() {
        None => 0,
        Some(tracing::Level::ERROR) => level::ERROR,
        Some(tracing::Level::WARN) => level::WARN,
        Some(tracing::Level::INFO) => level::INFO,
        Some(tracing::Level::DEBUG) => level::DEBUG,
        Some(tracing::Level::TRACE) => level::TRACE,
    };
    LogSink {
        log: host_log,
        max_level,
    }
}

fn first_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = lines
        .iter()
        .take(n)
        .copied()
        .collect::<Vec<_>>()
        .join(" / ");
    if lines.len() > n {
        out.push_str(" / ...");
    }
    out
}

fn describe_library_error(e: &LibraryError) -> String {
    match e {
        LibraryError::OpenError { err, .. } => {
            format!("cannot be opened as a shared library ({err}); is it a Linux .so built for this machine?")
        }
        LibraryError::GetSymbolError { .. } => {
            "is not an orc plugin: it has no orc plugin root module (was it built with orc_plugin::export_plugins!?)"
                .into()
        }
        LibraryError::IncompatibleVersionNumber { library_name, expected_version, actual_version } => format!(
            "was built against {library_name} {actual_version}, but this orc uses {expected_version}; rebuild the plugin"
        ),
        LibraryError::AbiInstability(report) => format!(
            "has an incompatible plugin interface layout (built against another orc-plugin-abi); rebuild the plugin. Details: {}",
            first_lines(&report.to_string(), 3)
        ),
        LibraryError::RootModule { err: RootModuleError::Unwound, .. } => {
            "panicked while its root module was being loaded".into()
        }
        LibraryError::RootModule { err: RootModuleError::Returned(e), .. } => {
            format!("refused to load: {e}")
        }
        other => format!("could not be loaded: {}", first_lines(&other.to_string(), 3)),
    }
}

/// Load one file. The error string says why it was refused (without the path).
pub(crate) fn load(path: &Path) -> Result<(Arc<LoadedLib>, Vec<PluginDescriptor>), String> {
    if !path.is_file() {
        return Err("does not exist or is not a file".into());
    }
    let raw = RawLibrary::load_at(path).map_err(|e| describe_library_error(&e))?;
    // Never unloaded: plugins may leave threads, statics or thread-locals behind.
    let raw: &'static RawLibrary = Box::leak(Box::new(raw));
    // SAFETY: `raw` lives for the rest of the process, as the function requires.
    let header =
        unsafe { lib_header_from_raw_library(raw) }.map_err(|e| describe_library_error(&e))?;
    let module = header
        .init_root_module::<OrcPluginModRef>()
        .map_err(|e| describe_library_error(&e))?;
    let abi = module.abi_version();
    if abi != ABI_VERSION {
        return Err(format!(
            "was built for orc plugin ABI version {abi}, but this orc speaks ABI version {ABI_VERSION}; rebuild the plugin against orc-plugin-abi {ABI_VERSION}.x"
        ));
    }
    let lib = LoadedLib {
        path: path.to_path_buf(),
        module,
        package: module.package().to_string(),
        package_version: module.package_version().to_string(),
    };
    match (module.init())(host_sink()) {
        RResult::ROk(()) => {}
        RResult::RErr(e) => return Err(format!("refused to initialise: {e}")),
    }
    let descriptors = (module.descriptors())().into_vec();
    Ok((Arc::new(lib), descriptors))
}
