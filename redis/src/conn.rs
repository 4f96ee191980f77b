//! Connections: a reconnecting `ConnectionManager` for commands and scripts, and a second
//! one of its own for each blocking read.
//!
//! Two traps shape this file. A blocking read (`XREAD BLOCK`) on a multiplexed connection
//! stalls every command queued behind it, so blocking reads get their own connection. And
//! the connection's response timeout also cuts blocking reads: a read abandoned that way is
//! still served by the server, so the blocking connection's timeout is longer than any
//! `BLOCK` it sends.

use std::future::Future;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};

use crate::error::ConnectError;
use crate::keys::Keys;
use crate::scripts;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest `BLOCK` any read sends; blocking connections wait this much more.
pub(crate) const MAX_BLOCK: Duration = Duration::from_secs(1);

/// Both connections to `url` for the queue named `queue` (commands whose responses time out
/// after `response_timeout`, and blocking reads), with the queue's streams and group
/// created where missing.
pub(crate) async fn open(
    url: &str,
    queue: &str,
    response_timeout: Duration,
) -> Result<(Keys, ConnectionManager, ConnectionManager), ConnectError> {
    #[cfg(feature = "tls")]
    {
        // Whichever provider the process installed first wins; ours if none.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let client = Client::open(url).map_err(ConnectError::Url)?;
    let mut conn = manager(&client, response_timeout)
        .await
        .map_err(ConnectError::Redis)?;
    let keys = Keys::new(queue);
    scripts::ensure_groups(&mut conn, &keys)
        .await
        .map_err(ConnectError::Redis)?;
    let blocking = blocking_manager(&client)
        .await
        .map_err(ConnectError::Redis)?;
    Ok((keys, conn, blocking))
}

/// A reconnecting connection whose commands time out after `response_timeout`.
pub(crate) async fn manager(
    client: &Client,
    response_timeout: Duration,
) -> Result<ConnectionManager, RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout))
        // Reconnect quickly and give up soon: the next command starts a new attempt, and
        // callers bound their own waits.
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(20))
        .set_max_delay(Duration::from_millis(200));
    ConnectionManager::new_with_config(client.clone(), config).await
}

/// A connection for blocking reads only (its response timeout outlasts [`MAX_BLOCK`]).
pub(crate) async fn blocking_manager(client: &Client) -> Result<ConnectionManager, RedisError> {
    manager(client, MAX_BLOCK + Duration::from_secs(2)).await
}

/// Whether retrying the command on a new connection may help.
pub(crate) fn is_transient(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
}

/// Runs `op` until it succeeds, fails for good, or `budget` has passed (then the last
/// error), pausing briefly between tries.
pub(crate) async fn retry<T, F, Fut>(budget: Duration, mut op: F) -> Result<T, RedisError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RedisError>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        let left = budget.saturating_sub(started.elapsed());
        let attempt = tokio::time::timeout(left.max(Duration::from_millis(1)), op()).await;
        let error = match attempt {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if !is_transient(&e) => return Err(e),
            Ok(Err(e)) => e,
            Err(_) => RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "redis did not answer in time",
            )),
        };
        if started.elapsed() + pause >= budget {
            return Err(error);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}
