//! The awaitable side: `Run` (options, then `.await`), its future, and `TaskHandle`.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::EventListener;

use crate::error::{Error, TryRunError};
use crate::priority::Priority;
use crate::shared::Shared;
use crate::task::Task;
use crate::worker::{self, JobMeta, Reply};

/// Per-task options set on [`Run`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    pub(crate) priority: Priority,
    pub(crate) timeout: Option<Duration>,
    pub(crate) name: Option<&'static str>,
}

impl Options {
    /// The deadline of a submission made now, if a timeout is set. A timeout too large to
    /// represent never fires.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        // The clock is read only when there is a timeout: most runs have none.
        self.timeout.map(|timeout| {
            let now = Instant::now();
            now.checked_add(timeout)
                .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
        })
    }
}

/// A task about to be submitted, returned by [`Pool::run`](crate::Pool::run).
///
/// Set options with [`priority`](Run::priority), [`timeout`](Run::timeout) and
/// [`name`](Run::name), then `.await` it (the task is submitted at the first poll), or call
/// [`try_submit`](Run::try_submit) to submit without waiting for queue room.
#[must_use = "a task is submitted only when the `Run` is awaited or `try_submit` is called"]
pub struct Run<'a, T: Task> {
    shared: &'a Arc<Shared>,
    task: T,
    options: Options,
}

impl<'a, T: Task> Run<'a, T> {
    pub(crate) fn new(shared: &'a Arc<Shared>, task: T) -> Run<'a, T> {
        Run {
            shared,
            task,
            options: Options::default(),
        }
    }

    /// Sets the task's priority. Default: [`Priority::Normal`].
    pub fn priority(mut self, priority: Priority) -> Run<'a, T> {
        self.options.priority = priority;
        self
    }

    /// Gives up on the task `timeout` after it is submitted (measured from the first poll,
    /// waiting for queue room included).
    ///
    /// When the timeout passes, the caller gets [`Error::TimedOut`] at once, a still-queued
    /// task never runs, and a running task sees [`is_cancelled`](crate::is_cancelled) turn
    /// true; a value produced after the deadline is dropped. The immediate return needs a
    /// tokio runtime with timers enabled around the `.await`; under another executor the
    /// timeout is enforced by the pool (the caller learns of it when the task would start or
    /// ends). Default: none.
    ///
    /// # Panics
    ///
    /// Awaiting panics inside a tokio runtime built without `enable_time`, as every tokio
    /// timer does.
    pub fn timeout(mut self, timeout: Duration) -> Run<'a, T> {
        self.options.timeout = Some(timeout);
        self
    }

    /// Overrides [`Task::name`] for this one submission (metrics, spans, errors).
    pub fn name(mut self, name: &'static str) -> Run<'a, T> {
        self.options.name = Some(name);
        self
    }

    /// Submits the task now if the queue has room, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRunError::Full`] when `queue_capacity` tasks are waiting already,
    /// [`TryRunError::Closed`] after [`Pool::close`](crate::Pool::close) or
    /// [`shutdown`](crate::Pool::shutdown). Either way the task comes back untouched and the
    /// pool counts it as `rejected`.
    pub fn try_submit(self) -> Result<TaskHandle<T::Output>, TryRunError<T>> {
        let deadline = self.options.deadline();
        self.shared
            .submit(self.task, &self.options, deadline, None)
            .inspect_err(|_| self.shared.count_rejected())
    }
}

impl<'a, T: Task> IntoFuture for Run<'a, T> {
    type Output = Result<T::Output, Error>;
    type IntoFuture = RunFuture<'a, T>;

    fn into_future(self) -> RunFuture<'a, T> {
        RunFuture {
            shared: self.shared,
            task: Some(self.task),
            options: self.options,
            deadline: None,
            timer: None,
            room: RoomWait::default(),
            handle: None,
        }
    }
}

impl<T: Task> fmt::Debug for Run<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field(
                "task",
                &self.options.name.unwrap_or_else(|| self.task.name()),
            )
            .field("priority", &self.options.priority)
            .field("timeout", &self.options.timeout)
            .finish()
    }
}

/// Waiting for queue room, counted among the pool's waiters while it lasts (workers notify
/// only when someone waits). Call [`RoomWait::stop`] when done, and on drop.
#[derive(Debug, Default)]
pub(crate) struct RoomWait {
    waiting: bool,
    listener: Option<EventListener>,
}

