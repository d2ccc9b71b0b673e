//! The real models of `tests/models/make_models.py` (ResNet-18, a transformer encoder block,
//! an MLP, a scikit-learn pipeline), made once per target directory from their seeded
//! script with Debian's PyTorch and scikit-learn, with their inputs and reference outputs;
//! and the same networks as TensorFlow frozen graphs and TFLite models
//! (`tests/models/make_tf_models.py`, with TensorFlow from the venv `scripts/ensure-deps --with-tensorflow`
//! makes).

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

/// One model of the set.
#[derive(Debug, Clone)]
pub struct RealModel {
    /// Its name (`resnet18`).
    pub name: String,
    /// Input shape.
    pub input_shape: Vec<usize>,
    /// Output shape.
    pub output_shape: Vec<usize>,
    /// The formats it was saved in (`onnx`, `pt`, `pb`, `tflite`).
    pub formats: Vec<String>,
    dir: PathBuf,
}

impl RealModel {
    /// The model file in `format` (`onnx`, `pt`, `pb`, `tflite`).
    pub fn file(&self, format: &str) -> PathBuf {
        self.dir.join(format!("{}.{format}", self.name))
    }
    /// The input, as float32 values.
    pub fn input(&self) -> Vec<f32> {
        crate::f32_from(&std::fs::read(self.dir.join(format!("{}.in.f32", self.name))).unwrap())
    }
    /// The reference output (torch, scikit-learn or TensorFlow), as float32 values.
    pub fn reference(&self) -> Vec<f32> {
        crate::f32_from(&std::fs::read(self.dir.join(format!("{}.out.f32", self.name))).unwrap())
    }
    /// The reference output for the model in `format`: its own runtime's where the set has
    /// one (`NAME.tflite.out.f32`: the TFLite interpreter's), else [`Self::reference`].
    pub fn reference_for(&self, format: &str) -> Vec<f32> {
        let own = self.dir.join(format!("{}.{format}.out.f32", self.name));
        match std::fs::read(own) {
            Ok(bytes) => crate::f32_from(&bytes),
            Err(_) => self.reference(),
        }
    }
}

fn dims(s: &str) -> Vec<usize> {
    s.split('x').map(|d| d.parse().unwrap()).collect()
}

/// Make the models of `make_models.py` under `dir` unless they are there.
pub fn real_models_in(dir: &Path) -> Vec<RealModel> {
    model_set(
        dir,
        "make_models.py",
        Path::new("/usr/bin/python3"),
        "it needs Debian's python3-torch, python3-torchvision, python3-sklearn and python3-onnx: \
         run ./scripts/ensure-deps",
    )
}

/// The Python with TensorFlow: `$ORC_TF_VENV/bin/python`, by default in
/// `~/.cache/orc/tf-venv` (`scripts/ensure-deps --with-tensorflow` makes it).
pub fn tf_python() -> PathBuf {
    let venv = std::env::var_os("ORC_TF_VENV").map_or_else(
        || {
            let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
                || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
                PathBuf::from,
            );
            cache.join("orc/tf-venv")
        },
        PathBuf::from,
    );
    venv.join("bin/python")
}

/// TensorFlow's C API library in the TensorFlow venv (`tensorflow/libtensorflow_cc.so.2`),
/// or `$ORC_TENSORFLOW_LIB`.
pub fn tensorflow_lib() -> PathBuf {
    tf_venv_library("ORC_TENSORFLOW_LIB", "tensorflow/libtensorflow_cc.so.2")
}

/// LiteRT's library in the TensorFlow venv (`ai_edge_litert/libLiteRt.so` of the
/// `ai-edge-litert` package), or `$ORC_LITERT_LIB`.
pub fn litert_lib() -> PathBuf {
    tf_venv_library("ORC_LITERT_LIB", "ai_edge_litert/libLiteRt.so")
}

/// `$var` when set, else `rel` in the site-packages of the TensorFlow venv.
fn tf_venv_library(var: &str, rel: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let lib = tf_python().with_file_name("..").join("lib");
    std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|py| py.path().join("site-packages").join(rel))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no {rel} in {}: run ./scripts/ensure-deps --with-tensorflow",
                lib.display()
            )
        })
}

/// Make the models of `make_tf_models.py` (frozen graphs and TFLite) under `dir` unless
/// they are there.
pub fn tf_models_in(dir: &Path) -> Vec<RealModel> {
    model_set(
        dir,
        "make_tf_models.py",
        &tf_python(),
        "it needs TensorFlow in the venv of ORC_TF_VENV (default ~/.cache/orc/tf-venv): run \
         ./scripts/ensure-deps --with-tensorflow",
    )
}

