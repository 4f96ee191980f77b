//! The request log: one line per answered request through tower-http's `TraceLayer` (a
//! warning past the slow-request threshold), and the JSON-lines subscriber the binary
//! installs.

use std::time::Duration;

use axum::http::{Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::{Span, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The layer `app` puts around every route. Only `on_response` logs: no "started" line, no
/// per-chunk lines, and no second line for a 5xx (the handler has logged its cause).
pub(crate) type RequestTrace =
    TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, (), LogResponse, (), (), ()>;

pub(crate) fn layer(slow: Duration) -> RequestTrace {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(LogResponse { slow })
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// A `request` span with the method and path; everything logged while handling the
/// request, the response line included, carries them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        tracing::info_span!("request", method = %request.method(), path = request.uri().path())
    }
}

/// The response line: status and latency at info level, or a `slow request` warning.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogResponse {
    slow: Duration,
}

impl<B> OnResponse<B> for LogResponse {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        let status = response.status().as_u16();
        // Milliseconds with microsecond precision.
        let latency_ms = (latency.as_secs_f64() * 1e6).round() / 1e3;
        if latency > self.slow {
            tracing::warn!(status, latency_ms, "slow request");
        } else {
            tracing::info!(status, latency_ms, "request");
        }
    }
}

/// The service's log format: one JSON object per line, the event's fields at the top level
/// and the enclosing request span's (`method`, `path`) under `span`.
///
/// The binary installs it with `tracing::subscriber::set_global_default`, writing to stdout
/// and filtered by `RUST_LOG` (default `info`); tests install it with a writer of their own.
pub fn log_subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}
