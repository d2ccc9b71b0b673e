//! Exit codes, documented in the README.

use std::process::ExitCode;

/// Success.
pub(crate) const OK: u8 = 0;
/// Any failure not listed below.
pub(crate) const FAILURE: u8 = 1;
/// No such orchestrator is running.
pub(crate) const NOT_RUNNING: u8 = 3;
/// The orchestrator runs but is not healthy (`orc db status`).
pub(crate) const DEGRADED: u8 = 4;
/// A plugin or launcher problem (unknown name, refused plugin).
pub(crate) const PLUGIN: u8 = 5;
/// Interrupted by Ctrl-C.
pub(crate) const INTERRUPTED: u8 = 130;

/// The exit code for an error.
pub(crate) fn code_for(e: &anyhow::Error) -> ExitCode {
    use orc_core::Error as E;
    let code = match e.downcast_ref::<E>() {
        Some(E::NotFound { .. }) => NOT_RUNNING,
        Some(E::UnknownPlugin { .. } | E::PluginLoad { .. } | E::Plugin { .. }) => PLUGIN,
        Some(E::Interrupted) => INTERRUPTED,
        _ => FAILURE,
    };
    ExitCode::from(code)
}

/// An exit code from a number.
pub(crate) fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
