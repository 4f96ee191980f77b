//! `Fleet`: the caller's handle. Submits jobs to the queue's streams and routes the replies
//! its reader task receives to the waiting futures.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use offload::{Error, Portable, Priority, RunOptions, Runner};
use redis::Value;
use redis::aio::ConnectionManager;
use serde::Serialize;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};

use crate::conn;
use crate::error::{ConnectError, TryRunError};
use crate::keys::Keys;
use crate::protocol::{self, Entry, Reply};
use crate::submitter::Submitter;

/// The caller's side of a queue: `fleet.run(task).await` runs `task` on one of the worker
/// processes serving the queue and resolves to its output, like
/// [`Pool::run`](offload::Pool::run) does on local threads.
///
/// A `Fleet` is a cheap handle (`Clone + Send + Sync`). It keeps two connections to Redis
/// (commands, and a blocking read of its own reply stream), a task that routes replies
/// to the waiting futures, and one that batches inserts under load.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use offload::Task;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Square(u64);
///
/// impl Task for Square {
///     type Output = u64;
///     fn run(self) -> u64 { self.0 * self.0 }
///     fn name(&self) -> &'static str { "square" }
/// }
///
/// let fleet = offload_redis::Fleet::connect("redis://127.0.0.1/", "math").await?;
/// assert_eq!(fleet.run(Square(12)).await?, 144);
/// # Ok(())
/// # }
/// ```
///
/// # Backpressure
///
/// Two limits, both checked before anything is sent: at most
/// [`max_in_flight`](FleetBuilder::max_in_flight) jobs of this handle await their results
/// at once, and at most [`backlog_cap`](FleetBuilder::backlog_cap) entries sit in the
/// queue's streams (waiting or running, from every caller; checked atomically with the
/// insert, never enforced by trimming). [`run`](Fleet::run) waits for room (within its
/// timeout); [`try_run`](Fleet::try_run) refuses at once and hands the task back.
///
/// # Delivery
///
/// At-least-once execution, exactly-once delivery of the first result: see the crate docs.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    conn: ConnectionManager,
    keys: Keys,
    reply_key: String,
    caller: String,
    next_job: AtomicU64,
    in_flight: Arc<Semaphore>,
    /// Sends this handle's inserts to Redis in batches.
    submitter: Submitter,
    /// A moving average of this handle's round trips (submit to result), in µs: the
    /// retry hint when its in-flight limit refuses a task.
    round_trip_us: AtomicU64,
    config: FleetBuilder,
}

/// What the reply reader and the waiting futures share.
struct Shared {
    waiting: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    counters: Counters,
    closed: AtomicBool,
    stop: Notify,
}

impl Shared {
    fn waiting(&self) -> MutexGuard<'_, HashMap<String, oneshot::Sender<Reply>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single
        // inserts and removes), so a poisoned lock is still usable.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
    refused: AtomicU64,
    unavailable: AtomicU64,
    cancelled: AtomicU64,
    duplicates_dropped: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A snapshot of one [`Fleet`] handle's counters (this process's view; see
/// [`Fleet::queue_stats`] for the queue's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FleetMetrics {
    /// Jobs added to the queue.
    pub submitted: u64,
    /// Jobs whose output arrived.
    pub completed: u64,
    /// Jobs that came back dead-lettered ([`Error::Failed`]).
    pub failed: u64,
    /// Jobs whose caller's timeout or deadline passed first.
    pub timed_out: u64,
    /// Tasks refused before they were queued (in-flight limit, backlog cap).
    pub refused: u64,
    /// Calls that ended in [`Error::Unavailable`].
    pub unavailable: u64,
    /// Jobs whose caller dropped its future before the result came (a cancel was sent).
    pub cancelled: u64,
    /// Replies that found no waiting caller and were dropped: a second reply to one job,
    /// or one that arrived after its caller gave up.
    pub duplicates_dropped: u64,
    /// Jobs of this handle awaiting their result now.
    pub in_flight: u64,
}

