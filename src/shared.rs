//! The state that every handle, future and worker thread of one pool shares.
//!
//! Implementation: one packed `AtomicU64` carries the queue length, the number of accepted but
//! unfinished tasks, the number of active drainers and the closed/abandoned flags. Tasks wait
//! in one bounded crossbeam channel per priority. A *drainer* is a rayon job that claims a
//! queued task (a compare-and-swap on the word), pops the most urgent one, runs it, and loops
//! until nothing is queued; at most `threads` drainers run at once. Admission (capacity and
//! closed checks, and starting a drainer when fewer than `threads` are active) is one
//! compare-and-swap, and a drainer retires in the same swap that sees the queue empty, so a
//! task can never be left without a drainer. Under load a task costs one swap on each side
//! and no rayon spawn; a thread returns to rayon (where it can help a task's own `par_iter`)
//! whenever the queue runs dry.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{self, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use crossbeam_utils::CachePadded;
use event_listener::Event;
use rayon::ThreadPool;

use crate::error::{Error, TryRunError};
use crate::metrics::{Counters, Metrics, Slot};
use crate::run::{Options, TaskHandle};
use crate::task::Task;
use crate::worker::{self, Countdown, Job, JobMeta};

// The state word: queued (24 bits) | in flight (24 bits) | drainers (14 bits) | 2 flags.
const QUEUED_ONE: u64 = 1;
const IN_FLIGHT_SHIFT: u32 = 24;
const IN_FLIGHT_ONE: u64 = 1 << IN_FLIGHT_SHIFT;
const DRAINERS_SHIFT: u32 = 48;
const DRAINER_ONE: u64 = 1 << DRAINERS_SHIFT;
const FIELD_MASK: u64 = (1 << 24) - 1;
const CLOSED: u64 = 1 << 62;
const ABANDONED: u64 = 1 << 63;

/// Bounds the builder enforces so the fields cannot overflow: queued and running tasks
/// together stay below 2^24.
pub(crate) const MAX_QUEUE_CAPACITY: usize = 1 << 23;
pub(crate) const MAX_THREADS: usize = (1 << 14) - 1;

fn queued(state: u64) -> u64 {
    state & FIELD_MASK
}

fn in_flight(state: u64) -> u64 {
    (state >> IN_FLIGHT_SHIFT) & FIELD_MASK
}

