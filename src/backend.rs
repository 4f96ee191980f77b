//! What a pool submits to: its backend (the scheduler and its threads, or inline), and the
//! counters and timings every submission shares. `submit` turns a task into a
//! [`TaskHandle`]; `Run`, `RunAll` and `Pool` are built on it.
//!
//! A `Backend` lives as long as a `Pool` handle or an unfinished `Run`/`RunAll` future holds
//! it; when the last one goes, the pool is abandoned (queued tasks resolve as closed, the
//! threads exit once idle). Handles and jobs do not hold it, so a forgotten `TaskHandle`
//! never keeps the threads alive.

use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::countdown::Countdown;
use crate::error::{Error, TryRunError};
use crate::handle::{Deferred, Link, Owner, Pending};
use crate::inline::Inline;
use crate::job::{self, Charge, Job, JobMeta};
use crate::lag::ReactorLag;
use crate::metrics::{Counters, Gauges, Metrics, Outcome, Recorder};
use crate::priority::Priority;
use crate::scheduler::{Load, Refused, RoomWait, Scheduler};
use crate::task::Task;
use crate::time;

/// Per-submission options, set on `Run` and `RunAll`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    pub(crate) priority: Priority,
    pub(crate) timeout: Option<Duration>,
    /// An explicit deadline; [`Options::deadline`] folds it into `timeout`.
    pub(crate) deadline: Option<Instant>,
    pub(crate) name: Option<&'static str>,
}

impl Options {
    /// The deadline of a submission made now: the earlier of the explicit deadline and the
    /// timeout from now. An explicit deadline also becomes the timeout (what is left of it),
    /// so a `TimedOut` error says how long the task had. The clock is read only when there is
    /// a timeout or a deadline: most runs have neither.
    pub(crate) fn deadline(&mut self) -> Option<Instant> {
        let from_timeout = self.timeout.map(time::deadline_after);
        let Some(explicit) = self.deadline else {
            return from_timeout;
        };
        match from_timeout {
            Some(d) if d <= explicit => Some(d),
            _ => {
                self.timeout = Some(explicit.saturating_duration_since(Instant::now()));
                Some(explicit)
            }
        }
    }

    /// The name `task` runs under with these options.
    pub(crate) fn name_of<T: Task>(&self, task: &T) -> &'static str {
        self.name.unwrap_or_else(|| task.name())
    }
}

/// Where the tasks run. Another backend is a variant here and an arm in each `match` below:
/// `submit` (admit, then hand back a `TaskHandle`), `poll_room`, `close`, `shutdown`, `load`.
enum Kind {
    /// The scheduler and its rayon threads.
    Threads(Arc<Scheduler>),
    /// The caller's thread, inside the handle's first poll.
    Inline(Arc<Inline>),
}

pub(crate) struct Backend {
    kind: Kind,
    counters: Arc<Counters>,
    recorder: Arc<Recorder>,
    threads: usize,
    capacity: usize,
    reactor_lag: OnceLock<ReactorLag>,
}

impl Backend {
    pub(crate) fn threaded(
        scheduler: Scheduler,
        recorder: Arc<Recorder>,
        counters: Counters,
        threads: usize,
        capacity: usize,
    ) -> Backend {
        Backend {
            kind: Kind::Threads(Arc::new(scheduler)),
            counters: Arc::new(counters),
            recorder,
            threads,
            capacity,
            reactor_lag: OnceLock::new(),
        }
    }

    pub(crate) fn inline(recorder: Arc<Recorder>, counters: Counters) -> Backend {
        Backend {
            kind: Kind::Inline(Arc::new(Inline::new(Arc::clone(&recorder)))),
            counters: Arc::new(counters),
            recorder,
            threads: 0,
            capacity: 0,
            reactor_lag: OnceLock::new(),
        }
    }

    /// Admits `task` or hands it back. Counts `submitted`, not rejections: a waiting `run`
    /// retries a full queue, only the caller knows when a refusal is final. An admitted task
    /// of a batch is added to the batch's countdown before it can finish. The caller settles
    /// the returned [`Pending`] against this backend (or a [`link`](Self::link) to it).
    pub(crate) fn submit<T: Task>(
        &self,
        task: T,
        options: &Options,
        deadline: Option<Instant>,
        batch: Option<&Arc<Countdown>>,
    ) -> Result<Pending<T::Output>, TryRunError<T>> {
        let name = options.name_of(&task);
        let meta = JobMeta::now(name, options.timeout, deadline);
        match &self.kind {
            // A task submitting work to its own pool would wait for a thread it may be
            // holding (`block_on(pool.run(..))` on a busy pool never returns): run it on this
            // thread instead, as rayon does with work started inside its pool.
            Kind::Threads(scheduler) if scheduler.on_own_thread() => {
                if scheduler.is_closed() {
                    return Err(TryRunError::Closed(task));
                }
                let recorder = Arc::clone(&self.recorder);
                let run = Box::new(move || job::run_here(task, &meta, &recorder));
                Ok(self.deferred(run, name, options))
            }
            Kind::Threads(scheduler) => {
                let expected = self.recorder.expected_run(name);
                let charge = Charge::new(expected, task.cost(), options.priority);
                let admission = match scheduler.admit(charge, deadline) {
                    Ok(admission) => admission,
                    Err(Refused::Full) => return Err(TryRunError::Full(task)),
                    Err(Refused::Closed) => return Err(TryRunError::Closed(task)),
                    Err(Refused::Late(retry_after)) => {
                        return Err(TryRunError::Overloaded { task, retry_after });
                    }
                };
                self.counters.submitted();
                if let Some(countdown) = batch {
                    countdown.add();
                }
                let (job, reply, slot) = Job::new(task, meta, charge, batch);
                scheduler.enqueue(admission, job);
                Ok(Pending::waiting(
                    reply,
                    slot,
                    name,
                    options.timeout,
                    deadline,
                ))
            }
            Kind::Inline(inline) => {
                if inline.is_closed() {
                    return Err(TryRunError::Closed(task));
                }
                let run = Box::new(inline.prepare(task, meta));
                Ok(self.deferred(run, name, options))
            }
        }
    }

