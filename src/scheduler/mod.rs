//! The scheduler: admission, the bounded queues, the drainers that run jobs on the rayon
//! threads, and shutdown.
//!
//! Admission reserves a slot in the state word ([`state`]), then the submitter pushes the job
//! into the channel of its priority. A *drainer* is a rayon job that claims a queued task (a
//! compare-and-swap on the word), pops the most urgent job, runs it, and loops until nothing
//! is queued; at most `threads` drainers run at once, and admission starts one when fewer are
//! active. Under load a task costs one swap on each side and no rayon spawn; a thread returns
//! to rayon (where it can help a task's own `par_iter`) whenever the queue runs dry.
//!
//! The scheduler knows jobs, not tasks or handles: the front end (`backend.rs`) builds the job
//! and the handle around an admission.

mod delay;
mod forecast;
#[cfg(all(test, offload_loom))]
mod loom;
mod state;

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{self, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use crossbeam_utils::CachePadded;
use event_listener::{Event, EventListener};
use rayon::ThreadPool;

use crate::countdown::Countdown;
use crate::job::{self, Charge, Job};
use crate::metrics::Recorder;
use crate::time;

use delay::QueueDelay;
use forecast::Backlog;
use state::Step;
pub(crate) use state::{Load, MAX_QUEUE_CAPACITY, MAX_THREADS, Refusal, State};

/// Why [`Scheduler::admit`] turned a task away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No room: `capacity` tasks, or the cost bound, are queued already. Waiting may help.
    Full,
    /// Closed for good.
    Closed,
    /// Behind the work queued ahead of it, the task would finish past its deadline. Retry
    /// after the predicted drain time.
    Late(Duration),
}

impl From<Refusal> for Refused {
    fn from(r: Refusal) -> Refused {
        match r {
            Refusal::Full => Refused::Full,
            Refusal::Closed => Refused::Closed,
        }
    }
}

/// The scheduler's settings beyond threads and capacity.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Policy {
    /// The bound on the summed cost of queued tasks, if any.
    pub(crate) cost_limit: Option<u64>,
    /// The queue-delay policy's target and interval, if on.
    pub(crate) queue_delay: Option<(Duration, Duration)>,
    /// Off: tasks with a deadline are admitted whatever the forecast.
    pub(crate) no_deadline_admission: bool,
}

/// A reserved queue slot. Pass it to [`Scheduler::enqueue`] with the job: a slot that is
/// never filled would keep a drainer waiting for it.
#[derive(Debug)]
#[must_use = "an admitted slot must be filled with `Scheduler::enqueue`"]
pub(crate) struct Admission {
    start_drainer: bool,
    /// Admitted against the forecast (not because a thread was free): checked again when
    /// it leaves the queue (see `Scheduler::doomed`).
    forecast: bool,
}

struct Queue {
    tx: Sender<Job>,
    rx: Receiver<Job>,
}

pub(crate) struct Scheduler {
    /// Its `queued` counts the jobs in the channels, `withdrawn` ones included.
    state: State,
    /// Jobs still in a channel whose callers took their tasks back (cancelled or timed out
    /// while queued): their slots are free for admission already, and a drainer discards
    /// them when it reaches them. Briefly negative when a drainer discards one before its
    /// handle has counted it.
    withdrawn: CachePadded<AtomicI64>,
    /// `run` futures waiting for queue room; drainers notify `room` only when there are any.
    waiters: CachePadded<AtomicUsize>,
    /// One channel per priority, highest first.
    queues: [Queue; 3],
    /// `None` once `shutdown` has joined the threads.
    rayon: RwLock<Option<ThreadPool>>,
    /// Notified when a queued task leaves the queue: room for a waiting `run`.
    room: Event,
    /// Notified when the last in-flight task of a closed pool ends.
    idle: Event,
    /// Counts the rayon threads down as they exit.
    exits: Arc<Countdown>,
    recorder: Arc<Recorder>,
    capacity: u64,
    threads: u64,
    /// Queued and running work in expected time and cost: forecasts and the cost bound.
    backlog: Backlog,
    cost_limit: Option<u64>,
    queue_delay: Option<QueueDelay>,
    deadline_admission: bool,
}

