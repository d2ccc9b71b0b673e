//! `orc plugins`.

use std::process::ExitCode;

use crate::{Ctx, exit};

pub(crate) fn run(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let host = &ctx.host;
    if ctx.json {
        let v = serde_json::json!({
            "plugins": host.plugins().collect::<Vec<_>>(),
            "refused": host.refusals(),
            "searched": host.searched(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{:<11} {:<12} {:<8} SOURCE", "KIND", "NAME", "VERSION");
        for p in host.plugins() {
            println!(
                "{:<11} {:<12} {:<8} {}",
                p.kind.to_string(),
                p.name,
                p.version,
                p.source
            );
            println!("{:<33}{}", "", p.description);
        }
        if host.plugins().next().is_none() {
            println!("(none found)");
        }
        if !host.refusals().is_empty() {
            println!("\nRefused:");
            for r in host.refusals() {
                println!("  {r}");
            }
        }
        println!("\nSearched ($ORC_PLUGIN_PATH first, then next to the orc binary):");
        for s in host.searched() {
            let note = if s.prefixed_only {
                "  (liborc_plugin_*.so only)"
            } else {
                ""
            };
            println!("  {}{note}", s.path.display());
        }
    }
    Ok(exit::code(if host.refusals().is_empty() {
        exit::OK
    } else {
        exit::PLUGIN
    }))
}
