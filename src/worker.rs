//! What a worker thread does with one task: checks, span, panic guard, timing, result.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use event_listener::{Event, EventListener};

use crate::error::Error;
use crate::shared::Shared;
use crate::task::Task;

/// A point in time for wait and run metrics: read from the CPU's timestamp counter where it
/// is reliable, with the OS clock as fallback. Deadlines stay on `std::time::Instant`.
/// `cargo bench --bench dispatch -- d_clock` measures both reads side by side (9.3 ns
/// against 21.9 ns for `std::time::Instant::now` on the 2-core development machine).
pub(crate) type Stamp = quanta::Instant;

pub(crate) fn stamp() -> Stamp {
    quanta::Instant::now()
}

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
    /// Whether the deadline (if any) has passed; reads the clock only when there is one.
    pub(crate) fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    pub(crate) fn timed_out(&self) -> Error {
        Error::timed_out(self.name, self.timeout)
    }
}

/// A queued task with its metadata, behind one thin pointer so queue slots stay small.
pub(crate) struct Job(Box<dyn Body>);

impl Job {
    /// Runs the task, taking `now` as its start time; returns when it ended (or `now` if
    /// it did not run), so a drainer reads the clock once per task, not twice.
    pub(crate) fn execute(self, shared: &Shared, abandoned: bool, now: Stamp) -> Stamp {
        self.0.execute(shared, abandoned, now)
    }
}

pub(crate) type Reply<O> = oneshot::AsyncReceiver<Result<O, Error>>;

/// Packs a task, its metadata and the sending half of its result channel. A job of a batch
/// also ticks the batch's countdown once it is done with, however it ends.
pub(crate) fn job<T: Task>(
    task: T,
    meta: JobMeta,
    batch: Option<&Arc<Countdown>>,
) -> (Job, Reply<T::Output>) {
    let (tx, rx) = oneshot::async_channel();
    let body = Box::new(TaskJob {
        meta: Some(meta),
        task: Some(task),
        tx,
        _tick: Tick(batch.map(Arc::clone)),
    });
    (Job(body), rx)
}

/// Counts a batch's jobs that are not done with yet and wakes the batch's caller once, when
/// the last one is: its results wait in their channels meanwhile, so a batch of any size
/// costs its caller one wake-up instead of one per task.
#[derive(Debug, Default)]
pub(crate) struct Countdown {
    pending: AtomicUsize,
    done: Event,
}

impl Countdown {
    /// One more job is about to be queued; call before the job can possibly finish.
    pub(crate) fn add(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    /// A job is done with: its result (if any) is in its channel.
    pub(crate) fn tick(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify(usize::MAX);
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    pub(crate) fn listen(&self) -> EventListener {
        self.done.listen()
    }
}

/// Ticks its countdown when dropped: a job's fields drop after its result is sent, and also
/// when the job is dropped unrun (a torn-down pool) or a drop inside it panics.
struct Tick(Option<Arc<Countdown>>);

impl Drop for Tick {
    fn drop(&mut self) {
        if let Some(countdown) = &self.0 {
            countdown.tick();
        }
    }
}

/// The typed part of a job, behind `dyn` so that one channel carries every task type.
pub(crate) trait Body: Send + 'static {
    fn execute(self: Box<Self>, shared: &Shared, abandoned: bool, now: Stamp) -> Stamp;
    /// Whether the caller stopped waiting (dropped its future or timed out).
    fn caller_gone(&self) -> bool;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

struct TaskJob<T: Task> {
    meta: Option<JobMeta>,
    task: Option<T>,
    tx: oneshot::Sender<Result<T::Output, Error>>,
    /// Declared last, so it drops (and ticks) after the result has been sent.
    _tick: Tick,
}

impl<T: Task> Body for TaskJob<T> {
    fn execute(mut self: Box<Self>, shared: &Shared, abandoned: bool, now: Stamp) -> Stamp {
        let (Some(meta), Some(task)) = (self.meta.take(), self.task.take()) else {
            return now;
        };
        if abandoned {
            let _ = self.tx.send(Err(Error::Closed));
            return now;
        }
        // Whoever stopped waiting already counted the task as cancelled or timed out.
        if self.tx.is_closed() {
            return now;
        }
        if meta.expired() {
            let _ = self.tx.send(Err(meta.timed_out()));
            return now;
        }
        // The job itself stands in thread-local storage while the task runs, so that
        // `is_cancelled` can ask its sender whether the caller is still there.
        let (result, watch, ended) = invoke(task, &meta, shared, now, Some(self));
        if let Some(this) = watch.and_then(|w| w.into_any().downcast::<Self>().ok()) {
            // An error means the caller left meanwhile; it counted that itself.
            let _ = this.tx.send(result);
        }
        ended
    }

    fn caller_gone(&self) -> bool {
        self.tx.is_closed()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

struct Current {
    watch: Option<Box<dyn Body>>,
    deadline: Option<Instant>,
}

/// What [`invoke`] hands back: the result, the watch it was given, and when the run ended.
pub(crate) type Invoked<O> = (Result<O, Error>, Option<Box<dyn Body>>, Stamp);

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Runs `task` under its span, a panic guard and the cancellation context, then records its
/// timing. Shared by the worker threads and by inline pools. Returns the result, the
/// watch it was given, and the time the run ended.
pub(crate) fn invoke<T: Task>(
    task: T,
    meta: &JobMeta,
    shared: &Shared,
    started: Stamp,
    watch: Option<Box<dyn Body>>,
) -> Invoked<T::Output> {
    let wait = started.saturating_duration_since(meta.enqueued);
    let span = tracing::info_span!(
        parent: &meta.parent,
        "offload.task",
        task = meta.name,
        wait_us = micros(wait),
        run_us = tracing::field::Empty,
    );
    let current = Current {
        watch,
        deadline: meta.deadline,
    };
    let previous = CURRENT.with(|c| c.replace(Some(current)));
    // The guard covers the span's enter and exit too: a panicking tracing layer then fails
    // this one task instead of stranding the job (and its caller) in `CURRENT`.
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| span.in_scope(move || task.run())));
    // Restore, not clear: a task that waits inside rayon may run another task on this
    // thread in the meantime.
    let current = CURRENT.with(|c| c.replace(previous));
    let ended = stamp();
    let run = ended.saturating_duration_since(started);
    span.record("run_us", micros(run));
    shared.record(meta.name, wait, run);
    if run > shared.config.slow_task_threshold {
        span.in_scope(|| {
            tracing::warn!(
                task = meta.name,
                run_ms = u64::try_from(run.as_millis()).unwrap_or(u64::MAX),
                "slow task"
            );
        });
    }
    let result = match outcome {
        Ok(_) if meta.expired() => Err(meta.timed_out()),
        Ok(value) => Ok(value),
        Err(payload) => Err(Error::Panicked {
            task: meta.name,
            message: panic_message(payload.as_ref()),
        }),
    };
    (result, current.and_then(|c| c.watch), ended)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
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
            cur.deadline.is_some_and(|d| Instant::now() >= d)
                || cur.watch.as_ref().is_some_and(|w| w.caller_gone())
        })
    })
}
