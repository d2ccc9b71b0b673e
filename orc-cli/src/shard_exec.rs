//! `orc shard-exec`: the start of a shard whose interfaces are looked up on its own node.

use std::{os::unix::process::CommandExt, process::Command};

use anyhow::Context;

use crate::cli::ShardExecArgs;

/// Look up the interfaces here, write the advertised address, and become the server bound
/// to them. Returns only when that fails.
pub(crate) fn run(a: ShardExecArgs) -> anyhow::Result<std::process::ExitCode> {
    let ips = orc_core::net::resolve_interfaces(&a.interfaces)?;
    let first = ips
        .first()
        .context("no interface address to bind")?
        .to_string();
    let tmp = a.address_file.with_extension("tmp");
    std::fs::write(&tmp, format!("{first}\n"))
        .and_then(|()| std::fs::rename(&tmp, &a.address_file))
        .with_context(|| format!("writing {}", a.address_file.display()))?;
    let (exe, args) = a.command.split_first().context("no server command")?;
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .arg("--bind")
        .args(ips.iter().map(|ip| ip.to_string()));
    if a.announce {
        cmd.args(["--cluster-announce-ip", &first]);
    }
    let e = cmd.exec();
    Err(e).with_context(|| format!("running {exe}"))
}
