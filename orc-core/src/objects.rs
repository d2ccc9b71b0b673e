//! Models, scripts and functions an orchestrator loads into every shard before it reports
//! ready (SmartSim's `add_ml_model`, `add_script`, `add_function`).
//!
//! On the command line each is one argument: `NAME=PATH[,key=value...]` for models and
//! scripts, `NAME=PATH.py:FUNC[,key=value...]` for functions.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The ML backends orc-ai knows, by their RedisAI names.
pub const BACKENDS: [&str; 4] = ["TORCH", "TF", "TFLITE", "ONNX"];

/// The longest object file read (models included): 2 GiB, orc-ai's own blob limit.
pub const MAX_OBJECT_BYTES: u64 = 2 << 30;

/// Where an object runs: `CPU`, `GPU` or `GPU:n`, and on how many devices of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ObjectDevice {
    /// `CPU` or `GPU` (a device number, if any, is in `first_device`).
    pub kind: String,
    /// GPUs per node to place a copy on (GPU only; SmartSim's `devices_per_node`).
    #[serde(default = "one")]
    pub devices_per_node: u32,
    /// The first GPU number used (SmartSim's `first_device`).
    #[serde(default)]
    pub first_device: u32,
}

fn one() -> u32 {
    1
}

impl Default for ObjectDevice {
    fn default() -> Self {
        Self {
            kind: "CPU".into(),
            devices_per_node: 1,
            first_device: 0,
        }
    }
}

impl ObjectDevice {
    /// Parse `CPU`, `GPU` or `GPU:n` (any case).
    pub fn parse(text: &str) -> Result<Self> {
        let up = text.trim().to_ascii_uppercase();
        let (kind, number) = match up.split_once(':') {
            Some((k, n)) => (k.to_string(), Some(n.to_string())),
            None => (up.clone(), None),
        };
        let mut d = Self {
            kind,
            ..Self::default()
        };
        match (d.kind.as_str(), number) {
            ("CPU", None) => {}
            ("GPU", None) => {}
            ("GPU", Some(n)) => {
                d.first_device = n
                    .parse()
                    .map_err(|_| Error::config(format!("device `{text}`: GPU:n takes a number")))?;
            }
            _ => {
                return Err(Error::config(format!(
                    "device `{text}`: expected CPU, GPU or GPU:n"
                )));
            }
        }
        Ok(d)
    }

    /// True for GPU devices.
    pub fn is_gpu(&self) -> bool {
        self.kind == "GPU"
    }
}

/// One thing to load into every shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DbObject {
    /// A model file (`AI.MODELSTORE`).
    Model(ModelObject),
    /// A TorchScript source file (`AI.SCRIPTSTORE`).
    Script(ScriptObject),
    /// One Python function from a file, stored as a script as SmartRedis's
    /// `set_function` stores it (its source, with the function as the entry point).
    Function(FunctionObject),
}

/// A model to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelObject {
    /// The key it is stored under.
    pub name: String,
    /// The model file (absolute once validated).
    pub path: PathBuf,
    /// `ONNX`, `TORCH`, `TF` or `TFLITE`.
    pub backend: String,
    /// Where it runs.
    #[serde(default)]
    pub device: ObjectDevice,
    /// Auto-batching: the most requests batched together (0: off).
    #[serde(default)]
    pub batch_size: u64,
    /// Auto-batching: the fewest requests a batch waits for.
    #[serde(default)]
    pub min_batch_size: u64,
    /// Auto-batching: how long (ms) to wait for `min_batch_size`.
    #[serde(default)]
    pub min_batch_timeout: u64,
    /// A tag stored with the model.
    #[serde(default)]
    pub tag: String,
    /// Input node names (TF only).
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Output node names (TF only).
    #[serde(default)]
    pub outputs: Vec<String>,
}

/// A TorchScript source file to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScriptObject {
    /// The key it is stored under.
    pub name: String,
    /// The source file.
    pub path: PathBuf,
    /// Where it runs.
    #[serde(default)]
    pub device: ObjectDevice,
}

/// A Python function to load as a script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionObject {
    /// The key it is stored under.
    pub name: String,
    /// The Python file that defines it.
    pub path: PathBuf,
    /// The function's name in that file (a top-level `def`).
    pub function: String,
    /// Where it runs.
    #[serde(default)]
    pub device: ObjectDevice,
}

