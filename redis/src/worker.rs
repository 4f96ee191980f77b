//! `Worker`: serves a queue with an offload `Pool`. One loop takes only as many jobs as the
//! pool has free threads (plus the configured prefetch); each job runs as a tokio task that
//! awaits the pool and finishes through the owner-checked script; a heartbeat renews the
//! leases of the held jobs and stops those that were cancelled or lost.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use offload::{Pool, Portable};
use redis::Value;
use redis::aio::ConnectionManager;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::conn;
use crate::error::ConnectError;
use crate::fleet::unique_id;
use crate::keys::{GROUP, Keys};
use crate::protocol::{self, Entry};
use crate::scripts;

/// Decodes a payload, runs the task on the calling (pool) thread, encodes the output.
/// `Err` is a reason to dead-letter the job (it cannot run), not a task failure.
type Handler = fn(Vec<u8>, &'static str) -> Result<Vec<u8>, String>;

fn handle<T: Portable>(payload: Vec<u8>, name: &'static str) -> Result<Vec<u8>, String> {
    let task: T = protocol::decode(&payload)
        .map_err(|e| format!("payload does not decode as task `{name}`: {e}"))?;
    if task.name() != name {
        return Err(format!(
            "task registered as `{name}` names itself `{}`",
            task.name()
        ));
    }
    let output = task.run();
    protocol::encode(&output).map_err(|e| format!("output of `{name}` did not encode: {e}"))
}

/// Configures a [`Worker`]: the pool, the queue, the task types it serves, leases and
/// retries. Made by [`Worker::builder`].
#[derive(Clone)]
pub struct WorkerBuilder {
    pool: Pool,
    handlers: HashMap<&'static str, Handler>,
    prefetch: usize,
    lease: Duration,
    max_attempts: u32,
    retry_backoff: Duration,
    max_payload: usize,
    command_timeout: Duration,
}

impl fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut tasks: Vec<_> = self.handlers.keys().collect();
        tasks.sort();
        f.debug_struct("WorkerBuilder")
            .field("pool", &self.pool)
            .field("tasks", &tasks)
            .field("prefetch", &self.prefetch)
            .field("lease", &self.lease)
            .field("max_attempts", &self.max_attempts)
            .field("retry_backoff", &self.retry_backoff)
            .field("max_payload", &self.max_payload)
            .finish()
    }
}

impl WorkerBuilder {
    /// Serves jobs of task type `T` named `name` (what [`Task::name`](offload::Task::name)
    /// returns for them: `Task::name` takes `&self`, so the type alone cannot tell). A job
    /// whose decoded task names itself otherwise is dead-lettered.
    pub fn task<T: Portable>(mut self, name: &'static str) -> WorkerBuilder {
        self.handlers.insert(name, handle::<T>);
        self
    }

    /// How many jobs this worker holds ready beyond one per pool thread, so that a thread
    /// whose run ended starts the next job at once instead of idling through the Redis
    /// round trip that finishes the run and takes a new job. Held jobs wait in the pool's
    /// queue, their leases renewed as a running job's; a held job's caller may still cancel
    /// it (it never runs) and its deadline still applies (the pool's deadline-aware
    /// admission may discard it as expired when it forecasts a miss).
    ///
    /// The cost is the one every prefetch has: a held job waits for a thread here even if
    /// another worker is idle, and a high-priority job taken later starts after the held
    /// ones. Worth it for jobs that are short beside a round trip to Redis or whose payloads
    /// are large (images): one per thread is plenty. Default: 0 (a worker holds no more jobs
    /// than it has free threads).
    pub fn prefetch(mut self, jobs: usize) -> WorkerBuilder {
        self.prefetch = jobs;
        self
    }

    /// How long a job stays with a worker that stopped renewing it (crashed, paused,
    /// partitioned) before another worker claims it. Running jobs are renewed every third
    /// of it. Default: 30 s.
    ///
    /// # Panics
    ///
    /// If `lease` is under 30 ms.
    #[track_caller]
    pub fn lease(mut self, lease: Duration) -> WorkerBuilder {
        assert!(
            lease >= Duration::from_millis(30),
            "a lease under 30 ms cannot be renewed in time"
        );
        self.lease = lease;
        self
    }

