//! Rewriting ONNX nodes that tract lacks into ones it runs: the node-replacing walk over a
//! model's main graph, and the initializer builders the rewrites share.

use tract_onnx::pb::{ModelProto, NodeProto, TensorProto};

/// What replaces one node: new nodes, and initializers they read.
pub(crate) type Replacement = (Vec<NodeProto>, Vec<TensorProto>);

/// Replace every node of `model`'s main graph for which `is` holds by what `expand` makes of
/// it (called with the node and its 1-based count). Returns how many were replaced.
pub(crate) fn replace_nodes(
    model: &mut ModelProto,
    is: impl Fn(&NodeProto) -> bool,
    mut expand: impl FnMut(&NodeProto, usize) -> Result<Replacement, String>,
) -> Result<usize, String> {
    let Some(graph) = model.graph.as_mut() else {
        return Ok(0);
    };
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut count = 0;
    for node in std::mem::take(&mut graph.node) {
        if !is(&node) {
            nodes.push(node);
            continue;
        }
        count += 1;
        let (new, inits) = expand(&node, count)?;
        nodes.extend(new);
        graph.initializer.extend(inits);
    }
    graph.node = nodes;
    Ok(count)
}

/// A one-dimensional initializer of `len` elements of ONNX type `data_type`, data unset.
pub(crate) fn tensor(name: String, len: usize, data_type: i32) -> TensorProto {
    TensorProto {
        name,
        dims: vec![len as i64],
        data_type,
        ..Default::default()
    }
}

/// A FLOAT initializer holding `v`.
pub(crate) fn float_tensor(name: String, v: &[f32]) -> TensorProto {
    TensorProto {
        float_data: v.to_vec(),
        ..tensor(name, v.len(), 1 /* FLOAT */)
    }
}
