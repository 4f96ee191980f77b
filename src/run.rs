//! `Run`: one task about to be submitted (options, then `.await`), and its future.
//!
//! The future waits for queue room if the queue is full, submits through the backend, and
//! then polls the [`TaskHandle`] it got. It holds the pool's backend, so it is `'static`:
//! `tokio::spawn(pool.run(task).into_future())` works, and keeps the pool open meanwhile.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::backend::{Backend, Options};
use crate::error::{Error, TryRunError};
use crate::handle::{self, Pending, TaskHandle};
use crate::priority::Priority;
use crate::scheduler::{self, RoomWait};
use crate::task::Task;
use crate::time::Timer;

/// A refused task, with the backend that refused it.
type Refused<T> = (TryRunError<T>, Arc<Backend>);

/// A task about to be submitted, returned by [`Pool::run`](crate::Pool::run).
///
/// Set options with [`priority`](Run::priority), [`timeout`](Run::timeout) and
/// [`name`](Run::name), then `.await` it (the task is submitted at the first poll), or call
/// [`try_submit`](Run::try_submit) to submit without waiting for queue room.
///
/// A `Run` and its future own a handle to the pool, so they are `'static` and can be spawned.
#[must_use = "a task is submitted only when the `Run` is awaited or `try_submit` is called"]
pub struct Run<T: Task> {
    backend: Arc<Backend>,
    task: T,
    options: Options,
}

impl<T: Task> Run<T> {
    pub(crate) fn new(backend: Arc<Backend>, task: T) -> Run<T> {
        Run {
            backend,
            task,
            options: Options::default(),
        }
    }

    /// Sets the task's priority. Default: [`Priority::Normal`].
    pub fn priority(mut self, priority: Priority) -> Run<T> {
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
    pub fn timeout(mut self, timeout: Duration) -> Run<T> {
        self.options.timeout = Some(timeout);
        self
    }

    /// Gives up on the task at `deadline`, as [`timeout`](Run::timeout) does (the earlier of
    /// the two applies). For a deadline that comes from outside, such as a request's: the
    /// time the task waits for queue room counts against it.
    ///
    /// # Panics
    ///
    /// As [`timeout`](Run::timeout).
    pub fn deadline(mut self, deadline: Instant) -> Run<T> {
        self.options.deadline = Some(deadline);
        self
    }

    /// Overrides [`Task::name`] for this one submission (metrics, spans, errors).
    pub fn name(mut self, name: &'static str) -> Run<T> {
        self.options.name = Some(name);
        self
    }

    /// Submits the task now if the queue has room, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRunError::Full`] when `queue_capacity` tasks are waiting already,
    /// [`TryRunError::Overloaded`] when the task has a timeout or deadline that the work
    /// queued ahead of it would make it miss (deadline-aware admission, see
    /// [`Builder::deadline_admission`](crate::Builder::deadline_admission)),
    /// [`TryRunError::Closed`] after [`Pool::close`](crate::Pool::close) or
    /// [`shutdown`](crate::Pool::shutdown). In every case the task comes back untouched and
    /// the pool counts it as `rejected`.
    pub fn try_submit(self) -> Result<TaskHandle<T::Output>, TryRunError<T>> {
        self.submit_now().map_err(|(refusal, _)| refusal)
    }

    /// Submits now; a refusal (counted `rejected`) comes back with the backend, which a
    /// caller may still ask for [`retry_after`](Backend::retry_after).
    fn submit_now(mut self) -> Result<TaskHandle<T::Output>, Refused<T>> {
        let deadline = self.options.deadline();
        match self
            .backend
            .submit(self.task, &self.options, deadline, None)
        {
            Ok(pending) => Ok(TaskHandle::new(pending, self.backend.link())),
            Err(refusal) => {
                self.backend.rejected(1);
                Err((refusal, self.backend))
            }
        }
    }

    /// [`try_submit`](Run::try_submit), with a refusal as the error a caller that does not
    /// wait for room learns: [`Error::Overloaded`] when the queue is full (retry after the
    /// predicted drain time) or the deadline cannot be met, [`Error::Closed`] once closed.
    pub(crate) fn submit_or_refuse(self) -> Result<TaskHandle<T::Output>, Error> {
        let name = self.options.name;
        self.submit_now().map_err(|(refusal, backend)| {
            let (task, refused) = match refusal {
                TryRunError::Full(task) => (task, scheduler::Refused::Full),
                TryRunError::Overloaded { task, retry_after } => {
                    (task, scheduler::Refused::Late(retry_after))
                }
                TryRunError::Closed(task) => (task, scheduler::Refused::Closed),
            };
            backend.refusal_error(refused, name.unwrap_or_else(|| task.name()))
        })
    }
}

impl<T: Task> IntoFuture for Run<T> {
    type Output = Result<T::Output, Error>;
    type IntoFuture = RunFuture<T>;

