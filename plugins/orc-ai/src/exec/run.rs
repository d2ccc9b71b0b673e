//! Running what a worker takes from its queue, and answering its clients.

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use abi_stable::std_types::{RSlice, RString};
use redis_module::{Context, RedisError};

use super::{Job, StoredDag, Work, queue::Queue, watchdog::Running};
use crate::{
    config::Limits,
    dag::Op,
    keys::{key_string, typed},
    objects::{Stats, from_abi, view_of},
    state::{limits, lock},
    tensor::{DType, GetFormat, Tensor},
    types::{TENSOR_TYPE, tensorset_args},
};

/// A worker: take batches until the queue closes or the watchdog replaced this thread.
/// A panic outside the guarded calls (a bug) is logged and the worker carries on; the
/// requests it held are answered as their tickets drop.
pub(super) fn worker(q: &Arc<Queue>) {
    loop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(q))) {
            Ok(()) => return,
            Err(p) => crate::state::log_warning(format!(
                "orc-ai: a worker of queue {} panicked (bug), and carries on: {}",
                q.name,
                orc_ai_backend_abi::panic_message(&*p)
            )),
        }
    }
}

fn work(q: &Arc<Queue>) {
    while let Some(batch) = super::queue::next_batch(q) {
        // Requests whose clients timed out or left while queued are not run.
        let (gone, live): (Vec<Job>, Vec<Job>) =
            batch.into_iter().partition(|j| j.ticket.interrupted());
        for j in gone {
            j.ticket.answer(|_, _| {});
        }
        if live.is_empty() {
            continue;
        }
        let running = Running::start(q, live.iter().map(|j| j.ticket.clone()).collect());
        let limits = limits();
        if matches!(live[0].work, Work::Dag(_)) {
            for job in live {
                run_dag(job, &running, &limits);
            }
        } else {
            let started = Instant::now();
            let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_batch(&live, &running.interrupt, &limits)
            }))
            .unwrap_or_else(|_| {
                live.iter()
                    .map(|_| {
                        Err(
                            "ERR orc-ai internal error while running (the server keeps running)"
                                .to_string(),
                        )
                    })
                    .collect()
            });
            let results = running.settle(results);
            let elapsed = started.elapsed();
            let max = super::inline::max_us();
            if let [job] = live.as_slice()
                && max > 0
                && let Some(p) = super::inline::pace_of(&job.work)
            {
                p.record(
                    super::inline::signature(&job.work, &job.inputs),
                    elapsed,
                    max,
                );
            }
            for (job, result) in live.into_iter().zip(results) {
                finish(job, result, elapsed);
            }
        }
        if running.finish() {
            return; // the watchdog gave this queue another worker
        }
    }
}

/// Run one piece of work once.
pub(super) fn run(
    work: &Work,
    inputs: &[Tensor],
    interrupt: &AtomicBool,
    limits: &Limits,
) -> Result<Vec<Tensor>, String> {
    let views: Vec<_> = inputs.iter().map(view_of).collect();
    let ins = RSlice::from_slice(&views);
    let out = match work {
        Work::Dag(_) => return Err("ERR a DAG cannot run as a single operation".into()),
        Work::Model(m) => m.0.handle()?.run(ins, interrupt),
        Work::Script {
            script,
            function,
            keys,
            args,
        } => script.0.handle()?.run(
            function.as_str().into(),
            ins,
            keys.iter().map(|k| RString::from(k.as_str())).collect(),
            args.iter().map(|a| RString::from(a.as_str())).collect(),
            interrupt,
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
        .map(|t| from_abi(t, limits).map_err(|r| r.0))
        .collect()
}

/// The batch dimension of a request.
fn rows(job: &Job) -> u64 {
    job.inputs
        .first()
        .and_then(|t| t.shape.first())
        .map_or(0, |n| *n as u64)
}

/// Run one request, or several concatenated along dim 0 and split again.
fn run_batch(
    batch: &[Job],
    interrupt: &AtomicBool,
    limits: &Limits,
) -> Vec<Result<Vec<Tensor>, String>> {
    if batch.len() == 1 {
        return vec![run(&batch[0].work, &batch[0].inputs, interrupt, limits)];
    }
    let sizes: Vec<u64> = batch.iter().map(rows).collect();
    let total: u64 = sizes.iter().sum();
    let inputs: Result<Vec<Tensor>, String> = (0..batch[0].inputs.len())
        .map(|k| {
            let first = &batch[0].inputs[k];
            let mut shape = first.shape.clone();
            shape[0] = total as i64;
            let data: Vec<u8> = batch
                .iter()
                .flat_map(|j| j.inputs[k].data.iter().copied())
                .collect();
            Tensor::new_limited(first.dtype, shape, data.into(), limits).map_err(|e| e.0)
        })
        .collect();
    let outputs = match inputs.and_then(|i| run(&batch[0].work, &i, interrupt, limits)) {
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
                    let row = (t.data.len() as u64).checked_div(total).unwrap_or(0);
                    let mut shape = t.shape.clone();
                    shape[0] = *n as i64;
                    let data =
                        t.data[(offset * row) as usize..((offset + n) * row) as usize].to_vec();
                    Tensor::new(t.dtype, shape, data.into()).map_err(|e| e.0)
                })
                .collect();
            offset += n;
            part
        })
        .collect()
}

