//! The part of LiteRT's C API (`litert/c/*.h`, LiteRT 2.x) this backend calls, looked up
//! in the library at run time, and the C types it passes.

use std::ffi::{c_char, c_int, c_void};

/// Opaque handles.
pub(crate) type Handle = *mut c_void;

/// `LiteRtStatus` of success.
pub(crate) const OK: c_int = 0;
/// `kLiteRtHwAcceleratorCpu`.
pub(crate) const HW_CPU: c_int = 1;
/// Most dimensions a `LiteRtLayout` holds.
pub(crate) const MAX_RANK: usize = 8;

/// `LiteRtLayout`: rank (7 bits) and has-strides (1 bit), dimensions, strides.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Layout {
    pub(crate) rank_bits: u32,
    pub(crate) dims: [i32; MAX_RANK],
    pub(crate) strides: [u32; MAX_RANK],
}

impl Layout {
    /// A layout of `dims` without strides (`dims.len() <= MAX_RANK`).
    pub(crate) fn of(dims: &[i32]) -> Self {
        let mut l = Layout {
            rank_bits: dims.len() as u32,
            ..Layout::default()
        };
        l.dims[..dims.len()].copy_from_slice(dims);
        l
    }

    /// Its dimensions.
    pub(crate) fn dims(&self) -> &[i32] {
        &self.dims[..((self.rank_bits & 0x7f) as usize).min(MAX_RANK)]
    }
}

/// `LiteRtRankedTensorType`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct RankedType {
    pub(crate) element_type: c_int,
    pub(crate) layout: Layout,
}

/// `LiteRtAny`: a tagged value.
#[repr(C)]
pub(crate) struct Any {
    pub(crate) kind: c_int,
    pub(crate) value: i64,
}

/// `LiteRtEnvOption`.
#[repr(C)]
pub(crate) struct EnvOption {
    pub(crate) tag: c_int,
    pub(crate) value: Any,
}

/// `kLiteRtAnyTypeInt`.
pub(crate) const ANY_INT: c_int = 2;
/// `kLiteRtEnvOptionTagAutoRegisterAccelerators`: which accelerators to look for.
pub(crate) const ENV_AUTO_REGISTER: c_int = 24;
/// `kLiteRtEnvOptionTagMinLoggerSeverity`.
pub(crate) const ENV_LOG_SEVERITY: c_int = 25;
/// `kLiteRtLogSeverityWarning`.
pub(crate) const LOG_WARNING: i64 = 3;

const _: () = assert!(std::mem::size_of::<Layout>() == 68);
const _: () = assert!(std::mem::size_of::<RankedType>() == 72);
const _: () = assert!(std::mem::size_of::<EnvOption>() == 24);

type Deleter = Option<unsafe extern "C" fn(*mut c_void)>;
type Cancelled = unsafe extern "C" fn(*mut c_void) -> bool;

orc_dylib::c_api! {
    /// The C API's functions.
    pub(crate) struct Api("LiteRT's C API") {
        create_environment = b"LiteRtCreateEnvironment\0": fn(c_int, *const EnvOption, *mut Handle) -> c_int;
        create_model_from_buffer = b"LiteRtCreateModelFromBuffer\0": fn(Handle, *const c_void, usize, *mut Handle) -> c_int;
        destroy_model = b"LiteRtDestroyModel\0": fn(Handle);
        num_signatures = b"LiteRtGetNumModelSignatures\0": fn(Handle, *mut usize) -> c_int;
        model_signature = b"LiteRtGetModelSignature\0": fn(Handle, usize, *mut Handle) -> c_int;
        num_signature_inputs = b"LiteRtGetNumSignatureInputs\0": fn(Handle, *mut usize) -> c_int;
        num_signature_outputs = b"LiteRtGetNumSignatureOutputs\0": fn(Handle, *mut usize) -> c_int;
        signature_input_name = b"LiteRtGetSignatureInputName\0": fn(Handle, usize, *mut *const c_char) -> c_int;
        signature_output_name = b"LiteRtGetSignatureOutputName\0": fn(Handle, usize, *mut *const c_char) -> c_int;
        signature_input_tensor = b"LiteRtGetSignatureInputTensorByIndex\0": fn(Handle, usize, *mut Handle) -> c_int;
        signature_output_tensor = b"LiteRtGetSignatureOutputTensorByIndex\0": fn(Handle, usize, *mut Handle) -> c_int;
        ranked_tensor_type = b"LiteRtGetRankedTensorType\0": fn(Handle, *mut RankedType) -> c_int;
        create_options = b"LiteRtCreateOptions\0": fn(*mut Handle) -> c_int;
        destroy_options = b"LiteRtDestroyOptions\0": fn(Handle);
        set_accelerators = b"LiteRtSetOptionsHardwareAccelerators\0": fn(Handle, c_int) -> c_int;
        create_opaque_options = b"LiteRtCreateOpaqueOptions\0": fn(*const c_char, *mut c_void, Deleter, *mut Handle) -> c_int;
        add_opaque_options = b"LiteRtAddOpaqueOptions\0": fn(Handle, Handle) -> c_int;
        create_compiled_model = b"LiteRtCreateCompiledModel\0": fn(Handle, Handle, Handle, *mut Handle) -> c_int;
        destroy_compiled_model = b"LiteRtDestroyCompiledModel\0": fn(Handle);
        input_layout = b"LiteRtGetCompiledModelInputTensorLayout\0": fn(Handle, usize, usize, *mut Layout) -> c_int;
        output_layouts = b"LiteRtGetCompiledModelOutputTensorLayouts\0": fn(Handle, usize, usize, *mut Layout, bool) -> c_int;
        resize_input = b"LiteRtCompiledModelResizeInputTensorNonStrict\0": fn(Handle, usize, usize, *const c_int, usize) -> c_int;
        set_cancellation = b"LiteRtSetCompiledModelCancellationFunction\0": fn(Handle, *mut c_void, Cancelled) -> c_int;
        run = b"LiteRtRunCompiledModel\0": fn(Handle, usize, usize, *mut Handle, usize, *mut Handle) -> c_int;
        buffer_from_host_memory = b"LiteRtCreateTensorBufferFromHostMemory\0": fn(*const RankedType, *mut c_void, usize, Deleter, *mut Handle) -> c_int;
        destroy_buffer = b"LiteRtDestroyTensorBuffer\0": fn(Handle);
    }
}

/// `Ok`, or what a failed call `what` answered.
pub(crate) fn check(status: c_int, what: &str) -> Result<(), String> {
    if status == OK {
        return Ok(());
    }
    let name = match status {
        1 => "invalid argument",
        2 => "memory allocation failure",
        3 => "runtime failure",
        4 => "missing input tensor",
        5 => "unsupported",
        6 => "not found",
        7 => "timeout expired",
        8 => "wrong version",
        100 => "cancelled",
        501 => "invalid flatbuffer",
        504 => "compilation failed",
        1000 => "index out of bounds",
        5001 => "shape inference failed",
        _ => "error",
    };
    Err(format!("LiteRT: {what}: {name} (status {status})"))
}
