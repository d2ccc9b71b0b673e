//! Each library crate can be added by itself to a new crate (`cargo add --path`) and
//! builds; orc-client pulls in no launcher and no orc-core; orc-core pulls in nothing of
//! the plugin machinery (abi_stable, inventory) and no libc; the launcher kit alone is
//! enough to write and register a launcher.
#![allow(clippy::unwrap_used)]

use std::{path::Path, process::Command};

use orc_tests::*;

fn workspace() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn cargo(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        // Its own target directory beside ours: no lock contention, reused between runs.
        .env(
            "CARGO_TARGET_DIR",
            target_dir().join("../standalone-crates"),
        )
        .output()
        .unwrap()
}

fn check(krate: &str, main: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = cargo(dir.path(), &["new", "--quiet", "--bin", "user"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let user = dir.path().join("user");
    let out = cargo(
        &user,
        &[
            "add",
            "--quiet",
            "--offline",
            "--path",
            workspace().join(krate).to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "cargo add {krate}: {}",
        text(&out.stderr)
    );
    std::fs::write(user.join("src/main.rs"), main).unwrap();
    let out = cargo(&user, &["run", "--quiet", "--offline", "-j", "2"]);
    assert!(
        out.status.success(),
        "building a crate that uses only {krate} failed:\n{}",
        text(&out.stderr)
    );
    let tree = cargo(
        &user,
        &["tree", "--offline", "--prefix", "none", "-e", "normal"],
    );
    text(&tree.stdout) + &text(&out.stdout)
}

#[test]
fn orc_client_alone() {
    let tree = check(
        "orc-client",
        "fn main() { println!(\"slot {}\", orc_client::hash_slot(b\"foo\")); }",
    );
    assert!(tree.contains("slot 12182"), "{tree}");
    assert!(
        !tree.contains("orc-launcher") && !tree.contains("orc-core"),
        "orc-client must not pull in launchers or orc-core:\n{tree}"
    );
}

#[test]
fn orc_core_alone() {
    let tree = check(
        "orc-core",
        "fn main() { println!(\"{}\", orc_core::OrchestratorSettings::with_shards(3).deployment_name()); }",
    );
    assert!(tree.contains("cluster"), "{tree}");
    for heavy in [
        "orc-launcher",
        "abi_stable",
        "inventory",
        "libc",
        "orc-plugin",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(heavy)),
            "orc-core must not pull in {heavy}:\n{tree}"
        );
    }
}

#[test]
fn the_launcher_kit_alone() {
    let tree = check(
        "orc-launcher-kit",
        r#"use orc_launcher_kit::prelude::*;
struct Mine(LocalLauncher);
impl Launcher for Mine {
    fn name(&self) -> &str { "mine" }
    fn launch(&self, s: &LaunchStep) -> Result<StepId> { self.0.launch(s) }
    fn status(&self, ids: &[StepId]) -> Result<Vec<StepStatus>> { self.0.status(ids) }
    fn cancel(&self, id: &StepId) -> Result<StepStatus> { self.0.cancel(id) }
    fn allocation(&self) -> Result<Allocation> { self.0.allocation() }
}
pub const PLUGIN: StaticPlugin = StaticPlugin {
    name: "mine", version: "0.1.0", description: "mine", crate_name: "user",
    factory: Factory::Launcher(|| Box::new(Mine(LocalLauncher::new()))),
};
orc_launcher_kit::register_plugin!(PLUGIN);
fn main() {
    let l = Mine(LocalLauncher::new());
    println!("{} {}", l.name(), l.allocation().unwrap().hosts.len());
}
"#,
    );
    assert!(tree.contains("mine 1"), "{tree}");
}