fn record(stats: &std::sync::Mutex<Stats>, elapsed: Duration, samples: Option<i64>, error: bool) {
    let mut s = lock(stats);
    s.calls += 1;
    s.duration_us += elapsed.as_micros() as u64;
    if error {
        s.errors += 1;
    } else {
        s.samples += samples.unwrap_or(0).max(0) as u64;
    }
}

/// The statistics a piece of work counts into.
fn stats_of(work: &Work) -> Option<&std::sync::Mutex<Stats>> {
    match work {
        Work::Model(m) => Some(&m.0.stats),
        Work::Script { script, .. } => Some(&script.0.stats),
        Work::Dag(_) => None,
    }
}

/// A run's outputs, or the error when they are not as many as the request names.
pub(super) fn checked_outputs(
    work: &Work,
    result: Result<Vec<Tensor>, String>,
    expected: usize,
) -> Result<Vec<Tensor>, String> {
    result.and_then(|tensors| {
        if tensors.len() != expected && expected != 0 {
            Err(format!(
                "ERR {} did not generate the expected number of outputs (got {}, expected {})",
                if matches!(work, Work::Script { .. }) {
                    "Function"
                } else {
                    "Model"
                },
                tensors.len(),
                expected
            ))
        } else {
            Ok(tensors)
        }
    })
}

/// Count a run of one request into its object's statistics.
pub(super) fn record_stats(work: &Work, result: &Result<Vec<Tensor>, String>, elapsed: Duration) {
    if let Some(stats) = stats_of(work) {
        let samples = match result {
            Ok(t) if !matches!(work, Work::Script { .. }) => {
                t.first().and_then(|t| t.shape.first().copied())
            }
            _ => None,
        };
        record(stats, elapsed, samples, result.is_err());
    }
}

/// Write the outputs of one request and answer its client.
fn finish(job: Job, result: Result<Vec<Tensor>, String>, elapsed: Duration) {
    let Job {
        work,
        outputs,
        ticket,
        flight,
        ..
    } = job;
    let result = checked_outputs(&work, result, outputs.len());
    record_stats(&work, &result, elapsed);
    // Let go of the model or script before the client hears back: a DEL right after the
    // answer frees the object at once; and the run is over for the inline path's count.
    drop((work, flight));
    ticket.answer(|ctx, out| match result {
        Ok(tensors) => match write_outputs(ctx, &outputs, tensors) {
            Ok(()) => out.simple("OK"),
            Err(e) => out.error(&e),
        },
        Err(e) => out.error(&e),
    });
}

/// Store `tensors` under `keys` (under the GIL, in the client's database) and replicate
/// them. Every key is checked before any is written, so a key of another type leaves
/// nothing half-written.
pub(super) fn write_outputs(
    ctx: &Context,
    keys: &[impl AsRef<[u8]>],
    tensors: Vec<Tensor>,
) -> Result<(), String> {
    for k in keys {
        let key = key_string(ctx, k.as_ref());
        typed(ctx.open_key(&key).get_value::<Tensor>(&TENSOR_TYPE)).map_err(|e| match e {
            RedisError::WrongType => {
                "WRONGTYPE Operation against a key holding the wrong kind of value".to_string()
            }
            other => other.to_string(),
        })?;
    }
    for (k, t) in keys.iter().zip(tensors) {
        let k = k.as_ref();
        let key = key_string(ctx, k);
        let w = ctx.open_key_writable(&key);
        // The stored tensor and the one replicated share their bytes.
        w.set_value(&TENSOR_TYPE, t.clone())
            .map_err(|e| e.to_string())?;
        let args = tensorset_args(&t);
        let mut rep: Vec<&[u8]> = vec![k];
        rep.extend(args.iter().map(AsRef::as_ref));
        ctx.replicate("AI.TENSORSET", rep.as_slice());
    }
    Ok(())
}

