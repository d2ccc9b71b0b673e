//! Tensors: the RedisAI data types, `AI.TENSORSET` parsing, validation of every tensor that
//! enters the server, and `AI.TENSORGET` formats.
//!
//! Pure Rust, no Redis: everything here is unit-tested and fuzzed on its own. A tensor's
//! bytes are shared (reference-counted), so handing a stored tensor to a worker, a DAG or
//! `COPY` never copies its data.

use std::{fmt, sync::Arc};

use crate::config::Limits;

/// The most dimensions a tensor may have.
pub const MAX_DIMS: usize = 64;

/// Element types, with the DLPack code and bit width RedisAI stores in RDB files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float.
    Float,
    /// 64-bit float.
    Double,
    /// Signed 8-bit integer.
    Int8,
    /// Signed 16-bit integer.
    Int16,
    /// Signed 32-bit integer.
    Int32,
    /// Signed 64-bit integer.
    Int64,
    /// Unsigned 8-bit integer.
    Uint8,
    /// Unsigned 16-bit integer.
    Uint16,
    /// Boolean stored as one byte, 0 or 1.
    Bool,
    /// NUL-terminated strings.
    String,
}

impl DType {
    /// Every type, in RedisAI's order.
    pub const ALL: [DType; 10] = [
        DType::Float,
        DType::Double,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::Uint8,
        DType::Uint16,
        DType::Bool,
        DType::String,
    ];

    /// Parse a type name (case-insensitive, as RedisAI).
    pub fn parse(s: &[u8]) -> Option<DType> {
        DType::ALL
            .into_iter()
            .find(|d| s.eq_ignore_ascii_case(d.name().as_bytes()))
    }

    /// The upper-case name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            DType::Float => "FLOAT",
            DType::Double => "DOUBLE",
            DType::Int8 => "INT8",
            DType::Int16 => "INT16",
            DType::Int32 => "INT32",
            DType::Int64 => "INT64",
            DType::Uint8 => "UINT8",
            DType::Uint16 => "UINT16",
            DType::Bool => "BOOL",
            DType::String => "STRING",
        }
    }

    /// Bytes per element (strings: variable, reported as 1).
    pub fn size(self) -> usize {
        match self {
            DType::Float | DType::Int32 => 4,
            DType::Double | DType::Int64 => 8,
            DType::Int16 | DType::Uint16 => 2,
            DType::Int8 | DType::Uint8 | DType::Bool | DType::String => 1,
        }
    }

    /// DLPack type code and bits (RedisAI's RDB encoding).
    pub fn dlpack(self) -> (u64, u64) {
        let bits = 8 * self.size() as u64;
        match self {
            DType::Float | DType::Double => (2, bits),
            DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64 => (0, bits),
            DType::Uint8 | DType::Uint16 => (1, bits),
            DType::Bool => (6, 8),
            DType::String => (7, 8),
        }
    }

    /// The type for a DLPack code and bit width.
    pub fn from_dlpack(code: u64, bits: u64) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.dlpack() == (code, bits))
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Bytes kept by something else (a retained Redis string); read-only.
pub trait ExternalBytes: Send + Sync {
    /// The bytes.
    fn bytes(&self) -> &[u8];
}

enum Storage {
    Owned(Vec<u8>),
    External(Box<dyn ExternalBytes>),
}

/// A tensor's bytes: owned, or an argument buffer kept as it was received (no copy);
/// immutable and shared by reference count, so clones are cheap.
#[derive(Clone)]
pub struct Data(Arc<Storage>);

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &*self.0 {
            Storage::Owned(v) => v,
            Storage::External(e) => e.bytes(),
        }
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Data({} bytes)", self.len())
    }
}

impl From<Vec<u8>> for Data {
    fn from(v: Vec<u8>) -> Self {
        Data(Arc::new(Storage::Owned(v)))
    }
}

impl Data {
    /// Bytes held elsewhere, kept alive as long as this data.
    pub fn external(e: Box<dyn ExternalBytes>) -> Self {
        Data(Arc::new(Storage::External(e)))
    }

    /// Bytes of heap memory held for this data (shared data counts in full for each
    /// holder, as `MEMORY USAGE` expects).
    pub fn heap_size(&self) -> usize {
        match &*self.0 {
            Storage::Owned(v) => v.capacity(),
            Storage::External(e) => e.bytes().len(),
        }
    }
}

/// Blobs at least this large are kept as received instead of being copied.
pub const KEEP_EXTERNAL_FROM: usize = 64 * 1024;

