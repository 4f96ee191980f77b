//! `Cache`: the front. One call goes: key -> local tier -> flight (join or start) -> in the
//! flight's task: local tier again, shared tier, runner -> store -> publish.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use offload::{Error, RunOptions, Runner};

use crate::codec;
use crate::flight::{Completion, Flights, Landed};
use crate::key::{Cacheable, Keep, Key, Secret, key_of};
use crate::local::{Entry, Local};
#[cfg(feature = "redis")]
use crate::shared::{Shared, SharedConfig};
use crate::stats::{CacheStats, Counters, Outcome};

/// A task's output as the cache returns it, with how it was served and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cached<O> {
    /// The task's output.
    pub value: O,
    /// How this call was served: what a service puts in `x-cache`.
    pub outcome: Outcome,
    /// The result's key (an `ETag`: equal keys mean equal results); `None` for
    /// [`Outcome::Bypass`].
    pub key: Option<Key>,
}

/// Why a [`Builder`] could not build a cache.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A shared tier needs a [`Secret`] that every replica shares; a random one would give
    /// each replica keys of its own.
    #[error("a shared tier needs a secret shared by every replica (Builder::secret)")]
    SharedWithoutSecret,
    /// The Redis URL could not be parsed.
    #[error("invalid redis url: {0}")]
    RedisUrl(String),
}

/// Configures a [`Cache`]; from [`Cache::builder`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use offload::Pool;
/// use offload_cache::Cache;
///
/// let pool = Pool::builder().threads(2).build()?;
/// let cache = Cache::builder()
///     .capacity_bytes(256 << 20)
///     .ttl(Duration::from_secs(600))
///     .negative_ttl(Duration::from_secs(10))
///     .build(pool)?;
/// assert_eq!(cache.stats().capacity_bytes, 256 << 20);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct Builder {
    capacity: u64,
    ttl: Duration,
    negative_ttl: Option<Duration>,
    secret: Option<Secret>,
    #[cfg(feature = "redis")]
    shared: Option<SharedConfig>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Builder");
        d.field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("secret", &self.secret);
        #[cfg(feature = "redis")]
        d.field("shared", &self.shared);
        d.finish()
    }
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            capacity: 64 << 20,
            ttl: Duration::from_secs(600),
            negative_ttl: None,
            secret: None,
            #[cfg(feature = "redis")]
            shared: None,
        }
    }
}

impl Builder {
    /// The local tier's bound: the sum of the cached results' serialised lengths. Least
    /// valuable entries are evicted beyond it (moka's TinyLFU); a single result larger than
    /// the whole bound is not kept. Default: 64 MiB.
    ///
    /// # Panics
    ///
    /// If `bytes` is 0 (to turn caching off, do not build a cache).
    #[track_caller]
    pub fn capacity_bytes(mut self, bytes: u64) -> Builder {
        assert!(bytes > 0, "capacity_bytes must be positive");
        self.capacity = bytes;
        self
    }

    /// How long a result is kept, in the local tier and in the shared one. Default: 10 min.
    ///
    /// # Panics
    ///
    /// If `ttl` is zero.
    #[track_caller]
    pub fn ttl(mut self, ttl: Duration) -> Builder {
        assert!(!ttl.is_zero(), "ttl must be positive");
        self.ttl = ttl;
        self
    }

    /// How long a [`Keep::Refusal`] (a typed input error, such as a decompression bomb) is
    /// kept, so the same bad input is refused without running again. Default: none, such
    /// errors are not kept; a zero duration means the same.
    pub fn negative_ttl(mut self, ttl: Duration) -> Builder {
        self.negative_ttl = (!ttl.is_zero()).then_some(ttl);
        self
    }

    /// The secret of the keyed hash (see [`Secret`]). Default: a random one per cache, which
    /// is right for a cache without a shared tier; replicas sharing Redis must all set the
    /// same.
    pub fn secret(mut self, secret: Secret) -> Builder {
        self.secret = Some(secret);
        self
    }

    /// Adds the shared tier: results are read from and written to the Redis at `url`
    /// (`redis://host:port/db`) with the cache's TTLs. Requires a [`secret`](Builder::secret).
    ///
    /// A Redis that is down, slow or lost never fails a call: each Redis call is bounded by
    /// [`redis_timeout`](Builder::redis_timeout), and after a failure Redis is left alone
    /// for [`redis_pause`](Builder::redis_pause) while the local tier serves.
    #[cfg(feature = "redis")]
    pub fn redis(mut self, url: impl Into<String>) -> Builder {
        self.shared = Some(SharedConfig {
            url: url.into(),
            prefix: "offload:cache:".to_owned(),
            timeout: Duration::from_millis(100),
            pause: Duration::from_secs(1),
        });
        self
    }

