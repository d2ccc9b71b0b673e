//! Off-main-thread execution: one queue per device, `THREADS_PER_QUEUE` workers each, and
//! blocked clients answered from the worker through a thread-safe context.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        mpsc::{Receiver, Sender, channel},
    },
    time::{Duration, Instant},
};

use abi_stable::std_types::{RString, RVec};
use redis_module::{BlockedClient, RedisError, RedisResult, RedisValue, ThreadSafeContext};

use crate::{
    objects::{ModelValue, ScriptValue, from_abi, to_abi},
    state::{lock, state},
    tensor::Tensor,
    types::{TENSOR_TYPE, tensorset_args},
};

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
}

/// One queued request.
pub struct Job {
    /// The key of the model or script (for statistics).
    pub key: Vec<u8>,
    /// What to run.
    pub work: Work,
    /// Input tensors, copied on the main thread.
    pub inputs: Vec<Tensor>,
    /// Keys to write the outputs to.
    pub outputs: Vec<Vec<u8>>,
    /// Longest wait in the queue before giving up with `TIMEDOUT`.
    pub timeout: Option<Duration>,
    /// When it was queued.
    pub queued: Instant,
    /// The client waiting for the answer.
    pub client: BlockedClient,
}

type Queues = Mutex<HashMap<String, Sender<Job>>>;

fn queues() -> &'static Queues {
    static Q: OnceLock<Queues> = OnceLock::new();
    Q.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Queue `job` on the queue of `device` (created with its workers on first use).
pub fn submit(device: &str, job: Job) {
    let name = device.to_ascii_uppercase();
    let mut q = lock(queues());
    let tx = q.entry(name.clone()).or_insert_with(|| {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = lock(&state().config).threads_per_queue.max(1);
        for i in 0..threads {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("orc-ai-{name}-{i}"))
                .spawn(move || worker(rx));
        }
        tx
    });
    if let Err(e) = tx.send(job) {
        // Every worker is gone (they never exit); answer rather than leave the client hanging.
        let job = e.0;
        ThreadSafeContext::with_blocked_client(job.client).reply(Err(RedisError::Str(
            "ERR the execution queue is not running",
        )));
    }
}

fn worker(rx: Arc<Mutex<Receiver<Job>>>) {
    loop {
        let job = match lock(&rx).recv() {
            Ok(j) => j,
            Err(_) => return,
        };
        let Job {
            key,
            work,
            inputs,
            outputs,
            timeout,
            queued,
            client,
        } = job;
        let tctx = ThreadSafeContext::with_blocked_client(client);
        if timeout.is_some_and(|t| queued.elapsed() > t) {
            tctx.reply(Ok(RedisValue::SimpleStringStatic("TIMEDOUT")));
            continue;
        }
        let started = Instant::now();
        let script = matches!(work, Work::Script { .. });
        let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let result = run(&work, &inputs);
            let elapsed = started.elapsed();
            let reply = match result {
                Ok(tensors) if tensors.len() != outputs.len() && !outputs.is_empty() => Err(RedisError::String(format!(
                    "ERR {} did not generate the expected number of outputs (got {}, expected {})",
                    if script { "Function" } else { "Model" },
                    tensors.len(),
                    outputs.len()
                ))),
                Ok(tensors) => {
                    record(&key, elapsed, tensors.first().and_then(|t| t.shape.first().copied()), false, script);
                    let g = tctx.lock();
                    write_outputs(&g, &outputs, tensors)
                }
                Err(e) => Err(RedisError::String(e)),
            };
            if reply.is_err() {
                record(&key, elapsed, None, true, script);
            }
            reply
        }))
        .unwrap_or_else(|_| Err(RedisError::Str("ERR orc-ai internal error while running (the server keeps running)")));
        tctx.reply(reply);
    }
}

fn run(work: &Work, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
    let ins: RVec<_> = inputs.iter().map(to_abi).collect();
    let out = match work {
        Work::Model(m) => m.0.handle.run(ins),
        Work::Script {
            script,
            function,
            keys,
            args,
        } => script.0.handle.run(
            function.as_str().into(),
            ins,
            keys.iter().map(|k| RString::from(k.as_str())).collect(),
            args.iter().map(|a| RString::from(a.as_str())).collect(),
        ),
    }
    .into_result()
    .map_err(|e| {
        let e = e.into_string();
        // Backend messages are passed through as RedisAI does; keep an ERR prefix off
        // messages that already carry one.
        if e.starts_with("ERR ") {
            e
        } else {
            format!("ERR {e}")
        }
    })?;
    out.into_iter()
        .map(|t| from_abi(t).map_err(|r| r.0))
        .collect()
}

fn write_outputs(
    ctx: &redis_module::Context,
    keys: &[Vec<u8>],
    tensors: Vec<Tensor>,
) -> RedisResult {
    for (k, t) in keys.iter().zip(tensors) {
        let key = crate::commands::key_string(ctx, k);
        let w = ctx.open_key_writable(&key);
        crate::commands::typed(w.get_value::<Tensor>(&TENSOR_TYPE))?; // WRONGTYPE for another type
        let args = tensorset_args(&t);
        w.set_value(&TENSOR_TYPE, t)?;
        let mut rep: Vec<&[u8]> = vec![k.as_slice()];
        rep.extend(args.iter().map(Vec::as_slice));
        ctx.replicate("AI.TENSORSET", rep.as_slice());
    }
    Ok(RedisValue::SimpleStringStatic("OK"))
}

fn record(key: &[u8], elapsed: Duration, samples: Option<i64>, error: bool, script: bool) {
    let mut stats = lock(&state().stats);
    if let Some((_, _, s)) = stats.get_mut(key) {
        s.calls += 1;
        s.duration_us += elapsed.as_micros() as u64;
        if error {
            s.errors += 1;
        } else if !script {
            s.samples += samples.unwrap_or(0).max(0) as u64;
        }
    }
}
