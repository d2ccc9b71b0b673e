//! Loading one plugin file: open, check layout and ABI version, initialise, describe.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use abi_stable::std_types::{RResult, RStr};
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

/// How refusals name a plugin library.
const NAMES: orc_dylib::Names<'static> = orc_dylib::Names::new(
    "orc plugin",
    "orc-plugin-abi",
    "orc_plugin::export_plugins!",
);

/// Load one file. The error string says why it was refused (without the path).
pub(crate) fn load(path: &Path) -> Result<(Arc<LoadedLib>, Vec<PluginDescriptor>), String> {
    let module = orc_dylib::load::<OrcPluginModRef>(path, &NAMES)?;
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
