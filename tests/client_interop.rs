//! Interop with the real SmartRedis Python client: every data kind written by each client
//! is read back by the other, in standalone and cluster mode.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use orc_client::{Client, Config, DataSet, MemoryLayout, ModelOptions, Tensor};
use orc_tests::*;

fn python(orc: &orc_orchestrator::Orchestrator, mode: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/interop.py");
    let out = std::process::Command::new(smartredis_python())
        .arg(&script)
        .arg(mode)
        .env("SSDB", orc.addresses().join(","))
        .env(
            "SR_DB_TYPE",
            if orc.record().clustered {
                "Clustered"
            } else {
                "Standalone"
            },
        )
        .env("SR_LOG_LEVEL", "quiet")
        .env_remove("SSKEYIN")
        .env_remove("SSKEYOUT")
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("interop: ok"),
        "SmartRedis {mode} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn interop(shards: usize) {
    let state = State::new();
    let orc = launch(
        &static_host(),
        &state,
        // A small chunk floor so that a tiny model travels in several chunks.
        ai_settings(
            &format!("io{shards}"),
            shards,
            &["MODEL_CHUNK_SIZE_MIN", "16"],
        ),
    )
    .unwrap();
    let addrs = orc.addresses();
    let a: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let cfg = Config::new(&a, shards > 1)
        .unwrap()
        .connect_timeout(Duration::from_secs(10));
    let mut c = Client::new(cfg).unwrap();

    // SmartRedis writes, orc-client reads.
    python(&orc, "write");
    let expect = |t: &Tensor| t.dims == [3, 4];
    macro_rules! check {
        ($t:ty, $n:expr) => {{
            let t = c.get_tensor(concat!("py_", $n)).unwrap();
            assert!(expect(&t), "{:?}", t.dims);
            let v: Vec<$t> = (0..12).map(|k| (k - 5) as $t).collect();
            assert_eq!(t.to_vec::<$t>(MemoryLayout::RowMajor).unwrap(), v);
        }};
    }
    check!(f64, "float64");
    check!(f32, "float32");
    check!(i8, "int8");
    check!(i16, "int16");
    check!(i32, "int32");
    check!(i64, "int64");
    check!(u8, "uint8");
    check!(u16, "uint16");
    let ds = c.get_dataset("py_ds").unwrap();
    assert_eq!(
        ds.get_tensor("field")
            .unwrap()
            .to_vec::<f32>(MemoryLayout::RowMajor)
            .unwrap(),
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    );
    assert_eq!(ds.get_meta_scalars::<f64>("time").unwrap(), [2.5]);
    assert_eq!(ds.get_meta_scalars::<i64>("step").unwrap(), [7]);
    assert_eq!(ds.get_meta_strings("units").unwrap(), ["K"]);
    assert!(c.dataset_exists("py_ds").unwrap());
    assert_eq!(
        c.get_datasets_from_list("py_list").unwrap()[0].name(),
        "py_ds"
    );
    assert_eq!(
        c.get_model("py_model").unwrap(),
        std::fs::read(data_file("models/linear.onnx")).unwrap()
    );
    c.put_tensor_slice("rx", &[0.0f32, 1.0, 1.0], &[1, 3], MemoryLayout::RowMajor)
        .unwrap();
    c.run_model("py_model", &["rx"], &["ry"]).unwrap();
    assert_eq!(
        c.get_tensor("ry")
            .unwrap()
            .to_vec::<f32>(MemoryLayout::RowMajor)
            .unwrap(),
        [8.5, 9.0]
    );
    assert!(c.get_script("py_script").unwrap().contains("def triple"));
    c.run_script("py_script", "triple", &["rx"], &["r3"])
        .unwrap();
    assert_eq!(
        c.get_tensor("r3")
            .unwrap()
            .to_vec::<f32>(MemoryLayout::RowMajor)
            .unwrap(),
        [0.0, 3.0, 3.0]
    );

    // orc-client writes, SmartRedis reads.
    macro_rules! put {
        ($t:ty, $n:expr) => {{
            let v: Vec<$t> = (0..12).map(|k| (k - 5) as $t).collect();
            c.put_tensor_slice(concat!("rs_", $n), &v, &[3, 4], MemoryLayout::RowMajor)
                .unwrap();
        }};
    }
    put!(f64, "float64");
    put!(f32, "float32");
    put!(i8, "int8");
    put!(i16, "int16");
    put!(i32, "int32");
    put!(i64, "int64");
    put!(u8, "uint8");
    put!(u16, "uint16");
    let mut ds = DataSet::new("rs_ds").unwrap();
    ds.add_tensor(
        "field",
        Tensor::from_slice(&[1.0f64, 3.0, 2.0, 4.0], &[2, 2], MemoryLayout::ColumnMajor).unwrap(),
    )
    .unwrap();
    ds.add_meta_scalar("count", 3i64).unwrap();
    ds.add_meta_string("tags", "a").unwrap();
    ds.add_meta_string("tags", "b").unwrap();
    c.put_dataset(&ds).unwrap();
    c.append_to_list("rs_list", &ds).unwrap();
    c.set_model_chunk_size(100).unwrap();
    c.set_model_from_file(
        "rs_model",
        &data_file("models/linear.onnx"),
        "ONNX",
        &ModelOptions::cpu(),
    )
    .unwrap();
    c.set_script("rs_script", "def half(a):\n    return a / 2\n", "CPU")
        .unwrap();
    c.set_model_chunk_size(511 * 1024 * 1024).unwrap(); // SmartRedis cannot join chunks
    python(&orc, "read");
    orc.stop().unwrap();
}

#[test]
fn interop_with_smartredis_standalone() {
    interop(1);
}

#[test]
fn interop_with_smartredis_cluster() {
    interop(3);
}