impl DbObject {
    /// The key it is stored under.
    pub fn name(&self) -> &str {
        match self {
            Self::Model(m) => &m.name,
            Self::Script(s) => &s.name,
            Self::Function(f) => &f.name,
        }
    }

    /// `model`, `script` or `function`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Model(_) => "model",
            Self::Script(_) => "script",
            Self::Function(_) => "function",
        }
    }

    /// The file it is read from.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::Model(m) => &m.path,
            Self::Script(s) => &s.path,
            Self::Function(f) => &f.path,
        }
    }

    /// Where it runs.
    pub fn device(&self) -> &ObjectDevice {
        match self {
            Self::Model(m) => &m.device,
            Self::Script(s) => &s.device,
            Self::Function(f) => &f.device,
        }
    }

    fn path_mut(&mut self) -> &mut PathBuf {
        match self {
            Self::Model(m) => &mut m.path,
            Self::Script(s) => &mut s.path,
            Self::Function(f) => &mut f.path,
        }
    }

    /// One line for listings: `model resnet (TORCH on CPU) from /path/resnet.pt`.
    pub fn describe(&self) -> String {
        let d = self.device();
        let dev = if d.is_gpu() {
            format!(
                "GPU {}..{}",
                d.first_device,
                d.first_device + d.devices_per_node.max(1) - 1
            )
        } else {
            d.kind.clone()
        };
        let what = match self {
            Self::Model(m) => format!("{} on {dev}", m.backend),
            Self::Function(f) => format!("`{}` on {dev}", f.function),
            Self::Script(_) => dev,
        };
        format!(
            "{} {} ({what}) from {}",
            self.kind(),
            self.name(),
            self.path().display()
        )
    }

    /// Parse a command-line model: `NAME=PATH,backend=B[,device=D,batch=N,min-batch=N,
    /// min-batch-timeout=MS,inputs=A;B,outputs=A;B,tag=T,devices-per-node=N,first-device=N]`.
    pub fn parse_model(spec: &str) -> Result<Self> {
        let (name, path, opts) = split_spec("--model", spec)?;
        let mut m = ModelObject {
            name,
            path: path.into(),
            backend: String::new(),
            device: ObjectDevice::default(),
            batch_size: 0,
            min_batch_size: 0,
            min_batch_timeout: 0,
            tag: String::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        for (k, v) in opts {
            let num = |v: &str| -> Result<u64> {
                v.parse()
                    .map_err(|_| Error::config(format!("--model {spec}: {k}={v} is not a number")))
            };
            let list = |v: &str| {
                v.split(';')
                    .filter(|s| !s.is_empty())
                    .map(Into::into)
                    .collect()
            };
            match k.as_str() {
                "backend" => m.backend = v.to_ascii_uppercase(),
                "device" => m.device = merge_device(&m.device, &v)?,
                "batch" | "batch-size" => m.batch_size = num(&v)?,
                "min-batch" | "min-batch-size" => m.min_batch_size = num(&v)?,
                "min-batch-timeout" => m.min_batch_timeout = num(&v)?,
                "tag" => m.tag = v,
                "inputs" => m.inputs = list(&v),
                "outputs" => m.outputs = list(&v),
                "devices-per-node" => m.device.devices_per_node = small(&k, &v, spec)?,
                "first-device" => m.device.first_device = small(&k, &v, spec)?,
                _ => return Err(unknown_key("--model", spec, &k, MODEL_KEYS)),
            }
        }
        Ok(Self::Model(m))
    }

    /// Parse a command-line script: `NAME=PATH[,device=D,devices-per-node=N,first-device=N]`.
    pub fn parse_script(spec: &str) -> Result<Self> {
        let (name, path, opts) = split_spec("--script", spec)?;
        let device = device_options("--script", spec, opts)?;
        Ok(Self::Script(ScriptObject {
            name,
            path: path.into(),
            device,
        }))
    }

    /// Parse a command-line function: `NAME=PATH.py:FUNC[,device=D,...]`.
    pub fn parse_function(spec: &str) -> Result<Self> {
        let (name, target, opts) = split_spec("--function", spec)?;
        let Some((path, function)) = target.rsplit_once(':') else {
            return Err(Error::config(format!(
                "--function {spec}: expected NAME=FILE.py:FUNCTION"
            )));
        };
        let device = device_options("--function", spec, opts)?;
        Ok(Self::Function(FunctionObject {
            name,
            path: path.into(),
            function: function.into(),
            device,
        }))
    }

    /// Check what can be checked before anything starts: names, backend, device, batching,
    /// and that the file is a readable regular file of at most [`MAX_OBJECT_BYTES`]. Makes
    /// the path absolute (relative to `base`). Whether a GPU device exists is the
    /// backend's to say when the object is loaded (CPU-only builds refuse it then).
    pub fn validate(&mut self, base: &std::path::Path) -> Result<()> {
        let name = self.name().to_string();
        let what = format!("{} `{name}`", self.kind());
        if name.is_empty()
            || name.len() > 512
            || name.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::config(format!(
                "{what}: a name is 1 to 512 characters without spaces"
            )));
        }
        match self {
            Self::Model(m) => {
                if !BACKENDS.contains(&m.backend.as_str()) {
                    return Err(Error::config(format!(
                        "{what}: backend `{}` is not one of {} (give backend=...)",
                        m.backend,
                        BACKENDS.join(", ")
                    )));
                }
                if m.batch_size == 0 && (m.min_batch_size > 0 || m.min_batch_timeout > 0) {
                    return Err(Error::config(format!(
                        "{what}: min-batch and min-batch-timeout need batch > 0"
                    )));
                }
                if m.min_batch_size > m.batch_size {
                    return Err(Error::config(format!(
                        "{what}: min-batch {} is above batch {}",
                        m.min_batch_size, m.batch_size
                    )));
                }
            }
            Self::Function(f) => {
                if f.function.is_empty()
                    || !f
                        .function
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || f.function.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(Error::config(format!(
                        "{what}: `{}` is not a Python function name",
                        f.function
                    )));
                }
            }
            Self::Script(_) => {}
        }
        let d = self.device();
        if d.devices_per_node == 0 || d.devices_per_node > 64 {
            return Err(Error::config(format!(
                "{what}: devices-per-node must be 1 to 64"
            )));
        }
        if !d.is_gpu() && (d.devices_per_node != 1 || d.first_device != 0) {
            return Err(Error::config(format!(
                "{what}: devices-per-node and first-device are for GPU devices"
            )));
        }
        let path = base.join(self.path());
        let meta = std::fs::metadata(&path)
            .map_err(|e| Error::io(format!("{what}: reading {}", path.display()), e))?;
        if !meta.is_file() {
            return Err(Error::config(format!(
                "{what}: {} is not a regular file",
                path.display()
            )));
        }
        if meta.len() > MAX_OBJECT_BYTES {
            return Err(Error::config(format!(
                "{what}: {} holds {} bytes, more than the {MAX_OBJECT_BYTES} one object may have",
                path.display(),
                meta.len()
            )));
        }
        *self.path_mut() = std::path::absolute(&path).unwrap_or(path);
        Ok(())
    }
}

