//! Waiting for a submitted task's result, and counting how it ended as its caller learned
//! it: on the poll that delivers the result, or on drop (a cancellation).
//!
//! [`Pending`] is the wait itself, holding nothing of the pool: a `RunFuture` or a batch
//! settles it against the backend it owns anyway, so a `run` costs no reference counting
//! beyond that one handle. [`TaskHandle`], which outlives any borrow, pairs it with a
//! [`Link`] of its own.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::job::{Charge, Panic, Reply, Withdraw, Withdrawn};
use crate::metrics::{Counters, Outcome};
use crate::scheduler::Scheduler;
use crate::time::Timer;

/// Work to do at the first poll, on the polling thread (an inline pool's task).
pub(crate) type Deferred<O> = Box<dyn FnOnce() -> Result<O, Error> + Send>;

/// What a waiting task reports to: its pool's counters, and its scheduler when the task is
/// taken back out of the queue.
pub(crate) trait Owner {
    /// Counts how a task ended, as its caller learned it.
    fn ended(&self, outcome: Outcome);
    /// A caller took its queued task back: its slot and charge are free now.
    fn withdrew(&self, charge: Charge);
}

enum State<O> {
    /// Queued or running on a worker; the result arrives through the channel. A caller that
    /// leaves or times out while the task is still queued takes it back out (`slot`).
    Waiting(Reply<O>, Arc<dyn Withdraw>),
    /// Runs at the first poll.
    Deferred(Deferred<O>),
    /// The caller has the outcome.
    Done,
}

/// A submitted task's result to wait for, settled against an [`Owner`] that its holder
/// passes in. Its holder must [`cancel`](Pending::cancel) it if it goes away unsettled.
///
/// Settling or cancelling may drop the task's input (taken back out of the queue), and a
/// task's `Drop` may panic: that panic is raised only after the bookkeeping (slot freed,
/// outcome counted), or handed back to a holder that settles many (see [`resume`]).
pub(crate) struct Pending<O> {
    state: State<O>,
    name: &'static str,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    timer: Option<Timer>,
}

