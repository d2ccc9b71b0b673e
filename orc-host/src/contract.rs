//! What a dynamically loaded component declared it understands.

use abi_stable::std_types::{RResult, RStr};
use orc_plugin_abi::{PluginKind as AbiKind, protocol};

use crate::dynamic::LoadedLib;

/// What a dynamically loaded component declared when it was loaded (its answer to
/// [`orc_plugin_abi::HELLO`], or minor 0 when it does not know that call).
#[derive(Debug, Clone)]
pub(crate) struct Contract {
    /// The minor ABI version it was built against.
    pub(crate) minor: u32,
    /// The capability names it understands.
    pub(crate) capabilities: std::collections::BTreeSet<String>,
}

impl Contract {
    pub(crate) fn of_minor(minor: u32) -> Self {
        Self {
            minor,
            capabilities: orc_plugin_abi::capabilities_up_to(minor)
                .map(str::to_string)
                .collect(),
        }
    }

    /// Ask component `kind`/`name` of `lib` (one throwaway instance).
    pub(crate) fn ask(lib: &LoadedLib, kind: AbiKind, name: &str) -> Self {
        let RResult::ROk(obj) = (lib.module.instantiate())(kind, RStr::from_str(name)) else {
            return Self::of_minor(0); // its instantiation error surfaces when it is used
        };
        let request = protocol::hello_request();
        let reply = match obj.call(
            RStr::from_str(orc_plugin_abi::HELLO),
            RStr::from_str(&request),
        ) {
            RResult::ROk(r) => r.into_string(),
            RResult::RErr(_) => return Self::of_minor(0), // built before 1.1
        };
        match protocol::decode::<protocol::Hello>(orc_plugin_abi::HELLO, &reply) {
            Ok(h) => Self {
                minor: h.abi_minor,
                capabilities: h.capabilities.into_iter().collect(),
            },
            Err(e) => {
                tracing::warn!(
                    plugin = name,
                    "unreadable hello reply ({e}); taken as ABI minor 0"
                );
                Self::of_minor(0)
            }
        }
    }
}
