//! The real models of `tests/models/make_models.py` (ResNet-18, a transformer encoder block,
//! an MLP, a scikit-learn pipeline), made once per target directory from their seeded
//! script with Debian's PyTorch and scikit-learn, with their inputs and reference outputs.

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
    /// The formats it was saved in (`onnx`, `pt`).
    pub formats: Vec<String>,
    dir: PathBuf,
}

impl RealModel {
    /// The model file in `format` (`onnx`, `pt`).
    pub fn file(&self, format: &str) -> PathBuf {
        self.dir.join(format!("{}.{format}", self.name))
    }
    /// The input, as float32 values.
    pub fn input(&self) -> Vec<f32> {
        crate::f32_from(&std::fs::read(self.dir.join(format!("{}.in.f32", self.name))).unwrap())
    }
    /// The reference output (torch or scikit-learn), as float32 values.
    pub fn reference(&self) -> Vec<f32> {
        crate::f32_from(&std::fs::read(self.dir.join(format!("{}.out.f32", self.name))).unwrap())
    }
}

fn dims(s: &str) -> Vec<usize> {
    s.split('x').map(|d| d.parse().unwrap()).collect()
}

/// Make the models under `dir` unless they are there (the script's hash names the set).
pub fn real_models_in(dir: &Path) -> Vec<RealModel> {
    static MAKING: Mutex<()> = Mutex::new(());
    let _one = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/make_models.py");
    let text = std::fs::read(&script).unwrap();
    let hash = text.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    });
    let set = dir.join(format!("models-{hash:016x}"));
    let list = set.join("models.txt");
    if !list.exists() {
        let tmp = dir.join(format!("models-{hash:016x}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let out = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(&tmp)
            .output()
            .expect("run /usr/bin/python3");
        assert!(
            out.status.success(),
            "{} failed (it needs Debian's python3-torch, python3-torchvision, python3-sklearn and \
             python3-onnx: run ./scripts/ensure-deps):\n{}",
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
