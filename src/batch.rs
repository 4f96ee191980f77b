//! `RunAll`: many tasks of one type, awaited together, for one wake-up of the caller.
//
// Implementation: every task is submitted like a `run` (same admission, queue, handle and
// counters), and its job also holds the batch's `Countdown`. Results wait in their handles'
// channels, which nobody polls until the countdown reaches zero, so no worker wakes the
// caller per result; the last job to be done with wakes it once. The future then polls each
// handle (all ready) in input order.

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::EventListener;

use crate::backend::{Backend, Options};
use crate::countdown::Countdown;
use crate::error::{Error, TryRunError};
use crate::handle::{self, Pending};
use crate::priority::Priority;
use crate::scheduler::RoomWait;
use crate::task::Task;
use crate::time::Timer;

/// A batch of tasks about to be submitted, returned by [`Pool::run_all`](crate::Pool::run_all).
///
/// Set options with [`priority`](RunAll::priority), [`timeout`](RunAll::timeout) and
/// [`name`](RunAll::name), which apply to every task of the batch, then `.await` it: the
/// result is one `Result` per task, in input order.
#[must_use = "the tasks are submitted only when the `RunAll` is awaited"]
pub struct RunAll<T: Task> {
    backend: Arc<Backend>,
    tasks: Vec<T>,
    options: Options,
}

impl<T: Task> RunAll<T> {
    pub(crate) fn new(backend: Arc<Backend>, tasks: Vec<T>) -> RunAll<T> {
        RunAll {
            backend,
            tasks,
            options: Options::default(),
        }
    }

    /// Sets every task's priority. Default: [`Priority::Normal`].
    pub fn priority(mut self, priority: Priority) -> RunAll<T> {
        self.options.priority = priority;
        self
    }

    /// Gives up on the batch `timeout` after the first poll (waiting for queue room
    /// included).
    ///
    /// At the deadline the future resolves at once: tasks that ended in time keep their
    /// results, every other one is [`Error::TimedOut`]; those still queued never run, running
    /// ones see [`is_cancelled`](crate::is_cancelled) turn true. The immediate return needs a
    /// tokio runtime with timers enabled around the `.await`; under another executor the
    /// pool enforces each task's deadline instead. On [`Pool::inline`](crate::Pool::inline)
    /// the batch runs inside one poll, so the deadline is checked before each task starts.
    /// Default: none.
    ///
    /// # Panics
    ///
    /// Awaiting panics inside a tokio runtime built without `enable_time`, as every tokio
    /// timer does.
    pub fn timeout(mut self, timeout: Duration) -> RunAll<T> {
        self.options.timeout = Some(timeout);
        self
    }

    /// Overrides [`Task::name`] for every task of the batch (metrics, spans, errors).
    pub fn name(mut self, name: &'static str) -> RunAll<T> {
        self.options.name = Some(name);
        self
    }
}

impl<T: Task> IntoFuture for RunAll<T> {
    type Output = Vec<Result<T::Output, Error>>;
    type IntoFuture = RunAllFuture<T>;

    fn into_future(self) -> RunAllFuture<T> {
        let len = self.tasks.len();
        RunAllFuture {
            backend: self.backend,
            options: self.options,
            unsent: self.tasks.into(),
            handles: VecDeque::with_capacity(len),
            results: Vec::with_capacity(len),
            countdown: Arc::new(Countdown::new(0)),
            deadline: None,
            timer: None,
            room: RoomWait::default(),
            done: None,
            refused: None,
            finished: false,
        }
    }
}

impl<T: Task> fmt::Debug for RunAll<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunAll")
            .field("tasks", &self.tasks.len())
            .field("priority", &self.options.priority)
            .field("timeout", &self.options.timeout)
            .finish()
    }
}

/// The future of [`RunAll`]: submits every task (waiting for queue room as needed), then
/// waits until all have ended and yields their results in input order.
///
/// # Cancellation
///
/// Dropping it cancels the batch: tasks not yet started never run (counted `cancelled`),
/// running ones see [`is_cancelled`](crate::is_cancelled) turn true and their values are
/// dropped, and tasks not yet submitted are dropped without being counted.
#[must_use = "futures do nothing unless polled"]
pub struct RunAllFuture<T: Task> {
    backend: Arc<Backend>,
    options: Options,
    /// Tasks not yet admitted, in input order.
    unsent: VecDeque<T>,
    /// Admitted tasks, in input order, not yet collected.
    handles: VecDeque<Pending<T::Output>>,
    /// Collected results, in input order: a prefix of the output.
    results: Vec<Result<T::Output, Error>>,
    countdown: Arc<Countdown>,
    deadline: Option<Instant>,
    timer: Option<Timer>,
    room: RoomWait,
    done: Option<EventListener>,
    /// How many tasks the pool refused for good, and why (`Closed`, or `Overloaded` when
    /// the batch's deadline cannot be met): the output's last entries.
    refused: Option<(usize, Error)>,
    /// The output was handed out.
    finished: bool,
}

