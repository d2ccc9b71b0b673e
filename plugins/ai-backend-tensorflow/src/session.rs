//! A frozen graph in a TensorFlow session.

use std::{
    ffi::{CStr, CString},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use abi_stable::std_types::{RResult, RSlice, RString, RVec};
use orc_ai_backend_abi::{
    BackendModel, ModelOptions, TensorAbi, TensorView, answer, check_input_count, interrupted,
    rstrings,
};

use crate::{
    api::{Api, Graph, Output, Session, StatusBox},
    tensor::TfTensor,
};

/// A model: its graph, a session on it, and its named inputs and outputs; shared with the
/// thread that warms it up.
pub(crate) struct TfModel(Arc<Inner>);

/// What a model holds.
pub(crate) struct Inner {
    api: &'static Api,
    graph: *mut Graph,
    session: *mut Session,
    inputs: Vec<(String, Output)>,
    outputs: Vec<(String, Output)>,
    /// TensorFlow cancels a run after this long (MODEL_EXECUTION_TIMEOUT): its C API has no
    /// other way to stop one, and a graph that loops for ever would keep its worker.
    run_timeout_ms: Option<u64>,
}

// SAFETY: TensorFlow's sessions may be run from several threads at once (TF_SessionRun is
// thread-safe); the graph is not changed after the session is made.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

/// The device string TensorFlow places a graph on (`/device:CPU:0`, `/device:GPU:1`).
pub(crate) fn tf_device(device: &str) -> Result<String, String> {
    let d = device.to_ascii_uppercase();
    if d.starts_with("CPU") {
        return Ok("/device:CPU:0".into());
    }
    let n = match d.strip_prefix("GPU") {
        Some("") => 0,
        Some(n) => n
            .strip_prefix(':')
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| format!("invalid device `{device}`"))?,
        None => return Err(format!("invalid device `{device}`")),
    };
    Ok(format!("/device:GPU:{n}"))
}

/// A serialized `ConfigProto` with the thread settings (0: TensorFlow's default). They are
/// the module's, the same for every model: TensorFlow sizes its process-wide pools by the
/// first session's (inter-op: threads `tf_Compute`; intra-op: its Eigen pool).
pub(crate) fn config_proto(intra: u32, inter: u32) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = Vec::new();
    // intra_op_parallelism_threads = 2, inter_op_parallelism_threads = 5 (varints).
    for (field, v) in [(2u64, intra), (5, inter)] {
        if v > 0 {
            varint(&mut out, field << 3);
            varint(&mut out, u64::from(v));
        }
    }
    out
}

/// `name` or `name:index` as an operation's output.
fn output(api: &Api, graph: *mut Graph, spec: &str, what: &str) -> Result<Output, String> {
    let (name, index) = match spec.rsplit_once(':') {
        Some((n, i)) if !n.is_empty() && i.parse::<i32>().is_ok() => (n, i.parse().unwrap_or(0)),
        _ => (spec, 0),
    };
    let missing = || format!("{what} node named \"{spec}\" not found in TF graph.");
    let c = CString::new(name).map_err(|_| missing())?;
    // SAFETY: graph is live; c is a NUL-terminated name.
    let oper = unsafe { (api.operation_by_name)(graph, c.as_ptr()) };
    if oper.is_null() {
        return Err(missing());
    }
    // SAFETY: oper belongs to graph.
    let n = unsafe { (api.operation_num_outputs)(oper) };
    if index < 0 || index >= n {
        return Err(missing());
    }
    Ok(Output { oper, index })
}

