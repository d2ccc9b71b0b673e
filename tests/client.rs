//! orc-client against real orchestrators with orc-ai: the whole API in standalone and
//! 3-shard cluster mode, key prefixing, and bad input.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use orc_client::{Client, Config, DataSet, Error, MemoryLayout, ModelOptions, Tensor, TensorType};
use orc_tests::*;

fn client_for(orc: &orc_orchestrator::Orchestrator) -> Client {
    let addrs: Vec<String> = orc.addresses();
    let a: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let cfg = Config::new(&a, orc.record().clustered)
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .command_timeout(Duration::from_secs(10))
        .intervals(Duration::from_millis(50), Duration::from_millis(50));
    Client::new(cfg).unwrap()
}

fn every_type(c: &mut Client) {
    for (i, dims) in [vec![5], vec![3, 4], vec![2, 3, 4]].into_iter().enumerate() {
        let n: usize = dims.iter().product();
        macro_rules! roundtrip {
            ($t:ty, $tt:expr) => {{
                let v: Vec<$t> = (0..n).map(|k| (k as i64 % 100 - 50) as $t).collect();
                let name = format!("t_{:?}_{i}", $tt);
                c.put_tensor_slice(&name, &v, &dims, MemoryLayout::RowMajor)
                    .unwrap();
                let t = c.get_tensor(&name).unwrap();
                assert_eq!(t.dtype, $tt);
                assert_eq!(t.dims, dims);
                assert_eq!(t.to_vec::<$t>(MemoryLayout::RowMajor).unwrap(), v);
                // Fortran order in, Fortran order out; row-major in the database.
                c.put_tensor_slice(&format!("{name}_f"), &v, &dims, MemoryLayout::ColumnMajor)
                    .unwrap();
                let mut out = vec![<$t>::default(); n];
                c.unpack_tensor(
                    &format!("{name}_f"),
                    &mut out,
                    &dims,
                    MemoryLayout::ColumnMajor,
                )
                .unwrap();
                assert_eq!(out, v);
            }};
        }
        roundtrip!(f64, TensorType::Double);
        roundtrip!(f32, TensorType::Float);
        roundtrip!(i8, TensorType::Int8);
        roundtrip!(i16, TensorType::Int16);
        roundtrip!(i32, TensorType::Int32);
        roundtrip!(i64, TensorType::Int64);
        roundtrip!(u8, TensorType::Uint8);
        roundtrip!(u16, TensorType::Uint16);
    }
}

