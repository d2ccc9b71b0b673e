//! The orc-ai module for Redis shards: where it is found and which arguments carry its
//! settings. The Redis deployments resolve
//! [`OrchestratorSettings::ai`](orc_core::OrchestratorSettings::ai) with [`module_spec`]
//! when they plan, so programs that embed orc get the same decisions as the `orc` CLI.

use std::path::{Path, PathBuf};

use orc_core::{AiSettings, Error, ModuleSpec, Result};

/// The environment variable naming the orc-ai module file.
pub const MODULE_VAR: &str = "ORC_AI_MODULE";

/// The module's file name.
pub const MODULE_FILE: &str = "liborc_ai.so";

/// The module line for `ai`: its file (given, or found by [`find_module`]) and its
/// arguments.
pub fn module_spec(ai: &AiSettings) -> Result<ModuleSpec> {
    let path = match &ai.module {
        Some(p) => p.clone(),
        None => find_module()?,
    };
    Ok(ModuleSpec {
        path,
        args: ai.args(),
    })
}

/// The jemalloc setting shards with orc-ai run with, unless `MALLOC_CONF` is set already:
/// Debian's redis-server links the system jemalloc, which then serves the ML runtimes'
/// allocations too, and jemalloc gives allocations of 8 MiB or more (a CNN's activations) to
/// an arena that returns their pages at once, so every inference faults them in again
/// (ResNet-18 on libtorch: 290 000 page faults and 62 ms a call, against 60 000 and 50 ms
/// with this; docs/benchmarks.md). With a Redis built with its own prefixed jemalloc the
/// variable is ignored.
pub const JEMALLOC_CONF: (&str, &str) = ("MALLOC_CONF", "oversize_threshold:0");

/// The environment a shard with the orc-ai module gets beyond orc's own: [`JEMALLOC_CONF`]
/// when `current` (orc's `MALLOC_CONF`) is unset.
pub fn shard_env(current: Option<&str>) -> Option<(&'static str, &'static str)> {
    current.is_none().then_some(JEMALLOC_CONF)
}

/// Whether `path` is the orc-ai module (by its file name).
pub fn is_orc_ai(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == MODULE_FILE)
}

/// The orc-ai module: `$ORC_AI_MODULE`, else `liborc_ai.so` next to the running program or
/// in its `../lib/orc/`.
pub fn find_module() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(MODULE_VAR) {
        let p = PathBuf::from(p);
        return p
            .canonicalize()
            .map_err(|e| Error::io(format!("${MODULE_VAR} {}", p.display()), e));
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("locating this program", e))?;
    find_module_near(exe.parent().unwrap_or(Path::new(".")))
}

/// The orc-ai module next to `dir` or in `dir/../lib/orc/`.
pub fn find_module_near(dir: &Path) -> Result<PathBuf> {
    let candidates = [
        dir.join(MODULE_FILE),
        dir.join("../lib/orc").join(MODULE_FILE),
    ];
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => p
            .canonicalize()
            .map_err(|e| Error::io(format!("resolving {}", p.display()), e)),
        None => Err(Error::config(format!(
            "the orc-ai module was not found (looked for {}); build it with `cargo build -p orc-ai`, point ${MODULE_VAR} or --module at it, or start plain Redis with --no-ai",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_get_the_jemalloc_setting_unless_one_is_given() {
        assert_eq!(
            shard_env(None),
            Some(("MALLOC_CONF", "oversize_threshold:0"))
        );
        assert_eq!(shard_env(Some("narenas:2")), None);
    }

    #[test]
    fn the_module_is_found_next_to_the_program_or_in_lib_orc() {
        let d = tempfile::tempdir().unwrap();
        let e = find_module_near(d.path()).unwrap_err().to_string();
        assert!(e.contains("liborc_ai.so") && e.contains("--no-ai"), "{e}");
        std::fs::create_dir_all(d.path().join("lib/orc")).unwrap();
        std::fs::write(d.path().join("lib/orc/liborc_ai.so"), b"").unwrap();
        std::fs::create_dir(d.path().join("bin")).unwrap();
        let found = find_module_near(&d.path().join("bin")).unwrap();
        assert!(
            found.ends_with("lib/orc/liborc_ai.so"),
            "{}",
            found.display()
        );
    }
}
