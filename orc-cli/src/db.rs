//! `orc db ...`.

use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
    time::Instant,
};

use anyhow::Context;
use orc_core::{
    BatchSettings, Checkpoints, ModuleSpec, OrchestratorSettings, settings::parse_memory,
};
use orc_orchestrator::{LaunchOptions, Orchestrator, Progress, ShardStop, StopWay};
use serde_json::json;

use crate::{
    Ctx,
    cli::{ConfigCommand, DbCommand, StartArgs},
    exit,
};

pub(crate) fn run(ctx: &Ctx, cmd: DbCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DbCommand::Start(args) => {
            let settings = settings_from(&args)?;
            start(ctx, settings)
        }
        DbCommand::Status { select, all } => status(ctx, &targets(ctx, &select.db, all)?),
        DbCommand::Address { select, env } => address(ctx, &select.db, env),
        DbCommand::Stop { select, all } => stop(ctx, targets(ctx, &select.db, all)?),
        DbCommand::Restart { select } => {
            let orc = Orchestrator::connect(&ctx.host, &ctx.state_dir, &select.db)?;
            let settings = orc.record().settings.clone();
            orc.stop()?;
            start(ctx, settings)
        }
        DbCommand::Heal { select, timeout } => heal(ctx, &select.db, timeout),
        DbCommand::Config(ConfigCommand::Get { select, key }) => {
            let orc = Orchestrator::connect(&ctx.host, &ctx.state_dir, &select.db)?;
            let pairs = orc.config_get(&key)?;
            if ctx.json {
                let map: serde_json::Map<String, serde_json::Value> =
                    pairs.into_iter().map(|(k, v)| (k, v.into())).collect();
                println!("{}", serde_json::Value::Object(map));
            } else {
                for (k, v) in pairs {
                    println!("{k} {v}");
                }
            }
            Ok(exit::code(exit::OK))
        }
        DbCommand::Config(ConfigCommand::Set { select, key, value }) => {
            let mut orc = Orchestrator::connect(&ctx.host, &ctx.state_dir, &select.db)?;
            orc.config_set(&key, &value)?;
            if ctx.json {
                println!(
                    "{}",
                    json!({ "db": select.db, "key": key, "value": value, "shards": orc.addresses().len() })
                );
            } else {
                println!(
                    "{key} = {value} on {} shard(s) of `{}` (kept for restarts)",
                    orc.addresses().len(),
                    select.db
                );
            }
            Ok(exit::code(exit::OK))
        }
    }
}