impl TfModel {
    /// Import `blob` (a frozen GraphDef) on the device of `options`, open a session, and
    /// warm it up in the background.
    pub(crate) fn new(
        api: &'static Api,
        blob: &[u8],
        options: &ModelOptions,
    ) -> Result<Self, String> {
        let inner = Arc::new(Inner::new(api, blob, options)?);
        // At most MAX_WARM_UPS at once: stores in a burst do not make a thread each.
        if WARMING.fetch_add(1, Ordering::AcqRel) < MAX_WARM_UPS {
            let warm = inner.clone();
            let spawned = std::thread::Builder::new()
                .name("orc-ai-tf-warmup".into())
                .stack_size(64 << 20)
                .spawn(move || {
                    warm.warm_up();
                    WARMING.fetch_sub(1, Ordering::AcqRel);
                });
            if spawned.is_err() {
                WARMING.fetch_sub(1, Ordering::AcqRel);
            }
        } else {
            WARMING.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(TfModel(inner))
    }
}

impl Inner {
    /// Import `blob` (a frozen GraphDef) on the device of `options` and open a session.
    fn new(api: &'static Api, blob: &[u8], options: &ModelOptions) -> Result<Self, String> {
        let device = tf_device(options.device.as_str())?;
        if options.inputs.is_empty() || options.outputs.is_empty() {
            return Err("a TF model needs INPUTS and OUTPUTS naming its nodes".into());
        }
        let status = StatusBox::new(api);
        // SAFETY: each object is made, used and deleted here or owned by the model (whose
        // Drop deletes it); TF copies what it needs from the buffer and the device string.
        unsafe {
            let graph = (api.new_graph)();
            let mut model = Inner {
                api,
                graph,
                session: std::ptr::null_mut(),
                inputs: Vec::new(),
                outputs: Vec::new(),
                run_timeout_ms: (options.execution_timeout_ms > 0)
                    .then_some(options.execution_timeout_ms),
            };
            let buffer = (api.new_buffer_from_string)(blob.as_ptr().cast(), blob.len());
            let opts = (api.new_import_options)();
            let dev = CString::new(device.clone()).map_err(|e| e.to_string())?;
            (api.import_set_default_device)(opts, dev.as_ptr());
            (api.import_graph_def)(graph, buffer, opts, status.raw);
            (api.delete_import_options)(opts);
            (api.delete_buffer)(buffer);
            status
                .check()
                .map_err(|e| format!("Invalid GraphDef: {e}"))?;
            for (names, list, what) in [
                (&options.inputs, &mut model.inputs, "Input"),
                (&options.outputs, &mut model.outputs, "Output"),
            ] {
                for n in names.iter() {
                    list.push((n.to_string(), output(api, graph, n.as_str(), what)?));
                }
            }
            let sopts = (api.new_session_options)();
            let config = config_proto(options.intra_op_threads, options.inter_op_threads);
            (api.set_config)(sopts, config.as_ptr().cast(), config.len(), status.raw);
            if status.check().is_ok() {
                model.session = (api.new_session)(graph, sopts, status.raw);
            }
            (api.delete_session_options)(sopts);
            status.check()?;
            if model.session.is_null() {
                return Err("TensorFlow made no session".into());
            }
            if device != "/device:CPU:0" {
                model.has_device(&device, options.device.as_str())?;
            }
            Ok(model)
        }
    }

