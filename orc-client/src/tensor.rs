//! Tensors: the eight SmartRedis element types, row- and column-major layouts.

use crate::error::{Error, Result};

/// The tensor element types SmartRedis clients exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorType {
    /// `f64`.
    Double,
    /// `f32`.
    Float,
    /// `i8`.
    Int8,
    /// `i16`.
    Int16,
    /// `i32`.
    Int32,
    /// `i64`.
    Int64,
    /// `u8`.
    Uint8,
    /// `u16`.
    Uint16,
}

impl TensorType {
    /// All eight.
    pub const ALL: [TensorType; 8] = [
        TensorType::Double,
        TensorType::Float,
        TensorType::Int8,
        TensorType::Int16,
        TensorType::Int32,
        TensorType::Int64,
        TensorType::Uint8,
        TensorType::Uint16,
    ];

    /// The name on the wire (`AI.TENSORSET key <name> ...`).
    pub fn wire_name(self) -> &'static str {
        match self {
            TensorType::Double => "DOUBLE",
            TensorType::Float => "FLOAT",
            TensorType::Int8 => "INT8",
            TensorType::Int16 => "INT16",
            TensorType::Int32 => "INT32",
            TensorType::Int64 => "INT64",
            TensorType::Uint8 => "UINT8",
            TensorType::Uint16 => "UINT16",
        }
    }

    /// Parse a wire name.
    pub fn from_wire(s: &[u8]) -> Option<TensorType> {
        TensorType::ALL
            .into_iter()
            .find(|t| t.wire_name().as_bytes().eq_ignore_ascii_case(s))
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            TensorType::Double | TensorType::Int64 => 8,
            TensorType::Float | TensorType::Int32 => 4,
            TensorType::Int16 | TensorType::Uint16 => 2,
            TensorType::Int8 | TensorType::Uint8 => 1,
        }
    }
}

/// Rust types that are tensor elements.
pub trait Element: Copy + Default + 'static {
    /// The matching tensor type.
    const TYPE: TensorType;
    /// Little-endian bytes.
    fn write(self, out: &mut Vec<u8>);
    /// From little-endian bytes (exactly `size` of them).
    fn read(b: &[u8]) -> Self;
}

macro_rules! element {
    ($t:ty, $v:ident) => {
        impl Element for $t {
            const TYPE: TensorType = TensorType::$v;
            fn write(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
        }
    };
}
element!(f64, Double);
element!(f32, Float);
element!(i8, Int8);
element!(i16, Int16);
element!(i32, Int32);
element!(i64, Int64);
element!(u8, Uint8);
element!(u16, Uint16);

/// The little-endian bytes of `values` (one copy; on little-endian machines a plain memcpy).
pub(crate) fn as_le_bytes<T: Element>(values: &[T]) -> Vec<u8> {
    #[cfg(target_endian = "little")]
    {
        let len = std::mem::size_of_val(values);
        // SAFETY: every Element is a plain integer or float with no padding and no invalid
        // bit patterns, laid out exactly as its little-endian bytes on this target.
        unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), len) }.to_vec()
    }
    #[cfg(not(target_endian = "little"))]
    {
        let mut data = Vec::with_capacity(values.len() * T::TYPE.size());
        for v in values {
            v.write(&mut data);
        }
        data
    }
}

/// Values from little-endian bytes (a memcpy on little-endian machines).
fn from_le_bytes<T: Element>(data: &[u8]) -> Vec<T> {
    let n = data.len() / T::TYPE.size();
    #[cfg(target_endian = "little")]
    {
        let mut out = vec![T::default(); n];
        // SAFETY: `out` holds exactly `n * size` bytes of plain values; any byte pattern is a
        // valid value of every Element type.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                out.as_mut_ptr().cast::<u8>(),
                n * T::TYPE.size(),
            )
        };
        out
    }
    #[cfg(not(target_endian = "little"))]
    {
        data.chunks_exact(T::TYPE.size()).map(T::read).collect()
    }
}

/// How a flat buffer holds a multi-dimensional tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryLayout {
    /// Row-major (C order): the last index varies fastest. The database always holds this.
    #[default]
    RowMajor,
    /// Column-major (Fortran order): the first index varies fastest.
    ColumnMajor,
}

