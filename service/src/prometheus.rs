//! The Prometheus registry behind `GET /metrics`, and the HTTP series the service records
//! itself: `http_requests_total{route,status}` and `http_request_duration_seconds{route}`.

// Implementation: one recorder per process, installed as the `metrics` global recorder by the
// first `AppState` built and shared by every later one through its handle.
//
// Why global: offload's own series (`offload_tasks_total`, `offload_queued`, the wait and run
// histograms, reactor lag) are emitted through the `metrics` facade from the pool's worker
// threads and from timer tasks. `metrics::with_local_recorder` only covers a closure on the
// current thread, so an app-local recorder (`build_recorder` kept in the state) would render
// the HTTP series but never the pool's. The price: several apps in one process (the
// showdown's three modes, the tests) share one registry, so a test that checks exact counts
// runs in a test binary of its own (`tests/server_metrics.rs`).

use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::Unit;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::OwnedSemaphorePermit;

use crate::state::AppState;

const REQUESTS: &str = "http_requests_total";
const DURATION: &str = "http_request_duration_seconds";
/// Connections answered `503 too many connections` and closed.
pub(crate) const CONNECTIONS_REFUSED: &str = "http_connections_refused_total";
/// Connections open now (the ones counted against the limit).
const CONNECTIONS_OPEN: &str = "http_connections_open";

/// Upper bounds, in seconds, of every histogram's buckets (the pool's wait and run times and
/// the HTTP durations): 100 µs to 30 s, so a /healthz answer and a large PDF both land in a
/// bucket that says something.
const BUCKETS: [f64; 16] = [
    0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
];

/// How often histogram samples are folded into their buckets between scrapes: without it
/// they pile up in memory until the next render.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's Prometheus handle; `None` if a different recorder was installed first.
pub(crate) fn handle() -> Option<PrometheusHandle> {
    static INSTALLED: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    INSTALLED.get_or_init(install).clone()
}

fn install() -> Option<PrometheusHandle> {
    let recorder = PrometheusBuilder::new()
        .set_buckets(&BUCKETS)
        .expect("the bucket list is not empty")
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    metrics::describe_counter!(
        REQUESTS,
        Unit::Count,
        "HTTP requests answered, by route and status."
    );
    metrics::describe_counter!(
        CONNECTIONS_REFUSED,
        Unit::Count,
        "Connections refused over the connection limit."
    );
    metrics::describe_gauge!(
        CONNECTIONS_OPEN,
        Unit::Count,
        "Connections open, counted against the connection limit."
    );
    metrics::describe_histogram!(
        DURATION,
        Unit::Seconds,
        "Time from receiving a request to its response's head, by route."
    );
    Some(handle)
}

/// One connection counted against the limit and in `http_connections_open`, until dropped.
#[derive(Debug)]
pub(crate) struct OpenConnection {
    _permit: OwnedSemaphorePermit,
}

impl OpenConnection {
    pub(crate) fn new(permit: OwnedSemaphorePermit) -> OpenConnection {
        metrics::gauge!(CONNECTIONS_OPEN).increment(1.0);
        OpenConnection { _permit: permit }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(CONNECTIONS_OPEN).decrement(1.0);
    }
}

/// Middleware: counts and times every answered request under its route pattern.
pub(crate) async fn record(request: Request, next: Next) -> Response {
    // The route pattern, not the path: labels must stay few whatever clients send.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(REQUESTS, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!(DURATION, "route" => route).record(started.elapsed());
    response
}

/// `GET /metrics`: every series of the process in the Prometheus text format.
pub(crate) async fn render(State(state): State<AppState>) -> Response {
    // Publishes the cache's bytes, entries and evictions as of now (expiries and evictions
    // since its last store included); its request counters are emitted as they happen.
    let _ = state.cache_stats();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(),
    )
        .into_response()
}

/// Runs the exporter's upkeep every few seconds, for as long as it is polled.
pub(crate) async fn upkeep(handle: PrometheusHandle) -> Infallible {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}
