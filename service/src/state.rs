//! `AppState`, what every handler shares (the backend, the cache, the settings, the metrics
//! handle), and `execute`, the one place where a task goes to its backend, through the
//! cache when there is one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, header};
use metrics_exporter_prometheus::PrometheusHandle;
use offload::{Pool, Portable, Priority, RunOptions, Runner};
use offload_cache::{Cache, CacheStats, Cacheable, Secret};
use offload_redis::Fleet;

use crate::backend::Backend;
use crate::cache::{CacheTag, Served};
use crate::config::{Config, Mode};
use crate::error::AppError;
use crate::guard::Deadline;
use crate::prometheus;

/// How long a typed input error (a decompression bomb, a corrupt image) is kept, so the same
/// bad upload is refused from the cache: short, since it only has to absorb a retry storm.
const NEGATIVE_TTL: Duration = Duration::from_secs(10);

/// Shared by every handler; a cheap `Clone`.
///
/// Tasks run on a backend: the offload pool (a threaded one in offload mode, an inline
/// one in inline mode), tokio's blocking pool, or a Redis fleet; with a cache
/// ([`Config::cache_bytes`]) the cacheable routes go through it first, whatever the backend.
#[derive(Clone, Debug)]
pub struct AppState {
    backend: Backend,
    cache: Option<Cache<Backend>>,
    /// The backend's pool; an idle inline pool in fleet mode, so the pool's series and the
    /// reactor-lag monitor look the same in every mode.
    pool: Pool,
    config: Arc<Config>,
    metrics: PrometheusHandle,
    /// Set by `serve` when its shutdown signal resolves.
    shutting_down: Arc<AtomicBool>,
}

