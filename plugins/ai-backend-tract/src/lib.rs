//! Shared tract glue for the orc-ai backends built on [tract](https://github.com/sonos/tract)
//! (ONNX, TFLITE, TF): tensor conversion across the backend ABI and [`TractModel`], a
//! model whose optimised plan is built for each distinct set of input types and shapes
//! it meets and then kept, so one stored model serves any batch size.
//!
//! ```
//! use orc_ai_tract::{from_tract, to_tract};
//! use orc_ai_backend_abi::TensorAbi;
//! let t = TensorAbi::new(2, 32, vec![2], [1.0f32, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect());
//! let back = from_tract(&to_tract(&t.view())?)?;
//! assert_eq!(back, t);
//! # Ok::<(), String>(())
//! ```
#![deny(missing_docs)]

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RResult, RSlice, RString, RVec},
};
use orc_ai_backend_abi::{
    BackendModel, BackendModel_TO, BackendModelBox, ModelOptions, TensorAbi, TensorView, answer,
    check_input_count, guard, interrupted, rstrings,
};
use tract_core::prelude::{
    multithread::{Executor, multithread_tract_scope},
    *,
};

/// An optimised, runnable plan.
pub type Plan = Arc<TypedRunnableModel>;

/// Input types and shapes a plan was built for.
pub type ShapeKey = Vec<(DatumType, Vec<usize>)>;

/// Builds a plan for concrete input types and shapes.
pub type PlanBuilder = Box<dyn Fn(&ShapeKey) -> TractResult<Plan> + Send + Sync>;

/// The tract type for a DLPack code and bit width.
pub fn datum_type(code: u8, bits: u8) -> Result<DatumType, String> {
    Ok(match (code, bits) {
        (2, 32) => DatumType::F32,
        (2, 64) => DatumType::F64,
        (0, 8) => DatumType::I8,
        (0, 16) => DatumType::I16,
        (0, 32) => DatumType::I32,
        (0, 64) => DatumType::I64,
        (1, 8) => DatumType::U8,
        (1, 16) => DatumType::U16,
        (6, 8) => DatumType::Bool,
        (7, 8) => DatumType::String,
        _ => return Err(format!("unsupported tensor type code {code} bits {bits}")),
    })
}

fn abi_type(dt: DatumType) -> Result<(u8, u8), String> {
    Ok(match dt {
        DatumType::F32 => (2, 32),
        DatumType::F64 => (2, 64),
        DatumType::I8 => (0, 8),
        DatumType::I16 => (0, 16),
        DatumType::I32 => (0, 32),
        DatumType::I64 => (0, 64),
        DatumType::U8 => (1, 8),
        DatumType::U16 => (1, 16),
        DatumType::Bool => (6, 8),
        DatumType::String => (7, 8),
        other => {
            return Err(format!(
                "the model produced a {other:?} tensor, which RedisAI clients cannot store"
            ));
        }
    })
}

/// A tensor from the backend ABI as a tract tensor.
pub fn to_tract(t: &TensorView<'_>) -> Result<Tensor, String> {
    let dt = datum_type(t.code, t.bits)?;
    let shape: Vec<usize> = t
        .shape
        .iter()
        .map(|d| usize::try_from(*d).map_err(|_| "negative dimension".to_string()))
        .collect::<Result<_, _>>()?;
    if dt == DatumType::String {
        let items = t.strings();
        return tract_ndarray::ArrayD::from_shape_vec(tract_ndarray::IxDyn(&shape), items)
            .map(|a| a.into_tensor())
            .map_err(|e| e.to_string());
    }
    let expected = shape.iter().product::<usize>() * dt.size_of();
    if expected != t.data.len() {
        return Err(format!(
            "tensor data has {} bytes, its shape needs {expected}",
            t.data.len()
        ));
    }
    // SAFETY: the length matches shape and type (checked above); from_raw_dt copies the
    // bytes into an aligned buffer.
    unsafe { Tensor::from_raw_dt(dt, &shape, &t.data) }.map_err(|e| e.to_string())
}

/// A tract tensor as a backend ABI tensor.
pub fn from_tract(t: &Tensor) -> Result<TensorAbi, String> {
    let t = if t.datum_type() == DatumType::TDim {
        t.cast_to_dt(DatumType::I64)
            .map_err(|e| e.to_string())?
            .into_owned()
    } else {
        t.clone()
    };
    let (code, bits) = abi_type(t.datum_type())?;
    let shape: Vec<i64> = t.shape().iter().map(|d| *d as i64).collect();
    let data = if t.datum_type() == DatumType::String {
        let view = t
            .to_plain_array_view::<String>()
            .map_err(|e| e.to_string())?;
        TensorAbi::string_data(view.iter())
    } else {
        t.as_bytes().to_vec()
    };
    Ok(TensorAbi::new(code, bits, shape, data))
}

/// The most threads one model's matrix products may use (`INTRA_OP_PARALLELISM` above
/// this is cut to it).
pub const MAX_INTRA_OP_THREADS: u32 = 256;