    fn into_future(self) -> RunFuture<T> {
        RunFuture {
            state: Stage::Unsubmitted {
                backend: self.backend,
                task: self.task,
                room: RoomWait::default(),
                options: self.options,
                deadline: None,
                timer: None,
            },
        }
    }
}

impl<T: Task> fmt::Debug for Run<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("task", &self.options.name_of(&self.task))
            .field("priority", &self.options.priority)
            .field("timeout", &self.options.timeout)
            .finish()
    }
}

// What a stage needs lives in its variant: the options, deadline and timer only matter
// until the task is admitted (the handle keeps its own), and a smaller future is cheaper to
// spawn and move (tokio copies it into the task's cell).
enum Stage<T: Task> {
    /// Not admitted yet (the queue may be full).
    Unsubmitted {
        backend: Arc<Backend>,
        task: T,
        room: RoomWait,
        options: Options,
        /// Set at the first poll: the timeout counts from there.
        deadline: Option<Instant>,
        /// Started while waiting for room with a deadline; moves into the handle.
        timer: Option<Timer>,
    },
    /// Admitted: the handle delivers the outcome, settled against the backend.
    Submitted {
        // Also keeps the pool open while the task is queued, as the caller expects of a
        // future that owns its pool handle.
        backend: Arc<Backend>,
        handle: Pending<T::Output>,
    },
    /// The outcome was handed out, or the future was taken apart.
    Done,
}

/// The future of [`Run`]: waits for queue room, submits, then waits for the result.
///
/// # Cancellation
///
/// Dropping it before the task starts means the task never runs (counted `cancelled`).
/// Dropping it while the task runs lets the task finish, but
/// [`is_cancelled`](crate::is_cancelled) turns true inside it and its value is dropped.
///
/// # Panics
///
/// Polling it again after it returned `Ready` panics, as tokio's `JoinHandle` does.
#[must_use = "futures do nothing unless polled"]
pub struct RunFuture<T: Task> {
    state: Stage<T>,
}

// The task is moved, never pinned in place, so the future does not need to stay put.
impl<T: Task> Unpin for RunFuture<T> {}

impl<T: Task> Drop for RunFuture<T> {
    /// Dropped while the task is queued or running: a cancellation.
    fn drop(&mut self) {
        if let Stage::Submitted { backend, handle } = &mut self.state {
            handle::resume(handle.cancel(&**backend));
        }
    }
}

impl<T: Task> Future for RunFuture<T> {
    type Output = Result<T::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                Stage::Submitted { backend, handle } => {
                    let result = std::task::ready!(handle.poll(&**backend, cx));
                    this.state = Stage::Done;
                    return Poll::Ready(result);
                }
                Stage::Done => panic!("`RunFuture` polled after completion"),
                Stage::Unsubmitted { .. } => {
                    if let Some(result) = std::task::ready!(this.poll_submit(cx)) {
                        this.state = Stage::Done;
                        return Poll::Ready(result);
                    }
                }
            }
        }
    }
}

impl<T: Task> RunFuture<T> {
    /// Tries to submit, waiting for room while the queue is full. `Ready(None)` once
    /// submitted (poll the handle next); `Ready(Some(..))` when the task ended unsubmitted.
    fn poll_submit(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T::Output, Error>>> {
        let Stage::Unsubmitted {
            backend,
            task,
            mut room,
            mut options,
            mut deadline,
            mut timer,
        } = std::mem::replace(&mut self.state, Stage::Done)
        else {
            unreachable!("called only while unsubmitted");
        };
        if deadline.is_none() {
            deadline = options.deadline();
        }
        match backend.submit(task, &options, deadline, None) {
            Ok(handle) => {
                room.stop();
                let handle = handle.with_timer(timer);
                self.state = Stage::Submitted { backend, handle };
                Poll::Ready(None)
            }
            Err(TryRunError::Closed(_)) => {
                backend.rejected(1);
                Poll::Ready(Some(Err(Error::Closed)))
            }
            // Waiting would not help: the forecast says it would finish too late.
            Err(TryRunError::Overloaded { task, retry_after }) => {
                backend.rejected(1);
                let task = options.name_of(&task);
                Poll::Ready(Some(Err(Error::Overloaded { task, retry_after })))
            }
            Err(TryRunError::Full(task)) => {
                // The queue is full: wait for room, or for the timeout.
                if let Some(deadline) = deadline {
                    if Timer::expired(&mut timer, deadline, cx) {
                        let name = options.name_of(&task);
                        let error = backend.time_out_unadmitted(name, options.timeout);
                        return Poll::Ready(Some(Err(error)));
                    }
                }
                let ready = backend.poll_room(&mut room, cx);
                self.state = Stage::Unsubmitted {
                    backend,
                    task,
                    room,
                    options,
                    deadline,
                    timer,
                };
                ready.map(|()| None)
            }
        }
    }
}

impl<T: Task> fmt::Debug for RunFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RunFuture");
        match &self.state {
            Stage::Unsubmitted { options, .. } => d
                .field("stage", &"unsubmitted")
                .field("priority", &options.priority)
                .field("timeout", &options.timeout),
            Stage::Submitted { handle, .. } => {
                d.field("stage", &"submitted").field("handle", handle)
            }
            Stage::Done => d.field("stage", &"done"),
        };
        d.finish()
    }
}