/// The queue as Redis sees it, from every caller and worker: see [`Fleet::queue_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct QueueStats {
    /// Entries in the job streams (waiting or running) plus jobs waiting out a retry
    /// backoff: what [`backlog_cap`](FleetBuilder::backlog_cap) bounds.
    pub backlog: u64,
    /// Of those, jobs waiting out a retry backoff.
    pub delayed: u64,
    /// Entries in the dead-letter stream.
    pub dead_letters: u64,
    /// Workers whose last heartbeat is within their lease.
    pub live_workers: u64,
    /// Jobs whose output was delivered (owner-checked).
    pub completed: u64,
    /// Runs that panicked and were scheduled again.
    pub retried: u64,
    /// Jobs claimed from a worker whose lease expired.
    pub redelivered: u64,
    /// Jobs set aside in the dead-letter stream.
    pub dead_lettered: u64,
    /// Jobs discarded unrun because their deadline had passed.
    pub expired: u64,
    /// Jobs dropped because their caller cancelled (unrun, or stopped while running).
    pub cancelled: u64,
    /// Heartbeats and completions refused because the worker no longer owned the job
    /// (a zombie's; one lost job counts once or twice).
    pub lost: u64,
    /// Silent workers removed from the consumer group.
    pub workers_removed: u64,
}

/// Configures a [`Fleet`]: limits and timeouts. Made by [`Fleet::builder`].
#[derive(Debug, Clone)]
pub struct FleetBuilder {
    max_in_flight: usize,
    backlog_cap: u64,
    max_payload: usize,
    command_timeout: Duration,
    outage_grace: Duration,
}

impl FleetBuilder {
    /// At most this many jobs of this handle await their results at once. Default: 1024.
    ///
    /// # Panics
    ///
    /// If `limit` is 0.
    #[track_caller]
    pub fn max_in_flight(mut self, limit: usize) -> FleetBuilder {
        assert!(limit > 0, "max_in_flight must be at least 1");
        self.max_in_flight = limit.min(Semaphore::MAX_PERMITS);
        self
    }

    /// At most this many entries in the queue (waiting, running, or waiting out a retry
    /// backoff, from every caller) before new jobs are refused; 0: no cap. Default: 10 000.
    pub fn backlog_cap(mut self, cap: u64) -> FleetBuilder {
        self.backlog_cap = cap;
        self
    }

    /// The largest encoded task sent, in bytes. Default: 32 MiB. Workers have their own
    /// limit ([`WorkerBuilder::max_payload`](crate::WorkerBuilder::max_payload)).
    pub fn max_payload(mut self, bytes: usize) -> FleetBuilder {
        self.max_payload = bytes;
        self
    }

    /// How long a command (submitting, cancelling) may keep trying while Redis is
    /// unreachable before the call fails with [`Error::Unavailable`]. Default: 2 s.
    pub fn command_timeout(mut self, timeout: Duration) -> FleetBuilder {
        self.command_timeout = timeout;
        self
    }

    /// How long Redis may stay unreachable while jobs await their results before every
    /// such job fails with [`Error::Unavailable`] (callers with a shorter timeout get
    /// [`Error::TimedOut`] first). Default: 10 s.
    pub fn outage_grace(mut self, grace: Duration) -> FleetBuilder {
        self.outage_grace = grace;
        self
    }

    /// Connects to `url` and serves the queue named `queue`.
    ///
    /// The URL carries the credentials and TLS: `redis://user:password@host:6379/0`, or
    /// `rediss://` with the `tls` feature.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Url`] for a bad URL; [`ConnectError::Redis`] when Redis does not
    /// answer or refuses the credentials.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the reply reader is a tokio task).
    pub async fn connect(self, url: &str, queue: &str) -> Result<Fleet, ConnectError> {
        let (keys, conn, reader_conn) = conn::open(url, queue, self.command_timeout).await?;
        let caller = unique_id();
        let shared = Arc::new(Shared {
            waiting: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            stop: Notify::new(),
        });
        let reply_key = keys.reply(&caller);
        let submitter = Submitter::spawn(
            conn.clone(),
            keys.clone(),
            self.backlog_cap,
            self.command_timeout,
        );
        tokio::spawn(read_replies(
            Arc::clone(&shared),
            reader_conn,
            reply_key.clone(),
            self.outage_grace,
        ));
        Ok(Fleet {
            inner: Arc::new(Inner {
                shared,
                conn,
                keys,
                reply_key,
                caller,
                next_job: AtomicU64::new(0),
                in_flight: Arc::new(Semaphore::new(self.max_in_flight)),
                round_trip_us: AtomicU64::new(0),
                submitter,
                config: self,
            }),
        })
    }
}