    /// The prefix of the shared tier's Redis keys, followed by the key's hex. Default:
    /// `"offload:cache:"`. Only with [`redis`](Builder::redis) (set after it).
    #[cfg(feature = "redis")]
    pub fn redis_prefix(mut self, prefix: impl Into<String>) -> Builder {
        if let Some(shared) = &mut self.shared {
            shared.prefix = prefix.into();
        }
        self
    }

    /// The longest a Redis call (connecting included) may take before the cache carries on
    /// without it. Default: 100 ms. Only with [`redis`](Builder::redis) (set after it).
    #[cfg(feature = "redis")]
    pub fn redis_timeout(mut self, timeout: Duration) -> Builder {
        if let Some(shared) = &mut self.shared {
            shared.timeout = timeout;
        }
        self
    }

    /// How long Redis is left alone after a failed call. Default: 1 s. Only with
    /// [`redis`](Builder::redis) (set after it).
    #[cfg(feature = "redis")]
    pub fn redis_pause(mut self, pause: Duration) -> Builder {
        if let Some(shared) = &mut self.shared {
            shared.pause = pause;
        }
        self
    }

    /// Builds the cache in front of `runner` (a [`Pool`](offload::Pool), a Redis fleet, any
    /// [`Runner`]). Redis is not contacted here: a Redis that is down at start is like one
    /// that goes down later.
    ///
    /// # Errors
    ///
    /// [`BuildError::SharedWithoutSecret`], [`BuildError::RedisUrl`].
    ///
    /// # Panics
    ///
    /// With a shared tier, outside a Tokio runtime.
    pub fn build<R: Runner + 'static>(self, runner: R) -> Result<Cache<R>, BuildError> {
        #[cfg(feature = "redis")]
        let shared = match &self.shared {
            None => None,
            Some(_) if self.secret.is_none() => return Err(BuildError::SharedWithoutSecret),
            Some(config) => {
                Some(Shared::new(config).map_err(|e| BuildError::RedisUrl(e.to_string()))?)
            }
        };
        Ok(Cache {
            inner: Arc::new(Inner {
                runner,
                local: Local::new(self.capacity),
                flights: Arc::default(),
                secret: self.secret.unwrap_or_else(Secret::random),
                ttl: self.ttl,
                negative_ttl: self.negative_ttl,
                counters: Counters::default(),
                #[cfg(feature = "redis")]
                shared,
            }),
        })
    }
}

/// A result cache in front of a [`Runner`]: identical [`Cacheable`] tasks run once.
///
/// - **Keys**: a keyed BLAKE3 hash of the task's name and content ([`Cacheable`], [`Secret`]).
/// - **Local tier**: results held in this process up to a byte bound, each for the TTL.
/// - **Single-flight**: calls for a key that is being computed wait for that computation
///   instead of starting their own ([`Outcome::Coalesced`]).
/// - **Shared tier** (feature `redis`, [`Builder::redis`]): on a local miss the computation
///   first reads Redis, and writes its result there, so replicas share their work.
/// - **Errors are not cached**: an [`Error`] of the runner reaches every waiting caller and
///   the next call runs again; the task's own errors are kept only as [`Cacheable::keep`]
///   says.
///
/// Clones share the same cache.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use offload::Pool;
/// use offload_cache::{Cache, Outcome};
/// # use offload::Task;
/// # use offload_cache::{Cacheable, Keep, KeyWriter};
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct Square(u64);
/// # impl Task for Square {
/// #     type Output = u64;
/// #     fn run(self) -> u64 { self.0 * self.0 }
/// #     fn name(&self) -> &'static str { "square" }
/// # }
/// # impl Cacheable for Square {
/// #     fn write_key(&self, key: &mut KeyWriter) { key.u64(self.0); }
/// #     fn keep(_: &u64) -> Keep { Keep::Value }
/// # }
///
/// let cache = Cache::builder().build(Pool::builder().threads(1).build()?)?;
/// let first = cache.run(Square(12)).await?;
/// assert_eq!((first.value, first.outcome), (144, Outcome::Miss));
/// let again = cache.run(Square(12)).await?;
/// assert_eq!((again.value, again.outcome), (144, Outcome::Hit));
/// assert_eq!(first.key, again.key);
/// # Ok(())
/// # }
/// ```
pub struct Cache<R> {
    inner: Arc<Inner<R>>,
}

