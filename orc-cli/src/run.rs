//! `orc run -- CMD ARGS`, `orc run --colocated ... -- CMD ARGS`, and the ranks of the
//! latter (`orc colocated-rank`).

use std::{io::Write, os::unix::process::ExitStatusExt, process::ExitCode};

use anyhow::Context;
use orc_core::{OrchestratorSettings, settings::DEFAULT_DB_IDENTIFIER};
use orc_orchestrator::{
    Orchestrator,
    colocated::{self, AppRun, ColocatedSpec, Output, Transport},
};

use crate::{
    Ctx,
    cli::{ColocatedArgs, RankArgs, RunArgs},
};

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// SSKEYOUT / SSKEYIN for key prefixing.
fn key_env(args: &RunArgs) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if let Some(p) = &args.key_prefix {
        env.push(("SSKEYOUT".to_string(), p.clone()));
    }
    if !args.consume.is_empty() {
        env.push(("SSKEYIN".to_string(), args.consume.join(",")));
    }
    env
}

pub(crate) fn run(ctx: &Ctx, args: RunArgs) -> anyhow::Result<ExitCode> {
    for name in args.key_prefix.iter().chain(&args.consume) {
        if name.is_empty()
            || name.contains([',', '.', '{', '}'])
            || name.chars().any(char::is_whitespace)
        {
            anyhow::bail!("key prefix `{name}`: a name without spaces, commas, dots or braces");
        }
    }
    if args.colocated.colocated {
        return colocated(ctx, &args);
    }
    let o = &args.colocated.objects;
    if !(o.models.is_empty()
        && o.scripts.is_empty()
        && o.functions.is_empty()
        && o.objects.is_empty())
    {
        anyhow::bail!(
            "--model, --script, --function and --objects load into a colocated database (--colocated); for a standard one give them to `orc db start`"
        );
    }
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
            db_identifier: DEFAULT_DB_IDENTIFIER.into(),
            path: orc_orchestrator::record::record_path(&ctx.state_dir, DEFAULT_DB_IDENTIFIER),
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
    cmd.envs(key_env(&args));
    let status = cmd
        .status()
        .with_context(|| format!("could not run `{prog}`"))?;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(exit_code(code))
}

/// The node databases' settings from the command line.
fn node_settings(c: &ColocatedArgs, db: &str) -> anyhow::Result<OrchestratorSettings> {
    let mut s = OrchestratorSettings::with_shards(1);
    s.db_identifier = db.into();
    s.deployment = Some("standalone".into());
    s.auth = orc_core::Auth::parse(&c.auth)?;
    s.server_exe = c.redis_server.clone();
    s.startup_timeout_secs = c.timeout;
    s.interfaces = if c.interface.is_empty() {
        Vec::new()
    } else {
        std::iter::once("lo".to_string())
            .chain(c.interface.iter().cloned())
            .collect()
    };
    for kv in &c.redis_config {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--redis-config `{kv}`: expected KEY=VALUE"))?;
        s.redis.apply(k, v)?;
    }
    let mut ai = orc_core::AiSettings::default();
    ai.threads_per_queue = c.threads_per_queue.map(u64::from);
    ai.inter_op_threads = c.inter_op_threads.map(u64::from);
    ai.intra_op_threads = c.intra_op_threads.map(u64::from);
    s.ai = Some(ai);
    s.preload = crate::objects::from_args(&c.objects)?;
    Ok(s)
}

fn colocated(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let c = &args.colocated;
    let db = match args.dbs.as_slice() {
        [] => DEFAULT_DB_IDENTIFIER.to_string(),
        [one] => one.clone(),
        _ => anyhow::bail!("--colocated starts one database per node: give at most one --db"),
    };
    let transport = match c.port {
        Some(port) => Transport::Tcp { port },
        None => Transport::Unix {
            path: c.unix_socket.clone(),
        },
    };
    let mut spec = ColocatedSpec::new(&colocated::new_run_id(), node_settings(c, &db)?, transport);
    spec.db_cpus = c.db_cpus;
    spec.pin = c
        .pin
        .as_deref()
        .map(colocated::pinning::parse_cpu_list)
        .transpose()?;
    spec.env = key_env(args);
    let orc_exe = std::env::current_exe().context("finding the orc executable")?;
    let mut app = AppRun::new(
        &c.launcher,
        ctx.state_dir.clone(),
        spec,
        args.command.clone(),
        orc_exe,
    );
    app.run.tasks = c.ntasks;
    app.run.nodes = c.nodes;
    app.run.tasks_per_node = c.tasks_per_node;
    for a in &c.run_args {
        let (k, v) = match a.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        app.run
            .extra
            .insert(k.trim_start_matches('-').to_string(), v);
    }
    let abort = crate::signals::catch_interrupt();
    let mut out = |o: Output| {
        let _ = match o {
            Output::Stdout(b) => std::io::stdout().write_all(b),
            Output::Stderr(b) => std::io::stderr().write_all(b),
        };
    };
    let code = colocated::run_app(&ctx.host, &app, &mut out, &abort)?;
    let _ = std::io::stdout().flush();
    Ok(exit_code(code))
}

/// `orc colocated-rank SPEC -- CMD`: one rank.
pub(crate) fn rank(ctx: &Ctx, args: RankArgs) -> anyhow::Result<ExitCode> {
    let spec = ColocatedSpec::read(&args.spec)?;
    let abort = crate::signals::catch_interrupt();
    let code = colocated::run_rank(&ctx.host, &spec, &args.command, &abort)?;
    Ok(exit_code(code))
}
