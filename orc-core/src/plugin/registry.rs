//! Static registration: plugin crates linked into the binary register with `inventory`.

use crate::{deployment::DbDeployment, launcher::Launcher};

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
    pub fn kind(&self) -> super::PluginKind {
        match self {
            Factory::Launcher(_) => super::PluginKind::Launcher,
            Factory::Deployment(_) => super::PluginKind::Deployment,
        }
    }
}

/// One component a crate provides: registered statically with [`crate::register_plugin!`]
/// and exported dynamically with [`crate::export_plugins!`].
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

/// Every statically registered component.
pub(crate) fn all() -> impl Iterator<Item = &'static StaticPlugin> {
    inventory::iter::<StaticPlugin>.into_iter()
}

/// Register a [`StaticPlugin`] constant so that [`crate::plugin::PluginHost::with_static`]
/// finds it in any binary that links the crate.
///
/// ```
/// use orc_core::plugin::{Factory, StaticPlugin};
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
/// orc_core::register_plugin!(NOP);
/// ```
#[macro_export]
macro_rules! register_plugin {
    ($plugin:path) => {
        $crate::__private::inventory::submit! { $plugin }
    };
}
