//! A job: one task with what the pool knows about it, run on a worker thread (or, for an
//! inline pool, on the caller's), reporting its result through a oneshot channel.
//!
//! Running a task means: skip it if its caller left or its deadline passed; otherwise run it
//! inside its tracing span, under a panic guard, with the cancellation context that
//! [`is_cancelled`] reads; time it into the [`Recorder`]; send the result.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
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

/// A queued task's input, shared by its job and its handle. Whoever takes it first decides
/// how the task leaves the queue: a drainer, to run it, or the handle, whose caller left or
/// timed out, to drop it unrun right away (its input's memory and its queue slot are freed
/// then, not when a drainer reaches the job).
struct Slot<T> {
    task: Mutex<Option<T>>,
    charge: Charge,
}

impl<T> Slot<T> {
    fn take(&self) -> Option<T> {
        self.task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// A handle's way to take its task back out of the queue, whatever the task's type.
pub(crate) trait Withdraw: Send + Sync + 'static {
    /// Drops the task unrun if no drainer has taken it yet, and returns the charge it held
    /// in the queue; `None` if a drainer took it first (it runs, or has run).
    fn withdraw(&self) -> Option<Charge>;
}

impl<T: Task> Withdraw for Slot<T> {
    fn withdraw(&self) -> Option<Charge> {
        // Dropped here, outside the lock: the input may be large.
        self.take().map(|_task| self.charge)
    }
}

/// A queued task with its metadata (behind one pointer), and what the scheduler reads
/// without touching the task: its charge, when it was queued, whether it has a deadline.
pub(crate) struct Job {
    body: Box<dyn Body>,
    pub(crate) charge: Charge,
    pub(crate) enqueued: Stamp,
    pub(crate) has_deadline: bool,
}

impl Job {
    /// Packs a task, its metadata and the sending half of its result channel; returns the
    /// job, the receiving half, and the handle's way to withdraw the task while it is
    /// queued. A job of a batch also ticks the batch's countdown once it is done with,
    /// however it ends.
    pub(crate) fn new<T: Task>(
        task: T,
        meta: JobMeta,
        charge: Charge,
        batch: Option<&Arc<Countdown>>,
    ) -> (Job, Reply<T::Output>, Arc<dyn Withdraw>) {
        let (tx, rx) = oneshot::async_channel();
        let enqueued = meta.enqueued;
        let has_deadline = meta.deadline.is_some();
        let slot = Arc::new(Slot {
            task: Mutex::new(Some(task)),
            charge,
        });
        let body = Box::new(TaskJob {
            slot: Arc::clone(&slot),
            task: None,
            meta: Some(meta),
            tx,
            _tick: Tick(batch.map(Arc::clone)),
        });
        let job = Job {
            body,
            charge,
            enqueued,
            has_deadline,
        };
        (job, rx, slot)
    }

    /// A drainer takes the task to run it (or to resolve it unrun: abandoned, shed, timed
    /// out). `false`: its handle withdrew it already, and there is nothing left to do.
    pub(crate) fn claim(&mut self) -> bool {
        self.body.claim()
    }

    /// Runs the task, taking `now` as its start time; returns when it ended (or `now` if it
    /// did not run), so a drainer reads the clock once per task, not twice.
    pub(crate) fn run(self, recorder: &Recorder, now: Stamp) -> Stamp {
        self.body.run(recorder, now)
    }

    /// The pool was dropped with this job still queued: it resolves as closed, unrun.
    pub(crate) fn abandon(self) {
        self.body.abandon();
    }

    /// The queue-delay policy drops this job unrun: its caller learns it as overloaded.
    pub(crate) fn shed(self, retry_after: Duration) {
        self.body.shed(retry_after);
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job(..)")
    }
}

/// The typed part of a job, behind `dyn` so that one channel carries every task type.
trait Body: Send + 'static {
    fn claim(&mut self) -> bool;
    fn run(self: Box<Self>, recorder: &Recorder, now: Stamp) -> Stamp;
    fn abandon(self: Box<Self>);
    fn shed(self: Box<Self>, retry_after: Duration);
}

/// A task with its metadata and result channel. While the task runs, this same box stands in
/// thread-local storage as the [`Watch`] (emptied of the task and metadata), so a run costs
/// no allocation beyond the one made at submission.
struct TaskJob<T: Task> {
    /// Where the task waits while queued, until [`Job::claim`] moves it to `task`.
    slot: Arc<Slot<T>>,
    /// Claimed, then taken out to run.
    task: Option<T>,
    /// Taken out to run.
    meta: Option<JobMeta>,
    tx: oneshot::Sender<Result<T::Output, Error>>,
    /// Declared last, so it drops (and ticks) after the result has been sent.
    _tick: Tick,
}

impl<T: Task> Body for TaskJob<T> {
    fn claim(&mut self) -> bool {
        self.task = self.slot.take();
        self.task.is_some()
    }

    fn run(mut self: Box<Self>, recorder: &Recorder, now: Stamp) -> Stamp {
        // Whoever stopped waiting already counted the task as cancelled or timed out.
        if self.tx.is_closed() {
            return now;
        }
        let (Some(task), Some(meta)) = (self.task.take(), self.meta.take()) else {
            unreachable!("a job runs once, claimed, and is built with its metadata");
        };
        if meta.expired() {
            let _ = self.tx.send(Err(meta.timed_out()));
            return now;
        }
        // The sender stands in thread-local storage while the task runs, so that
        // `is_cancelled` can ask it whether the caller is still there.
        let (result, watch, ended) = invoke(task, &meta, recorder, now, Some(self));
        if let Some(job) = watch.and_then(|w| w.into_any().downcast::<TaskJob<T>>().ok()) {
            let TaskJob { tx, _tick, .. } = *job;
            // An error means the caller left meanwhile; it counted that itself.
            let _ = tx.send(result);
        }
        ended
    }

    fn abandon(self: Box<Self>) {
        let _ = self.tx.send(Err(Error::Closed));
    }

    fn shed(self: Box<Self>, retry_after: Duration) {
        let task = self.meta.as_ref().map_or("", |m| m.name);
        let _ = self.tx.send(Err(Error::Overloaded { task, retry_after }));
    }
}

/// What [`is_cancelled`] asks while a task runs: whether its caller is still there. The
/// job itself (its sender), moved into thread-local storage for the run and handed back after
/// it.
pub(crate) trait Watch: Send + 'static {
    fn caller_gone(&self) -> bool;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Task> Watch for TaskJob<T> {
    fn caller_gone(&self) -> bool {
        self.tx.is_closed()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

struct Current {
    watch: Option<Box<dyn Watch>>,
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

/// What [`invoke`] hands back: the result, the watch it was given, and when the run ended.
pub(crate) type Invoked<O> = (Result<O, Error>, Option<Box<dyn Watch>>, Stamp);

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
    watch: Option<Box<dyn Watch>>,
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
    let current = CURRENT.with(|c| c.replace(previous));
    let watch = current.and_then(|c| c.watch);
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
    (result, watch, ended)
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
