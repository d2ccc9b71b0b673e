//! Loading models, scripts and functions into a database before it is reported ready,
//! through orc-client as the admin user, so that they are laid out exactly as SmartRedis's
//! `set_model` / `set_script` lay them out (in a cluster, a copy on every shard under its
//! hash-slot prefix).

use std::{path::Path, time::Duration};

use orc_core::{
    DbObject, Error, Result,
    objects::{FunctionObject, ModelObject},
};

/// The most bytes a Python file given for `--function` may hold.
const MAX_FUNCTION_FILE: u64 = 16 << 20;

/// How long storing one object may take (a large model is parsed by its backend).
const STORE_TIMEOUT: Duration = Duration::from_secs(300);

/// Where and how to connect for loading.
pub(crate) struct Target<'a> {
    pub(crate) addresses: Vec<String>,
    pub(crate) clustered: bool,
    pub(crate) admin: Option<(&'a str, &'a str)>,
    pub(crate) tls_ca: Option<&'a Path>,
}

/// Load every object into the database at `target`, in order; the first failure ends it
/// with an error naming the object and what its backend said.
pub(crate) fn load_all(target: &Target<'_>, objects: &[DbObject]) -> Result<()> {
    if objects.is_empty() {
        return Ok(());
    }
    let addrs: Vec<&str> = target.addresses.iter().map(String::as_str).collect();
    let mut config = orc_client::Config::new(&addrs, target.clustered)
        .map_err(|e| Error::Database(format!("loading objects: {e}")))?
        .command_timeout(STORE_TIMEOUT);
    if let Some(ca) = target.tls_ca {
        config = config.tls(Some(ca));
    }
    if let Some((user, secret)) = target.admin {
        config = config.password(secret, Some(user));
    }
    let mut client = orc_client::Client::new(config)
        .map_err(|e| Error::Database(format!("loading objects: {e}")))?;
    for o in objects {
        let started = std::time::Instant::now();
        load_one(&mut client, o).map_err(|message| {
            Error::Database(format!(
                "could not load {} `{}` from {}: {message}",
                o.kind(),
                o.name(),
                o.path().display()
            ))
        })?;
        tracing::info!(
            object = o.name(),
            kind = o.kind(),
            ms = started.elapsed().as_millis() as u64,
            "loaded"
        );
    }
    Ok(())
}

fn load_one(client: &mut orc_client::Client, o: &DbObject) -> std::result::Result<(), String> {
    let d = o.device();
    let gpus = d.is_gpu().then_some((d.first_device, d.devices_per_node));
    match o {
        DbObject::Model(m) => {
            let blob = read_bounded(&m.path, orc_core::objects::MAX_OBJECT_BYTES)?;
            let opts = model_options(m);
            match gpus {
                Some((first, n)) if n > 1 => {
                    client.set_model_multigpu(&m.name, &blob, &m.backend, first, n, &opts)
                }
                _ => client.set_model(&m.name, &blob, &m.backend, &opts),
            }
        }
        DbObject::Script(s) => {
            let src = read_text(&s.path, orc_core::objects::MAX_OBJECT_BYTES)?;
            store_script(client, &s.name, &src, gpus, &d.kind)
        }
        DbObject::Function(f) => {
            let src = function_source(f)?;
            store_script(client, &f.name, &src, gpus, &d.kind)
        }
        _ => return Err(format!("orc cannot load a {} yet", o.kind())),
    }
    .map_err(|e| e.to_string())
}

fn store_script(
    client: &mut orc_client::Client,
    name: &str,
    src: &str,
    gpus: Option<(u32, u32)>,
    kind: &str,
) -> orc_client::Result<()> {
    match gpus {
        Some((first, n)) if n > 1 => client.set_script_multigpu(name, src, first, n),
        Some((first, _)) if first > 0 => client.set_script(name, src, &format!("GPU:{first}")),
        _ => client.set_script(name, src, kind),
    }
}

