//! Models: `AI.MODELSTORE` / `AI.MODELSET` parsing and `AI.MODELGET` replies.

use crate::args::{Reply, arity, is, take, text, uint};

/// An ML runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// TensorFlow frozen graphs.
    Tf,
    /// TensorFlow Lite.
    TfLite,
    /// TorchScript.
    Torch,
    /// ONNX.
    Onnx,
}

impl Backend {
    /// Parse a backend name (case-insensitive).
    pub fn parse(a: &[u8]) -> Option<Backend> {
        [Backend::Tf, Backend::TfLite, Backend::Torch, Backend::Onnx]
            .into_iter()
            .find(|b| is(a, b.name()))
    }

    /// The name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Tf => "TF",
            Backend::TfLite => "TFLITE",
            Backend::Torch => "TORCH",
            Backend::Onnx => "ONNX",
        }
    }

    /// RedisAI's RDB code.
    pub fn code(self) -> u64 {
        match self {
            Backend::Tf => 0,
            Backend::TfLite => 1,
            Backend::Torch => 2,
            Backend::Onnx => 3,
        }
    }

    /// The backend for an RDB code.
    pub fn from_code(c: u64) -> Option<Backend> {
        [Backend::Tf, Backend::TfLite, Backend::Torch, Backend::Onnx]
            .into_iter()
            .find(|b| b.code() == c)
    }

    /// The plugin file of this backend (`liborc_ai_backend_<x>.so`).
    pub fn file_name(self) -> String {
        format!("liborc_ai_backend_{}.so", self.name().to_ascii_lowercase())
    }
}

/// Check a device string: `CPU`, `GPU`, `CPU:<n>` or `GPU:<n>`, shorter than 10 characters.
pub fn valid_device(d: &[u8]) -> bool {
    if d.len() >= 10 || d.len() < 3 {
        return false;
    }
    let (head, tail) = d.split_at(3);
    if !(is(head, "CPU") || is(head, "GPU")) {
        return false;
    }
    match tail {
        [] => true,
        [b':', digits @ ..] => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// Everything stored about a model except the runtime handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMeta {
    /// Runtime.
    pub backend: Backend,
    /// Device as given.
    pub device: String,
    /// Free-form tag.
    pub tag: String,
    /// Batch size for auto-batching (0: off).
    pub batch_size: u64,
    /// Minimum batch before running (0: none).
    pub min_batch_size: u64,
    /// Milliseconds to wait for the minimum batch.
    pub min_batch_timeout: u64,
    /// Input names (TF: given; others: from the model).
    pub inputs: Vec<String>,
    /// Output names.
    pub outputs: Vec<String>,
}

/// A parsed `AI.MODELSTORE` / `AI.MODELSET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRequest {
    /// The metadata.
    pub meta: ModelMeta,
    /// The model bytes (chunks concatenated).
    pub blob: Vec<u8>,
}

fn names(a: &[&[u8]]) -> Vec<String> {
    a.iter().map(|s| text(s)).collect()
}

