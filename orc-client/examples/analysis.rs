//! A small "analysis": waits for the simulation's steps, stores a model in the database,
//! runs it next to the data on every step's field, and writes the results back as tensors
//! and a summary dataset.
//!
//! `orc run -- cargo run -p orc-client --example analysis [STEPS] [MODEL.onnx]`

use std::error::Error;

use orc_client::{Client, DataSet, MemoryLayout, ModelOptions, Tensor};

fn main() -> Result<(), Box<dyn Error>> {
    let steps: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let model = std::env::args().nth(2).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/models/linear.onnx"
        )
        .into()
    });
    let mut client = Client::from_env()?;
    // y = x W + b maps each 3-component point to 2 outputs.
    client.set_model_from_file("surrogate", model.as_ref(), "ONNX", &ModelOptions::cpu())?;
    if !client.poll_list_length_gte("sim_steps", steps, 100, 600)? {
        return Err("the simulation did not write its steps in time".into());
    }
    let mut summary = DataSet::new("analysis_summary")?;
    for ds in client.get_dataset_list_range("sim_steps", 0, steps as i64 - 1)? {
        let step = ds.get_meta_scalars::<i64>("step")?[0];
        let time = ds.get_meta_scalars::<f64>("time")?[0];
        let input = format!("analysis_in_{step}");
        let output = format!("prediction_{step}");
        client.put_tensor(&input, ds.get_tensor("u")?)?;
        client.run_model("surrogate", &[&input], &[&output])?;
        let pred: Vec<f32> = client.get_tensor(&output)?.to_vec(MemoryLayout::RowMajor)?;
        let mean = pred.iter().sum::<f32>() / pred.len() as f32;
        summary.add_meta_scalar("mean", mean as f64)?;
        summary.add_meta_scalar("time", time)?;
        println!("analysis: step {step} t={time:.2} prediction mean {mean:8.4}");
    }
    summary.add_tensor(
        "steps",
        Tensor::from_slice(&[steps as i64], &[1], MemoryLayout::RowMajor)?,
    )?;
    client.put_dataset(&summary)?;
    println!("analysis: summary dataset written");
    Ok(())
}
