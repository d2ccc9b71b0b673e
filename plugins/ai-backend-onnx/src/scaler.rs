//! `ai.onnx.ml.Scaler` (what scikit-learn's `StandardScaler` exports to), which tract does
//! not implement, as the standard operators it means: `Y = (float(X) - offset) * scale`,
//! with `offset` and `scale` broadcast along the last dimension.

use tract_onnx::pb::{AttributeProto, ModelProto, NodeProto, attribute_proto::AttributeType};

use crate::rewrite::{Replacement, float_tensor, replace_nodes};

/// Replace every Scaler of `model`'s main graph. Returns how many.
pub(crate) fn rewrite(model: &mut ModelProto) -> Result<usize, String> {
    replace_nodes(
        model,
        |n| n.op_type == "Scaler" && n.domain == "ai.onnx.ml",
        expand,
    )
}

fn expand(node: &NodeProto, count: usize) -> Result<Replacement, String> {
    let (Some(input), Some(output)) = (node.input.first(), node.output.first()) else {
        return Err("Scaler needs one input and one output".into());
    };
    let attr = |name: &str| {
        node.attribute
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.floats.clone())
            .unwrap_or_default()
    };
    let (offset, scale) = (attr("offset"), attr("scale"));
    let base = format!("orc_scaler_{count}");
    let op =
        |op: &str, inputs: Vec<String>, out: String, attribute: Vec<AttributeProto>| NodeProto {
            op_type: op.into(),
            input: inputs,
            output: vec![out],
            name: format!("{base}_{}", op.to_ascii_lowercase()),
            attribute,
            ..Default::default()
        };
    let to_float = AttributeProto {
        name: "to".into(),
        r#type: AttributeType::Int as i32,
        i: 1, /* FLOAT */
        ..Default::default()
    };
    let (x, centred) = (format!("{base}_x"), format!("{base}_centred"));
    let nodes = vec![
        op("Cast", vec![input.clone()], x.clone(), vec![to_float]),
        op(
            "Sub",
            vec![x, format!("{base}_offset")],
            centred.clone(),
            vec![],
        ),
        op(
            "Mul",
            vec![centred, format!("{base}_scale")],
            output.clone(),
            vec![],
        ),
    ];
    let or_neutral = |v: Vec<f32>, neutral: f32| if v.is_empty() { vec![neutral] } else { v };
    let inits = vec![
        float_tensor(format!("{base}_offset"), &or_neutral(offset, 0.0)),
        float_tensor(format!("{base}_scale"), &or_neutral(scale, 1.0)),
    ];
    Ok((nodes, inits))
}
