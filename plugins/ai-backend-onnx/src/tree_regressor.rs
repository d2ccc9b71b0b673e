//! `ai.onnx.ml.TreeEnsembleRegressor` (what scikit-learn tree and forest regressors export
//! to), which tract does not implement, expressed with the operators tract does run: the
//! node becomes a `TreeEnsembleClassifier` whose per-class scores are the regression
//! targets, followed by a `Slice` that keeps the `n_targets` target columns.
//!
//! The two evaluate the same trees with the same leaf weights; the classifier always sums
//! over trees, so an `AVERAGE` regressor has its weights divided by the number of trees.

use std::collections::BTreeSet;

use crate::rewrite::{replace_nodes, tensor};

use tract_onnx::pb::{
    AttributeProto, ModelProto, NodeProto, TensorProto, attribute_proto::AttributeType,
};

/// At least three labels keep tract's two-class "binary layout" special case away.
const MIN_LABELS: i64 = 3;

fn ints(name: &str, v: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v,
        ..Default::default()
    }
}

fn floats(name: &str, v: Vec<f32>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Floats as i32,
        floats: v,
        ..Default::default()
    }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn int64_tensor(name: String, v: i64) -> TensorProto {
    TensorProto {
        int64_data: vec![v],
        ..tensor(name, 1, 7 /* INT64 */)
    }
}

/// Replace every TreeEnsembleRegressor of `model`'s main graph. Returns how many.
pub(crate) fn rewrite(model: &mut ModelProto) -> Result<usize, String> {
    replace_nodes(
        model,
        |n| n.op_type == "TreeEnsembleRegressor",
        |node, n| {
            let (classifier, slice, inits) = expand(node, n)?;
            Ok((vec![classifier, slice], inits))
        },
    )
}

fn expand(node: &NodeProto, n: usize) -> Result<(NodeProto, NodeProto, Vec<TensorProto>), String> {
    let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
    let n_targets = attr("n_targets").map(|a| a.i).unwrap_or(1).max(1);
    let aggregate = attr("aggregate_function")
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
        .unwrap_or_else(|| "SUM".into());
    let post = attr("post_transform")
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
        .unwrap_or_else(|| "NONE".into());
    if post != "NONE" {
        return Err(format!(
            "TreeEnsembleRegressor with post_transform {post} is not supported"
        ));
    }
    let mut weights: Vec<f32> = attr("target_weights")
        .map(|a| a.floats.clone())
        .unwrap_or_default();
    match aggregate.as_str() {
        "SUM" => {}
        "AVERAGE" => {
            let trees: BTreeSet<i64> = attr("nodes_treeids")
                .map(|a| a.ints.iter().copied().collect())
                .unwrap_or_default();
            let k = trees.len().max(1) as f32;
            weights.iter_mut().for_each(|w| *w /= k);
        }
        other => {
            return Err(format!(
                "TreeEnsembleRegressor with aggregate_function {other} is not supported"
            ));
        }
    }
    let labels = n_targets.max(MIN_LABELS);
    let mut attrs: Vec<AttributeProto> = node
        .attribute
        .iter()
        .filter(|a| a.name.starts_with("nodes_"))
        .cloned()
        .collect();
    for (from, to) in [
        ("target_treeids", "class_treeids"),
        ("target_nodeids", "class_nodeids"),
        ("target_ids", "class_ids"),
    ] {
        attrs.push(ints(
            to,
            attr(from).map(|a| a.ints.clone()).unwrap_or_default(),
        ));
    }
    attrs.push(floats("class_weights", weights));
    attrs.push(ints("classlabels_int64s", (0..labels).collect()));
    let mut base: Vec<f32> = attr("base_values")
        .map(|a| a.floats.clone())
        .unwrap_or_default();
    if !base.is_empty() {
        base.resize(labels as usize, 0.0);
        attrs.push(floats("base_values", base));
    }
    attrs.push(string("post_transform", "NONE"));
    let prefix = format!(
        "{}__orc_tree_regressor_{n}",
        if node.name.is_empty() {
            "node"
        } else {
            &node.name
        }
    );
    let scores = format!("{prefix}_scores");
    let classifier = NodeProto {
        name: format!("{prefix}_classifier"),
        op_type: "TreeEnsembleClassifier".into(),
        domain: "ai.onnx.ml".into(),
        input: node.input.clone(),
        output: vec![format!("{prefix}_label"), scores.clone()],
        attribute: attrs,
        ..Default::default()
    };
    let (starts, ends, axes) = (
        format!("{prefix}_starts"),
        format!("{prefix}_ends"),
        format!("{prefix}_axes"),
    );
    let output = node
        .output
        .first()
        .cloned()
        .ok_or("TreeEnsembleRegressor without an output")?;
    let slice = NodeProto {
        name: format!("{prefix}_slice"),
        op_type: "Slice".into(),
        input: vec![scores, starts.clone(), ends.clone(), axes.clone()],
        output: vec![output],
        ..Default::default()
    };
    Ok((
        classifier,
        slice,
        vec![
            int64_tensor(starts, 0),
            int64_tensor(ends, n_targets),
            int64_tensor(axes, 1),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use tract_onnx::prelude::*;

    fn fixture(name: &str) -> String {
        format!(
            "{}/../../tests/data/models/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    #[test]
    fn a_scikit_learn_forest_matches_scikit_learn() {
        let blob = std::fs::read(fixture("skl_rfreg.onnx")).unwrap();
        let onnx = tract_onnx::onnx();
        let mut proto = onnx.proto_model_for_read(&mut &blob[..]).unwrap();
        assert_eq!(super::rewrite(&mut proto).unwrap(), 1);
        assert!(
            proto
                .graph
                .as_ref()
                .unwrap()
                .node
                .iter()
                .all(|n| n.op_type != "TreeEnsembleRegressor")
        );
        let expected = std::fs::read_to_string(fixture("skl_rfreg_expected.txt")).unwrap();
        let rows: Vec<Vec<f32>> = expected
            .lines()
            .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
            .collect();
        let model = onnx
            .model_for_proto_model(&proto)
            .unwrap()
            .with_input_fact(0, f32::fact([5, 4]).into())
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let x = Tensor::from_shape(&[5, 4], &rows[0]).unwrap();
        let y = model.run(tvec!(x.into_tvalue())).unwrap();
        let got = y[0].to_plain_array_view::<f32>().unwrap();
        assert_eq!(got.shape(), &[5, 1]);
        for (g, e) in got.iter().zip(&rows[1]) {
            assert!((g - e).abs() < 1e-4, "got {g}, scikit-learn says {e}");
        }
    }
}
