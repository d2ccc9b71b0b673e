//! Secure by default, against real `redis-server` shards with orc-ai: applications connect
//! as a restricted default user (data, lists and AI, never administration), orc as the
//! database's admin user; `--auth password` makes every client authenticate, `--auth none`
//! opens everything as SmartSim does; orc's files are private and checked on use; one orc
//! process at a time starts or stops a database; a start never loads data nobody kept on
//! purpose; and a start interrupted at any moment (a real `SIGINT`) leaves nothing.
#![allow(clippy::unwrap_used)]

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use orc_core::{Auth, Checkpoints};
use orc_orchestrator::{LaunchOptions, Orchestrator, Progress};
use orc_tests::*;

/// What a client without a password gets for `args` at `addr` (the error text, or "OK").
fn as_client(addr: &str, args: &[&str]) -> String {
    let mut con = connect(addr);
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    match cmd(&mut con, &args) {
        Ok(_) => "OK".into(),
        Err(e) => e.to_string(),
    }
}

fn refused(addr: &str, args: &[&str]) {
    let e = as_client(addr, args).to_ascii_uppercase();
    // NOPERM from the ACL or orc-ai; MODULE and DEBUG are also off for every user.
    assert!(
        e.contains("NOPERM") || e.contains("COMMAND NOT ALLOWED"),
        "{args:?} at {addr}: {e}"
    );
}

/// `args` passes the ACL at `addr` (a redirection to the shard owning the key counts).
fn allowed(addr: &str, args: &[&str]) {
    let e = as_client(addr, args);
    assert!(
        e == "OK" || e.starts_with("Moved:"),
        "{args:?} at {addr}: {e}"
    );
}

/// Every directory under `dir` is closed to others, and every file orc itself writes is
/// readable by its owner only (Redis's own data files lie in those closed directories).
fn assert_private_tree(dir: &Path) {
    let meta = std::fs::metadata(dir).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o700, "{}", dir.display());
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            assert_private_tree(&p);
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let redis_own =
            name.ends_with(".rdb") || name.starts_with("nodes") || name.contains("appendonly");
        if !redis_own {
            assert_eq!(meta.mode() & 0o077, 0, "{} is open to others", p.display());
        }
    }
}

fn ai_db(id: &str, shards: usize) -> orc_core::OrchestratorSettings {
    let mut s = ai_settings(id, shards, &[]);
    if shards > 1 {
        s.deployment = Some("cluster".into());
    }
    s
}

/// Administration is refused to clients; data, AI and the data-plane settings are not.
fn check_restricted(state: &State, id: &str, addr: &str, clustered: bool) {
    for args in [
        &["SHUTDOWN", "NOSAVE"][..],
        &["MODULE", "LIST"],
        &["MODULE", "LOAD", "/tmp/evil.so"],
        &["DEBUG", "SLEEP", "0"],
        &["ACL", "LIST"],
        &["ACL", "SETUSER", "default", "+@all"],
        &["REPLICAOF", "127.0.0.1", "1"],
        &["FAILOVER"],
        &["MONITOR"],
        &["CONFIG", "SET", "dir", "/tmp"],
        &["CONFIG", "SET", "dbfilename", "x.rdb"],
        &["CONFIG", "SET", "masterauth", "x"],
        &["CONFIG", "REWRITE"],
        &["AI.CONFIG", "LOADBACKEND", "TORCH", "/tmp/evil.so"],
        &["AI.CONFIG", "BACKENDSPATH", "/tmp"],
        &["CLUSTER", "RESET", "HARD"],
        &[
            "CLUSTER",
            "FORGET",
            "0123456789012345678901234567890123456789",
        ],
        &["CLUSTER", "MEET", "127.0.0.1", "1"],
        &["CLUSTER", "ADDSLOTS", "1"],
        &["CLUSTER", "SETSLOT", "1", "STABLE"],
        &["CLUSTER", "FAILOVER"],
    ] {
        refused(addr, args);
    }
    allowed(addr, &["SET", "{a}k", "v"]);
    allowed(addr, &["GET", "{a}k"]);
    allowed(addr, &["RPUSH", "{a}l", "1"]);
    allowed(
        addr,
        &["AI.TENSORSET", "{a}t", "FLOAT", "2", "VALUES", "1", "2"],
    );
    allowed(addr, &["AI.TENSORGET", "{a}t", "META"]);
    allowed(addr, &["CONFIG", "SET", "maxmemory", "1gb"]);
    allowed(addr, &["CONFIG", "GET", "maxmemory"]);
    allowed(addr, &["INFO"]);
    allowed(addr, &["SAVE"]);
    allowed(addr, &["FLUSHALL"]);
    if clustered {
        allowed(addr, &["CLUSTER", "INFO"]);
        allowed(addr, &["CLUSTER", "SLOTS"]);
        allowed(addr, &["CLUSTER", "NODES"]);
    }
    // The data-plane setting really took effect, as orc's admin sees it.
    let got: Vec<String> = state
        .admin_cmd(id, addr, &["CONFIG", "GET", "maxmemory"])
        .unwrap();
    assert_eq!(got[1], (1u64 << 30).to_string());
    // The admin secret is not among what clients may read.
    let e = as_client(addr, &["CONFIG", "GET", "masterauth"]);
    assert!(!e.contains(&admin_login(state.path(), id).1), "{e}");
}

