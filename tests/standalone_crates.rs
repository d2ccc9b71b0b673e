//! Each library crate can be added by itself to a new crate (`cargo add --path`) and
//! builds; orc-client pulls in no launcher and no orc-core.
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
    assert!(!tree.contains("orc-launcher"), "{tree}");
}
