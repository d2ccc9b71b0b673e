//! Tensors: put, get, unpack, copy, rename, delete, poll (and plain keys).

use redis::Cmd;

use super::*;
use crate::{
    error::{Error, Result},
    slot::hash_slot,
    tensor::{Element, MemoryLayout, Tensor, TensorType, element_count},
};

impl Client {
    pub(super) fn tensorset(key: &[u8], t: &Tensor) -> Cmd {
        let mut c = redis::cmd("AI.TENSORSET");
        c.arg(key).arg(t.dtype.wire_name());
        for d in &t.dims {
            c.arg(*d);
        }
        c.arg("BLOB").arg(t.data.as_slice());
        c
    }

    pub(super) fn put_tensor_key(&mut self, key: &[u8], t: &Tensor) -> Result<()> {
        element_count(&t.dims)?;
        self.put_raw(key, t.dtype, &t.dims, &t.data)
    }

    pub(super) fn get_tensor_key(&mut self, key: &[u8], name: &str) -> Result<Tensor> {
        match self.run(
            key,
            redis::cmd("AI.TENSORGET").arg(key).arg("META").arg("BLOB"),
            "AI.TENSORGET",
        ) {
            Err(Error::Server { message, .. }) if message.contains("tensor key is empty") => {
                Err(Error::NotFound {
                    what: "tensor",
                    name: name.into(),
                })
            }
            Err(e) => Err(e),
            Ok(v) => parse_tensor(name, v),
        }
    }

    /// Store a tensor.
    pub fn put_tensor(&mut self, name: &str, tensor: &Tensor) -> Result<()> {
        check(name, "tensor")?;
        let key = self.tensor_key(name, true);
        self.put_tensor_key(&key, tensor)
    }

    /// Store a tensor from a flat slice in `layout` order.
    pub fn put_tensor_slice<T: Element>(
        &mut self,
        name: &str,
        values: &[T],
        dims: &[usize],
        layout: MemoryLayout,
    ) -> Result<()> {
        if layout == MemoryLayout::ColumnMajor {
            return self.put_tensor(name, &Tensor::from_slice(values, dims, layout)?);
        }
        check(name, "tensor")?;
        let n = element_count(dims)?;
        if values.len() != n {
            return Err(Error::invalid(format!(
                "{} values do not fill dimensions {dims:?} ({n} elements)",
                values.len()
            )));
        }
        // Row-major data goes to the wire straight from the caller's slice, packed once.
        let key = self.tensor_key(name, true);
        #[cfg(target_endian = "little")]
        // SAFETY: as in `tensor::as_le_bytes`: plain values, no padding, little-endian layout.
        let raw = unsafe {
            std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
        };
        #[cfg(not(target_endian = "little"))]
        let owned = crate::tensor::as_le_bytes(values);
        #[cfg(not(target_endian = "little"))]
        let raw = owned.as_slice();
        self.put_raw(&key, T::TYPE, dims, raw)
    }

    pub(super) fn put_raw(
        &mut self,
        key: &[u8],
        dtype: TensorType,
        dims: &[usize],
        data: &[u8],
    ) -> Result<()> {
        let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
        let mut args: Vec<&[u8]> = vec![b"AI.TENSORSET", key, dtype.wire_name().as_bytes()];
        args.extend(dims.iter().map(|d| d.as_bytes()));
        args.push(b"BLOB");
        args.push(data);
        self.t.run_args(key, &args, "AI.TENSORSET")?;
        Ok(())
    }

    /// Read a tensor.
    pub fn get_tensor(&mut self, name: &str) -> Result<Tensor> {
        check(name, "tensor")?;
        let key = self.tensor_key(name, false);
        self.get_tensor_key(&key, name)
    }

    /// Read a tensor into `out`, checking type, dimensions and buffer size.
    pub fn unpack_tensor<T: Element>(
        &mut self,
        name: &str,
        out: &mut [T],
        dims: &[usize],
        layout: MemoryLayout,
    ) -> Result<()> {
        self.get_tensor(name)?.unpack_into(out, dims, layout)
    }

    /// Delete a tensor.
    pub fn delete_tensor(&mut self, name: &str) -> Result<()> {
        check(name, "tensor")?;
        let key = self.tensor_key(name, false);
        self.delete_keys(&[key])
    }

    /// Copy a tensor (works across shards).
    pub fn copy_tensor(&mut self, src: &str, dest: &str) -> Result<()> {
        check(dest, "tensor")?;
        let t = self.get_tensor(src)?;
        self.put_tensor(dest, &t)
    }

    /// Rename a tensor (across shards: copy, then delete).
    pub fn rename_tensor(&mut self, old: &str, new: &str) -> Result<()> {
        check(old, "tensor")?;
        check(new, "tensor")?;
        let (from, to) = (self.tensor_key(old, false), self.tensor_key(new, true));
        if !self.exists(&from)? {
            return Err(Error::NotFound {
                what: "tensor",
                name: old.into(),
            });
        }
        if !self.t.clustered() || hash_slot(&from) == hash_slot(&to) {
            self.run(&from, redis::cmd("RENAME").arg(&from).arg(&to), "RENAME")?;
            return Ok(());
        }
        let t = self.get_tensor_key(&from, old)?;
        self.put_tensor_key(&to, &t)?;
        self.delete_keys(&[from])
    }

    /// Whether a tensor exists.
    pub fn tensor_exists(&mut self, name: &str) -> Result<bool> {
        check(name, "tensor")?;
        let key = self.tensor_key(name, false);
        self.exists(&key)
    }

    /// Whether a raw key exists (no prefix).
    pub fn key_exists(&mut self, key: &str) -> Result<bool> {
        check(key, "key")?;
        self.exists(key.as_bytes())
    }

    /// Check for a tensor `tries` times, `interval_ms` apart.
    pub fn poll_tensor(&mut self, name: &str, interval_ms: u64, tries: u64) -> Result<bool> {
        self.poll(interval_ms, tries, |c| c.tensor_exists(name))
    }

    /// Check for a raw key `tries` times, `interval_ms` apart.
    pub fn poll_key(&mut self, key: &str, interval_ms: u64, tries: u64) -> Result<bool> {
        self.poll(interval_ms, tries, |c| c.key_exists(key))
    }
}