/// Why [`AppState::new`] or [`AppState::connect`] failed.
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
    /// The fleet's Redis did not answer, refused the credentials, or its URL is invalid.
    #[error("failed to connect to the fleet's redis")]
    Fleet(#[from] offload_redis::ConnectError),
    /// The cache could not be built (a shared tier without a secret, a bad Redis URL).
    #[error("failed to build the result cache")]
    Cache(#[from] offload_cache::BuildError),
    /// The settings contradict each other (the message says which), or a fleet was asked
    /// of [`AppState::new`], which cannot connect.
    #[error("invalid settings: {0}")]
    Invalid(&'static str),
}

impl AppState {
    /// Builds the local backend for `config.mode` (and the cache, when
    /// [`Config::cache_bytes`] is not 0) and attaches the process's Prometheus recorder
    /// (installed as the global `metrics` recorder by the first state built). For a fleet
    /// ([`Config::redis`]) use [`connect`](AppState::connect).
    ///
    /// # Errors
    ///
    /// [`StartError::Pool`] if the pool's threads do not start,
    /// [`StartError::RecorderTaken`] if a `metrics` recorder other than this crate's is
    /// already installed, [`StartError::Cache`] if the cache cannot be built, and
    /// [`StartError::Invalid`] for contradicting settings or a [`Config::redis`].
    ///
    /// # Panics
    ///
    /// With a shared cache tier ([`Config::cache_redis`]), outside a Tokio runtime.
    pub fn new(config: Config) -> Result<AppState, StartError> {
        if config.redis.is_some() {
            return Err(StartError::Invalid(
                "a fleet connects asynchronously: build the state with AppState::connect",
            ));
        }
        AppState::build(config, None)
    }

    /// [`new`](AppState::new) for every [`Config`], a fleet included: with
    /// [`Config::redis`], connects to the fleet's Redis and sends tasks there instead of
    /// to a local pool.
    ///
    /// ```no_run
    /// # async fn doc() -> Result<(), offload_service::StartError> {
    /// use offload_service::{AppState, Config};
    ///
    /// let state =
    ///     AppState::connect(Config::default().fleet("redis://127.0.0.1:6379/", "offload")).await?;
    /// assert!(state.fleet().is_some());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`new`](AppState::new), and [`StartError::Fleet`] when the fleet's Redis does
    /// not answer; [`StartError::Invalid`] for a fleet outside [`Mode::Offload`].
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime when a fleet or a shared cache tier is configured.
    pub async fn connect(config: Config) -> Result<AppState, StartError> {
        let fleet = match &config.redis {
            None => None,
            Some(_) if config.mode != Mode::Offload => {
                return Err(StartError::Invalid(
                    "a fleet (--redis) needs --mode offload",
                ));
            }
            Some(url) => Some(Fleet::connect(url, &config.redis_queue).await?),
        };
        AppState::build(config, fleet)
    }

    fn build(config: Config, fleet: Option<Fleet>) -> Result<AppState, StartError> {
        // The recorder first: the pool registers its counters with whatever recorder is
        // installed when it is built, and one built before would count into nothing.
        let metrics = prometheus::handle().ok_or(StartError::RecorderTaken)?;
        let (backend, pool) = match (fleet, config.mode) {
            (Some(fleet), _) => (Backend::Fleet(fleet), Pool::inline()),
            (None, Mode::Offload) => {
                let mut builder = Pool::builder();
                if let Some(threads) = config.threads {
                    builder = builder.threads(threads);
                }
                if let Some(queue) = config.queue {
                    builder = builder.queue_capacity(queue);
                }
                if let Some(bytes) = config.queue_bytes {
                    builder = builder.queue_cost_limit(bytes);
                }
                let pool = builder.build()?;
                (Backend::Pool(pool.clone()), pool)
            }
            (None, Mode::Inline) => {
                let pool = Pool::inline();
                (Backend::Pool(pool.clone()), pool)
            }
            (None, Mode::Blocking) => {
                let pool = Pool::inline();
                (Backend::Blocking(pool.clone()), pool)
            }
        };
        let cache = build_cache(&config, &backend)?;
        Ok(AppState {
            backend,
            cache,
            pool,
            config: Arc::new(config),
            metrics,
            shutting_down: Arc::default(),
        })
    }

    /// The pool the handlers' tasks run on (an inline pool in inline and blocking modes; an
    /// idle inline pool in fleet mode, where tasks run on [`fleet`](AppState::fleet)).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The Redis fleet the tasks run on, when [`Config::redis`] is set.
    pub fn fleet(&self) -> Option<&Fleet> {
        match &self.backend {
            Backend::Fleet(fleet) => Some(fleet),
            Backend::Pool(_) | Backend::Blocking(_) => None,
        }
    }

    /// The result cache's counters and figures; `None` when the cache is off.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(Cache::stats)
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
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

    /// Whether the backend would take a task named `name` costing `cost` (its input's
    /// length) by `deadline` now, reserving nothing: what a handler asks before it reads a
    /// request's body (see [`Upload::admit`](crate::guard::Upload::admit)).
    ///
    /// Only the local pool is asked. With a cache, the answer is always yes: a request the
    /// cache can answer costs no pool time, and which it is cannot be known before the body
    /// is read (the key hashes it); the pool still refuses a miss when it is submitted.
    ///
    /// # Errors
    ///
    /// A 503 with the pool's predicted drain time when its queue is full (in tasks or bytes)
    /// or, with deadlines, when the work queued ahead would make the task miss `deadline`;
    /// `503 shutting down` when the pool is closed.
    pub(crate) fn forecast(
        &self,
        name: &'static str,
        cost: u64,
        deadline: Deadline,
    ) -> Result<(), AppError> {
        if self.cache.is_some() {
            return Ok(());
        }
        match &self.backend {
            Backend::Pool(pool) => Ok(pool.forecast(name, cost, Priority::Normal, deadline.0)?),
            Backend::Blocking(_) | Backend::Fleet(_) => Ok(()),
        }
    }

    /// Runs `task` on the backend (the pool the configured mode says, or the fleet), by
    /// `deadline`, and returns its output. Uncached; the cacheable routes go through
    /// the cache with `execute_cached`.
    ///
    /// Tasks go through [`offload::Runner`], never waiting for room: a client can retry,
    /// while a backlog only grows.
    ///
    /// # Errors
    ///
    /// A 503 with the backend's predicted drain time when it refuses the task (the pool's
    /// queue is full, or the task cannot finish by `deadline`; the fleet's in-flight limit
    /// or backlog cap is reached); a 503 when the fleet's Redis cannot be reached; a 504
    /// when `deadline` passes while the task waits or runs; a `503 shutting down` when the
    /// backend is closed; a panicking task (or one the fleet dead-lettered) is a 500 whose
    /// body says only `internal error`.
    ///
    /// # Cancellation
    ///
    /// Dropping the future (the client went away, or the request's deadline passed) cancels
    /// a task still queued on the offload pool or the fleet; a running task finishes (a
    /// fleet job sees `offload::is_cancelled()` at its next heartbeat) and its output is
    /// dropped. In inline mode the task runs inside `poll`, so there is nothing to cancel;
    /// in blocking mode it runs to the end on tokio's blocking pool.
    pub async fn execute<T: Portable>(
        &self,
        task: T,
        deadline: Deadline,
    ) -> Result<T::Output, AppError> {
        Ok(self.backend.run_with(task, options(deadline)).await?)
    }

    /// Runs `task` through the cache when there is one (else as [`execute`]), and says how
    /// it was served for the response's headers; with the cache on, a `request` whose
    /// `If-None-Match` holds the task's key is answered 304 without running anything
    /// (equal keys mean equal results).
    ///
    /// # Errors
    ///
    /// As [`execute`]; the backend's errors are never cached.
    ///
    /// # Cancellation
    ///
    /// With a cache, the computation belongs to the cache: dropping this future leaves it
    /// running for other requests of the same key, and it is cancelled only when every one
    /// of them has gone.
    ///
    /// [`execute`]: AppState::execute
    pub(crate) async fn execute_cached<T: Cacheable>(
        &self,
        task: T,
        deadline: Deadline,
        request: &HeaderMap,
    ) -> Result<Served<T::Output>, AppError> {
        // The key is hashed here only for a conditional request: `run_with` hashes it again.
        let key = match &self.cache {
            Some(cache) if request.contains_key(header::IF_NONE_MATCH) => cache.key(&task),
            _ => None,
        };
        if let Some(key) = key
            && let Some(response) = crate::cache::not_modified(key, self.config.cache_ttl, request)
        {
            return Ok(Served::NotModified(response));
        }
        let (value, tag) = self.cached(task, deadline).await?;
        Ok(Served::Fresh(value, tag))
    }

    /// [`execute_cached`](AppState::execute_cached) without the conditional request: for
    /// a step whose result the client never sees, such as the aggregation behind a PDF.
    ///
    /// # Errors
    ///
    /// As [`execute`](AppState::execute).
    pub(crate) async fn cached<T: Cacheable>(
        &self,
        task: T,
        deadline: Deadline,
    ) -> Result<(T::Output, CacheTag), AppError> {
        let Some(cache) = &self.cache else {
            return Ok((self.execute(task, deadline).await?, CacheTag::none()));
        };
        let cached = cache.run_with(task, options(deadline)).await?;
        let tag = CacheTag::new(cached.outcome, cached.key, self.config.cache_ttl);
        Ok((cached.value, tag))
    }
}

/// The run options of a request's task: its deadline, and no waiting for room.
fn options(deadline: Deadline) -> RunOptions {
    let options = RunOptions::new().wait_for_room(false);
    match deadline {
        Deadline(Some(at)) => options.deadline(at),
        Deadline(None) => options,
    }
}

/// The cache `config` asks for in front of `backend`, if any.
fn build_cache(config: &Config, backend: &Backend) -> Result<Option<Cache<Backend>>, StartError> {
    if config.cache_bytes == 0 {
        if config.cache_redis.is_some() {
            return Err(StartError::Invalid(
                "a shared cache tier (--cache-redis) needs a cache (--cache-mb > 0)",
            ));
        }
        return Ok(None);
    }
    if config.cache_ttl.is_zero() {
        return Err(StartError::Invalid("the cache's TTL must be positive"));
    }
    let mut builder = Cache::builder()
        .capacity_bytes(config.cache_bytes)
        .ttl(config.cache_ttl)
        .negative_ttl(NEGATIVE_TTL.min(config.cache_ttl));
    if let Some(secret) = &config.cache_secret {
        builder = builder.secret(Secret::from_passphrase(secret));
    }
    if let Some(url) = &config.cache_redis {
        builder = builder.redis(url.as_str());
    }
    Ok(Some(builder.build(backend.clone())?))
}
