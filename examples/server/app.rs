//! The service behind `examples/server`: router, handlers, error mapping, metrics and the
//! request log. Kept apart from `main` so tests and the showdown drive it without a socket.
#![allow(dead_code, unreachable_pub)]

use std::fmt::Write as _;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use offload::{Pool, Task};
use offload_tasks::report::{Period, Report, ReportError, ReportTask};
use offload_tasks::thumbnail::{ErrorKind, Fit, Format, Thumbnail, ThumbnailError};
use serde::Deserialize;

/// Where the CPU work runs: the comparison the showdown makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// On the offload pool (`try_run`, 503 when the queue is full).
    Offload,
    /// On the reactor thread, inside the handler (what offload replaces).
    Inline,
    /// On tokio's blocking pool (`spawn_blocking`, unbounded).
    Blocking,
}

/// Settings of one service instance.
#[derive(Clone, Debug)]
pub struct Config {
    pub mode: Mode,
    pub threads: Option<usize>,
    pub queue: Option<usize>,
    pub max_body: usize,
    pub slow_request: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Offload,
            threads: None,
            queue: None,
            max_body: 32 * 1024 * 1024,
            slow_request: Duration::from_secs(2),
        }
    }
}

/// Shared by every handler. `pool` is a threaded pool in offload mode and an inline pool
/// otherwise, so metrics look the same in every mode.
#[derive(Clone, Debug)]
pub struct AppState {
    pub pool: Pool,
    pub config: Arc<Config>,
}

impl AppState {
    /// Builds the pool for `config.mode`.
    pub fn new(config: Config) -> Result<AppState, offload::BuildError> {
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
        })
    }
}

/// The router; `state` carries the pool and settings.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.max_body;
    Router::new()
        .route("/thumbnail", post(thumbnail))
        .route("/report", post(report_json))
        .route("/report.pdf", post(report_pdf))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), request_log))
        .with_state(state)
}

/// What a client sees when a request fails: a status and a short reason, no internals.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    reason: String,
}

impl AppError {
    fn new(status: StatusCode, reason: impl Into<String>) -> AppError {
        AppError {
            status,
            reason: reason.into(),
        }
    }

    fn bad_request(reason: impl Into<String>) -> AppError {
        AppError::new(StatusCode::BAD_REQUEST, reason)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.reason)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<offload::Error> for AppError {
    fn from(e: offload::Error) -> AppError {
        if e.is_panic() {
            tracing::error!(error = %e, "task panicked");
            AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        } else if e.is_timeout() {
            AppError::new(StatusCode::SERVICE_UNAVAILABLE, "timed out")
        } else {
            AppError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
        }
    }
}

impl From<ThumbnailError> for AppError {
    fn from(e: ThumbnailError) -> AppError {
        let status = match e.kind() {
            ErrorKind::InvalidParameter => StatusCode::BAD_REQUEST,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedFormat => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Undecodable => StatusCode::UNPROCESSABLE_ENTITY,
            _ => {
                tracing::error!(error = %e, "thumbnail failed");
                return AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
        };
        AppError::new(status, e.to_string())
    }
}

impl From<ReportError> for AppError {
    fn from(e: ReportError) -> AppError {
        let status = if e.is_limit() {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        AppError::new(status, e.to_string())
    }
}

/// Runs `task` the way the configured mode says.
pub async fn execute<T: Task>(state: &AppState, task: T) -> Result<T::Output, AppError> {
    match state.config.mode {
        // `try_run` never waits: a full queue is a 503 the client can retry, not a backlog.
        Mode::Offload => match state.pool.try_run(task) {
            Ok(handle) => Ok(handle.await?),
            Err(_) => Err(AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy, retry later",
            )),
        },
        Mode::Inline => Ok(state.pool.run(task).await?),
        Mode::Blocking => {
            let pool = state.pool.clone();
            tokio::task::spawn_blocking(move || {
                futures::executor::block_on(pool.run(task).into_future())
            })
            .await
            .map_err(|_| AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?
            .map_err(AppError::from)
        }
    }
}

#[derive(Debug, Deserialize)]
struct ThumbnailQuery {
    w: Option<String>,
    h: Option<String>,
    fit: Option<String>,
    format: Option<String>,
    q: Option<String>,
}

fn parse<T: std::str::FromStr>(value: Option<&str>, name: &str, default: T) -> Result<T, AppError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| AppError::bad_request(format!("invalid `{name}`"))),
    }
}

impl ThumbnailQuery {
    fn into_task(self, bytes: Bytes) -> Result<Thumbnail, AppError> {
        let w = parse(self.w.as_deref(), "w", 256u32)?;
        let h = parse(self.h.as_deref(), "h", 256u32)?;
        let q = parse(self.q.as_deref(), "q", 80u8)?;
        let fit = match self.fit.as_deref().unwrap_or("contain") {
            "contain" | "inside" | "fit" => Fit::Inside,
            "cover" => Fit::Cover,
            "exact" | "fill" => Fit::Exact,
            _ => {
                return Err(AppError::bad_request(
                    "invalid `fit`: contain, cover or exact",
                ));
            }
        };
        let format = match self.format.as_deref().unwrap_or("jpeg") {
            "jpeg" | "jpg" => Format::Jpeg,
            "png" => Format::Png,
            "webp" => Format::WebP,
            _ => return Err(AppError::bad_request("invalid `format`: jpeg, png or webp")),
        };
        Ok(Thumbnail::fit(Vec::from(bytes), w, h)
            .fit_mode(fit)
            .format(format)
            .quality(q))
    }
}