impl Default for FleetBuilder {
    fn default() -> FleetBuilder {
        FleetBuilder {
            max_in_flight: 1024,
            backlog_cap: 10_000,
            max_payload: 32 << 20,
            command_timeout: Duration::from_secs(2),
            outage_grace: Duration::from_secs(10),
        }
    }
}

impl Fleet {
    /// Connects with the default limits; see [`FleetBuilder::connect`].
    ///
    /// # Errors
    ///
    /// As [`FleetBuilder::connect`].
    pub async fn connect(url: &str, queue: &str) -> Result<Fleet, ConnectError> {
        FleetBuilder::default().connect(url, queue).await
    }

    /// Configures limits and timeouts before connecting.
    pub fn builder() -> FleetBuilder {
        FleetBuilder::default()
    }

    /// Prepares `task` to run on the fleet; set [`priority`](FleetRun::priority),
    /// [`timeout`](FleetRun::timeout) or [`deadline`](FleetRun::deadline), then `.await` it.
    ///
    /// # Errors
    ///
    /// The awaited result is [`Error::Failed`] when the job was dead-lettered (its runs
    /// panicked, or its workers were lost, `max_attempts` times; or a worker could not read
    /// it), [`Error::TimedOut`] when the timeout or deadline passed first,
    /// [`Error::Unavailable`] when Redis could not be reached in time, and
    /// [`Error::Closed`] after [`shutdown`](Fleet::shutdown).
    ///
    /// # Cancellation
    ///
    /// Dropping the future (or its timeout passing) before the result arrives sets the
    /// job's cancel key: a job not yet started is dropped unrun by the worker that takes
    /// it, and a running one is stopped at the worker's next heartbeat, where
    /// [`offload::is_cancelled`] turns true inside the task.
    pub fn run<T: Portable>(&self, task: T) -> FleetRun<T> {
        FleetRun {
            fleet: self.clone(),
            task,
            options: RunOptions::new(),
            trace: None,
            span: tracing::Span::current(),
        }
    }

    /// Submits `task` unless a limit is reached, without waiting for room; `.await` the
    /// handle for the output. Redis is asked once (the backlog cap is checked there).
    ///
    /// # Errors
    ///
    /// [`TryRunError::Full`] when this handle's in-flight limit or the queue's backlog
    /// cap is reached, [`TryRunError::Unavailable`] when Redis did not answer within the
    /// [`command_timeout`](FleetBuilder::command_timeout), [`TryRunError::Invalid`] when
    /// the task does not encode or is too large, [`TryRunError::Closed`] after shutdown.
    /// Each hands the task back.
    pub async fn try_run<T: Portable>(
        &self,
        task: T,
    ) -> Result<FleetHandle<T::Output>, TryRunError<T>> {
        let options = RunOptions::new().wait_for_room(false);
        let trace = span_context(&tracing::Span::current());
        let (ticket, task) = match submit(&self.inner, task, &options, trace).await {
            Ok(ticket) => ticket,
            Err((refusal, task)) => {
                return Err(match refusal {
                    Refusal::Full(_) => TryRunError::Full(task),
                    Refusal::Closed => TryRunError::Closed(task),
                    Refusal::Unavailable(_) => TryRunError::Unavailable(task),
                    Refusal::Invalid(_) => TryRunError::Invalid(task),
                });
            }
        };
        let name = task.name();
        Ok(FleetHandle {
            future: Box::pin(ticket.finish::<T::Output>(name, None)),
        })
    }

    /// This handle's counters and in-flight gauge.
    pub fn metrics(&self) -> FleetMetrics {
        let c = &self.inner.shared.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let max = self.inner.config.max_in_flight;
        FleetMetrics {
            submitted: get(&c.submitted),
            completed: get(&c.completed),
            failed: get(&c.failed),
            timed_out: get(&c.timed_out),
            refused: get(&c.refused),
            unavailable: get(&c.unavailable),
            cancelled: get(&c.cancelled),
            duplicates_dropped: get(&c.duplicates_dropped),
            in_flight: (max - self.inner.in_flight.available_permits()) as u64,
        }
    }