    /// How many times a job may start (runs that panicked, workers lost while running it)
    /// before it goes to the dead letters. Default: 3.
    ///
    /// # Panics
    ///
    /// If `attempts` is 0.
    #[track_caller]
    pub fn max_attempts(mut self, attempts: u32) -> WorkerBuilder {
        assert!(attempts > 0, "max_attempts must be at least 1");
        self.max_attempts = attempts;
        self
    }

    /// The pause before the first retry of a panicked job; each later one doubles it, and
    /// each is jittered by ±50 %. Default: 1 s.
    pub fn retry_backoff(mut self, base: Duration) -> WorkerBuilder {
        self.retry_backoff = base;
        self
    }

    /// The largest payload this worker decodes; larger jobs are dead-lettered. Default:
    /// 32 MiB.
    pub fn max_payload(mut self, bytes: usize) -> WorkerBuilder {
        self.max_payload = bytes;
        self
    }

    /// How long a finishing job keeps retrying its completion while Redis is unreachable.
    /// Default: 30 s.
    pub fn command_timeout(mut self, timeout: Duration) -> WorkerBuilder {
        self.command_timeout = timeout;
        self
    }

    /// Connects to `url` to serve the queue named `queue`.
    ///
    /// # Errors
    ///
    /// As [`FleetBuilder::connect`](crate::FleetBuilder::connect).
    pub async fn connect(self, url: &str, queue: &str) -> Result<Worker, ConnectError> {
        let (keys, conn, blocking) = conn::open(url, queue, Duration::from_secs(2)).await?;
        let (ended, ended_rx) = mpsc::unbounded_channel();
        let threads = self.pool.threads().max(1);
        Ok(Worker {
            ctx: Arc::new(Ctx {
                consumer: unique_id(),
                keys,
                conn,
                running: Mutex::new(HashMap::new()),
                slots: Arc::new(Semaphore::new(threads + self.prefetch)),
                taking: AtomicBool::new(true),
                config: self,
            }),
            blocking,
            ended,
            ended_rx: Some(ended_rx),
        })
    }
}

/// Serves one queue: takes jobs, runs them on an offload [`Pool`], replies.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use offload::Pool;
/// use offload_tasks::Thumbnail;
///
/// let worker = offload_redis::Worker::builder(Pool::new())
///     .task::<Thumbnail>("thumbnail")
///     .lease(Duration::from_secs(10))
///     .connect("redis://127.0.0.1/", "images")
///     .await?;
/// worker.run(async { tokio::signal::ctrl_c().await.ok(); }).await;
/// # Ok(())
/// # }
/// ```
///
/// # Leases
///
/// A job read by a worker stays in its pending list; the worker renews its lease with a
/// heartbeat every third of [`lease`](WorkerBuilder::lease). When a worker dies or stalls,
/// its jobs' idle time passes the lease and the next worker to look claims them (`XAUTOCLAIM`).
/// A worker that resumes after losing a job can neither acknowledge it nor reply: both go
/// through a Lua script that checks the entry's owner.
///
/// # Retries
///
/// A run that panics is scheduled again after an exponential, jittered backoff; after
/// [`max_attempts`](WorkerBuilder::max_attempts) starts (lost workers count) the job goes to
/// the dead-letter stream with its last error and the caller gets
/// [`Error::Failed`](offload::Error::Failed). A task's own `Err` output is a result.
pub struct Worker {
    ctx: Arc<Ctx>,
    blocking: ConnectionManager,
    /// Where runs that ended go to be finished; every running job holds a clone, so the
    /// finisher stops once the take loop and the last run are gone.
    ended: mpsc::UnboundedSender<Ended>,
    ended_rx: Option<mpsc::UnboundedReceiver<Ended>>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("consumer", &self.ctx.consumer)
            .field("config", &self.ctx.config)
            .finish()
    }
}

struct Ctx {
    consumer: String,
    keys: Keys,
    conn: ConnectionManager,
    /// Jobs running now, by job id.
    running: Mutex<HashMap<String, Running>>,
    /// One permit per pool thread plus the prefetch, held from the take to the finish: jobs
    /// are taken only for permits in hand, so this worker never holds more jobs than that.
    slots: Arc<Semaphore>,
    /// False once the worker shuts down: the finisher then only finishes.
    taking: AtomicBool,
    config: WorkerBuilder,
}