/// One DAG operation's reply.
enum OpReply {
    Ok,
    Na,
    Tensor(Tensor, GetFormat),
    Error(String),
}

/// Run a DAG's operations in order on DAG-local tensors, then (all succeeded) persist,
/// and answer with one element per operation.
fn run_dag(job: Job, running: &Running, limits: &Limits) {
    let interrupt = &running.interrupt;
    let Job { work, ticket, .. } = job;
    let Work::Dag(dag) = work else {
        return;
    };
    let StoredDag {
        mut tensors,
        ops,
        persist,
        ..
    } = *dag;
    let mut replies = Vec::with_capacity(ops.len());
    let mut failed = false;
    for op in &ops {
        if failed {
            replies.push(OpReply::Na);
            continue;
        }
        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_op(op, &mut tensors, interrupt, limits)
        }))
        .unwrap_or_else(|_| {
            Err("ERR orc-ai internal error while running a DAG (the server keeps running)".into())
        });
        match step {
            Ok(r) => replies.push(r),
            Err(e) => {
                failed = true;
                replies.push(OpReply::Error(running.stopped(true).unwrap_or(e)));
            }
        }
    }
    let persisted: Vec<Tensor> = if failed {
        Vec::new()
    } else {
        persist
            .iter()
            .filter_map(|p| tensors.get(p).cloned())
            .collect()
    };
    drop((ops, tensors));
    ticket.answer(|ctx, out| {
        if !persisted.is_empty()
            && let Err(e) = write_outputs(ctx, &persist, persisted)
        {
            out.error(&e);
            return;
        }
        out.array(replies.len());
        for r in &replies {
            match r {
                OpReply::Ok => out.simple("OK"),
                OpReply::Na => out.simple("NA"),
                OpReply::Error(e) => out.error(e),
                OpReply::Tensor(t, f) => {
                    if let Err(e) = out.tensor(t, *f, limits) {
                        out.error(&e);
                    }
                }
            }
        }
    });
}

fn run_op(
    op: &Op<crate::objects::ModelValue, crate::objects::ScriptValue>,
    tensors: &mut std::collections::HashMap<Vec<u8>, Tensor>,
    interrupt: &AtomicBool,
    limits: &Limits,
) -> Result<OpReply, String> {
    let gather =
        |names: &[Vec<u8>], tensors: &std::collections::HashMap<Vec<u8>, Tensor>| -> Vec<Tensor> {
            names
                .iter()
                .filter_map(|n| tensors.get(n).cloned())
                .collect()
        };
    match op {
        Op::Set => Ok(OpReply::Ok),
        Op::Get { name, format } => Ok(match tensors.get(name) {
            Some(t) => OpReply::Tensor(t.clone(), *format),
            None => OpReply::Na,
        }),
        Op::Model {
            model,
            inputs,
            outputs,
        } => {
            let started = Instant::now();
            let work = Work::Model(model.clone());
            let r = run(&work, &gather(inputs, tensors), interrupt, limits).and_then(|outs| {
                if outs.len() == outputs.len() {
                    Ok(outs)
                } else {
                    Err("ERR Model did not generate the expected number of outputs".into())
                }
            });
            record(
                &model.0.stats,
                started.elapsed(),
                r.as_ref()
                    .ok()
                    .and_then(|o| o.first())
                    .and_then(|t| t.shape.first().copied()),
                r.is_err(),
            );
            let outs = r?;
            tensors.extend(outputs.iter().cloned().zip(outs));
            Ok(OpReply::Ok)
        }
        Op::Script {
            script,
            function,
            keys,
            args,
            inputs,
            outputs,
        } => {
            let started = Instant::now();
            let work = Work::Script {
                script: script.clone(),
                function: function.clone(),
                keys: keys.clone(),
                args: args.clone(),
            };
            let r = run(&work, &gather(inputs, tensors), interrupt, limits).and_then(|outs| {
                if outputs.is_empty() || outs.len() == outputs.len() {
                    Ok(outs)
                } else {
                    Err(format!(
                        "ERR Function returned unexpected number of outputs - {function}"
                    ))
                }
            });
            record(&script.0.stats, started.elapsed(), None, r.is_err());
            let outs = r?;
            tensors.extend(outputs.iter().cloned().zip(outs));
            Ok(OpReply::Ok)
        }
    }
}
