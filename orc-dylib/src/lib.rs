//! Loading orc's plugin libraries (launchers and deployments for `orc-host`, runtime
//! backends for `orc-ai`): one way to open a file, find and check its abi_stable root
//! module, and say in one line why a file was refused.
//!
//! A library is never unloaded: plugins may leave threads, statics or thread-locals
//! behind, so the handle lives for the rest of the process.
//!
//! [`c_api!`] declares the function table of a C library loaded at run time.
//!
//! [`check_trusted`] refuses code that someone other than this process's user (or root)
//! could have written: the file and its directory must belong to one of them and be
//! writable by nobody else.
//!
//! # Example
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let file = dir.path().join("libnot_a_plugin.so");
//! std::fs::write(&file, b"not an ELF file")?;
//! let names = orc_dylib::Names::new("orc plugin", "orc-plugin-abi", "orc_plugin::export_plugins!");
//! # use abi_stable::{StableAbi, library::RootModule, package_version_strings,
//! #     sabi_types::VersionStrings, declare_root_module_statics};
//! # #[repr(C)] #[derive(StableAbi)] #[sabi(kind(Prefix(prefix_ref = ModRef)))]
//! # struct Mod { #[sabi(last_prefix_field)] x: u32 }
//! # impl RootModule for ModRef {
//! #     declare_root_module_statics! {ModRef}
//! #     const BASE_NAME: &'static str = "m"; const NAME: &'static str = "m";
//! #     const VERSION_STRINGS: VersionStrings = package_version_strings!();
//! # }
//! let why = orc_dylib::load::<ModRef>(&file, &names).err().expect("refused");
//! assert!(why.contains("cannot be opened as a shared library"), "{why}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod c_api;

use std::{os::unix::fs::MetadataExt, path::Path};

use abi_stable::library::{
    LibraryError, RawLibrary, RootModule, RootModuleError, lib_header_from_raw_library,
};

/// How refusals name the kind of library.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    /// What a library of this kind is (`orc plugin`, `orc-ai backend plugin`).
    pub what: &'a str,
    /// The crate that defines its interface (`orc-plugin-abi`).
    pub abi_crate: &'a str,
    /// How such a library exports its root module (`orc_plugin::export_plugins!`).
    pub export: &'a str,
}

impl<'a> Names<'a> {
    /// Names for refusals.
    pub const fn new(what: &'a str, abi_crate: &'a str, export: &'a str) -> Self {
        Self {
            what,
            abi_crate,
            export,
        }
    }
}

/// Open `path` for the rest of the process and return its root module `M`, checked by
/// abi_stable (layout and version of the interface crate). The error says why the file
/// was refused, without its path.
pub fn load<M: RootModule>(path: &Path, names: &Names<'_>) -> Result<M, String> {
    if !path.is_file() {
        return Err("does not exist or is not a file".into());
    }
    let raw = RawLibrary::load_at(path).map_err(|e| describe(&e, names))?;
    // Never unloaded: plugins may leave threads, statics or thread-locals behind.
    let raw: &'static RawLibrary = Box::leak(Box::new(raw));
    // SAFETY: `raw` lives for the rest of the process, as the function requires.
    let header = unsafe { lib_header_from_raw_library(raw) }.map_err(|e| describe(&e, names))?;
    header
        .init_root_module::<M>()
        .map_err(|e| describe(&e, names))
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

/// Why abi_stable refused a library, in one line that says what to do.
pub fn describe(e: &LibraryError, names: &Names<'_>) -> String {
    let Names {
        what,
        abi_crate,
        export,
    } = names;
    match e {
        LibraryError::OpenError { err, .. } => format!(
            "cannot be opened as a shared library ({err}); is it a Linux .so built for this machine?"
        ),
        LibraryError::GetSymbolError { .. } => {
            format!("is not an {what}: it has no {what} root module (was it built with {export}?)")
        }
        LibraryError::IncompatibleVersionNumber {
            library_name,
            expected_version,
            actual_version,
        } => format!(
            "was built against {library_name} {actual_version}, but this program uses {expected_version}; rebuild it"
        ),
        LibraryError::AbiInstability(report) => format!(
            "has an incompatible interface layout (built against another {abi_crate}); rebuild it. Details: {}",
            first_lines(&report.to_string(), 3)
        ),
        LibraryError::RootModule {
            err: RootModuleError::Unwound,
            ..
        } => "panicked while its root module was being loaded".into(),
        LibraryError::RootModule {
            err: RootModuleError::Returned(e),
            ..
        } => format!("refused to load: {e}"),
        other => format!(
            "could not be loaded: {}",
            first_lines(&other.to_string(), 3)
        ),
    }
}

/// The message of a caught panic (its `&str` or `String` payload), for the errors that
/// plugin entry points return instead of unwinding across the boundary.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Refuse a file others could have written: it must be a regular file owned by this
/// process's user or root, not writable by group or others, in a directory with the same
/// properties.
pub fn check_trusted(path: &Path) -> Result<(), String> {
    // SAFETY: plain system call.
    let me = unsafe { libc::geteuid() };
    let check = |p: &Path, what: &str| -> Result<(), String> {
        let m = std::fs::metadata(p)
            .map_err(|e| format!("cannot inspect {what} {}: {e}", p.display()))?;
        if m.uid() != me && m.uid() != 0 {
            return Err(format!(
                "{what} {} belongs to uid {}, not to this program's user ({me}) or root; refusing to load code from it",
                p.display(),
                m.uid()
            ));
        }
        if m.mode() & 0o022 != 0 {
            return Err(format!(
                "{what} {} can be written by other users (mode {:o}); refusing to load code from it",
                p.display(),
                m.mode() & 0o7777
            ));
        }
        Ok(())
    };
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    check(path, "file")?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    check(dir, "directory")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn files_others_can_write_are_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("lib.so");
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        check_trusted(&f).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = check_trusted(&f).unwrap_err();
        assert!(e.contains("can be written by other users"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_trusted(&f).unwrap_err();
        assert!(
            e.contains("directory") && e.contains("can be written"),
            "{e}"
        );
        let e = check_trusted(dir.path()).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
