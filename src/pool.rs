//! `Pool`: the handle users clone into their services.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::batch::RunAll;
use crate::builder::Builder;
use crate::error::{Error, TryRunError};
use crate::handle::TaskHandle;
use crate::lag::ReactorLag;
use crate::metrics::{Counters, Metrics, Recorder};
use crate::priority::Priority;
use crate::run::Run;
use crate::task::Task;

/// A pool of threads for CPU-heavy tasks, awaited from async code.
///
/// `pool.run(task).await` queues the task, runs it on one of the pool's threads (a rayon
/// pool, so the task may use rayon itself), and resolves to its output. The awaiting task
/// yields while the work runs, so the async runtime's threads stay free for I/O.
///
/// `Pool` is a cheap handle (`Clone + Send + Sync`): keep one per service, for example in an
/// axum state, and clone it where needed.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), offload::Error> {
/// use offload::Pool;
///
/// fn fib(n: u32) -> u64 {
///     if n < 2 { n as u64 } else { fib(n - 1) + fib(n - 2) }
/// }
///
/// let pool = Pool::new();
/// let n = pool.run(|| fib(25)).await?;
/// assert_eq!(n, 75_025);
/// # Ok(())
/// # }
/// ```
///
/// # Backpressure
///
/// At most [`queue_capacity`](Builder::queue_capacity) tasks wait in the queue (running
/// tasks do not count), so memory stays flat whatever the load. When the queue is full,
/// [`run`](Pool::run) waits asynchronously for room, without blocking the calling thread, and
/// [`try_run`](Pool::try_run) fails at once with [`TryRunError::Full`], handing the task back:
/// a server maps that to `503 Service Unavailable`.
///
/// # Panic handling
///
/// A panic inside a task is caught on the worker thread and reaches the caller as
/// [`Error::Panicked`](crate::Error::Panicked) with the panic message. The thread keeps
/// working; the pool never loses capacity and never aborts the process. (The process's panic
/// hook still runs, so the message is printed as usual.)
///
/// # Work started from inside the pool
///
/// A task that submits to its own pool (`block_on(pool.run(..))` inside a task) gets a
/// handle that runs the inner task on the calling thread at its first poll, as rayon runs
/// work started inside its pool: waiting in the queue for a thread it may be holding itself
/// would never end. And a task that waits inside rayon (`join`, `scope`) while its thread
/// helps with queued tasks gets the thread back after at most one of them.
///
/// # Shutdown
///
/// [`shutdown`](Pool::shutdown) refuses new tasks, lets queued and running ones finish and
/// joins the threads. Dropping the last `Pool` handle without it neither blocks nor leaks
/// threads: tasks still queued then resolve as [`Error::Closed`](crate::Error::Closed),
/// running ones finish, and the threads exit afterwards.
#[derive(Clone)]
pub struct Pool {
    backend: Arc<Backend>,
}

impl Pool {
    /// A pool with one thread per available CPU and a queue of 128 tasks per thread.
    ///
    /// # Panics
    ///
    /// Panics if the operating system refuses to start the threads; use
    /// [`Pool::builder`] to handle that as an error.
    pub fn new() -> Pool {
        Builder::new()
            .build()
            .expect("failed to start the offload pool's threads")
    }

    /// Configures a pool: threads, queue capacity, thread names, hooks.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A pool with the same API that runs each task on the calling thread, inside `poll`.
    ///
    /// This is the baseline that offloading is measured against: the task blocks whatever
    /// runs the future (an async runtime's reactor thread, typically). Priorities are
    /// ignored and the queue is never full; panics, timeouts (checked before and after the
    /// run), metrics and tracing work as on a threaded pool.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let pool = offload::Pool::inline();
    /// let here = std::thread::current().id();
    /// let ran_on = pool.run(move || std::thread::current().id()).await.unwrap();
    /// assert_eq!(ran_on, here);
    /// # });
    /// ```
    pub fn inline() -> Pool {
        let recorder = Recorder::new(0, Duration::from_secs(2), "inline");
        Pool::from_backend(Backend::inline(Arc::new(recorder), Counters::new("inline")))
    }

    pub(crate) fn from_backend(backend: Backend) -> Pool {
        Pool {
            backend: Arc::new(backend),
        }
    }