    /// What submitting a task named `name` would meet now, reserving nothing (see
    /// [`Pool::forecast`](crate::Pool::forecast)).
    pub(crate) fn forecast(
        &self,
        name: &'static str,
        cost: u64,
        priority: Priority,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        let refused = match &self.kind {
            Kind::Threads(scheduler) => {
                let charge = Charge::new(self.recorder.expected_run(name), cost, priority);
                scheduler.forecast(charge, deadline).err()
            }
            Kind::Inline(inline) => inline.is_closed().then_some(Refused::Closed),
        };
        refused.map_or(Ok(()), |refused| Err(self.refusal_error(refused, name)))
    }

    /// The error a caller that does not wait for room learns when a task named `name` is
    /// refused: [`Error::Overloaded`], retrying after the predicted drain time for a full
    /// queue or the forecast's for a late task, or [`Error::Closed`].
    pub(crate) fn refusal_error(&self, refused: Refused, name: &'static str) -> Error {
        let retry_after = match refused {
            Refused::Closed => return Error::Closed,
            Refused::Full => self.retry_after(),
            Refused::Late(retry_after) => retry_after,
        };
        Error::Overloaded {
            task: name,
            retry_after,
        }
    }

    /// A submitted task that runs on the thread that first polls its handle.
    fn deferred<O: Send + 'static>(
        &self,
        run: Deferred<O>,
        name: &'static str,
        options: &Options,
    ) -> Pending<O> {
        self.counters.submitted();
        Pending::deferred(run, name, options.timeout)
    }

    /// What a [`TaskHandle`](crate::TaskHandle) keeps of this backend: the counters, and the
    /// scheduler held weakly.
    pub(crate) fn link(&self) -> Link {
        Link {
            counters: Arc::clone(&self.counters),
            scheduler: match &self.kind {
                Kind::Threads(scheduler) => Arc::downgrade(scheduler),
                Kind::Inline(_) => std::sync::Weak::new(),
            },
        }
    }

    /// Waits for queue room (see [`RoomWait`]); an inline pool is never full.
    pub(crate) fn poll_room(&self, wait: &mut RoomWait, cx: &mut Context<'_>) -> Poll<()> {
        match &self.kind {
            Kind::Threads(scheduler) => wait.poll(scheduler, cx),
            Kind::Inline(_) => Poll::Ready(()),
        }
    }

    /// A task whose timeout passed while it waited for queue room: counted as submitted and
    /// timed out, which is what its caller learns. Returns that error.
    pub(crate) fn time_out_unadmitted(
        &self,
        name: &'static str,
        timeout: Option<Duration>,
    ) -> Error {
        self.counters.submitted();
        self.counters.ended(Outcome::TimedOut);
        Error::timed_out(name, timeout)
    }

    /// Tasks refused for good (full for `try_run`, or closed).
    pub(crate) fn rejected(&self, tasks: u64) {
        self.counters.rejected(tasks);
    }

    pub(crate) fn is_inline(&self) -> bool {
        matches!(self.kind, Kind::Inline(_))
    }

    pub(crate) fn is_closed(&self) -> bool {
        match &self.kind {
            Kind::Threads(scheduler) => scheduler.is_closed(),
            Kind::Inline(inline) => inline.is_closed(),
        }
    }

    pub(crate) fn close(&self) {
        match &self.kind {
            Kind::Threads(scheduler) => scheduler.close(),
            Kind::Inline(inline) => inline.close(),
        }
    }

    pub(crate) async fn shutdown(&self) {
        match &self.kind {
            Kind::Threads(scheduler) => scheduler.shutdown().await,
            Kind::Inline(inline) => inline.shutdown().await,
        }
    }

    pub(crate) fn load(&self) -> Load {
        match &self.kind {
            Kind::Threads(scheduler) => scheduler.load(),
            Kind::Inline(inline) => inline.load(),
        }
    }

    /// How long until the work in flight has drained, by the expected run times: what a
    /// refused caller should wait before retrying.
    pub(crate) fn retry_after(&self) -> Duration {
        match &self.kind {
            Kind::Threads(scheduler) => scheduler.retry_after(),
            // Never full: a retry can come at once.
            Kind::Inline(_) => Duration::ZERO,
        }
    }

    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn reactor_lag(&self) -> &OnceLock<ReactorLag> {
        &self.reactor_lag
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let load = self.load();
        let gauges = Gauges {
            threads: self.threads,
            capacity: self.capacity,
            queued: load.queued,
            running: load.running,
        };
        let lag = self.reactor_lag.get().map(ReactorLag::snapshot);
        Metrics::snapshot(gauges, &self.counters, &self.recorder, lag)
    }
}

impl Owner for Backend {
    fn ended(&self, outcome: Outcome) {
        self.counters.ended(outcome);
    }

    fn withdrew(&self, charge: Charge) {
        if let Kind::Threads(scheduler) = &self.kind {
            scheduler.withdrew(charge);
        }
    }
}

impl Drop for Backend {
    /// The last pool handle and unfinished future are gone.
    fn drop(&mut self) {
        match &self.kind {
            Kind::Threads(scheduler) => scheduler.abandon(),
            // Handles not yet polled resolve as closed, as queued tasks do.
            Kind::Inline(inline) => inline.close(),
        }
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("inline", &self.is_inline())
            .field("threads", &self.threads)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}
