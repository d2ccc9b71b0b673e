//! Tensors: the RedisAI data types, `AI.TENSORSET` parsing and `AI.TENSORGET` replies.
//!
//! Pure Rust, no Redis: everything here is unit- and property-tested on its own.

use std::fmt;

/// The most bytes a tensor created without data (zero-filled) may take. A tensor that
/// comes with a BLOB is already bounded by Redis's `proto-max-bulk-len`.
pub const MAX_ZERO_FILLED_BYTES: u64 = 512 * 1024 * 1024;

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
        let s = std::str::from_utf8(s).ok()?.to_ascii_uppercase();
        DType::ALL.into_iter().find(|d| d.name() == s)
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

/// A tensor's bytes: owned, or an argument buffer kept as it was received (no copy).
pub enum Data {
    /// Owned bytes.
    Owned(Vec<u8>),
    /// Bytes held elsewhere.
    External(Box<dyn ExternalBytes>),
}

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Owned(v) => v,
            Data::External(e) => e.bytes(),
        }
    }
}

impl Clone for Data {
    /// A clone owns its bytes.
    fn clone(&self) -> Self {
        Data::Owned(self.to_vec())
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
        Data::Owned(v)
    }
}

impl Data {
    /// Bytes of heap memory held for this data.
    pub fn heap_size(&self) -> usize {
        match self {
            Data::Owned(v) => v.capacity(),
            Data::External(e) => e.bytes().len(),
        }
    }
}

/// Blobs at least this large are kept as received instead of being copied.
pub const KEEP_EXTERNAL_FROM: usize = 64 * 1024;

/// A tensor: type, shape and row-major data (strings: each element followed by NUL).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Element type.
    pub dtype: DType,
    /// Dimensions (empty for a scalar).
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

/// How the data of a TENSORSET is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    None,
    Blob,
    Values,
}

impl Tensor {
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
    pub fn from_args(args: &[&[u8]]) -> Result<Tensor, TensorError> {
        Self::from_args_keeping(args, &|_| None)
    }

    /// As [`Tensor::from_args`]; a valid BLOB (argument index given) may be kept by `keep`
    /// instead of copied.
    pub fn from_args_keeping(
        args: &[&[u8]],
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
            let d = std::str::from_utf8(a)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .filter(|d| *d > 0)
                .ok_or_else(|| err("ERR invalid or negative value found in tensor shape"))?;
            shape.push(d);
            i += 1;
        }
        let n = element_count(&shape).ok_or_else(|| err("ERR tensor shape is too large"))?;
        let data_args = &rest[i..];
        let data = match kind {
            DataKind::None => {
                let bytes = n
                    .checked_mul(dtype.size() as u64)
                    .ok_or_else(|| err("ERR tensor shape is too large"))?;
                if bytes > MAX_ZERO_FILLED_BYTES {
                    return Err(TensorError(format!(
                        "ERR tensor shape is too large: {bytes} bytes without data (at most {MAX_ZERO_FILLED_BYTES}); send the data with BLOB"
                    )));
                }
                // Strings: n empty strings, each just its terminator.
                Data::Owned(vec![0u8; bytes as usize])
            }
            DataKind::Blob => {
                let [blob] = data_args else {
                    return Err(err(
                        "ERR a single binary string should come after the BLOB argument in 'AI.TENSORSET' command",
                    ));
                };
                check_blob(dtype, n, blob)?;
                keep(1 + i).unwrap_or_else(|| Data::Owned(blob.to_vec()))
            }
            DataKind::Values => {
                if data_args.len() as u64 != n {
                    return Err(err(
                        "ERR wrong number of values was given in 'AI.TENSORSET' command",
                    ));
                }
                Data::Owned(values_to_bytes(dtype, data_args)?)
            }
        };
        Ok(Tensor { dtype, shape, data })
    }

    /// The string elements of a STRING tensor.
    pub fn strings(&self) -> Vec<&[u8]> {
        let mut v: Vec<&[u8]> = self.data[..].split(|b| *b == 0).collect();
        v.pop(); // after the last terminator
        v
    }

    /// `AI.TENSORGET ... VALUES` elements.
    pub fn values(&self) -> Vec<Value> {
        let d: &[u8] = &self.data;
        macro_rules! each {
            ($t:ty, $n:expr, $wrap:expr) => {
                d.chunks_exact($n)
                    .map(|c| $wrap(<$t>::from_le_bytes(c.try_into().unwrap_or_default())))
                    .collect()
            };
        }
        match self.dtype {
            DType::Float => each!(f32, 4, |v: f32| Value::Float(f64::from(v))),
            DType::Double => each!(f64, 8, Value::Float),
            DType::Int8 => each!(i8, 1, |v: i8| Value::Int(i64::from(v))),
            DType::Int16 => each!(i16, 2, |v: i16| Value::Int(i64::from(v))),
            DType::Int32 => each!(i32, 4, |v: i32| Value::Int(i64::from(v))),
            DType::Int64 => each!(i64, 8, Value::Int),
            DType::Uint8 | DType::Bool => d.iter().map(|b| Value::Int(i64::from(*b))).collect(),
            DType::Uint16 => each!(u16, 2, |v: u16| Value::Int(i64::from(v))),
            DType::String => self
                .strings()
                .into_iter()
                .map(|s| Value::Bytes(s.to_vec()))
                .collect(),
        }
    }
}

