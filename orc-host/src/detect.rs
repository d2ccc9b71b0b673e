//! `--launcher auto` with every launcher the host knows.

use orc_core::launcher::{BUILT_IN, detect};

use crate::{PluginHost, PluginKind};

/// [`detect`], extended to the launchers of `host` that orc does not ship (site plugins):
/// when no known workload manager claims this process and the launch is not a batch
/// launch, the first other launcher whose `allocation()` names a job (Grid Engine's
/// inside a Grid Engine job, say) is the one.
pub fn detect_in(host: &PluginHost, batch: bool) -> String {
    let known = detect(batch);
    if known != "local" || batch {
        return known.to_string();
    }
    let site = host
        .plugins()
        .filter(|p| p.kind == PluginKind::Launcher)
        .filter(|p| !BUILT_IN.contains(&p.name.as_str()));
    for p in site {
        let seen = host.launcher(&p.name).and_then(|l| l.allocation());
        tracing::debug!(launcher = %p.name, ?seen, "auto: does this launcher see a job?");
        if seen.is_ok_and(|a| a.id.is_some()) {
            return p.name.clone();
        }
    }
    known.to_string()
}