fn model_options(m: &ModelObject) -> orc_client::ModelOptions {
    let d = &m.device;
    let device = if d.is_gpu() && d.first_device > 0 {
        format!("GPU:{}", d.first_device)
    } else {
        d.kind.clone()
    };
    let inputs: Vec<&str> = m.inputs.iter().map(String::as_str).collect();
    let outputs: Vec<&str> = m.outputs.iter().map(String::as_str).collect();
    orc_client::ModelOptions::cpu()
        .device(&device)
        .batching(m.batch_size, m.min_batch_size, m.min_batch_timeout)
        .tag(&m.tag)
        .io(&inputs, &outputs)
}

/// Read a file of at most `limit` bytes, never trusting its size beforehand.
fn read_bounded(path: &Path, limit: u64) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("reading it: {e}"))?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("reading it: {e}"))?;
    if buf.len() as u64 > limit {
        return Err(format!("it holds more than {limit} bytes"));
    }
    if buf.is_empty() {
        return Err("it is empty".into());
    }
    Ok(buf)
}

fn read_text(path: &Path, limit: u64) -> std::result::Result<String, String> {
    String::from_utf8(read_bounded(path, limit)?).map_err(|_| "it is not UTF-8 text".into())
}

/// The source of top-level function `f.function` in its Python file, as Python's
/// `inspect.getsource` gives it for SmartRedis's `set_function`: its decorators, its `def`
/// line and every line after it up to the next line that starts at the left margin.
fn function_source(f: &FunctionObject) -> std::result::Result<String, String> {
    let text = read_text(&f.path, MAX_FUNCTION_FILE)?;
    extract_function(&text, &f.function).ok_or_else(|| {
        format!(
            "it defines no top-level function `{}` (`def {}(` at the start of a line)",
            f.function, f.function
        )
    })
}

fn extract_function(text: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let starts_def = |l: &str| {
        l.strip_prefix("def ")
            .and_then(|r| r.trim_start().strip_prefix(name))
            .is_some_and(|r| r.trim_start().starts_with('('))
    };
    let def = lines.iter().position(|l| starts_def(l))?;
    let mut first = def;
    while first > 0 && lines[first - 1].starts_with('@') {
        first -= 1;
    }
    let mut end = def + 1;
    while end < lines.len() {
        let l = lines[end];
        let margin = !l.is_empty() && !l.starts_with([' ', '\t']);
        // A closing bracket of a multi-line signature sits at the margin too.
        if margin && !l.starts_with(')') && !l.starts_with('#') {
            break;
        }
        end += 1;
    }
    while end > def + 1 && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    let mut src = lines[first..end].join("\n");
    src.push('\n');
    Some(src)
}

