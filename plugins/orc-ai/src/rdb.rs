//! The RDB encoding of the three data types (RedisAI encoding version 4), over a reader
//! and a writer so the same code serves Redis (RDB files, `DUMP`/`RESTORE`, replication)
//! and the tests and fuzzers (an in-memory stream).
//!
//! Nothing read here is trusted: counts and lengths are checked against what actually
//! follows (a count never sizes an allocation), dimensions against [`MAX_DIMS`], tensor
//! data against its shape and type, string offsets against the data, model chunks against
//! the declared length, devices against the device syntax. A value that fails any check
//! is refused with a message; the caller logs it and Redis reports the key as unreadable.

use crate::{
    model::{Backend, ModelMeta, valid_device},
    script::ScriptMeta,
    tensor::{DType, Data, MAX_DIMS, Tensor},
};

/// The most names (inputs, outputs, entry points) a model or script may list.
pub const MAX_NAMES: u64 = 1 << 16;

/// Where values are read from.
pub trait RdbIn {
    /// An unsigned integer.
    fn load_unsigned(&mut self) -> Result<u64, String>;
    /// A signed integer.
    fn load_signed(&mut self) -> Result<i64, String>;
    /// A byte string, owned.
    fn load_buffer(&mut self) -> Result<Vec<u8>, String>;
    /// A byte string as tensor data (implementations may keep their own buffer).
    fn load_data(&mut self) -> Result<Data, String> {
        self.load_buffer().map(Data::from)
    }
}

/// Where values are written to.
pub trait RdbOut {
    /// An unsigned integer.
    fn save_unsigned(&mut self, v: u64);
    /// A signed integer.
    fn save_signed(&mut self, v: i64);
    /// A byte string.
    fn save_buffer(&mut self, b: &[u8]);
}

fn cstr<W: RdbOut>(w: &mut W, s: &str) {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    w.save_buffer(&v);
}

fn read_cstr<R: RdbIn>(r: &mut R) -> Result<String, String> {
    let b = r.load_buffer()?;
    let b = b.strip_suffix(&[0]).unwrap_or(&b);
    Ok(String::from_utf8_lossy(b).into_owned())
}

fn read_names<R: RdbIn>(r: &mut R, what: &str) -> Result<Vec<String>, String> {
    let n = r.load_unsigned()?;
    if n > MAX_NAMES {
        return Err(format!("{n} {what} (at most {MAX_NAMES})"));
    }
    let mut names = Vec::new();
    for _ in 0..n {
        names.push(read_cstr(r)?);
    }
    Ok(names)
}

/// Write a tensor.
pub fn write_tensor<W: RdbOut>(w: &mut W, t: &Tensor) {
    let (code, bits) = t.dtype.dlpack();
    w.save_unsigned(code);
    w.save_unsigned(bits);
    w.save_signed(t.shape.len() as i64);
    for d in &t.shape {
        w.save_signed(*d);
    }
    w.save_buffer(&t.data);
    if t.dtype == DType::String {
        let mut off = 0u64;
        for s in t.strings() {
            w.save_unsigned(off);
            off += s.len() as u64 + 1;
        }
    }
}

/// Read a tensor, checked.
pub fn read_tensor<R: RdbIn>(r: &mut R) -> Result<Tensor, String> {
    let code = r.load_unsigned()?;
    let bits = r.load_unsigned()?;
    let dtype = DType::from_dlpack(code, bits)
        .ok_or(format!("unknown tensor type code {code} bits {bits}"))?;
    let ndim = r.load_signed()?;
    if !(0..=MAX_DIMS as i64).contains(&ndim) {
        return Err(format!("{ndim} dimensions (at most {MAX_DIMS})"));
    }
    let mut shape = Vec::with_capacity(ndim as usize);
    for _ in 0..ndim {
        shape.push(r.load_signed()?);
    }
    let data = r.load_data()?;
    let t = Tensor::new(dtype, shape, data).map_err(|e| {
        e.0.strip_prefix("ERR ")
            .map(str::to_string)
            .unwrap_or(e.0.clone())
    })?;
    if dtype == DType::String {
        // One offset per element, each the start of its element in the data.
        let mut expected = 0u64;
        for s in t.strings() {
            let off = r.load_unsigned()?;
            if off != expected {
                return Err(format!(
                    "string offset {off} does not match the data (expected {expected})"
                ));
            }
            expected += s.len() as u64 + 1;
        }
    }
    Ok(t)
}

