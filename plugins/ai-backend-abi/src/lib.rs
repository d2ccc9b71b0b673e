//! The binary interface between the `orc-ai` Redis module and its ML runtime backends
//! (ONNX, TorchScript, TFLite, TensorFlow), each a separately compiled `cdylib`.
//!
//! A backend exports one [`BackendModRef`] root module. `orc-ai` loads the file, lets
//! abi_stable check the layout, then compares [`BackendMod::abi_version`] with
//! [`BACKEND_ABI_VERSION`] before it calls anything. A run's inputs are lent as
//! [`TensorView`]s (the server's own bytes, read in place for the run), its outputs come
//! back as [`TensorAbi`]s (DLPack type code and bits, shape, row-major little-endian bytes).
//!
//! Backend functions must not unwind: wrap their bodies in [`guard`]. A run gets an
//! `interrupt` flag that orc-ai sets when the run must stop (its execution timeout passed,
//! or every client waiting for it is gone): check it between operations and return an
//! error soon after it is set ([`interrupted`] gives the message).
//!
//! Version 2 added the interrupt flag, [`ScriptOptions`] and `allow_unsafe_ops`; version 3
//! added [`BackendMod::init`], called once before anything else (the place to load a
//! runtime library and warm the runtime up, off the request path); version 5 lends a
//! run's inputs as [`TensorView`]s instead of handing over a copy of every input.
//!
//! ```
//! use orc_ai_backend_abi::{TensorAbi, guard};
//! let t = TensorAbi::new(2, 32, vec![2], 1.5f32.to_le_bytes().repeat(2));
//! let v = t.view();
//! assert_eq!(v.shape.len(), 1);
//! assert_eq!(v.to_owned(), t);
//! let r = guard(|| -> Result<u32, String> { panic!("boom") });
//! assert!(r.unwrap_err().contains("boom"));
//! ```
#![deny(missing_docs)]

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::atomic::AtomicBool,
};

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RSlice, RStr, RString, RVec},
};

/// Version of the calls below; `orc-ai` refuses a backend built for another one.
pub const BACKEND_ABI_VERSION: u32 = 5;

/// A tensor a backend hands back (a run's output), owned by the receiver.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct TensorAbi {
    /// DLPack type code (0 int, 1 uint, 2 float, 6 bool, 7 string).
    pub code: u8,
    /// Bits per element (strings: 8).
    pub bits: u8,
    /// Dimensions.
    pub shape: RVec<i64>,
    /// Row-major little-endian bytes (strings: NUL-terminated elements).
    pub data: RVec<u8>,
}

impl TensorAbi {
    /// A tensor from its parts.
    pub fn new(code: u8, bits: u8, shape: Vec<i64>, data: Vec<u8>) -> Self {
        Self {
            code,
            bits,
            shape: shape.into(),
            data: data.into(),
        }
    }

    /// This tensor lent as an input.
    pub fn view(&self) -> TensorView<'_> {
        TensorView {
            code: self.code,
            bits: self.bits,
            shape: self.shape.as_rslice(),
            data: self.data.as_rslice(),
        }
    }

    /// The elements of a string tensor (its NUL-terminated items; invalid UTF-8 replaced).
    pub fn strings(&self) -> Vec<String> {
        strings_of(&self.data)
    }

    /// The data of a string tensor holding `items`.
    pub fn string_data<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Vec<u8> {
        let mut out = Vec::new();
        for s in items {
            out.extend_from_slice(s.as_ref().as_bytes());
            out.push(0);
        }
        out
    }
}

/// A tensor lent to a backend for one run: the server's own shape and bytes, valid for the
/// call and only read (a backend that needs them later copies them, [`TensorView::to_owned`]).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct TensorView<'a> {
    /// DLPack type code (0 int, 1 uint, 2 float, 6 bool, 7 string).
    pub code: u8,
    /// Bits per element (strings: 8).
    pub bits: u8,
    /// Dimensions.
    pub shape: RSlice<'a, i64>,
    /// Row-major little-endian bytes (strings: NUL-terminated elements), as the server
    /// holds them: no alignment is promised beyond a byte's.
    pub data: RSlice<'a, u8>,
}