impl Ctx {
    fn running(&self) -> MutexGuard<'_, HashMap<String, Running>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Running {
    stream: usize,
    id: String,
    stop: Option<oneshot::Sender<Stop>>,
}

/// Why the heartbeat stops a running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The caller cancelled: drop the run and the entry.
    Cancelled,
    /// Another worker owns the entry now: drop the run, touch nothing.
    Lost,
}

/// A job the work script handed over.
struct Taken {
    stream: usize,
    id: String,
    attempt: u32,
    fields: Vec<Vec<u8>>,
    /// The payload was fetched from the payloads hash (and is in `fields` now): the work
    /// script deletes it there when the job ends or moves on to a retry.
    stored: bool,
}

impl Taken {
    /// The job id its payload is stored under in the payloads hash, when the entry does not
    /// carry the payload itself.
    fn stored_payload_key(&self) -> Option<&[u8]> {
        if protocol::field(&self.fields, "payload").is_some() {
            return None;
        }
        protocol::field(&self.fields, "job")
    }
}

impl Worker {
    /// Configures a worker that runs its jobs on `pool` (one job per pool thread).
    pub fn builder(pool: Pool) -> WorkerBuilder {
        WorkerBuilder {
            pool,
            handlers: HashMap::new(),
            prefetch: 0,
            lease: Duration::from_secs(30),
            max_attempts: 3,
            retry_backoff: Duration::from_secs(1),
            max_payload: 32 << 20,
            command_timeout: Duration::from_secs(30),
        }
    }

    /// This worker's consumer name in the queue's group: `<pid>-<random>`, new at every
    /// start, so a restarted worker never inherits a dead one's jobs by name.
    pub fn consumer(&self) -> &str {
        &self.ctx.consumer
    }

