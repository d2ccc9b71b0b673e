//! Static registration: plugin crates linked into the binary register with `inventory`.

use std::fmt;

use orc_core::{DbDeployment, Launcher};
use orc_plugin_abi::PluginKind as AbiKind;
use serde::Serialize;

/// The kind of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// A launcher.
    Launcher,
    /// A database deployment style.
    Deployment,
}

impl PluginKind {
    /// The kind a plugin file declares, when this host knows it.
    pub fn from_abi(k: AbiKind) -> Option<Self> {
        match k {
            AbiKind::LAUNCHER => Some(Self::Launcher),
            AbiKind::DEPLOYMENT => Some(Self::Deployment),
            _ => None,
        }
    }

    /// The kind as the binary interface spells it.
    pub fn to_abi(self) -> AbiKind {
        match self {
            Self::Launcher => AbiKind::LAUNCHER,
            Self::Deployment => AbiKind::DEPLOYMENT,
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Launcher => "launcher",
            Self::Deployment => "deployment",
        })
    }
}

/// Creates a component instance.
#[derive(Clone, Copy)]
pub enum Factory {
    /// Makes a launcher.
    Launcher(fn() -> Box<dyn Launcher>),
    /// Makes a database deployment style.
    Deployment(fn() -> Box<dyn DbDeployment>),
}

impl std::fmt::Debug for Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Factory::Launcher(_) => "Factory::Launcher",
            Factory::Deployment(_) => "Factory::Deployment",
        })
    }
}

impl Factory {
    /// The kind of component this factory makes.
    pub fn kind(&self) -> PluginKind {
        match self {
            Factory::Launcher(_) => PluginKind::Launcher,
            Factory::Deployment(_) => PluginKind::Deployment,
        }
    }
}

/// One component a crate provides: registered statically with
/// [`register_plugin!`](crate::register_plugin) and exported from a plugin library with
/// [`export_plugins!`](crate::export_plugins).
#[derive(Debug, Clone, Copy)]
pub struct StaticPlugin {
    /// The name users select it by.
    pub name: &'static str,
    /// The component's version (usually `env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    /// One line for `orc plugins`.
    pub description: &'static str,
    /// The crate that provides it.
    pub crate_name: &'static str,
    /// How to make one.
    pub factory: Factory,
}

inventory::collect!(StaticPlugin);

/// Every component registered with [`register_plugin!`](crate::register_plugin) in the
/// crates linked into this program.
pub fn linked() -> impl Iterator<Item = &'static StaticPlugin> {
    inventory::iter::<StaticPlugin>.into_iter()
}

/// Register a [`StaticPlugin`] constant so that the plugin host (`orc-host`) finds it in
/// any binary that links the crate.
///
/// ```
/// use orc_plugin::{Factory, StaticPlugin};
/// # use orc_core::{Launcher, Result, StepId, StepStatus, LaunchStep, Allocation};
/// # struct Nop;
/// # impl Launcher for Nop {
/// #     fn name(&self) -> &str { "nop" }
/// #     fn launch(&self, _: &LaunchStep) -> Result<StepId> { Err(orc_core::Error::not_implemented("nop")) }
/// #     fn status(&self, _: &[StepId]) -> Result<Vec<StepStatus>> { Ok(vec![]) }
/// #     fn cancel(&self, _: &StepId) -> Result<StepStatus> { Err(orc_core::Error::not_implemented("nop")) }
/// #     fn allocation(&self) -> Result<Allocation> { Ok(Allocation::new(None, vec![])) }
/// # }
/// pub const NOP: StaticPlugin = StaticPlugin {
///     name: "nop",
///     version: "0.1.0",
///     description: "does nothing",
///     crate_name: "example",
///     factory: Factory::Launcher(|| Box::new(Nop)),
/// };
/// orc_plugin::register_plugin!(NOP);
/// assert!(orc_plugin::linked().any(|p| p.name == "nop"));
/// ```
#[macro_export]
macro_rules! register_plugin {
    ($plugin:path) => {
        $crate::__private::inventory::submit! { $plugin }
    };
}