    /// Refuse a device the session does not have.
    fn has_device(&self, device: &str, asked: &str) -> Result<(), String> {
        let status = StatusBox::new(self.api);
        // SAFETY: the session is live; names belong to the list, read before it is deleted.
        unsafe {
            let list = (self.api.session_list_devices)(self.session, status.raw);
            status.check()?;
            let mut names = Vec::new();
            for i in 0..(self.api.device_list_count)(list) {
                let n = (self.api.device_list_name)(list, i, status.raw);
                if !n.is_null() {
                    names.push(CStr::from_ptr(n).to_string_lossy().into_owned());
                }
            }
            (self.api.delete_device_list)(list);
            if names.iter().any(|n| {
                n.to_ascii_uppercase()
                    .ends_with(&device.to_ascii_uppercase())
            }) {
                Ok(())
            } else {
                Err(format!(
                    "GPU requested ({asked}) but this TensorFlow has no such device (it has: {}); \
                     use a GPU build of TensorFlow or store the model with device CPU",
                    names
                        .iter()
                        .map(|n| n.rsplit('/').next().unwrap_or(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
    }

    /// Run the graph once on zeros shaped as its inputs declare (unknown sizes 1), so that
    /// TensorFlow optimises the graph and builds its kernels as soon as the model is stored
    /// (in the background: the store does not wait), not on the first `AI.MODELEXECUTE`:
    /// that first run of a ResNet-18 takes 1.2 s here, five times SmartRedis's default
    /// socket timeout, after which the client sends the command again. A request that comes
    /// meanwhile waits for TensorFlow to finish that work, as it would have done it itself. Bounded by [`WARM_UP_TIMEOUT_MS`] and [`WARM_UP_MAX_BYTES`]; inputs of
    /// unknown rank, strings or anything refused leave the model as it is (its first run
    /// then does the work).
    fn warm_up(&self) {
        let Some(tensors) = self
            .inputs
            .iter()
            .map(|(_, o)| self.zeros_for(*o))
            .collect::<Option<Vec<TensorAbi>>>()
        else {
            return;
        };
        let timeout = self
            .run_timeout_ms
            .map_or(WARM_UP_TIMEOUT_MS, |t| t.min(WARM_UP_TIMEOUT_MS));
        let views: Vec<TensorView<'_>> = tensors.iter().map(TensorAbi::view).collect();
        let _ = self.run_with_timeout(&views, Some(timeout));
    }

    /// Zeros shaped and typed as the graph declares the output `o`, if it can say.
    fn zeros_for(&self, o: Output) -> Option<TensorAbi> {
        let status = StatusBox::new(self.api);
        // SAFETY: o belongs to this model's graph; dims has room for the rank asked.
        unsafe {
            let dtype = (self.api.operation_output_type)(o);
            let rank = (self.api.graph_tensor_num_dims)(self.graph, o, status.raw);
            if status.check().is_err() || !(0..=8).contains(&rank) {
                return None;
            }
            let mut dims = vec![0i64; rank as usize];
            (self.api.graph_tensor_shape)(self.graph, o, dims.as_mut_ptr(), rank, status.raw);
            status.check().ok()?;
            let (code, bits) = crate::tensor::abi_type(dtype).ok()?;
            let shape: Vec<i64> = dims.iter().map(|d| if *d < 0 { 1 } else { *d }).collect();
            let mut bytes = usize::from(bits / 8);
            for d in &shape {
                bytes = bytes.checked_mul(usize::try_from(*d).ok()?)?;
            }
            (bytes <= WARM_UP_MAX_BYTES).then(|| TensorAbi::new(code, bits, shape, vec![0; bytes]))
        }
    }

    fn run_tensors(
        &self,
        inputs: &[TensorView<'_>],
        interrupt: &AtomicBool,
    ) -> Result<Vec<TensorAbi>, String> {
        if interrupt.load(Ordering::Relaxed) {
            return Err(interrupted());
        }
        self.run_with_timeout(inputs, self.run_timeout_ms)
    }

    /// One run; TensorFlow cancels it after `timeout_ms` when given.
    fn run_with_timeout(
        &self,
        inputs: &[TensorView<'_>],
        timeout_ms: Option<u64>,
    ) -> Result<Vec<TensorAbi>, String> {
        check_input_count(self.inputs.len(), inputs.len())?;
        let tensors: Vec<TfTensor<'_>> = inputs
            .iter()
            .map(|t| TfTensor::from_abi(self.api, t))
            .collect::<Result<_, _>>()?;
        let ins: Vec<Output> = self.inputs.iter().map(|(_, o)| *o).collect();
        let values: Vec<*mut crate::api::Tensor> = tensors.iter().map(|t| t.raw).collect();
        let outs: Vec<Output> = self.outputs.iter().map(|(_, o)| *o).collect();
        let mut results = vec![std::ptr::null_mut(); outs.len()];
        let status = StatusBox::new(self.api);
        let run_options = timeout_ms.map(|ms| RunOptions::new(self.api, ms));
        let count = |n: usize| i32::try_from(n).map_err(|_| "too many tensors".to_string());
        // SAFETY: the arrays hold the counts given; input tensors stay alive (owned by
        // `tensors`) and are not taken by TF; the outputs it returns are ours to delete.
        unsafe {
            (self.api.session_run)(
                self.session,
                run_options.as_ref().map_or(std::ptr::null(), |r| r.raw),
                ins.as_ptr(),
                values.as_ptr(),
                count(ins.len())?,
                outs.as_ptr(),
                results.as_mut_ptr(),
                count(outs.len())?,
                std::ptr::null(),
                0,
                std::ptr::null_mut(),
                status.raw,
            );
        }
        let results: Vec<TfTensor<'_>> = results
            .into_iter()
            .map(|r| TfTensor::owned(self.api, r))
            .collect();
        status.check()?;
        results.iter().map(TfTensor::to_abi).collect()
    }
}

/// Warm-up runs going on now, and the most at once.
static WARMING: AtomicUsize = AtomicUsize::new(0);
const MAX_WARM_UPS: usize = 2;

/// A warm-up run is cancelled after this long (a graph that loops for ever must not keep
/// the store waiting).
pub(crate) const WARM_UP_TIMEOUT_MS: u64 = 10_000;

/// Inputs larger than this are not made for a warm-up run.
pub(crate) const WARM_UP_MAX_BYTES: usize = 64 << 20;

/// A serialized `RunOptions` in a `TF_Buffer`, deleted when dropped.
struct RunOptions<'a> {
    api: &'a Api,
    raw: *mut crate::api::Buffer,
}

impl<'a> RunOptions<'a> {
    /// Options that cancel the run after `timeout_ms` (`timeout_in_ms`, field 2).
    fn new(api: &'a Api, timeout_ms: u64) -> Self {
        let mut proto = vec![2 << 3];
        let mut v = timeout_ms;
        while v >= 0x80 {
            proto.push((v as u8) | 0x80);
            v >>= 7;
        }
        proto.push(v as u8);
        // SAFETY: TF copies the bytes into a buffer it owns.
        let raw = unsafe { (api.new_buffer_from_string)(proto.as_ptr().cast(), proto.len()) };
        RunOptions { api, raw }
    }
}

impl Drop for RunOptions<'_> {
    fn drop(&mut self) {
        // SAFETY: raw came from TF_NewBufferFromString and is deleted once.
        unsafe { (self.api.delete_buffer)(self.raw) }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let status = StatusBox::new(self.api);
        // SAFETY: session and graph were made by TF for this model and are deleted once;
        // the session goes first (it refers to the graph).
        unsafe {
            if !self.session.is_null() {
                (self.api.close_session)(self.session, status.raw);
                (self.api.delete_session)(self.session, status.raw);
            }
            (self.api.delete_graph)(self.graph);
        }
    }
}

impl BackendModel for TfModel {
    fn inputs(&self) -> RVec<RString> {
        let names: Vec<String> = self.0.inputs.iter().map(|(n, _)| n.clone()).collect();
        rstrings(&names)
    }
    fn outputs(&self) -> RVec<RString> {
        let names: Vec<String> = self.0.outputs.iter().map(|(n, _)| n.clone()).collect();
        rstrings(&names)
    }
    fn run(
        &self,
        inputs: RSlice<'_, TensorView<'_>>,
        interrupt: &AtomicBool,
    ) -> RResult<RVec<TensorAbi>, RString> {
        answer(|| self.0.run_tensors(&inputs, interrupt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_map_to_tensorflow_names() {
        assert_eq!(tf_device("CPU").unwrap(), "/device:CPU:0");
        assert_eq!(tf_device("gpu").unwrap(), "/device:GPU:0");
        assert_eq!(tf_device("GPU:2").unwrap(), "/device:GPU:2");
        assert!(tf_device("GPU:x").is_err());
        assert!(tf_device("TPU").is_err());
    }

    #[test]
    fn thread_settings_make_a_config_proto() {
        assert!(config_proto(0, 0).is_empty());
        assert_eq!(config_proto(2, 0), vec![0x10, 2]);
        assert_eq!(config_proto(300, 3), vec![0x10, 0xac, 0x02, 0x28, 3]);
    }
}