    /// The queue's backlog, dead letters, live workers and the counters the workers keep in
    /// Redis (completed, retried, redelivered, ...), read in one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when Redis does not answer within the command timeout.
    pub async fn queue_stats(&self) -> Result<QueueStats, Error> {
        let keys = &self.inner.keys;
        let mut pipe = redis::pipe();
        for stream in &keys.streams {
            pipe.cmd("XLEN").arg(stream);
        }
        pipe.cmd("ZCARD").arg(&keys.delayed);
        pipe.cmd("XLEN").arg(&keys.dead);
        pipe.cmd("ZCOUNT")
            .arg(&keys.workers)
            .arg(protocol::now_ms())
            .arg("+inf");
        pipe.cmd("HGETALL").arg(&keys.stats);
        let conn = self.inner.conn.clone();
        let values: Vec<Value> = conn::retry(self.inner.config.command_timeout, move || {
            let (pipe, mut conn) = (pipe.clone(), conn.clone());
            async move { pipe.query_async(&mut conn).await }
        })
        .await
        .map_err(unavailable)?;
        let n = |i: usize| values.get(i).map_or(0, protocol::int).max(0) as u64;
        let mut stats = QueueStats {
            backlog: n(0) + n(1) + n(2) + n(3),
            delayed: n(3),
            dead_letters: n(4),
            live_workers: n(5),
            ..QueueStats::default()
        };
        let pairs = values
            .get(6)
            .cloned()
            .map(protocol::items)
            .unwrap_or_default();
        for pair in pairs.chunks_exact(2) {
            let count = protocol::int(&pair[1]).max(0) as u64;
            let slot = match protocol::text(pair[0].clone()).as_str() {
                "completed" => &mut stats.completed,
                "retried" => &mut stats.retried,
                "redelivered" => &mut stats.redelivered,
                "dead_lettered" => &mut stats.dead_lettered,
                "expired" => &mut stats.expired,
                "cancelled" => &mut stats.cancelled,
                "lost" => &mut stats.lost,
                "workers_removed" => &mut stats.workers_removed,
                _ => continue,
            };
            *slot = count;
        }
        Ok(stats)
    }

    /// This handle's reply stream key, `offload:{queue}:reply:<caller id>`.
    pub fn reply_key(&self) -> &str {
        &self.inner.reply_key
    }

    /// Refuses new calls, waits until the jobs in flight have their results (or their
    /// callers gave up), then stops the reply reader. Jobs still queued by then are
    /// cancelled as their futures drop.
    ///
    /// # Cancellation
    ///
    /// Dropping the future leaves the handle closed; the reader keeps running until the
    /// last handle drops.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.shared.closed.store(true, Ordering::Release);
        let all = u32::try_from(inner.config.max_in_flight).unwrap_or(u32::MAX);
        // Every in-flight job holds a permit until its future ends.
        if let Ok(permits) = inner.in_flight.acquire_many(all).await {
            permits.forget();
        }
        inner.in_flight.close();
        inner.shared.stop.notify_one();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.stop.notify_one();
    }
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("caller", &self.inner.caller)
            .field("reply_key", &self.inner.reply_key)
            .field("metrics", &self.metrics())
            .finish()
    }
}

impl Runner for Fleet {
    fn run_with<T: Portable>(
        &self,
        task: T,
        options: RunOptions,
    ) -> impl Future<Output = Result<T::Output, Error>> + Send + 'static {
        let trace = span_context(&tracing::Span::current());
        run(Arc::clone(&self.inner), task, options, trace)
    }
}

/// A task about to be submitted to the fleet, returned by [`Fleet::run`]; `.await` it.
#[must_use = "a task is submitted only when the `FleetRun` is awaited"]
pub struct FleetRun<T: Portable> {
    fleet: Fleet,
    task: T,
    options: RunOptions,
    trace: Option<String>,
    /// The caller's span when the run was made: its context goes with the job.
    span: tracing::Span,
}

