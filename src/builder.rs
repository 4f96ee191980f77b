//! Configuration for a [`Pool`]: thread count, queue bound, names and hooks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::Backend;
use crate::countdown::Countdown;
use crate::error::BuildError;
use crate::job;
use crate::metrics::{Counters, Recorder};
use crate::pool::Pool;
use crate::scheduler::{MAX_QUEUE_CAPACITY, MAX_THREADS, Policy, Scheduler};
use crate::time;

type Hook = Arc<dyn Fn() + Send + Sync>;

/// Builds a [`Pool`] with custom settings. Created by [`Pool::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let pool = offload::Pool::builder()
///     .threads(4)
///     .queue_capacity(256)
///     .thread_name("resize")
///     .slow_task_threshold(Duration::from_secs(1))
///     .build()?;
/// assert_eq!(pool.threads(), 4);
/// assert_eq!(pool.queue_capacity(), 256);
/// # Ok::<(), offload::BuildError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    threads: Option<usize>,
    queue_capacity: Option<usize>,
    thread_name: String,
    stack_size: Option<usize>,
    slow_task_threshold: Duration,
    policy: Policy,
    on_thread_start: Option<Hook>,
    on_thread_stop: Option<Hook>,
}

impl Builder {
    pub(crate) fn new() -> Builder {
        Builder {
            threads: None,
            queue_capacity: None,
            thread_name: "offload".to_owned(),
            stack_size: None,
            slow_task_threshold: Duration::from_secs(2),
            policy: Policy::default(),
            on_thread_start: None,
            on_thread_stop: None,
        }
    }

    /// Sets the number of worker threads.
    ///
    /// Default: the number of CPUs available to the process (`num_cpus::get()`).
    ///
    /// # Panics
    ///
    /// Panics if `threads` is 0 or more than 16,383.
    #[track_caller]
    pub fn threads(mut self, threads: usize) -> Builder {
        assert!(threads > 0, "a pool needs at least one thread");
        assert!(
            threads <= MAX_THREADS,
            "a pool has at most {MAX_THREADS} threads"
        );
        self.threads = Some(threads);
        self
    }

    /// Sets how many tasks may wait in the queue. Running tasks do not count.
    ///
    /// When the queue is full, [`Pool::run`] waits (asynchronously) for room and
    /// [`Pool::try_run`] fails at once with [`TryRunError::Full`](crate::TryRunError::Full).
    ///
    /// Default: 128 per thread.
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is 0 or larger than 2<sup>23</sup> (8,388,608).
    #[track_caller]
    pub fn queue_capacity(mut self, capacity: usize) -> Builder {
        assert!(capacity > 0, "queue capacity must be at least 1");
        assert!(
            capacity <= MAX_QUEUE_CAPACITY,
            "queue capacity must be at most {MAX_QUEUE_CAPACITY}"
        );
        self.queue_capacity = Some(capacity);
        self
    }

    /// Also bounds the queue by the summed [`Task::cost`](crate::Task::cost) of the queued
    /// tasks: for tasks that report their input's size, a bound in bytes. A full queue, by
    /// count or by cost, is full: [`Pool::run`] waits and [`Pool::try_run`] refuses. A single
    /// task costlier than `limit` is still admitted into an empty queue (it could never run
    /// otherwise). A task's cost leaves the bound when a thread takes it.
    ///
    /// Default: no bound beyond [`queue_capacity`](Builder::queue_capacity).
    ///
    /// ```
    /// use offload::Task;
    ///
    /// struct Resize(Vec<u8>);
    ///
    /// impl Task for Resize {
    ///     type Output = usize;
    ///     fn run(self) -> usize { self.0.len() }
    ///     fn cost(&self) -> u64 { self.0.len() as u64 }
    /// }
    ///
    /// // At most 256 MiB of queued input, whatever the count.
    /// let pool = offload::Pool::builder().queue_cost_limit(256 << 20).build()?;
    /// # Ok::<(), offload::BuildError>(())
    /// ```
    pub fn queue_cost_limit(mut self, limit: u64) -> Builder {
        self.policy.cost_limit = Some(limit);
        self
    }

    /// Sheds queued tasks without a deadline while the queue *stands*: when the shortest
    /// queue wait has stayed above `target` for a whole `interval` (CoDel's test, as in
    /// "Fail at Scale", ACM Queue 2015), a task that waited longer than `target` is dropped
    /// as a thread takes it, unrun, and its caller gets
    /// [`Error::Overloaded`](crate::Error::Overloaded) with a `retry_after`. One wait at or
    /// under `target` ends the episode. A burst that drains within `interval` is untouched;
    /// a queue that stays long, which only adds latency, is cut back to fresh work.
    ///
    /// Tasks with a deadline ([`Run::timeout`](crate::Run::timeout),
    /// [`Run::deadline`](crate::Run::deadline)) are exempt: admission refuses those that
    /// would miss their deadline, and a thread discards those whose deadline passed.
    ///
    /// A target of a few typical run times and an interval of 100 ms or more suit most
    /// services. Default: off.
    pub fn queue_delay(mut self, target: Duration, interval: Duration) -> Builder {
        self.policy.queue_delay = Some((target, interval));
        self
    }