fn settings_from(a: &StartArgs) -> anyhow::Result<OrchestratorSettings> {
    let mut s = OrchestratorSettings::with_shards(a.shards);
    s.replicas = a.replicas;
    s.db_identifier = a.select.db.clone();
    s.port = a.port;
    s.interfaces = a.interface.clone();
    s.hosts = a.hosts.clone();
    s.single_step = a.single_step;
    s.auth = orc_core::Auth::parse(&a.auth)?;
    s.tls = match (&a.tls_cert, &a.tls_key, &a.tls_ca) {
        (Some(cert), Some(key), Some(ca)) => {
            let abs = |p: &std::path::PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
            Some(orc_core::Tls::Files(orc_core::TlsFiles {
                cert: abs(cert),
                key: abs(key),
                ca: abs(ca),
            }))
        }
        _ if a.tls => Some(orc_core::Tls::Generate),
        _ => None,
    };
    s.launcher = a.launcher.clone(); // `auto` is resolved by orc-core when it launches
    s.shards_per_host = a.shards_per_host;
    if a.batch {
        let mut b = BatchSettings::default();
        b.nodes = a.nodes; // default (shards / shards per host) decided by orc-core
        b.walltime_secs = a.walltime.map(|m| m * 60);
        b.account = a.account.clone();
        b.queue = a.queue.clone();
        b.queue_timeout_secs = Some(a.queue_timeout);
        for d in &a.batch_args {
            let (k, v) = match d.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (d.as_str(), None),
            };
            b.extra.insert(k.trim_start_matches('-').to_string(), v);
        }
        s.batch = Some(b);
    }
    s.deployment = a.deployment.clone();
    s.preload = crate::objects::from_args(&a.objects)?;
    if let Some(sock) = &a.unix_socket {
        let abs = std::path::absolute(sock).unwrap_or_else(|_| sock.clone());
        s.redis
            .extra
            .insert("unixsocket".into(), abs.display().to_string());
    }
    s.server_exe = a.redis_server.clone();
    s.dir = a.dir.clone();
    s.startup_timeout_secs = a.timeout;
    s.redis.maxmemory = a.maxmemory.clone();
    s.redis.maxmemory_policy = a.eviction_policy.clone();
    s.redis.maxclients = a.maxclients;
    s.redis.proto_max_bulk_len = a.max_message_size.clone();
    if let Some(ms) = a.cluster_node_timeout {
        s.redis.cluster_node_timeout_ms = ms;
    }
    if let Some(c) = &a.checkpoints {
        let parts: Vec<&str> = c.split_whitespace().collect();
        let [secs, changes] = parts.as_slice() else {
            anyhow::bail!("--checkpoints takes \"SECONDS CHANGES\", e.g. \"900 1\"");
        };
        s.redis.checkpoints = Some(Checkpoints {
            every_secs: secs.parse().context("--checkpoints SECONDS")?,
            min_changes: changes.parse().context("--checkpoints CHANGES")?,
        });
    }
    for kv in &a.redis_config {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--redis-config `{kv}`: expected KEY=VALUE"))?;
        s.redis.apply(k, v)?;
    }
    if let Some(m) = &a.module {
        let path = m
            .canonicalize()
            .with_context(|| format!("--module {}", m.display()))?;
        s.module = Some(ModuleSpec {
            path,
            args: a.module_args.clone(),
        });
    } else if !a.no_ai {
        let mut ai = orc_core::AiSettings::default();
        ai.threads_per_queue = a.threads_per_queue.map(u64::from);
        ai.inter_op_threads = a.inter_op_threads.map(u64::from);
        ai.intra_op_threads = a.intra_op_threads.map(u64::from);
        ai.max_tensor_bytes = a.ai_max_tensor_bytes;
        ai.max_values_reply = a.ai_max_values_reply;
        ai.max_dag_size = a.ai_max_dag_size;
        ai.max_device_queues = a.ai_max_device_queues;
        ai.min_chunk_size = a.ai_min_chunk_size;
        ai.execution_timeout_ms = a.ai_execution_timeout;
        ai.allow_backend_paths = a.ai_allow_backend_paths;
        ai.allow_unsafe_torchscript = a.ai_allow_unsafe_torchscript;
        ai.backends = a.ai_backends.clone();
        ai.onnx_runtime = a.onnx_runtime.clone();
        ai.onnxruntime_lib = a.onnxruntime_lib.clone();
        ai.tf_runtime = a.tf_runtime.clone();
        ai.tensorflow_lib = a.tensorflow_lib.clone();
        ai.tflite_runtime = a.tflite_runtime.clone();
        ai.litert_lib = a.litert_lib.clone();
        ai.backend_warmup = !a.no_backend_warmup;
        ai.extra_args = a.module_args.clone();
        s.ai = Some(ai); // the deployment finds the module and writes its arguments
    } else if !a.module_args.is_empty() || !a.ai_backends.is_empty() {
        anyhow::bail!("--module-arg and --ai-backends need a module (drop --no-ai)");
    }
    if let Some(m) = &s.redis.maxmemory
        && parse_memory(m).is_none()
    {
        anyhow::bail!("--maxmemory `{m}`: expected a size such as 3gb");
    }
    Ok(s)
}

/// `3 shard(s)`, or `3 shard(s) with 1 replica(s) each (6 servers)`.
fn servers_text(s: &OrchestratorSettings) -> String {
    match s.replicas {
        0 => format!("{} shard(s)", s.shards),
        r => format!(
            "{} shard(s) with {r} replica(s) each ({} servers)",
            s.shards,
            s.servers()
        ),
    }
}