const MODEL_KEYS: &str = "backend, device, batch, min-batch, min-batch-timeout, inputs, outputs, tag, devices-per-node, first-device";

fn unknown_key(flag: &str, spec: &str, key: &str, known: &str) -> Error {
    Error::config(format!(
        "{flag} {spec}: unknown key `{key}`; known: {known}"
    ))
}

fn small(key: &str, v: &str, spec: &str) -> Result<u32> {
    v.parse()
        .map_err(|_| Error::config(format!("{spec}: {key}={v} is not a number")))
}

/// `GPU:2` given as `device` keeps a devices-per-node given before it.
fn merge_device(old: &ObjectDevice, text: &str) -> Result<ObjectDevice> {
    let mut d = ObjectDevice::parse(text)?;
    d.devices_per_node = old.devices_per_node;
    if text.contains(':') || old.first_device == 0 {
        return Ok(d);
    }
    d.first_device = old.first_device;
    Ok(d)
}

fn device_options(flag: &str, spec: &str, opts: Vec<(String, String)>) -> Result<ObjectDevice> {
    let mut d = ObjectDevice::default();
    for (k, v) in opts {
        match k.as_str() {
            "device" => d = merge_device(&d, &v)?,
            "devices-per-node" => d.devices_per_node = small(&k, &v, spec)?,
            "first-device" => d.first_device = small(&k, &v, spec)?,
            _ => {
                return Err(unknown_key(
                    flag,
                    spec,
                    &k,
                    "device, devices-per-node, first-device",
                ));
            }
        }
    }
    Ok(d)
}

