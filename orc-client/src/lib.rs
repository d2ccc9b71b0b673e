//! **orc-client**: the SmartRedis client for Rust. Simulations and ML code stream tensors,
//! datasets and aggregation lists into an orc (or any RedisAI-compatible) database, and run
//! models and scripts next to the data.
//!
//! It is byte-compatible with SmartRedis on the wire and in the database (key names and hash
//! tags, dataset metadata encoding, the `.COMPLETE` mark, list entries, per-shard model and
//! script copies, temporary keys for cluster runs), so data written by either client is read
//! by the other. Where SmartRedis is weak it does better: the slot map is refreshed on MOVED,
//! MOVED and ASK are followed, transient failures are retried within the configured timeouts,
//! multi-chunk models come back intact, and multi-GPU copies use the documented range.
//!
//! * [`Client`] — the API; [`Config`] — from the SmartRedis environment or a builder;
//! * [`Tensor`], [`TensorType`], [`MemoryLayout`] — the 8 SmartRedis types, row- and
//!   column-major (Fortran) layouts; [`DataSet`] — tensors plus metadata;
//! * [`hash_slot`] — CRC16 routing, computed in the client.
//!
//! Crate features: `tokio` ([`AsyncClient`], the same client on a blocking thread pool),
//! `ndarray` (conversions).
//!
//! ```no_run
//! use orc_client::{Client, DataSet, MemoryLayout, ModelOptions, Tensor};
//!
//! let mut client = Client::from_env()?; // SSDB / SR_DB_TYPE, as `orc run` sets them
//! client.put_tensor_slice("u", &[1.0f32, 2.0, 3.0, 4.0], &[2, 2], MemoryLayout::RowMajor)?;
//! let mut ds = DataSet::new("step_1")?;
//! ds.add_tensor("u", client.get_tensor("u")?)?;
//! ds.add_meta_scalar("time", 0.5f64)?;
//! client.put_dataset(&ds)?;
//! client.append_to_list("steps", &ds)?;
//! client.set_model_from_file("m", "model.onnx".as_ref(), "ONNX", &ModelOptions::cpu())?;
//! client.run_model("m", &["u"], &["v"])?;
//! let v: Tensor = client.get_tensor("v")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Routing works without a server:
//!
//! ```
//! assert_eq!(orc_client::hash_slot(b"{sim.0}.a"), orc_client::hash_slot(b"{sim.0}.b"));
//! ```
#![deny(missing_docs)]

#[cfg(feature = "tokio")]
mod async_client;
mod client;
mod config;
mod connection;
mod dataset;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod logging;
mod resp;
mod slot;
mod tensor;
#[cfg(feature = "tls")]
mod tls;
mod transport;

#[cfg(feature = "tokio")]
pub use async_client::AsyncClient;
pub use client::{Client, ModelOptions};
pub use config::{
    Config, DEFAULT_MAX_REPLY_SIZE, DEFAULT_SPIN_WAIT_US, MAX_SPIN_WAIT_US, parse_ssdb,
};
pub use dataset::{DataSet, MetaScalar, MetaType};
pub use error::{Error, Result};
pub use slot::{SLOTS, crc16, hash_slot, hash_tag, shard_prefix};
pub use tensor::{Element, MemoryLayout, Tensor, TensorType};
pub use transport::Shard;