/// Parse `AI.MODELSTORE` arguments after the command name (`key backend device ...`).
/// `deprecated` selects the `AI.MODELSET` syntax (INPUTS/OUTPUTS without counts).
pub fn parse_store(args: &[&[u8]], deprecated: bool) -> Result<StoreRequest, Reply> {
    let cmd = if deprecated {
        "AI.MODELSET"
    } else {
        "AI.MODELSTORE"
    };
    if args.len() < if deprecated { 3 } else { 5 } {
        return Err(arity(cmd));
    }
    let backend = Backend::parse(args[1]).ok_or_else(|| Reply::new("ERR unsupported backend"))?;
    if !valid_device(args[2]) {
        return Err(Reply::new("ERR Invalid DEVICE"));
    }
    let mut meta = ModelMeta {
        backend,
        device: text(args[2]),
        tag: String::new(),
        batch_size: 0,
        min_batch_size: 0,
        min_batch_timeout: 0,
        inputs: Vec::new(),
        outputs: Vec::new(),
    };
    let mut i = 3;
    let at = |i: usize, kw: &str| args.get(i).is_some_and(|a| is(a, kw));
    if at(i, "TAG") {
        meta.tag = text(
            args.get(i + 1)
                .ok_or_else(|| Reply::new("ERR Insufficient arguments, missing model BLOB"))?,
        );
        i += 2;
    }
    if at(i, "BATCHSIZE") {
        meta.batch_size = args
            .get(i + 1)
            .and_then(|a| uint(a))
            .ok_or_else(|| Reply::new("ERR Invalid argument for BATCHSIZE"))?;
        i += 2;
        if deprecated && backend == Backend::TfLite {
            return Err(Reply::new(
                "ERR Auto-batching not supported by the TFLITE backend",
            ));
        }
        if at(i, "MINBATCHSIZE") {
            meta.min_batch_size = args
                .get(i + 1)
                .and_then(|a| uint(a))
                .ok_or_else(|| Reply::new("ERR Invalid argument for MINBATCHSIZE"))?;
            i += 2;
            if at(i, "MINBATCHTIMEOUT") {
                meta.min_batch_timeout = args
                    .get(i + 1)
                    .and_then(|a| uint(a))
                    .ok_or_else(|| Reply::new("ERR Invalid argument for MINBATCHTIMEOUT"))?;
                i += 2;
            }
        }
    }
    if at(i, "MINBATCHSIZE") {
        return Err(Reply::new("ERR MINBATCHSIZE specified without BATCHSIZE"));
    }
    if at(i, "MINBATCHTIMEOUT") {
        return Err(Reply::new(if deprecated {
            "ERR MINBATCHTIMEOUT specified without BATCHSIZE"
        } else {
            "ERR MINBATCHTIMEOUT specified without MINBATCHSIZE"
        }));
    }
    if backend == Backend::Tf {
        if deprecated {
            if !at(i, "INPUTS") {
                return Err(Reply::new(
                    "ERR Insufficient arguments, INPUTS and OUTPUTS not specified",
                ));
            }
            let start = i + 1;
            let out = (start..args.len())
                .find(|j| is(args[*j], "OUTPUTS"))
                .ok_or_else(|| Reply::new("ERR OUTPUTS not specified"))?;
            meta.inputs = names(&args[start..out]);
            let blob = (out + 1..args.len())
                .find(|j| is(args[*j], "BLOB"))
                .unwrap_or(args.len());
            meta.outputs = names(&args[out + 1..blob]);
            i = blob;
        } else {
            if !at(i, "INPUTS") {
                return Err(Reply::new("ERR INPUTS not specified for TF"));
            }
            let n = args
                .get(i + 1)
                .and_then(|a| uint(a))
                .filter(|n| *n > 0)
                .ok_or_else(|| Reply::new("ERR Invalid argument for input_count"))?;
            let list = take(args, i + 2, n).ok_or_else(|| {
                Reply::new(
                    "ERR number of model inputs does not match the number of given arguments",
                )
            })?;
            meta.inputs = names(list);
            i += 2 + list.len();
            if !at(i, "OUTPUTS") {
                return Err(Reply::new("ERR OUTPUTS not specified for TF"));
            }
            let n = args
                .get(i + 1)
                .and_then(|a| uint(a))
                .filter(|n| *n > 0)
                .ok_or_else(|| Reply::new("ERR Invalid argument for output_count"))?;
            let list = take(args, i + 2, n).ok_or_else(|| {
                Reply::new(
                    "ERR number of model outputs does not match the number of given arguments",
                )
            })?;
            meta.outputs = names(list);
            i += 2 + list.len();
        }
    } else if at(i, "INPUTS") || at(i, "OUTPUTS") {
        return Err(Reply::new(
            "ERR INPUTS argument should not be specified for this backend",
        ));
    }
    if i >= args.len() {
        return Err(Reply::new("ERR Insufficient arguments, missing model BLOB"));
    }
    if !is(args[i], "BLOB") {
        return Err(Reply::new("ERR Invalid argument, expected BLOB"));
    }
    let chunks = &args[i + 1..];
    if chunks.is_empty() {
        return Err(Reply::new("ERR Insufficient arguments, missing model BLOB"));
    }
    Ok(StoreRequest {
        meta,
        blob: chunks.concat(),
    })
}

/// What `AI.MODELGET` should return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetFormat {
    /// The metadata fields.
    pub meta: bool,
    /// The blob.
    pub blob: bool,
}

/// Parse `AI.MODELGET` options (unknown words are ignored, as RedisAI does).
pub fn parse_get(opts: &[&[u8]]) -> GetFormat {
    let meta = opts.iter().any(|o| is(o, "META"));
    let blob = opts.iter().any(|o| is(o, "BLOB"));
    if !meta && !blob {
        GetFormat {
            meta: true,
            blob: true,
        }
    } else {
        GetFormat { meta, blob }
    }
}