type Spec = (String, String, Vec<(String, String)>);

/// `NAME=TARGET,k=v,...` -> (NAME, TARGET, [(k, v)]); keys lower-cased, `_` read as `-`.
fn split_spec(flag: &str, spec: &str) -> Result<Spec> {
    let mut parts = spec.split(',');
    let head = parts.next().unwrap_or_default();
    let Some((name, target)) = head.split_once('=') else {
        return Err(Error::config(format!(
            "{flag} {spec}: expected NAME=PATH[,key=value...]"
        )));
    };
    if name.is_empty() || target.is_empty() {
        return Err(Error::config(format!(
            "{flag} {spec}: expected NAME=PATH[,key=value...]"
        )));
    }
    let opts = parts
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| Error::config(format!("{flag} {spec}: `{p}` is not key=value")))?;
            Ok((
                k.trim().to_ascii_lowercase().replace('_', "-"),
                v.trim().to_string(),
            ))
        })
        .collect::<Result<_>>()?;
    Ok((name.to_string(), target.to_string(), opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_models_scripts_functions() {
        let DbObject::Model(m) = DbObject::parse_model(
            "resnet=/m/r.pt,backend=torch,device=gpu:1,devices_per_node=2,batch=8,min-batch=2,min-batch-timeout=50,inputs=a;b,tag=v1",
        )
        .expect("model") else {
            panic!("not a model")
        };
        assert_eq!(m.name, "resnet");
        assert_eq!(m.backend, "TORCH");
        assert!(m.device.is_gpu());
        assert_eq!((m.device.first_device, m.device.devices_per_node), (1, 2));
        assert_eq!(
            (m.batch_size, m.min_batch_size, m.min_batch_timeout),
            (8, 2, 50)
        );
        assert_eq!(m.inputs, ["a", "b"]);
        assert_eq!(m.tag, "v1");
        let f = DbObject::parse_function("pre=/x/fns.py:normalise,device=CPU").expect("fn");
        assert_eq!(f.kind(), "function");
        let DbObject::Function(f) = f else { panic!() };
        assert_eq!(
            (f.path.to_str(), f.function.as_str()),
            (Some("/x/fns.py"), "normalise")
        );
        assert!(DbObject::parse_script("s=/x/s.py").is_ok());
    }

    #[test]
    fn refuses_bad_specs() {
        for bad in [
            "nopath",
            "=x",
            "m=/x,backend",
            "m=/x,colour=red",
            "m=/x,batch=many",
        ] {
            assert!(DbObject::parse_model(bad).is_err(), "{bad}");
        }
        assert!(DbObject::parse_function("f=/x/fns.py").is_err());
        assert!(DbObject::parse_script("s=/x,device=TPU").is_err());
    }

    #[test]
    fn validation_checks_files_backends_and_devices() {
        let dir = std::env::temp_dir().join(format!("orc-objects-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("m.onnx"), b"x").expect("write");
        let mut ok = DbObject::parse_model("m=m.onnx,backend=onnx").expect("parse");
        ok.validate(&dir).expect("valid");
        assert!(ok.path().is_absolute());
        let mut missing = DbObject::parse_model("m=gone.onnx,backend=onnx").expect("parse");
        let e = missing.validate(&dir).expect_err("missing").to_string();
        assert!(e.contains("gone.onnx"), "{e}");
        let mut backend = DbObject::parse_model("m=m.onnx,backend=caffe").expect("parse");
        assert!(backend.validate(&dir).is_err());
        let mut gpu = DbObject::parse_model("m=m.onnx,backend=onnx,first-device=1").expect("p");
        assert!(gpu.validate(&dir).is_err(), "first-device is for GPUs");
        let mut batch = DbObject::parse_model("m=m.onnx,backend=onnx,min-batch=2").expect("parse");
        assert!(batch.validate(&dir).is_err());
        let mut dir_as_file = DbObject::parse_script(&format!("s={}", dir.display())).expect("p");
        assert!(dir_as_file.validate(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
