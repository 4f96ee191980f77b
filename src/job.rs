//! A job: one task with what the pool knows about it, run on a worker thread (or, for an
//! inline pool, on the caller's), reporting its result through a oneshot channel.
//!
//! Running a task means: skip it if its caller left or its deadline passed; otherwise run it
//! inside its tracing span, under a panic guard, with the cancellation context that
//! [`is_cancelled`] reads; time it into the [`Recorder`]; send the result.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::countdown::{Countdown, Tick};
use crate::error::Error;
use crate::metrics::Recorder;
use crate::priority::Priority;
use crate::task::Task;
use crate::time::{self, Stamp};

/// What the pool knows about a task besides the task itself.
#[derive(Debug)]
pub(crate) struct JobMeta {
    pub(crate) name: &'static str,
    pub(crate) enqueued: Stamp,
    pub(crate) timeout: Option<Duration>,
    pub(crate) deadline: Option<Instant>,
    /// The span current where the task was submitted: the task's own span nests under it.
    pub(crate) parent: tracing::Span,
}

impl JobMeta {
    /// The metadata of a task submitted now, from the current span.
    pub(crate) fn now(
        name: &'static str,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> JobMeta {
        JobMeta {
            name,
            enqueued: time::stamp(),
            timeout,
            deadline,
            parent: tracing::Span::current(),
        }
    }

    pub(crate) fn expired(&self) -> bool {
        time::is_past(self.deadline)
    }

    pub(crate) fn timed_out(&self) -> Error {
        Error::timed_out(self.name, self.timeout)
    }
}

/// What one task adds to the backlog while it is queued (and its time while it runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Charge {
    /// Expected run time in nanoseconds; 0 when nothing is known yet.
    pub(crate) expected_ns: u64,
    /// The task's cost in the queue's cost bound.
    pub(crate) cost: u64,
    /// Queue index (priority), where the time is counted while queued.
    pub(crate) queue: usize,
}

impl Charge {
    pub(crate) fn new(expected: Option<Duration>, cost: u64, priority: Priority) -> Charge {
        Charge {
            expected_ns: expected.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            cost,
            queue: priority.queue_index(),
        }
    }
}

/// The receiving half of a job's result channel.
pub(crate) type Reply<O> = oneshot::AsyncReceiver<Result<O, Error>>;

/// A handle's way to take its task back out of the queue, whatever the task's type.
pub(crate) trait Withdraw: Send + Sync + 'static {
    /// Drops the task unrun if no drainer has claimed it yet. Either way the caller is gone
    /// from then on: a running task sees `is_cancelled`.
    fn withdraw(&self) -> Withdrawn;
}

/// A panic caught where it cannot be raised yet.
pub(crate) type Panic = Box<dyn Any + Send>;

/// What [`Withdraw::withdraw`] did.
#[derive(Default)]
pub(crate) struct Withdrawn {
    /// The charge the task held in the queue; `None` if a drainer claimed it first (it
    /// runs, or has run).
    pub(crate) charge: Option<Charge>,
    /// The task's `Drop` panicked. The caller finishes its bookkeeping (frees the slot,
    /// counts the outcome) before raising it, so a panicking input cannot leave a task
    /// uncounted or its slot taken.
    pub(crate) panic: Option<Panic>,
}

/// A queued task with its metadata (behind one pointer, shared with its handle), and what
/// the scheduler reads without touching the task: its charge, when it was queued, whether it
/// has a deadline.
///
/// A job dropped without a finishing step ([`run`](Job::run), [`shed`](Job::shed)) resolves
/// as closed, so its caller never waits on a job that is gone: that is how the jobs of an
/// abandoned pool end.
pub(crate) struct Job {
    /// `None` once a finishing step took it.
    body: Option<Arc<dyn Body>>,
    pub(crate) charge: Charge,
    pub(crate) enqueued: Stamp,
    /// When the caller stops waiting, if it ever does.
    pub(crate) deadline: Option<Instant>,
    /// Admitted against a forecast of its deadline, which the scheduler checks again at
    /// dequeue; set by the scheduler.
    pub(crate) forecast: bool,
}

impl Job {
    /// Packs a task, its metadata and the sending half of its result channel; returns the
    /// job, the receiving half, and the handle's way to withdraw the task while it is
    /// queued (the same allocation). A job of a batch also ticks the batch's countdown once
    /// it is done with, however it ends.
    pub(crate) fn new<T: Task>(
        task: T,
        meta: JobMeta,
        charge: Charge,
        batch: Option<&Arc<Countdown>>,
    ) -> (Job, Reply<T::Output>, Arc<dyn Withdraw>) {
        let (tx, rx) = oneshot::async_channel();
        let enqueued = meta.enqueued;
        let deadline = meta.deadline;
        let body = Arc::new(TaskJob {
            meta,
            charge,
            claimed: AtomicBool::new(false),
            caller_gone: AtomicBool::new(false),
            parts: Mutex::new(Some(Parts {
                task: Some(task),
                tx,
                tick: Tick(batch.map(Arc::clone)),
            })),
        });
        let withdraw = Arc::clone(&body) as Arc<dyn Withdraw>;
        let job = Job {
            body: Some(body),
            charge,
            enqueued,
            deadline,
            forecast: false,
        };
        (job, rx, withdraw)
    }