#[test]
fn clients_of_a_standalone_shard_cannot_administer_it() {
    let state = State::new();
    let host = static_host();
    let orc = launch(&host, &state, ai_db("sec1", 1)).unwrap();
    let addr = orc.addresses()[0].clone();
    check_restricted(&state, "sec1", &addr, false);
    // orc's own connections work: status, config, and the files are private.
    assert!(orc.status().unwrap().health.ok);
    assert_private_tree(state.path());
    for f in [
        orc.record_path().to_path_buf(),
        state.path().join("sec1").join("secret.json"),
    ] {
        assert_eq!(
            std::fs::metadata(&f).unwrap().mode() & 0o777,
            0o600,
            "{}",
            f.display()
        );
    }
    let out = state.orc(&[
        "db",
        "config",
        "set",
        "--db",
        "sec1",
        "maxmemory-policy",
        "allkeys-lru",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pids = shard_pids(&orc);
    let out = state.orc(&["db", "stop", "--db", "sec1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_all_gone(&pids, &[addr]);
    assert!(
        !state.path().join("sec1").join("secret.json").exists(),
        "the secret outlives the database"
    );
}

#[test]
fn clients_of_a_cluster_cannot_administer_it() {
    let state = State::new();
    let host = static_host();
    let orc = launch(&host, &state, ai_db("sec3", 3)).unwrap();
    let addrs = orc.addresses();
    for a in &addrs {
        check_restricted(&state, "sec3", a, true);
    }
    assert!(orc.status().unwrap().health.ok);
    assert_private_tree(state.path());
    let pids = shard_pids(&orc);
    orc.stop().unwrap();
    assert_all_gone(&pids, &addrs);
}

#[test]
fn password_mode_makes_every_client_authenticate() {
    let state = State::new();
    let host = static_host();
    let mut s = ai_db("pw", 1);
    s.auth = Auth::Password;
    let orc = launch(&host, &state, s).unwrap();
    let addr = orc.addresses()[0].clone();
    let e = as_client(&addr, &["PING"]);
    assert!(
        e.contains("NOAUTH") || e.contains("Authentication required"),
        "{e}"
    );
    let env = orc.client_env();
    let file = env
        .iter()
        .find(|(k, _)| k == "SR_PASSWORD_FILE_pw")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{env:?}"));
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    // orc-client reads the password from the file the environment names.
    let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let cfg = orc_client::Config::from_lookup("pw", lookup).unwrap();
    let mut client = orc_client::Client::new(cfg).unwrap();
    client
        .put_tensor(
            "t",
            &orc_client::Tensor::from_slice(
                &[1.0f32, 2.0],
                &[2],
                orc_client::MemoryLayout::RowMajor,
            )
            .unwrap(),
        )
        .unwrap();
    assert!(client.tensor_exists("t").unwrap());
    // Still a restricted client: no administration with the client password either.
    let pw = std::fs::read_to_string(&file).unwrap();
    let client = redis::Client::open(format!("redis://:{pw}@{addr}/")).unwrap();
    let mut con = client.get_connection().unwrap();
    let e = redis::cmd("SHUTDOWN")
        .query::<()>(&mut con)
        .unwrap_err()
        .to_string();
    assert!(e.to_ascii_uppercase().contains("NOPERM"), "{e}");
    // orc itself still works.
    assert!(orc.status().unwrap().health.ok);
    let out = state.orc(&[
        "db", "start", "--db", "pw2", "--port", "0", "--no-ai", "--auth", "password",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("SmartRedis clients cannot authenticate"),
        "{}",
        text(&out.stderr)
    );
    // `orc run` gives applications the password file (and nothing of the admin's).
    let out = state.orc(&["run", "--db", "pw2", "--", "sh", "-c", "env"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let env_text = text(&out.stdout);
    let file = state.path().join("pw2").join("client-password");
    assert!(
        env_text.contains(&format!("SR_PASSWORD_FILE_pw2={}", file.display())),
        "{env_text}"
    );
    assert!(
        !env_text.contains(&admin_login(state.path(), "pw2").1),
        "the admin secret leaked"
    );
    assert!(state.orc(&["db", "stop", "--db", "pw2"]).status.success());
    orc.stop().unwrap();
    assert!(
        !Path::new(&file).exists(),
        "the client password outlives the database"
    );
}

#[test]
fn auth_none_is_open_as_smartsim_runs_it() {
    let state = State::new();
    let host = static_host();
    let mut s = ai_db("open", 1);
    s.auth = Auth::Open;
    let orc = launch(&host, &state, s).unwrap();
    let addr = orc.addresses()[0].clone();
    allowed(&addr, &["CONFIG", "SET", "save", ""]);
    allowed(&addr, &["MODULE", "LIST"]);
    assert!(!state.path().join("open").join("secret.json").exists());
    assert!(orc.status().unwrap().health.ok);
    orc.stop().unwrap();
}

#[test]
fn state_open_to_others_is_refused() {
    let state = State::new();
    let host = static_host();
    // A state directory others can write: refused before anything starts.
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = launch(&host, &state, settings("loose", 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("can be written by other users"), "{e}");
    assert!(!state.path().join("loose.json").exists());
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o700)).unwrap();

    // A reconnect file of another user is never trusted.
    let orc = launch(&host, &state, settings("theirs", 1)).unwrap();
    let record = orc.record_path().to_path_buf();
    let addrs = orc.addresses();
    drop(orc);
    if orc_secure::euid() == 0 {
        std::os::unix::fs::chown(&record, Some(65534), Some(65534)).unwrap();
        let e = Orchestrator::connect(&host, state.path(), "theirs")
            .unwrap_err()
            .to_string();
        assert!(e.contains("belongs to uid 65534"), "{e}");
        let out = state.orc(&["db", "stop", "--db", "theirs"]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("belongs to uid 65534"),
            "{}",
            text(&out.stderr)
        );
        std::os::unix::fs::chown(&record, Some(0), Some(0)).unwrap();
    }
    // A secret others can read is treated as known to them.
    let secret = state.path().join("theirs").join("secret.json");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Orchestrator::connect(&host, state.path(), "theirs")
        .unwrap_err()
        .to_string();
    assert!(e.contains("can be read or written by other users"), "{e}");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    Orchestrator::connect(&host, state.path(), "theirs")
        .unwrap()
        .stop()
        .unwrap();
    assert_all_gone(&[], &addrs);
}

#[test]
fn one_orc_at_a_time_starts_a_database() {
    let state = State::new();
    let start = || {
        state
            .orc_cmd(&[
                "db", "start", "--db", "twin", "--port", "0", "--no-ai", "--shards", "3",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let ok = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "{}\n{}", text(&a.stderr), text(&b.stderr));
    let loser = if a.status.success() { &b } else { &a };
    let e = text(&loser.stderr);
    assert!(
        e.contains("is being started or stopped by another orc process")
            || e.contains("is already running"),
        "{e}"
    );
    // Exactly one database's shards run, and stopping it leaves nothing.
    let orc = Orchestrator::connect(&static_host(), state.path(), "twin").unwrap();
    let pids = shard_pids(&orc);
    let addrs = orc.addresses();
    assert_eq!(pids.len(), 3);
    drop(orc);
    assert!(state.orc(&["db", "stop", "--db", "twin"]).status.success());
    assert_all_gone(&pids, &addrs);
    assert_no_process_under(state.path());
}

/// No process runs with `dir` on its command line (a shard's config lies under it).
fn assert_no_process_under(dir: &Path) {
    let ok = wait_for(Duration::from_secs(10), || {
        let out = Command::new("pgrep")
            .args(["-f", &dir.display().to_string()])
            .output()
            .unwrap();
        text(&out.stdout).trim().is_empty()
    });
    assert!(ok, "processes left under {}", dir.display());
}

#[test]
fn a_start_never_loads_data_nobody_kept() {
    for shards in [1usize, 3] {
        let state = State::new();
        let host = static_host();
        let mut s = settings(&format!("stale{shards}"), shards);
        // Fixed ports: a checkpointed cluster restarts from its nodes files, named by port.
        s.port = free_port_range(shards as u16);
        if shards > 1 {
            s.deployment = Some("cluster".into());
        }
        let orc = launch(&host, &state, s.clone()).unwrap();
        // A client saves (SmartRedis `save()`): an RDB lands in the data directory.
        for a in orc.addresses() {
            let mut con = connect(&a);
            let _ = cmd(&mut con, &[b"SET", b"{x}old", b"1"]);
            cmd(&mut con, &[b"SAVE"]).unwrap();
        }
        orc.stop().unwrap();
        // Without checkpoints the next start comes up empty (and, clustered, forms).
        let orc = launch(&host, &state, s.clone()).unwrap();
        for a in orc.addresses() {
            let n: i64 = redis_cmd(&a, &["DBSIZE"]).unwrap();
            assert_eq!(n, 0, "{shards} shard(s): {a} loaded data nobody kept");
        }
        orc.stop().unwrap();
        // With checkpoints, data is kept on purpose and comes back.
        s.redis.checkpoints = Some(Checkpoints {
            every_secs: 3600,
            min_changes: 1,
        });
        let orc = launch(&host, &state, s.clone()).unwrap();
        for a in orc.addresses() {
            let _ = redis_cmd::<()>(&a, &["SET", "{x}kept", "1"]);
        }
        orc.stop().unwrap();
        let orc = launch(&host, &state, s).unwrap();
        let kept: i64 = orc
            .addresses()
            .iter()
            .map(|a| redis_cmd::<i64>(a, &["DBSIZE"]).unwrap())
            .sum();
        assert_eq!(kept, 1, "{shards} shard(s): checkpointed data lost");
        orc.stop().unwrap();
    }
}

#[test]
fn an_abort_while_forming_leaves_nothing() {
    let state = State::new();
    let host = static_host();
    let abort = Arc::new(AtomicBool::new(false));
    let mut s = settings("forming", 3);
    s.deployment = Some("cluster".into());
    let flag = abort.clone();
    let mut progress = move |p: &Progress| {
        if matches!(p, Progress::Forming) {
            flag.store(true, Ordering::SeqCst);
        }
    };
    let e = Orchestrator::launch_with(
        &host,
        s,
        LaunchOptions {
            state_dir: state.path().to_path_buf(),
            progress: &mut progress,
            abort: Some(abort),
        },
    )
    .unwrap_err();
    assert!(matches!(e, orc_core::Error::Interrupted), "{e}");
    assert!(orc_orchestrator::record::list_records(state.path()).is_empty());
    assert_no_process_under(state.path());
}

#[test]
fn ctrl_c_at_any_moment_of_a_start_leaves_nothing() {
    let state = State::new();
    let port = free_port_range(3);
    let addrs: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", port + i)).collect();
    let mut interrupted = 0;
    for delay_ms in [0u64, 150, 400, 800, 1200, 1700, 2500] {
        let child = state
            .orc_cmd(&[
                "db",
                "start",
                "--db",
                "ctrlc",
                "--no-ai",
                "--shards",
                "3",
                "--port",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let t = Instant::now();
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let out = child.wait_with_output().unwrap();
        let code = out.status.code();
        if code == Some(0) {
            // It was ready before the signal came: a normal stop cleans up.
            assert!(state.orc(&["db", "stop", "--db", "ctrlc"]).status.success());
        } else {
            interrupted += 1;
            // Killed by the signal before orc caught it (nothing launched yet), or 130.
            assert!(
                code == Some(130) || (code.is_none() && delay_ms < 200),
                "after {delay_ms} ms: {:?}: {}",
                out.status,
                text(&out.stderr)
            );
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "after {delay_ms} ms: slow to stop"
            );
        }
        assert_no_process_under(state.path());
        for a in &addrs {
            assert!(
                wait_for(Duration::from_secs(5), || !listening(a)),
                "after {delay_ms} ms: {a} still listens"
            );
        }
        assert!(
            orc_orchestrator::record::list_records(state.path()).is_empty(),
            "after {delay_ms} ms: a reconnect file is left"
        );
    }
    assert!(
        interrupted >= 3,
        "only {interrupted} starts were interrupted"
    );
}

#[test]
fn environment_lines_are_only_valid_names() {
    let state = State::new();
    let out = state.orc(&["db", "start", "--db", "my-db", "--port", "0", "--no-ai"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = state.orc(&["db", "address", "--db", "my-db", "--env"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains("my-db"),
        "an invalid name was printed: {stdout}"
    );
    assert!(
        text(&out.stderr).contains("SSDB_my-db"),
        "{}",
        text(&out.stderr)
    );
    assert!(state.orc(&["db", "stop", "--db", "my-db"]).status.success());
}

#[test]
fn a_record_from_another_host_is_never_deleted() {
    let state = State::new();
    let host = static_host();
    let orc = launch(&host, &state, settings("far", 1)).unwrap();
    let record = orc.record_path().to_path_buf();
    let addrs = orc.addresses();
    let pids = shard_pids(&orc);
    drop(orc);
    let rewrite = |on: &str| {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
        v["launched_on"] = on.into();
        std::fs::write(&record, serde_json::to_vec(&v).unwrap()).unwrap();
    };
    // As if it had been started on another node sharing this state directory.
    rewrite("node-far-away");
    let orc = Orchestrator::connect(&host, state.path(), "far").unwrap();
    assert_eq!(orc.runs_elsewhere().as_deref(), Some("node-far-away"));
    let st = orc.status().unwrap();
    let step = st.steps[0].as_ref().unwrap_err();
    assert!(step.contains("runs on host node-far-away"), "{step}");
    let out = state.orc(&["db", "status", "--db", "far"]);
    assert!(
        text(&out.stdout).contains("node-far-away") || text(&out.stderr).contains("node-far-away"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // Neither a stop nor a new start removes it: from here the shards only look gone.
    for args in [
        &["db", "stop", "--db", "far"][..],
        &["db", "start", "--db", "far", "--port", "0", "--no-ai"],
    ] {
        let out = state.orc(args);
        assert!(!out.status.success(), "{args:?}");
        let e = text(&out.stderr);
        assert!(e.contains("runs on host node-far-away"), "{args:?}: {e}");
        assert!(record.exists(), "{args:?} removed the record");
    }
    assert!(listening(&addrs[0]), "the shard was stopped");
    // Back on its own host, it stops as usual.
    rewrite(&orc_net::hostname());
    assert!(state.orc(&["db", "stop", "--db", "far"]).status.success());
    assert_all_gone(&pids, &addrs);
}

/// A connection to `addr` over TLS trusting `ca`, logged in as the admin of `db`.
fn tls_admin(state: &State, db: &str, addr: &str, ca: &Path) -> redis::Connection {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(std::fs::read(ca).unwrap()),
    };
    let client = redis::Client::build_with_tls(format!("rediss://{addr}/"), certs).unwrap();
    let mut con = client.get_connection().unwrap();
    let (user, secret) = admin_login(state.path(), db);
    redis::cmd("AUTH")
        .arg(user)
        .arg(secret)
        .query::<()>(&mut con)
        .unwrap();
    con
}

#[test]
fn tls_on_every_link_of_a_three_shard_cluster() {
    let state = State::new();
    let host = static_host();
    let mut s = ai_db("tls3", 3);
    s.tls = Some(orc_core::Tls::Generate);
    let orc = launch(&host, &state, s).unwrap();
    let addrs = orc.addresses();
    let env = orc.client_env();
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("SR_TLS_tls3").as_deref(), Some("1"), "{env:?}");
    let ca = std::path::PathBuf::from(get("SR_TLS_CA_FILE_tls3").unwrap());
    // The generated files are private.
    for f in ["ca.crt", "shard.crt", "shard.key"] {
        let p = state.path().join("tls3/tls").join(f);
        assert_eq!(
            std::fs::metadata(&p).unwrap().mode() & 0o777,
            0o600,
            "{}",
            p.display()
        );
    }
    for a in &addrs {
        // No plain-text client gets an answer.
        let plain = redis_cmd::<String>(a, &["PING"]);
        assert!(plain.is_err(), "{a} answered in plain text: {plain:?}");
        // Client, replication and cluster-bus links are all TLS.
        let mut con = tls_admin(&state, "tls3", a, &ca);
        for key in ["tls-cluster", "tls-replication"] {
            let v: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(key)
                .query(&mut con)
                .unwrap();
            assert_eq!(v[1], "yes", "{a}: {key}");
        }
        let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut con).unwrap();
        assert!(info.contains("cluster_state:ok"), "{a}: {info}");
        let me: String = redis::cmd("ACL").arg("WHOAMI").query(&mut con).unwrap();
        assert_eq!(me, "orc-admin");
        // A client without the admin secret is still restricted over TLS.
        let certs = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(&ca).unwrap()),
        };
        let mut plain_user = redis::Client::build_with_tls(format!("rediss://{a}/"), certs)
            .unwrap()
            .get_connection()
            .unwrap();
        let e = redis::cmd("SHUTDOWN")
            .arg("NOSAVE")
            .query::<()>(&mut plain_user)
            .unwrap_err()
            .to_string();
        assert!(e.to_ascii_uppercase().contains("NOPERM"), "{a}: {e}");
    }
    // orc's own connections (status) and orc-client (from the environment orc gives) work.
    assert!(orc.status().unwrap().health.ok);
    let cfg = orc_client::Config::from_lookup("tls3", |k| get(k)).unwrap();
    let mut client = orc_client::Client::new(cfg).unwrap();
    for i in 0..20 {
        let t =
            orc_client::Tensor::from_slice(&[i as f32], &[1], orc_client::MemoryLayout::RowMajor)
                .unwrap();
        client.put_tensor(&format!("t{i}"), &t).unwrap();
    }
    for i in 0..20 {
        assert!(client.tensor_exists(&format!("t{i}")).unwrap());
    }
    // A client that does not trust the database's authority is refused.
    let other = tempfile::tempdir().unwrap();
    let foreign = orc_secure::tls::generate(other.path(), &["127.0.0.1".into()], "x").unwrap();
    let cfg = orc_client::Config::new(&[addrs[0].as_str()], true)
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .tls(Some(&foreign.ca));
    assert!(
        orc_client::Client::new(cfg).is_err(),
        "a foreign authority was trusted"
    );
    let pids = shard_pids(&orc);
    orc.stop().unwrap();
    assert_all_gone(&pids, &addrs);
    assert!(
        !state.path().join("tls3/tls").exists(),
        "the generated key outlives the database"
    );

    // Certificates of one's own: given files are used as they are.
    let mine = tempfile::tempdir().unwrap();
    let files = orc_secure::tls::generate(mine.path(), &["127.0.0.1".into()], "mine").unwrap();
    let mut s = settings("tlsown", 1);
    s.tls = Some(orc_core::Tls::Files(files.clone()));
    let orc = launch(&host, &state, s).unwrap();
    let mut con = tls_admin(&state, "tlsown", &orc.addresses()[0], &files.ca);
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-cert-file")
        .query(&mut con)
        .unwrap();
    assert_eq!(v[1], files.cert.display().to_string());
    orc.stop().unwrap();
    assert!(files.key.exists(), "a given key was removed");
    // --tls with an open database is refused.
    let mut s = settings("tlsopen", 1);
    s.tls = Some(orc_core::Tls::Generate);
    s.auth = Auth::Open;
    let e = launch(&host, &state, s).unwrap_err().to_string();
    assert!(e.contains("TLS guards a protected database"), "{e}");
}