/// Make the models of `script` (in `tests/models`) with `python` under `dir` unless they
/// are there (the script's hash names the set).
fn model_set(dir: &Path, script: &str, python: &Path, needs: &str) -> Vec<RealModel> {
    static MAKING: Mutex<()> = Mutex::new(());
    let _one = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(script);
    let text = std::fs::read(&script).unwrap();
    let hash = text.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    });
    let set = dir.join(format!("models-{hash:016x}"));
    let list = set.join("models.txt");
    if !list.exists() {
        let tmp = dir.join(format!("models-{hash:016x}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let out = Command::new(python)
            .arg(&script)
            .arg(&tmp)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e} ({needs})", python.display()));
        assert!(
            out.status.success(),
            "{} failed ({needs}):\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&set);
        std::fs::rename(&tmp, &set).unwrap();
    }
    std::fs::read_to_string(&list)
        .unwrap()
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            RealModel {
                name: w[0].into(),
                input_shape: dims(w[1]),
                output_shape: dims(w[2]),
                formats: w[3].split(',').map(str::to_string).collect(),
                dir: set.clone(),
            }
        })
        .collect()
}

/// The largest difference between two outputs, relative to the reference's magnitude
/// (at least 1).
pub fn max_rel_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "output sizes differ");
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    got.iter()
        .zip(want)
        .fold(0f32, |m, (g, w)| m.max((g - w).abs() / scale))
}

/// A shape as command arguments.
pub fn shape_args(shape: &[usize]) -> Vec<String> {
    shape.iter().map(|d| d.to_string()).collect()
}

/// Store the model's input repeated `times` along its first dimension as tensor `key`.
pub fn put_input_repeated(con: &mut redis::Connection, key: &str, m: &RealModel, times: usize) {
    let mut shape = m.input_shape.clone();
    shape[0] *= times;
    let one: Vec<u8> = m.input().iter().flat_map(|v| v.to_le_bytes()).collect();
    redis::cmd("AI.TENSORSET")
        .arg(key)
        .arg("FLOAT")
        .arg(shape_args(&shape))
        .arg("BLOB")
        .arg(one.repeat(times))
        .query::<()>(con)
        .unwrap();
}

/// Run model `key` on tensor `input` once, its output stored as `out`.
pub fn execute(con: &mut redis::Connection, key: &str, input: &str) -> redis::RedisResult<()> {
    redis::cmd("AI.MODELEXECUTE")
        .arg(key)
        .arg("INPUTS")
        .arg(1)
        .arg(input)
        .arg("OUTPUTS")
        .arg(1)
        .arg("out")
        .query(con)
}

/// Store `file` as `backend` under `key`, run it on the model's input, return the output.
pub fn store_and_run(
    con: &mut redis::Connection,
    backend: &str,
    m: &RealModel,
    file: &Path,
) -> Result<Vec<f32>, String> {
    let key = format!("{}-{backend}", m.name);
    let blob = std::fs::read(file).unwrap();
    let mut store = redis::cmd("AI.MODELSTORE");
    store.arg(&key).arg(backend).arg("CPU");
    if backend == "TF" {
        // The frozen graphs of make_tf_models.py name their nodes `input` and `output`.
        store
            .arg("INPUTS")
            .arg(1)
            .arg("input")
            .arg("OUTPUTS")
            .arg(1)
            .arg("output");
    }
    store
        .arg("BLOB")
        .arg(blob)
        .query::<()>(con)
        .map_err(|e| format!("store: {e}"))?;
    let input: Vec<u8> = m.input().iter().flat_map(|v| v.to_le_bytes()).collect();
    redis::cmd("AI.TENSORSET")
        .arg("in")
        .arg("FLOAT")
        .arg(shape_args(&m.input_shape))
        .arg("BLOB")
        .arg(input)
        .query::<()>(con)
        .unwrap();
    execute(con, &key, "in").map_err(|e| format!("run: {e}"))?;
    let reply: Vec<redis::Value> = redis::cmd("AI.TENSORGET")
        .arg("out")
        .arg("META")
        .arg("BLOB")
        .query(con)
        .unwrap();
    let redis::Value::Array(dims) = &reply[3] else {
        panic!("{reply:?}")
    };
    let dims: Vec<usize> = dims
        .iter()
        .map(|d| match d {
            redis::Value::Int(n) => usize::try_from(*n).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(dims, m.output_shape, "{key}: output shape");
    let redis::Value::BulkString(b) = &reply[5] else {
        panic!("{reply:?}")
    };
    Ok(crate::f32_from(b))
}