    /// A drainer claims the task, to run it or to resolve it unrun (abandoned, shed, timed
    /// out). `false`: its handle withdrew it first, and only the empty job is left to drop.
    pub(crate) fn claim(&self) -> bool {
        self.body.as_ref().is_some_and(|body| body.claim())
    }

    /// Runs the claimed task, taking `now` as its start time; returns when it ended (or
    /// `now` if it did not run), so a drainer reads the clock once per task, not twice.
    pub(crate) fn run(mut self, recorder: &Recorder, now: Stamp) -> Stamp {
        match self.body.take() {
            Some(body) => body.run(recorder, now),
            None => now,
        }
    }

    /// The queue-delay policy drops this job unrun: its caller learns it as overloaded.
    pub(crate) fn shed(mut self, retry_after: Duration) {
        if let Some(body) = self.body.take() {
            let task = body.name();
            body.finish(Error::Overloaded { task, retry_after });
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(body) = self.body.take() {
            body.finish(Error::Closed);
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job(..)")
    }
}

/// The typed part of a job, behind `dyn` so that one channel carries every task type.
trait Body: Send + Sync + 'static {
    fn claim(&self) -> bool;
    fn run(self: Arc<Self>, recorder: &Recorder, now: Stamp) -> Stamp;
    fn name(&self) -> &'static str;
    /// Resolves the job unrun with `error` (nobody hears it if the caller left).
    fn finish(&self, error: Error);
}

/// A task with its metadata and result channel, shared by the job (a drainer's, once popped)
/// and the task's handle, which may withdraw the task while nobody has claimed it. While the
/// task runs, it also stands in thread-local storage as the [`Watch`] that
/// [`is_cancelled`] asks.
struct TaskJob<T: Task> {
    meta: JobMeta,
    charge: Charge,
    /// Set by whichever comes first: a drainer's claim or the handle's withdrawal.
    claimed: AtomicBool,
    /// Set when the handle is done waiting (dropped, or timed out): nobody hears the result.
    caller_gone: AtomicBool,
    /// Taken out whole, once: by the drainer that claimed the job, or by a withdrawal (which
    /// drops the task at once and leaves the rest for the drainer that discards the job).
    parts: Mutex<Option<Parts<T>>>,
}

/// What the drainer takes out of a job to run it and answer.
struct Parts<T: Task> {
    task: Option<T>,
    tx: oneshot::Sender<Result<T::Output, Error>>,
    /// Dropped (ticking a batch's countdown) after the result has been sent.
    tick: Tick,
}

impl<T: Task> Parts<T> {
    /// Sends `result` (an error means the caller left meanwhile: it counted that itself),
    /// then ticks the batch's countdown.
    fn send(self, result: Result<T::Output, Error>) {
        let Parts { tx, tick, .. } = self;
        let _ = tx.send(result);
        drop(tick);
    }
}

impl<T: Task> TaskJob<T> {
    fn parts(&self) -> std::sync::MutexGuard<'_, Option<Parts<T>>> {
        self.parts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_parts(&self) -> Option<Parts<T>> {
        self.parts().take()
    }
}

impl<T: Task> Withdraw for TaskJob<T> {
    fn withdraw(&self) -> Withdrawn {
        self.caller_gone.store(true, Ordering::Release);
        if self.claimed.swap(true, Ordering::AcqRel) {
            return Withdrawn::default();
        }
        // Dropped here, outside the lock: the input may be large.
        let task = self.parts().as_mut().and_then(|parts| parts.task.take());
        let panic = panic::catch_unwind(AssertUnwindSafe(move || drop(task))).err();
        Withdrawn {
            charge: Some(self.charge),
            panic,
        }
    }
}

impl<T: Task> Body for TaskJob<T> {
    fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }

    fn run(self: Arc<Self>, recorder: &Recorder, now: Stamp) -> Stamp {
        let Some(mut parts) = self.take_parts() else {
            return now;
        };
        // Whoever stopped waiting already counted the task as cancelled or timed out.
        let Some(task) = parts.task.take().filter(|_| !self.caller_gone()) else {
            return now;
        };
        if self.meta.expired() {
            parts.send(Err(self.meta.timed_out()));
            return now;
        }
        // The job stands in thread-local storage while the task runs, so that
        // `is_cancelled` can ask it whether the caller is still there.
        let watch = Arc::clone(&self) as Arc<dyn Watch>;
        let (result, ended) = invoke(task, &self.meta, recorder, now, Some(watch));
        parts.send(result);
        ended
    }

    fn name(&self) -> &'static str {
        self.meta.name
    }

    fn finish(&self, error: Error) {
        if let Some(parts) = self.take_parts() {
            parts.send(Err(error));
        }
    }
}

/// What [`is_cancelled`] asks while a task runs: whether its caller is still there.
pub(crate) trait Watch: Send + Sync + 'static {
    fn caller_gone(&self) -> bool;
}

