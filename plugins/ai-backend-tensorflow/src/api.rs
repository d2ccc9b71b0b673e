//! The part of TensorFlow's C API (`tensorflow/c/c_api.h`, stable since TF 1.x) this
//! backend calls, looked up in the library at run time.

use std::ffi::{c_char, c_int, c_void};

/// Opaque C API types.
#[repr(C)]
pub(crate) struct Opaque {
    _private: [u8; 0],
}
pub(crate) type Status = Opaque;
pub(crate) type Graph = Opaque;
pub(crate) type Buffer = Opaque;
pub(crate) type ImportOptions = Opaque;
pub(crate) type SessionOptions = Opaque;
pub(crate) type Session = Opaque;
pub(crate) type Operation = Opaque;
pub(crate) type Tensor = Opaque;
pub(crate) type DeviceList = Opaque;

/// `TF_Output`: an operation's output.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Output {
    pub(crate) oper: *mut Operation,
    pub(crate) index: c_int,
}

// SAFETY: an Output names an operation of a graph that lives as long as the model holding
// it; TF's graphs may be read from several threads.
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

/// `TF_Code` of success.
pub(crate) const OK: c_int = 0;

orc_dylib::c_api! {
    /// The C API's functions.
    pub(crate) struct Api("TensorFlow's C API") {
        version = b"TF_Version\0": fn() -> *const c_char;
        new_status = b"TF_NewStatus\0": fn() -> *mut Status;
        delete_status = b"TF_DeleteStatus\0": fn(*mut Status);
        get_code = b"TF_GetCode\0": fn(*const Status) -> c_int;
        message = b"TF_Message\0": fn(*const Status) -> *const c_char;
        new_graph = b"TF_NewGraph\0": fn() -> *mut Graph;
        delete_graph = b"TF_DeleteGraph\0": fn(*mut Graph);
        new_buffer_from_string = b"TF_NewBufferFromString\0": fn(*const c_void, usize) -> *mut Buffer;
        delete_buffer = b"TF_DeleteBuffer\0": fn(*mut Buffer);
        new_import_options = b"TF_NewImportGraphDefOptions\0": fn() -> *mut ImportOptions;
        delete_import_options = b"TF_DeleteImportGraphDefOptions\0": fn(*mut ImportOptions);
        import_set_default_device = b"TF_ImportGraphDefOptionsSetDefaultDevice\0": fn(*mut ImportOptions, *const c_char);
        import_graph_def = b"TF_GraphImportGraphDef\0": fn(*mut Graph, *const Buffer, *const ImportOptions, *mut Status);
        operation_by_name = b"TF_GraphOperationByName\0": fn(*mut Graph, *const c_char) -> *mut Operation;
        operation_num_outputs = b"TF_OperationNumOutputs\0": fn(*mut Operation) -> c_int;
        new_session_options = b"TF_NewSessionOptions\0": fn() -> *mut SessionOptions;
        delete_session_options = b"TF_DeleteSessionOptions\0": fn(*mut SessionOptions);
        set_config = b"TF_SetConfig\0": fn(*mut SessionOptions, *const c_void, usize, *mut Status);
        new_session = b"TF_NewSession\0": fn(*mut Graph, *const SessionOptions, *mut Status) -> *mut Session;
        close_session = b"TF_CloseSession\0": fn(*mut Session, *mut Status);
        delete_session = b"TF_DeleteSession\0": fn(*mut Session, *mut Status);
        session_run = b"TF_SessionRun\0": fn(
            *mut Session, *const Buffer,
            *const Output, *const *mut Tensor, c_int,
            *const Output, *mut *mut Tensor, c_int,
            *const *const Operation, c_int,
            *mut Buffer, *mut Status
        );
        allocate_tensor = b"TF_AllocateTensor\0": fn(c_int, *const i64, c_int, usize) -> *mut Tensor;
        delete_tensor = b"TF_DeleteTensor\0": fn(*mut Tensor);
        tensor_data = b"TF_TensorData\0": fn(*const Tensor) -> *mut c_void;
        tensor_byte_size = b"TF_TensorByteSize\0": fn(*const Tensor) -> usize;
        tensor_type = b"TF_TensorType\0": fn(*const Tensor) -> c_int;
        num_dims = b"TF_NumDims\0": fn(*const Tensor) -> c_int;
        dim = b"TF_Dim\0": fn(*const Tensor, c_int) -> i64;
        session_list_devices = b"TF_SessionListDevices\0": fn(*mut Session, *mut Status) -> *mut DeviceList;
        delete_device_list = b"TF_DeleteDeviceList\0": fn(*mut DeviceList);
        device_list_count = b"TF_DeviceListCount\0": fn(*const DeviceList) -> c_int;
        device_list_name = b"TF_DeviceListName\0": fn(*const DeviceList, c_int, *mut Status) -> *const c_char;
        operation_output_type = b"TF_OperationOutputType\0": fn(Output) -> c_int;
        graph_tensor_num_dims = b"TF_GraphGetTensorNumDims\0": fn(*mut Graph, Output, *mut Status) -> c_int;
        graph_tensor_shape = b"TF_GraphGetTensorShape\0": fn(*mut Graph, Output, *mut i64, c_int, *mut Status);
    }
}

/// A `TF_Status`, deleted when dropped.
pub(crate) struct StatusBox<'a> {
    api: &'a Api,
    pub(crate) raw: *mut Status,
}

impl<'a> StatusBox<'a> {
    pub(crate) fn new(api: &'a Api) -> Self {
        // SAFETY: TF_NewStatus takes nothing and returns a fresh status.
        StatusBox {
            api,
            raw: unsafe { (api.new_status)() },
        }
    }

    /// `Ok` or the status's message.
    pub(crate) fn check(&self) -> Result<(), String> {
        // SAFETY: raw is a live status; TF_Message returns a string owned by it.
        unsafe {
            if (self.api.get_code)(self.raw) == OK {
                return Ok(());
            }
            let m = (self.api.message)(self.raw);
            Err(if m.is_null() {
                "TensorFlow failed without a message".into()
            } else {
                std::ffi::CStr::from_ptr(m).to_string_lossy().into_owned()
            })
        }
    }
}

impl Drop for StatusBox<'_> {
    fn drop(&mut self) {
        // SAFETY: raw came from TF_NewStatus and is deleted once.
        unsafe { (self.api.delete_status)(self.raw) }
    }
}
