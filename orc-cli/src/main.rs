//! The `orc` command.

mod cli;
mod db;
mod exit;
mod objects;
mod plugins;
mod run;
mod signals;

use std::{io::IsTerminal, path::PathBuf, process::ExitCode};

use clap::Parser;
use orc_host::PluginHost;

use crate::cli::{Cli, Command};

/// What every command gets.
pub(crate) struct Ctx {
    pub(crate) host: PluginHost,
    pub(crate) state_dir: PathBuf,
    pub(crate) json: bool,
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("ORC_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let ctx = Ctx {
        host: PluginHost::discover(),
        state_dir: cli
            .state_dir
            .clone()
            .unwrap_or_else(orc_core::settings::default_state_dir),
        json: cli.json,
    };
    let result = match cli.command {
        Command::Db(cmd) => db::run(&ctx, cmd),
        Command::Plugins => plugins::run(&ctx),
        Command::Run(args) => run::run(&ctx, *args),
        Command::ColocatedRank(args) => run::rank(&ctx, args),
        Command::Agent(args) => ctx
            .host
            .launcher(&args.launcher)
            .and_then(|l| orc_launcher_kit::agent::serve(l.as_ref(), &args.dir, &args.key_file))
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = exit::code_for(&e);
            if ctx.json {
                let msg = serde_json::json!({ "error": format!("{e:#}") });
                println!("{msg}");
            } else {
                eprintln!("orc: error: {e:#}");
            }
            code
        }
    }
}