impl RoomWait {
    /// `Ready` means: retry admission now. The first call registers and is ready at once, so
    /// a slot freed between the failed attempt and the registration is not missed.
    pub(crate) fn poll(&mut self, shared: &Shared, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.listener {
            None => {
                if !self.waiting {
                    self.waiting = true;
                    shared.start_waiting();
                }
                self.listener = Some(shared.listen_for_space());
                Poll::Ready(())
            }
            Some(listener) => {
                std::task::ready!(Pin::new(listener).poll(cx));
                self.listener = None;
                Poll::Ready(())
            }
        }
    }

    pub(crate) fn stop(&mut self, shared: &Shared) {
        if std::mem::take(&mut self.waiting) {
            shared.stop_waiting();
        }
        self.listener = None;
    }
}

/// The future of [`Run`]: waits for queue room, submits, then waits for the result.
///
/// # Cancellation
///
/// Dropping it before the task starts means the task never runs (counted `cancelled`).
/// Dropping it while the task runs lets the task finish, but
/// [`is_cancelled`](crate::is_cancelled) turns true inside it and its value is dropped.
#[must_use = "futures do nothing unless polled"]
pub struct RunFuture<'a, T: Task> {
    shared: &'a Arc<Shared>,
    task: Option<T>,
    options: Options,
    deadline: Option<Instant>,
    timer: Option<Timer>,
    room: RoomWait,
    handle: Option<TaskHandle<T::Output>>,
}

impl<T: Task> Drop for RunFuture<'_, T> {
    fn drop(&mut self) {
        self.room.stop(self.shared);
    }
}

// The task is moved, never pinned in place, so the future does not need to stay put.
impl<T: Task> Unpin for RunFuture<'_, T> {}

impl<T: Task> Future for RunFuture<'_, T> {
    type Output = Result<T::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(handle) = &mut this.handle {
            return Pin::new(handle).poll(cx);
        }
        if this.deadline.is_none() {
            this.deadline = this.options.deadline();
        }
        loop {
            let Some(task) = this.task.take() else {
                return Poll::Ready(Err(Error::Closed));
            };
            match this.shared.submit(task, &this.options, this.deadline, None) {
                Ok(mut handle) => {
                    handle.timer = this.timer.take();
                    this.room.stop(this.shared);
                    return Pin::new(this.handle.insert(handle)).poll(cx);
                }
                Err(TryRunError::Closed(_)) => {
                    this.room.stop(this.shared);
                    this.shared.count_rejected();
                    return Poll::Ready(Err(Error::Closed));
                }
                Err(TryRunError::Full(task)) => this.task = Some(task),
            }
            // The queue is full: wait for room, or for the timeout.
            if let Some(deadline) = this.deadline {
                if Timer::expired(&mut this.timer, deadline, cx) {
                    let name = this
                        .options
                        .name
                        .or_else(|| this.task.as_ref().map(Task::name))
                        .unwrap_or("task");
                    let error = this.shared.time_out_unadmitted(name, this.options.timeout);
                    this.task = None;
                    this.room.stop(this.shared);
                    return Poll::Ready(Err(error));
                }
            }
            std::task::ready!(this.room.poll(this.shared, cx));
        }
    }
}

impl<T: Task> fmt::Debug for RunFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunFuture")
            .field("priority", &self.options.priority)
            .field("timeout", &self.options.timeout)
            .field("submitted", &self.handle.is_some())
            .finish()
    }
}

/// A timer that exists only under a tokio runtime; elsewhere timeouts are the pool's job.
pub(crate) struct Timer(Option<Pin<Box<tokio::time::Sleep>>>);

impl Timer {
    fn new(deadline: Instant) -> Timer {
        Timer(
            tokio::runtime::Handle::try_current()
                .ok()
                .map(|_| Box::pin(tokio::time::sleep_until(deadline.into()))),
        )
    }

    /// Whether `deadline` has passed, starting the timer in `slot` on first use; until it
    /// has, the waker is registered with it.
    pub(crate) fn expired(
        slot: &mut Option<Timer>,
        deadline: Instant,
        cx: &mut Context<'_>,
    ) -> bool {
        slot.get_or_insert_with(|| Timer::new(deadline))
            .0
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready())
    }
}

/// An inline task, run by the first poll.
type InlineRun<O> = Box<dyn FnOnce(&Shared) -> Result<O, Error> + Send>;

enum State<O> {
    Remote(Reply<O>),
    Inline(InlineRun<O>),
    Done,
}

