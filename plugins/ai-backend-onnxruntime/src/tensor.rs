//! Tensors across the backend ABI as ONNX Runtime values, and back.

use orc_ai_backend_abi::{TensorAbi, TensorView};
use ort::{
    memory::Allocator,
    session::SessionInputValue,
    value::{
        DynValue, PrimitiveTensorElementType, Tensor, TensorElementType, TensorRef, ValueType,
    },
};

/// The ONNX Runtime element type for a DLPack code and bit width.
fn element_type(code: u8, bits: u8) -> Result<TensorElementType, String> {
    use TensorElementType::*;
    Ok(match (code, bits) {
        (2, 32) => Float32,
        (2, 64) => Float64,
        (0, 8) => Int8,
        (0, 16) => Int16,
        (0, 32) => Int32,
        (0, 64) => Int64,
        (1, 8) => Uint8,
        (1, 16) => Uint16,
        (6, 8) => Bool,
        (7, 8) => String,
        _ => return Err(format!("unsupported tensor type code {code} bits {bits}")),
    })
}

/// The DLPack code and bit width of an ONNX Runtime element type.
fn abi_type(t: TensorElementType) -> Result<(u8, u8), String> {
    use TensorElementType::*;
    Ok(match t {
        Float32 => (2, 32),
        Float64 => (2, 64),
        Int8 => (0, 8),
        Int16 => (0, 16),
        Int32 => (0, 32),
        Int64 => (0, 64),
        Uint8 => (1, 8),
        Uint16 => (1, 16),
        Bool => (6, 8),
        String => (7, 8),
        other => {
            return Err(format!(
                "the model produced a {other:?} tensor, which RedisAI clients cannot store"
            ));
        }
    })
}

/// A tensor lent across the backend ABI as a run's input: numbers are read in place, from
/// the server's own bytes (no copy); strings, booleans and buffers that are empty or not
/// aligned for their type (a large blob is kept in the Redis string it came in) are copied
/// into a value of the runtime's.
pub(crate) fn to_input<'a>(t: &TensorView<'a>) -> Result<SessionInputValue<'a>, String> {
    use TensorElementType::*;
    let ty = element_type(t.code, t.bits)?;
    match ty {
        Float32 => in_place::<f32>(t),
        Float64 => in_place::<f64>(t),
        Int8 => in_place::<i8>(t),
        Int16 => in_place::<i16>(t),
        Int32 => in_place::<i32>(t),
        Int64 => in_place::<i64>(t),
        Uint8 => in_place::<u8>(t),
        Uint16 => in_place::<u16>(t),
        _ => Ok(to_value(t)?.into()),
    }
}

/// `t` as a read-only view of the server's bytes, when they can be read in place.
fn in_place<'a, T: PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static>(
    t: &TensorView<'a>,
) -> Result<SessionInputValue<'a>, String> {
    let bytes: &'a [u8] = t.data.as_slice();
    let count = element_count(&t.shape)?;
    let fits = count.checked_mul(size_of::<T>()) == Some(bytes.len());
    let aligned = (bytes.as_ptr() as usize).is_multiple_of(align_of::<T>());
    if !fits || count == 0 || !aligned {
        return Ok(to_value(t)?.into()); // to_value says what does not fit
    }
    // SAFETY: `bytes` holds exactly `count` elements of `T` (checked above), aligned for
    // `T`, and every bit pattern is a valid `T` (plain numbers); the slice borrows the
    // server's bytes for `'a`, the run.
    let elements: &'a [T] = unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast(), count) };
    let view =
        TensorRef::from_array_view((t.shape.to_vec(), elements)).map_err(|e| e.to_string())?;
    Ok(view.into())
}

/// The number of elements of `shape`, refused when negative or too large.
fn element_count(shape: &[i64]) -> Result<usize, String> {
    shape.iter().try_fold(1usize, |n, d| {
        usize::try_from(*d)
            .ok()
            .and_then(|d| n.checked_mul(d))
            .ok_or_else(|| "negative or too large dimension".to_string())
    })
}

/// A tensor from the backend ABI as an ONNX Runtime value (the bytes are copied once).
pub(crate) fn to_value(t: &TensorView<'_>) -> Result<DynValue, String> {
    let ty = element_type(t.code, t.bits)?;
    let shape: Vec<i64> = t.shape.to_vec();
    let count = element_count(&shape)?;
    if ty == TensorElementType::String {
        let items = t.strings();
        if items.len() != count {
            return Err(format!(
                "string tensor has {} elements, its shape needs {count}",
                items.len()
            ));
        }
        return Tensor::from_string_array((shape, items.as_slice()))
            .map(|v| v.into_dyn())
            .map_err(|e| e.to_string());
    }
    let bytes = ty.byte_size(count).ok_or("tensor too large")?;
    if bytes != t.data.len() {
        return Err(format!(
            "tensor data has {} bytes, its shape needs {bytes}",
            t.data.len()
        ));
    }
    let mut v =
        ort::value::DynTensor::new(&Allocator::default(), ty, shape).map_err(|e| e.to_string())?;
    if bytes > 0 {
        let dst = v.data_ptr_mut().cast::<u8>();
        if dst.is_null() {
            return Err("ONNX Runtime gave no buffer for the tensor".into());
        }
        // SAFETY: the runtime allocated `bytes` bytes for this CPU tensor (its type and
        // shape), and `t.data` has exactly `bytes` bytes (checked above).
        unsafe { std::ptr::copy_nonoverlapping(t.data.as_ptr(), dst, bytes) };
    }
    Ok(v.into_dyn())
}

/// An ONNX Runtime output as a backend ABI tensor.
pub(crate) fn from_value(name: &str, v: &DynValue) -> Result<TensorAbi, String> {
    let ValueType::Tensor { ty, shape, .. } = v.dtype() else {
        return Err(format!(
            "output `{name}` is a {}, not a tensor; RedisAI clients can only store tensors",
            v.dtype()
        ));
    };
    let (code, bits) = abi_type(*ty)?;
    let dims: Vec<i64> = shape.iter().copied().collect();
    if *ty == TensorElementType::String {
        let (_, items) = v.try_extract_strings().map_err(|e| e.to_string())?;
        return Ok(TensorAbi::new(
            code,
            bits,
            dims,
            TensorAbi::string_data(items),
        ));
    }
    let count = dims.iter().try_fold(1usize, |n, d| {
        usize::try_from(*d).ok().and_then(|d| n.checked_mul(d))
    });
    let bytes = count
        .and_then(|c| ty.byte_size(c))
        .ok_or("output shape out of range")?;
    let t = v
        .view()
        .downcast::<ort::value::DynTensorValueType>()
        .map_err(|e| e.to_string())?;
    if !t.memory_info().is_cpu_accessible() {
        return Err(format!("output `{name}` is not in CPU memory"));
    }
    let src = t.data_ptr().cast::<u8>();
    let data = if bytes == 0 || src.is_null() {
        Vec::new()
    } else {
        // SAFETY: a CPU tensor of this type and shape holds `bytes` bytes at `src`,
        // valid while `v` lives.
        unsafe { std::slice::from_raw_parts(src, bytes) }.to_vec()
    };
    Ok(TensorAbi::new(code, bits, dims, data))
}
