//! A small "simulation": every step it streams a field tensor and a dataset (the field plus
//! time and step metadata) into the database and records the step in an aggregation list.
//!
//! `orc run -- cargo run -p orc-client --example simulation [STEPS]`

use std::error::Error;

use orc_client::{Client, DataSet, MemoryLayout, Tensor};

fn main() -> Result<(), Box<dyn Error>> {
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let mut client = Client::from_env()?;
    let n = 8;
    for step in 0..steps {
        let t = 0.1 * step as f64;
        // u(x, t) = sin(x + t) on n points, 3 components.
        let field: Vec<f32> = (0..n)
            .flat_map(|i| {
                let x = i as f64 / n as f64 * std::f64::consts::PI;
                let v = (x + t).sin() as f32;
                [v, 0.5 * v, -v]
            })
            .collect();
        client.put_tensor_slice(
            &format!("field_{step}"),
            &field,
            &[n, 3],
            MemoryLayout::RowMajor,
        )?;
        let mut ds = DataSet::new(&format!("sim_step_{step}"))?;
        ds.add_tensor(
            "u",
            Tensor::from_slice(&field, &[n, 3], MemoryLayout::RowMajor)?,
        )?;
        ds.add_meta_scalar("time", t)?;
        ds.add_meta_scalar("step", step as i64)?;
        ds.add_meta_string("units", "m/s")?;
        client.put_dataset(&ds)?;
        client.append_to_list("sim_steps", &ds)?;
        println!("simulation: step {step} t={t:.2} written");
    }
    Ok(())
}