/// The executor for `threads` threads inside an operator: single-threaded for 0 (tract's
/// default) and 1, else one rayon pool per thread count, shared by every model.
fn executor(threads: u32) -> Executor {
    static POOLS: Mutex<Option<HashMap<u32, Executor>>> = Mutex::new(None);
    let n = threads.min(MAX_INTRA_OP_THREADS);
    if n <= 1 {
        return Executor::SingleThread;
    }
    POOLS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .entry(n)
        .or_insert_with(|| Executor::multithread_with_name(n as usize, "orc-ai-tract"))
        .clone()
}

/// A model run by tract.
pub struct TractModel {
    inputs: Vec<String>,
    outputs: Vec<String>,
    build: PlanBuilder,
    plans: Mutex<HashMap<ShapeKey, Plan>>,
    executor: Executor,
}

impl TractModel {
    /// A model with these input and output names, whose plans `build` makes.
    pub fn new(inputs: Vec<String>, outputs: Vec<String>, build: PlanBuilder) -> Self {
        Self {
            inputs,
            outputs,
            build,
            plans: Mutex::new(HashMap::new()),
            executor: Executor::SingleThread,
        }
    }

    /// Run matrix products on `threads` threads (`INTRA_OP_PARALLELISM`; 0 or 1: the
    /// calling thread only). tract runs operators one after another, so there is no
    /// inter-op parallelism to set.
    pub fn with_intra_op_threads(mut self, threads: u32) -> Self {
        self.executor = executor(threads);
        self
    }

    fn plan(&self, inputs: &[Tensor]) -> Result<Plan, String> {
        let key: ShapeKey = inputs
            .iter()
            .map(|t| (t.datum_type(), t.shape().to_vec()))
            .collect();
        if let Some(p) = self
            .plans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(p.clone());
        }
        let plan = (self.build)(&key).map_err(|e| format!("{e:#}"))?;
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if plans.len() >= 64 {
            plans.clear(); // bound the cache when shapes keep changing
        }
        plans.insert(key, plan.clone());
        Ok(plan)
    }

    /// Run with plain tensors, stopping between two operators once `interrupt` is set.
    pub fn run_tensors(
        &self,
        inputs: &[TensorView<'_>],
        interrupt: &AtomicBool,
    ) -> Result<Vec<TensorAbi>, String> {
        check_input_count(self.inputs.len(), inputs.len())?;
        let tensors: Vec<Tensor> = inputs.iter().map(to_tract).collect::<Result<_, _>>()?;
        let plan = self.plan(&tensors)?;
        multithread_tract_scope(self.executor.clone(), || {
            Self::run_plan(&plan, tensors, interrupt)
        })
    }

    fn run_plan(
        plan: &Plan,
        tensors: Vec<Tensor>,
        interrupt: &AtomicBool,
    ) -> Result<Vec<TensorAbi>, String> {
        let mut state = plan.spawn().map_err(|e| format!("{e:#}"))?;
        let out = state
            .run_plan_with_eval(
                tensors.into_iter().map(|t| t.into_tvalue()).collect(),
                |ctx, op_state, node, input| {
                    if interrupt.load(Ordering::Relaxed) {
                        return Err(TractError::msg(interrupted()));
                    }
                    tract_core::plan::eval(ctx, op_state, node, input)
                },
            )
            .map_err(|e| {
                if interrupt.load(Ordering::Relaxed) {
                    interrupted()
                } else {
                    format!("{e:#}")
                }
            })?;
        out.iter().map(|t| from_tract(t)).collect()
    }
}

impl BackendModel for TractModel {
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
        answer(|| self.run_tensors(&inputs, interrupt))
    }
}

/// The `load_model` entry point of a tract backend: refuse devices other than the CPU,
/// then `load` the model, panics included in the error.
pub fn load_cpu_model(
    backend: &str,
    options: &ModelOptions,
    load: impl FnOnce() -> Result<TractModel, String>,
) -> RResult<BackendModelBox, RString> {
    guard(|| {
        cpu_only(backend, options.device.as_str())?;
        let model = load()?.with_intra_op_threads(options.intra_op_threads);
        Ok(BackendModel_TO::from_value(model, TD_Opaque))
    })
    .map_err(RString::from)
    .into()
}

/// Refuse devices other than the CPU (tract runs on the CPU only).
pub fn cpu_only(backend: &str, device: &str) -> Result<(), String> {
    if device.to_ascii_uppercase().starts_with("CPU") {
        Ok(())
    } else {
        Err(format!(
            "GPU requested ({device}) but the {backend} backend (tract) runs on the CPU only; store the model with device CPU"
        ))
    }
}

/// Input and output node names of a graph.
pub fn io_names<F, O>(model: &Graph<F, O>) -> TractResult<(Vec<String>, Vec<String>)>
where
    F: Fact + Clone + 'static,
    O: std::fmt::Debug + std::fmt::Display + AsRef<dyn Op> + AsMut<dyn Op> + Clone + 'static,
{
    let names = |outlets: &[OutletId]| {
        outlets
            .iter()
            .map(|o| model.node(o.node).name.clone())
            .collect()
    };
    Ok((
        names(model.input_outlets()?),
        names(model.output_outlets()?),
    ))
}