/// A tensor: type, shape and row-major data (strings: each element followed by NUL).
/// Every tensor the server holds has passed [`Tensor::new`]: at most [`MAX_DIMS`]
/// dimensions, none negative, and data whose length matches shape and type.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Element type.
    pub dtype: DType,
    /// Dimensions (empty for a scalar; zero-size dimensions are allowed).
    pub shape: Vec<i64>,
    /// Row-major bytes, little-endian.
    pub data: Data,
}

/// A tensor error, with RedisAI's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorError(pub String);

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(s: &str) -> TensorError {
    TensorError(s.to_string())
}

/// Number of elements of `shape`, or `None` on overflow or a negative dimension.
pub fn element_count(shape: &[i64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, d| {
        u64::try_from(*d).ok().and_then(|d| acc.checked_mul(d))
    })
}

fn too_large(bytes: u64, limits: &Limits) -> TensorError {
    TensorError(format!(
        "ERR tensor is too large: {bytes} bytes (at most {}; module argument MAX_TENSOR_BYTES)",
        limits.max_tensor_bytes
    ))
}

/// How the data of a TENSORSET is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    None,
    Blob,
    Values,
}

impl Tensor {
    /// A checked tensor: at most [`MAX_DIMS`] non-negative dimensions, and `data` matching
    /// shape and type (STRING: exactly one NUL-terminated element per element of the shape).
    pub fn new(dtype: DType, shape: Vec<i64>, data: Data) -> Result<Tensor, TensorError> {
        if shape.len() > MAX_DIMS {
            return Err(TensorError(format!(
                "ERR tensor has {} dimensions (at most {MAX_DIMS})",
                shape.len()
            )));
        }
        let n = element_count(&shape)
            .ok_or_else(|| err("ERR invalid or negative value found in tensor shape"))?;
        check_data(dtype, n, &data)?;
        Ok(Tensor { dtype, shape, data })
    }

    /// As [`Tensor::new`], also within the size limit.
    pub fn new_limited(
        dtype: DType,
        shape: Vec<i64>,
        data: Data,
        limits: &Limits,
    ) -> Result<Tensor, TensorError> {
        if data.len() as u64 > limits.max_tensor_bytes {
            return Err(too_large(data.len() as u64, limits));
        }
        Tensor::new(dtype, shape, data)
    }

    /// Number of elements.
    pub fn len(&self) -> u64 {
        element_count(&self.shape).unwrap_or(0)
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of memory this tensor holds, header included (for `MEMORY USAGE`).
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Tensor>() + self.data.heap_size() + self.shape.capacity() * 8
    }

    /// Parse `AI.TENSORSET` arguments after the key: `<type> <dim>... [BLOB b | VALUES v...]`.
    pub fn from_args(args: &[&[u8]], limits: &Limits) -> Result<Tensor, TensorError> {
        Self::from_args_keeping(args, limits, &|_| None)
    }

    /// As [`Tensor::from_args`]; a valid BLOB (argument index given) may be kept by `keep`
    /// instead of copied.
    pub fn from_args_keeping(
        args: &[&[u8]],
        limits: &Limits,
        keep: &dyn Fn(usize) -> Option<Data>,
    ) -> Result<Tensor, TensorError> {
        let (first, rest) = args
            .split_first()
            .ok_or_else(|| err("ERR wrong number of arguments for 'AI.TENSORSET' command"))?;
        let dtype = DType::parse(first).ok_or_else(|| err("ERR invalid data type"))?;
        let mut shape = Vec::new();
        let mut i = 0;
        let mut kind = DataKind::None;
        while i < rest.len() {
            let a = rest[i];
            if a.eq_ignore_ascii_case(b"BLOB") {
                kind = DataKind::Blob;
                i += 1;
                break;
            }
            if a.eq_ignore_ascii_case(b"VALUES") {
                kind = DataKind::Values;
                i += 1;
                break;
            }
            if shape.len() == MAX_DIMS {
                return Err(TensorError(format!(
                    "ERR tensor has more than {MAX_DIMS} dimensions"
                )));
            }
            let d = std::str::from_utf8(a)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .filter(|d| *d >= 0)
                .ok_or_else(|| err("ERR invalid or negative value found in tensor shape"))?;
            shape.push(d);
            i += 1;
        }
        let n = element_count(&shape).ok_or_else(|| too_large(u64::MAX, limits))?;
        let data_args = &rest[i..];
        let data = match kind {
            DataKind::None => {
                let bytes = n
                    .checked_mul(dtype.size() as u64)
                    .ok_or_else(|| too_large(u64::MAX, limits))?;
                if bytes > limits.max_tensor_bytes {
                    return Err(too_large(bytes, limits));
                }
                // Strings: n empty strings, each just its terminator.
                Data::from(vec![0u8; bytes as usize])
            }
            DataKind::Blob => {
                let [blob] = data_args else {
                    return Err(err(
                        "ERR a single binary string should come after the BLOB argument in 'AI.TENSORSET' command",
                    ));
                };
                if blob.len() as u64 > limits.max_tensor_bytes {
                    return Err(too_large(blob.len() as u64, limits));
                }
                check_data(dtype, n, blob)?;
                keep(1 + i).unwrap_or_else(|| Data::from(blob.to_vec()))
            }
            DataKind::Values => {
                if data_args.len() as u64 != n {
                    return Err(err(
                        "ERR wrong number of values was given in 'AI.TENSORSET' command",
                    ));
                }
                let bytes = values_to_bytes(dtype, data_args)?;
                if bytes.len() as u64 > limits.max_tensor_bytes {
                    return Err(too_large(bytes.len() as u64, limits));
                }
                Data::from(bytes)
            }
        };
        Ok(Tensor { dtype, shape, data })
    }