impl<T: Portable> FleetRun<T> {
    /// Which stream the job goes to: workers take `High` jobs first. Default:
    /// [`Priority::Normal`].
    pub fn priority(mut self, priority: Priority) -> FleetRun<T> {
        self.options = self.options.priority(priority);
        self
    }

    /// Gives up `timeout` after the first poll (waiting for room included): the caller
    /// gets [`Error::TimedOut`], the job is cancelled, and a worker that takes it after
    /// the deadline discards it unrun. Default: none.
    pub fn timeout(mut self, timeout: Duration) -> FleetRun<T> {
        self.options = self.options.timeout(timeout);
        self
    }

    /// Gives up at `deadline`, as [`timeout`](FleetRun::timeout) does (the earlier applies).
    pub fn deadline(mut self, deadline: Instant) -> FleetRun<T> {
        self.options = self.options.deadline(deadline);
        self
    }

    /// Carries a trace context (such as a W3C `traceparent`) to the worker, which records
    /// it as the `trace` field of the job's `offload_job` span. Default: the caller's
    /// current [`tracing`] span when [`Fleet::run`] was called, as
    /// `<span name>@<process id>:<span id>` (empty when no subscriber records spans).
    pub fn trace(mut self, context: impl Into<String>) -> FleetRun<T> {
        self.trace = Some(context.into());
        self
    }
}

impl<T: Portable> IntoFuture for FleetRun<T> {
    type Output = Result<T::Output, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<T::Output, Error>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let trace = self.trace.unwrap_or_else(|| span_context(&self.span));
        Box::pin(run(self.fleet.inner, self.task, self.options, trace))
    }
}

impl<T: Portable> fmt::Debug for FleetRun<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetRun")
            .field("task", &self.task.name())
            .field("options", &self.options)
            .finish()
    }
}

/// A job [`Fleet::try_run`] queued; `.await` it for the output. Dropping it cancels the
/// job as dropping [`Fleet::run`]'s future does.
#[must_use = "dropping the handle cancels the job"]
pub struct FleetHandle<O> {
    future: Pin<Box<dyn Future<Output = Result<O, Error>> + Send>>,
}

impl<O> Future for FleetHandle<O> {
    type Output = Result<O, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl<O> fmt::Debug for FleetHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FleetHandle(..)")
    }
}

/// Why a task was not queued.
enum Refusal {
    /// A limit is reached; room is expected after the estimate given.
    Full(Duration),
    Closed,
    Unavailable(String),
    Invalid(String),
}

/// A queued job: its in-flight permit, its reply, and the guard that cancels it when the
/// caller stops waiting.
struct Ticket {
    _permit: OwnedSemaphorePermit,
    submitted: Instant,
    reply: oneshot::Receiver<Reply>,
    guard: Waiting,
}

/// Removes the job from the waiting map when the caller stops waiting; if no reply had come
/// by then, sets the job's cancel key (in the background: `Drop` cannot wait).
struct Waiting {
    inner: Arc<Inner>,
    job: String,
    cancel_ttl: Duration,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.inner.shared.waiting().remove(&self.job).is_none() {
            return;
        }
        bump(&self.inner.shared.counters.cancelled);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let conn = self.inner.conn.clone();
        let key = format!("{}{}", self.inner.keys.cancel_prefix(), self.job);
        let ttl = u64::try_from(self.cancel_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let budget = self.inner.config.command_timeout;
        runtime.spawn(async move {
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(1).arg("PX").arg(ttl);
            let set = conn::retry(budget, move || {
                let (set, mut conn) = (set.clone(), conn.clone());
                async move { set.query_async::<()>(&mut conn).await }
            })
            .await;
            if let Err(e) = set {
                tracing::warn!(key, error = %e, "could not cancel a fleet job");
            }
        });
    }
}