    /// Turns deadline-aware admission on or off.
    ///
    /// On (the default), a task with a deadline ([`Run::timeout`](crate::Run::timeout),
    /// [`Run::deadline`](crate::Run::deadline)) is refused at once with
    /// [`Error::Overloaded`](crate::Error::Overloaded) (or
    /// [`TryRunError::Overloaded`](crate::TryRunError::Overloaded)) when the forecast says it
    /// would finish too late: the work queued ahead of it (at its priority and above, by the
    /// recent run times of each task name) plus half of what runs, shared over the threads,
    /// plus its own expected run time. Work that would be thrown away never takes a thread,
    /// and the caller learns at once, with a `retry_after` (the predicted drain time),
    /// instead of at its deadline. A task is never refused while a thread is free and
    /// nothing is queued, so a forecast from a slow past cannot lock a task out.
    ///
    /// Off, such tasks queue like any other and time out if they must.
    pub fn deadline_admission(mut self, enabled: bool) -> Builder {
        self.policy.no_deadline_admission = !enabled;
        self
    }

    /// Sets the prefix of the worker threads' names; thread `i` is named `{prefix}-{i}`.
    /// With the `metrics` feature it is also the `pool` label of the pool's series.
    ///
    /// Default: `offload`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Builder {
        self.thread_name = prefix.into();
        self
    }

    /// Sets each worker thread's stack size in bytes.
    ///
    /// Default: rayon's default (the Rust standard library's, 2 MiB unless `RUST_MIN_STACK`
    /// says otherwise).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Sets the run time above which a task logs a `WARN` event with its name and duration.
    ///
    /// Default: 2 seconds. `Duration::ZERO` warns for every task; `Duration::MAX` never warns.
    pub fn slow_task_threshold(mut self, threshold: Duration) -> Builder {
        self.slow_task_threshold = threshold;
        self
    }

    /// Runs `hook` on each worker thread when it starts, before it takes any task.
    pub fn on_thread_start(mut self, hook: impl Fn() + Send + Sync + 'static) -> Builder {
        self.on_thread_start = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` on each worker thread just before it exits (after
    /// [`Pool::shutdown`], or once the last [`Pool`] handle and task are gone).
    pub fn on_thread_stop(mut self, hook: impl Fn() + Send + Sync + 'static) -> Builder {
        self.on_thread_stop = Some(Arc::new(hook));
        self
    }

    /// Starts the threads and returns the pool.
    ///
    /// # Errors
    ///
    /// Returns [`BuildError`] if the operating system refuses to start a thread.
    pub fn build(self) -> Result<Pool, BuildError> {
        let threads = self
            .threads
            .unwrap_or_else(num_cpus::get)
            .clamp(1, MAX_THREADS);
        let capacity = self
            .queue_capacity
            .unwrap_or_else(|| threads.saturating_mul(128).min(MAX_QUEUE_CAPACITY));
        let exits = Arc::new(Countdown::new(threads));
        let label = self.thread_name.clone();
        let prefix = self.thread_name;
        let mut rayon = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(move |i| format!("{prefix}-{i}"))
            // Tasks run under catch_unwind, so this only sees panics from `rayon::spawn`
            // calls a task made itself. Log them instead of rayon's default abort.
            .panic_handler(|payload| {
                let message = job::panic_message(payload.as_ref());
                tracing::error!(%message, "a job spawned from inside a task panicked");
            });
        if let Some(bytes) = self.stack_size {
            rayon = rayon.stack_size(bytes);
        }
        if let Some(hook) = self.on_thread_start {
            rayon = rayon.start_handler(move |_| hook());
        }
        let stop = self.on_thread_stop;
        let exits_for_threads = Arc::clone(&exits);
        rayon = rayon.exit_handler(move |_| {
            if let Some(hook) = &stop {
                hook();
            }
            exits_for_threads.tick();
        });
        let rayon = rayon.build()?;
        // The timestamp clock calibrates once per process (about 10 ms): do it here, not on
        // the first task.
        let _ = time::stamp();
        let recorder = Arc::new(Recorder::new(threads, self.slow_task_threshold, &label));
        let scheduler = Scheduler::new(rayon, exits, capacity, Arc::clone(&recorder), self.policy);
        let counters = Counters::new(&label);
        let backend = Backend::threaded(scheduler, recorder, counters, threads, capacity);
        Ok(Pool::from_backend(backend))
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hook = |h: &Option<Hook>| h.as_ref().map(|_| "<closure>");
        f.debug_struct("Builder")
            .field("threads", &self.threads)
            .field("queue_capacity", &self.queue_capacity)
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .field("slow_task_threshold", &self.slow_task_threshold)
            .field("policy", &self.policy)
            .field("on_thread_start", &hook(&self.on_thread_start))
            .field("on_thread_stop", &hook(&self.on_thread_stop))
            .finish()
    }
}