impl<'a> TensorView<'a> {
    /// A view of `shape` and `data`.
    pub fn new(code: u8, bits: u8, shape: &'a [i64], data: &'a [u8]) -> Self {
        Self {
            code,
            bits,
            shape: shape.into(),
            data: data.into(),
        }
    }

    /// A copy of its own.
    pub fn to_owned(&self) -> TensorAbi {
        TensorAbi::new(
            self.code,
            self.bits,
            self.shape.to_vec(),
            self.data.to_vec(),
        )
    }

    /// The elements of a string tensor (its NUL-terminated items; invalid UTF-8 replaced).
    pub fn strings(&self) -> Vec<String> {
        strings_of(&self.data)
    }
}

fn strings_of(data: &[u8]) -> Vec<String> {
    let mut items: Vec<String> = data
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    items.pop();
    items
}

/// Names as the ABI carries them.
pub fn rstrings(names: &[String]) -> RVec<RString> {
    names.iter().map(|s| RString::from(s.as_str())).collect()
}

/// The answer of a backend call: `f`'s tensors, its error, or a panic's message.
pub fn answer(
    f: impl FnOnce() -> Result<Vec<TensorAbi>, String>,
) -> RResult<RVec<TensorAbi>, RString> {
    guard(|| f().map(RVec::from)).map_err(RString::from).into()
}

/// Options a model is created with.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ModelOptions {
    /// Device string as stored (`CPU`, `GPU:0`, ...).
    pub device: RString,
    /// Input names given with INPUTS (TF), else empty.
    pub inputs: RVec<RString>,
    /// Output names given with OUTPUTS (TF), else empty.
    pub outputs: RVec<RString>,
    /// Threads between operators (0: the runtime's default).
    pub inter_op_threads: u32,
    /// Threads inside an operator (0: the runtime's default).
    pub intra_op_threads: u32,
    /// Accept models that read or write files, use the network or start processes (off:
    /// refuse them when stored, naming the operation; TorchScript and TensorFlow graphs can
    /// hold such operations, the other formats cannot).
    pub allow_unsafe_ops: bool,
    /// How long a run may take, in ms (`MODEL_EXECUTION_TIMEOUT`; 0: no limit). orc-ai
    /// answers a longer run's clients itself and sets its interrupt flag; a runtime that
    /// cannot look at the flag during a run (TensorFlow) stops the run after this long.
    pub execution_timeout_ms: u64,
}

/// Options a script is created with.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ScriptOptions {
    /// Device string as stored.
    pub device: RString,
    /// Declared entry points (empty for scripts stored with the deprecated SCRIPTSET).
    pub entry_points: RVec<RString>,
    /// As [`ModelOptions::allow_unsafe_ops`].
    pub allow_unsafe_ops: bool,
}

/// What a backend is told once, when orc-ai loads it.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default)]
pub struct BackendInit {
    /// The runtime library to load, for backends that load theirs at run time (the ONNX
    /// Runtime backend); empty when none was given or found. Load it only from a file that
    /// nobody but this user or root could have written (`orc_dylib::check_trusted`).
    pub runtime_library: RString,
    /// Threads between operators (0: the runtime's default), as for every model.
    pub inter_op_threads: u32,
    /// Threads inside an operator (0: the runtime's default), as for every model.
    pub intra_op_threads: u32,
}

/// A loaded model.
#[sabi_trait]
pub trait BackendModel: Send + Sync {
    /// Input names (may be empty strings when the runtime has none).
    fn inputs(&self) -> RVec<RString>;
    /// Output names.
    fn outputs(&self) -> RVec<RString>;
    /// Run once on `inputs` (lent for the call); stop with an error soon after `interrupt`
    /// is set.
    fn run(
        &self,
        inputs: RSlice<'_, TensorView<'_>>,
        interrupt: &AtomicBool,
    ) -> RResult<RVec<TensorAbi>, RString>;
}