/// One element in a VALUES reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Floating point (sent as a bulk string, like RedisAI).
    Float(f64),
    /// Integer.
    Int(i64),
    /// String element.
    Bytes(Vec<u8>),
}

fn check_blob(dtype: DType, n: u64, blob: &[u8]) -> Result<(), TensorError> {
    match dtype {
        DType::String => {
            let terminated = blob.last() == Some(&0);
            let count = blob.iter().filter(|b| **b == 0).count() as u64;
            if !terminated || count != n {
                return Err(err(
                    "ERR Number of string elements in data blob does not match tensor length",
                ));
            }
        }
        _ => {
            if n.checked_mul(dtype.size() as u64) != Some(blob.len() as u64) {
                return Err(err("ERR data length does not match tensor shape and type"));
            }
            if dtype == DType::Bool && blob.iter().any(|b| *b > 1) {
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

/// VALUES to bytes. Negative values of signed integer types are accepted (RedisAI
/// rejects them by mistake: its range check casts to unsigned).
fn values_to_bytes(dtype: DType, vals: &[&[u8]]) -> Result<Vec<u8>, TensorError> {
    let mut out = Vec::with_capacity(vals.len() * dtype.size());
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
            DType::Int8 => out.extend_from_slice(
                &i8::try_from(parse_i(v)?)
                    .map_err(|_| err("ERR invalid value"))?
                    .to_le_bytes(),
            ),
            DType::Int16 => out.extend_from_slice(
                &i16::try_from(parse_i(v)?)
                    .map_err(|_| err("ERR invalid value"))?
                    .to_le_bytes(),
            ),
            DType::Int32 => out.extend_from_slice(
                &i32::try_from(parse_i(v)?)
                    .map_err(|_| err("ERR invalid value"))?
                    .to_le_bytes(),
            ),
            DType::Int64 => out.extend_from_slice(&parse_i(v)?.to_le_bytes()),
            DType::Uint8 => {
                out.push(u8::try_from(parse_i(v)?).map_err(|_| err("ERR invalid value"))?)
            }
            DType::Uint16 => out.extend_from_slice(
                &u16::try_from(parse_i(v)?)
                    .map_err(|_| err("ERR invalid value"))?
                    .to_le_bytes(),
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn set(args: &[&str]) -> Result<Tensor, TensorError> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        Tensor::from_args(&a)
    }

    #[test]
    fn values_and_blobs_of_every_numeric_type() {
        let t = set(&["float", "2", "VALUES", "1.5", "-2"]).unwrap();
        assert_eq!(
            t.data,
            Data::Owned([1.5f32.to_le_bytes(), (-2f32).to_le_bytes()].concat())
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
        let t = Tensor::from_args(&[b"DOUBLE", b"1", b"BLOB", &blob]).unwrap();
        assert_eq!(t.values(), vec![Value::Float(2.0)]);
        // A scalar: no dims.
        let t = set(&["INT64", "VALUES", "7"]).unwrap();
        assert!(t.shape.is_empty());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn bad_input_gets_redisai_messages() {
        assert_eq!(
            set(&["FLOAT16", "1"]).unwrap_err().0,
            "ERR invalid data type"
        );
        assert_eq!(
            set(&["FLOAT", "0"]).unwrap_err().0,
            "ERR invalid or negative value found in tensor shape"
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
        assert!(huge.starts_with("ERR tensor shape is too large"), "{huge}");
        let big = set(&["DOUBLE", "100000", "100000"]).unwrap_err().0;
        assert!(big.contains("without data"), "{big}");
    }

    #[test]
    fn string_tensors() {
        let t = set(&["STRING", "2", "VALUES", "ab", "c\0"]).unwrap();
        assert_eq!(&t.data[..], b"ab\0c\0");
        assert_eq!(t.strings(), vec![&b"ab"[..], &b"c"[..]]);
        assert_eq!(
            set(&["STRING", "1", "VALUES", "a\0b"]).unwrap_err().0,
            "ERR C-string value contains null character"
        );
        assert!(Tensor::from_args(&[b"STRING", b"2", b"BLOB", b"x\0y\0"]).is_ok());
        assert_eq!(
            Tensor::from_args(&[b"STRING", b"2", b"BLOB", b"x\0y"])
                .unwrap_err()
                .0,
            "ERR Number of string elements in data blob does not match tensor length"
        );
        let z = set(&["STRING", "3"]).unwrap();
        assert_eq!(z.strings().len(), 3);
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

    #[test]
    fn arbitrary_arguments_never_panic() {
        // A small deterministic fuzz over the parser (the cargo-fuzz target covers more).
        let words: [&[u8]; 14] = [
            b"FLOAT",
            b"INT8",
            b"STRING",
            b"BOOL",
            b"BLOB",
            b"VALUES",
            b"1",
            b"2",
            b"-1",
            b"0",
            b"\0",
            b"abc",
            b"99999999999999999999",
            b"1e40",
        ];
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..20000 {
            let n = (x % 7) as usize;
            let mut args = Vec::new();
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                args.push(words[(x % words.len() as u64) as usize]);
            }
            if let Ok(t) = Tensor::from_args(&args) {
                let _ = t.values();
                assert!(
                    t.dtype == DType::String
                        || t.data.len() as u64 == t.len() * t.dtype.size() as u64
                );
            }
            x = x.wrapping_add(0x9e3779b97f4a7c15);
        }
    }
}