    /// Prepares `task` to run on the pool; `.await` the result to submit it and get its
    /// output.
    ///
    /// Chain [`priority`](Run::priority), [`timeout`](Run::timeout) or [`name`](Run::name)
    /// before awaiting. A plain `run` (no timeout) works under any executor.
    ///
    /// # Errors
    ///
    /// The awaited result is [`Error::Panicked`](crate::Error::Panicked) if the task
    /// panicked, [`Error::TimedOut`](crate::Error::TimedOut) if its timeout passed, and
    /// [`Error::Closed`](crate::Error::Closed) if the pool was closed.
    ///
    /// # Cancellation
    ///
    /// Dropping the future before the task starts means it never runs; dropping it while the
    /// task runs makes [`is_cancelled`](crate::is_cancelled) true inside the task.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), offload::Error> {
    /// use std::time::Duration;
    /// use offload::{Pool, Priority};
    ///
    /// let pool = Pool::new();
    /// let sum = pool
    ///     .run(|| (1..=100u64).sum::<u64>())
    ///     .priority(Priority::High)
    ///     .timeout(Duration::from_secs(5))
    ///     .await?;
    /// assert_eq!(sum, 5050);
    /// # Ok(())
    /// # }
    /// ```
    pub fn run<T: Task>(&self, task: T) -> Run<T> {
        Run::new(Arc::clone(&self.backend), task)
    }

    /// Prepares a batch of tasks of one type; `.await` it for one result per task, in input
    /// order.
    ///
    /// Each task runs as if passed to [`run`](Pool::run), with the same queueing, counters,
    /// spans and panic handling, and the options set on [`RunAll`] apply to all of them. The
    /// difference is the wake-up: awaiting many `run` futures wakes the caller for nearly
    /// every result, while a batch wakes it once, when the last task has ended. For many
    /// short tasks that saves the caller's thread a context switch per task (`cargo bench
    /// --bench dispatch`, group `c`: see the README). Reach for it when the results are needed
    /// together; await separate `run`s when each result is useful on its own as soon as it
    /// is ready.
    ///
    /// Tasks are submitted in order as the queue admits them (a batch larger than the queue
    /// waits for room, without blocking the thread); tasks refused because the pool is closed
    /// come back as [`Error::Closed`](crate::Error::Closed).
    ///
    /// # Cancellation
    ///
    /// Dropping the future cancels every task of the batch that has not started, and
    /// [`is_cancelled`](crate::is_cancelled) turns true inside those running.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = offload::Pool::new();
    /// let squares = pool.run_all((1..=4u64).map(|n| move || n * n)).await;
    /// let squares: Vec<u64> = squares.into_iter().map(|r| r.expect("no panics")).collect();
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// # }
    /// ```
    pub fn run_all<T: Task>(&self, tasks: impl IntoIterator<Item = T>) -> RunAll<T> {
        RunAll::new(Arc::clone(&self.backend), tasks.into_iter().collect())
    }

    /// Submits `task` if the queue has room, without waiting; `.await` the handle for the
    /// output. The same as `pool.run(task).try_submit()`.
    ///
    /// # Errors
    ///
    /// [`TryRunError::Full`] if `queue_capacity` tasks wait already, [`TryRunError::Closed`]
    /// once the pool is closed; both hand the task back with
    /// [`into_task`](TryRunError::into_task).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = offload::Pool::new();
    /// let handle = pool.try_run(|| "thumbnail")?;
    /// assert_eq!(handle.await?, "thumbnail");
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_run<T: Task>(&self, task: T) -> Result<TaskHandle<T::Output>, TryRunError<T>> {
        self.run(task).try_submit()
    }

    /// How long until the tasks in flight now have drained, predicted from recent run
    /// times: what a server refusing work puts in `Retry-After` (with some jitter, so that
    /// refused clients do not all come back at once). At least a millisecond, which is
    /// also the answer before any task has run (no run times to predict from yet).
    pub fn retry_after(&self) -> Duration {
        self.backend.retry_after()
    }