fn whole_api(shards: usize) {
    let state = State::new();
    let orc = launch(
        &static_host(),
        &state,
        // A small chunk floor so that a tiny model comes back in several chunks.
        ai_settings(
            &format!("cl{shards}"),
            shards,
            &["MODEL_CHUNK_SIZE_MIN", "16"],
        ),
    )
    .unwrap();
    let mut c = client_for(&orc);
    assert_eq!(c.is_cluster(), shards > 1);
    every_type(&mut c);

    // Tensor operations (keys on different slots in a cluster).
    c.put_tensor_slice("alpha", &[1.0f32, 2.0], &[2], MemoryLayout::RowMajor)
        .unwrap();
    c.copy_tensor("alpha", "beta_copy").unwrap();
    assert_eq!(
        c.get_tensor("beta_copy")
            .unwrap()
            .to_vec::<f32>(MemoryLayout::RowMajor)
            .unwrap(),
        [1.0, 2.0]
    );
    c.rename_tensor("beta_copy", "gamma").unwrap();
    assert!(!c.tensor_exists("beta_copy").unwrap() && c.tensor_exists("gamma").unwrap());
    c.delete_tensor("gamma").unwrap();
    assert!(!c.tensor_exists("gamma").unwrap());
    assert!(c.poll_tensor("alpha", 5, 2).unwrap());
    assert!(!c.poll_key("nope", 5, 2).unwrap());
    assert!(matches!(c.get_tensor("nope"), Err(Error::NotFound { .. })));
    let mut small = [0f32; 3];
    assert!(
        c.unpack_tensor("alpha", &mut small, &[2], MemoryLayout::RowMajor)
            .is_err(),
        "wrong buffer size"
    );
    assert!(
        c.unpack_tensor("alpha", &mut small[..2], &[1, 2], MemoryLayout::RowMajor)
            .is_err(),
        "wrong dims"
    );
    assert!(
        c.unpack_tensor::<f64>("alpha", &mut [0.0; 2], &[2], MemoryLayout::RowMajor)
            .is_err(),
        "wrong type"
    );
    assert!(matches!(
        c.put_tensor(
            "",
            &Tensor::from_slice(&[1u8], &[1], MemoryLayout::RowMajor).unwrap()
        ),
        Err(Error::Invalid(_))
    ));

    // Datasets and aggregation lists.
    for step in 0..3 {
        let mut ds = DataSet::new(&format!("step_{step}")).unwrap();
        ds.add_tensor(
            "u",
            Tensor::from_slice(&[step as f64; 4], &[2, 2], MemoryLayout::RowMajor).unwrap(),
        )
        .unwrap();
        ds.add_meta_scalar("time", 0.5 * step as f64).unwrap();
        ds.add_meta_scalar("step", step as i64).unwrap();
        ds.add_meta_string("units", "m/s").unwrap();
        c.put_dataset(&ds).unwrap();
        c.append_to_list("steps", &ds).unwrap();
    }
    assert!(c.dataset_exists("step_1").unwrap());
    let ds = c.get_dataset("step_2").unwrap();
    assert_eq!(
        ds.get_tensor("u")
            .unwrap()
            .to_vec::<f64>(MemoryLayout::RowMajor)
            .unwrap(),
        [2.0; 4]
    );
    assert_eq!(ds.get_meta_scalars::<i64>("step").unwrap(), [2]);
    assert_eq!(ds.get_meta_strings("units").unwrap(), ["m/s"]);
    assert_eq!(c.get_list_length("steps").unwrap(), 3);
    assert!(c.poll_list_length("steps", 3, 5, 2).unwrap());
    assert!(c.poll_list_length_gte("steps", 2, 5, 2).unwrap());
    assert!(c.poll_list_length_lte("steps", 3, 5, 2).unwrap());
    assert!(!c.poll_list_length_lte("steps", 2, 5, 2).unwrap());
    let names: Vec<String> = c
        .get_datasets_from_list("steps")
        .unwrap()
        .iter()
        .map(|d| d.name().to_string())
        .collect();
    assert_eq!(names, ["step_0", "step_1", "step_2"]);
    assert_eq!(c.get_dataset_list_range("steps", -2, -1).unwrap().len(), 2);
    c.copy_list("steps", "steps2").unwrap();
    c.rename_list("steps2", "steps3").unwrap();
    assert_eq!(c.get_list_length("steps3").unwrap(), 3);
    assert_eq!(c.get_list_length("steps2").unwrap(), 0);
    c.copy_dataset("step_0", "copied").unwrap();
    c.rename_dataset("copied", "renamed").unwrap();
    assert!(!c.dataset_exists("copied").unwrap());
    assert_eq!(
        c.get_dataset("renamed")
            .unwrap()
            .get_meta_scalars::<f64>("time")
            .unwrap(),
        [0.0]
    );
    c.delete_dataset("renamed").unwrap();
    assert!(matches!(
        c.get_dataset("renamed"),
        Err(Error::NotFound { .. })
    ));
    c.delete_list("steps3").unwrap();

    // Models and scripts (per-shard copies in a cluster), chunked models.
    let lin = std::fs::read(data_file("models/linear.onnx")).unwrap();
    c.set_model_chunk_size(64).unwrap();
    c.set_model("lin", &lin, "onnx", &ModelOptions::cpu().tag("v2"))
        .unwrap();
    assert_eq!(
        c.get_model("lin").unwrap(),
        lin,
        "multi-chunk replies are joined"
    );
    assert!(c.model_exists("lin").unwrap());
    c.put_tensor_slice(
        "x",
        &[1.0f32, 0.0, 0.0, 0.0, 1.0, 1.0],
        &[2, 3],
        MemoryLayout::RowMajor,
    )
    .unwrap();
    c.run_model("lin", &["x"], &["y"]).unwrap();
    assert_eq!(
        c.get_tensor("y")
            .unwrap()
            .to_vec::<f32>(MemoryLayout::RowMajor)
            .unwrap(),
        [1.5, 1.0, 8.5, 9.0]
    );
    c.set_model_from_file(
        "torch_lin",
        &data_file("models/lin.pt"),
        "TORCH",
        &ModelOptions::cpu(),
    )
    .unwrap();
    c.run_model("torch_lin", &["x"], &["ty"]).unwrap();
    assert_eq!(
        c.get_tensor("ty")
            .unwrap()
            .to_vec::<f32>(MemoryLayout::RowMajor)
            .unwrap(),
        [1.5, 1.0, 8.5, 9.0]
    );
    c.set_script("dbl", "def double(a):\n    return a * 2\n", "cpu")
        .unwrap();
    assert!(c.get_script("dbl").unwrap().contains("def double"));
    c.run_script("dbl", "double", &["alpha"], &["alpha2"])
        .unwrap();
    assert_eq!(
        c.get_tensor("alpha2")
            .unwrap()
            .to_vec::<f32>(MemoryLayout::RowMajor)
            .unwrap(),
        [2.0, 4.0]
    );
    c.set_script_from_file("legacy", &data_file("scripts/legacy.py"), "CPU")
        .unwrap();
    c.run_script("legacy", "sum_list", &["alpha", "alpha2"], &["s"])
        .unwrap();
    assert_eq!(
        c.get_tensor("s")
            .unwrap()
            .to_vec::<f32>(MemoryLayout::RowMajor)
            .unwrap(),
        [3.0, 6.0]
    );
    let addrs = orc.addresses();
    let a0 = addrs[0].as_str();
    let all: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let calls: u64 = all
        .iter()
        .map(|a| {
            c.get_ai_info(a, "lin", false).unwrap()["calls"]
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(calls, 1);
    assert_eq!(c.get_ai_info(a0, "lin", false).unwrap()["backend"], "ONNX");
    c.delete_model("lin").unwrap();
    assert!(!c.model_exists("lin").unwrap());
    assert!(matches!(c.delete_model("lin"), Err(Error::NotFound { .. })));
    c.delete_script("dbl").unwrap();
    assert!(matches!(c.get_script("dbl"), Err(Error::NotFound { .. })));
    assert!(matches!(
        c.set_model("bad", &lin, "CAFFE", &ModelOptions::cpu()),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        c.set_model("bad", &lin, "ONNX", &ModelOptions::cpu().batching(0, 2, 0)),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        c.set_model("bad", &lin, "ONNX", &ModelOptions::cpu().io(&["a"], &["b"])),
        Err(Error::Invalid(_))
    ));

    // Admin calls.
    let info = c.get_db_node_info(&[a0]).unwrap();
    assert!(info[0]["Persistence"].contains_key("rdb_last_save_time"));
    if shards > 1 {
        assert_eq!(
            c.get_db_cluster_info(&[a0]).unwrap()[0]["cluster_state"],
            "ok"
        );
    } else {
        assert!(c.get_db_cluster_info(&[a0]).is_err());
    }
    c.config_set("lua-time-limit", "6000", a0).unwrap();
    assert_eq!(
        c.config_get("lua-time-limit", a0).unwrap()["lua-time-limit"],
        "6000"
    );
    assert!(c.config_get("nosuchparam", a0).unwrap().is_empty());
    assert!(c.config_set("nosuchparam", "1", a0).is_err());
    c.save(&[a0]).unwrap();
    assert!(
        c.get_db_node_info(&["127.0.0.1:1"]).is_err(),
        "addresses outside the database are refused"
    );
    c.flush_db(&all).unwrap();
    assert!(!c.tensor_exists("alpha").unwrap());
    orc.stop().unwrap();
}

#[test]
fn whole_api_against_a_standalone_database() {
    whole_api(1);
}

#[test]
fn whole_api_against_a_three_shard_cluster() {
    whole_api(3);
}

#[test]
fn ensemble_key_prefixes() {
    let state = State::new();
    let orc = launch(&static_host(), &state, ai_settings("prefix", 1, &[])).unwrap();
    let addr = orc.addresses()[0].clone();
    let env = |out: &str, inn: &str| {
        let vars = [
            ("SSDB", addr.clone()),
            ("SR_DB_TYPE", "Standalone".to_string()),
            ("SSKEYOUT", out.to_string()),
            ("SSKEYIN", inn.to_string()),
        ];
        Config::from_lookup("", move |k| {
            vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        })
        .unwrap()
    };
    let mut producer = Client::new(env("sim_0", "")).unwrap();
    producer
        .put_tensor_slice("u", &[1i32], &[1], MemoryLayout::RowMajor)
        .unwrap();
    let mut ds = DataSet::new("d").unwrap();
    ds.add_meta_scalar("k", 1u64).unwrap();
    producer.put_dataset(&ds).unwrap();
    producer.append_to_list("l", &ds).unwrap();
    assert!(producer.key_exists("sim_0.u").unwrap());
    assert!(producer.key_exists("sim_0.{d}.meta").unwrap());
    assert!(producer.key_exists("sim_0.l").unwrap());
    let mut consumer = Client::new(env("ml", "sim_1,sim_0")).unwrap();
    assert!(
        !consumer.tensor_exists("u").unwrap(),
        "reads from the first SSKEYIN entry"
    );
    consumer.set_data_source("sim_0").unwrap();
    assert!(consumer.tensor_exists("u").unwrap());
    assert_eq!(consumer.get_datasets_from_list("l").unwrap()[0].name(), "d");
    assert!(consumer.set_data_source("elsewhere").is_err());
    consumer.use_tensor_ensemble_prefix(false);
    assert!(!consumer.tensor_exists("u").unwrap());
    orc.stop().unwrap();
}

#[test]
fn bad_configurations_and_servers_give_clear_errors() {
    // Unreachable: an error after the configured timeout that names the addresses.
    let cfg = Config::new(&["127.0.0.1:1"], false)
        .unwrap()
        .connect_timeout(Duration::from_millis(300))
        .intervals(Duration::from_millis(100), Duration::from_millis(100));
    let began = std::time::Instant::now();
    let e = Client::new(cfg).unwrap_err();
    assert!(matches!(e, Error::Connection { .. }), "{e}");
    assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    assert!(began.elapsed() < Duration::from_secs(5));
    // Malformed SSDB.
    for bad in ["", "nohostport", "h:1;x"] {
        let e = Config::from_lookup("", |k| (k == "SSDB").then(|| bad.to_string())).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{bad}: {e}");
    }
    // A server without orc-ai: the error says the module is missing.
    let state = State::new();
    let orc = launch(&static_host(), &state, settings("plain", 1)).unwrap();
    let mut c = client_for(&orc);
    let e = c
        .put_tensor_slice("t", &[1u8], &[1], MemoryLayout::RowMajor)
        .unwrap_err();
    assert!(matches!(e, Error::ModuleMissing { .. }), "{e}");
    assert!(e.to_string().contains("orc-ai module"), "{e}");
    // Keys of the wrong type.
    redis_cmd::<()>(&orc.addresses()[0], &["SET", "s", "x"]).unwrap();
    // A cluster client against a standalone server is told to fix SR_DB_TYPE.
    let a = orc.addresses();
    let cfg = Config::new(&[a[0].as_str()], true)
        .unwrap()
        .connect_timeout(Duration::from_millis(200));
    let e = Client::new(cfg).unwrap_err().to_string();
    assert!(e.contains("SR_DB_TYPE"), "{e}");
    orc.stop().unwrap();
    // With orc-ai: wrong key types and a dataset without its ack.
    let orc = launch(&static_host(), &state, ai_settings("ai2", 1, &[])).unwrap();
    let mut c = client_for(&orc);
    redis_cmd::<()>(&orc.addresses()[0], &["SET", "s", "x"]).unwrap();
    let e = c.get_tensor("s").unwrap_err().to_string();
    assert!(e.contains("WRONGTYPE"), "{e}");
    redis_cmd::<()>(
        &orc.addresses()[0],
        &["HSET", "{half}.meta", "x", "\u{4}\u{1}\0\0\0\0\0\0\0"],
    )
    .unwrap();
    assert!(
        !c.dataset_exists("half").unwrap(),
        "no .COMPLETE mark: not complete"
    );
    assert!(!c.poll_dataset("half", 5, 2).unwrap());
    orc.stop().unwrap();
}

/// Shuts down and reaps a `redis-server` the test started itself.
struct Server(String, std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::process::Command::new("redis-cli")
            .args(["-u", &self.0, "SHUTDOWN", "NOSAVE"])
            .output();
        let _ = self.1.kill();
        let _ = self.1.wait();
    }
}

#[test]
fn password_protected_databases() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--requirepass",
            "s3cret",
        ])
        .arg("--loadmodule")
        .arg(plugin_file("orc_ai"))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(format!("redis://:s3cret@127.0.0.1:{port}"), child);
    let addr = format!("127.0.0.1:{port}");
    assert!(wait_for(Duration::from_secs(5), || listening(&addr)));
    let quick = |cfg: Config| {
        cfg.connect_timeout(Duration::from_millis(500))
            .intervals(Duration::from_millis(100), Duration::from_millis(100))
    };
    // Without the password: a clear connection error.
    let e = Client::new(quick(Config::new(&[addr.as_str()], false).unwrap()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("NOAUTH") || e.contains("Authentication"), "{e}");
    let mut c = Client::new(quick(
        Config::new(&[addr.as_str()], false)
            .unwrap()
            .password("s3cret", None),
    ))
    .unwrap();
    c.put_tensor_slice("t", &[1u16, 2], &[2], MemoryLayout::RowMajor)
        .unwrap();
    assert_eq!(
        c.get_tensor("t")
            .unwrap()
            .to_vec::<u16>(MemoryLayout::RowMajor)
            .unwrap(),
        [1, 2]
    );
    // From the environment too.
    let vars = [
        ("SSDB", addr.clone()),
        ("SR_DB_TYPE", "Standalone".into()),
        ("SR_PASSWORD", "s3cret".into()),
    ];
    let cfg = Config::from_lookup("", move |k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    assert!(Client::new(cfg).unwrap().tensor_exists("t").unwrap());
}

#[tokio::test(flavor = "current_thread")]
async fn the_async_client_shares_the_sync_protocol() {
    let state = State::new();
    let orc = launch(&static_host(), &state, ai_settings("async", 3, &[])).unwrap();
    let addrs = orc.addresses();
    let a: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let client = orc_client::AsyncClient::new(Config::new(&a, true).unwrap())
        .await
        .unwrap();
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move {
                c.call(move |c| {
                    c.put_tensor_slice(&format!("a{i}"), &[i as f64], &[1], MemoryLayout::RowMajor)
                })
                .await
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap().unwrap();
    }
    let t = client.call(|c| c.get_tensor("a3")).await.unwrap();
    assert_eq!(t.to_vec::<f64>(MemoryLayout::RowMajor).unwrap(), [3.0]);
    orc.stop().unwrap();
}

fn start_server(args: &[&str], dir: &std::path::Path) -> std::process::Child {
    std::process::Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--save", ""])
        .args(args)
        .arg("--loadmodule")
        .arg(plugin_file("orc_ai"))
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn unix_socket_databases() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("orc.sock");
    let child = start_server(
        &[
            "--port",
            "0",
            "--unixsocket",
            sock.to_str().unwrap(),
            "--unixsocketperm",
            "700",
        ],
        dir.path(),
    );
    let _server = Server(format!("redis+unix://{}", sock.display()), child);
    assert!(wait_for(Duration::from_secs(5), || sock.exists()));
    let ssdb = format!("unix://{}", sock.display());
    let vars = [("SSDB", ssdb), ("SR_DB_TYPE", "Standalone".to_string())];
    let cfg = Config::from_lookup("", move |k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    let mut c = Client::new(cfg).unwrap();
    c.put_tensor_slice("u", &[7i64], &[1], MemoryLayout::RowMajor)
        .unwrap();
    assert_eq!(
        c.get_tensor("u")
            .unwrap()
            .to_vec::<i64>(MemoryLayout::RowMajor)
            .unwrap(),
        [7]
    );
    let _ = std::process::Command::new("redis-cli")
        .args(["-s", sock.to_str().unwrap(), "SHUTDOWN", "NOSAVE"])
        .output();
}

#[test]
fn tls_databases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sh = |cmd: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd}: {}", text(&out.stderr));
    };
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=orc-test-ca",
    );
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1",
    );
    sh(
        "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 -extfile ext.cnf",
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let child = start_server(
        &[
            "--port",
            "0",
            "--tls-port",
            &port,
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.crt",
            "--tls-auth-clients",
            "no",
        ],
        d,
    );
    let addr = format!("127.0.0.1:{port}");
    let _server = Server(format!("rediss://{addr}"), child);
    assert!(wait_for(Duration::from_secs(5), || listening(&addr)));
    let quick = |cfg: Config| {
        cfg.connect_timeout(Duration::from_millis(500))
            .intervals(Duration::from_millis(100), Duration::from_millis(100))
    };
    // Plain TCP against a TLS port fails clearly.
    assert!(matches!(
        Client::new(quick(Config::new(&[addr.as_str()], false).unwrap())),
        Err(Error::Connection { .. })
    ));
    let mut c = Client::new(quick(
        Config::new(&[addr.as_str()], false)
            .unwrap()
            .tls(Some(&d.join("ca.crt"))),
    ))
    .unwrap();
    c.put_tensor_slice("secure", &[1.5f32; 1024], &[32, 32], MemoryLayout::RowMajor)
        .unwrap();
    assert_eq!(c.get_tensor("secure").unwrap().dims, [32, 32]);
    let _ = std::process::Command::new("redis-cli")
        .args([
            "--tls",
            "--cacert",
            d.join("ca.crt").to_str().unwrap(),
            "-p",
            &port,
            "SHUTDOWN",
            "NOSAVE",
        ])
        .output();
}
