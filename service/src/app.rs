//! The router, and how it is served: graceful shutdown, then the pool's accepted work.

use std::future::{Future, IntoFuture};
use std::io;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::state::AppState;
use crate::{prometheus, report, thumbnail, trace};

/// The service's router; `state` carries the pool, the settings and the metrics handle.
///
/// Every request is logged (see [`log_subscriber`](crate::log_subscriber)), counted and timed
/// under its route in `/metrics`, and refused with a 413 when its body is over
/// [`Config::max_body`](crate::Config::max_body).
pub fn app(state: AppState) -> Router {
    let config = state.config();
    let (max_body, slow) = (config.max_body, config.slow_request);
    Router::new()
        .merge(thumbnail::routes())
        .merge(report::routes())
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus::render))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(prometheus::record))
        .layer(trace::layer(slow))
        .with_state(state)
}

/// Answered on the reactor thread with no work: its latency shows how free the reactor is.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Serves [`app`]`(state)` on `listener` until `shutdown` resolves, then stops accepting,
/// finishes the requests in flight, lets the pool finish the tasks it accepted and joins its
/// threads. Runs the metrics exporter's upkeep meanwhile.
///
/// # Errors
///
/// An I/O error of the listener.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let pool = state.pool().clone();
    let metrics = state.metrics().clone();
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(shutdown);
    tokio::select! {
        served = server.into_future() => served?,
        never = prometheus::upkeep(metrics) => match never {},
    }
    pool.shutdown().await;
    Ok(())
}