impl Ticket {
    /// Awaits the reply (until `limit`, if any) and decodes it.
    async fn finish<O: serde::de::DeserializeOwned>(
        self,
        task: &'static str,
        limit: Option<(Instant, Duration)>,
    ) -> Result<O, Error> {
        let counters = &self.guard.inner.shared.counters;
        let reply = match limit {
            None => self.reply.await,
            Some((at, after)) => match tokio::time::timeout_at(at.into(), self.reply).await {
                Ok(reply) => reply,
                Err(_) => {
                    bump(&counters.timed_out);
                    return Err(Error::TimedOut { task, after });
                }
            },
        };
        let result = match reply {
            Ok(Reply::Output(bytes)) => protocol::decode(&bytes).map_err(|message| Error::Failed {
                task,
                attempts: 1,
                message: format!("the output did not decode: {message}"),
            }),
            Ok(Reply::Failed { attempts, message }) => Err(Error::Failed {
                task,
                attempts,
                message,
            }),
            Ok(Reply::Unavailable(message)) => Err(Error::Unavailable { message }),
            // The reader stopped: the handle was dropped or shut down.
            Err(_) => Err(Error::Closed),
        };
        match &result {
            Ok(_) => {
                bump(&counters.completed);
                self.guard
                    .inner
                    .observe_round_trip(self.submitted.elapsed());
            }
            Err(Error::Failed { .. }) => bump(&counters.failed),
            Err(Error::Unavailable { .. }) => bump(&counters.unavailable),
            Err(_) => {}
        }
        result
    }
}

/// The whole life of one `run`: admission, the insert, the wait, the decode.
async fn run<T: Portable>(
    inner: Arc<Inner>,
    task: T,
    options: RunOptions,
    trace: String,
) -> Result<T::Output, Error> {
    let name = task.name();
    let started = Instant::now();
    let limit = match (options.timeout, options.deadline) {
        (Some(t), Some(d)) => Some((d.min(started + t), t)),
        (Some(t), None) => Some((started + t, t)),
        (None, Some(d)) => Some((d, d.saturating_duration_since(started))),
        (None, None) => None,
    };
    let submitted = submit(&inner, task, &options, trace);
    let ticket = match limit {
        None => submitted.await,
        Some((at, after)) => match tokio::time::timeout_at(at.into(), submitted).await {
            Ok(ticket) => ticket,
            Err(_) => {
                bump(&inner.shared.counters.timed_out);
                return Err(Error::TimedOut { task: name, after });
            }
        },
    };
    match ticket {
        Ok((ticket, _task)) => ticket.finish(name, limit).await,
        Err((refusal, _task)) => Err(match refusal {
            Refusal::Full(retry_after) => Error::Overloaded {
                task: name,
                retry_after,
            },
            Refusal::Closed => Error::Closed,
            Refusal::Unavailable(message) => Error::Unavailable { message },
            Refusal::Invalid(message) => Error::Failed {
                task: name,
                attempts: 0,
                message,
            },
        }),
    }
}