    /// The string elements of a STRING tensor.
    pub fn strings(&self) -> impl Iterator<Item = &[u8]> {
        let d: &[u8] = &self.data;
        let body = d.strip_suffix(&[0]).unwrap_or(d);
        body.split(|b| *b == 0)
            .take(if d.is_empty() { 0 } else { usize::MAX })
    }

    /// Call `f` with each element, in order (`AI.TENSORGET ... VALUES`), without building
    /// a list.
    pub fn for_each_value<'a>(&'a self, mut f: impl FnMut(Value<'a>)) {
        let d: &[u8] = &self.data;
        macro_rules! each {
            ($t:ty, $wrap:expr) => {
                for c in d.chunks_exact(std::mem::size_of::<$t>()) {
                    f($wrap(<$t>::from_le_bytes(c.try_into().unwrap_or_default())))
                }
            };
        }
        match self.dtype {
            DType::Float => each!(f32, |v: f32| Value::Float(f64::from(v))),
            DType::Double => each!(f64, Value::Float),
            DType::Int8 => each!(i8, |v: i8| Value::Int(i64::from(v))),
            DType::Int16 => each!(i16, |v: i16| Value::Int(i64::from(v))),
            DType::Int32 => each!(i32, |v: i32| Value::Int(i64::from(v))),
            DType::Int64 => each!(i64, Value::Int),
            DType::Uint8 | DType::Bool => d.iter().for_each(|b| f(Value::Int(i64::from(*b)))),
            DType::Uint16 => each!(u16, |v: u16| Value::Int(i64::from(v))),
            DType::String => self.strings().for_each(|s| f(Value::Bytes(s))),
        }
    }

    /// The elements as a list (tests and small tensors).
    pub fn values(&self) -> Vec<Value<'_>> {
        let mut v = Vec::new();
        self.for_each_value(|x| v.push(x));
        v
    }
}

/// One element in a VALUES reply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// Floating point (sent as a bulk string, like RedisAI).
    Float(f64),
    /// Integer.
    Int(i64),
    /// String element.
    Bytes(&'a [u8]),
}

/// Check that `data` holds `n` elements of `dtype`.
fn check_data(dtype: DType, n: u64, data: &[u8]) -> Result<(), TensorError> {
    match dtype {
        DType::String => {
            let count = data.iter().filter(|b| **b == 0).count() as u64;
            let terminated = data.is_empty() || data.last() == Some(&0);
            if !terminated || count != n {
                return Err(err(
                    "ERR Number of string elements in data blob does not match tensor length",
                ));
            }
        }
        _ => {
            if n.checked_mul(dtype.size() as u64) != Some(data.len() as u64) {
                return Err(err("ERR data length does not match tensor shape and type"));
            }
            if dtype == DType::Bool && data.iter().any(|b| *b > 1) {
                return Err(err("ERR BOOL tensor elements must be 0 or 1"));
            }
        }
    }
    Ok(())
}

fn parse_i(a: &[u8]) -> Result<i64, TensorError> {
    std::str::from_utf8(a)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .ok_or_else(|| err("ERR invalid value"))
}

