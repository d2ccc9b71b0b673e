//! The stable binary interface between `orc` and its dynamically loaded plugins.
//!
//! A plugin is a `cdylib` exporting one [`OrcPluginModRef`] root module (through
//! [`abi_stable`]'s `#[export_root_module]`). The host loads each file on its own, lets
//! `abi_stable` check the type layout, then checks [`OrcPluginMod::abi_version`] against
//! [`ABI_VERSION`] before it calls anything else.
//!
//! The interface is deliberately tiny so that it can stay stable for a long time:
//!
//! * [`OrcPluginMod::descriptors`] lists what the file provides (launchers, database
//!   deployment styles) with names and versions;
//! * [`OrcPluginMod::init`] hands the plugin a [`LogSink`] and lets it refuse to start;
//! * [`OrcPluginMod::instantiate`] returns a [`PluginObjectBox`], whose single
//!   [`PluginObject::call`] method carries a JSON request and returns a JSON reply.
//!   The JSON vocabulary is defined by `orc-core` and versioned by [`ABI_VERSION`].
//!
//! Nothing asynchronous, no tokio type and no tracing dispatcher crosses this boundary:
//! plugins get plain synchronous calls and a log sink.
//!
//! Most users never touch this crate: plugin authors use `orc_core::export_plugins!`, and
//! the host side lives in `orc_core::plugin`.
//!
//! ```
//! use orc_plugin_abi::{ABI_VERSION, PluginKind};
//! assert_eq!(PluginKind::LAUNCHER.name(), "launcher");
//! assert!(ABI_VERSION >= 1);
//! ```
#![deny(missing_docs)]

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RStr, RString, RVec},
};

/// The version of the JSON protocol and of the calls in [`OrcPluginMod`].
///
/// The host refuses a plugin whose [`OrcPluginMod::abi_version`] differs from its own.
pub const ABI_VERSION: u32 = 1;

/// What kind of component a plugin provides (a `u8` newtype, so new kinds can be added).
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginKind(pub u8);

impl PluginKind {
    /// A workload-manager launcher (`local`, `slurm`, ...).
    pub const LAUNCHER: PluginKind = PluginKind(1);
    /// A database deployment style (`standalone`, `cluster`, ...).
    pub const DEPLOYMENT: PluginKind = PluginKind(2);

    /// A short lowercase name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::LAUNCHER => "launcher",
            Self::DEPLOYMENT => "deployment",
            _ => "unknown",
        }
    }
}

/// One component a plugin file provides.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PluginDescriptor {
    /// Launcher or deployment.
    pub kind: PluginKind,
    /// The name users select it by (`local`, `cluster`, ...).
    pub name: RString,
    /// The component's own version.
    pub version: RString,
    /// One line for `orc plugins`.
    pub description: RString,
}

/// Log levels carried by [`LogSink`] (same order as `tracing::Level`).
pub mod level {
    /// Error.
    pub const ERROR: u8 = 1;
    /// Warning.
    pub const WARN: u8 = 2;
    /// Information.
    pub const INFO: u8 = 3;
    /// Debugging.
    pub const DEBUG: u8 = 4;
    /// Tracing.
    pub const TRACE: u8 = 5;
}

/// Where a plugin sends its log records; the host forwards them to its own subscriber.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct LogSink {
    /// Called once per record with a [`level`], the record's target and its message.
    pub log: extern "C" fn(level: u8, target: RStr<'_>, message: RStr<'_>),
    /// The most verbose [`level`] the host wants to receive.
    pub max_level: u8,
}

/// An instance of a plugin component.
///
/// The request and reply are JSON documents defined by `orc-core`; errors are JSON too.
/// Implementations must not unwind out of `call` (the `orc-core` export macro catches
/// panics and turns them into errors).
#[sabi_trait]
pub trait PluginObject: Send + Sync {
    /// Perform `method` with a JSON `payload`; return the JSON reply or a JSON error.
    fn call(&self, method: RStr<'_>, payload: RStr<'_>) -> RResult<RString, RString>;
}

/// An owned, type-erased [`PluginObject`].
pub type PluginObjectBox = PluginObject_TO<'static, RBox<()>>;

/// The root module every orc plugin exports.
///
/// Fields may only ever be appended after the last prefix field.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = OrcPluginModRef)))]
#[sabi(missing_field(panic))]
pub struct OrcPluginMod {
    /// Must equal the host's [`ABI_VERSION`].
    pub abi_version: u32,
    /// The Cargo package the plugin was built from.
    pub package: RStr<'static>,
    /// That package's version.
    pub package_version: RStr<'static>,
    /// The components this file provides.
    pub descriptors: extern "C" fn() -> RVec<PluginDescriptor>,
    /// Called once after loading; an `RErr` refuses the plugin with that message.
    pub init: extern "C" fn(sink: LogSink) -> RResult<(), RString>,
    /// Create an instance of the component `kind`/`name`.
    #[sabi(last_prefix_field)]
    pub instantiate:
        extern "C" fn(kind: PluginKind, name: RStr<'_>) -> RResult<PluginObjectBox, RString>,
}

impl RootModule for OrcPluginModRef {
    declare_root_module_statics! {OrcPluginModRef}
    const BASE_NAME: &'static str = "orc_plugin";
    const NAME: &'static str = "orc_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