    /// Serves the queue until `shutdown` resolves, then stops taking jobs and returns once
    /// the running ones have finished and replied. Redis outages are waited out (the
    /// connections reconnect by themselves); nothing here panics on bad input.
    ///
    /// # Cancellation
    ///
    /// Dropping the future stops taking jobs; running ones finish in the background, and
    /// jobs whose completion was cut off are claimed by another worker after the lease.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let ctx = Arc::clone(&self.ctx);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let heartbeat = tokio::spawn(heartbeat(Arc::clone(&ctx), stop_rx));
        if let Some(ended) = self.ended_rx.take() {
            tokio::spawn(finish_loop(Arc::clone(&ctx), ended, self.ended.downgrade()));
        }
        // Stops the finisher taking jobs however this future ends.
        struct StopTaking(Arc<Ctx>);
        impl Drop for StopTaking {
            fn drop(&mut self) {
                self.0.taking.store(false, Ordering::Release);
            }
        }
        let stop_taking = StopTaking(Arc::clone(&ctx));
        tokio::select! {
            () = shutdown => {}
            () = self.take_loop() => {}
        }
        drop(stop_taking);
        drop(self);
        // Every taken job holds a permit until its finish returned.
        let held = ctx.config.pool.threads().max(1) + ctx.config.prefetch;
        if let Ok(all) = ctx
            .slots
            .acquire_many(u32::try_from(held).unwrap_or(u32::MAX))
            .await
        {
            all.forget();
        }
        let _ = stop_tx.send(());
        let _ = heartbeat.await;
    }

    /// Takes jobs for the free threads; when there are none to take, blocks until a new
    /// entry arrives. Under load the finisher takes most jobs (with the permits of the runs
    /// it finishes); this loop fills threads that were idle.
    async fn take_loop(&mut self) {
        let ctx = Arc::clone(&self.ctx);
        let reclaim_every = ctx.config.lease / 2;
        let mut next_reclaim = Instant::now();
        let mut failures = 0u32;
        loop {
            let mut permits = free_permits(&ctx.slots);
            if permits.is_empty() {
                // Wait for a thread to free up, then gather every free one.
                match Arc::clone(&ctx.slots).acquire_owned().await {
                    Ok(permit) => permits.push(permit),
                    Err(_) => return,
                }
                permits.extend(free_permits(&ctx.slots));
            }
            let reclaim = Instant::now() >= next_reclaim;
            let step = match step(&ctx, &[], permits.len(), reclaim).await {
                Ok(step) => {
                    failures = 0;
                    step
                }
                Err(e) => {
                    drop(permits);
                    failures += 1;
                    if e.code() == Some("NOGROUP") {
                        let mut conn = ctx.conn.clone();
                        let _ = scripts::ensure_groups(&mut conn, &ctx.keys).await;
                    } else if failures == 1 || failures.is_multiple_of(50) {
                        tracing::warn!(error = %e, "offload worker cannot take jobs; retrying");
                    }
                    let pause = Duration::from_millis(20 * u64::from(failures.min(25)));
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            if reclaim {
                next_reclaim = Instant::now() + reclaim_every;
            }
            let took = step.jobs.len();
            start(&ctx, step.jobs, permits, &self.ended);
            if took > 0 {
                continue;
            }
            // Nothing to take: block until a new entry arrives after the ones seen, a
            // retry falls due, or it is time to look for expired leases.
            let mut wait =
                conn::MAX_BLOCK.min(next_reclaim.saturating_duration_since(Instant::now()));
            if step.due >= 0 {
                let until_due = (step.due as u64).saturating_sub(protocol::now_ms());
                wait = wait.min(Duration::from_millis(until_due));
            }
            if wait >= Duration::from_millis(1) {
                self.wait_for_entries(&step.last, wait).await;
            }
        }
    }

    async fn wait_for_entries(&mut self, last: &[String], wait: Duration) {
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(u64::try_from(wait.as_millis()).unwrap_or(1000))
            .arg("STREAMS");
        for stream in &self.ctx.keys.streams {
            cmd.arg(stream);
        }
        for id in last {
            cmd.arg(id);
        }
        if cmd.query_async::<Value>(&mut self.blocking).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Every permit free now, without waiting.
fn free_permits(slots: &Arc<Semaphore>) -> Vec<OwnedSemaphorePermit> {
    std::iter::from_fn(|| Arc::clone(slots).try_acquire_owned().ok()).collect()
}

/// Starts one run per taken job, each with one of `permits`; the permits left over are
/// released.
fn start(
    ctx: &Arc<Ctx>,
    jobs: Vec<Taken>,
    mut permits: Vec<OwnedSemaphorePermit>,
    ended: &mpsc::UnboundedSender<Ended>,
) {
    for job in jobs {
        let Some(permit) = permits.pop() else {
            // Cannot happen (the script takes at most one job per permit); the lease hands
            // the job to another worker if it does.
            tracing::error!("offload worker took more jobs than it has threads");
            break;
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        tokio::spawn(execute(
            Arc::clone(ctx),
            job,
            permit,
            (stop_tx, stop_rx),
            ended.clone(),
        ));
    }
}

/// What one call of the work script did.
struct Step {
    /// Per finished run: whether this worker still owned it (its end was recorded).
    owned: Vec<bool>,
    jobs: Vec<Taken>,
    /// The streams' last ids (when nothing was taken), to block on.
    last: Vec<String>,
    /// When the next retry falls due (ms since the epoch), or -1.
    due: i64,
}

/// One call of the work script: records the runs in `ended`, then takes up to `n` jobs.
async fn step(
    ctx: &Ctx,
    ended: &[Ended],
    n: usize,
    reclaim: bool,
) -> Result<Step, redis::RedisError> {
    let mut conn = ctx.conn.clone();
    let value: Value = step_call(ctx, ended, n, reclaim)
        .invoke_async(&mut conn)
        .await?;
    let mut parts = protocol::items(value).into_iter();
    let owned = parts
        .next()
        .map(protocol::items)
        .unwrap_or_default()
        .iter()
        .map(|v| protocol::int(v) == 1)
        .collect();
    let mut jobs: Vec<Taken> = parts
        .next()
        .map(protocol::items)
        .unwrap_or_default()
        .into_iter()
        .map(|job| {
            let mut p = protocol::items(job).into_iter();
            let stream = p.next().map_or(1, |v| protocol::int(&v));
            let id = p.next().map(protocol::text).unwrap_or_default();
            let attempt = p.next().map_or(0, |v| protocol::int(&v));
            let fields = p
                .next()
                .map(|f| {
                    protocol::items(f)
                        .into_iter()
                        .map(protocol::bytes)
                        .collect()
                })
                .unwrap_or_default();
            Taken {
                stream: usize::try_from(stream - 1).unwrap_or(0).min(2),
                id,
                attempt: u32::try_from(attempt).unwrap_or(0),
                fields,
                stored: false,
            }
        })
        .collect();
    let last = parts
        .next()
        .map(protocol::items)
        .unwrap_or_default()
        .into_iter()
        .map(protocol::text)
        .collect::<Vec<_>>();
    let due = parts.next().map_or(-1, |v| protocol::int(&v));
    fetch_payloads(ctx, &mut jobs).await;
    let last = if last.len() == 3 {
        last
    } else {
        vec!["0-0".to_owned(); 3]
    };
    Ok(Step {
        owned,
        jobs,
        last,
        due,
    })
}

/// Adds its `payload` field to each taken job that has a job id and no payload of its own,
/// from the payloads hash (one `HMGET`, retried within the command timeout). A job whose
/// payload is missing stays without: it fails to parse and is dead-lettered with the reason.
/// If Redis cannot be asked, those jobs are let go unstarted: they stay this worker's
/// pending entries, unrenewed, and the lease hands them to the next worker that reclaims
/// (the step's completions, already recorded, stand).
async fn fetch_payloads(ctx: &Ctx, jobs: &mut Vec<Taken>) {
    let wanted: Vec<(usize, Vec<u8>)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, job)| Some((i, job.stored_payload_key()?.to_vec())))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(&ctx.keys.payloads);
    for (_, id) in &wanted {
        cmd.arg(id.as_slice());
    }
    let fetched = conn::retry(ctx.config.command_timeout, || {
        let (cmd, mut conn) = (&cmd, ctx.conn.clone());
        async move { cmd.query_async::<Vec<Option<Vec<u8>>>>(&mut conn).await }
    })
    .await;
    match fetched {
        Ok(payloads) => {
            for ((i, _), payload) in wanted.into_iter().zip(payloads) {
                jobs[i].stored = true;
                if let Some(payload) = payload {
                    jobs[i].fields.extend([b"payload".to_vec(), payload]);
                }
            }
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                jobs = wanted.len(),
                "offload worker could not fetch payloads; the lease hands their jobs on"
            );
            jobs.retain(|job| job.stored_payload_key().is_none());
        }
    }
}

/// How one run ended, and what the work script does about it.
enum Outcome {
    Output(Vec<u8>),
    Failed { attempts: u32, message: String },
    Retry { due_ms: u64, message: String },
    Discard,
}

/// A run that ended, on its way to the finisher with its thread's permit.
struct Ended {
    job: Taken,
    job_id: String,
    reply: String,
    outcome: Outcome,
    /// How long it held its thread (zero when it did not run).
    busy: Duration,
    permit: OwnedSemaphorePermit,
}

/// Runs one taken job to its end and hands it to the finisher.
async fn execute(
    ctx: Arc<Ctx>,
    job: Taken,
    permit: OwnedSemaphorePermit,
    (stop_tx, stop_rx): (oneshot::Sender<Stop>, oneshot::Receiver<Stop>),
    ended: mpsc::UnboundedSender<Ended>,
) {
    let (job_id, reply, outcome, busy) = match Entry::parse(&job.fields) {
        Ok(mut entry) => {
            ctx.running().insert(
                entry.job.clone(),
                Running {
                    stream: job.stream,
                    id: job.id.clone(),
                    stop: Some(stop_tx),
                },
            );
            let span = tracing::info_span!(
                "offload_job",
                job = %entry.job,
                task = %entry.task,
                attempt = job.attempt,
                trace = %entry.trace,
            );
            let run = run_entry(
                Arc::clone(&ctx),
                entry.task.clone(),
                std::mem::take(&mut entry.payload),
                entry.deadline_ms,
                job.attempt,
                stop_rx,
            );
            let outcome = tracing::Instrument::instrument(run, span).await;
            ctx.running().remove(&entry.job);
            // Lost to another worker: nothing may be written.
            let Some((outcome, busy)) = outcome else {
                return;
            };
            (entry.job, entry.reply, outcome, busy)
        }
        Err(reason) => {
            let outcome = Outcome::Failed {
                attempts: job.attempt,
                message: reason,
            };
            // Malformed, but what it does name still counts: its job id (what the job left
            // in the hashes goes with it) and its reply key (written only if it is this
            // queue's, see `step_call`), so a caller that is waiting hears why.
            let named = |name| {
                protocol::field(&job.fields, name)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            };
            (named("job"), named("reply"), outcome, Duration::ZERO)
        }
    };
    let end = Ended {
        job,
        job_id,
        reply,
        outcome,
        busy,
        permit,
    };
    if ended.send(end).is_err() {
        // Only when the runtime is shutting down: the lease hands the job on.
        tracing::debug!("offload worker's finisher is gone; the job is left to its lease");
    }
}

/// The finisher: records ended runs in batches (everything that ended while the previous
/// call was out), one work-script call per batch, and takes new jobs in the same call with
/// the batch's permits. Stops once every sender is gone.
async fn finish_loop(
    ctx: Arc<Ctx>,
    mut ended: mpsc::UnboundedReceiver<Ended>,
    sender: mpsc::WeakUnboundedSender<Ended>,
) {
    let mut batch = Vec::new();
    while ended.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Take only while the worker runs (and can still start runs).
        let more = sender
            .upgrade()
            .filter(|_| ctx.taking.load(Ordering::Acquire));
        let n = if more.is_some() { batch.len() } else { 0 };
        let mut result = step(&ctx, &batch, n, false).await;
        if matches!(&result, Err(e) if conn::is_transient(e)) {
            // The first call may have gone through with its answer lost; retry the
            // finishes alone (the lease hands any job it took on).
            let budget = ctx.config.command_timeout;
            result = conn::retry(budget, || step(&ctx, &batch, 0, false)).await;
        }
        let mut permits = Vec::with_capacity(batch.len());
        for (i, end) in batch.drain(..).enumerate() {
            let recorded = match &result {
                Ok(step) => Ok(step.owned.get(i).copied().unwrap_or(false)),
                Err(e) => Err(e),
            };
            log_finish(recorded, &end.job_id, &end.outcome);
            permits.push(end.permit);
        }
        match (result, more) {
            (Ok(step), Some(sender)) => start(&ctx, step.jobs, permits, &sender),
            _ => drop(permits),
        }
    }
}

