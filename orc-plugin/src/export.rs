//! Plugin side: serve the core traits over the plugin ABI.
//!
//! Plugin crates do not call this directly; [`export_plugins!`](crate::export_plugins)
//! generates the root module and routes every call here. Every entry point catches panics so that a plugin
//! bug becomes an error for the host, never an abort.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::atomic::{AtomicU64, Ordering},
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RResult, RStr, RString, RVec},
};
use orc_core::{DbDeployment, Error, Launcher, Result};
use orc_plugin_abi::{
    LogSink, PluginDescriptor, PluginKind as AbiKind, PluginObject, PluginObject_TO,
    PluginObjectBox, level,
    protocol::{
        self, AllocateRequest, ConfigRequest, FormRequest, Hello, ShutdownRequest, decode, encode,
        unknown_method as unknown,
    },
};

use crate::registry::{Factory, StaticPlugin};

pub use orc_dylib::panic_message;

/// Answer one launcher call.
pub fn serve_launcher(l: &dyn Launcher, method: &str, payload: &str) -> Result<String> {
    use protocol::launcher as m;
    match method {
        m::LAUNCH => encode(&l.launch(&decode(method, payload)?)?),
        m::STATUS => encode(&l.status(&decode::<Vec<_>>(method, payload)?)?),
        m::CANCEL => encode(&l.cancel(&decode(method, payload)?)?),
        m::ALLOCATION => encode(&l.allocation()?),
        m::ALLOCATE => {
            let r: AllocateRequest = decode(method, payload)?;
            encode(&l.allocate(&r.batch, &r.name)?)
        }
        m::RELEASE => encode(&l.release(&decode::<String>(method, payload)?)?),
        m::USE_STATE_DIR => {
            encode(&l.use_state_dir(&decode::<std::path::PathBuf>(method, payload)?)?)
        }
        m::CANCEL_ALLOCATION => encode(&l.cancel_allocation(&decode::<String>(method, payload)?)?),
        m::QUEUE_STATE => encode(&l.queue_state(&decode::<String>(method, payload)?)?),
        _ => Err(unknown(method)),
    }
}

/// Answer one deployment call.
pub fn serve_deployment(d: &dyn DbDeployment, method: &str, payload: &str) -> Result<String> {
    use protocol::deployment as m;
    match method {
        m::CLUSTERED => encode(&d.clustered()),
        m::COMPANION_PORTS => encode(&d.companion_ports()),
        m::USE_CREDENTIALS => encode(&d.use_credentials(&decode(method, payload)?)?),
        m::PLAN => encode(&d.plan(&decode(method, payload)?)?),
        m::PROBE => encode(&d.probe(&decode(method, payload)?)?),
        m::FORM => {
            let r: FormRequest = decode(method, payload)?;
            encode(&d.form(&r.shards, &r.settings, r.timeout_secs)?)
        }
        m::HEALTH => encode(&d.health(&decode::<Vec<_>>(method, payload)?)?),
        m::SHUTDOWN => {
            let r: ShutdownRequest = decode(method, payload)?;
            encode(&d.shutdown(&r.shard, r.save)?)
        }
        m::CONFIG_SET => {
            let r: ConfigRequest = decode(method, payload)?;
            encode(&d.config_set(&r.shard, &r.key, r.value.as_deref().unwrap_or(""))?)
        }
        m::CONFIG_GET => {
            let r: ConfigRequest = decode(method, payload)?;
            encode(&d.config_get(&r.shard, &r.key)?)
        }
        _ => Err(unknown(method)),
    }
}

enum Served {
    Launcher(Box<dyn Launcher>),
    Deployment(Box<dyn DbDeployment>),
}

struct Server {
    name: &'static str,
    inner: Served,
}

impl PluginObject for Server {
    fn call(&self, method: RStr<'_>, payload: RStr<'_>) -> RResult<RString, RString> {
        let (method, payload) = (method.as_str(), payload.as_str());
        if method == orc_plugin_abi::HELLO {
            // A component built with this crate understands every message of the minor
            // version it was built against.
            return match encode(&Hello::current()) {
                Ok(h) => RResult::ROk(h.into()),
                Err(e) => RResult::RErr(protocol::encode_error(&e).into()),
            };
        }
        let result = catch_unwind(AssertUnwindSafe(|| match &self.inner {
            Served::Launcher(l) => serve_launcher(l.as_ref(), method, payload),
            Served::Deployment(d) => serve_deployment(d.as_ref(), method, payload),
        }));
        match result {
            Ok(Ok(reply)) => RResult::ROk(reply.into()),
            Ok(Err(e)) => RResult::RErr(protocol::encode_error(&e).into()),
            Err(p) => RResult::RErr(
                protocol::encode_error(&Error::Plugin {
                    plugin: self.name.into(),
                    method: method.into(),
                    message: format!("panicked: {}", panic_message(p.as_ref())),
                })
                .into(),
            ),
        }
    }
}

fn abi_kind(f: &Factory) -> AbiKind {
    match f {
        Factory::Launcher(_) => AbiKind::LAUNCHER,
        Factory::Deployment(_) => AbiKind::DEPLOYMENT,
    }
}

/// The descriptors of `plugins` (used by the generated root module).
#[doc(hidden)]
pub fn descriptors(plugins: &[&StaticPlugin]) -> RVec<PluginDescriptor> {
    plugins
        .iter()
        .map(|p| PluginDescriptor {
            kind: abi_kind(&p.factory),
            name: p.name.into(),
            version: p.version.into(),
            description: p.description.into(),
        })
        .collect()
}