    /// What a task named `name` (its [`Task::name`]) would meet if it were submitted now
    /// with `priority`, `cost` (its [`Task::cost`]) and `deadline`, reserving nothing: a
    /// read-only admission check for a caller that can still refuse cheaply, such as a
    /// server that has not read a request's body yet (it knows the body's length from
    /// `Content-Length` and the deadline from its own timeout).
    ///
    /// It is a forecast: by the time the task is submitted the queue may have filled, so
    /// the submission can still be refused, and a refusal here may have turned into room.
    ///
    /// # Errors
    ///
    /// [`Error::Overloaded`] when the queue is full (in tasks or in cost) or, with
    /// [deadline-aware admission](crate::Builder::deadline_admission), when the work queued
    /// ahead would make the task finish past `deadline`; its `retry_after` is the predicted
    /// drain time. [`Error::Closed`] once the pool is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use offload::{Error, Pool, Priority};
    ///
    /// let pool = Pool::builder().threads(1).build().expect("threads start");
    /// let deadline = Instant::now() + Duration::from_millis(500);
    /// // Nothing queued: a 4 MB upload would be admitted, so read it.
    /// assert!(pool.forecast("thumbnail", 4 << 20, Priority::Normal, Some(deadline)).is_ok());
    /// pool.close();
    /// assert!(matches!(
    ///     pool.forecast("thumbnail", 1, Priority::Normal, None),
    ///     Err(Error::Closed)
    /// ));
    /// ```
    pub fn forecast(
        &self,
        name: &'static str,
        cost: u64,
        priority: Priority,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        self.backend.forecast(name, cost, priority, deadline)
    }

    /// A snapshot of the pool's counters, queue depth and latency percentiles.
    pub fn metrics(&self) -> Metrics {
        self.backend.metrics()
    }

    /// Stops intake, lets every queued and running task finish, then joins the threads.
    ///
    /// Tasks submitted from now on fail with [`Error::Closed`](crate::Error::Closed)
    /// (`run`) or [`TryRunError::Closed`] (`try_run`). Calling it again, or from several
    /// clones, is fine: each call returns once the pool is fully stopped.
    ///
    /// # Cancellation
    ///
    /// Dropping the future does not reopen the pool; the tasks keep running to completion.
    pub async fn shutdown(&self) {
        self.backend.shutdown().await;
    }

    /// Tasks waiting in the queue now: a cheap read, unlike [`metrics`](Pool::metrics).
    pub fn queued(&self) -> usize {
        self.backend.load().queued as usize
    }

    /// Tasks running now: a cheap read, unlike [`metrics`](Pool::metrics).
    pub fn running(&self) -> usize {
        self.backend.load().running as usize
    }

    /// Starts measuring the current tokio runtime's reactor lag (see [`ReactorLag`]) and
    /// reports it in [`Metrics::reactor_lag`](crate::Metrics::reactor_lag). Calling it again
    /// returns the monitor already running.
    ///
    /// # Panics
    ///
    /// Panics when called outside a tokio runtime, or inside one built without timers.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() {
    /// let pool = offload::Pool::new();
    /// pool.monitor_reactor();
    /// tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    /// assert!(pool.metrics().reactor_lag.unwrap().count > 0);
    /// # }
    /// ```
    #[track_caller]
    pub fn monitor_reactor(&self) -> ReactorLag {
        self.backend
            .reactor_lag()
            .get_or_init(ReactorLag::start)
            .clone()
    }

    /// Stops intake without waiting; queued and running tasks still finish.
    pub fn close(&self) {
        self.backend.close();
    }

    /// Whether the pool refuses new tasks.
    pub fn is_closed(&self) -> bool {
        self.backend.is_closed()
    }

    /// Whether this is an [`inline`](Pool::inline) pool.
    pub fn is_inline(&self) -> bool {
        self.backend.is_inline()
    }

    /// The number of worker threads (0 for an inline pool).
    pub fn threads(&self) -> usize {
        self.backend.threads()
    }

    /// The bound on queued tasks.
    pub fn queue_capacity(&self) -> usize {
        self.backend.capacity()
    }
}

impl Default for Pool {
    fn default() -> Pool {
        Pool::new()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.metrics();
        f.debug_struct("Pool")
            .field("threads", &m.threads)
            .field("queue_capacity", &m.queue_capacity)
            .field("queued", &m.queued)
            .field("running", &m.running)
            .field("closed", &self.is_closed())
            .finish()
    }
}
