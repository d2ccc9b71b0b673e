//! The real SmartRedis Python client (smartredis==0.6.1, from its package) against orc
//! orchestrators with orc-ai, unchanged: tensors of all 8 dtypes, datasets, aggregation
//! lists, ONNX models from files and bytes, run_model, get_model, get_ai_info, config_get,
//! in standalone and 3-shard cluster mode.
#![allow(clippy::unwrap_used)]

use orc_tests::*;

fn run_compat(shards: usize) {
    let state = State::new();
    let orc = launch(
        &static_host(),
        &state,
        ai_settings(&format!("sr{shards}"), shards, &["THREADS_PER_QUEUE", "2"]),
    )
    .unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/smartredis_compat.py");
    let mut cmd = std::process::Command::new(smartredis_python());
    cmd.arg(&script)
        .env("SR_LOG_LEVEL", "quiet")
        .env_remove("SSKEYIN")
        .env_remove("SSKEYOUT");
    // The client reads the unsuffixed variables; this database has its own identifier.
    cmd.env("SSDB", orc.addresses().join(",")).env(
        "SR_DB_TYPE",
        if orc.record().clustered {
            "Clustered"
        } else {
            "Standalone"
        },
    );
    let out = cmd.output().unwrap();
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("checks passed"),
        "SmartRedis checks failed ({shards} shard(s)):\n{stdout}\n{}",
        text(&out.stderr)
    );
    orc.stop().unwrap();
}

#[test]
fn smartredis_python_client_against_a_standalone_database() {
    run_compat(1);
}

#[test]
fn smartredis_python_client_against_a_three_shard_cluster() {
    run_compat(3);
}
