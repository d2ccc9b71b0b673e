//! `orc run -- CMD ARGS`.

use std::{os::unix::process::ExitStatusExt, process::ExitCode};

use anyhow::Context;
use orc_orchestrator::Orchestrator;

use crate::{Ctx, cli::RunArgs};

pub(crate) fn run(ctx: &Ctx, args: RunArgs) -> anyhow::Result<ExitCode> {
    let orcs: Vec<Orchestrator> = if args.dbs.is_empty() {
        Orchestrator::connect_all(&ctx.host, &ctx.state_dir)
            .into_iter()
            .collect::<Result<_, _>>()?
    } else {
        args.dbs
            .iter()
            .map(|id| Orchestrator::connect(&ctx.host, &ctx.state_dir, id))
            .collect::<Result<_, _>>()?
    };
    if orcs.is_empty() {
        anyhow::bail!(orc_core::Error::NotFound {
            db_identifier: orc_core::settings::DEFAULT_DB_IDENTIFIER.into(),
            path: orc_orchestrator::record::record_path(
                &ctx.state_dir,
                orc_core::settings::DEFAULT_DB_IDENTIFIER
            ),
        });
    }
    let (prog, rest) = args.command.split_first().context("no command given")?;
    let mut cmd = std::process::Command::new(prog);
    cmd.args(rest);
    for orc in &orcs {
        for (k, v) in orc.client_env() {
            tracing::info!("{k}={v}");
            cmd.env(k, v);
        }
    }
    let status = cmd
        .status()
        .with_context(|| format!("could not run `{prog}`"))?;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