/// Admits and queues one job. Waits for room when `options.wait_for_room`, else refuses
/// at once. The task comes back either way (it was only serialized).
async fn submit<T: Portable>(
    inner: &Arc<Inner>,
    task: T,
    options: &RunOptions,
    trace: String,
) -> Result<(Ticket, T), (Refusal, T)> {
    let counters = &inner.shared.counters;
    if inner.shared.closed.load(Ordering::Acquire) {
        return Err((Refusal::Closed, task));
    }
    let permit = if options.wait_for_room {
        match Arc::clone(&inner.in_flight).acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => return Err((Refusal::Closed, task)),
        }
    } else {
        match Arc::clone(&inner.in_flight).try_acquire_owned() {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::Closed) => return Err((Refusal::Closed, task)),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                bump(&counters.refused);
                // Room comes as the jobs in flight complete: about one round trip.
                let retry_after = hint(inner.round_trip_us.load(Ordering::Relaxed) as f64);
                return Err((Refusal::Full(retry_after), task));
            }
        }
    };
    // A task's cost is its input's size where it has one (`Thumbnail`'s bytes, a report's
    // rows): room for that and the fields around it.
    let size_hint = usize::try_from(task.cost()).map_or(0, |cost| cost.saturating_add(256));
    let payload = match protocol::encode_sized(&task, size_hint.min(inner.config.max_payload)) {
        Ok(p) if p.len() <= inner.config.max_payload => p,
        Ok(p) => {
            let limit = inner.config.max_payload;
            let message = format!(
                "payload of {} bytes exceeds the {limit}-byte limit",
                p.len()
            );
            return Err((Refusal::Invalid(message), task));
        }
        Err(e) => return Err((Refusal::Invalid(format!("task did not encode: {e}")), task)),
    };
    let now = Instant::now();
    let until = match (options.timeout, options.deadline) {
        (Some(t), Some(d)) => Some(d.min(now + t)),
        (Some(t), None) => Some(now + t),
        (None, d) => d,
    };
    let left = until.map(|u| u.saturating_duration_since(now));
    let job = format!(
        "{}:{}",
        inner.caller,
        inner.next_job.fetch_add(1, Ordering::Relaxed)
    );
    let entry = Entry {
        job: job.clone(),
        task: task.name().to_owned(),
        reply: inner.reply_key.clone(),
        deadline_ms: left.map_or(0, protocol::ms_after),
        trace,
        payload,
    };
    // Registered before the insert: a fast worker's reply must find it.
    let (tx, rx) = oneshot::channel();
    inner.shared.waiting().insert(job.clone(), tx);
    let guard = Waiting {
        inner: Arc::clone(inner),
        job,
        cancel_ttl: left.unwrap_or(Duration::from_secs(3600)) + Duration::from_secs(60),
    };
    let stream = Keys::stream_index(options.priority);
    let mut fields = entry.into_fields();
    let mut pause = Duration::from_millis(5);
    loop {
        let (added, back) = inner.submitter.submit(stream, fields).await;
        fields = back;
        match added.as_deref() {
            Ok([1, ..]) => {
                bump(&counters.submitted);
                let ticket = Ticket {
                    _permit: permit,
                    submitted: now,
                    reply: rx,
                    guard,
                };
                return Ok((ticket, task));
            }
            Ok(_) if options.wait_for_room => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Ok(refused) => {
                forget(guard);
                bump(&counters.refused);
                let at = |i: usize| refused.get(i).map_or(0, |&n| u64::try_from(n).unwrap_or(0));
                let retry_after = queue_retry_after(at(1), at(2), at(3), at(4));
                return Err((Refusal::Full(retry_after), task));
            }
            Err(e) => {
                forget(guard);
                bump(&counters.unavailable);
                return Err((Refusal::Unavailable(e.clone()), task));
            }
        }
    }
}

/// The retry hint when the queue's backlog cap refuses a task: the time the live workers
/// need to serve the backlog at their observed pace (`service_us` over `runs` is the mean
/// time a worker spends per job, its threads counted), clamped to 10 ms ..= 60 s; 1 s
/// while no worker has reported a run or none is live.
fn queue_retry_after(backlog: u64, live_workers: u64, service_us: u64, runs: u64) -> Duration {
    if runs == 0 || live_workers == 0 {
        return Duration::from_secs(1);
    }
    let per_job_us = service_us as f64 / runs as f64;
    hint(backlog as f64 * per_job_us / live_workers as f64)
}

/// `us` microseconds as a retry hint, clamped to 10 ms ..= 60 s (1 s when unknown).
fn hint(us: f64) -> Duration {
    if us.is_nan() || us <= 0.0 {
        return Duration::from_secs(1);
    }
    Duration::from_secs_f64((us / 1e6).clamp(0.01, 60.0))
}

impl Inner {
    /// Folds one completed round trip into the moving average (weight 1/8).
    fn observe_round_trip(&self, took: Duration) {
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .round_trip_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    took
                } else {
                    old - old / 8 + took / 8
                })
            });
    }
}

/// A span as a trace context a worker can record: `<name>@<process id>:<span id>`, which
/// a log search joins with the caller's span (span ids are unique within a process while
/// the span lives). Empty for a disabled span (no subscriber, or filtered out).
fn span_context(span: &tracing::Span) -> String {
    match (span.metadata(), span.id()) {
        (Some(meta), Some(id)) => {
            format!("{}@{}:{}", meta.name(), std::process::id(), id.into_u64())
        }
        _ => String::new(),
    }
}

/// Drops a job that was never queued without sending a cancel.
fn forget(guard: Waiting) {
    guard.inner.shared.waiting().remove(&guard.job);
}

fn unavailable(e: redis::RedisError) -> Error {
    Error::Unavailable {
        message: e.to_string(),
    }
}

