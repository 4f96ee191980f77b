//! The router, and how it is served: hyper's HTTP/1 connections with a timer (header-read and
//! idle timeouts), a connection limit, graceful shutdown with a deadline, then the pool's
//! accepted work.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::MIN_READ_BUFFER;
use crate::state::AppState;
use crate::{guard, prometheus, report, thumbnail, trace};

/// The service's router; `state` carries the pool, the settings and the metrics handle.
///
/// Every request is logged (see [`log_subscriber`](crate::log_subscriber)), counted and timed
/// under its route in `/metrics`, and held to its limits before a handler sees it: its
/// deadline ([`Config::request_timeout`](crate::Config::request_timeout), shortened by an
/// `x-request-timeout-ms` header), its body's size ([`Config::max_body`](crate::Config::max_body),
/// a 413, checked against `Content-Length` before reading) and its body's pace
/// ([`Config::body_timeout`](crate::Config::body_timeout), a 408).
pub fn app(state: AppState) -> Router {
    let config = state.config();
    let (max_body, slow) = (config.max_body, config.slow_request);
    Router::new()
        .merge(thumbnail::routes())
        .merge(report::routes())
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus::render))
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(prometheus::record))
        .layer(trace::layer(slow))
        .with_state(state)
}

/// Answered on the reactor thread with no work: its latency shows how free the reactor is.
async fn healthz() -> &'static str {
    "ok\n"
}

/// The pause after an accept error such as running out of file descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// How long a refused connection may take to read its 503 before it is dropped.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// Connections being refused at once, at most; beyond it they are closed without an answer.
const REFUSING_AT_ONCE: usize = 64;
/// The answer to a connection over [`Config::max_connections`](crate::Config::max_connections).
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\n\
content-length: 21\r\n\r\ntoo many connections\n";

/// Serves [`app`]`(state)` on `listener` until `shutdown` resolves, then stops accepting,
/// finishes the requests in flight, and lets the backend finish the tasks it accepted (the
/// pool joins its threads; a fleet waits for its jobs' results). Runs the metrics exporter's
/// upkeep meanwhile.
///
/// Each connection is HTTP/1.1 through hyper with a timer, so a connection that does not send
/// a complete request head within [`Config::header_timeout`](crate::Config::header_timeout)
/// (from when it opens or from its previous response: it is also the idle timeout) is closed.
/// Beyond [`Config::max_connections`](crate::Config::max_connections) open connections, a new
/// one is answered `503 too many connections` and closed.
///
/// # Shutdown
///
/// Once `shutdown` resolves, requests still arriving are answered `503 shutting down` with
/// `connection: close`, idle connections close, and busy ones close after their response.
/// If connections and pool tasks are not done within
/// [`Config::shutdown_timeout`](crate::Config::shutdown_timeout), the remaining connections
/// are dropped, the pool is left closed (its running tasks finish on their own) and `serve`
/// returns anyway, logging a warning.
///
/// # Errors
///
/// None today: accept errors (a reset connection, running out of file descriptors) are
/// logged and retried, since they pass. The `io::Result` leaves room for setup errors.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let config = state.config().clone();
    let backend = state.backend().clone();
    let router = app(state.clone());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_buf_size(config.read_buffer.max(MIN_READ_BUFFER));
    let open = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let refusing = Arc::new(Semaphore::new(REFUSING_AT_ONCE));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let upkeep = prometheus::upkeep(state.metrics().clone());
    tokio::pin!(shutdown, upkeep);
    loop {
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            never = &mut upkeep => match never {},
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        // Reap finished connections so the set stays as large as what is open.
        while connections.try_join_next().is_some() {}
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            metrics::counter!(prometheus::CONNECTIONS_REFUSED).increment(1);
            if let Ok(slot) = Arc::clone(&refusing).try_acquire_owned() {
                connections.spawn(async move {
                    refuse(stream).await;
                    drop(slot);
                });
            }
            continue;
        };
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let _open = prometheus::OpenConnection::new(permit);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stopping.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
    }
    drop(listener);
    state.begin_shutdown();
    let _ = stop.send(true);
    let deadline = Instant::now() + config.shutdown_timeout;
    let drained = async {
        while connections.join_next().await.is_some() {}
        backend.shutdown().await;
    };
    let in_time = tokio::select! {
        drained = tokio::time::timeout_at(deadline, drained) => drained.is_ok(),
        never = &mut upkeep => match never {},
    };
    if !in_time {
        tracing::warn!(
            connections = connections.len(),
            pending = backend.pending(),
            "shutdown deadline passed: dropping the remaining connections and tasks"
        );
        backend.close();
        connections.abort_all();
    }
    Ok(())
}

/// Answers a connection over the limit with a 503 and closes it, reading what the client sent
/// meanwhile so that the close is not a reset that would lose the answer.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        stream.write_all(TOO_MANY_CONNECTIONS).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
}

/// Waits out an accept error: a connection reset before it was accepted is skipped; anything
/// else (no file descriptor left, no memory) is logged and retried after a pause, since an
/// accept loop that returned would take the whole server down and one that spun would burn a
/// core.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    if !matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    ) {
        tracing::warn!(error = %e, "accept failed; retrying shortly");
        tokio::time::sleep(ACCEPT_RETRY).await;
    }
}
