//! Checks a TFLite flatbuffer before tract reads it. tract-tflite indexes the model's tables
//! with the indices the file gives (and panics on a bad one); every index it will follow is
//! looked at here first, so that a damaged or hostile file, or one using what tract-tflite
//! cannot run, gets a clear error. Negative reduction axes (`MEAN(x, -1)`, as every layer
//! norm has), which tract-tflite takes for huge positive ones, are rewritten to their
//! positive form in a copy of the model.

use std::borrow::Cow;

use tract_tflite::tflite::{self, BuiltinOperator};

/// Reductions whose second input is the list of axes.
const REDUCTIONS: [BuiltinOperator; 7] = [
    BuiltinOperator::MEAN,
    BuiltinOperator::SUM,
    BuiltinOperator::REDUCE_PROD,
    BuiltinOperator::REDUCE_MAX,
    BuiltinOperator::REDUCE_MIN,
    BuiltinOperator::REDUCE_ANY,
    BuiltinOperator::REDUCE_ALL,
];

fn op_code(code: &tflite::OperatorCode<'_>) -> BuiltinOperator {
    let old = i32::from(code.deprecated_builtin_code());
    if old == BuiltinOperator::PLACEHOLDER_FOR_GREATER_OP_CODES.0 {
        code.builtin_code()
    } else {
        BuiltinOperator(old)
    }
}

fn op_name(op: BuiltinOperator) -> String {
    op.variant_name()
        .map_or_else(|| format!("operator code {}", op.0), str::to_string)
}

/// An axes constant to rewrite: where its i32 values lie in the model, and the rank of the
/// tensor they reduce.
struct AxesFix {
    offset: usize,
    count: usize,
    rank: i32,
}

/// Check `blob`; return it, or a copy with negative reduction axes made positive.
pub(crate) fn prepare(blob: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    let bad = |what: &str| format!("Invalid TFLite model: {what}");
    let model = tflite::root_as_model(blob).map_err(|e| bad(&e.to_string()))?;
    let graph = model
        .subgraphs()
        .and_then(|g| (!g.is_empty()).then(|| g.get(0)))
        .ok_or_else(|| bad("no subgraph"))?;
    let codes = model
        .operator_codes()
        .ok_or_else(|| bad("no operator codes"))?;
    let buffers = model.buffers().ok_or_else(|| bad("no buffers"))?;
    let tensors = graph.tensors().ok_or_else(|| bad("no tensors"))?;
    let n = tensors.len();
    for (i, t) in tensors.iter().enumerate() {
        if t.name().is_none() || t.shape().is_none() {
            return Err(bad(&format!("tensor #{i} has no name or no shape")));
        }
        if t.buffer() as usize >= buffers.len() {
            return Err(bad(&format!(
                "tensor #{i} names buffer #{} of {}",
                t.buffer(),
                buffers.len()
            )));
        }
    }
    let index = |i: i32, what: &str| {
        usize::try_from(i)
            .ok()
            .filter(|i| *i < n)
            .ok_or_else(|| bad(&format!("{what} names tensor #{i} of {n}")))
    };
    for (list, what) in [(graph.inputs(), "input"), (graph.outputs(), "output")] {
        for i in list.ok_or_else(|| bad(&format!("no {what} list")))? {
            index(i, &format!("a model {what}"))?;
        }
    }
    let ops = graph.operators().ok_or_else(|| bad("no operators"))?;
    let mut fixes = Vec::new();
    for (k, op) in ops.iter().enumerate() {
        let code = usize::try_from(op.opcode_index())
            .ok()
            .filter(|c| *c < codes.len())
            .ok_or_else(|| bad(&format!("operator #{k} has an unknown operator code")))?;
        let code = op_code(&codes.get(code));
        let name = op_name(code);
        let (Some(inputs), Some(outputs)) = (op.inputs(), op.outputs()) else {
            return Err(bad(&format!(
                "operator #{k} ({name}) lists no inputs or outputs"
            )));
        };
        if outputs.is_empty() {
            return Err(bad(&format!("operator #{k} ({name}) has no output")));
        }
        for o in outputs {
            index(o, &format!("operator #{k} ({name})"))?;
        }
        for (j, i) in inputs.iter().enumerate() {
            if i == -1 {
                return Err(format!(
                    "the TFLITE backend (tract-tflite) cannot run operator #{k} ({name}): it leaves \
                     out its optional input #{j} (e.g. a layer without bias); give the layer a bias"
                ));
            }
            index(i, &format!("operator #{k} ({name})"))?;
        }
        if REDUCTIONS.contains(&code) && inputs.len() == 2 {
            let rank = tensors
                .get(inputs.get(0) as usize)
                .shape()
                .map_or(0, |s| s.len());
            let axes = tensors.get(inputs.get(1) as usize);
            if let Some(data) = buffers.get(axes.buffer() as usize).data() {
                let bytes = data.bytes();
                let values = bytes
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                let rank = i32::try_from(rank).map_err(|_| bad("rank too large"))?;
                if values.clone().any(|a| a < -rank || a >= rank) {
                    return Err(bad(&format!(
                        "operator #{k} ({name}) reduces an axis outside its input's {rank} dimensions"
                    )));
                }
                if values.clone().any(|a| a < 0) {
                    fixes.push(AxesFix {
                        offset: bytes.as_ptr() as usize - blob.as_ptr() as usize,
                        count: bytes.len() / 4,
                        rank,
                    });
                }
            }
        }
    }
    if fixes.is_empty() {
        return Ok(Cow::Borrowed(blob));
    }
    // A buffer shared by several constants is rewritten once, for the rank of its first
    // reduction; another use of it with another rank or as something else is refused.
    let mut copy = blob.to_vec();
    fixes.sort_by_key(|f| f.offset);
    fixes.dedup_by(|b, a| {
        let same = a.offset == b.offset;
        if same && a.rank != b.rank {
            a.rank = -1;
        }
        same
    });
    for f in &fixes {
        if f.rank < 0 || shared_beyond_reductions(&model, f.offset, blob) {
            return Err(
                "the TFLITE backend (tract-tflite) cannot run this model: a negative \
                        reduction axis sits in a constant shared with other operators"
                    .to_string(),
            );
        }
        for v in copy[f.offset..f.offset + 4 * f.count].chunks_exact_mut(4) {
            let a = i32::from_le_bytes([v[0], v[1], v[2], v[3]]);
            if a < 0 {
                v.copy_from_slice(&(a + f.rank).to_le_bytes());
            }
        }
    }
    Ok(Cow::Owned(copy))
}

/// Whether the buffer whose data starts at `offset` feeds anything but a reduction's axes.
fn shared_beyond_reductions(model: &tflite::Model<'_>, offset: usize, blob: &[u8]) -> bool {
    let (Some(graph), Some(codes), Some(buffers)) =
        (model.subgraphs(), model.operator_codes(), model.buffers())
    else {
        return true;
    };
    let graph = graph.get(0);
    let (Some(tensors), Some(ops)) = (graph.tensors(), graph.operators()) else {
        return true;
    };
    let at = |t: i32| {
        buffers
            .get(tensors.get(t as usize).buffer() as usize)
            .data()
            .is_some_and(|d| d.bytes().as_ptr() as usize - blob.as_ptr() as usize == offset)
    };
    ops.iter().any(|op| {
        let code = op_code(&codes.get(op.opcode_index() as usize));
        op.inputs().is_some_and(|inputs| {
            inputs
                .iter()
                .enumerate()
                .any(|(j, t)| at(t) && !(REDUCTIONS.contains(&code) && j == 1))
        })
    })
}