/// Runs the entry's task on the pool once a pool thread is free for it; the outcome and how
/// long it held the thread, or `None` when the job was lost to another worker (then nothing
/// may be written).
async fn run_entry(
    ctx: Arc<Ctx>,
    task: String,
    payload: Vec<u8>,
    deadline_ms: u64,
    attempts: u32,
    stop: oneshot::Receiver<Stop>,
) -> Option<(Outcome, Duration)> {
    let config = &ctx.config;
    let failed =
        move |message: String| Some((Outcome::Failed { attempts, message }, Duration::ZERO));
    // Dropping the run future (when stopped) turns `is_cancelled` true inside the task.
    let stopped = |stop: Result<Stop, _>| match stop {
        Ok(Stop::Lost) => None,
        _ => Some((Outcome::Discard, Duration::ZERO)),
    };
    if payload.len() > config.max_payload {
        return failed(format!(
            "payload of {} bytes exceeds the worker's {}-byte limit",
            payload.len(),
            config.max_payload
        ));
    }
    let Some((&name, &handler)) = config.handlers.get_key_value(task.as_str()) else {
        return failed(format!("unknown task `{task}`"));
    };
    // A held (prefetched) job waits in the pool's queue, so a thread whose run ended takes
    // the next one itself, with no hop through this runtime. The run time is measured on
    // the thread (the retry hint's service time), without the wait.
    let mut run = config
        .pool
        .run(move || {
            let started = Instant::now();
            (handler(payload, name), started.elapsed())
        })
        .name(name);
    if deadline_ms > 0 {
        let left = deadline_ms.saturating_sub(protocol::now_ms());
        run = run.deadline(Instant::now() + Duration::from_millis(left));
    }
    // Boxed as `dyn Send`: proves `Send` here, where the captured `&'static str` has its
    // real lifetime (rustc cannot prove it for the bare future inside a spawned one).
    type Pending = std::pin::Pin<
        Box<
            dyn Future<Output = Result<(Result<Vec<u8>, String>, Duration), offload::Error>> + Send,
        >,
    >;
    let run: Pending = Box::pin(std::future::IntoFuture::into_future(run));
    let result = tokio::select! {
        result = run => result,
        stop = stop => return stopped(stop),
    };
    let busy = result.as_ref().map_or(Duration::ZERO, |(_, busy)| *busy);
    let outcome = match result.map(|(output, _)| output) {
        Ok(Ok(output)) => Outcome::Output(output),
        Ok(Err(message)) => Outcome::Failed { attempts, message },
        Err(offload::Error::Panicked { message, .. }) => {
            let message = format!("task `{name}` panicked: {message}");
            if attempts >= config.max_attempts {
                Outcome::Failed { attempts, message }
            } else {
                let due_ms = protocol::ms_after(backoff(config.retry_backoff, attempts));
                Outcome::Retry { due_ms, message }
            }
        }
        // The caller's deadline passed: nobody waits for the result.
        Err(offload::Error::TimedOut { .. }) => Outcome::Discard,
        // The pool's deadline-aware admission forecasts that a held job would finish past its
        // caller's deadline: as one that expired. Without a deadline only a pool shedding a
        // standing queue (`queue_delay`) refuses: back to the queue after a backoff.
        Err(offload::Error::Overloaded { .. }) if deadline_ms > 0 => Outcome::Discard,
        Err(offload::Error::Overloaded { .. }) => Outcome::Retry {
            due_ms: protocol::ms_after(backoff(config.retry_backoff, attempts)),
            message: format!("the worker's pool refused task `{name}` (overloaded)"),
        },
        // The pool was closed under the worker: leave the job to the lease.
        Err(_) => return None,
    };
    Some((outcome, busy))
}

