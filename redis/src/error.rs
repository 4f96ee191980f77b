//! Errors of the operations that are not a task's run: connecting, and `try_run`'s refusal.

use std::fmt;

/// Why [`Fleet::connect`](crate::Fleet::connect) or a [`Worker`](crate::Worker) could not
/// start or keep going.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL does not parse, or names a scheme this build cannot speak (`rediss://`
    /// needs the `tls` feature).
    #[error("invalid redis url: {0}")]
    Url(#[source] redis::RedisError),
    /// Redis did not answer, refused the credentials, or refused a command.
    #[error("redis: {0}")]
    Redis(#[source] redis::RedisError),
}

/// Why [`Fleet::try_run`](crate::Fleet::try_run) refused a task. The task comes back
/// untouched.
pub enum TryRunError<T> {
    /// The caller's in-flight limit or the queue's backlog cap is reached.
    Full(T),
    /// The fleet handle was shut down.
    Closed(T),
    /// Redis could not be reached in time; the task was not queued.
    Unavailable(T),
    /// The task could not be encoded, or its payload exceeds the size limit.
    Invalid(T),
}

impl<T> TryRunError<T> {
    /// Whether a limit was reached: retry later (a server answers 503).
    pub fn is_full(&self) -> bool {
        matches!(self, TryRunError::Full(_))
    }

    /// Whether the fleet handle was shut down.
    pub fn is_closed(&self) -> bool {
        matches!(self, TryRunError::Closed(_))
    }

    /// Whether Redis was unreachable.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, TryRunError::Unavailable(_))
    }

    /// Gives the refused task back.
    pub fn into_task(self) -> T {
        match self {
            TryRunError::Full(t)
            | TryRunError::Closed(t)
            | TryRunError::Unavailable(t)
            | TryRunError::Invalid(t) => t,
        }
    }
}

impl<T> fmt::Debug for TryRunError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRunError::Full(_) => "Full(..)",
            TryRunError::Closed(_) => "Closed(..)",
            TryRunError::Unavailable(_) => "Unavailable(..)",
            TryRunError::Invalid(_) => "Invalid(..)",
        })
    }
}

impl<T> fmt::Display for TryRunError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRunError::Full(_) => "fleet full",
            TryRunError::Closed(_) => "fleet closed",
            TryRunError::Unavailable(_) => "redis unavailable",
            TryRunError::Invalid(_) => "task cannot be sent",
        })
    }
}

impl<T> std::error::Error for TryRunError<T> {}