impl Scheduler {
    /// A scheduler over `rayon`'s threads, which tick `exits` as they exit.
    pub(crate) fn new(
        rayon: ThreadPool,
        exits: Arc<Countdown>,
        capacity: usize,
        recorder: Arc<Recorder>,
        policy: Policy,
    ) -> Scheduler {
        let threads = rayon.current_num_threads();
        let queue = || {
            // Room for every job admission lets in: `capacity` live ones, as many withdrawn
            // ones not yet discarded (see `admit`), and one per drainer that has claimed a
            // task but not popped it yet. A push never waits.
            let (tx, rx) = crossbeam_channel::bounded(2 * capacity + threads);
            Queue { tx, rx }
        };
        Scheduler {
            state: State::default(),
            withdrawn: CachePadded::new(AtomicI64::new(0)),
            waiters: CachePadded::new(AtomicUsize::new(0)),
            queues: [queue(), queue(), queue()],
            rayon: RwLock::new(Some(rayon)),
            room: Event::new(),
            idle: Event::new(),
            exits,
            recorder,
            capacity: capacity as u64,
            threads: threads as u64,
            backlog: Backlog::default(),
            cost_limit: policy.cost_limit,
            deadline_admission: !policy.no_deadline_admission,
            queue_delay: policy
                .queue_delay
                .map(|(target, interval)| QueueDelay::new(target, interval)),
        }
    }

    /// Reserves a queue slot (and the task's cost) and counts the task in flight, unless
    /// the forecast says a task with a `deadline` would finish past it.
    pub(crate) fn admit(
        &self,
        charge: Charge,
        deadline: Option<Instant>,
    ) -> Result<Admission, Refused> {
        let forecast = self.meets_deadline(charge, deadline, || self.load())?;
        if !self.backlog.reserve_cost(charge.cost, self.cost_limit) {
            return Err(Refused::Full);
        }
        // Withdrawn jobs wait in the channels for a drainer to discard them, but their slots
        // are free: room for as many more (at most `capacity`, so the jobs in the channels
        // stay bounded, and within the state word's fields).
        let room = self.capacity + self.withdrawn().min(self.capacity);
        match self.state.try_admit(room, self.threads) {
            Ok((start_drainer, load)) => {
                self.record_load(load);
                Ok(Admission {
                    start_drainer,
                    forecast,
                })
            }
            Err(refusal) => {
                self.backlog.release_cost(charge.cost, self.cost_limit);
                Err(refusal.into())
            }
        }
    }

    /// The deadline half of admission: refuses a task with `deadline` that the forecast
    /// says would finish past it. Returns whether the task is admitted against the forecast
    /// (rather than because a thread is free and nothing waits: such a task starts at once,
    /// and its run teaches the forecast, so an estimate from a slow past cannot lock a task
    /// out for good). `load` is read only for a task with a deadline.
    fn meets_deadline(
        &self,
        charge: Charge,
        deadline: Option<Instant>,
        load: impl FnOnce() -> Load,
    ) -> Result<bool, Refused> {
        let Some(deadline) = deadline.filter(|_| self.deadline_admission) else {
            return Ok(false);
        };
        let load = load();
        if load.queued == 0 && load.running < self.threads {
            return Ok(false);
        }
        if self.backlog.would_be_late(charge, deadline, self.threads) {
            return Err(Refused::Late(self.retry_after()));
        }
        Ok(true)
    }

    /// What [`admit`](Self::admit) would answer now, reserving nothing: for a caller that
    /// can still refuse cheaply, such as a server that has not read a request's body yet.
    pub(crate) fn forecast(
        &self,
        charge: Charge,
        deadline: Option<Instant>,
    ) -> Result<(), Refused> {
        if self.is_closed() {
            return Err(Refused::Closed);
        }
        // One reading of the load for both halves, so they judge the same queue.
        let load = self.load();
        self.meets_deadline(charge, deadline, || load)?;
        if !self.backlog.has_room_for(charge.cost, self.cost_limit) || load.queued >= self.capacity
        {
            return Err(Refused::Full);
        }
        Ok(())
    }

    /// The predicted time until the work in flight now has drained: when a refused caller
    /// may try again. At least a millisecond.
    pub(crate) fn retry_after(&self) -> Duration {
        self.backlog
            .drain_time(self.threads)
            .max(Duration::from_millis(1))
    }

    /// Queues `job` in the slot `admission` reserved, and starts a drainer if admission
    /// asked for one. The job's charge (admitted by [`admit`](Self::admit)) says which queue
    /// it joins.
    pub(crate) fn enqueue(self: &Arc<Self>, admission: Admission, mut job: Job) {
        job.forecast = admission.forecast;
        // Counted before the push, so the drainer's subtraction after its pop never
        // comes first.
        self.backlog.queued(job.charge);
        // Both ends live in `self`, and the channel has room for every admitted job (see
        // `new`): this neither fails nor waits.
        let _ = self.queues[job.charge.queue].tx.send(job);
        if admission.start_drainer {
            self.start_drainer();
        }
    }

