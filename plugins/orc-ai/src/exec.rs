//! Off-main-thread execution: one queue per device, `THREADS_PER_QUEUE` workers each, and
//! blocked clients answered from the worker through a thread-safe context.
//!
//! Models stored with `BATCHSIZE` have compatible queued requests (same model, inputs of
//! the same types and shapes apart from dim 0) concatenated along dim 0, run once and split
//! again; `MINBATCHSIZE` holds a batch back until it is big enough or `MINBATCHTIMEOUT`
//! (from the first request's arrival) has passed. `TIMEOUT` bounds the wait in the queue.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Condvar, Mutex, OnceLock},
    time::{Duration, Instant},
};

use abi_stable::std_types::{RString, RVec};
use redis_module::{BlockedClient, RedisError, RedisResult, RedisValue, ThreadSafeContext};

use crate::{
    objects::{ModelValue, ScriptValue, from_abi, to_abi},
    state::{lock, state},
    tensor::{DType, Tensor},
    types::{TENSOR_TYPE, tensorset_args},
};

/// What to run.
pub enum Work {
    /// A model with its inputs.
    Model(ModelValue),
    /// A DAG of operations (answered as a whole; see [`crate::dag`]).
    Dag(Box<crate::dag::Dag>),
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

/// One device queue: jobs in arrival order, and a condition variable for its workers.
#[derive(Default)]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

type Queues = Mutex<HashMap<String, Arc<Queue>>>;

fn queues() -> &'static Queues {
    static Q: OnceLock<Queues> = OnceLock::new();
    Q.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Queue `job` on the queue of `device` (created with its workers on first use).
pub fn submit(device: &str, job: Job) {
    let name = device.to_ascii_uppercase();
    let queue = lock(queues())
        .entry(name.clone())
        .or_insert_with(|| {
            let q = Arc::new(Queue::default());
            let threads = lock(&state().config).threads_per_queue.max(1);
            for i in 0..threads {
                let q = q.clone();
                let _ = std::thread::Builder::new()
                    .name(format!("orc-ai-{name}-{i}"))
                    .spawn(move || worker(&q));
            }
            q
        })
        .clone();
    lock(&queue.jobs).push_back(job);
    queue.ready.notify_one();
}

/// The batch dimension of a request: dim 0, shared by all inputs (strings never batch).
fn batch_size(job: &Job) -> Option<u64> {
    let first = job.inputs.first()?;
    let n = *first.shape.first()?;
    let ok = job
        .inputs
        .iter()
        .all(|t| t.dtype != DType::String && t.shape.first() == Some(&n));
    ok.then_some(n as u64)
}

/// Requests that can run in one batch: the same stored model, and inputs of the same
/// types and shapes apart from dim 0.
fn compatible(a: &Job, b: &Job) -> bool {
    let (Work::Model(ma), Work::Model(mb)) = (&a.work, &b.work) else {
        return false;
    };
    Arc::ptr_eq(&ma.0, &mb.0)
        && batch_size(b).is_some()
        && a.inputs.len() == b.inputs.len()
        && a.inputs
            .iter()
            .zip(&b.inputs)
            .all(|(x, y)| x.dtype == y.dtype && x.shape[1..] == y.shape[1..])
}

/// Take the next batch from the queue (waiting for work), following BATCHSIZE,
/// MINBATCHSIZE and MINBATCHTIMEOUT of the model at the front.
fn next_batch(queue: &Queue) -> Vec<Job> {
    let mut q = lock(&queue.jobs);
    loop {
        while q.is_empty() {
            q = queue.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
        let Some(first) = q.pop_front() else { continue };
        let (bs, min, min_timeout) = match &first.work {
            Work::Model(m) => (
                m.0.meta.batch_size,
                m.0.meta.min_batch_size,
                m.0.meta.min_batch_timeout,
            ),
            Work::Script { .. } | Work::Dag(_) => (0, 0, 0),
        };
        let Some(mut total) = batch_size(&first).filter(|n| bs > 0 && *n < bs) else {
            return vec![first];
        };
        let mut batch = vec![first];
        let mut i = 0;
        while i < q.len() && total < bs {
            if compatible(&batch[0], &q[i]) {
                let job = q.remove(i).expect("index checked");
                total += batch_size(&job).unwrap_or(0);
                batch.push(job);
            } else {
                i += 1;
            }
        }
        let waited = batch[0].queued.elapsed();
        let may_wait = min_timeout == 0 || waited < Duration::from_millis(min_timeout);
        if min > 0 && total < min && may_wait {
            // Not enough yet: put the requests back in order and wait for more.
            for job in batch.into_iter().rev() {
                q.push_front(job);
            }
            q = queue
                .ready
                .wait_timeout(q, Duration::from_millis(1))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
            continue;
        }
        return batch;
    }
}

fn worker(queue: &Queue) {
    loop {
        let batch = next_batch(queue);
        // Requests whose TIMEOUT passed while queued are answered without running.
        let (late, batch): (Vec<Job>, Vec<Job>) = batch
            .into_iter()
            .partition(|j| j.timeout.is_some_and(|t| j.queued.elapsed() > t));
        for job in late {
            ThreadSafeContext::with_blocked_client(job.client)
                .reply(Ok(RedisValue::SimpleStringStatic("TIMEDOUT")));
        }
        if batch.is_empty() {
            continue;
        }
        if matches!(batch[0].work, Work::Dag(_)) {
            for job in batch {
                run_dag_job(job);
            }
            continue;
        }
        let started = Instant::now();
        let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_batch(&batch)))
            .unwrap_or_else(|_| {
                batch
                    .iter()
                    .map(|_| {
                        Err(
                            "ERR orc-ai internal error while running (the server keeps running)"
                                .to_string(),
                        )
                    })
                    .collect()
            });
        let elapsed = started.elapsed();
        for (job, result) in batch.into_iter().zip(results) {
            finish(job, result, elapsed);
        }
    }
}