/// Write a model: metadata, then its bytes in chunks of `chunk`.
pub fn write_model<W: RdbOut>(w: &mut W, meta: &ModelMeta, blob: &[u8], chunk: usize) {
    w.save_unsigned(meta.backend.code());
    cstr(w, &meta.device);
    w.save_buffer(meta.tag.as_bytes());
    w.save_unsigned(meta.batch_size);
    w.save_unsigned(meta.min_batch_size);
    w.save_unsigned(meta.min_batch_timeout);
    for names in [&meta.inputs, &meta.outputs] {
        w.save_unsigned(names.len() as u64);
        for n in names {
            cstr(w, n);
        }
    }
    w.save_unsigned(blob.len() as u64);
    let chunks = blob.chunks(chunk.max(1));
    w.save_unsigned(chunks.len() as u64);
    for c in chunks {
        w.save_buffer(c);
    }
}

/// Read a model's metadata and bytes, checked.
pub fn read_model<R: RdbIn>(r: &mut R) -> Result<(ModelMeta, Vec<u8>), String> {
    let code = r.load_unsigned()?;
    let backend = Backend::from_code(code).ok_or(format!("unknown backend code {code}"))?;
    let device = read_cstr(r)?;
    if !valid_device(device.as_bytes()) {
        return Err(format!("invalid device `{device}`"));
    }
    let tag = String::from_utf8_lossy(&r.load_buffer()?).into_owned();
    let batch_size = r.load_unsigned()?;
    let min_batch_size = r.load_unsigned()?;
    let min_batch_timeout = r.load_unsigned()?;
    let inputs = read_names(r, "inputs")?;
    let outputs = read_names(r, "outputs")?;
    let len = r.load_unsigned()?;
    let n = r.load_unsigned()?;
    let mut blob = Vec::new();
    for _ in 0..n {
        let c = r.load_buffer()?;
        if (blob.len() + c.len()) as u64 > len {
            return Err(format!(
                "model chunks hold more than the {len} bytes declared"
            ));
        }
        blob.extend_from_slice(&c);
    }
    if blob.len() as u64 != len {
        return Err(format!(
            "model chunks hold {} bytes, {len} declared",
            blob.len()
        ));
    }
    let meta = ModelMeta {
        backend,
        device,
        tag,
        batch_size,
        min_batch_size,
        min_batch_timeout,
        inputs,
        outputs,
    };
    Ok((meta, blob))
}

/// Write a script.
pub fn write_script<W: RdbOut>(w: &mut W, m: &ScriptMeta) {
    cstr(w, &m.device);
    w.save_buffer(m.tag.as_bytes());
    cstr(w, &m.source);
    w.save_unsigned(m.entry_points.len() as u64);
    for ep in &m.entry_points {
        cstr(w, ep);
    }
}

/// Read a script, checked.
pub fn read_script<R: RdbIn>(r: &mut R) -> Result<ScriptMeta, String> {
    let device = read_cstr(r)?;
    if !valid_device(device.as_bytes()) {
        return Err(format!("invalid device `{device}`"));
    }
    let tag = String::from_utf8_lossy(&r.load_buffer()?).into_owned();
    let source = read_cstr(r)?;
    let entry_points = read_names(r, "entry points")?;
    Ok(ScriptMeta {
        device,
        tag,
        entry_points,
        source,
    })
}

/// An in-memory stream in a simple self-describing form (integers as 8 little-endian
/// bytes, strings as an 8-byte length and the bytes), for tests and fuzzing.
#[derive(Debug, Default, Clone)]
pub struct Stream {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The read position.
    pub pos: usize,
}

impl Stream {
    /// A stream to read `bytes` from.
    pub fn new(bytes: Vec<u8>) -> Self {
        Stream { bytes, pos: 0 }
    }

    fn take(&mut self, n: u64) -> Result<&[u8], String> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n <= rest.len())
            .ok_or("short read (the value ends before its declared length)".to_string())?;
        self.pos += n;
        Ok(&rest[..n])
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }
}

impl RdbIn for Stream {
    fn load_unsigned(&mut self) -> Result<u64, String> {
        self.u64()
    }
    fn load_signed(&mut self) -> Result<i64, String> {
        self.u64().map(|v| v as i64)
    }
    fn load_buffer(&mut self) -> Result<Vec<u8>, String> {
        let n = self.u64()?;
        self.take(n).map(<[u8]>::to_vec)
    }
}

