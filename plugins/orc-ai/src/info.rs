//! The module's `INFO` sections, and its server-cron hook.
//!
//! `# ai_objects`: models and scripts, and those kept as stored but not loaded (with key
//! and reason, the first ten); `# ai_execution`: device queues, runs stopped at the
//! execution timeout, workers given up; `# ai_limits`: the limits in force. `orc db
//! status` reads `ai_objects_not_loaded` to report objects that need their backend.

use std::ffi::CString;

use redis_module::raw;

use crate::{
    exec,
    objects::{Kind, registry},
    state::{lock, state},
};

/// How many unloaded objects `INFO` names.
const NAMED: usize = 10;

struct Info(*mut raw::RedisModuleInfoCtx);

impl Info {
    fn section(&self, name: &str) {
        let c = CString::new(name).unwrap_or_default();
        // SAFETY: the info callback's live context.
        unsafe { raw::RedisModule_InfoAddSection.expect("API")(self.0, c.as_ptr()) };
    }
    fn text(&self, name: &str, value: &str) {
        let n = CString::new(name).unwrap_or_default();
        let clean: String = value
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let v = CString::new(clean).unwrap_or_default();
        // SAFETY: as above; Redis copies both strings.
        unsafe {
            raw::RedisModule_InfoAddFieldCString.expect("API")(self.0, n.as_ptr(), v.as_ptr())
        };
    }
    fn int(&self, name: &str, value: i64) {
        let n = CString::new(name).unwrap_or_default();
        // SAFETY: as above.
        unsafe { raw::RedisModule_InfoAddFieldLongLong.expect("API")(self.0, n.as_ptr(), value) };
    }
}

/// Redis calls this for `INFO` (and `INFO MODULES`).
///
/// # Safety
/// Called by Redis with a live info context.
pub unsafe extern "C" fn info_callback(
    ctx: *mut raw::RedisModuleInfoCtx,
    _for_crash_report: std::os::raw::c_int,
) {
    let _ = std::panic::catch_unwind(|| {
        let i = Info(ctx);
        let objects = registry();
        let not_loaded: Vec<_> = objects.iter().filter(|e| e.load_error.is_some()).collect();
        i.section("objects");
        i.int(
            "models",
            objects.iter().filter(|e| e.kind == Kind::Model).count() as i64,
        );
        i.int(
            "scripts",
            objects.iter().filter(|e| e.kind == Kind::Script).count() as i64,
        );
        i.int("objects_not_loaded", not_loaded.len() as i64);
        for (n, e) in not_loaded.iter().take(NAMED).enumerate() {
            i.text(
                &format!("not_loaded_{n}"),
                &format!(
                    "key={} kind={} error={}",
                    String::from_utf8_lossy(&e.key).replace([',', ' ', '='], "_"),
                    if e.kind == Kind::Model {
                        "model"
                    } else {
                        "script"
                    },
                    e.load_error.as_deref().unwrap_or_default()
                ),
            );
        }
        i.section("execution");
        i.text("device_queues", &exec::device_queues().join(","));
        i.int("runs_timed_out", exec::timed_out_runs() as i64);
        i.int("workers_given_up", exec::abandoned_workers() as i64);
        i.int("inline_runs", exec::inline::inline_runs() as i64);
        let c = lock(&state().config).clone();
        i.section("limits");
        i.int("max_tensor_bytes", c.limits.max_tensor_bytes as i64);
        i.int("max_values_reply", c.limits.max_values_reply as i64);
        i.int("max_dag_size", c.limits.max_dag_size as i64);
        i.int("max_device_queues", c.limits.max_device_queues as i64);
        i.int("model_chunk_size_min", c.limits.min_chunk_size as i64);
        i.int("model_execution_timeout", c.model_execution_timeout as i64);
        i.int("threads_per_queue", c.threads_per_queue as i64);
        i.int("inline_run_max_us", c.inline_run_max_us as i64);
        i.int("worker_spin_us", c.worker_spin_us as i64);
        i.text(
            "allow_backend_paths",
            if c.allow_backend_paths { "yes" } else { "no" },
        );
        i.text(
            "torch_allow_unsafe_ops",
            if c.torch_allow_unsafe_ops {
                "yes"
            } else {
                "no"
            },
        );
    });
}

/// Redis calls this every server cron tick, on the main thread.
///
/// # Safety
/// Called by Redis on its main thread.
pub unsafe extern "C" fn cron_callback(
    _ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    _sub: u64,
    _data: *mut std::os::raw::c_void,
) {
    let _ = std::panic::catch_unwind(crate::retained::release_pending);
}