/// Split `blob` into chunks the way RedisAI replies (an array when `len >= chunk`).
pub fn chunks(blob: &[u8], chunk: usize) -> Option<Vec<&[u8]>> {
    if chunk == 0 || blob.len() < chunk {
        return None;
    }
    let mut v: Vec<&[u8]> = blob.chunks(chunk).collect();
    if blob.len().is_multiple_of(chunk) {
        v.push(&[]); // RedisAI sends an empty last chunk for exact multiples
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(s: &str, deprecated: bool) -> Result<StoreRequest, Reply> {
        let a: Vec<&[u8]> = s.split(' ').map(str::as_bytes).collect();
        parse_store(&a, deprecated)
    }

    #[test]
    fn modelstore_as_smartredis_sends_it() {
        let r = store("m2 TF CPU TAG v1 BATCHSIZE 4 MINBATCHSIZE 2 MINBATCHTIMEOUT 10 INPUTS 1 x OUTPUTS 1 y BLOB fake", false).unwrap();
        assert_eq!(r.meta.tag, "v1");
        assert_eq!(
            (
                r.meta.batch_size,
                r.meta.min_batch_size,
                r.meta.min_batch_timeout
            ),
            (4, 2, 10)
        );
        assert_eq!(r.meta.inputs, ["x"]);
        assert_eq!(r.meta.outputs, ["y"]);
        assert_eq!(r.blob, b"fake");
        let r = store("m1 torch cpu BLOB ab cd", false).unwrap();
        assert_eq!(r.meta.backend, Backend::Torch);
        assert_eq!(r.blob, b"abcd");
    }

    #[test]
    fn modelstore_errors() {
        let e = |s: &str| store(s, false).unwrap_err().0;
        assert_eq!(
            e("m ONNX CPU BLOB"),
            "ERR wrong number of arguments for 'AI.MODELSTORE' command"
        );
        assert_eq!(e("m CAFFE CPU BLOB x"), "ERR unsupported backend");
        assert_eq!(e("m ONNX CPU:123456 BLOB x"), "ERR Invalid DEVICE");
        assert_eq!(e("m ONNX TPU BLOB x"), "ERR Invalid DEVICE");
        assert_eq!(
            e("m ONNX CPU BATCHSIZE x BLOB x"),
            "ERR Invalid argument for BATCHSIZE"
        );
        assert_eq!(
            e("m ONNX CPU MINBATCHSIZE 2 BLOB x"),
            "ERR MINBATCHSIZE specified without BATCHSIZE"
        );
        assert_eq!(
            e("m ONNX CPU BATCHSIZE 2 MINBATCHTIMEOUT 2 BLOB x"),
            "ERR MINBATCHTIMEOUT specified without MINBATCHSIZE"
        );
        assert_eq!(e("m TF CPU BLOB x y"), "ERR INPUTS not specified for TF");
        assert_eq!(
            e("m TF CPU INPUTS 0 BLOB x"),
            "ERR Invalid argument for input_count"
        );
        assert_eq!(
            e("m TF CPU INPUTS 1 a BLOB x"),
            "ERR OUTPUTS not specified for TF"
        );
        assert_eq!(
            e("m ONNX CPU INPUTS 1 a BLOB"),
            "ERR INPUTS argument should not be specified for this backend"
        );
        assert_eq!(
            e("m ONNX CPU TAG t x"),
            "ERR Invalid argument, expected BLOB"
        );
        assert_eq!(
            e("m ONNX CPU TAG t BLOB"),
            "ERR Insufficient arguments, missing model BLOB"
        );
    }

    #[test]
    fn modelset_deprecated_form() {
        let r = store("m TF CPU INPUTS a b OUTPUTS c BLOB x", true).unwrap();
        assert_eq!(r.meta.inputs, ["a", "b"]);
        assert_eq!(r.meta.outputs, ["c"]);
        assert_eq!(
            store("m TFLITE CPU BATCHSIZE 2 BLOB x", true)
                .unwrap_err()
                .0,
            "ERR Auto-batching not supported by the TFLITE backend"
        );
    }

    #[test]
    fn devices_and_chunks() {
        for ok in ["CPU", "gpu", "GPU:0", "CPU:12345"] {
            assert!(valid_device(ok.as_bytes()), "{ok}");
        }
        for bad in ["CPU:123456", "CPU:", "CPUX", "TPU", "GPU:a", ""] {
            assert!(!valid_device(bad.as_bytes()), "{bad}");
        }
        assert_eq!(
            chunks(b"abcdefghij", 4).unwrap(),
            vec![&b"abcd"[..], b"efgh", b"ij"]
        );
        assert_eq!(
            chunks(b"abcdefgh", 4).unwrap(),
            vec![&b"abcd"[..], b"efgh", b""]
        );
        assert!(chunks(b"abc", 4).is_none());
        assert_eq!(
            parse_get(&[]),
            GetFormat {
                meta: true,
                blob: true
            }
        );
        assert_eq!(
            parse_get(&[b"BLOB"]),
            GetFormat {
                meta: false,
                blob: true
            }
        );
    }
}