/// A submitted task's result, to `.await`. Returned by [`Pool::try_run`](crate::Pool::try_run)
/// and [`Run::try_submit`].
///
/// # Cancellation
///
/// Dropping the handle cancels the task: a queued task never runs (counted `cancelled`), a
/// running one sees [`is_cancelled`](crate::is_cancelled) turn true and its value is dropped.
#[must_use = "dropping a TaskHandle cancels its task"]
pub struct TaskHandle<O> {
    shared: Arc<Shared>,
    state: State<O>,
    name: &'static str,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    timer: Option<Timer>,
}

impl<O: Send + 'static> TaskHandle<O> {
    pub(crate) fn remote(
        shared: Arc<Shared>,
        reply: Reply<O>,
        name: &'static str,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> TaskHandle<O> {
        TaskHandle {
            shared,
            state: State::Remote(reply),
            name,
            timeout,
            deadline,
            timer: None,
        }
    }

    pub(crate) fn inline<T: Task<Output = O>>(
        shared: Arc<Shared>,
        task: T,
        meta: JobMeta,
    ) -> TaskHandle<O> {
        let (name, timeout, deadline) = (meta.name, meta.timeout, meta.deadline);
        let run = move |shared: &Shared| {
            if shared.is_closed() {
                return Err(Error::Closed);
            }
            if meta.expired() {
                return Err(meta.timed_out());
            }
            let started = worker::stamp();
            shared.inline_started();
            let (result, _, _) = worker::invoke(task, &meta, shared, started, None);
            shared.inline_finished();
            result
        };
        TaskHandle {
            shared,
            state: State::Inline(Box::new(run)),
            name,
            timeout,
            deadline,
            timer: None,
        }
    }

    /// The name the task runs under.
    pub fn task_name(&self) -> &'static str {
        self.name
    }

    fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<Result<O, Error>> {
        match &mut self.state {
            State::Done => Poll::Ready(Err(Error::Closed)),
            State::Inline(_) => match std::mem::replace(&mut self.state, State::Done) {
                State::Inline(run) => Poll::Ready(run(&self.shared)),
                _ => Poll::Ready(Err(Error::Closed)),
            },
            State::Remote(reply) => {
                if let Poll::Ready(received) = Pin::new(&mut *reply).poll(cx) {
                    // A sender dropped without replying belongs to a pool torn down around it.
                    return Poll::Ready(received.unwrap_or(Err(Error::Closed)));
                }
                let Some(deadline) = self.deadline else {
                    return Poll::Pending;
                };
                if !Timer::expired(&mut self.timer, deadline, cx) {
                    return Poll::Pending;
                }
                Poll::Ready(self.value_or_timeout(cx))
            }
        }
    }

    /// At the deadline: the reply if it landed in time (a value that made it wins over the
    /// timer), else the timeout error.
    fn value_or_timeout(&mut self, cx: &mut Context<'_>) -> Result<O, Error> {
        if let State::Remote(reply) = &mut self.state {
            if reply.has_message() {
                if let Poll::Ready(Ok(result)) = Pin::new(reply).poll(cx) {
                    return result;
                }
            }
        }
        Err(Error::timed_out(self.name, self.timeout))
    }

    /// Settles the handle at its batch's deadline, as [`value_or_timeout`] says.
    pub(crate) fn time_out(&mut self, cx: &mut Context<'_>) -> Result<O, Error> {
        let result = self.value_or_timeout(cx);
        self.settle(result)
    }

    /// The caller has learned the outcome: count it, and let go of the reply (a still
    /// running task then sees that nobody waits).
    fn settle(&mut self, result: Result<O, Error>) -> Result<O, Error> {
        self.state = State::Done;
        self.shared.count_outcome(&result);
        result
    }
}

impl<O: Send + 'static> Future for TaskHandle<O> {
    type Output = Result<O, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if matches!(this.state, State::Done) {
            return Poll::Ready(Err(Error::Closed));
        }
        let result = std::task::ready!(this.poll_result(cx));
        Poll::Ready(this.settle(result))
    }
}

impl<O> Drop for TaskHandle<O> {
    fn drop(&mut self) {
        // The caller left before learning the outcome: that is a cancellation.
        if !matches!(self.state, State::Done) {
            self.shared.count_outcome::<O>(&Err(Error::Closed));
        }
    }
}

impl<O> fmt::Debug for TaskHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Remote(_) => "submitted",
            State::Inline(_) => "inline",
            State::Done => "done",
        };
        f.debug_struct("TaskHandle")
            .field("task", &self.name)
            .field("state", &state)
            .field("timeout", &self.timeout)
            .finish()
    }
}