impl<O: Send + 'static> Pending<O> {
    pub(crate) fn waiting(
        reply: Reply<O>,
        slot: Arc<dyn Withdraw>,
        name: &'static str,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> Pending<O> {
        Pending {
            state: State::Waiting(reply, slot),
            name,
            timeout,
            deadline,
            timer: None,
        }
    }

    pub(crate) fn deferred(
        run: Deferred<O>,
        name: &'static str,
        timeout: Option<Duration>,
    ) -> Pending<O> {
        Pending {
            state: State::Deferred(run),
            name,
            timeout,
            deadline: None,
            timer: None,
        }
    }

    /// Moves the timer a `RunFuture` started while waiting for room into this handle, so
    /// the same timer keeps running.
    pub(crate) fn with_timer(mut self, timer: Option<Timer>) -> Pending<O> {
        self.timer = timer;
        self
    }

    /// The result once it is in (or the deadline passed), counted into `owner`.
    ///
    /// # Panics
    ///
    /// When polled again after it returned `Ready`.
    pub(crate) fn poll(
        &mut self,
        owner: &impl Owner,
        cx: &mut Context<'_>,
    ) -> Poll<Result<O, Error>> {
        let result = std::task::ready!(self.poll_result(cx));
        let (result, panic) = self.settle(owner, result);
        resume(panic);
        Poll::Ready(result)
    }

    fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<Result<O, Error>> {
        match &mut self.state {
            State::Done => panic!("`TaskHandle` polled after completion"),
            State::Deferred(_) => match std::mem::replace(&mut self.state, State::Done) {
                State::Deferred(run) => Poll::Ready(run()),
                _ => unreachable!("matched `Deferred` just above"),
            },
            State::Waiting(reply, _) => {
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
        if let State::Waiting(reply, _) = &mut self.state {
            if reply.has_message() {
                if let Poll::Ready(Ok(result)) = Pin::new(reply).poll(cx) {
                    return result;
                }
            }
        }
        Err(Error::timed_out(self.name, self.timeout))
    }

    /// Settles the handle at its batch's deadline, as [`value_or_timeout`] says; a panic
    /// from dropping the task's input comes back for the batch to raise once every handle
    /// is settled.
    pub(crate) fn time_out(
        &mut self,
        owner: &impl Owner,
        cx: &mut Context<'_>,
    ) -> (Result<O, Error>, Option<Panic>) {
        let result = self.value_or_timeout(cx);
        self.settle(owner, result)
    }

    /// The caller has learned the outcome: count it, and let go of the reply (a still
    /// running task then sees that nobody waits).
    fn settle(
        &mut self,
        owner: &impl Owner,
        result: Result<O, Error>,
    ) -> (Result<O, Error>, Option<Panic>) {
        let mut panic = None;
        if let State::Waiting(_, slot) = std::mem::replace(&mut self.state, State::Done) {
            if matches!(result, Err(Error::TimedOut { .. })) {
                panic = withdraw(owner, &*slot);
            }
        }
        owner.ended(Outcome::of(&result));
        (result, panic)
    }
}

impl<O> Pending<O> {
    /// The caller left before learning the outcome: a cancellation (nothing, if it had
    /// learned it). Returns the panic of the task's `Drop`, if dropping it panicked, for the
    /// holder to [`resume`] once every handle it holds is cancelled.
    #[must_use = "a panic from the task's `Drop` must be resumed"]
    pub(crate) fn cancel(&mut self, owner: &impl Owner) -> Option<Panic> {
        let panic = match std::mem::replace(&mut self.state, State::Done) {
            State::Done => return None,
            State::Waiting(_, slot) => withdraw(owner, &*slot),
            State::Deferred(_) => None,
        };
        owner.ended(Outcome::Cancelled);
        panic
    }

    /// The name the task runs under.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }
}

/// Takes a task back out of the queue if no worker has claimed it yet (the worker that
/// reaches its job later discards it); either way its caller is gone from now on. Returns
/// the panic of the task's `Drop`, caught so that the slot is freed first.
fn withdraw(owner: &impl Owner, slot: &dyn Withdraw) -> Option<Panic> {
    let Withdrawn { charge, panic } = slot.withdraw();
    if let Some(charge) = charge {
        owner.withdrew(charge);
    }
    panic
}

/// Raises a panic that settling a task caught, unless this thread is unwinding already
/// (a second panic would abort): then it is only logged.
pub(crate) fn resume(panic: Option<Panic>) {
    let Some(panic) = panic else {
        return;
    };
    if std::thread::panicking() {
        let message = crate::job::panic_message(panic.as_ref());
        tracing::error!(%message, "offload: a cancelled task's input panicked while dropped");
    } else {
        std::panic::resume_unwind(panic);
    }
}

impl<O> Drop for Pending<O> {
    fn drop(&mut self) {
        // Every holder settles or cancels its `Pending` (a task still waiting here would
        // go uncounted); unwinding from elsewhere is the one excuse.
        debug_assert!(
            matches!(self.state, State::Done) || std::thread::panicking(),
            "a waiting `Pending` was dropped without `cancel`"
        );
    }
}

impl<O> fmt::Debug for Pending<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Waiting(..) => "submitted",
            State::Deferred(_) => "inline",
            State::Done => "done",
        };
        f.debug_struct("TaskHandle")
            .field("task", &self.name)
            .field("state", &state)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A [`TaskHandle`]'s own way to its pool: the counters, and the scheduler held weakly, so a
/// forgotten handle never keeps the threads alive.
pub(crate) struct Link {
    pub(crate) counters: Arc<Counters>,
    /// `Weak::new()` for an inline pool.
    pub(crate) scheduler: Weak<Scheduler>,
}

impl Owner for Link {
    fn ended(&self, outcome: Outcome) {
        self.counters.ended(outcome);
    }

    fn withdrew(&self, charge: Charge) {
        if let Some(scheduler) = self.scheduler.upgrade() {
            scheduler.withdrew(charge);
        }
    }
}

/// A submitted task's result, to `.await`. Returned by [`Pool::try_run`](crate::Pool::try_run)
/// and [`Run::try_submit`](crate::Run::try_submit).
///
/// # Cancellation
///
/// Dropping the handle cancels the task: a queued task never runs (counted `cancelled`), a
/// running one sees [`is_cancelled`](crate::is_cancelled) turn true and its value is dropped.
/// A queued task that is cancelled or times out leaves the queue at once: its queue slot is
/// free for the next submission and the task (with its input) is dropped right then, on the
/// caller's thread.
///
/// # Panics
///
/// Polling it again after it returned `Ready` panics, as tokio's `JoinHandle` does.
#[must_use = "dropping a TaskHandle cancels its task"]
pub struct TaskHandle<O> {
    pending: Pending<O>,
    link: Link,
}

impl<O> TaskHandle<O> {
    pub(crate) fn new(pending: Pending<O>, link: Link) -> TaskHandle<O> {
        TaskHandle { pending, link }
    }

    /// The name the task runs under.
    pub fn task_name(&self) -> &'static str {
        self.pending.name()
    }
}

impl<O: Send + 'static> Future for TaskHandle<O> {
    type Output = Result<O, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.pending.poll(&this.link, cx)
    }
}

impl<O> Drop for TaskHandle<O> {
    fn drop(&mut self) {
        resume(self.pending.cancel(&self.link));
    }
}

impl<O> fmt::Debug for TaskHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pending.fmt(f)
    }
}