/// Run one request, or several concatenated along dim 0 and split again.
fn run_batch(batch: &[Job]) -> Vec<Result<Vec<Tensor>, String>> {
    if batch.len() == 1 {
        return vec![run(&batch[0].work, &batch[0].inputs)];
    }
    let sizes: Vec<u64> = batch.iter().map(|j| batch_size(j).unwrap_or(0)).collect();
    let total: u64 = sizes.iter().sum();
    let inputs: Vec<Tensor> = (0..batch[0].inputs.len())
        .map(|k| {
            let first = &batch[0].inputs[k];
            let mut shape = first.shape.clone();
            shape[0] = total as i64;
            Tensor {
                dtype: first.dtype,
                shape,
                data: batch
                    .iter()
                    .flat_map(|j| j.inputs[k].data.iter().copied())
                    .collect::<Vec<u8>>()
                    .into(),
            }
        })
        .collect();
    let outputs = match run(&batch[0].work, &inputs) {
        Ok(o) => o,
        Err(e) => return batch.iter().map(|_| Err(e.clone())).collect(),
    };
    if outputs
        .iter()
        .any(|t| t.dtype == DType::String || t.shape.first().copied() != Some(total as i64))
    {
        return batch
            .iter()
            .map(|_| Err("ERR Model did not generate the expected batch size".to_string()))
            .collect();
    }
    let mut offset = 0u64;
    sizes
        .iter()
        .map(|n| {
            let part = outputs
                .iter()
                .map(|t| {
                    let row = t.data.len() as u64 / total;
                    let mut shape = t.shape.clone();
                    shape[0] = *n as i64;
                    let data =
                        t.data[(offset * row) as usize..((offset + n) * row) as usize].to_vec();
                    Tensor {
                        dtype: t.dtype,
                        shape,
                        data: data.into(),
                    }
                })
                .collect();
            offset += n;
            Ok(part)
        })
        .collect()
}