fn parse_f(a: &[u8]) -> Result<f64, TensorError> {
    std::str::from_utf8(a)
        .ok()
        .and_then(|s| {
            let s = s.trim();
            match s.to_ascii_lowercase().as_str() {
                "inf" | "+inf" => Some(f64::INFINITY),
                "-inf" => Some(f64::NEG_INFINITY),
                _ => s.parse::<f64>().ok(),
            }
        })
        .ok_or_else(|| err("ERR invalid value"))
}

fn int<T: TryFrom<i64>>(v: &[u8]) -> Result<T, TensorError> {
    T::try_from(parse_i(v)?).map_err(|_| err("ERR invalid value"))
}

/// VALUES to bytes. Negative values of signed integer types are accepted (RedisAI
/// rejects them by mistake: its range check casts to unsigned).
fn values_to_bytes(dtype: DType, vals: &[&[u8]]) -> Result<Vec<u8>, TensorError> {
    let mut out = Vec::with_capacity(vals.len().saturating_mul(dtype.size()));
    for v in vals {
        match dtype {
            DType::Float => {
                let f = parse_f(v)?;
                if f.is_finite() && f.abs() > f64::from(f32::MAX) {
                    return Err(err("ERR invalid value"));
                }
                out.extend_from_slice(&(f as f32).to_le_bytes())
            }
            DType::Double => out.extend_from_slice(&parse_f(v)?.to_le_bytes()),
            DType::Int8 => out.extend_from_slice(&int::<i8>(v)?.to_le_bytes()),
            DType::Int16 => out.extend_from_slice(&int::<i16>(v)?.to_le_bytes()),
            DType::Int32 => out.extend_from_slice(&int::<i32>(v)?.to_le_bytes()),
            DType::Int64 => out.extend_from_slice(&parse_i(v)?.to_le_bytes()),
            DType::Uint8 => out.push(int::<u8>(v)?),
            DType::Uint16 => out.extend_from_slice(&int::<u16>(v)?.to_le_bytes()),
            DType::Bool => match parse_i(v)? {
                0 => out.push(0),
                1 => out.push(1),
                _ => return Err(err("ERR BOOL tensor elements must be 0 or 1")),
            },
            DType::String => {
                let s = match v.split_last() {
                    Some((0, head)) => head, // a single trailing NUL is accepted
                    _ => v,
                };
                if s.contains(&0) {
                    return Err(err("ERR C-string value contains null character"));
                }
                out.extend_from_slice(s);
                out.push(0);
            }
        }
    }
    Ok(out)
}

/// The output format of `AI.TENSORGET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetFormat {
    /// Include `dtype` and `shape`.
    pub meta: bool,
    /// Include the blob.
    pub blob: bool,
    /// Include the values.
    pub values: bool,
}

/// Parse the `AI.TENSORGET` options after the key.
pub fn parse_get_format(opts: &[&[u8]]) -> Result<GetFormat, TensorError> {
    if opts.is_empty() {
        return Ok(GetFormat {
            meta: true,
            blob: true,
            values: false,
        });
    }
    let mut f = GetFormat {
        meta: false,
        blob: false,
        values: false,
    };
    for o in opts {
        if o.eq_ignore_ascii_case(b"META") {
            f.meta = true;
        } else if o.eq_ignore_ascii_case(b"BLOB") {
            f.blob = true;
        } else if o.eq_ignore_ascii_case(b"VALUES") {
            f.values = true;
        } else {
            return Err(err("ERR unsupported data format"));
        }
    }
    if f.blob && f.values {
        return Err(err("ERR both BLOB and VALUES specified"));
    }
    Ok(f)
}

