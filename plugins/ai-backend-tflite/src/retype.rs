//! A TFLite model rebuilt for given input types and shapes, every operator's output type
//! worked out again from its inputs.

use tract_tflite::internal::tract_core::ops::{binary::TypedBinOp, math::mul};
use tract_tflite::internal::*;

/// `model` with its inputs typed as `inputs`, each node wired anew (so its output facts
/// follow), and float `Scale` nodes (tract-tflite's `MEAN` divisor, which rounds to
/// integers) made plain products.
pub(crate) fn retyped(model: &TypedModel, inputs: TVec<TypedFact>) -> TractResult<TypedModel> {
    let sources = model.input_outlets()?;
    if inputs.len() != sources.len() {
        bail!(
            "the model has {} inputs, {} given",
            sources.len(),
            inputs.len()
        );
    }
    let mut target = TypedModel::default();
    let mut mapping: HashMap<OutletId, OutletId> = HashMap::new();
    for (outlet, fact) in sources.iter().zip(inputs) {
        let wire = target.add_source(model.node(outlet.node).name.clone(), fact)?;
        mapping.insert(*outlet, wire);
    }
    for id in model.eval_order()? {
        let node = model.node(id);
        if sources.iter().any(|o| o.node == id) {
            continue;
        }
        let wires: TVec<OutletId> = node.inputs.iter().map(|i| mapping[i]).collect();
        let facts = wires
            .iter()
            .map(|w| target.outlet_fact(*w).map(|f| f.datum_type))
            .collect::<TractResult<TVec<_>>>()?;
        let float_scale = node
            .op_as::<TypedBinOp>()
            .is_some_and(|b| b.0.name() == "Scale")
            && facts.len() == 2
            && facts[0].is_float()
            && facts[0] == facts[1];
        let outs = if float_scale {
            target.wire_node(&node.name, mul(), &wires)?
        } else {
            target.wire_node(&node.name, node.op.clone(), &wires)?
        };
        for (ix, o) in outs.into_iter().enumerate() {
            mapping.insert(OutletId::new(id, ix), o);
        }
    }
    let outputs: TVec<OutletId> = model.output_outlets()?.iter().map(|o| mapping[o]).collect();
    target.select_output_outlets(&outputs)?;
    Ok(target)
}