/// Write the outputs of one request and answer its client.
fn finish(job: Job, result: Result<Vec<Tensor>, String>, elapsed: Duration) {
    let Job {
        key,
        work,
        outputs,
        client,
        ..
    } = job;
    let script = matches!(work, Work::Script { .. });
    let tctx = ThreadSafeContext::with_blocked_client(client);
    let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let reply = match result {
            Ok(tensors) if tensors.len() != outputs.len() && !outputs.is_empty() => {
                Err(RedisError::String(format!(
                    "ERR {} did not generate the expected number of outputs (got {}, expected {})",
                    if script { "Function" } else { "Model" },
                    tensors.len(),
                    outputs.len()
                )))
            }
            Ok(tensors) => {
                record(
                    &key,
                    elapsed,
                    tensors.first().and_then(|t| t.shape.first().copied()),
                    false,
                    script,
                );
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
    .unwrap_or_else(|_| {
        Err(RedisError::Str(
            "ERR orc-ai internal error while writing results (the server keeps running)",
        ))
    });
    tctx.reply(reply);
}

fn run(work: &Work, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
    let ins: RVec<_> = inputs.iter().map(to_abi).collect();
    let out = match work {
        Work::Dag(_) => return Err("ERR a DAG cannot run as a single operation".into()),
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

/// Run a DAG's operations in order on DAG-local tensors, then (all succeeded) persist,
/// and answer with one element per operation.
fn run_dag_job(job: Job) {
    let Job { work, client, .. } = job;
    let Work::Dag(dag) = work else { return };
    let tctx = ThreadSafeContext::with_blocked_client(client);
    let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let crate::dag::Dag {
            mut tensors,
            ops,
            persist,
            ..
        } = *dag;
        let mut replies = Vec::with_capacity(ops.len());
        let mut failed = false;
        for op in &ops {
            if failed {
                replies.push(RedisValue::SimpleStringStatic("NA"));
                continue;
            }
            let step: Result<RedisValue, String> = match op {
                crate::dag::Op::Set => Ok(RedisValue::SimpleStringStatic("OK")),
                crate::dag::Op::Get { name, format } => Ok(match tensors.get(name) {
                    Some(t) => crate::commands::tensor_reply(t, *format),
                    None => RedisValue::SimpleStringStatic("NA"),
                }),
                crate::dag::Op::Model {
                    model,
                    key,
                    inputs,
                    outputs,
                } => {
                    let ins: Vec<Tensor> = inputs
                        .iter()
                        .filter_map(|n| tensors.get(n).cloned())
                        .collect();
                    let started = Instant::now();
                    let r = run(&Work::Model(model.clone()), &ins).and_then(|outs| {
                        if outs.len() == outputs.len() {
                            Ok(outs)
                        } else {
                            Err("ERR Model did not generate the expected number of outputs".into())
                        }
                    });
                    record(
                        key,
                        started.elapsed(),
                        r.as_ref()
                            .ok()
                            .and_then(|o| o.first())
                            .and_then(|t| t.shape.first().copied()),
                        r.is_err(),
                        false,
                    );
                    r.map(|outs| {
                        tensors.extend(outputs.iter().cloned().zip(outs));
                        RedisValue::SimpleStringStatic("OK")
                    })
                }
                crate::dag::Op::Script {
                    script,
                    key,
                    function,
                    keys,
                    args,
                    inputs,
                    outputs,
                } => {
                    let ins: Vec<Tensor> = inputs
                        .iter()
                        .filter_map(|n| tensors.get(n).cloned())
                        .collect();
                    let started = Instant::now();
                    let work = Work::Script {
                        script: script.clone(),
                        function: function.clone(),
                        keys: keys.clone(),
                        args: args.clone(),
                    };
                    let r = run(&work, &ins).and_then(|outs| {
                        if outputs.is_empty() || outs.len() == outputs.len() {
                            Ok(outs)
                        } else {
                            Err(format!(
                                "ERR Function returned unexpected number of outputs - {function}"
                            ))
                        }
                    });
                    record(key, started.elapsed(), None, r.is_err(), true);
                    r.map(|outs| {
                        tensors.extend(outputs.iter().cloned().zip(outs));
                        RedisValue::SimpleStringStatic("OK")
                    })
                }
            };
            match step {
                Ok(v) => replies.push(v),
                Err(e) => {
                    failed = true;
                    replies.push(RedisValue::StaticError(static_error(e)));
                }
            }
        }
        if !failed && !persist.is_empty() {
            let g = tctx.lock();
            let outs: Vec<Tensor> = persist
                .iter()
                .filter_map(|p| tensors.get(p).cloned())
                .collect();
            write_outputs(&g, &persist, outs)?;
        }
        Ok(RedisValue::Array(replies))
    }))
    .unwrap_or_else(|_| {
        Err(RedisError::Str(
            "ERR orc-ai internal error while running a DAG (the server keeps running)",
        ))
    });
    tctx.reply(reply);
}

/// Error elements inside an array reply must be `&'static str` in redis-module; messages are
/// interned (bounded: past 1024 distinct messages a generic one is used and the detail
/// goes to the server log).
fn static_error(msg: String) -> &'static str {
    static SEEN: OnceLock<Mutex<std::collections::HashSet<&'static str>>> = OnceLock::new();
    let mut seen = lock(SEEN.get_or_init(Default::default));
    if let Some(s) = seen.get(msg.as_str()) {
        return s;
    }
    if seen.len() >= 1024 {
        redis_module::logging::log_warning(format!("orc-ai DAG operation failed: {msg}"));
        return "ERR the operation failed (details in the server log)";
    }
    let s: &'static str = Box::leak(msg.into_boxed_str());
    seen.insert(s);
    s
}
