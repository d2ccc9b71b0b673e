//! Refuse ONNX models whose tensors point at external data files, before any runtime
//! parses them (both orc-ai ONNX backends call [`check`]).
//!
//! ONNX lets a tensor say "my bytes are in file F at offset O": ONNX Runtime would then read
//! any file the server can read, named by a client. RedisAI builds ONNX Runtime with
//! external initializers disabled; orc loads the stock runtime, so the model bytes are
//! walked here first (protobuf wire format, only the messages that can hold tensors) and
//! refused when any tensor, at any depth, has `external_data` or `data_location: EXTERNAL`.
//! The walk is bounded: linear in the bytes, at most [`MAX_DEPTH`] nested messages.
//!
//! ```
//! // A ModelProto whose graph (field 7) holds one initializer (field 5) stored outside.
//! let model = [0x3a, 0x04, 0x2a, 0x02, 0x70, 0x01];
//! assert_eq!(orc_ai_onnx_check::check(&model).unwrap_err(), orc_ai_onnx_check::REFUSED);
//! ```
#![deny(missing_docs)]

/// RedisAI's error for such models.
pub const REFUSED: &str = "Initializer tensors with external data is not allowed.";

/// Deepest nesting of messages walked (graphs inside attributes inside nodes...); deeper
/// models are refused.
pub const MAX_DEPTH: usize = 64;

/// The messages the walk looks into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Msg {
    Model,
    Graph,
    Node,
    Attribute,
    Tensor,
    SparseTensor,
    Function,
    TrainingInfo,
}

/// The message held by `field` of `m`, for the fields that matter here.
fn child(m: Msg, field: u64) -> Option<Msg> {
    use Msg::*;
    Some(match (m, field) {
        (Model, 7) => Graph,
        (Model, 20) => TrainingInfo,
        (Model, 25) => Function,
        (TrainingInfo, 1 | 2) => Graph,
        (Graph, 1) => Node,
        (Graph, 5) => Tensor,
        (Graph, 15) => SparseTensor,
        (Function, 7) => Node,
        (Node, 5) => Attribute,
        (Attribute, 5 | 10) => Tensor,
        (Attribute, 6 | 11) => Graph,
        (Attribute, 22 | 23) => SparseTensor,
        (SparseTensor, 1 | 2) => Tensor,
        _ => return None,
    })
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated protobuf")?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("malformed protobuf varint".into())
}

fn walk(buf: &[u8], m: Msg, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the model nests graphs deeper than {MAX_DEPTH} levels"
        ));
    }
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = varint(buf, &mut pos)?;
                // TensorProto.data_location = EXTERNAL (1)
                if m == Msg::Tensor && field == 14 && v == 1 {
                    return Err(REFUSED.into());
                }
            }
            1 => pos = pos.checked_add(8).ok_or("truncated protobuf")?,
            5 => pos = pos.checked_add(4).ok_or("truncated protobuf")?,
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| "bad length")?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated protobuf")?;
                // TensorProto.external_data (13)
                if m == Msg::Tensor && field == 13 {
                    return Err(REFUSED.into());
                }
                if let Some(c) = child(m, field) {
                    walk(&buf[pos..end], c, depth + 1)?;
                }
                pos = end;
            }
            _ => return Err(format!("malformed protobuf (wire type {wire})")),
        }
    }
    if pos > buf.len() {
        return Err("truncated protobuf".into());
    }
    Ok(())
}

/// Check a serialised `ModelProto`: an error for malformed bytes or external data.
pub fn check(model: &[u8]) -> Result<(), String> {
    walk(model, Msg::Model, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, wire: u64) -> u8 {
        u8::try_from(n << 3 | wire).unwrap()
    }

    fn len_field(n: u64, body: &[u8]) -> Vec<u8> {
        let mut v = vec![field(n, 2)];
        let mut len = body.len();
        while len >= 0x80 {
            v.push(u8::try_from(len & 0x7f).unwrap() | 0x80);
            len >>= 7;
        }
        v.push(u8::try_from(len).unwrap());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn external_tensors_are_refused_at_any_depth() {
        // A tensor with inline data (raw_data = 9) passes.
        let inline = len_field(9, &[1, 2, 3, 4]);
        let graph = len_field(5, &inline);
        assert_eq!(check(&len_field(7, &graph)), Ok(()));
        // data_location EXTERNAL as an initializer.
        let ext = [field(14, 0), 1];
        assert_eq!(
            check(&len_field(7, &len_field(5, &ext))).unwrap_err(),
            REFUSED
        );
        // external_data in a tensor attribute of a node of a subgraph of a node.
        let t = len_field(13, &len_field(1, b"location"));
        let inner_graph = len_field(1, &len_field(5, &len_field(5, &t)));
        let outer = len_field(1, &len_field(5, &len_field(6, &inner_graph)));
        assert_eq!(check(&len_field(7, &outer)).unwrap_err(), REFUSED);
        // The same field numbers outside tensors mean nothing.
        assert_eq!(check(&[field(14, 0), 1]), Ok(()));
    }

    #[test]
    fn malformed_bytes_are_errors_not_panics() {
        for bad in [
            &[0x3a, 0x05, 1][..],
            &[0xff; 11][..],
            &[field(7, 3)][..],
            &[field(7, 1), 0][..],
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        // Deep nesting stops at the bound instead of the stack.
        let nest = |levels: usize| {
            let mut g = Vec::new();
            for _ in 0..levels {
                g = len_field(1, &len_field(5, &len_field(6, &g)));
            }
            len_field(7, &g)
        };
        assert_eq!(check(&nest(20)), Ok(()));
        assert!(check(&nest(100)).unwrap_err().contains("deeper than"));
    }
}

/// The body of the fuzz target `onnx_check` (`plugins/orc-ai/fuzz`), replayed from its
/// corpus and regressions by `cargo test`.
pub mod fuzzing {
    /// Any bytes: checked without panicking, and a refusal always says why.
    pub fn check(data: &[u8]) {
        if let Err(e) = super::check(data) {
            assert!(!e.is_empty());
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn every_corpus_input_and_every_crash_found_is_replayed() {
            let fuzz = concat!(env!("CARGO_MANIFEST_DIR"), "/../orc-ai/fuzz");
            let mut n = 0;
            for dir in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(format!("{fuzz}/{dir}/onnx_check")) else {
                    continue;
                };
                for f in entries.flatten() {
                    let data = std::fs::read(f.path()).unwrap();
                    assert!(
                        std::panic::catch_unwind(|| super::check(&data)).is_ok(),
                        "{}",
                        f.path().display()
                    );
                    n += 1;
                }
            }
            assert!(n > 0, "no seed corpus for onnx_check");
        }
    }
}