    fn start_drainer(self: &Arc<Self>) {
        self.spawn_drainer(false);
    }

    /// Puts a drainer on the rayon threads; `finished`: it continues one that ran a task
    /// it has not retired yet.
    fn spawn_drainer(self: &Arc<Self>, finished: bool) {
        let rayon = self.rayon.read().unwrap_or_else(PoisonError::into_inner);
        let this = Arc::clone(self);
        match rayon.as_ref() {
            Some(pool) => pool.spawn(move || this.drain(finished)),
            // Unreachable by construction (`shutdown` takes the threads only once nothing is
            // in flight), but if it ever happened the task must still resolve.
            None => this.drain(finished),
        }
    }

    /// A drainer: claims and runs queued jobs, most urgent first, until none is left.
    ///
    /// A thread whose task waits inside rayon (`join`, `scope`, `par_iter`) runs other rayon
    /// jobs meanwhile, drainers included, on top of that task's stack. Such a nested drainer
    /// runs one task and then hands over to a fresh drainer job, so the thread gets back to
    /// the waiting task as soon as its other half is done, instead of draining the queue to
    /// the end first (under steady load that end never comes).
    fn drain(self: Arc<Self>, mut finished: bool) {
        let mut now = time::stamp();
        loop {
            // Each step retires the previous task (if any) and claims the next one, or
            // retires the drainer when nothing is queued.
            let (step, load, idle) = self
                .state
                .claim_next(std::mem::replace(&mut finished, true));
            self.record_load(load);
            if idle {
                self.idle.notify(usize::MAX);
            }
            let Step::Run { abandoned } = step else {
                return;
            };
            let job = self.pop_claimed();
            if !job.claim() {
                // Withdrawn by its caller, who freed its slot and its charge then.
                self.withdrawn.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            let charge = job.charge;
            self.backlog.release_cost(charge.cost, self.cost_limit);
            self.backlog.started(charge);
            if self.waiters.load(Ordering::SeqCst) > 0 {
                // Pairs with `RoomWait`: a waiter either sees the freed slot on its retry, or
                // is counted here and gets the notification.
                self.room.notify(1);
            }
            if abandoned {
                self.backlog.ended(charge);
                // The pool was dropped with this job queued: it resolves as closed, unrun.
                guarded(|| drop(job));
                continue;
            }
            if self.sheds(&job, now) || self.doomed(&job) {
                self.backlog.ended(charge);
                let retry_after = self.retry_after();
                guarded(|| job.shed(retry_after));
                continue;
            }
            now = guarded(|| job.run(&self.recorder, now)).unwrap_or_else(time::stamp);
            self.backlog.ended(charge);
            if job::task_running_here() {
                // Nested (see above): still an active drainer, with a task to retire.
                self.spawn_drainer(true);
                return;
            }
        }
    }

    /// Whether the queue-delay policy drops `job` (leaving the queue at about `now`) unrun.
    /// Tasks with a deadline are exempt: admission and the check at dequeue handle them.
    fn sheds(&self, job: &Job, now: time::Stamp) -> bool {
        let Some(policy) = &self.queue_delay else {
            return false;
        };
        let wait = now.saturating_duration_since(job.enqueued);
        policy.shed(wait, now) && job.deadline.is_none()
    }

    /// Whether `job`, starting now, is expected to finish past its deadline: its caller
    /// would get a timeout anyway, after the work. Dropped unrun instead (its caller learns it
    /// as overloaded at once), and the thread goes to a task that can still make it. Part of
    /// deadline-aware admission: the forecast at the door, this check at the dequeue.
    /// A task admitted only because a thread was free is exempt: it runs, and its run
    /// corrects an estimate that a slow past made too high (else that estimate would keep
    /// the task out for good).
    fn doomed(&self, job: &Job) -> bool {
        let Some(deadline) = job.deadline.filter(|_| job.forecast) else {
            return false;
        };
        let expected = Duration::from_nanos(job.charge.expected_ns);
        let now = Instant::now();
        // Unknown run time: no forecast. Past the deadline already: that is a timeout, which
        // the job reports itself.
        !expected.is_zero()
            && now < deadline
            && now
                .checked_add(expected)
                .is_none_or(|finish| finish > deadline)
    }

    /// Pops a claimed job. Its submitter pushes right after admission, so if the queues look
    /// empty the push is a moment away. Empty queues are skipped by a look at their ends
    /// (two loads): a `try_recv` on an empty channel costs a full fence.
    fn pop_claimed(&self) -> Job {
        loop {
            if let Some(job) = self
                .queues
                .iter()
                .filter(|q| !q.rx.is_empty())
                .find_map(|q| q.rx.try_recv().ok())
            {
                return job;
            }
            std::thread::yield_now();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.is_closed()
    }

    /// Whether the calling thread is one of this scheduler's own: a task submitting more
    /// work. Free on threads outside every rayon pool, which is where most submissions
    /// come from.
    pub(crate) fn on_own_thread(&self) -> bool {
        rayon::current_thread_index().is_some()
            && self
                .rayon
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .is_some_and(|pool| pool.current_thread_index().is_some())
    }

    /// Queued and running tasks; withdrawn jobs not yet discarded do not count as queued.
    pub(crate) fn load(&self) -> Load {
        self.live(self.state.load())
    }

    fn live(&self, load: Load) -> Load {
        Load {
            queued: load.queued.saturating_sub(self.withdrawn()),
            running: load.running,
        }
    }

    fn record_load(&self, load: Load) {
        let load = self.live(load);
        self.recorder.load(load.queued, load.running);
    }

    fn withdrawn(&self) -> u64 {
        u64::try_from(self.withdrawn.load(Ordering::Acquire)).unwrap_or(0)
    }

    /// A caller took its queued task back (see `Pending::cancel`): its slot and charge are
    /// free now, and someone waiting for room may take them.
    pub(crate) fn withdrew(&self, charge: Charge) {
        self.backlog.release_cost(charge.cost, self.cost_limit);
        self.backlog.dequeued(charge);
        self.withdrawn.fetch_add(1, Ordering::AcqRel);
        self.record_load(self.state.load());
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.room.notify(1);
        }
    }

    /// Refuses new tasks from now on; queued ones still run.
    pub(crate) fn close(&self) {
        self.state.close();
        self.room.notify(usize::MAX);
    }

    /// The last pool handle is gone: queued tasks resolve as closed instead of running.
    pub(crate) fn abandon(&self) {
        self.state.abandon();
        self.room.notify(usize::MAX);
    }

    /// Closes, waits until nothing is in flight, then joins the threads.
    pub(crate) async fn shutdown(&self) {
        self.close();
        self.state.until_idle(&self.idle).await;
        let rayon = self
            .rayon
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Dropping the rayon pool tells its threads to exit once idle; they are idle now.
        drop(rayon);
        self.exits.reached_zero().await;
    }
}

/// Runs one job's last step (its run, or its resolution unrun) under a panic guard. Tasks
/// run under their own guards; this one catches the rest, such as an input or output whose
/// `Drop` panics, so that the drainer goes on and the counts in the state word stay exact
/// (a drainer unwound mid-loop would hold its slot forever: queued work would stall and
/// `shutdown` would never return). `None` when it panicked (logged).
fn guarded<R>(step: impl FnOnce() -> R) -> Option<R> {
    match panic::catch_unwind(AssertUnwindSafe(step)) {
        Ok(value) => Some(value),
        Err(payload) => {
            let message = job::panic_message(payload.as_ref());
            tracing::error!(%message, "offload: panic while finishing a task");
            None
        }
    }
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("threads", &self.threads)
            .field("capacity", &self.capacity)
            .field("load", &self.load())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// A submitter waiting for queue room, counted among the scheduler's waiters while it lasts
/// (drainers notify only when someone waits). Call [`RoomWait::stop`] when done; dropping it
/// stops too.
#[derive(Debug, Default)]
pub(crate) struct RoomWait {
    waiting: Option<Arc<Scheduler>>,
    listener: Option<EventListener>,
}

impl RoomWait {
    /// `Ready` means: retry admission now. The first call registers and is ready at once, so
    /// a slot freed between the failed attempt and the registration is not missed.
    pub(crate) fn poll(&mut self, scheduler: &Arc<Scheduler>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.listener {
            None => {
                if self.waiting.is_none() {
                    scheduler.waiters.fetch_add(1, Ordering::SeqCst);
                    atomic::fence(Ordering::SeqCst);
                    self.waiting = Some(Arc::clone(scheduler));
                }
                self.listener = Some(scheduler.room.listen());
                Poll::Ready(())
            }
            Some(listener) => {
                std::task::ready!(Pin::new(listener).poll(cx));
                self.listener = None;
                Poll::Ready(())
            }
        }
    }

    /// No longer waiting (admitted, refused for good, or timed out).
    pub(crate) fn stop(&mut self) {
        if let Some(scheduler) = self.waiting.take() {
            scheduler.waiters.fetch_sub(1, Ordering::SeqCst);
        }
        self.listener = None;
    }
}

impl Drop for RoomWait {
    fn drop(&mut self) {
        self.stop();
    }
}