impl<R> Clone for Cache<R> {
    fn clone(&self) -> Cache<R> {
        Cache {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<R> fmt::Debug for Cache<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("stats", &self.inner.stats())
            .finish_non_exhaustive()
    }
}

struct Inner<R> {
    runner: R,
    local: Local,
    flights: Arc<Flights>,
    secret: Secret,
    ttl: Duration,
    negative_ttl: Option<Duration>,
    counters: Counters,
    #[cfg(feature = "redis")]
    shared: Option<Shared>,
}

/// Where a flight found its result.
enum Source {
    Local,
    #[cfg(feature = "redis")]
    Shared,
    Computed,
}

impl Cache<()> {
    /// A [`Builder`] with the defaults: 64 MiB, a TTL of 10 minutes, no negative TTL, a
    /// random secret, no shared tier.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

impl<R: Runner + 'static> Cache<R> {
    /// The runner behind the cache, for tasks that are not to be cached.
    pub fn runner(&self) -> &R {
        &self.inner.runner
    }

    /// The key of `task` under this cache's secret, without running anything: equal keys
    /// mean equal results, so a request whose `If-None-Match` holds this key can be answered
    /// `304 Not Modified` at once. `None` when a field of the key could not be encoded.
    pub fn key<T: Cacheable>(&self, task: &T) -> Option<Key> {
        key_of(&self.inner.secret, task)
    }

    /// [`run_with`](Cache::run_with) with the default [`RunOptions`].
    ///
    /// # Errors
    ///
    /// As [`run_with`](Cache::run_with).
    pub fn run<T: Cacheable>(
        &self,
        task: T,
    ) -> impl Future<Output = Result<Cached<T::Output>, Error>> + Send + 'static + use<R, T> {
        self.run_with(task, RunOptions::new())
    }

    /// The output of `task`: from a cache tier if there, else from the computation of the
    /// same key already in flight, else from a new computation on the runner.
    ///
    /// The key is hashed on the calling thread (BLAKE3: a 1 MB input takes well under a
    /// millisecond). `options` apply to a new computation; a call that joins one in flight
    /// waits for it as it is.
    ///
    /// # Errors
    ///
    /// The runner's [`Error`] for the computation this call started or joined (a panic, a
    /// timeout, an overload); such errors are never cached. If the computation ends without
    /// a result in a way the runner did not report, [`Error::Panicked`].
    ///
    /// # Cancellation
    ///
    /// The computation belongs to the cache, not to the call that started it: dropping this
    /// future leaves it running for the other callers of the same key, and they still get
    /// the result. When every caller of a key has dropped its future, the computation is
    /// cancelled: a task still queued never runs, a running one sees
    /// [`offload::is_cancelled`] turn true.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (the computation is a spawned Tokio task).
    pub fn run_with<T: Cacheable>(
        &self,
        task: T,
        options: RunOptions,
    ) -> impl Future<Output = Result<Cached<T::Output>, Error>> + Send + 'static + use<R, T> {
        let inner = Arc::clone(&self.inner);
        async move {
            let Some(key) = key_of(&inner.secret, &task) else {
                return inner.bypass(task, options).await;
            };
            if let Some(value) = inner.local.get(&key).and_then(|e| downcast::<T>(&e.value)) {
                inner.counters.call(Outcome::Hit);
                return Ok(Cached {
                    value,
                    outcome: Outcome::Hit,
                    key: Some(key),
                });
            }
            let spawner = Arc::clone(&inner);
            let (mut waiter, started) = inner.flights.join_or_start(key, move |completion| {
                tokio::spawn(Inner::fly(spawner, key, task, options, completion)).abort_handle()
            });
            let landed = waiter.outcome().await;
            let outcome = match (started, &landed) {
                (false, _) => Outcome::Coalesced,
                (true, Some(Ok(landed))) if !landed.computed => Outcome::Hit,
                (true, _) => Outcome::Miss,
            };
            // Failed calls count too: a miss whose computation failed is still a miss.
            inner.counters.call(outcome);
            let landed = match landed {
                Some(Ok(landed)) => landed,
                Some(Err(error)) => return Err(error),
                None => return Err(internal("the cache's computation ended without a result")),
            };
            let Some(value) = downcast::<T>(&landed.value) else {
                return Err(internal("two task types share a name and a key"));
            };
            Ok(Cached {
                value,
                outcome,
                key: Some(key),
            })
        }
    }
}

impl<R> Cache<R> {
    /// A snapshot of the counters and of the tiers' figures. With the `metrics` feature it
    /// also publishes the local tier's gauges (bytes, entries) and eviction count, so that a
    /// scrape that calls it first sees expiries and evictions since the last store.
    pub fn stats(&self) -> CacheStats {
        self.inner.stats()
    }
}

