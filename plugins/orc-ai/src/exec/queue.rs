//! Device queues, their workers, and the choice of what runs next.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

use super::{Job, Work};
use crate::{
    args::Reply,
    state::{lock, state},
    tensor::DType,
};

/// A queue's workers end after this long without work, and the queue closes.
const IDLE: Duration = Duration::from_secs(60);

/// How often held requests (waiting for MINBATCHSIZE) are looked at again.
const HELD_RECHECK: Duration = Duration::from_millis(250);

/// One device queue: jobs in arrival order and a condition variable for its workers.
pub(super) struct Queue {
    pub(super) name: String,
    jobs: Mutex<Jobs>,
    ready: Condvar,
}

#[derive(Default)]
struct Jobs {
    queue: VecDeque<Job>,
    closed: bool,
}

static QUEUES: Mutex<Option<HashMap<String, Arc<Queue>>>> = Mutex::new(None);

/// The names of the device queues that exist now.
pub fn device_queues() -> Vec<String> {
    let mut v: Vec<String> = lock(&QUEUES)
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Queue the job `make` builds (it blocks the client) on the queue of `device`, created
/// with its workers on first use. Refused, before anything is blocked, when that would
/// make more than `MAX_DEVICE_QUEUES` queues.
pub fn submit(device: &str, make: impl FnOnce() -> Job) -> Result<(), Reply> {
    let name = device.to_ascii_uppercase();
    let (max, threads) = {
        let c = lock(&state().config);
        (c.limits.max_device_queues, c.threads_per_queue.max(1))
    };
    let mut queues = lock(&QUEUES);
    let map = queues.get_or_insert_with(HashMap::new);
    let queue = match map.get(&name) {
        Some(q) => q.clone(),
        None => {
            if map.len() as u64 >= max {
                return Err(Reply(format!(
                    "ERR too many device queues: {} exist (at most {max}; module argument MAX_DEVICE_QUEUES); use a device already in use ({})",
                    map.len(),
                    {
                        let mut names: Vec<&str> = map.keys().map(String::as_str).collect();
                        names.sort();
                        names.join(", ")
                    }
                )));
            }
            let q = Arc::new(Queue {
                name: name.clone(),
                jobs: Mutex::new(Jobs::default()),
                ready: Condvar::new(),
            });
            for i in 0..threads {
                spawn_worker(&q, i)?;
            }
            super::watchdog::start();
            map.insert(name, q.clone());
            q
        }
    };
    lock(&queue.jobs).queue.push_back(make());
    drop(queues);
    queue.ready.notify_one();
    Ok(())
}

/// Start a worker for `q` (also the watchdog's replacement for a stuck one).
pub(super) fn spawn_worker(q: &Arc<Queue>, i: u64) -> Result<(), Reply> {
    let q2 = q.clone();
    std::thread::Builder::new()
        .name(format!("orc-ai-{}-{i}", q.name))
        .stack_size(64 << 20)
        .spawn(move || super::run::worker(&q2))
        .map(|_| ())
        .map_err(|e| Reply(format!("ERR cannot start a worker thread: {e}")))
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

/// The batching settings of a job's model: (BATCHSIZE, MINBATCHSIZE, MINBATCHTIMEOUT).
fn batching(job: &Job) -> (u64, u64, u64) {
    match &job.work {
        Work::Model(m) => (
            m.0.meta.batch_size,
            m.0.meta.min_batch_size,
            m.0.meta.min_batch_timeout,
        ),
        _ => (0, 0, 0),
    }
}

/// What may run now: the first job in order that is ready, with the compatible jobs
/// behind it when its model batches. A group still short of MINBATCHSIZE is held (its
/// release time returned) and later jobs are considered.
fn pick(queue: &mut VecDeque<Job>) -> (Option<Vec<Job>>, Option<Instant>) {
    // Requests whose clients timed out or left go first (the worker answers them, which
    // releases their blocked-client handles), wherever they are held.
    if queue.iter().any(|j| j.ticket.interrupted()) {
        let (gone, keep): (VecDeque<Job>, VecDeque<Job>) = std::mem::take(queue)
            .into_iter()
            .partition(|j| j.ticket.interrupted());
        *queue = keep;
        return (Some(gone.into()), None);
    }
    let mut wake: Option<Instant> = None;
    let mut held: Vec<usize> = Vec::new();
    for i in 0..queue.len() {
        if held.contains(&i) {
            continue;
        }
        let (bs, min, min_timeout) = batching(&queue[i]);
        let Some(mut total) = batch_size(&queue[i]).filter(|n| bs > 0 && *n < bs) else {
            let job = queue.remove(i).expect("index in range");
            return (Some(vec![job]), None);
        };
        let mut group = vec![i];
        for j in i + 1..queue.len() {
            if total >= bs {
                break;
            }
            if !held.contains(&j) && compatible(&queue[i], &queue[j]) {
                total += batch_size(&queue[j]).unwrap_or(0);
                group.push(j);
            }
        }
        let release =
            (min_timeout > 0).then(|| queue[i].queued + Duration::from_millis(min_timeout));
        let waiting = min > 0 && total < min && release.is_none_or(|r| Instant::now() < r);
        if waiting {
            if let Some(r) = release {
                wake = Some(wake.map_or(r, |w| w.min(r)));
            }
            held.extend(group);
            continue;
        }
        // Take the group out, highest index first so the others stay valid.
        let mut batch: Vec<Job> = group
            .iter()
            .rev()
            .map(|j| queue.remove(*j).expect("index in range"))
            .collect();
        batch.reverse();
        return (Some(batch), None);
    }
    (None, wake)
}

/// How long an idle worker looks for new work before sleeping (`WORKER_SPIN_US`).
fn spin_wait() -> Duration {
    Duration::from_micros(lock(&state().config).worker_spin_us)
}

/// The next batch to run, waiting for work; `None` when the queue closed.
pub(super) fn next_batch(q: &Arc<Queue>) -> Option<Vec<Job>> {
    let mut jobs = lock(&q.jobs);
    let mut idle_since = Instant::now();
    loop {
        if jobs.closed {
            return None;
        }
        let (batch, wake) = pick(&mut jobs.queue);
        if let Some(b) = batch {
            return Some(b);
        }
        if jobs.queue.is_empty() && idle_since.elapsed() >= IDLE {
            drop(jobs);
            if close_if_idle(q) {
                return None;
            }
            jobs = lock(&q.jobs);
            idle_since = Instant::now();
            continue;
        }
        if !jobs.queue.is_empty() {
            idle_since = Instant::now();
        }
        // A client's next request usually follows its reply within a round trip: look for
        // it a while, yielding the CPU, rather than sleep and wait to be woken. (The lock
        // is not held meanwhile, so a request queued now is seen below.)
        if jobs.queue.is_empty() {
            drop(jobs);
            let until = Instant::now() + spin_wait();
            while Instant::now() < until {
                if q.jobs
                    .try_lock()
                    .is_ok_and(|j| !j.queue.is_empty() || j.closed)
                {
                    break;
                }
                std::thread::yield_now();
            }
            jobs = lock(&q.jobs);
            if !jobs.queue.is_empty() || jobs.closed {
                continue;
            }
        }
        // Held requests are looked at again at least every second (their clients may
        // time out meanwhile).
        let wait = wake
            .map(|w| w.saturating_duration_since(Instant::now()))
            .unwrap_or(if jobs.queue.is_empty() {
                IDLE
            } else {
                HELD_RECHECK
            })
            .clamp(Duration::from_millis(1), IDLE);
        jobs = q
            .ready
            .wait_timeout(jobs, wait)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

/// Close `q` when it has no work: no submit can reach it afterwards (it leaves the map
/// under the same lock `submit` holds), and its other workers end.
fn close_if_idle(q: &Arc<Queue>) -> bool {
    let mut queues = lock(&QUEUES);
    let mut jobs = lock(&q.jobs);
    if !jobs.queue.is_empty() {
        return false;
    }
    jobs.closed = true;
    if let Some(map) = queues.as_mut()
        && map.get(&q.name).is_some_and(|x| Arc::ptr_eq(x, q))
    {
        map.remove(&q.name);
    }
    drop(jobs);
    q.ready.notify_all();
    true
}