impl RdbOut for Stream {
    fn save_unsigned(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    fn save_signed(&mut self, v: i64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    fn save_buffer(&mut self, b: &[u8]) {
        self.bytes
            .extend_from_slice(&(b.len() as u64).to_le_bytes());
        self.bytes.extend_from_slice(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;

    fn tensor(args: &[&[u8]]) -> Tensor {
        Tensor::from_args(args, &Limits::default()).unwrap()
    }

    fn round_trip(t: &Tensor) -> Tensor {
        let mut s = Stream::default();
        write_tensor(&mut s, t);
        read_tensor(&mut Stream::new(s.bytes)).unwrap()
    }

    #[test]
    fn tensors_round_trip() {
        for t in [
            tensor(&[b"FLOAT", b"2", b"VALUES", b"1", b"2"]),
            tensor(&[b"STRING", b"3", b"VALUES", b"a", b"", b"bc"]),
            tensor(&[b"INT8", b"0", b"4"]),
            tensor(&[b"BOOL", b"VALUES", b"1"]),
        ] {
            assert_eq!(round_trip(&t), t);
        }
    }

    #[test]
    fn every_truncation_of_a_value_is_an_error() {
        let mut s = Stream::default();
        write_tensor(&mut s, &tensor(&[b"STRING", b"2", b"VALUES", b"ab", b"c"]));
        let meta = ModelMeta {
            backend: Backend::Onnx,
            device: "CPU".into(),
            tag: "t".into(),
            batch_size: 0,
            min_batch_size: 0,
            min_batch_timeout: 0,
            inputs: vec!["x".into()],
            outputs: vec![],
        };
        let mut m = Stream::default();
        write_model(&mut m, &meta, b"0123456789", 4);
        let mut sc = Stream::default();
        write_script(
            &mut sc,
            &ScriptMeta {
                device: "CPU".into(),
                tag: String::new(),
                entry_points: vec!["f".into()],
                source: "def f(a, b, c):\n  return a\n".into(),
            },
        );
        for cut in 0..s.bytes.len() {
            assert!(read_tensor(&mut Stream::new(s.bytes[..cut].to_vec())).is_err());
        }
        for cut in 0..m.bytes.len() {
            assert!(read_model(&mut Stream::new(m.bytes[..cut].to_vec())).is_err());
        }
        for cut in 0..sc.bytes.len() {
            assert!(read_script(&mut Stream::new(sc.bytes[..cut].to_vec())).is_err());
        }
        let (back, blob) = read_model(&mut Stream::new(m.bytes)).unwrap();
        assert_eq!((back, blob.as_slice()), (meta, &b"0123456789"[..]));
    }

    #[test]
    fn lies_on_disk_are_refused() {
        let bad = |f: &dyn Fn(&mut Stream)| {
            let mut s = Stream::default();
            f(&mut s);
            read_tensor(&mut Stream::new(s.bytes)).unwrap_err()
        };
        // Data shorter than the shape says (the UINT16 heap overflow of the issue).
        let e = bad(&|s| {
            s.save_unsigned(1);
            s.save_unsigned(16);
            s.save_signed(1);
            s.save_signed(1000);
            s.save_buffer(&[0; 2]);
        });
        assert!(e.contains("does not match"), "{e}");
        let e = bad(&|s| {
            s.save_unsigned(2);
            s.save_unsigned(32);
            s.save_signed(1 << 40);
        });
        assert!(e.contains("dimensions"), "{e}");
        let e = bad(&|s| {
            s.save_unsigned(2);
            s.save_unsigned(32);
            s.save_signed(1);
            s.save_signed(-4);
            s.save_buffer(&[]);
        });
        assert!(e.contains("negative"), "{e}");
        // A model whose chunks disagree with its length, and a count far beyond the data.
        let mut s = Stream::default();
        s.save_unsigned(3);
        s.save_buffer(b"CPU\0");
        s.save_buffer(b"");
        for _ in 0..3 {
            s.save_unsigned(0);
        }
        s.save_unsigned(u64::MAX);
        let e = read_model(&mut Stream::new(s.bytes)).unwrap_err();
        assert!(e.contains("at most"), "{e}");
        let mut s = Stream::default();
        s.save_unsigned(3);
        s.save_buffer(b"CPU:99999999\0");
        let e = read_model(&mut Stream::new(s.bytes)).unwrap_err();
        assert!(e.contains("invalid device"), "{e}");
    }
}
