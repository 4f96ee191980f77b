//! `Runner`: what a [`Pool`] and a remote backend (the Redis fleet of `offload-redis`) have in
//! common, so a handler written once runs its tasks on this machine or on a fleet.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::pool::Pool;
use crate::priority::Priority;
use crate::task::Task;

/// A task that can cross a process boundary: its fields and its output are serde data, and
/// its [`name`](Task::name) is stable (a remote worker finds the task's code by that name).
///
/// Implemented for every such task; there is nothing to write.
pub trait Portable:
    Task<Output: Serialize + DeserializeOwned> + Serialize + DeserializeOwned
{
}

impl<T> Portable for T where
    T: Task<Output: Serialize + DeserializeOwned> + Serialize + DeserializeOwned
{
}

/// How one task is submitted through a [`Runner`]: its priority, its time limit, and what to
/// do when the backend is full.
///
/// ```
/// use std::time::Duration;
/// use offload::{Priority, RunOptions};
///
/// let options = RunOptions::new()
///     .priority(Priority::High)
///     .timeout(Duration::from_millis(500))
///     .wait_for_room(false);
/// assert_eq!(options.priority, Priority::High);
/// assert!(!options.wait_for_room);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOptions {
    /// See [`Run::priority`](crate::Run::priority). Default: [`Priority::Normal`].
    pub priority: Priority,
    /// See [`Run::timeout`](crate::Run::timeout). Default: none.
    pub timeout: Option<Duration>,
    /// See [`Run::deadline`](crate::Run::deadline). Default: none.
    pub deadline: Option<Instant>,
    /// `true` (the default): wait for room while the backend is full, as
    /// [`Pool::run`] does. `false`: refuse at once with [`Error::Overloaded`], as
    /// [`Pool::try_run`] does; what a server wants, since a client can retry while a backlog
    /// only grows.
    pub wait_for_room: bool,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions::new()
    }
}

impl RunOptions {
    /// Normal priority, no time limit, waits for room.
    pub fn new() -> RunOptions {
        RunOptions {
            priority: Priority::Normal,
            timeout: None,
            deadline: None,
            wait_for_room: true,
        }
    }

    /// Sets [`priority`](RunOptions::priority).
    pub fn priority(mut self, priority: Priority) -> RunOptions {
        self.priority = priority;
        self
    }

    /// Sets [`timeout`](RunOptions::timeout).
    pub fn timeout(mut self, timeout: Duration) -> RunOptions {
        self.timeout = Some(timeout);
        self
    }

    /// Sets [`deadline`](RunOptions::deadline).
    pub fn deadline(mut self, deadline: Instant) -> RunOptions {
        self.deadline = Some(deadline);
        self
    }

    /// Sets [`wait_for_room`](RunOptions::wait_for_room).
    pub fn wait_for_room(mut self, wait: bool) -> RunOptions {
        self.wait_for_room = wait;
        self
    }
}

/// Runs [`Portable`] tasks somewhere: on a [`Pool`]'s threads, or on a fleet of worker
/// processes (`offload_redis::Fleet`). Write a handler once against `R: Runner` and choose
/// where the work goes when the service starts.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), offload::Error> {
/// use offload::{Pool, RunOptions, Runner, Task};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Square(u64);
///
/// impl Task for Square {
///     type Output = u64;
///     fn run(self) -> u64 { self.0 * self.0 }
///     fn name(&self) -> &'static str { "square" }
/// }
///
/// async fn handler(runner: &impl Runner, n: u64) -> Result<u64, offload::Error> {
///     runner.run_with(Square(n), RunOptions::new()).await
/// }
///
/// let pool = Pool::builder().threads(1).build().expect("threads start");
/// assert_eq!(handler(&pool, 12).await?, 144);
/// # Ok(())
/// # }
/// ```
pub trait Runner: Send + Sync {
    /// Submits `task` with `options` and resolves to its output. The future is `'static`:
    /// it can be spawned. Dropping it before the task starts means the task never runs;
    /// dropping it later turns [`is_cancelled`](crate::is_cancelled) true inside the task.
    ///
    /// # Errors
    ///
    /// Whatever the backend reports as an [`Error`]: a panic, a timeout, a closed backend,
    /// [`Error::Overloaded`] for a refusal, and for remote backends [`Error::Unavailable`]
    /// and [`Error::Failed`].
    fn run_with<T: Portable>(
        &self,
        task: T,
        options: RunOptions,
    ) -> impl Future<Output = Result<T::Output, Error>> + Send + 'static;
}

impl Runner for Pool {
    fn run_with<T: Portable>(
        &self,
        task: T,
        options: RunOptions,
    ) -> impl Future<Output = Result<T::Output, Error>> + Send + 'static {
        let mut run = self.run(task).priority(options.priority);
        if let Some(timeout) = options.timeout {
            run = run.timeout(timeout);
        }
        if let Some(deadline) = options.deadline {
            run = run.deadline(deadline);
        }
        async move {
            if options.wait_for_room {
                return run.await;
            }
            run.submit_or_refuse()?.await
        }
    }
}
