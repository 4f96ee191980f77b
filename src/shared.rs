//! The state that every handle, future and worker thread of one pool shares.
//!
//! Implementation: one packed `AtomicU64` carries the queue length, the number of accepted but
//! unfinished tasks, and the closed/abandoned flags, so admission (capacity and closed checks)
//! is a single compare-and-swap and `shutdown` can never miss a task. Tasks wait in one bounded
//! crossbeam channel per priority; each accepted task also spawns one rayon job, and that job
//! runs whichever queued task has the highest priority when it starts. Since every spawn
//! follows its push, there are never fewer queued tasks than rayon jobs looking for one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use crossbeam_utils::CachePadded;
use event_listener::Event;
use rayon::ThreadPool;

use crate::error::{Error, TryRunError};
use crate::metrics::{Counters, Metrics, Slot};
use crate::run::{Options, TaskHandle};
use crate::task::Task;
use crate::worker::{self, Job, JobMeta};

const QUEUED_ONE: u64 = 1;
const QUEUED_MASK: u64 = (1 << 32) - 1;
const IN_FLIGHT_ONE: u64 = 1 << 32;
const IN_FLIGHT_MASK: u64 = ((1 << 30) - 1) << 32;
const CLOSED: u64 = 1 << 62;
const ABANDONED: u64 = 1 << 63;

fn queued(state: u64) -> u64 {
    state & QUEUED_MASK
}

fn in_flight(state: u64) -> u64 {
    (state & IN_FLIGHT_MASK) >> 32
}

/// Settings fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) threads: usize,
    pub(crate) capacity: usize,
    pub(crate) slow_task_threshold: Duration,
}

/// Counts worker threads down to zero as they exit, so `shutdown` can join them.
#[derive(Debug)]
pub(crate) struct ThreadExits {
    remaining: AtomicUsize,
    event: Event,
}

impl ThreadExits {
    pub(crate) fn thread_exited(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.event.notify(usize::MAX);
        }
    }

    async fn all_exited(&self) {
        loop {
            if self.remaining.load(Ordering::Acquire) == 0 {
                return;
            }
            let listener = self.event.listen();
            if self.remaining.load(Ordering::Acquire) == 0 {
                return;
            }
            listener.await;
        }
    }
}

struct Queue {
    tx: Sender<Job>,
    rx: Receiver<Job>,
}

pub(crate) struct Shared {
    state: CachePadded<AtomicU64>,
    queues: [Queue; 3],
    /// `None` for an inline pool, and after `shutdown` has joined the threads.
    rayon: RwLock<Option<ThreadPool>>,
    inline: bool,
    /// Notified when a queued task leaves the queue: room for a waiting `run`.
    space: Event,
    /// Notified when the last in-flight task of a closed pool finishes.
    idle: Event,
    pub(crate) counters: CachePadded<Counters>,
    /// One stats slot per worker thread plus one for every other thread (inline callers).
    slots: Box<[CachePadded<Mutex<Slot>>]>,
    pub(crate) config: Config,
    exits: Arc<ThreadExits>,
}

/// Why a task was not admitted.
enum Refusal {
    Full,
    Closed,
}

impl Shared {
    pub(crate) fn thread_exits(threads: usize) -> Arc<ThreadExits> {
        Arc::new(ThreadExits {
            remaining: AtomicUsize::new(threads),
            event: Event::new(),
        })
    }

    pub(crate) fn new(
        config: Config,
        rayon: Option<ThreadPool>,
        exits: Arc<ThreadExits>,
    ) -> Arc<Shared> {
        let queue = || {
            let (tx, rx) = crossbeam_channel::bounded(config.capacity);
            Queue { tx, rx }
        };
        let slots = (0..=config.threads)
            .map(|_| CachePadded::new(Mutex::new(Slot::default())))
            .collect();
        Arc::new(Shared {
            state: CachePadded::new(AtomicU64::new(0)),
            queues: [queue(), queue(), queue()],
            inline: rayon.is_none(),
            rayon: RwLock::new(rayon),
            space: Event::new(),
            idle: Event::new(),
            counters: CachePadded::new(Counters::default()),
            slots,
            config,
            exits,
        })
    }

    pub(crate) fn is_inline(&self) -> bool {
        self.inline
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Reserves a queue slot and counts the task in flight, in one step.
    fn try_admit(&self) -> Result<(), Refusal> {
        let capacity = self.config.capacity as u64;
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & CLOSED != 0 {
                return Err(Refusal::Closed);
            }
            if queued(state) >= capacity {
                return Err(Refusal::Full);
            }
            match self.state.compare_exchange_weak(
                state,
                state + QUEUED_ONE + IN_FLIGHT_ONE,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => state = actual,
            }
        }
    }