fn start(ctx: &Ctx, settings: OrchestratorSettings) -> anyhow::Result<ExitCode> {
    let tty = std::io::stderr().is_terminal() && !ctx.json;
    let style = settings.deployment_name().to_string();
    if !ctx.json {
        eprintln!(
            "orc: starting `{}`: {}, {style}, launcher {}",
            settings.db_identifier,
            servers_text(&settings),
            settings.launcher
        );
    }
    if settings.replicas > 0 && settings.shards < 3 {
        eprintln!(
            "orc: note: --replicas with {} shard(s): Redis Cluster fails a shard over only when a majority of the shards' masters agree, so with fewer than 3 shards a lost master's replica is not promoted by itself",
            settings.shards
        );
    }
    if settings.tls.is_some() {
        eprintln!(
            "orc: note: --tls: clients must speak TLS (orc-client does, with SR_TLS and SR_TLS_CA_FILE, which orc run passes); SmartRedis clients cannot"
        );
    }
    if settings.auth == orc_core::Auth::Password {
        eprintln!(
            "orc: warning: --auth password: every client must give the password in SR_PASSWORD_FILE (orc run passes it; orc-client reads it), but SmartRedis clients cannot authenticate and will be refused; use the default --auth restricted for them"
        );
    }
    let began = Instant::now();
    let mut progress = |p: &Progress| {
        if let Progress::Queued(q) = p
            && !tty
            && !ctx.json
        {
            // Also into logs and batch output: a queue wait can be long.
            eprintln!("orc: [{:.0}s] {q}", began.elapsed().as_secs_f64());
            return;
        }
        if !tty {
            return;
        }
        let line = match p {
            Progress::Queued(q) => format!("{q}"),
            Progress::Launched { shards } => {
                format!("launched {shards} shard(s), waiting for them to answer")
            }
            Progress::ShardReady { ready, total } => format!("{ready}/{total} shard(s) answering"),
            Progress::Forming => format!("forming the {style} database"),
            Progress::Loading { objects } => {
                format!("loading {objects} model(s), script(s) and function(s)")
            }
            Progress::Ready => String::new(),
            _ => return,
        };
        let mut err = std::io::stderr();
        let _ = write!(err, "\r\x1b[2K");
        if !line.is_empty() {
            let _ = write!(err, "  [{:5.2}s] {line}", began.elapsed().as_secs_f64());
        }
        let _ = err.flush();
    };
    let orc = Orchestrator::launch_with(
        &ctx.host,
        settings,
        LaunchOptions {
            state_dir: ctx.state_dir.clone(),
            progress: &mut progress,
            abort: Some(crate::signals::catch_interrupt()),
        },
    )?;
    let elapsed = began.elapsed().as_secs_f64();
    let rec = orc.record();
    if ctx.json {
        let env: serde_json::Map<String, serde_json::Value> = orc
            .client_env()
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect();
        let v = json!({
            "db": orc.db_identifier(),
            "deployment": rec.deployment,
            "launcher": rec.launcher,
            "addresses": orc.addresses(),
            "env": env,
            "shards": rec.shards,
            "record_path": orc.record_path(),
            "dir": rec.dir,
            "elapsed_secs": elapsed,
            "loaded": rec.settings.preload,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "Orchestrator `{}` is ready: {}, {}, in {elapsed:.2} s",
            orc.db_identifier(),
            servers_text(&rec.settings),
            rec.deployment
        );
        for s in &rec.shards {
            println!(
                "  shard {:<3} {:<22} step {}",
                s.index,
                s.address.to_string(),
                s.step
            );
        }
        for o in &rec.settings.preload {
            println!("  loaded: {}", o.describe());
        }
        for (k, v) in orc.client_env() {
            println!("  {k}={v}");
        }
        println!("  reconnect file: {}", orc.record_path().display());
    }
    Ok(exit::code(exit::OK))
}

/// The orchestrators a command acts on.
fn targets(ctx: &Ctx, db: &str, all: bool) -> anyhow::Result<Vec<Orchestrator>> {
    if !all {
        return Ok(vec![Orchestrator::connect(&ctx.host, &ctx.state_dir, db)?]);
    }
    let found: Vec<Orchestrator> = Orchestrator::connect_all(&ctx.host, &ctx.state_dir)
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(found)
}

fn status(ctx: &Ctx, orcs: &[Orchestrator]) -> anyhow::Result<ExitCode> {
    let mut worst = exit::OK;
    let mut all = Vec::new();
    for orc in orcs {
        let st = orc.status()?;
        if st.state != orc_orchestrator::DbState::Ready {
            worst = exit::DEGRADED;
        }
        if ctx.json {
            all.push(serde_json::to_value(&st)?);
            continue;
        }
        println!(
            "Orchestrator `{}`: {} ({}, launcher {})",
            st.db_identifier,
            st.state.to_string().to_uppercase(),
            st.deployment,
            st.launcher
        );
        for (i, shard) in st.health.shards.iter().enumerate() {
            let step = match st.steps.get(i) {
                Some(Ok(s)) => s.to_string(),
                Some(Err(e)) => format!("unknown ({e})"),
                None => "unknown".into(),
            };
            let db = if shard.reachable {
                let mut parts = vec![format!("{} keys", shard.keys.unwrap_or(0))];
                if let Some(m) = &shard.replica_of {
                    parts.insert(0, format!("replica of {m}"));
                } else if shard.index >= st.masters && shard.role.as_deref() == Some("master") {
                    parts.insert(0, "master: a replica that took a shard over".into());
                } else if st.health.shards.len() > st.masters {
                    parts.insert(0, "master".into());
                }
                if let Some(m) = shard.used_memory {
                    parts.push(format!("{:.1} MiB", m as f64 / 1048576.0));
                }
                if let Some(c) = &shard.cluster_state {
                    parts.push(format!("cluster {c}, {} slots", shard.slots.unwrap_or(0)));
                }
                if !shard.modules.is_empty() {
                    parts.push(format!("modules: {}", shard.modules.join(", ")));
                }
                if !shard.ai_backends.is_empty() {
                    let names: Vec<&str> = shard
                        .ai_backends
                        .iter()
                        .filter_map(|b| b.split_whitespace().next())
                        .collect();
                    parts.push(format!("ML backends: {}", names.join(", ")));
                }
                format!("up ({})", parts.join(", "))
            } else {
                format!("DOWN ({})", shard.error.as_deref().unwrap_or("unreachable"))
            };
            // Under a workload manager, the node, when the address does not already say it
            // (so a lost node is named).
            let on = match st.hosts.get(i) {
                Some(h)
                    if st.launcher != "local" && !shard.address.starts_with(&format!("{h}:")) =>
                {
                    format!(" on {h}")
                }
                _ => String::new(),
            };
            println!(
                "  shard {:<3} {:<22} process {step}; database {db}{on}",
                shard.index, shard.address
            );
        }
        print_details(&st);
        for shard in &st.health.shards {
            for o in &shard.ai_not_loaded {
                println!(
                    "  shard {}: AI object stored but not loaded (its backend is missing or refused it): {o}",
                    shard.index
                );
            }
        }
        println!("  data: {}", st.dir.display());
    }
    if ctx.json {
        let v = if all.len() == 1 {
            all.remove(0)
        } else {
            serde_json::Value::Array(all)
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if orcs.is_empty() {
        println!(
            "No orchestrator is running (state directory {}).",
            ctx.state_dir.display()
        );
        worst = exit::NOT_RUNNING;
    }
    Ok(exit::code(worst))
}

fn heal(ctx: &Ctx, db: &str, timeout: f64) -> anyhow::Result<ExitCode> {
    if !timeout.is_finite() || timeout <= 0.0 {
        anyhow::bail!("--timeout must be a positive number of seconds");
    }
    let mut orc = Orchestrator::connect(&ctx.host, &ctx.state_dir, db)?;
    let healed = orc.heal(std::time::Duration::from_secs_f64(timeout))?;
    let st = orc.status()?;
    let whole = st.state == orc_orchestrator::DbState::Ready;
    if ctx.json {
        println!(
            "{}",
            json!({"db": db, "servers": healed, "state": st.state.to_string()})
        );
    } else {
        if healed.is_empty() {
            println!("Every server of `{db}` answers: nothing to start again.");
        }
        for h in &healed {
            println!("  shard {:<3} {:<22} {}", h.index, h.address, h.note);
        }
        println!(
            "Orchestrator `{db}`: {}",
            st.state.to_string().to_uppercase()
        );
        print_details(&st);
    }
    Ok(exit::code(if whole { exit::OK } else { exit::DEGRADED }))
}

fn address(ctx: &Ctx, db: &str, env: bool) -> anyhow::Result<ExitCode> {
    let orc = Orchestrator::connect(&ctx.host, &ctx.state_dir, db)?;
    if ctx.json {
        let envs: serde_json::Map<String, serde_json::Value> = orc
            .client_env()
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect();
        println!(
            "{}",
            json!({ "db": db, "addresses": orc.addresses(), "env": envs })
        );
    } else if env {
        for (k, v) in orc.client_env() {
            if orc_core::step::is_env_name(&k) {
                println!("{k}={}", orc_core::step::shell_quote(&v));
            } else {
                eprintln!(
                    "orc: `{k}` is not a shell variable name (the database identifier has a `-`); `orc run --db {db}` passes it to programs as it is"
                );
            }
        }
    } else {
        println!("{}", orc.addresses().join(","));
    }
    Ok(exit::code(exit::OK))
}

fn stop(ctx: &Ctx, orcs: Vec<Orchestrator>) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    let none = orcs.is_empty();
    for orc in orcs {
        let id = orc.db_identifier().to_string();
        let began = Instant::now();
        let report: Vec<ShardStop> = orc.stop()?;
        let secs = began.elapsed().as_secs_f64();
        if ctx.json {
            out.push(json!({ "db": id, "shards": report, "elapsed_secs": secs }));
        } else {
            println!("Orchestrator `{id}` stopped in {secs:.2} s");
            for s in &report {
                let what = match s.how {
                    StopWay::Shutdown => "shut down".to_string(),
                    StopWay::Cancelled => format!(
                        "did not shut down in time; cancelled by the launcher ({})",
                        s.status
                    ),
                    StopWay::AlreadyGone => format!("was already gone ({})", s.status),
                };
                println!("  shard {:<3} {:<22} {what}", s.index, s.address);
            }
        }
    }
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if none {
        println!(
            "No orchestrator is running (state directory {}).",
            ctx.state_dir.display()
        );
    }
    Ok(exit::code(exit::OK))
}

/// The lines `db status` (and `db heal`) print under the shards: the Unix socket, the
/// objects loaded at start, and the database's problems.
fn print_details(st: &orc_orchestrator::OrchestratorStatus) {
    if let Some(sock) = &st.unix_socket {
        println!("  unix socket {sock}");
    }
    for o in &st.loaded {
        println!("  loaded at start: {}", o.describe());
    }
    for p in &st.health.problems {
        println!("  problem: {p}");
    }
}