/// `base * 2^(attempt-1)`, jittered by ±50 %, at most an hour.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1 << attempt.saturating_sub(1).min(20));
    let jitter = 0.5 + (crate::random_u64() % 1000) as f64 / 1000.0;
    exp.mul_f64(jitter).min(Duration::from_secs(3600))
}

/// The most ended runs one work-script call records.
const MAX_BATCH: usize = 64;

/// The work script's invocation: the ended runs' records, then the take.
fn step_call(
    ctx: &Ctx,
    ended: &[Ended],
    n: usize,
    reclaim: bool,
) -> redis::ScriptInvocation<'static> {
    let keys = &ctx.keys;
    let mut call = scripts::WORK.prepare_invoke();
    for stream in &keys.streams {
        call.key(stream);
    }
    call.key(&keys.delayed)
        .key(&keys.errors)
        .key(&keys.stats)
        .key(&keys.dead)
        .key(&keys.payloads)
        .arg(GROUP)
        .arg(&ctx.consumer)
        .arg(n)
        .arg(u64::try_from(ctx.config.lease.as_millis()).unwrap_or(u64::MAX))
        .arg(if reclaim { "1" } else { "0" })
        .arg(ctx.config.max_attempts)
        .arg(keys.cancel_prefix());
    // The retry hint's input: time per job on one of this worker's threads, divided by
    // the threads (the pace at which this worker as a whole serves jobs).
    let ran = ended.iter().filter(|e| !e.busy.is_zero());
    let busy_us: u128 = ran.clone().map(|e| e.busy.as_micros()).sum();
    let threads = ctx.config.pool.threads().max(1) as u128;
    call.arg(u64::try_from(busy_us / threads).unwrap_or(u64::MAX))
        .arg(ran.count())
        .arg(ended.len());
    // Reply keys go in KEYS (Redis Cluster routes by them), each once; only this queue's.
    let own = keys.reply("");
    call.arg(&own);
    let mut replies: Vec<&str> = Vec::new();
    for end in ended {
        let Ended { job, outcome, .. } = end;
        let (mode, due, message, attempts, output): (_, u64, &str, u32, &[u8]) = match outcome {
            Outcome::Output(bytes) => ("ok", 0, "", job.attempt, bytes),
            Outcome::Failed { attempts, message } => ("failed", 0, message, *attempts, &[]),
            Outcome::Retry { due_ms, message } => ("retry", *due_ms, message, job.attempt, &[]),
            Outcome::Discard => ("discard", 0, "", job.attempt, &[]),
        };
        // A reply key outside this queue's slot is not written to (malformed or hostile
        // entry).
        let reply_index = if end.reply.starts_with(&own) {
            let at = match replies.iter().position(|r| *r == end.reply) {
                Some(at) => at,
                None => {
                    call.key(&end.reply);
                    replies.push(&end.reply);
                    replies.len() - 1
                }
            };
            9 + at
        } else {
            0
        };
        call.arg(job.stream + 1)
            .arg(&job.id)
            .arg(&end.job_id)
            .arg(mode)
            .arg(due)
            .arg(message)
            .arg(attempts)
            .arg(output)
            .arg(u8::from(job.stored))
            .arg(reply_index);
        // Only a retry (re-queued from them, with the starts so far) and a dead letter (kept
        // with them) need the entry's fields; a completion sends none.
        let requeued;
        let fields: &[Vec<u8>] = match outcome {
            Outcome::Retry { .. } => {
                requeued = protocol::with_field(&job.fields, "started", job.attempt.to_string());
                &requeued
            }
            Outcome::Failed { .. } => &job.fields,
            Outcome::Output(_) | Outcome::Discard => &[],
        };
        call.arg(fields.len());
        for field in fields {
            call.arg(field.as_slice());
        }
    }
    call
}

