//! A TFLite model compiled by LiteRT, run one request at a time.

use std::{
    ffi::{CStr, c_char, c_void},
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use abi_stable::std_types::{RResult, RSlice, RString, RVec};
use orc_ai_backend_abi::{
    BackendModel, ModelOptions, TensorAbi, TensorView, answer, check_input_count, interrupted,
    rstrings,
};

use crate::{
    Runtime,
    api::{HW_CPU, Handle, Layout, MAX_RANK, RankedType, check},
    scratch::{Aligned, with_outputs},
};

/// LiteRT's element type for a DLPack code and bit width.
fn element_type(code: u8, bits: u8) -> Option<i32> {
    Some(match (code, bits) {
        (2, 32) => 1,  // float32
        (0, 32) => 2,  // int32
        (1, 8) => 3,   // uint8
        (0, 64) => 4,  // int64
        (6, 8) => 6,   // bool
        (0, 16) => 7,  // int16
        (0, 8) => 9,   // int8
        (2, 64) => 11, // float64
        (1, 16) => 17, // uint16
        _ => return None,
    })
}

/// The DLPack code and bit width of a LiteRT element type.
fn abi_type(t: i32) -> Option<(u8, u8)> {
    [
        (2, 32),
        (0, 32),
        (1, 8),
        (0, 64),
        (6, 8),
        (0, 16),
        (0, 8),
        (2, 64),
        (1, 16),
    ]
    .into_iter()
    .find(|(c, b)| element_type(*c, *b) == Some(t))
}

fn type_name(t: i32) -> String {
    match abi_type(t) {
        Some((2, b)) => format!("float{b}"),
        Some((0, b)) => format!("int{b}"),
        Some((1, b)) => format!("uint{b}"),
        Some((6, _)) => "bool".into(),
        _ => format!("LiteRT element type {t}"),
    }
}

/// LiteRT objects, destroyed in order when dropped.
struct State {
    rt: &'static Runtime,
    compiled: Handle,
    model: Handle,
    /// The flatbuffer, which LiteRT reads in place for as long as the model lives.
    _blob: Aligned,
    /// The input shapes the compiled model has now.
    shapes: Vec<Vec<i32>>,
}

impl Drop for State {
    fn drop(&mut self) {
        // SAFETY: both came from LiteRT, are destroyed once, the compiled model first.
        unsafe {
            if !self.compiled.is_null() {
                (self.rt.api.destroy_compiled_model)(self.compiled);
            }
            if !self.model.is_null() {
                (self.rt.api.destroy_model)(self.model);
            }
        }
    }
}

// SAFETY: LiteRT's objects are not tied to a thread; the Mutex around State lets one
// thread at a time use them.
unsafe impl Send for State {}

/// A stored TFLITE model.
pub(crate) struct LiteRtModel {
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// Element type of each input and output.
    input_types: Vec<i32>,
    output_types: Vec<i32>,
    state: Mutex<State>,
}

/// A `LiteRtTensorBuffer` list, destroyed when dropped.
struct Buffers<'a>(&'a Runtime, Vec<Handle>);

impl Drop for Buffers<'_> {
    fn drop(&mut self) {
        for b in &self.1 {
            // SAFETY: each came from LiteRtCreateTensorBufferFromHostMemory, destroyed once.
            unsafe { (self.0.api.destroy_buffer)(*b) }
        }
    }
}

extern "C" fn cancelled(flag: *mut c_void) -> bool {
    // SAFETY: the flag set with the function outlives every run it is set for (run below
    // sets NEVER again before its flag goes away).
    unsafe { &*(flag as *const AtomicBool) }.load(Ordering::Relaxed)
}

static NEVER: AtomicBool = AtomicBool::new(false);