/// An owned model.
pub type BackendModelBox = BackendModel_TO<'static, RBox<()>>;

/// A loaded script (a set of functions).
#[sabi_trait]
pub trait BackendScript: Send + Sync {
    /// Call `function`. `keys` and `args` are the SCRIPTEXECUTE KEYS and ARGS. Stop with
    /// an error soon after `interrupt` is set.
    fn run(
        &self,
        function: RStr<'_>,
        inputs: RSlice<'_, TensorView<'_>>,
        keys: RVec<RString>,
        args: RVec<RString>,
        interrupt: &AtomicBool,
    ) -> RResult<RVec<TensorAbi>, RString>;
}

/// An owned script.
pub type BackendScriptBox = BackendScript_TO<'static, RBox<()>>;

/// The root module every backend exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = BackendModRef)))]
#[sabi(missing_field(panic))]
pub struct BackendMod {
    /// Must equal [`BACKEND_ABI_VERSION`].
    pub abi_version: u32,
    /// The backend name as used in commands (`ONNX`, `TORCH`, `TFLITE`, `TF`).
    pub name: RStr<'static>,
    /// The runtime and its version, for `INFO` (`tract 0.23.9`).
    pub runtime: RStr<'static>,
    /// Build a model from its serialised bytes.
    pub load_model: extern "C" fn(
        blob: RSlice<'_, u8>,
        options: &ModelOptions,
    ) -> RResult<BackendModelBox, RString>,
    /// Build a script from source. Backends without scripts return an error.
    pub load_script: extern "C" fn(
        source: RStr<'_>,
        options: &ScriptOptions,
    ) -> RResult<BackendScriptBox, RString>,
    /// Called once after loading, before any other call (possibly on a background thread
    /// while the server starts): load and warm up the runtime. Answers the runtime and its
    /// version as loaded (`onnxruntime 1.31.1`), or why this backend cannot run here.
    #[sabi(last_prefix_field)]
    pub init: extern "C" fn(init: &BackendInit) -> RResult<RString, RString>,
}

impl RootModule for BackendModRef {
    declare_root_module_statics! {BackendModRef}
    const BASE_NAME: &'static str = "orc_ai_backend";
    const NAME: &'static str = "orc_ai_backend";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

pub use orc_dylib::panic_message;

/// Run `f`, turning a panic into an error message (backend entry points must not unwind).
pub fn guard<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(format!("backend panicked: {}", panic_message(p.as_ref()))),
    }
}

/// The error of a run stopped because its interrupt flag was set.
pub fn interrupted() -> String {
    "the run was interrupted (its execution timeout passed or its clients are gone)".into()
}

/// The `load_script` answer of a backend that has no scripts (scripts run on TORCH).
pub fn no_scripts(backend: &str) -> RResult<BackendScriptBox, RString> {
    RResult::RErr(
        format!("the {backend} backend has no scripts; scripts run on the TORCH backend").into(),
    )
}

/// `Ok` when a model that takes `expected` inputs is given `got`, else RedisAI's error.
pub fn check_input_count(expected: usize, got: usize) -> Result<(), String> {
    if expected == got {
        Ok(())
    } else {
        Err(format!("Expected {expected} inputs but got {got}"))
    }
}

/// A runtime library a backend loads once per process in its `init` (ONNX Runtime,
/// TensorFlow): the runtime, or why it could not be loaded, kept for every later call.
pub struct RuntimeCell<R>(std::sync::OnceLock<Result<R, String>>);

impl<R> RuntimeCell<R> {
    /// An empty cell (for a `static`).
    pub const fn new() -> Self {
        Self(std::sync::OnceLock::new())
    }

