//! `TaskHandle`: a submitted task's result, to await. Counts how the task ended, as its
//! caller learned it: on the poll that delivers the result, or on drop (a cancellation).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::job::Reply;
use crate::metrics::{Counters, Outcome};
use crate::scheduler::Withdrawal;
use crate::time::Timer;

/// Work to do at the first poll, on the polling thread (an inline pool's task).
pub(crate) type Deferred<O> = Box<dyn FnOnce() -> Result<O, Error> + Send>;

enum State<O> {
    /// Queued or running on a worker; the result arrives through the channel. A caller that
    /// leaves or times out while the task is still queued takes it back out.
    Waiting(Reply<O>, Withdrawal),
    /// Runs at the first poll.
    Deferred(Deferred<O>),
    /// The caller has the outcome.
    Done,
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
    counters: Arc<Counters>,
    state: State<O>,
    name: &'static str,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    timer: Option<Timer>,
}

impl<O: Send + 'static> TaskHandle<O> {
    pub(crate) fn waiting(
        counters: Arc<Counters>,
        reply: Reply<O>,
        withdrawal: Withdrawal,
        name: &'static str,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> TaskHandle<O> {
        TaskHandle {
            counters,
            state: State::Waiting(reply, withdrawal),
            name,
            timeout,
            deadline,
            timer: None,
        }
    }

    pub(crate) fn deferred(
        counters: Arc<Counters>,
        run: Deferred<O>,
        name: &'static str,
        timeout: Option<Duration>,
    ) -> TaskHandle<O> {
        TaskHandle {
            counters,
            state: State::Deferred(run),
            name,
            timeout,
            deadline: None,
            timer: None,
        }
    }

    /// The name the task runs under.
    pub fn task_name(&self) -> &'static str {
        self.name
    }

    /// Moves the timer a `RunFuture` started while waiting for room into this handle, so
    /// the same timer keeps running.
    pub(crate) fn with_timer(mut self, timer: Option<Timer>) -> TaskHandle<O> {
        self.timer = timer;
        self
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

    /// Settles the handle at its batch's deadline, as [`value_or_timeout`] says.
    pub(crate) fn time_out(&mut self, cx: &mut Context<'_>) -> Result<O, Error> {
        let result = self.value_or_timeout(cx);
        self.settle(result)
    }

    /// The caller has learned the outcome: count it, and let go of the reply (a still
    /// running task then sees that nobody waits).
    fn settle(&mut self, result: Result<O, Error>) -> Result<O, Error> {
        if let State::Waiting(_, withdrawal) = std::mem::replace(&mut self.state, State::Done) {
            if matches!(result, Err(Error::TimedOut { .. })) {
                withdrawal.withdraw();
            }
        }
        self.counters.ended(Outcome::of(&result));
        result
    }
}

impl<O: Send + 'static> Future for TaskHandle<O> {
    type Output = Result<O, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = std::task::ready!(this.poll_result(cx));
        Poll::Ready(this.settle(result))
    }
}

impl<O> Drop for TaskHandle<O> {
    fn drop(&mut self) {
        // The caller left before learning the outcome: that is a cancellation.
        match std::mem::replace(&mut self.state, State::Done) {
            State::Done => return,
            State::Waiting(_, withdrawal) => withdrawal.withdraw(),
            State::Deferred(_) => {}
        }
        self.counters.ended(Outcome::Cancelled);
    }
}

impl<O> fmt::Debug for TaskHandle<O> {
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
