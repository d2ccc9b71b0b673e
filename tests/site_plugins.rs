//! The site-admin path: `plugins/launcher-template` builds as a crate of its own (not
//! part of the workspace, not linked into `orc`), is found by `orc` on `$ORC_PLUGIN_PATH`,
//! passes the launcher conformance suite through the plugin ABI, and runs an orchestrator
//! for `orc db start --launcher template`.
#![allow(clippy::unwrap_used)]

use orc_host::PluginHost;
use orc_tests::*;

#[test]
fn the_template_builds_outside_the_workspace_loads_and_conforms() {
    let plugins = site_plugin("launcher-template", "orc_site_launcher_template");
    let lib = plugins.path().join("liborc_site_launcher_template.so");

    // `orc` finds it on its plugin path, and only there.
    let state = State::new();
    let out = state.orc(&["plugins"]);
    assert!(
        !text(&out.stdout).contains("template"),
        "{}",
        text(&out.stdout)
    );
    let out = state
        .orc_cmd(&["plugins"])
        .env("ORC_PLUGIN_PATH", plugins.path())
        .output()
        .unwrap();
    let listed = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = listed
        .lines()
        .find(|l| l.contains(" template "))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        line.starts_with("launcher") && line.contains(&lib.display().to_string()),
        "{line}"
    );
    assert!(
        listed.contains("orc-site-launcher-template 0.1.0"),
        "{listed}"
    );

    let mut host = PluginHost::new();
    host.load_file(&lib).unwrap();
    let l = host.launcher("template").unwrap();
    let dir = tempfile::tempdir().unwrap();
    conformance::run(&conformance::Target {
        launcher: l.as_ref(),
        dir: dir.path(),
        place: &|s| s,
    });

    // `orc` runs an orchestrator with it, and stops it.
    let port = free_port_range(1).to_string();
    let out = state
        .orc_cmd(&[
            "db",
            "start",
            "--launcher",
            "template",
            "--port",
            &port,
            "--json",
        ])
        .env("ORC_PLUGIN_PATH", plugins.path())
        .output()
        .unwrap();
    let v = start_json(&out);
    assert_eq!(v["launcher"], "template");
    let addrs = json_strings(&v, "addresses");
    assert_eq!(redis_cmd::<String>(&addrs[0], &["PING"]).unwrap(), "PONG");
    let out = state
        .orc_cmd(&["db", "stop"])
        .env("ORC_PLUGIN_PATH", plugins.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!listening(&addrs[0]));
}