fn name_of(p: *const c_char, fallback: usize) -> String {
    if p.is_null() {
        return format!("{fallback}");
    }
    // SAFETY: LiteRT returns NUL-terminated names owned by the model.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl LiteRtModel {
    /// Read `blob` (checked by the caller) and compile it for the CPU.
    pub(crate) fn new(
        rt: &'static Runtime,
        blob: &[u8],
        options: &ModelOptions,
    ) -> Result<Self, String> {
        let device = options.device.as_str();
        if !device.to_ascii_uppercase().starts_with("CPU") {
            return Err(format!(
                "GPU requested ({device}) but the TFLITE backend (LiteRT) runs on the CPU only; \
                 store the model with device CPU"
            ));
        }
        let api = &rt.api;
        let blob = Aligned::copy(blob);
        let mut state = State {
            rt,
            compiled: std::ptr::null_mut(),
            model: std::ptr::null_mut(),
            _blob: blob,
            shapes: Vec::new(),
        };
        let (ptr, len) = (state._blob.as_mut_ptr(), state._blob.len());
        // SAFETY: the buffer lives in `state` as long as the model.
        check(
            unsafe { (api.create_model_from_buffer)(rt.env, ptr.cast(), len, &mut state.model) },
            "cannot read the model",
        )?;
        let mut count = 0usize;
        let mut sig: Handle = std::ptr::null_mut();
        // SAFETY: model is live; outputs are written by LiteRT.
        unsafe {
            check((api.num_signatures)(state.model, &mut count), "signatures")?;
            if count == 0 {
                return Err("the model has no signature".into());
            }
            check((api.model_signature)(state.model, 0, &mut sig), "signature")?;
        }
        let (inputs, input_types) = io(rt, sig, true)?;
        let (outputs, output_types) = io(rt, sig, false)?;
        state.compiled = compile(rt, state.model, options.intra_op_threads)?;
        for i in 0..inputs.len() {
            let mut l = Layout::default();
            // SAFETY: compiled is live; i is below the input count.
            check(
                unsafe { (api.input_layout)(state.compiled, 0, i, &mut l) },
                "input layout",
            )?;
            state.shapes.push(l.dims().to_vec());
        }
        Ok(LiteRtModel {
            inputs,
            outputs,
            input_types,
            output_types,
            state: Mutex::new(state),
        })
    }

    fn run_locked(
        &self,
        s: &mut State,
        inputs: &[TensorView<'_>],
        interrupt: &AtomicBool,
    ) -> Result<Vec<TensorAbi>, String> {
        check_input_count(self.inputs.len(), inputs.len())?;
        let rt = s.rt;
        let api = &rt.api;
        let mut copies = Vec::with_capacity(inputs.len());
        let mut types = Vec::with_capacity(inputs.len());
        for (i, t) in inputs.iter().enumerate() {
            let want = self.input_types[i];
            if element_type(t.code, t.bits) != Some(want) {
                return Err(format!(
                    "input {i} ({}) must be {}; the tensor given is of another type",
                    self.inputs[i],
                    type_name(want)
                ));
            }
            let dims = dims_of(t)?;
            if dims != s.shapes[i] {
                // SAFETY: compiled is live; dims holds dims.len() values.
                check(
                    unsafe { (api.resize_input)(s.compiled, 0, i, dims.as_ptr(), dims.len()) },
                    &format!("input {i} cannot take shape {dims:?}"),
                )?;
                s.shapes[i] = dims.clone();
            }
            types.push(RankedType {
                element_type: want,
                layout: Layout::of(&dims),
            });
            copies.push(Aligned::copy(&t.data));
        }
        let mut ins = Buffers(rt, Vec::with_capacity(inputs.len()));
        for (c, ty) in copies.iter_mut().zip(&types) {
            let mut b: Handle = std::ptr::null_mut();
            // SAFETY: the copy is 64-byte aligned, holds len bytes and outlives the buffer.
            check(
                unsafe {
                    (api.buffer_from_host_memory)(ty, c.as_mut_ptr().cast(), c.len(), None, &mut b)
                },
                "input buffer",
            )?;
            ins.1.push(b);
        }
        let n = self.outputs.len();
        let mut layouts = vec![Layout::default(); n];
        // SAFETY: layouts holds n entries.
        check(
            unsafe { (api.output_layouts)(s.compiled, 0, n, layouts.as_mut_ptr(), true) },
            "output layouts",
        )?;
        with_outputs(|mem| {
            let (parts, cap) = mem.parts(n)?;
            let mut outs = Buffers(rt, Vec::with_capacity(n));
            for (k, part) in parts.iter().enumerate() {
                let ty = RankedType {
                    element_type: self.output_types[k],
                    layout: layouts[k],
                };
                let mut b: Handle = std::ptr::null_mut();
                // SAFETY: part is page-aligned and holds cap bytes for this run.
                check(
                    unsafe { (api.buffer_from_host_memory)(&ty, part.cast(), cap, None, &mut b) },
                    "output buffer",
                )?;
                outs.1.push(b);
            }
            let flag = std::ptr::from_ref(interrupt).cast_mut().cast::<c_void>();
            // SAFETY: compiled is live; the buffers match the signature's inputs and
            // outputs; the flag outlives the run and is replaced before it returns.
            let status = unsafe {
                (api.set_cancellation)(s.compiled, flag, cancelled);
                let st = (api.run)(
                    s.compiled,
                    0,
                    ins.1.len(),
                    ins.1.as_mut_ptr(),
                    outs.1.len(),
                    outs.1.as_mut_ptr(),
                );
                let never = std::ptr::from_ref(&NEVER).cast_mut().cast::<c_void>();
                (api.set_cancellation)(s.compiled, never, cancelled);
                st
            };
            if interrupt.load(Ordering::Relaxed) {
                return Err(interrupted());
            }
            check(status, "the run failed")?;
            // SAFETY: layouts holds n entries; after a run they are the outputs' shapes.
            check(
                unsafe { (api.output_layouts)(s.compiled, 0, n, layouts.as_mut_ptr(), false) },
                "output layouts",
            )?;
            let mut result = Vec::with_capacity(n);
            let mut written = 0;
            for (k, part) in parts.iter().enumerate() {
                let t = self.output_types[k];
                let (code, bits) = abi_type(t).ok_or_else(|| {
                    format!(
                        "output {k} is of {}, which RedisAI clients cannot store",
                        type_name(t)
                    )
                })?;
                let shape: Vec<i64> = layouts[k].dims().iter().map(|d| i64::from(*d)).collect();
                let bytes = shape
                    .iter()
                    .try_fold(usize::from(bits / 8), |a, d| {
                        usize::try_from(*d).ok().and_then(|d| a.checked_mul(d))
                    })
                    .filter(|b| *b <= cap)
                    .ok_or_else(|| format!("output {k} has an impossible shape {shape:?}"))?;
                written += bytes;
                // SAFETY: LiteRT wrote `bytes` <= cap bytes at part.
                let data = unsafe { std::slice::from_raw_parts(*part, bytes) }.to_vec();
                result.push(TensorAbi::new(code, bits, shape, data));
            }
            mem.release(written);
            Ok(result)
        })
    }
}

/// A tensor's dimensions as LiteRT takes them.
fn dims_of(t: &TensorView<'_>) -> Result<Vec<i32>, String> {
    if t.shape.len() > MAX_RANK {
        return Err(format!(
            "a tensor of rank {} is beyond LiteRT's {MAX_RANK}",
            t.shape.len()
        ));
    }
    let dims = t
        .shape
        .iter()
        .map(|d| i32::try_from(*d).map_err(|_| format!("dimension {d} is out of range")))
        .collect::<Result<Vec<i32>, String>>()?;
    let bytes = dims.iter().try_fold(usize::from(t.bits / 8), |a, d| {
        usize::try_from(*d).ok().and_then(|d| a.checked_mul(d))
    });
    if bytes != Some(t.data.len()) {
        return Err(format!(
            "tensor data has {} bytes, its shape {dims:?} needs another count",
            t.data.len()
        ));
    }
    Ok(dims)
}

/// The names and element types of a signature's inputs or outputs.
fn io(rt: &Runtime, sig: Handle, inputs: bool) -> Result<(Vec<String>, Vec<i32>), String> {
    let api = &rt.api;
    let mut n = 0usize;
    // SAFETY: sig is live; outputs are written by LiteRT.
    unsafe {
        let count = if inputs {
            api.num_signature_inputs
        } else {
            api.num_signature_outputs
        };
        check(count(sig, &mut n), "signature")?;
    }
    let mut names = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    for i in 0..n {
        let mut name: *const c_char = std::ptr::null();
        let mut tensor: Handle = std::ptr::null_mut();
        let mut ty = RankedType::default();
        // SAFETY: i is below the count; outputs are written by LiteRT.
        unsafe {
            let (get_name, get_tensor) = if inputs {
                (api.signature_input_name, api.signature_input_tensor)
            } else {
                (api.signature_output_name, api.signature_output_tensor)
            };
            check(get_name(sig, i, &mut name), "signature name")?;
            check(get_tensor(sig, i, &mut tensor), "signature tensor")?;
            check(
                (api.ranked_tensor_type)(tensor, &mut ty),
                "the model has a tensor of unknown rank",
            )?;
        }
        names.push(name_of(name, i));
        types.push(ty.element_type);
    }
    Ok((names, types))
}

unsafe extern "C" fn free_payload(p: *mut c_void) {
    // SAFETY: p came from libc::strdup below.
    unsafe { libc::free(p) }
}

/// Compile `model` for the CPU (XNNPACK) with `threads` threads (0: LiteRT's default).
fn compile(rt: &Runtime, model: Handle, threads: u32) -> Result<Handle, String> {
    let api = &rt.api;
    let mut options: Handle = std::ptr::null_mut();
    // SAFETY: LiteRT writes a fresh options object, destroyed below (the compiled model
    // does not keep it).
    check(unsafe { (api.create_options)(&mut options) }, "options")?;
    struct Options<'a>(&'a Runtime, Handle);
    impl Drop for Options<'_> {
        fn drop(&mut self) {
            // SAFETY: created above, destroyed once.
            unsafe { (self.0.api.destroy_options)(self.1) }
        }
    }
    let options = Options(rt, options);
    // SAFETY: options is live.
    check(
        unsafe { (api.set_accelerators)(options.1, HW_CPU) },
        "CPU option",
    )?;
    if threads > 0 {
        let text = std::ffi::CString::new(format!("num_threads = {threads}\n"))
            .map_err(|e| e.to_string())?;
        // SAFETY: strdup copies the string; LiteRT frees it with free_payload.
        let payload = unsafe { libc::strdup(text.as_ptr()) };
        if payload.is_null() {
            return Err("out of memory".into());
        }
        let mut opaque: Handle = std::ptr::null_mut();
        // SAFETY: the identifier is a static string; payload ownership passes to LiteRT
        // on success (on failure it is freed here).
        unsafe {
            let st = (api.create_opaque_options)(
                c"xnnpack".as_ptr(),
                payload.cast(),
                Some(free_payload),
                &mut opaque,
            );
            if st != crate::api::OK {
                libc::free(payload.cast());
            }
            check(st, "thread option")?;
            check((api.add_opaque_options)(options.1, opaque), "thread option")?;
        }
    }
    let mut compiled: Handle = std::ptr::null_mut();
    // SAFETY: environment, model and options are live.
    check(
        unsafe { (api.create_compiled_model)(rt.env, model, options.1, &mut compiled) },
        "cannot compile the model for the CPU",
    )?;
    Ok(compiled)
}

impl BackendModel for LiteRtModel {
    fn inputs(&self) -> RVec<RString> {
        rstrings(&self.inputs)
    }

    fn outputs(&self) -> RVec<RString> {
        rstrings(&self.outputs)
    }

    fn run(
        &self,
        inputs: RSlice<'_, TensorView<'_>>,
        interrupt: &AtomicBool,
    ) -> RResult<RVec<TensorAbi>, RString> {
        answer(|| {
            let mut state = self
                .state
                .lock()
                .map_err(|_| "the model failed in an earlier run".to_string())?;
            self.run_locked(&mut state, inputs.as_slice(), interrupt)
        })
    }
}