impl<T: Task> Watch for TaskJob<T> {
    fn caller_gone(&self) -> bool {
        self.caller_gone.load(Ordering::Acquire)
    }
}

struct Current {
    watch: Option<Arc<dyn Watch>>,
    deadline: Option<Instant>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Runs `task` right here, on the calling thread, unless its deadline passed since
/// submission: an inline pool's tasks, and tasks submitted from one of the pool's own threads.
pub(crate) fn run_here<T: Task>(
    task: T,
    meta: &JobMeta,
    recorder: &Recorder,
) -> Result<T::Output, Error> {
    if meta.expired() {
        return Err(meta.timed_out());
    }
    invoke(task, meta, recorder, time::stamp(), None).0
}

/// Whether a task is running on this thread, further down its stack: a drainer that finds
/// one is nested inside a task that waits in rayon.
pub(crate) fn task_running_here() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

/// What [`invoke`] hands back: the result, and when the run ended.
pub(crate) type Invoked<O> = (Result<O, Error>, Stamp);

/// Runs `task` under its span, a panic guard and the cancellation context, then records its
/// timing. Shared by the worker threads and by inline pools.
///
/// Everything here that calls into tracing (the span's creation, enter, exit and close, the
/// slow-task event) is inside a panic guard too: a tracing layer that panics fails this one
/// task as [`Error::Panicked`], with the caller told, instead of unwinding past the result
/// (which Rust would then leak, stranding the caller).
pub(crate) fn invoke<T: Task>(
    task: T,
    meta: &JobMeta,
    recorder: &Recorder,
    started: Stamp,
    watch: Option<Arc<dyn Watch>>,
) -> Invoked<T::Output> {
    let current = Current {
        watch,
        deadline: meta.deadline,
    };
    let previous = CURRENT.with(|c| c.replace(Some(current)));
    let traced = panic::catch_unwind(AssertUnwindSafe(|| {
        run_traced(task, meta, recorder, started)
    }));
    // Restore, not clear: a task that waits inside rayon may run another task on this
    // thread in the meantime.
    CURRENT.with(|c| c.replace(previous));
    let (outcome, ended) = match traced {
        Ok(traced) => traced,
        // The task's own panics are caught inside; this one came from around it.
        Err(payload) => (Err(payload), time::stamp()),
    };
    let result = match outcome {
        Ok(_) if meta.expired() => Err(meta.timed_out()),
        Ok(value) => Ok(value),
        Err(payload) => Err(Error::Panicked {
            task: meta.name,
            message: panic_message(payload.as_ref()),
        }),
    };
    (result, ended)
}

type Caught<O> = Result<O, Box<dyn Any + Send>>;

/// The task inside its span, and the bookkeeping after it. Returns the task's own outcome
/// and when it ended; a panic here is one from outside the task.
fn run_traced<T: Task>(
    task: T,
    meta: &JobMeta,
    recorder: &Recorder,
    started: Stamp,
) -> (Caught<T::Output>, Stamp) {
    let wait = started.saturating_duration_since(meta.enqueued);
    let span = tracing::info_span!(
        parent: &meta.parent,
        "offload.task",
        task = meta.name,
        wait_us = time::micros(wait),
        run_us = tracing::field::Empty,
    );
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| span.in_scope(move || task.run())));
    let ended = time::stamp();
    let run = ended.saturating_duration_since(started);
    recorder.record(meta.name, wait, run);
    span.record("run_us", time::micros(run));
    if recorder.is_slow(run) {
        span.in_scope(|| {
            tracing::warn!(
                task = meta.name,
                run_ms = u64::try_from(run.as_millis()).unwrap_or(u64::MAX),
                "slow task"
            );
        });
    }
    // Closed here, explicitly, so a panicking `on_close` is caught by `invoke`'s guard.
    drop(span);
    (outcome, ended)
}

/// The message of a panic payload, when it is a string.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// Whether the task running on this thread should stop early: its caller dropped the future,
/// or its timeout passed.
///
/// Long tasks call this between units of work and return early when it turns true; the
/// caller is gone, so whatever they return is dropped. Outside a task it returns `false`.
/// It reflects the task whose body runs on the current thread, so call it from the task's
/// own code, not from closures it hands to `rayon` (those may run on other threads).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), offload::Error> {
/// let pool = offload::Pool::builder().threads(1).build().expect("threads start");
/// let rows_done = pool
///     .run(|| {
///         let mut done = 0;
///         for _chunk in 0..1_000 {
///             if offload::is_cancelled() {
///                 break;
///             }
///             done += 1;
///         }
///         done
///     })
///     .await?;
/// assert_eq!(rows_done, 1_000);
/// assert!(!offload::is_cancelled());
/// # Ok(())
/// # }
/// ```
pub fn is_cancelled() -> bool {
    CURRENT.with(|c| {
        let Ok(current) = c.try_borrow() else {
            return false;
        };
        current.as_ref().is_some_and(|cur| {
            time::is_past(cur.deadline) || cur.watch.as_ref().is_some_and(|w| w.caller_gone())
        })
    })
}
