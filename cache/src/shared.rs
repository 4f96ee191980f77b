//! The shared tier: cache-aside through Redis, so one replica's result serves all. Every
//! call is bounded by a timeout, and a Redis that fails is left alone for a while: the cache
//! then works from its local tier, and requests never fail or hang because of Redis.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::key::Key;

/// How the shared tier is reached; see [`Builder::redis`](crate::Builder::redis).
#[derive(Debug, Clone)]
pub(crate) struct SharedConfig {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) timeout: Duration,
    pub(crate) pause: Duration,
}

pub(crate) struct Shared {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    pause: Duration,
    /// Until when Redis is skipped after a failure.
    paused_until: Mutex<Option<Instant>>,
    errors: AtomicU64,
}

impl Shared {
    /// Prepares the connection without connecting: a Redis that is down when the service
    /// starts is no reason not to start.
    ///
    /// # Errors
    ///
    /// A malformed URL.
    pub(crate) fn new(config: &SharedConfig) -> redis::RedisResult<Shared> {
        let client = redis::Client::open(config.url.as_str())?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            // Reconnection is retried by the next call after the pause, not in a loop here.
            .set_number_of_retries(0);
        Ok(Shared {
            conn: ConnectionManager::new_lazy_with_config(client, manager)?,
            prefix: config.prefix.clone(),
            timeout: config.timeout,
            pause: config.pause,
            paused_until: Mutex::new(None),
            errors: AtomicU64::new(0),
        })
    }

    fn redis_key(&self, key: &Key) -> String {
        format!("{}{key}", self.prefix)
    }

    fn paused(&self) -> bool {
        let mut until = self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    fn failed(&self, what: &str, err: &dyn std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + self.pause);
        tracing::warn!(
            error = %err,
            pause = ?self.pause,
            "shared cache: redis {what} failed; working from the local tier for a while"
        );
    }

    /// Runs `cmd` within the timeout, unless Redis is paused; `None` on any failure.
    async fn call<V: redis::FromRedisValue>(&self, what: &str, cmd: redis::Pipeline) -> Option<V> {
        if self.paused() {
            return None;
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, cmd.query_async::<V>(&mut conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.failed(what, &e);
                None
            }
            Err(_) => {
                self.failed(what, &format_args!("no answer within {:?}", self.timeout));
                None
            }
        }
    }

    /// The stored bytes of `key` and how long they have left to live.
    pub(crate) async fn get(&self, key: &Key) -> Option<(Vec<u8>, Duration)> {
        let k = self.redis_key(key);
        let mut pipe = redis::pipe();
        pipe.get(&k).pttl(&k);
        let (bytes, pttl): (Option<Vec<u8>>, i64) = self.call("GET", pipe).await?;
        // PTTL is -1 for a key without expiry (not written by this crate) and -2 for a key
        // that expired between the two commands.
        let left = u64::try_from(pttl).ok().map(Duration::from_millis)?;
        Some((bytes?, left))
    }

    /// Stores `bytes` under `key` for `ttl` (`SET key bytes PX ttl`).
    pub(crate) async fn set(&self, key: &Key, bytes: &[u8], ttl: Duration) {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut pipe = redis::pipe();
        pipe.set_options(
            self.redis_key(key),
            bytes,
            redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(millis)),
        )
        .ignore();
        let _: Option<()> = self.call("SET", pipe).await;
    }

    /// Calls that failed or timed out.
    pub(crate) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}