impl<T: Task> RunAllFuture<T> {
    /// Submits what the queue admits. `Ready` once nothing is left to submit; `Pending` while
    /// waiting for room.
    fn poll_submit(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Some(task) = self.unsent.pop_front() {
            let countdown = Some(&self.countdown);
            match self
                .backend
                .submit(task, &self.options, self.deadline, countdown)
            {
                Ok(handle) => self.handles.push_back(handle),
                Err(TryRunError::Full(task)) => {
                    self.unsent.push_front(task);
                    std::task::ready!(self.backend.poll_room(&mut self.room, cx));
                }
                Err(refusal) => {
                    // Closing is final, and a batch whose deadline the queue ahead cannot
                    // meet is refused whole: this task and every later one.
                    let error = match refusal {
                        TryRunError::Overloaded { task, retry_after } => Error::Overloaded {
                            task: self.options.name_of(&task),
                            retry_after,
                        },
                        _ => Error::Closed,
                    };
                    let refused = 1 + self.unsent.len();
                    self.unsent.clear();
                    self.backend.rejected(refused as u64);
                    self.refused = Some((refused, error));
                    break;
                }
            }
        }
        self.room.stop();
        Poll::Ready(())
    }

    /// Whether the batch's deadline has passed (registering the timer otherwise).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline
            .is_some_and(|deadline| Timer::expired(&mut self.timer, deadline, cx))
    }

    /// Waits until every admitted job is done with.
    fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.countdown.is_zero() {
                self.done = None;
                return Poll::Ready(());
            }
            match &mut self.done {
                // Registered before the check at the loop's top: a last tick in between
                // is not missed.
                None => self.done = Some(self.countdown.listen()),
                Some(listener) => {
                    std::task::ready!(Pin::new(listener).poll(cx));
                    self.done = None;
                }
            }
        }
    }

    /// The output once every job is done with: each handle's result, then the refusals.
    fn poll_collect(&mut self, cx: &mut Context<'_>) -> Poll<Vec<Result<T::Output, Error>>> {
        while let Some(mut handle) = self.handles.pop_front() {
            // Every job is done with, so every reply is in (an inline task runs right here).
            match handle.poll(&*self.backend, cx) {
                Poll::Ready(result) => self.results.push(result),
                Poll::Pending => {
                    self.handles.push_front(handle);
                    return Poll::Pending;
                }
            }
        }
        let results = std::mem::take(&mut self.results);
        Poll::Ready(self.finish(results))
    }

    /// The deadline passed: what ended in time keeps its result, the rest times out.
    fn time_out(&mut self, cx: &mut Context<'_>) -> Vec<Result<T::Output, Error>> {
        self.room.stop();
        let mut results = std::mem::take(&mut self.results);
        // Every handle is settled before a panic from dropping an input is raised.
        let mut panic = None;
        for mut handle in self.handles.drain(..) {
            let (result, dropped) = handle.time_out(&*self.backend, cx);
            results.push(result);
            panic = panic.or(dropped);
        }
        for task in self.unsent.drain(..) {
            let name = self.options.name_of(&task);
            let error = self.backend.time_out_unadmitted(name, self.options.timeout);
            results.push(Err(error));
        }
        let results = self.finish(results);
        handle::resume(panic);
        results
    }

    /// Appends an error for each task the pool refused, after everything admitted.
    fn finish(
        &mut self,
        mut results: Vec<Result<T::Output, Error>>,
    ) -> Vec<Result<T::Output, Error>> {
        self.finished = true;
        if let Some((refused, error)) = self.refused.take() {
            results.extend((0..refused).map(|_| Err(error.clone())));
        }
        results
    }
}

// Tasks are moved, never pinned in place, so the future does not need to stay put.
impl<T: Task> Unpin for RunAllFuture<T> {}

impl<T: Task> Drop for RunAllFuture<T> {
    /// Cancels what was admitted and is not collected yet: every task, before a panic from
    /// dropping one's input is raised.
    fn drop(&mut self) {
        let mut panic = None;
        for handle in &mut self.handles {
            panic = panic.or(handle.cancel(&*self.backend));
        }
        handle::resume(panic);
    }
}

impl<T: Task> Future for RunAllFuture<T> {
    type Output = Vec<Result<T::Output, Error>>;

    /// # Panics
    ///
    /// When polled again after it returned `Ready`, as tokio's `JoinHandle` does: the
    /// results were handed out, and an empty list would read as a batch of no tasks.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.finished, "`RunAllFuture` polled after completion");
        if this.deadline.is_none() {
            this.deadline = this.options.deadline();
        }
        if this.poll_submit(cx).is_pending() || this.poll_done(cx).is_pending() {
            if this.expired(cx) {
                return Poll::Ready(this.time_out(cx));
            }
            return Poll::Pending;
        }
        this.poll_collect(cx)
    }
}

impl<T: Task> fmt::Debug for RunAllFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunAllFuture")
            .field("unsent", &self.unsent.len())
            .field("admitted", &(self.handles.len() + self.results.len()))
            .field("priority", &self.options.priority)
            .field("timeout", &self.options.timeout)
            .finish()
    }
}
