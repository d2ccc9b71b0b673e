//! Off-main-thread execution: one queue per device, `THREADS_PER_QUEUE` workers each,
//! blocked clients answered from the worker, and a watchdog for runs that outlive
//! `MODEL_EXECUTION_TIMEOUT`.
//!
//! Models stored with `BATCHSIZE` have compatible queued requests (same model, inputs of
//! the same types and shapes apart from dim 0) concatenated along dim 0, run once and split
//! again; `MINBATCHSIZE` holds such a group back until it is big enough or
//! `MINBATCHTIMEOUT` (from its first request's arrival) has passed, while every other
//! request in the queue keeps running. A request's `TIMEOUT` is answered by Redis itself
//! (`TIMEDOUT`), whether the request is still queued or already running; a running one is
//! interrupted and writes no outputs. The number of queues is bounded by
//! `MAX_DEVICE_QUEUES`; a queue idle for a minute is closed and its threads end.

pub mod inline;
mod queue;
mod run;
mod watchdog;

use std::{sync::Arc, time::Instant};

pub use queue::{device_queues, submit};
pub use watchdog::{abandoned_workers, timed_out_runs};

use crate::{
    blocked::Ticket,
    dag::Dag,
    objects::{ModelValue, ScriptValue},
    tensor::Tensor,
};

/// A DAG over stored models and scripts.
pub type StoredDag = Dag<ModelValue, ScriptValue>;

/// What to run.
pub enum Work {
    /// A model with its inputs.
    Model(ModelValue),
    /// A script function with inputs, keys and args.
    Script {
        /// The script.
        script: ScriptValue,
        /// The function.
        function: String,
        /// KEYS.
        keys: Vec<String>,
        /// ARGS.
        args: Vec<String>,
    },
    /// A DAG of operations (answered as a whole; see [`crate::dag`]).
    Dag(Box<StoredDag>),
}

/// One queued request.
pub struct Job {
    /// What to run.
    pub work: Work,
    /// Input tensors (shared with the keyspace, not copied).
    pub inputs: Vec<Tensor>,
    /// Keys to write the outputs to.
    pub outputs: Vec<Vec<u8>>,
    /// When it was queued.
    pub queued: Instant,
    /// The client waiting for the answer.
    pub ticket: Arc<Ticket>,
    /// Counted as in flight while it lives.
    flight: inline::Flight,
}

impl Job {
    /// A request for `work` on `inputs`, writing `outputs`, answered through `ticket`.
    pub fn new(work: Work, inputs: Vec<Tensor>, outputs: Vec<Vec<u8>>, ticket: Arc<Ticket>) -> Job {
        Job {
            work,
            inputs,
            outputs,
            queued: Instant::now(),
            ticket,
            flight: inline::Flight::start(),
        }
    }
}
