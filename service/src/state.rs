//! `AppState`, what every handler shares (the pool, the settings, the metrics handle), and
//! `execute`, the one place where the mode decides where a task runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;
use offload::{Pool, Portable, RunOptions, Runner};

use crate::config::{Config, Mode};
use crate::error::AppError;
use crate::guard::Deadline;
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
    /// Set by `serve` when its shutdown signal resolves.
    shutting_down: Arc<AtomicBool>,
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
            shutting_down: Arc::default(),
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

    /// Whether [`serve`](crate::serve) has received its shutdown signal: requests that
    /// arrive from then on are answered `503 shutting down`.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Runs `task` where the configured mode says, by `deadline`, and returns its output.
    ///
    /// Tasks go through [`offload::Runner`] (today the pool; a remote backend implements the
    /// same trait), never waiting for room: a client can retry, while a backlog only grows.
    ///
    /// # Errors
    ///
    /// A 503 with the pool's predicted drain time when the pool refuses the task (its queue
    /// is full, or the task cannot finish by `deadline`); a 504 when `deadline` passes while
    /// the task waits or runs; a `503 shutting down` when the pool is closed; in every mode a
    /// panicking task is a 500 whose body says only `internal error`.
    ///
    /// # Cancellation
    ///
    /// Dropping the future (the client went away, or the request's deadline passed) cancels
    /// a task still queued on the offload pool; a running task finishes and its output is
    /// dropped. In inline mode the task runs inside `poll`, so there is nothing to cancel; in
    /// blocking mode it runs to the end on tokio's blocking pool.
    pub async fn execute<T: Portable>(
        &self,
        task: T,
        deadline: Deadline,
    ) -> Result<T::Output, AppError> {
        let mut options = RunOptions::new().wait_for_room(false);
        if let Deadline(Some(at)) = deadline {
            options = options.deadline(at);
        }
        match self.config.mode {
            Mode::Offload | Mode::Inline => Ok(self.pool.run_with(task, options).await?),
            Mode::Blocking => {
                let pool = self.pool.clone();
                let runtime = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || runtime.block_on(pool.run_with(task, options)))
                    .await
                    .map_err(|e| AppError::internal("blocking task failed", &e))?
                    .map_err(AppError::from)
            }
        }
    }
}