fn log_finish(recorded: Result<bool, &redis::RedisError>, job: &str, outcome: &Outcome) {
    match (recorded, outcome) {
        (Ok(true), Outcome::Failed { message, .. }) => {
            tracing::warn!(job, reason = %message, "offload job dead-lettered");
        }
        (Ok(true), _) => {}
        (Ok(false), _) => tracing::info!(job, "offload job lost to another worker; result dropped"),
        (Err(e), _) => tracing::warn!(
            job,
            error = %e,
            "offload job could not be finished; its lease will hand it on"
        ),
    }
}

/// Renews the running jobs' leases every third of the lease until told to stop.
async fn heartbeat(ctx: Arc<Ctx>, mut stop: oneshot::Receiver<()>) {
    let every = ctx.config.lease / 3;
    let silent_ms = u64::try_from(
        (ctx.config.lease * 20)
            .max(Duration::from_secs(60))
            .as_millis(),
    )
    .unwrap_or(u64::MAX);
    loop {
        let jobs: Vec<(String, usize, String)> = ctx
            .running()
            .iter()
            .map(|(job, r)| (job.clone(), r.stream, r.id.clone()))
            .collect();
        let keys = &ctx.keys;
        let mut call = scripts::RENEW.prepare_invoke();
        for stream in &keys.streams {
            call.key(stream);
        }
        call.key(&keys.workers)
            .key(&keys.stats)
            .arg(GROUP)
            .arg(&ctx.consumer)
            .arg(keys.cancel_prefix())
            .arg(silent_ms)
            .arg(u64::try_from(ctx.config.lease.as_millis()).unwrap_or(u64::MAX));
        for (job, stream, id) in &jobs {
            call.arg(stream + 1).arg(id).arg(job);
        }
        let mut conn = ctx.conn.clone();
        let renewed = tokio::time::timeout(
            every,
            call.invoke_async::<(Vec<String>, Vec<String>)>(&mut conn),
        )
        .await;
        match renewed {
            Ok(Ok((lost, cancelled))) => {
                let mut running = ctx.running();
                let stops = lost
                    .iter()
                    .map(|j| (j, Stop::Lost))
                    .chain(cancelled.iter().map(|j| (j, Stop::Cancelled)));
                for (job, why) in stops {
                    if let Some(stop) = running.get_mut(job).and_then(|r| r.stop.take()) {
                        let _ = stop.send(why);
                    }
                }
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "offload worker heartbeat failed"),
            Err(_) => tracing::debug!("offload worker heartbeat timed out"),
        }
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        for attempt in 1..=5u32 {
            let nominal = base * (1 << (attempt - 1));
            for _ in 0..50 {
                let b = backoff(base, attempt);
                assert!(b >= nominal / 2 && b <= nominal * 3 / 2, "{attempt}: {b:?}");
            }
        }
        assert_eq!(
            backoff(Duration::from_secs(60), 30),
            Duration::from_secs(3600)
        );
    }
}