/// Whether `t` may be answered with VALUES under `limits`.
pub fn check_values_reply(t: &Tensor, limits: &Limits) -> Result<(), TensorError> {
    if t.len() > limits.max_values_reply {
        return Err(TensorError(format!(
            "ERR tensor has {} elements, too many for a VALUES reply (at most {}; module argument MAX_VALUES_REPLY); ask for BLOB",
            t.len(),
            limits.max_values_reply
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> Limits {
        Limits::default()
    }

    fn set(args: &[&str]) -> Result<Tensor, TensorError> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        Tensor::from_args(&a, &lim())
    }

    #[test]
    fn values_and_blobs_of_every_numeric_type() {
        let t = set(&["float", "2", "VALUES", "1.5", "-2"]).unwrap();
        assert_eq!(
            t.data,
            Data::from([1.5f32.to_le_bytes(), (-2f32).to_le_bytes()].concat())
        );
        assert_eq!(t.values(), vec![Value::Float(1.5), Value::Float(-2.0)]);
        // Negative integers are accepted (a deliberate difference from RedisAI).
        let t = set(&["INT8", "2", "VALUES", "-1", "-128"]).unwrap();
        assert_eq!(t.values(), vec![Value::Int(-1), Value::Int(-128)]);
        assert_eq!(
            set(&["INT8", "1", "VALUES", "128"]).unwrap_err().0,
            "ERR invalid value"
        );
        assert_eq!(
            set(&["UINT16", "1", "VALUES", "-1"]).unwrap_err().0,
            "ERR invalid value"
        );
        let t = set(&["UINT16", "1", "2", "VALUES", "65535", "0"]).unwrap();
        assert_eq!(t.shape, [1, 2]);
        assert_eq!(t.values(), vec![Value::Int(65535), Value::Int(0)]);
        let t = set(&["DOUBLE", "1", "BLOB", "\0\0\0\0\0\0\u{f0}?"]);
        assert!(
            t.is_err(),
            "non-ASCII bytes in a &str are UTF-8 encoded: wrong length"
        );
        let blob = 2.0f64.to_le_bytes();
        let t = Tensor::from_args(&[b"DOUBLE", b"1", b"BLOB", &blob], &lim()).unwrap();
        assert_eq!(t.values(), vec![Value::Float(2.0)]);
        // A scalar: no dims.
        let t = set(&["INT64", "VALUES", "7"]).unwrap();
        assert!(t.shape.is_empty());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn zero_size_dimensions_are_tensors_like_any_other() {
        // Models produce them; RDB, AOF and replicas must accept what was stored.
        let t = set(&["FLOAT", "2", "0"]).unwrap();
        assert_eq!((t.len(), t.data.len()), (0, 0));
        let t = Tensor::from_args(&[b"FLOAT", b"0", b"3", b"BLOB", b""], &lim()).unwrap();
        assert!(t.is_empty());
        let s = Tensor::from_args(&[b"STRING", b"0", b"BLOB", b""], &lim()).unwrap();
        assert_eq!(s.strings().count(), 0);
        assert!(Tensor::new(DType::String, vec![0], Data::from(Vec::new())).is_ok());
    }

    #[test]
    fn bad_input_gets_redisai_messages() {
        assert_eq!(
            set(&["FLOAT16", "1"]).unwrap_err().0,
            "ERR invalid data type"
        );
        assert_eq!(
            set(&["FLOAT", "-2"]).unwrap_err().0,
            "ERR invalid or negative value found in tensor shape"
        );
        assert_eq!(
            set(&["FLOAT", "x"]).unwrap_err().0,
            "ERR invalid or negative value found in tensor shape"
        );
        assert_eq!(
            set(&["FLOAT", "2", "VALUES", "1"]).unwrap_err().0,
            "ERR wrong number of values was given in 'AI.TENSORSET' command"
        );
        assert_eq!(
            set(&["FLOAT", "2", "BLOB", "abc"]).unwrap_err().0,
            "ERR data length does not match tensor shape and type"
        );
        assert_eq!(
            set(&["FLOAT", "1", "BLOB", "abcd", "x"]).unwrap_err().0,
            "ERR a single binary string should come after the BLOB argument in 'AI.TENSORSET' command"
        );
        assert_eq!(
            set(&["BOOL", "2", "VALUES", "1", "2"]).unwrap_err().0,
            "ERR BOOL tensor elements must be 0 or 1"
        );
        assert_eq!(
            set(&["BOOL", "2", "BLOB", "\u{1}\u{2}"]).unwrap_err().0,
            "ERR BOOL tensor elements must be 0 or 1"
        );
        assert_eq!(
            set(&["FLOAT", "1", "VALUES", "abc"]).unwrap_err().0,
            "ERR invalid value"
        );
        assert_eq!(
            set(&["FLOAT", "1", "VALUES", "1e300"]).unwrap_err().0,
            "ERR invalid value"
        );
        let huge = set(&["FLOAT", "4294967296", "4294967296", "4294967296"])
            .unwrap_err()
            .0;
        assert!(huge.starts_with("ERR tensor is too large"), "{huge}");
        let big = set(&["DOUBLE", "100000", "100000"]).unwrap_err().0;
        assert!(big.contains("MAX_TENSOR_BYTES"), "{big}");
        let mut dims = vec!["FLOAT"];
        dims.extend(std::iter::repeat_n("1", MAX_DIMS + 1));
        assert!(set(&dims).unwrap_err().0.contains("dimensions"));
        dims.pop();
        assert!(set(&dims).is_ok());
    }

    #[test]
    fn limits_bound_every_way_of_making_a_tensor() {
        let small = Limits {
            max_tensor_bytes: 8,
            ..Limits::default()
        };
        let f = |a: &[&[u8]]| Tensor::from_args(a, &small);
        assert!(f(&[b"FLOAT", b"2"]).is_ok());
        assert!(f(&[b"FLOAT", b"3"]).is_err());
        assert!(f(&[b"FLOAT", b"3", b"VALUES", b"1", b"2", b"3"]).is_err());
        assert!(f(&[b"UINT8", b"9", b"BLOB", &[0; 9]]).is_err());
        assert!(Tensor::new_limited(DType::Uint8, vec![9], vec![0; 9].into(), &small).is_err());
        let t = Tensor::new_limited(DType::Uint8, vec![8], vec![0; 8].into(), &small).unwrap();
        assert_eq!(t.len(), 8);
        let many = Limits {
            max_values_reply: 4,
            ..Limits::default()
        };
        assert!(
            check_values_reply(&t, &many)
                .unwrap_err()
                .0
                .contains("BLOB")
        );
        assert!(check_values_reply(&t, &small).is_ok());
    }

    #[test]
    fn new_checks_what_comes_from_disk_or_a_backend() {
        let ok = |d, s: Vec<i64>, b: &[u8]| Tensor::new(d, s, b.to_vec().into()).is_ok();
        assert!(ok(DType::Float, vec![2], &[0; 8]));
        assert!(!ok(DType::Float, vec![2], &[0; 7]));
        assert!(!ok(DType::Uint16, vec![4], &[0; 2]));
        assert!(!ok(DType::Float, vec![-1], &[]));
        assert!(!ok(DType::Bool, vec![1], &[2]));
        assert!(ok(DType::String, vec![2], b"a\0\0"));
        assert!(!ok(DType::String, vec![2], b"a\0b"));
        assert!(!ok(DType::String, vec![1], b"a\0b\0"));
        assert!(!ok(DType::Float, vec![1; MAX_DIMS + 1], &[0; 4]));
        assert!(!ok(DType::Float, vec![i64::MAX, i64::MAX], &[]));
    }

    #[test]
    fn clones_share_the_bytes() {
        let t = set(&["UINT8", "3", "VALUES", "1", "2", "3"]).unwrap();
        let c = t.clone();
        assert_eq!(t.data.as_ptr(), c.data.as_ptr());
    }

    #[test]
    fn string_tensors() {
        let t = set(&["STRING", "2", "VALUES", "ab", "c\0"]).unwrap();
        assert_eq!(&t.data[..], b"ab\0c\0");
        assert_eq!(t.strings().collect::<Vec<_>>(), vec![&b"ab"[..], &b"c"[..]]);
        assert_eq!(
            set(&["STRING", "1", "VALUES", "a\0b"]).unwrap_err().0,
            "ERR C-string value contains null character"
        );
        assert!(Tensor::from_args(&[b"STRING", b"2", b"BLOB", b"x\0y\0"], &lim()).is_ok());
        assert_eq!(
            Tensor::from_args(&[b"STRING", b"2", b"BLOB", b"x\0y"], &lim())
                .unwrap_err()
                .0,
            "ERR Number of string elements in data blob does not match tensor length"
        );
        let z = set(&["STRING", "3"]).unwrap();
        assert_eq!(z.strings().count(), 3);
    }

    #[test]
    fn get_formats() {
        let f = |o: &[&str]| parse_get_format(&o.iter().map(|s| s.as_bytes()).collect::<Vec<_>>());
        assert_eq!(
            f(&[]).unwrap(),
            GetFormat {
                meta: true,
                blob: true,
                values: false
            }
        );
        assert_eq!(
            f(&["meta"]).unwrap(),
            GetFormat {
                meta: true,
                blob: false,
                values: false
            }
        );
        assert_eq!(
            f(&["BLOB", "VALUES"]).unwrap_err().0,
            "ERR both BLOB and VALUES specified"
        );
        assert_eq!(f(&["JSON"]).unwrap_err().0, "ERR unsupported data format");
        for d in DType::ALL {
            let (c, b) = d.dlpack();
            assert_eq!(DType::from_dlpack(c, b), Some(d));
        }
    }
}
