//! The ways a task can fail to produce its value, one error type per operation.

use std::fmt;
use std::time::Duration;

/// Why awaiting a task did not produce its value.
///
/// A task's own failures travel inside its `Output` (a task that returns `Result` yields
/// `Ok(Err(..))`); this type covers what the pool did to the task.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = offload::Pool::builder().threads(1).build().expect("threads start");
/// let err = pool.run(|| -> u32 { panic!("bad pixel") }).await.unwrap_err();
/// assert!(err.is_panic());
/// assert!(err.to_string().contains("bad pixel"));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The task panicked. The pool caught the panic; its threads keep working.
    #[error("task `{task}` panicked: {message}")]
    Panicked {
        /// The task's [`name`](crate::Task::name).
        task: &'static str,
        /// The panic message, or a placeholder when the payload was not a string.
        message: String,
    },
    /// The task's timeout passed before it produced a value. A task still queued then never
    /// runs; a running one sees [`is_cancelled`](crate::is_cancelled) turn true.
    #[error("task `{task}` timed out after {after:?}")]
    TimedOut {
        /// The task's [`name`](crate::Task::name).
        task: &'static str,
        /// The timeout that was set.
        after: Duration,
    },
    /// The pool was shut down (or dropped) before the task could run.
    #[error("pool closed")]
    Closed,
    /// Refused at submission, before anything ran: the task could not have finished by its
    /// deadline behind the work already queued, or the backend's limits were reached. Retry
    /// after `retry_after` (a prediction of when there will be room, not a promise).
    #[error("task `{task}` refused: overloaded, retry after {retry_after:?}")]
    Overloaded {
        /// The task's [`name`](crate::Task::name).
        task: &'static str,
        /// When a retry may succeed: the backend's estimate of its drain time.
        retry_after: Duration,
    },
    /// A remote backend (such as a Redis fleet) could not be reached in time. The task may
    /// or may not have run; its result is not coming.
    #[error("backend unavailable: {message}")]
    Unavailable {
        /// What failed, for logs.
        message: String,
    },
    /// A remote backend ran the task `attempts` times and every attempt failed (a panic, a
    /// lost worker); it gave up and set the task aside (a dead letter).
    #[error("task `{task}` failed after {attempts} attempts: {message}")]
    Failed {
        /// The task's [`name`](crate::Task::name).
        task: &'static str,
        /// How many times it ran.
        attempts: u32,
        /// The last attempt's error.
        message: String,
    },
}

impl Error {
    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, Error::Panicked { .. })
    }

    /// Whether the task's timeout passed first.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::TimedOut { .. })
    }

    /// Whether the pool was closed before the task ran.
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed)
    }

    /// Whether the task was refused as overloaded (see [`Error::retry_after`]).
    pub fn is_overloaded(&self) -> bool {
        matches!(self, Error::Overloaded { .. })
    }

    /// When a retry may succeed, for errors that say so ([`Error::Overloaded`]): what a
    /// server puts in `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Overloaded { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The error of a task named `task` whose `timeout` (if one was set) passed.
    pub(crate) fn timed_out(task: &'static str, timeout: Option<Duration>) -> Error {
        Error::TimedOut {
            task,
            after: timeout.unwrap_or_default(),
        }
    }

    /// The panic message, for [`Error::Panicked`].
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            Error::Panicked { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// Why [`Pool::try_run`](crate::Pool::try_run) refused a task. The task comes back untouched.
///
/// # Examples
///
/// ```
/// let pool = offload::Pool::builder().threads(1).build().expect("threads start");
/// pool.close();
/// let err = pool.try_run(|| 1).unwrap_err();
/// assert!(err.is_closed());
/// let task = err.into_task();
/// assert_eq!(task(), 1);
/// ```
#[derive(PartialEq, Eq)]
#[non_exhaustive]
pub enum TryRunError<T> {
    /// The queue holds `queue_capacity` tasks (or its cost bound) already.
    Full(T),
    /// The pool is shut down or shutting down.
    Closed(T),
    /// The task has a deadline it would miss behind the work queued ahead of it (see
    /// [`Run::deadline`](crate::Run::deadline)); retry after `retry_after`.
    Overloaded {
        /// The refused task.
        task: T,
        /// The pool's predicted drain time.
        retry_after: Duration,
    },
}

impl<T> TryRunError<T> {
    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TryRunError::Full(_))
    }

    /// Whether the pool was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, TryRunError::Closed(_))
    }

    /// Whether the task would have missed its deadline.
    pub fn is_overloaded(&self) -> bool {
        matches!(self, TryRunError::Overloaded { .. })
    }

    /// For [`TryRunError::Overloaded`], when to retry.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TryRunError::Overloaded { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Gives the refused task back.
    pub fn into_task(self) -> T {
        match self {
            TryRunError::Full(t)
            | TryRunError::Closed(t)
            | TryRunError::Overloaded { task: t, .. } => t,
        }
    }
}

impl<T> fmt::Debug for TryRunError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRunError::Full(_) => f.write_str("Full(..)"),
            TryRunError::Closed(_) => f.write_str("Closed(..)"),
            TryRunError::Overloaded { retry_after, .. } => f
                .debug_struct("Overloaded")
                .field("retry_after", retry_after)
                .finish_non_exhaustive(),
        }
    }
}

impl<T> fmt::Display for TryRunError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRunError::Full(_) => f.write_str("queue full"),
            TryRunError::Closed(_) => f.write_str("pool closed"),
            TryRunError::Overloaded { retry_after, .. } => write!(
                f,
                "overloaded: the task would miss its deadline; retry after {retry_after:?}"
            ),
        }
    }
}

impl<T> std::error::Error for TryRunError<T> {}

/// Why [`Builder::build`](crate::Builder::build) could not start the pool.
#[derive(Debug, thiserror::Error)]
#[error("failed to start the pool's threads")]
pub struct BuildError {
    #[from]
    source: rayon::ThreadPoolBuildError,
}