/// Create an instance (used by the generated root module).
#[doc(hidden)]
pub fn instantiate(
    plugins: &[&StaticPlugin],
    kind: AbiKind,
    name: RStr<'_>,
) -> RResult<PluginObjectBox, RString> {
    let found = plugins
        .iter()
        .find(|p| abi_kind(&p.factory) == kind && p.name == name.as_str());
    let Some(p) = found else {
        return RResult::RErr(format!("this plugin has no {} named `{name}`", kind.name()).into());
    };
    let made = catch_unwind(|| match p.factory {
        Factory::Launcher(f) => Served::Launcher(f()),
        Factory::Deployment(f) => Served::Deployment(f()),
    });
    match made {
        Ok(inner) => RResult::ROk(PluginObject_TO::from_value(
            Server {
                name: p.name,
                inner,
            },
            TD_Opaque,
        )),
        Err(e) => RResult::RErr(
            format!("creating `{name}` panicked: {}", panic_message(e.as_ref())).into(),
        ),
    }
}

/// Initialise the plugin side: forward its `tracing` records to the host (used by the
/// generated root module).
#[doc(hidden)]
pub fn init(sink: LogSink) -> RResult<(), RString> {
    match catch_unwind(|| {
        // The plugin has its own copy of tracing's globals; this only sets the plugin's.
        let _ = tracing::subscriber::set_global_default(Forward {
            sink,
            next_id: AtomicU64::new(1),
        });
    }) {
        Ok(()) => RResult::ROk(()),
        Err(p) => RResult::RErr(format!("init panicked: {}", panic_message(p.as_ref())).into()),
    }
}

struct Forward {
    sink: LogSink,
    next_id: AtomicU64,
}

fn level_number(l: &tracing::Level) -> u8 {
    match *l {
        tracing::Level::ERROR => level::ERROR,
        tracing::Level::WARN => level::WARN,
        tracing::Level::INFO => level::INFO,
        tracing::Level::DEBUG => level::DEBUG,
        tracing::Level::TRACE => level::TRACE,
    }
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl tracing::Subscriber for Forward {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        level_number(metadata.level()) <= self.sink.max_level
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        let meta = event.metadata();
        (self.sink.log)(
            level_number(meta.level()),
            RStr::from_str(meta.target()),
            RStr::from_str(&m.0),
        );
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The symbol abi_stable 0.11 looks a library's root module up by
/// (`abi_stable_shared::mangled_root_module_loader_name()`); [`export_plugins!`](crate::export_plugins)
/// defines it, so plugin crates need no `abi_stable` dependency of their own.
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// Export [`StaticPlugin`] constants from a `cdylib` as an orc plugin.
///
/// Put it in a crate with `crate-type = ["cdylib"]` that depends on `orc-plugin` (or on
/// `orc-launcher-kit`, which re-exports it) and list the components to export:
///
/// ```ignore
/// orc_plugin::export_plugins!(my_launcher::PLUGIN);
/// ```
///
/// It defines the library's root module ([`orc_plugin_abi::OrcPluginMod`]) under the
/// symbol abi_stable looks for, with the layout check abi_stable's
/// `#[export_root_module]` would add.
#[macro_export]
macro_rules! export_plugins {
    ($($plugin:path),+ $(,)?) => {
        #[allow(missing_docs, unreachable_pub)]
        mod __orc_plugin_root {
        #[allow(unused_imports)]
        use super::*;
        use $crate::__private::{abi_stable, orc_plugin_abi};

        static __ORC_PLUGINS: &[&$crate::StaticPlugin] = &[$(&$plugin),+];

        extern "C" fn __orc_descriptors()
            -> abi_stable::std_types::RVec<orc_plugin_abi::PluginDescriptor>
        {
            $crate::export::descriptors(__ORC_PLUGINS)
        }

        extern "C" fn __orc_init(
            sink: orc_plugin_abi::LogSink,
        ) -> abi_stable::std_types::RResult<(), abi_stable::std_types::RString> {
            $crate::export::init(sink)
        }

        extern "C" fn __orc_instantiate(
            kind: orc_plugin_abi::PluginKind,
            name: abi_stable::std_types::RStr<'_>,
        ) -> abi_stable::std_types::RResult<
            orc_plugin_abi::PluginObjectBox,
            abi_stable::std_types::RString,
        > {
            $crate::export::instantiate(__ORC_PLUGINS, kind, name)
        }

        fn __orc_root_module() -> orc_plugin_abi::OrcPluginModRef {
            use abi_stable::prefix_type::PrefixTypeTrait;
            orc_plugin_abi::OrcPluginMod {
                abi_version: orc_plugin_abi::ABI_VERSION,
                package: abi_stable::std_types::RStr::from_str(env!("CARGO_PKG_NAME")),
                package_version: abi_stable::std_types::RStr::from_str(env!("CARGO_PKG_VERSION")),
                descriptors: __orc_descriptors,
                init: __orc_init,
                instantiate: __orc_instantiate,
            }
            .leak_into_prefix()
        }

        extern "C" fn __orc_erased_root_module() -> abi_stable::library::RootModuleResult {
            abi_stable::library::__call_root_module_loader(__orc_root_module)
        }

        /// The library header abi_stable reads (see `ROOT_MODULE_SYMBOL`).
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: abi_stable::library::LibHeader =
            // SAFETY: the constructor returns the root module of type `OrcPluginModRef`,
            // erased by abi_stable's own loader helper, as `from_constructor` requires.
            unsafe {
                abi_stable::library::LibHeader::from_constructor::<orc_plugin_abi::OrcPluginModRef>(
                    __orc_erased_root_module,
                    abi_stable::library::CheckTypeLayout::Yes,
                )
            };
        }
    };
}