    /// The `init` entry point's answer: load the runtime with `load` on the first call
    /// (panics included in the error), then its description.
    pub fn init(
        &self,
        load: impl FnOnce() -> Result<R, String>,
        describe: impl Fn(&R) -> &str,
    ) -> RResult<RString, RString> {
        guard(|| match self.0.get_or_init(|| guard(load)) {
            Ok(r) => Ok(RString::from(describe(r))),
            Err(e) => Err(e.clone()),
        })
        .map_err(RString::from)
        .into()
    }

    /// The loaded runtime, or why there is none (`name`: the runtime, for the message).
    pub fn get(&self, name: &str) -> Result<&R, String> {
        match self.0.get() {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!(
                "{name} was not initialised (bug: orc-ai calls init first)"
            )),
        }
    }
}

impl<R> Default for RuntimeCell<R> {
    fn default() -> Self {
        Self::new()
    }
}

/// Export a backend's root module: its name (`"ONNX"`), a runtime description, its
/// `load_model` and (for backends with scripts) `load_script` entry points, and (for
/// backends with work to do at start) an `init = f` entry point. The calling crate depends
/// on `abi_stable`.
///
/// ```ignore
/// orc_ai_backend_abi::export_backend!("ONNX", "tract-onnx 0.23", load_model);
/// orc_ai_backend_abi::export_backend!("TORCH", runtime(), load_model, load_script, init = warm_up);
/// ```
#[macro_export]
macro_rules! export_backend {
    ($name:expr, $runtime:expr, $load_model:path $(, init = $init:path)? $(,)?) => {
        extern "C" fn __orc_ai_no_scripts(
            _: ::abi_stable::std_types::RStr<'_>,
            _: &$crate::ScriptOptions,
        ) -> ::abi_stable::std_types::RResult<
            $crate::BackendScriptBox,
            ::abi_stable::std_types::RString,
        > {
            $crate::no_scripts($name)
        }
        $crate::export_backend!($name, $runtime, $load_model, __orc_ai_no_scripts $(, init = $init)?);
    };
    ($name:expr, $runtime:expr, $load_model:path, $load_script:path $(,)?) => {
        extern "C" fn __orc_ai_init(
            _: &$crate::BackendInit,
        ) -> ::abi_stable::std_types::RResult<
            ::abi_stable::std_types::RString,
            ::abi_stable::std_types::RString,
        > {
            ::abi_stable::std_types::RResult::ROk(::abi_stable::std_types::RString::from($runtime))
        }
        $crate::export_backend!($name, $runtime, $load_model, $load_script, init = __orc_ai_init);
    };
    ($name:expr, $runtime:expr, $load_model:path, $load_script:path, init = $init:path $(,)?) => {
        /// The backend's root module, found by orc-ai when it loads the library.
        #[::abi_stable::export_root_module]
        pub fn root_module() -> $crate::BackendModRef {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::BackendMod {
                abi_version: $crate::BACKEND_ABI_VERSION,
                name: ::abi_stable::std_types::RStr::from_str($name),
                runtime: ::abi_stable::std_types::RStr::from_str($runtime),
                load_model: $load_model,
                load_script: $load_script,
                init: $init,
            }
            .leak_into_prefix()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_lends_the_tensors_own_bytes() {
        let data = TensorAbi::string_data(["ab", "", "c\u{e9}"]);
        let t = TensorAbi::new(7, 8, vec![3], data);
        let v = t.view();
        assert_eq!(v.data.as_slice().as_ptr(), t.data.as_ptr(), "no copy");
        assert_eq!(v.shape.as_slice(), &[3]);
        assert_eq!(v.strings(), ["ab", "", "c\u{e9}"]);
        assert_eq!(v.strings(), t.strings());
        assert_eq!(v.to_owned(), t);
        // A view made from plain slices says the same.
        let shape = [3i64];
        let w = TensorView::new(7, 8, &shape, &t.data);
        assert_eq!(w, v);
        // A string tensor without its last NUL: the unterminated tail is dropped.
        let cut = TensorView::new(7, 8, &shape, b"ab\0c");
        assert_eq!(cut.strings(), ["ab"]);
    }
}