fn drainers(state: u64) -> u64 {
    (state >> DRAINERS_SHIFT) & ((1 << 14) - 1)
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
    /// `run` futures waiting for queue room; workers notify `space` only when there are any.
    waiters: CachePadded<AtomicUsize>,
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
    pub(crate) reactor_lag: std::sync::OnceLock<crate::lag::ReactorLag>,
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
            // `queued` in the state word bounds admitted tasks, but a drainer claims a task
            // before it pops one, so a channel can briefly hold one extra task per drainer.
            let (tx, rx) = crossbeam_channel::bounded(config.capacity + config.threads);
            Queue { tx, rx }
        };
        // The timestamp clock calibrates once per process (about 10 ms): do it here, not
        // on the first task.
        let _ = worker::stamp();
        let slots = (0..=config.threads)
            .map(|_| CachePadded::new(Mutex::new(Slot::default())))
            .collect();
        Arc::new(Shared {
            state: CachePadded::new(AtomicU64::new(0)),
            waiters: CachePadded::new(AtomicUsize::new(0)),
            queues: [queue(), queue(), queue()],
            inline: rayon.is_none(),
            rayon: RwLock::new(rayon),
            space: Event::new(),
            idle: Event::new(),
            counters: CachePadded::new(Counters::default()),
            slots,
            config,
            exits,
            reactor_lag: std::sync::OnceLock::new(),
        })
    }

    pub(crate) fn is_inline(&self) -> bool {
        self.inline
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Reserves a queue slot and counts the task in flight, in one step. Returns whether the
    /// caller must start a drainer (fewer than `threads` were active).
    fn try_admit(&self) -> Result<bool, Refusal> {
        let capacity = self.config.capacity as u64;
        let threads = self.config.threads as u64;
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & CLOSED != 0 {
                return Err(Refusal::Closed);
            }
            if queued(state) >= capacity {
                return Err(Refusal::Full);
            }
            let start_drainer = drainers(state) < threads;
            let mut next = state + QUEUED_ONE + IN_FLIGHT_ONE;
            if start_drainer {
                next += DRAINER_ONE;
            }
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(start_drainer),
                Err(actual) => state = actual,
            }
        }
    }

    /// Admits `task` or hands it back. Counts `submitted`, not rejections: a waiting `run`
    /// retries a full queue, only the caller knows when a refusal is final. An admitted task
    /// of a batch is added to the batch's countdown before it can finish.
    pub(crate) fn submit<T: Task>(
        self: &Arc<Self>,
        task: T,
        options: &Options,
        deadline: Option<Instant>,
        batch: Option<&Arc<Countdown>>,
    ) -> Result<TaskHandle<T::Output>, TryRunError<T>> {
        let name = options.name.unwrap_or_else(|| task.name());
        let meta = JobMeta {
            name,
            enqueued: worker::stamp(),
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
        let start_drainer = match self.try_admit() {
            Ok(start_drainer) => start_drainer,
            Err(Refusal::Full) => return Err(TryRunError::Full(task)),
            Err(Refusal::Closed) => return Err(TryRunError::Closed(task)),
        };
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        if let Some(countdown) = batch {
            countdown.add();
        }
        let (job, rx) = worker::job(task, meta, batch);
        let queue = &self.queues[options.priority.queue_index()];
        // Admission reserved a slot and this queue's own capacity is the whole pool's, so the
        // channel cannot be full; both ends live in `self`, so it cannot be disconnected.
        // The channel's room covers every admitted task (see `Shared::new`), so this never
        // waits; if that bound were ever wrong, waiting for a drainer beats losing the task.
        if let Err(TrySendError::Full(job)) = queue.tx.try_send(job) {
            let _ = queue.tx.send(job);
        }
        if start_drainer {
            self.start_drainer();
        }
        Ok(TaskHandle::remote(
            Arc::clone(self),
            rx,
            name,
            options.timeout,
            deadline,
        ))
    }

    fn start_drainer(self: &Arc<Self>) {
        let rayon = self.rayon.read().unwrap_or_else(PoisonError::into_inner);
        let shared = Arc::clone(self);
        match rayon.as_ref() {
            Some(pool) => pool.spawn(move || shared.drain()),
            // Unreachable by construction (`shutdown` takes the threads only once nothing is
            // in flight), but if it ever happened the task must still resolve.
            None => shared.drain(),
        }
    }

    /// A drainer: claims and runs queued tasks, most urgent first, until none is left.
    fn drain(&self) {
        let mut finished = false;
        let mut now = worker::stamp();
        // Each swap retires the previous task (if any) and claims the next one, or retires
        // the drainer when nothing is queued.
        while let Some(state) = self.claim_next(std::mem::replace(&mut finished, true)) {
            let job = self.pop_claimed();
            if self.waiters.load(Ordering::SeqCst) > 0 {
                // Pairs with `start_waiting`: a waiter either sees the freed slot on its
                // retry, or is counted here and gets the notification.
                self.space.notify(1);
            }
            // Tasks run under their own panic guard; this one covers the rest, such as an
            // output whose `Drop` panics, so the counts in the state word stay exact.
            let abandoned = state & ABANDONED != 0;
            match panic::catch_unwind(AssertUnwindSafe(|| job.execute(self, abandoned, now))) {
                Ok(ended) => now = ended,
                Err(payload) => {
                    let message = worker::panic_message(payload.as_ref());
                    tracing::error!(%message, "offload: panic while finishing a task");
                    now = worker::stamp();
                }
            }
        }
    }

    /// Claims a queued task (returning the state word before the swap), or retires this
    /// drainer (returning `None`) when nothing is queued. `finished` also retires the task
    /// this drainer ran last.
    fn claim_next(&self, finished: bool) -> Option<u64> {
        let done = if finished { IN_FLIGHT_ONE } else { 0 };
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let claim = queued(state) > 0;
            let next = if claim {
                state - done - QUEUED_ONE
            } else {
                state - done - DRAINER_ONE
            };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => {
                    if finished && state & CLOSED != 0 && in_flight(next) == 0 {
                        self.idle.notify(usize::MAX);
                    }
                    return claim.then_some(state);
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// Pops a claimed task. Its submitter pushes right after admission, so if the queues
    /// look empty the push is a moment away.
    fn pop_claimed(&self) -> Job {
        loop {
            if let Some(job) = self.queues.iter().find_map(|q| q.rx.try_recv().ok()) {
                return job;
            }
            std::thread::yield_now();
        }
    }

    /// A `run` future starts waiting for queue room; it retries admission after this.
    pub(crate) fn start_waiting(&self) {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        atomic::fence(Ordering::SeqCst);
    }

    pub(crate) fn stop_waiting(&self) {
        self.waiters.fetch_sub(1, Ordering::SeqCst);
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
        let state = self.state.fetch_sub(IN_FLIGHT_ONE, Ordering::AcqRel);
        if state & CLOSED != 0 && in_flight(state) == 1 {
            self.idle.notify(usize::MAX);
        }
    }

    /// Queued and running tasks now.
    pub(crate) fn load(&self) -> (u64, u64) {
        let state = self.state.load(Ordering::Acquire);
        let queued = queued(state);
        (queued, in_flight(state).saturating_sub(queued))
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let (queued, running) = self.load();
        Metrics::snapshot(
            &self.config,
            &self.counters,
            queued,
            running,
            self.slots.iter().map(|s| &**s),
            self.reactor_lag.get().map(crate::lag::ReactorLag::snapshot),
        )
    }

    /// Counts how a task ended, as its caller learned it.
    pub(crate) fn count_outcome<O>(&self, result: &Result<O, Error>) {
        self.counters.outcome(result);
    }

    /// A task whose timeout passed while it waited for queue room: counted as submitted and
    /// timed out, which is what its caller learns. Returns that error.
    pub(crate) fn time_out_unadmitted(
        &self,
        name: &'static str,
        timeout: Option<Duration>,
    ) -> Error {
        let error = Error::timed_out(name, timeout);
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        self.counters.outcome::<()>(&Err(error.clone()));
        error
    }

    pub(crate) fn count_rejected(&self) {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
    }
}
