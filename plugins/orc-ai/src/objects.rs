//! The stored objects and how models and scripts are built through their backends.

use std::sync::Arc;

use abi_stable::std_types::{RSlice, RString, RVec};
use orc_ai_backend_abi::{BackendModelBox, BackendScriptBox, ModelOptions, TensorAbi};

use crate::{
    args::Reply,
    model::{Backend, ModelMeta},
    script::ScriptMeta,
    state::{lock, state},
    tensor::{DType, Tensor, element_count},
};

/// A stored model: metadata, the original bytes (for MODELGET, RDB, AOF) and the runtime
/// handle. Shared by `Arc` so running requests keep it alive after a delete.
pub struct Model {
    /// Metadata.
    pub meta: ModelMeta,
    /// Original bytes.
    pub blob: Vec<u8>,
    /// The runtime's model.
    pub handle: BackendModelBox,
}

/// The value of an `AI__MODEL` key.
#[derive(Clone)]
pub struct ModelValue(pub Arc<Model>);

/// A stored script.
pub struct Script {
    /// Metadata and source.
    pub meta: ScriptMeta,
    /// The runtime's script.
    pub handle: BackendScriptBox,
}

/// The value of an `AI_SCRIPT` key.
#[derive(Clone)]
pub struct ScriptValue(pub Arc<Script>);

/// Build a model through its backend (loading the backend on first use).
pub fn build_model(mut meta: ModelMeta, blob: Vec<u8>) -> Result<Model, Reply> {
    let s = state();
    let (loaded, opts) = {
        let config = lock(&s.config);
        let loaded = s
            .backends
            .get(meta.backend, &config)
            .map_err(|e| Reply(format!("ERR {e}")))?;
        let opts = ModelOptions {
            device: meta.device.as_str().into(),
            inputs: meta
                .inputs
                .iter()
                .map(|s| RString::from(s.as_str()))
                .collect(),
            outputs: meta
                .outputs
                .iter()
                .map(|s| RString::from(s.as_str()))
                .collect(),
            inter_op_threads: config.inter_op_parallelism as u32,
            intra_op_threads: config.intra_op_parallelism as u32,
        };
        (loaded, opts)
    };
    let handle = (loaded.module.load_model())(RSlice::from_slice(&blob), &opts)
        .into_result()
        .map_err(|e| Reply(format!("ERR {e}")))?;
    if meta.backend != Backend::Tf {
        meta.inputs = handle
            .inputs()
            .into_iter()
            .map(|s| s.into_string())
            .collect();
        meta.outputs = handle
            .outputs()
            .into_iter()
            .map(|s| s.into_string())
            .collect();
    }
    Ok(Model { meta, blob, handle })
}

/// Build a script through the TORCH backend.
pub fn build_script(meta: ScriptMeta) -> Result<Script, Reply> {
    let s = state();
    let loaded = {
        let config = lock(&s.config);
        s.backends
            .get(Backend::Torch, &config)
            .map_err(|e| Reply(format!("ERR {e}")))?
    };
    let eps: RVec<RString> = meta
        .entry_points
        .iter()
        .map(|e| RString::from(e.as_str()))
        .collect();
    let handle = (loaded.module.load_script())(
        meta.source.as_str().into(),
        meta.device.as_str().into(),
        eps,
    )
    .into_result()
    .map_err(|e| Reply(e.into_string()))?;
    Ok(Script { meta, handle })
}

/// A tensor as the backend ABI carries it.
pub fn to_abi(t: &Tensor) -> TensorAbi {
    let (code, bits) = t.dtype.dlpack();
    TensorAbi::new(code as u8, bits as u8, t.shape.clone(), t.data.to_vec())
}

/// A tensor from a backend, checked before it is stored.
pub fn from_abi(t: TensorAbi) -> Result<Tensor, Reply> {
    let dtype = DType::from_dlpack(u64::from(t.code), u64::from(t.bits)).ok_or_else(|| {
        Reply(format!(
            "ERR the backend returned an unsupported tensor type (code {}, bits {})",
            t.code, t.bits
        ))
    })?;
    let shape: Vec<i64> = t.shape.into_vec();
    let n = element_count(&shape)
        .ok_or_else(|| Reply::new("ERR the backend returned a tensor with an invalid shape"))?;
    let data = t.data.into_vec();
    let ok = match dtype {
        DType::String => {
            data.iter().filter(|b| **b == 0).count() as u64 == n
                && (n == 0 || data.last() == Some(&0))
        }
        _ => data.len() as u64 == n * dtype.size() as u64,
    };
    if !ok {
        return Err(Reply::new(
            "ERR the backend returned a tensor whose data does not match its shape",
        ));
    }
    Ok(Tensor {
        dtype,
        shape,
        data: data.into(),
    })
}
