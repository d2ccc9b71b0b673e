//! Module-wide state: configuration and backends.

use std::{
    path::PathBuf,
    sync::{Mutex, MutexGuard, OnceLock},
};

use crate::{backends::Backends, config::Config};

/// Everything global.
pub struct State {
    /// Settings.
    pub config: Mutex<Config>,
    /// Loaded backends.
    pub backends: Backends,
}

static STATE: OnceLock<State> = OnceLock::new();

/// The global state (created with defaults on first use).
pub fn state() -> &'static State {
    STATE.get_or_init(|| State {
        config: Mutex::new(Config::new(module_dir())),
        backends: Backends::default(),
    })
}

/// A copy of the current limits.
pub fn limits() -> crate::config::Limits {
    lock(&state().config).limits
}

/// A log line with NULs and control characters replaced (Redis's logger would refuse
/// them), at most 4096 characters.
fn clean(msg: &str) -> String {
    msg.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(4096)
        .collect()
}

/// Write a warning to the server log. Messages often quote client or file bytes, so they
/// are cleaned first and logging can never fail.
pub fn log_warning(msg: impl AsRef<str>) {
    let line = clean(msg.as_ref());
    let _ = std::panic::catch_unwind(|| redis_module::logging::log_warning(line));
}

/// Write a notice to the server log, cleaned as [`log_warning`] does.
pub fn log_notice(msg: impl AsRef<str>) {
    let line = clean(msg.as_ref());
    let _ = std::panic::catch_unwind(|| redis_module::logging::log_notice(line));
}

/// Lock, recovering from poisoning (a panic elsewhere must not wedge the module).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The directory this module was loaded from (found with `dladdr`).
pub fn module_dir() -> PathBuf {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let addr = module_dir as *const () as *const libc::c_void;
    // SAFETY: dladdr only reads the address and fills `info`.
    if unsafe { libc::dladdr(addr, &mut info) } != 0 && !info.dli_fname.is_null() {
        // SAFETY: dli_fname is a NUL-terminated path owned by the loader.
        let p = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }
            .to_string_lossy()
            .into_owned();
        if let Some(dir) = PathBuf::from(p).parent() {
            return dir.to_path_buf();
        }
    }
    PathBuf::from(".")
}
