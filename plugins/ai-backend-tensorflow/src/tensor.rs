//! Tensors between the backend ABI and TensorFlow's C API.

use orc_ai_backend_abi::{TensorAbi, TensorView};

use crate::api::{Api, Tensor};

/// TensorFlow's `TF_DataType` for a DLPack code and bit width, and the element size.
fn tf_type(code: u8, bits: u8) -> Result<i32, String> {
    Ok(match (code, bits) {
        (2, 32) => 1,  // TF_FLOAT
        (2, 64) => 2,  // TF_DOUBLE
        (0, 32) => 3,  // TF_INT32
        (1, 8) => 4,   // TF_UINT8
        (0, 16) => 5,  // TF_INT16
        (0, 8) => 6,   // TF_INT8
        (0, 64) => 9,  // TF_INT64
        (6, 8) => 10,  // TF_BOOL
        (1, 16) => 17, // TF_UINT16
        (7, _) => return Err("the TF backend takes no string tensors".into()),
        _ => return Err(format!("unsupported tensor type code {code} bits {bits}")),
    })
}

/// The DLPack code and bit width of a `TF_DataType`.
pub(crate) fn abi_type(t: i32) -> Result<(u8, u8), String> {
    Ok(match t {
        1 => (2, 32),
        2 => (2, 64),
        3 => (0, 32),
        4 => (1, 8),
        5 => (0, 16),
        6 => (0, 8),
        9 => (0, 64),
        10 => (6, 8),
        17 => (1, 16),
        other => {
            return Err(format!(
                "the model produced a tensor of TensorFlow type {other}, which RedisAI clients \
                 cannot store"
            ));
        }
    })
}

/// A `TF_Tensor`, deleted when dropped.
pub(crate) struct TfTensor<'a> {
    api: &'a Api,
    pub(crate) raw: *mut Tensor,
}

impl Drop for TfTensor<'_> {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: raw came from TF_AllocateTensor or TF_SessionRun and is ours to delete.
            unsafe { (self.api.delete_tensor)(self.raw) }
        }
    }
}

impl<'a> TfTensor<'a> {
    /// Take ownership of a tensor TensorFlow returned (may be null).
    pub(crate) fn owned(api: &'a Api, raw: *mut Tensor) -> Self {
        TfTensor { api, raw }
    }

    /// A TensorFlow tensor holding a copy of `t`.
    pub(crate) fn from_abi(api: &'a Api, t: &TensorView<'_>) -> Result<Self, String> {
        let dtype = tf_type(t.code, t.bits)?;
        let size = usize::from(t.bits / 8).max(1);
        let mut count = 1usize;
        for d in t.shape.iter() {
            let d = usize::try_from(*d).map_err(|_| "negative dimension".to_string())?;
            count = count.checked_mul(d).ok_or("tensor too large")?;
        }
        let bytes = count.checked_mul(size).ok_or("tensor too large")?;
        if bytes != t.data.len() {
            return Err(format!(
                "tensor data has {} bytes, its shape needs {bytes}",
                t.data.len()
            ));
        }
        let rank = i32::try_from(t.shape.len()).map_err(|_| "too many dimensions")?;
        // SAFETY: dims points at rank values; TF allocates `bytes` bytes (or returns null).
        let raw = unsafe { (api.allocate_tensor)(dtype, t.shape.as_ptr(), rank, bytes) };
        if raw.is_null() {
            return Err(format!(
                "TensorFlow could not allocate a {bytes}-byte tensor"
            ));
        }
        let tensor = TfTensor { api, raw };
        if bytes > 0 {
            // SAFETY: the tensor's buffer holds `bytes` bytes (checked against its own
            // byte size), and does not overlap the request's data.
            unsafe {
                if (api.tensor_byte_size)(raw) != bytes {
                    return Err("TensorFlow allocated a tensor of another size".into());
                }
                let dst = (api.tensor_data)(raw).cast::<u8>();
                if dst.is_null() {
                    return Err("TensorFlow gave a tensor without data".into());
                }
                std::ptr::copy_nonoverlapping(t.data.as_ptr(), dst, bytes);
            }
        }
        Ok(tensor)
    }

    /// A copy of this tensor for the backend ABI.
    pub(crate) fn to_abi(&self) -> Result<TensorAbi, String> {
        if self.raw.is_null() {
            return Err("TensorFlow returned no tensor".into());
        }
        // SAFETY: raw is a live tensor; data holds byte_size bytes.
        unsafe {
            let (code, bits) = abi_type((self.api.tensor_type)(self.raw))?;
            let rank = (self.api.num_dims)(self.raw);
            let shape: Vec<i64> = (0..rank).map(|i| (self.api.dim)(self.raw, i)).collect();
            let n = (self.api.tensor_byte_size)(self.raw);
            let data = if n == 0 {
                Vec::new()
            } else {
                let src = (self.api.tensor_data)(self.raw).cast::<u8>();
                if src.is_null() {
                    return Err("TensorFlow returned a tensor without data".into());
                }
                std::slice::from_raw_parts(src, n).to_vec()
            };
            Ok(TensorAbi::new(code, bits, shape, data))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_abi_type_maps_back() {
        for (code, bits) in [
            (2, 32),
            (2, 64),
            (0, 8),
            (0, 16),
            (0, 32),
            (0, 64),
            (1, 8),
            (1, 16),
            (6, 8),
        ] {
            assert_eq!(
                abi_type(tf_type(code, bits).unwrap()).unwrap(),
                (code, bits)
            );
        }
        assert!(tf_type(7, 8).unwrap_err().contains("string"));
        assert!(abi_type(19).is_err()); // half floats: no RedisAI type
    }
}
