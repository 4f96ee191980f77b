//! `AppError`: what a client sees when a request fails. A status and a short reason; the
//! details of server-side failures go to the log, never into the response.

use std::borrow::Cow;
use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use offload_tasks::pdf::PdfError;
use offload_tasks::report::ReportError;
use offload_tasks::thumbnail::{ErrorKind, ThumbnailError};

/// A failed request: a status and a short, client-safe reason.
///
/// The `From` conversions decide the status: a bad parameter is a 400, an input over a limit a
/// 413, an image in no supported format a 415, an input that does not parse a 422, a task the
/// pool refused (full, or predicted to miss its deadline) a 503 with a `Retry-After` from the
/// pool's prediction, a closing server a 503 that says `shutting down` and closes the
/// connection, a deadline that passed a 504, and anything that is not the client's fault a
/// 500 whose body is only `internal error` (the cause is logged at error level).
///
/// # Retry-After
///
/// A 503 carries `Retry-After` in whole seconds (rounded up, at least 1) and
/// `x-retry-after-ms` in milliseconds. Both hold the predicted wait `p` plus a uniform random
/// jitter in `[0, p + 2 s)`, drawn per response, so that clients refused together do not
/// come back together (even when `p` is short, the whole seconds spread over 1 and 2).
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    reason: Cow<'static, str>,
    /// The predicted wait before a retry may succeed, before jitter (503s only).
    retry_after: Option<Duration>,
    /// Whether the connection closes after this answer.
    close: bool,
}

/// The wait a refusal predicts when it has nothing better: the pool's default before any task
/// has run.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// The jitter's spread beyond the prediction: two seconds, so that `Retry-After`, in whole
/// seconds, varies even when the pool predicts a few milliseconds.
const JITTER_FLOOR: Duration = Duration::from_secs(2);

impl AppError {
    fn new(status: StatusCode, reason: impl Into<Cow<'static, str>>) -> AppError {
        AppError {
            status,
            reason: reason.into(),
            retry_after: None,
            close: false,
        }
    }

    pub(crate) fn bad_request(reason: impl Into<Cow<'static, str>>) -> AppError {
        AppError::new(StatusCode::BAD_REQUEST, reason)
    }

    /// A 503: retry after `retry_after` (plus jitter).
    pub(crate) fn unavailable(reason: &'static str, retry_after: Duration) -> AppError {
        AppError {
            retry_after: Some(retry_after),
            ..AppError::new(StatusCode::SERVICE_UNAVAILABLE, reason)
        }
    }

    /// The 503 of a server that is shutting down: retry elsewhere, on a new connection.
    pub(crate) fn shutting_down() -> AppError {
        AppError::unavailable("shutting down", DEFAULT_RETRY).closing()
    }

    /// The 504 of a request whose deadline passed.
    pub(crate) fn deadline_passed() -> AppError {
        AppError::new(StatusCode::GATEWAY_TIMEOUT, "deadline passed")
    }

    /// A status with the connection closed after it: for answers given before the request
    /// body was read (hyper would otherwise have to drain it to reuse the connection).
    pub(crate) fn closing_with(status: StatusCode, reason: &'static str) -> AppError {
        AppError::new(status, reason).closing()
    }

    /// This answer with the connection closed after it.
    pub(crate) fn closing(mut self) -> AppError {
        self.close = true;
        self
    }

    /// Logs `cause` on the server and answers a bare 500.
    pub(crate) fn internal(what: &'static str, cause: &dyn fmt::Display) -> AppError {
        tracing::error!(error = %cause, "{what}");
        AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    /// The status the response will carry.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// For a 503, the predicted wait before a retry may succeed, before jitter.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// `predicted` plus a uniform jitter in `[0, predicted + 2 s)`.
fn jittered(predicted: Duration) -> Duration {
    let spread = predicted.saturating_add(JITTER_FLOOR);
    predicted.saturating_add(spread.mul_f64(fastrand::f64()))
}

/// Whole seconds, rounded up, at least 1: the `Retry-After` header's delay-seconds form.
fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.reason)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.reason)).into_response();
        let headers = response.headers_mut();
        if let Some(predicted) = self.retry_after {
            let wait = jittered(predicted);
            let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(whole_seconds(wait)));
            headers.insert("x-retry-after-ms", HeaderValue::from(millis));
        }
        if self.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<QueryRejection> for AppError {
    /// A 400 naming the parameter and what is wrong with it, e.g.
    /// `invalid query: w: invalid digit found in string`.
    fn from(rejection: QueryRejection) -> AppError {
        // The source is serde's message with the field's path; the rejection's own text only
        // prefixes axum's generic "Failed to deserialize query string".
        let detail = match rejection.source() {
            Some(source) => source.to_string(),
            None => rejection.body_text(),
        };
        AppError::bad_request(format!("invalid query: {detail}"))
    }
}

impl From<offload::Error> for AppError {
    /// A panic, or a task a remote backend gave up on (dead-lettered after its attempts
    /// failed), is a 500; a deadline that passed while the task waited or ran a 504; a
    /// refusal a 503 with the backend's predicted drain time; a closed pool the
    /// `shutting down` 503; a remote backend that could not be reached a 503.
    fn from(e: offload::Error) -> AppError {
        if e.is_panic() {
            AppError::internal("task panicked", &e)
        } else if let offload::Error::Failed { .. } = e {
            AppError::internal("task failed on the fleet", &e)
        } else if e.is_timeout() {
            AppError::deadline_passed()
        } else if let Some(retry_after) = e.retry_after() {
            AppError::unavailable("overloaded, retry later", retry_after)
        } else if e.is_closed() {
            AppError::shutting_down()
        } else {
            tracing::warn!(error = %e, "backend unavailable");
            AppError::unavailable("backend unavailable, retry later", DEFAULT_RETRY)
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
            _ => return AppError::internal("thumbnail failed", &e),
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

impl From<PdfError> for AppError {
    fn from(e: PdfError) -> AppError {
        let status = match e {
            PdfError::TooManyRows { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            PdfError::Unencodable { .. } | PdfError::RaggedRow { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            _ => return AppError::internal("pdf failed", &e),
        };
        AppError::new(status, e.to_string())
    }
}
