//! `AppState`, what every handler shares (the pool, the settings, the metrics handle), and
//! `execute`, the one place where the mode decides where a task runs.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use offload::{Pool, Task};

use crate::config::{Config, Mode};
use crate::error::AppError;
use crate::prometheus;

/// Shared by every handler; a cheap `Clone`.
///
/// The pool is a threaded pool in offload mode and an inline pool otherwise, so the pool's
/// metrics look the same in every mode.
#[derive(Clone, Debug)]
pub struct AppState {
    pool: Pool,
    config: Arc<Config>,
    metrics: PrometheusHandle,
}

/// Why [`AppState::new`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The pool's threads did not start.
    #[error("failed to start the offload pool")]
    Pool(#[from] offload::BuildError),
    /// Another `metrics` recorder is installed in this process, so the series could not be
    /// collected for `/metrics`.
    #[error("another `metrics` recorder is already installed in this process")]
    RecorderTaken,
}

impl AppState {
    /// Builds the pool for `config.mode` and attaches the process's Prometheus recorder
    /// (installed as the global `metrics` recorder by the first state built).
    ///
    /// # Errors
    ///
    /// [`StartError::Pool`] if the pool's threads do not start, and
    /// [`StartError::RecorderTaken`] if a `metrics` recorder other than this crate's is already
    /// installed.
    pub fn new(config: Config) -> Result<AppState, StartError> {
        // The recorder first: the pool registers its counters with whatever recorder is
        // installed when it is built, and one built before would count into nothing.
        let metrics = prometheus::handle().ok_or(StartError::RecorderTaken)?;
        let pool = match config.mode {
            Mode::Offload => {
                let mut builder = Pool::builder();
                if let Some(threads) = config.threads {
                    builder = builder.threads(threads);
                }
                if let Some(queue) = config.queue {
                    builder = builder.queue_capacity(queue);
                }
                builder.build()?
            }
            Mode::Inline | Mode::Blocking => Pool::inline(),
        };
        Ok(AppState {
            pool,
            config: Arc::new(config),
            metrics,
        })
    }

    /// The pool the handlers' tasks run on (an inline pool in inline and blocking modes).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The settings this state was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn metrics(&self) -> &PrometheusHandle {
        &self.metrics
    }

    /// Runs `task` where the configured mode says, and returns its output.
    ///
    /// # Errors
    ///
    /// In offload mode a full queue is a 503 at once (`try_run`: a client can retry, a backlog
    /// only grows), as are a closed pool and a timeout; in every mode a panicking task is a
    /// 500 whose body says only `internal error`.
    ///
    /// # Cancellation
    ///
    /// Dropping the future (the client went away) cancels a task still queued on the offload
    /// pool; a running task finishes and its output is dropped. In inline mode the task runs
    /// inside `poll`, so there is nothing to cancel; in blocking mode it runs to the end on
    /// tokio's blocking pool.
    pub async fn execute<T: Task>(&self, task: T) -> Result<T::Output, AppError> {
        match self.config.mode {
            Mode::Offload => match self.pool.try_run(task) {
                Ok(handle) => Ok(handle.await?),
                Err(e) if e.is_full() => Err(AppError::unavailable("busy, retry later")),
                Err(_) => Err(AppError::unavailable("shutting down")),
            },
            Mode::Inline => Ok(self.pool.run(task).await?),
            Mode::Blocking => {
                let pool = self.pool.clone();
                let runtime = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    runtime.block_on(async move { pool.run(task).await })
                })
                .await
                .map_err(|e| AppError::internal("blocking task failed", &e))?
                .map_err(AppError::from)
            }
        }
    }
}