async fn thumbnail(
    State(state): State<AppState>,
    Query(query): Query<ThumbnailQuery>,
    body: Bytes,
) -> Result<Response, AppError> {
    let task = query.into_task(body)?;
    let thumb = execute(&state, task).await??;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(thumb.format.mime_type()),
    );
    for (name, value) in [("x-width", thumb.width), ("x-height", thumb.height)] {
        headers.insert(name, HeaderValue::from(value));
    }
    Ok((headers, thumb.bytes).into_response())
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    period: Option<String>,
    top: Option<String>,
}

fn report_task(
    query: ReportQuery,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<ReportTask, AppError> {
    let period = match query.period.as_deref().unwrap_or("month") {
        "day" => Period::Day,
        "week" => Period::Week,
        "month" => Period::Month,
        _ => {
            return Err(AppError::bad_request(
                "invalid `period`: day, week or month",
            ));
        }
    };
    let top = parse(query.top.as_deref(), "top", 10usize)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let bytes = Vec::from(body);
    let task = if is_json {
        ReportTask::from_json(bytes)
    } else {
        ReportTask::from_csv(bytes)
    };
    Ok(task.by(period).top(top))
}

async fn compute_report(
    state: &AppState,
    query: ReportQuery,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Report, AppError> {
    let task = report_task(query, headers, body)?;
    Ok(execute(state, task).await??)
}

async fn report_json(
    State(state): State<AppState>,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Report>, AppError> {
    Ok(Json(compute_report(&state, query, &headers, body).await?))
}

async fn report_pdf(
    State(state): State<AppState>,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let report = compute_report(&state, query, &headers, body).await?;
    let task = offload_tasks::pdf::PdfReportTask::new("Transactions report", report);
    let pdf = execute(&state, task)
        .await?
        .map_err(|e| AppError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf.bytes).into_response())
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// The pool's metrics and the reactor lag in the Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Response {
    let body = prometheus_text(&state.pool.metrics(), state.config.mode);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Renders a metrics snapshot in the Prometheus text exposition format (version 0.0.4).
pub fn prometheus_text(m: &offload::Metrics, mode: Mode) -> String {
    let mut out = String::new();
    let mode = match mode {
        Mode::Offload => "offload",
        Mode::Inline => "inline",
        Mode::Blocking => "blocking",
    };
    let counters = [
        ("submitted", m.submitted, "Tasks accepted by the pool."),
        (
            "completed",
            m.completed,
            "Tasks whose value reached the caller.",
        ),
        ("panicked", m.panicked, "Tasks that panicked."),
        ("cancelled", m.cancelled, "Tasks whose caller left first."),
        (
            "timed_out",
            m.timed_out,
            "Tasks whose timeout passed first.",
        ),
        (
            "rejected",
            m.rejected,
            "Tasks refused: queue full or pool closed.",
        ),
    ];
    for (name, value, help) in counters {
        let _ = writeln!(out, "# HELP offload_tasks_{name}_total {help}");
        let _ = writeln!(out, "# TYPE offload_tasks_{name}_total counter");
        let _ = writeln!(out, "offload_tasks_{name}_total{{mode=\"{mode}\"}} {value}");
    }
    let gauges = [
        ("queue_depth", m.queued, "Tasks waiting in the queue."),
        ("queue_capacity", m.queue_capacity, "Bound on queued tasks."),
        ("running", m.running, "Tasks running now."),
        ("threads", m.threads, "Worker threads."),
    ];
    for (name, value, help) in gauges {
        let _ = writeln!(out, "# HELP offload_{name} {help}");
        let _ = writeln!(out, "# TYPE offload_{name} gauge");
        let _ = writeln!(out, "offload_{name}{{mode=\"{mode}\"}} {value}");
    }
    let summary = |out: &mut String, metric: &str, labels: &str, l: &offload::Latency| {
        for (q, v) in [
            ("0.5", l.p50_ns),
            ("0.9", l.p90_ns),
            ("0.99", l.p99_ns),
            ("1", l.max_ns),
        ] {
            let _ = writeln!(
                out,
                "{metric}{{{labels},quantile=\"{q}\"}} {}",
                v as f64 / 1e9
            );
        }
        let _ = writeln!(out, "{metric}_count{{{labels}}} {}", l.count);
    };
    for (metric, help) in [
        ("offload_task_wait_seconds", "Queue wait per task name."),
        ("offload_task_run_seconds", "Run time per task name."),
    ] {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} summary");
        for (name, t) in &m.tasks {
            let labels = format!("mode=\"{mode}\",task=\"{}\"", escape_label(name));
            let l = if metric.contains("wait") {
                &t.wait
            } else {
                &t.run
            };
            summary(&mut out, metric, &labels, l);
        }
    }
    if let Some(lag) = &m.reactor_lag {
        let metric = "offload_reactor_lag_seconds";
        let _ = writeln!(
            out,
            "# HELP {metric} How late the async runtime runs a timer."
        );
        let _ = writeln!(out, "# TYPE {metric} summary");
        summary(&mut out, metric, &format!("mode=\"{mode}\""), lag);
    }
    out
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One JSON line per request (through `tracing`), and a warning for slow ones.
async fn request_log(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    // Milliseconds with microsecond precision.
    let duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    if elapsed > state.config.slow_request {
        tracing::warn!(%method, %path, status, duration_ms, "slow request");
    } else {
        tracing::info!(%method, %path, status, duration_ms, "request");
    }
    response
}

/// A request body from raw bytes, for tests.
pub fn body(bytes: impl Into<Bytes>) -> Body {
    Body::from(bytes.into())
}