/// A tensor read from or written to the database: type, dimensions, row-major bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Element type.
    pub dtype: TensorType,
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Row-major little-endian bytes.
    pub data: Vec<u8>,
}

/// Number of elements for `dims` (checked).
pub(crate) fn element_count(dims: &[usize]) -> Result<usize> {
    if dims.is_empty() {
        return Err(Error::invalid("a tensor needs at least one dimension"));
    }
    dims.iter().try_fold(1usize, |acc, d| {
        if *d == 0 {
            return Err(Error::invalid(format!(
                "dimensions must be positive, got {dims:?}"
            )));
        }
        acc.checked_mul(*d)
            .ok_or_else(|| Error::invalid(format!("dimensions {dims:?} overflow")))
    })
}

/// Reorder a buffer between column- and row-major for `dims` (`to_row_major` says which way).
fn reorder(data: &[u8], dims: &[usize], elem: usize, to_row_major: bool) -> Vec<u8> {
    let n = data.len() / elem;
    if dims.len() < 2 {
        return data.to_vec();
    }
    let rank = dims.len();
    let mut c_strides = vec![1usize; rank];
    let mut f_strides = vec![1usize; rank];
    for k in (0..rank - 1).rev() {
        c_strides[k] = c_strides[k + 1] * dims[k + 1];
    }
    for k in 1..rank {
        f_strides[k] = f_strides[k - 1] * dims[k - 1];
    }
    let mut out = vec![0u8; data.len()];
    let mut idx = vec![0usize; rank];
    for _ in 0..n {
        let c: usize = idx.iter().zip(&c_strides).map(|(i, s)| i * s).sum();
        let f: usize = idx.iter().zip(&f_strides).map(|(i, s)| i * s).sum();
        let (src, dst) = if to_row_major { (f, c) } else { (c, f) };
        out[dst * elem..(dst + 1) * elem].copy_from_slice(&data[src * elem..(src + 1) * elem]);
        for k in (0..rank).rev() {
            idx[k] += 1;
            if idx[k] < dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

impl Tensor {
    /// A tensor from a flat slice in the given layout.
    pub fn from_slice<T: Element>(
        values: &[T],
        dims: &[usize],
        layout: MemoryLayout,
    ) -> Result<Tensor> {
        let n = element_count(dims)?;
        if values.len() != n {
            return Err(Error::invalid(format!(
                "{} values do not fill dimensions {dims:?} ({n} elements)",
                values.len()
            )));
        }
        let mut data = as_le_bytes(values);
        if layout == MemoryLayout::ColumnMajor {
            data = reorder(&data, dims, T::TYPE.size(), true);
        }
        Ok(Tensor {
            dtype: T::TYPE,
            dims: dims.to_vec(),
            data,
        })
    }

    /// The values in the given layout; the type must match.
    pub fn to_vec<T: Element>(&self, layout: MemoryLayout) -> Result<Vec<T>> {
        if T::TYPE != self.dtype {
            return Err(Error::invalid(format!(
                "the tensor holds {}, not {}",
                self.dtype.wire_name(),
                T::TYPE.wire_name()
            )));
        }
        let data = match layout {
            MemoryLayout::RowMajor => std::borrow::Cow::Borrowed(&self.data),
            MemoryLayout::ColumnMajor => {
                std::borrow::Cow::Owned(reorder(&self.data, &self.dims, T::TYPE.size(), false))
            }
        };
        Ok(from_le_bytes(&data))
    }

    /// Copy the values into `out` (SmartRedis's `unpack_tensor`), checking type, dimensions
    /// and buffer size.
    pub fn unpack_into<T: Element>(
        &self,
        out: &mut [T],
        dims: &[usize],
        layout: MemoryLayout,
    ) -> Result<()> {
        if dims != self.dims.as_slice() {
            return Err(Error::invalid(format!(
                "dimensions {dims:?} do not match the stored tensor's {:?}",
                self.dims
            )));
        }
        let v = self.to_vec::<T>(layout)?;
        if out.len() != v.len() {
            return Err(Error::invalid(format!(
                "a buffer of {} elements cannot hold {} values",
                out.len(),
                v.len()
            )));
        }
        out.copy_from_slice(&v);
        Ok(())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

#[cfg(feature = "ndarray")]
mod nd {
    use super::*;

    impl Tensor {
        /// An `ndarray` view of the values, copied into a new array.
        pub fn to_ndarray<T: Element>(&self) -> Result<ndarray::ArrayD<T>> {
            let v = self.to_vec::<T>(MemoryLayout::RowMajor)?;
            ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&self.dims), v)
                .map_err(|e| Error::invalid(e.to_string()))
        }

        /// A tensor from any `ndarray` (any memory order).
        pub fn from_ndarray<T: Element, S: ndarray::Data<Elem = T>, D: ndarray::Dimension>(
            a: &ndarray::ArrayBase<S, D>,
        ) -> Result<Tensor> {
            let v: Vec<T> = a.iter().copied().collect();
            Tensor::from_slice(&v, a.shape(), MemoryLayout::RowMajor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "ndarray")]
    #[test]
    fn ndarray_round_trip_in_any_memory_order() {
        let a = ndarray::Array2::from_shape_vec((2, 3), vec![1i16, 2, 3, 4, 5, 6]).unwrap();
        let t = Tensor::from_ndarray(&a.t()).unwrap(); // a transposed view, column order in memory
        assert_eq!(t.dims, [3, 2]);
        assert_eq!(
            t.to_vec::<i16>(MemoryLayout::RowMajor).unwrap(),
            [1, 4, 2, 5, 3, 6]
        );
        assert_eq!(t.to_ndarray::<i16>().unwrap(), a.t().into_dyn());
    }

    #[test]
    fn fortran_order_is_transposed_both_ways() {
        // [[1,2,3],[4,5,6]] given column-major is 1,4,2,5,3,6.
        let t =
            Tensor::from_slice(&[1i32, 4, 2, 5, 3, 6], &[2, 3], MemoryLayout::ColumnMajor).unwrap();
        assert_eq!(
            t.to_vec::<i32>(MemoryLayout::RowMajor).unwrap(),
            [1, 2, 3, 4, 5, 6]
        );
        assert_eq!(
            t.to_vec::<i32>(MemoryLayout::ColumnMajor).unwrap(),
            [1, 4, 2, 5, 3, 6]
        );
        let v: Vec<f64> = (0..24).map(f64::from).collect();
        let t = Tensor::from_slice(&v, &[2, 3, 4], MemoryLayout::ColumnMajor).unwrap();
        assert_eq!(t.to_vec::<f64>(MemoryLayout::ColumnMajor).unwrap(), v);
        // Element (i,j,k) of the Fortran buffer is at i + 2j + 6k; row-major at 12i + 4j + k.
        let rm = t.to_vec::<f64>(MemoryLayout::RowMajor).unwrap();
        assert_eq!(rm[12 + 4 * 2 + 3], (1 + 2 * 2 + 6 * 3) as f64);
    }

    #[test]
    fn mismatches_are_clear_errors() {
        let t = Tensor::from_slice(&[1.0f32, 2.0], &[2], MemoryLayout::RowMajor).unwrap();
        assert!(
            t.to_vec::<f64>(MemoryLayout::RowMajor)
                .unwrap_err()
                .to_string()
                .contains("holds FLOAT, not DOUBLE")
        );
        let mut buf = [0f32; 3];
        assert!(
            t.unpack_into(&mut buf, &[2], MemoryLayout::RowMajor)
                .unwrap_err()
                .to_string()
                .contains("buffer of 3")
        );
        assert!(
            t.unpack_into(&mut buf[..2], &[1, 2], MemoryLayout::RowMajor)
                .unwrap_err()
                .to_string()
                .contains("do not match")
        );
        assert!(Tensor::from_slice(&[1u8], &[2], MemoryLayout::RowMajor).is_err());
        assert!(Tensor::from_slice::<u8>(&[], &[], MemoryLayout::RowMajor).is_err());
    }
}