/// Read a TOML file listing objects to load: `[[model]]`, `[[script]]` and `[[function]]`
/// tables with the keys of the command-line forms (`name`, `path`, `backend`, `device`,
/// `batch`, `min_batch`, `min_batch_timeout`, `inputs`, `outputs`, `tag`,
/// `devices_per_node`, `first_device`; `function` for functions). Relative paths are
/// taken from the file's directory.
pub fn read_objects_file(path: &Path) -> Result<Vec<DbObject>> {
    let text = read_text(path, 1 << 20).map_err(|m| Error::Format {
        context: path.display().to_string(),
        message: m,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let ctx = |m: String| Error::Format {
        context: path.display().to_string(),
        message: m,
    };
    let doc: toml_edit::Document<String> =
        toml_edit::Document::parse(text).map_err(|e| ctx(e.to_string()))?;
    let mut out = Vec::new();
    for (kind, item) in doc.as_table().iter() {
        let tables = item
            .as_array_of_tables()
            .ok_or_else(|| ctx(format!("`{kind}` must be a list of tables: [[{kind}]]")))?;
        for t in tables.iter() {
            out.push(
                object_from_table(kind, t, base).map_err(|e| ctx(format!("[[{kind}]]: {e}")))?,
            );
        }
    }
    Ok(out)
}

/// One table as the command-line spec it stands for, parsed by the same code.
fn object_from_table(
    kind: &str,
    t: &toml_edit::Table,
    base: &Path,
) -> std::result::Result<DbObject, String> {
    let mut name = None;
    let mut path = None;
    let mut function = None;
    let mut opts = Vec::new();
    for (k, v) in t.iter() {
        let v = v
            .as_value()
            .ok_or_else(|| format!("`{k}` must be a value"))?;
        let text = match v {
            toml_edit::Value::String(s) => s.value().clone(),
            toml_edit::Value::Integer(i) => i.value().to_string(),
            toml_edit::Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("`{k}` must list strings"))
                })
                .collect::<std::result::Result<Vec<_>, _>>()?
                .join(";"),
            _ => {
                return Err(format!(
                    "`{k}` must be a string, a number or a list of strings"
                ));
            }
        };
        if text.contains(',') {
            return Err(format!("`{k}` may not contain a comma"));
        }
        match k {
            "name" => name = Some(text),
            "path" => path = Some(base.join(text).display().to_string()),
            "function" if kind == "function" => function = Some(text),
            _ => opts.push(format!("{k}={text}")),
        }
    }
    let name = name.ok_or("no `name`")?;
    let path = path.ok_or("no `path`")?;
    let mut spec = match (kind, function) {
        ("function", Some(f)) => format!("{name}={path}:{f}"),
        ("function", None) => return Err("no `function`".into()),
        _ => format!("{name}={path}"),
    };
    for o in opts {
        spec.push(',');
        spec.push_str(&o);
    }
    let parsed = match kind {
        "model" => DbObject::parse_model(&spec),
        "script" => DbObject::parse_script(&spec),
        "function" => DbObject::parse_function(&spec),
        _ => return Err("expected [[model]], [[script]] or [[function]]".into()),
    };
    parsed.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_top_level_functions_with_decorators() {
        let text = "import torch\n\n@torch.jit.script\ndef pre(x):\n    y = x * 2\n\n    return y + 1\n\n\ndef other(a,\n          b\n):\n    return a\nprint(1)\n";
        assert_eq!(
            extract_function(text, "pre").as_deref(),
            Some("@torch.jit.script\ndef pre(x):\n    y = x * 2\n\n    return y + 1\n")
        );
        assert_eq!(
            extract_function(text, "other").as_deref(),
            Some("def other(a,\n          b\n):\n    return a\n")
        );
        assert_eq!(extract_function(text, "pr"), None);
        assert_eq!(extract_function("    def nested(x):\n", "nested"), None);
    }

    #[test]
    fn objects_files_parse_like_the_command_line() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("objects.toml");
        std::fs::write(
            &file,
            "[[model]]\nname = \"m\"\npath = \"m.onnx\"\nbackend = \"ONNX\"\nbatch = 4\ninputs = [\"a\", \"b\"]\n\n[[script]]\nname = \"s\"\npath = \"/abs/s.py\"\n\n[[function]]\nname = \"f\"\npath = \"f.py\"\nfunction = \"go\"\ndevice = \"CPU\"\n",
        )
        .expect("write");
        let objs = read_objects_file(&file).expect("parse");
        assert_eq!(objs.len(), 3);
        let DbObject::Model(m) = &objs[0] else {
            panic!()
        };
        assert_eq!(m.path, dir.path().join("m.onnx"));
        assert_eq!((m.batch_size, m.inputs.len()), (4, 2));
        assert_eq!(objs[1].path(), Path::new("/abs/s.py"));
        assert_eq!(objs[2].kind(), "function");
        for bad in [
            "model = 3\n",
            "[[model]]\npath = \"x\"\nbackend = \"ONNX\"\n",
            "[[model]]\nname = \"m\"\npath = \"x\"\ncolour = \"red\"\n",
            "[[function]]\nname = \"f\"\npath = \"f.py\"\n",
            "[[widget]]\nname = \"w\"\npath = \"w\"\n",
            "[[model]\n",
        ] {
            std::fs::write(&file, bad).expect("write");
            assert!(read_objects_file(&file).is_err(), "{bad}");
        }
    }
}