impl<R> Inner<R> {
    fn stats(&self) -> CacheStats {
        self.local.sync();
        let mut stats = self.counters.snapshot();
        stats.bytes = self.local.bytes();
        stats.entries = self.local.entries();
        stats.evictions = self.local.evictions();
        stats.capacity_bytes = self.local.capacity();
        #[cfg(feature = "metrics")]
        crate::stats::emit_local(stats.bytes, stats.entries, stats.evictions);
        stats.in_flight = self.flights.alive();
        stats.waiting = self.flights.waiting();
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            stats.shared_errors = shared.errors();
        }
        stats
    }
}

impl<R: Runner + 'static> Inner<R> {
    /// Runs `task` uncached, for a task whose key could not be computed.
    async fn bypass<T: Cacheable>(
        &self,
        task: T,
        options: RunOptions,
    ) -> Result<Cached<T::Output>, Error> {
        self.counters.call(Outcome::Bypass);
        self.counters.execution();
        let value = self.runner.run_with(task, options).await?;
        Ok(Cached {
            value,
            outcome: Outcome::Bypass,
            key: None,
        })
    }

    /// The flight's task: finds or computes the result of `key`, stores it, publishes it.
    async fn fly<T: Cacheable>(
        self: Arc<Self>,
        key: Key,
        task: T,
        options: RunOptions,
        completion: Completion,
    ) {
        let (value, source, encoded) = match self.find_or_compute(key, task, options).await {
            Ok(found) => found,
            Err(error) => return completion.finish(Err(error)),
        };
        completion.finish(Ok(Landed {
            value,
            computed: matches!(source, Source::Computed),
        }));
        #[cfg(feature = "redis")]
        if let (Some(shared), Some((bytes, ttl))) = (&self.shared, encoded) {
            shared.set(&key, &bytes, ttl).await;
        }
        #[cfg(not(feature = "redis"))]
        let _ = encoded;
    }

    /// The result of `key` from the local tier (it may have landed since the caller looked),
    /// the shared tier, or the runner; a computed result is stored in the local tier and
    /// returned with its encoding and TTL for the shared one.
    async fn find_or_compute<T: Cacheable>(
        &self,
        key: Key,
        task: T,
        options: RunOptions,
    ) -> Result<(AnyValue, Source, Option<(Vec<u8>, Duration)>), Error> {
        if let Some(entry) = self.local.get(&key) {
            return Ok((entry.value, Source::Local, None));
        }
        #[cfg(feature = "redis")]
        if let Some(value) = self.read_shared::<T>(key).await {
            return Ok((value, Source::Shared, None));
        }
        self.counters.execution();
        let output = self.runner.run_with(task, options).await?;
        let ttl = match T::keep(&output) {
            Keep::Value => Some(self.ttl),
            Keep::Refusal => self.negative_ttl,
            Keep::Nothing => None,
        };
        let encoded = ttl.and_then(|ttl| Some((codec::encode(&output)?, ttl)));
        let value: AnyValue = Arc::new(output);
        if let Some((bytes, ttl)) = &encoded {
            self.store(key, Arc::clone(&value), bytes.len(), *ttl);
        }
        Ok((value, Source::Computed, encoded))
    }

    /// Reads `key` from the shared tier into the local one.
    #[cfg(feature = "redis")]
    async fn read_shared<T: Cacheable>(&self, key: Key) -> Option<AnyValue> {
        let (bytes, left) = self.shared.as_ref()?.get(&key).await?;
        let Some(output) = codec::decode::<T::Output>(&bytes) else {
            tracing::warn!(%key, "shared cache: undecodable entry; computing instead");
            return None;
        };
        self.counters.shared_hit();
        let value: AnyValue = Arc::new(output);
        // Never longer locally than it has left in Redis, nor than this cache's TTL.
        let ttl = left.min(self.ttl);
        if !ttl.is_zero() {
            self.store(key, Arc::clone(&value), bytes.len(), ttl);
        }
        Some(value)
    }

    fn store(&self, key: Key, value: AnyValue, len: usize, ttl: Duration) {
        let weight = u32::try_from(len).unwrap_or(u32::MAX);
        self.local.insert(key, Entry { value, weight, ttl });
        #[cfg(feature = "metrics")]
        crate::stats::emit_local(
            self.local.bytes(),
            self.local.entries(),
            self.local.evictions(),
        );
    }
}

type AnyValue = Arc<dyn Any + Send + Sync>;

/// An error for what should not happen, reported rather than panicked on.
fn internal(message: &str) -> Error {
    Error::Panicked {
        task: "offload-cache",
        message: message.to_owned(),
    }
}

fn downcast<T: Cacheable>(value: &AnyValue) -> Option<T::Output> {
    value.downcast_ref::<T::Output>().cloned()
}