/// A process-unique, restart-unique id: never reused, unlike a configured worker name.
pub(crate) fn unique_id() -> String {
    format!("{}-{:016x}", std::process::id(), crate::random_u64())
}

/// How many replies the reader routes between two trims of its reply stream.
const TRIM_EVERY: usize = 256;

/// The reply reader: blocks on this caller's reply stream, routes each reply to its waiting
/// future, trims what it read, and fails the waiting jobs when Redis stays unreachable
/// longer than `grace`.
async fn read_replies(
    shared: Arc<Shared>,
    mut conn: ConnectionManager,
    key: String,
    grace: Duration,
) {
    let mut last = "0-0".to_owned();
    let mut untrimmed = 0usize;
    let mut down_since: Option<Instant> = None;
    let block = u64::try_from(conn::MAX_BLOCK.as_millis()).unwrap_or(1000);
    loop {
        if shared.closed.load(Ordering::Acquire) && shared.waiting().is_empty() {
            return;
        }
        let mut read = redis::cmd("XREAD");
        read.arg("COUNT")
            .arg(1024)
            .arg("BLOCK")
            .arg(block)
            .arg("STREAMS")
            .arg(&key)
            .arg(&last);
        let read = read.query_async::<Value>(&mut conn);
        let value = tokio::select! {
            value = read => value,
            () = shared.stop.notified() => {
                if shared.waiting().is_empty() {
                    return;
                }
                // Jobs still wait: keep reading; shutdown waits for them.
                continue;
            }
        };
        let value = match value {
            Ok(v) => {
                down_since = None;
                v
            }
            Err(e) => {
                let since = *down_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= grace {
                    let message = format!("redis unreachable for {grace:?}: {e}");
                    for (_, waiter) in shared.waiting().drain() {
                        let _ = waiter.send(Reply::Unavailable(message.clone()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let mut read = 0;
        for stream in protocol::items(value) {
            let mut parts = protocol::items(stream).into_iter().skip(1);
            let Some(list) = parts.next() else { continue };
            for (id, fields) in protocol::entries(list) {
                read += 1;
                last = id;
                let routed = protocol::parse_reply(&fields).and_then(|(job, reply)| {
                    let waiter = shared.waiting().remove(&job)?;
                    waiter.send(reply).ok()
                });
                if routed.is_none() {
                    bump(&shared.counters.duplicates_dropped);
                }
            }
        }
        untrimmed += read;
        // Trimming costs a round trip before the next read: do it per few hundred replies,
        // or when the stream went quiet (a read that timed out empty).
        if untrimmed >= TRIM_EVERY || (read == 0 && untrimmed > 0) {
            untrimmed = 0;
            // Everything up to `last` is routed: trim it (MINID keeps `last` itself, which
            // the next read starts after).
            let trimmed = redis::cmd("XTRIM")
                .arg(&key)
                .arg("MINID")
                .arg(&last)
                .query_async::<()>(&mut conn)
                .await;
            if let Err(e) = trimmed {
                tracing::debug!(error = %e, "could not trim the reply stream");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_hint_is_the_backlogs_drain_time() {
        // 10 runs took 10 ms of a worker's time: 1 ms a job; 100 jobs over 2 workers.
        assert_eq!(
            queue_retry_after(100, 2, 10_000, 10),
            Duration::from_millis(50)
        );
        // Clamped both ways.
        assert_eq!(queue_retry_after(1, 1, 10, 10), Duration::from_millis(10));
        assert_eq!(
            queue_retry_after(1_000_000, 1, 1_000_000, 1),
            Duration::from_secs(60)
        );
        // Nothing known: one second.
        assert_eq!(
            queue_retry_after(100, 0, 10_000, 10),
            Duration::from_secs(1)
        );
        assert_eq!(queue_retry_after(100, 2, 0, 0), Duration::from_secs(1));
        assert_eq!(hint(0.0), Duration::from_secs(1));
        assert_eq!(hint(f64::NAN), Duration::from_secs(1));
    }

    #[test]
    fn a_span_context_names_the_span_and_is_empty_without_one() {
        assert_eq!(span_context(&tracing::Span::none()), "");
    }
}