    /// Admits `task` or hands it back. Counts `submitted`, not rejections: a waiting `run`
    /// retries a full queue, only the caller knows when a refusal is final.
    pub(crate) fn submit<T: Task>(
        self: &Arc<Self>,
        task: T,
        options: &Options,
        deadline: Option<Instant>,
    ) -> Result<TaskHandle<T::Output>, TryRunError<T>> {
        let name = options.name.unwrap_or_else(|| task.name());
        let meta = JobMeta {
            name,
            enqueued: Instant::now(),
            timeout: options.timeout,
            deadline,
            parent: tracing::Span::current(),
        };
        if self.inline {
            if self.is_closed() {
                return Err(TryRunError::Closed(task));
            }
            self.counters.submitted.fetch_add(1, Ordering::Relaxed);
            return Ok(TaskHandle::inline(Arc::clone(self), task, meta));
        }
        match self.try_admit() {
            Ok(()) => {}
            Err(Refusal::Full) => return Err(TryRunError::Full(task)),
            Err(Refusal::Closed) => return Err(TryRunError::Closed(task)),
        }
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        let (job, rx) = worker::job(task, meta);
        let queue = &self.queues[options.priority.queue_index()];
        // Admission reserved a slot and this queue's own capacity is the whole pool's, so the
        // channel cannot be full; both ends live in `self`, so it cannot be disconnected.
        if queue.tx.try_send(job).is_err() {
            tracing::error!("offload: admitted task found no room in its queue");
        }
        self.spawn_worker_job();
        Ok(TaskHandle::remote(
            Arc::clone(self),
            rx,
            name,
            options.timeout,
            deadline,
        ))
    }

    fn spawn_worker_job(self: &Arc<Self>) {
        let rayon = self.rayon.read().unwrap_or_else(PoisonError::into_inner);
        match rayon.as_ref() {
            Some(pool) => {
                let shared = Arc::clone(self);
                pool.spawn(move || shared.run_next());
            }
            // Unreachable by construction (`shutdown` takes the threads only once nothing is
            // in flight), but if it ever happened the task must still resolve.
            None => self.run_next(),
        }
    }

    /// Takes the most urgent queued task and runs it to its end.
    fn run_next(&self) {
        let job = self.pop();
        let state = self.state.fetch_sub(QUEUED_ONE, Ordering::AcqRel);
        self.space.notify(1);
        // Counted out of flight even if dropping the task's output panics.
        let _finish = Finish(self);
        job.execute(self, state & ABANDONED != 0);
    }

    fn pop(&self) -> Job {
        loop {
            for queue in &self.queues {
                if let Ok(job) = queue.rx.try_recv() {
                    return job;
                }
            }
            // Our task was pushed before this job was spawned, but a concurrent worker may
            // have taken it and left ours in a queue already scanned; look again.
            std::thread::yield_now();
        }
    }

    fn finish(&self) {
        let state = self.state.fetch_sub(IN_FLIGHT_ONE, Ordering::AcqRel);
        if state & CLOSED != 0 && in_flight(state) == 1 {
            self.idle.notify(usize::MAX);
        }
    }

    /// Waits until a queue slot may have freed up.
    pub(crate) fn listen_for_space(&self) -> event_listener::EventListener {
        self.space.listen()
    }

    /// Records a finished run in this thread's stats slot.
    pub(crate) fn record(&self, name: &'static str, wait: Duration, run: Duration) {
        let index = rayon::current_thread_index()
            .filter(|&i| i < self.config.threads)
            .unwrap_or(self.config.threads);
        let mut slot = self.slots[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slot.record(name, wait, run);
    }

    /// Refuses new tasks from now on.
    pub(crate) fn close(&self) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        self.space.notify(usize::MAX);
    }

    /// The last `Pool` handle is gone: queued tasks resolve as closed instead of running.
    pub(crate) fn abandon(&self) {
        self.state.fetch_or(CLOSED | ABANDONED, Ordering::AcqRel);
        self.space.notify(usize::MAX);
    }

    pub(crate) async fn shutdown(&self) {
        self.close();
        loop {
            if in_flight(self.state.load(Ordering::Acquire)) == 0 {
                break;
            }
            let listener = self.idle.listen();
            if in_flight(self.state.load(Ordering::Acquire)) == 0 {
                break;
            }
            listener.await;
        }
        let rayon = self
            .rayon
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Dropping the rayon pool tells its threads to exit once idle; they are idle now.
        drop(rayon);
        if !self.inline {
            self.exits.all_exited().await;
        }
    }

    /// Tracks an inline task that is running on the caller's thread.
    pub(crate) fn inline_started(&self) {
        self.state.fetch_add(IN_FLIGHT_ONE, Ordering::AcqRel);
    }

    pub(crate) fn inline_finished(&self) {
        self.finish();
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let state = self.state.load(Ordering::Acquire);
        let queued = queued(state);
        let running = in_flight(state).saturating_sub(queued);
        let slots = self
            .slots
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).clone());
        Metrics::snapshot(&self.config, &self.counters, queued, running, slots)
    }

    /// Counts how a task ended, as its caller learned it.
    pub(crate) fn count_outcome<O>(&self, result: &Result<O, Error>) {
        self.counters.outcome(result);
    }

    pub(crate) fn count_rejected(&self) {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
    }
}

struct Finish<'a>(&'a Shared);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}
