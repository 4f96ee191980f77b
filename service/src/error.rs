//! `AppError`: what a client sees when a request fails. A status and a short reason; the
//! details of server-side failures go to the log, never into the response.

use std::borrow::Cow;
use std::error::Error as _;
use std::fmt;

use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use offload_tasks::pdf::PdfError;
use offload_tasks::report::ReportError;
use offload_tasks::thumbnail::{ErrorKind, ThumbnailError};

/// A failed request: a status and a short, client-safe reason.
///
/// The `From` conversions decide the status: a bad parameter is a 400, an input over a limit a
/// 413, an image in no supported format a 415, an input that does not parse a 422, a full
/// queue or a closing pool a 503 with `Retry-After: 1`, and anything that is not the client's
/// fault a 500 whose body is only `internal error` (the cause is logged at error level).
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    reason: Cow<'static, str>,
}

impl AppError {
    fn new(status: StatusCode, reason: impl Into<Cow<'static, str>>) -> AppError {
        AppError {
            status,
            reason: reason.into(),
        }
    }

    pub(crate) fn bad_request(reason: impl Into<Cow<'static, str>>) -> AppError {
        AppError::new(StatusCode::BAD_REQUEST, reason)
    }

    pub(crate) fn unavailable(reason: &'static str) -> AppError {
        AppError::new(StatusCode::SERVICE_UNAVAILABLE, reason)
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
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.reason)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.reason)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 here is transient (a full queue, a restart): tell clients when to retry.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
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
    fn from(e: offload::Error) -> AppError {
        if e.is_panic() {
            AppError::internal("task panicked", &e)
        } else if e.is_timeout() {
            AppError::unavailable("timed out")
        } else {
            AppError::unavailable("shutting down")
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
