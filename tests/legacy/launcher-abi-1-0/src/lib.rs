//! A local launcher (`legacy`) written against orc-plugin-abi 1.0: the minor-0 protocol of
//! `launch`, `status`, `cancel` and `allocation`, with JSON handled by hand, as a plugin
//! built before minor versions and capabilities would have been.
//!
//! With feature `minor-1` it answers `hello` as a plugin built against 1.1 did: minor 1
//! and the capabilities of 1.1 (and nothing of what 1.2 added, such as `use_state_dir`).
#![allow(missing_docs)]

use std::{
    collections::HashMap,
    fs::File,
    process::{Child, Command, Stdio},
    sync::Mutex,
};

use abi_stable::{
    export_root_module,
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{RResult, RStr, RString, RVec},
};
use orc_plugin_abi::{
    ABI_VERSION, LogSink, OrcPluginMod, OrcPluginModRef, PluginDescriptor, PluginKind,
    PluginObject, PluginObject_TO, PluginObjectBox,
};
use serde_json::{Value, json};

static CHILDREN: Mutex<Option<HashMap<String, Child>>> = Mutex::new(None);

fn err(message: String) -> RResult<RString, RString> {
    RResult::RErr(json!({"kind": "launcher", "launcher": "legacy", "message": message}).to_string().into())
}

fn launch(step: &Value) -> Result<Value, String> {
    let s = |k: &str| step[k].as_str().map(str::to_string).ok_or(format!("no `{k}`"));
    let mut cmd = Command::new(s("exe")?);
    for a in step["args"].as_array().into_iter().flatten() {
        cmd.arg(a.as_str().unwrap_or_default());
    }
    if let Some(env) = step["env"].as_object() {
        for (k, v) in env {
            cmd.env(k, v.as_str().unwrap_or_default());
        }
    }
    let out = File::create(s("stdout")?).map_err(|e| e.to_string())?;
    let errf = File::create(s("stderr")?).map_err(|e| e.to_string())?;
    let child = cmd
        .current_dir(s("cwd")?)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(errf)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", s("exe").unwrap_or_default()))?;
    let id = format!("legacy-{}", child.id());
    CHILDREN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(id.clone(), child);
    Ok(json!(id))
}

fn status_of(id: &str, cancel: bool) -> Value {
    let mut children = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
    let Some(child) = children.get_or_insert_with(HashMap::new).get_mut(id) else {
        return json!({"status": "failed", "native_state": null, "exit_code": null, "detail": "unknown step"});
    };
    if cancel {
        let _ = child.kill();
        let _ = child.wait();
        return json!({"status": "cancelled", "native_state": null, "exit_code": null, "detail": null});
    }
    match child.try_wait() {
        Ok(None) => json!({"status": "running", "native_state": null, "exit_code": null, "detail": null}),
        Ok(Some(st)) => {
            let code = st.code();
            let status = if code == Some(0) { "completed" } else { "failed" };
            json!({"status": status, "native_state": null, "exit_code": code, "detail": null})
        }
        Err(e) => json!({"status": "failed", "native_state": null, "exit_code": null, "detail": e.to_string()}),
    }
}

struct Legacy;

impl PluginObject for Legacy {
    fn call(&self, method: RStr<'_>, payload: RStr<'_>) -> RResult<RString, RString> {
        let Ok(p) = serde_json::from_str::<Value>(payload.as_str()) else {
            return err("unreadable request".into());
        };
        let reply = match method.as_str() {
            "launch" => launch(&p),
            "status" => Ok(Value::Array(
                p.as_array()
                    .into_iter()
                    .flatten()
                    .map(|id| status_of(id.as_str().unwrap_or_default(), false))
                    .collect(),
            )),
            "cancel" => Ok(status_of(p.as_str().unwrap_or_default(), true)),
            "allocation" => Ok(json!({"id": null, "hosts": ["localhost"]})),
            #[cfg(feature = "minor-1")]
            "hello" => Ok(json!({
                "abi_minor": 1,
                "capabilities": [
                    "launcher.allocate",
                    "launcher.mpmd",
                    "launcher.run_allocation",
                    "launcher.batch_tasks_per_node",
                    "launcher.batch_queue_timeout",
                    "deployment.shard_interfaces",
                    "deployment.ai_settings",
                ],
            })),
            other => Err(format!("unknown method `{other}`")),
        };
        match reply {
            Ok(v) => RResult::ROk(v.to_string().into()),
            Err(e) => err(e),
        }
    }
}

extern "C" fn descriptors() -> RVec<PluginDescriptor> {
    RVec::from(vec![PluginDescriptor {
        kind: PluginKind::LAUNCHER,
        name: "legacy".into(),
        version: "0.0.0".into(),
        description: "a local launcher built against orc-plugin-abi 1.0".into(),
    }])
}

extern "C" fn init(_: LogSink) -> RResult<(), RString> {
    RResult::ROk(())
}

extern "C" fn instantiate(kind: PluginKind, name: RStr<'_>) -> RResult<PluginObjectBox, RString> {
    if kind != PluginKind::LAUNCHER || name.as_str() != "legacy" {
        return RResult::RErr(format!("no {} named {name}", kind.name()).into());
    }
    RResult::ROk(PluginObject_TO::from_value(Legacy, TD_Opaque))
}

#[export_root_module]
pub fn root_module() -> OrcPluginModRef {
    OrcPluginMod {
        abi_version: ABI_VERSION,
        package: RStr::from_str(env!("CARGO_PKG_NAME")),
        package_version: RStr::from_str(env!("CARGO_PKG_VERSION")),
        descriptors,
        init,
        instantiate,
    }
    .leak_into_prefix()
}
