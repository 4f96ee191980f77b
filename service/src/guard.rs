//! What a request may take before a handler sees it: its time (the request's deadline, the
//! body-read timeout) and its bytes (`Content-Length` checked before reading, the body read
//! under a limit); and `Deadline`, the extractor that hands the deadline to the task.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::config::Config;
use crate::error::AppError;
use crate::state::AppState;

/// The header with which a client shortens its request's deadline, in milliseconds.
pub const REQUEST_TIMEOUT_HEADER: &str = "x-request-timeout-ms";

/// When the current request must be answered: `--request-timeout-ms` after its head arrived,
/// or sooner if the client's `x-request-timeout-ms` says so. `None` when the service runs
/// without deadlines ([`Config::deadlines`] is `false`).
///
/// An extractor: a handler takes it as an argument and passes it to
/// [`AppState::execute`], which gives it to the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Option<Instant>);

impl Deadline {
    /// The deadline of a request whose head arrived at `arrived` with `headers`.
    ///
    /// # Errors
    ///
    /// A 400 if `x-request-timeout-ms` is not a whole number of milliseconds.
    fn of(config: &Config, arrived: Instant, headers: &HeaderMap) -> Result<Deadline, AppError> {
        if !config.deadlines {
            return Ok(Deadline(None));
        }
        let asked = match headers.get(REQUEST_TIMEOUT_HEADER) {
            None => None,
            Some(value) => {
                let millis = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| {
                        AppError::bad_request(format!(
                            "invalid {REQUEST_TIMEOUT_HEADER}: not a number of milliseconds"
                        ))
                    })?;
                Some(Duration::from_millis(millis))
            }
        };
        // The header can only shorten the server's own limit.
        let timeout = asked.map_or(config.request_timeout, |t| t.min(config.request_timeout));
        Ok(Deadline(Some(arrived + timeout)))
    }
}

impl FromRequestParts<AppState> for Deadline {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Deadline, Infallible> {
        // `guard` has put it there; a router built without it counts from now.
        Ok(match parts.extensions.get::<Deadline>() {
            Some(deadline) => *deadline,
            None => Deadline::of(state.config(), Instant::now(), &HeaderMap::new())
                .unwrap_or(Deadline(None)),
        })
    }
}

/// Middleware around every route: refuses what cannot be served before reading it, reads
/// the body under its limits, and answers 504 once the request's deadline passes.
///
/// In order: a server shutting down answers `503 shutting down`; a bad
/// `x-request-timeout-ms` is a 400; a declared `Content-Length` over
/// [`Config::max_body`] is a 413 at once, before a byte of the body is read (and without the
/// `100 Continue` a client may wait for). Then the body is read, at most `max_body` bytes
/// (413 beyond), within [`Config::body_timeout`] (408) and the deadline (504); these
/// answers close the connection. Then the handler runs until the deadline (504 after it).
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let arrived = Instant::now();
    let config = state.config();
    if state.is_shutting_down() {
        return AppError::shutting_down().into_response();
    }
    let deadline = match Deadline::of(config, arrived, request.headers()) {
        Ok(deadline) => deadline,
        Err(e) => return e.into_response(),
    };
    let request = match read_body(config, arrived, deadline, request).await {
        Ok(request) => request,
        Err(e) => return e.into_response(),
    };
    match deadline.0 {
        Some(at) => tokio::time::timeout_at(at.into(), next.run(request))
            .await
            .unwrap_or_else(|_| AppError::deadline_passed().into_response()),
        None => next.run(request).await,
    }
}

/// The request with its body read into memory and its [`Deadline`] in its extensions.
async fn read_body(
    config: &Config,
    arrived: Instant,
    deadline: Deadline,
    request: Request,
) -> Result<Request, AppError> {
    let too_large = || AppError::closing_with(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > config.max_body as u64) {
        return Err(too_large());
    }
    let (mut parts, body) = request.into_parts();
    let body_deadline = arrived + config.body_timeout;
    let read_until = deadline.0.map_or(body_deadline, |d| d.min(body_deadline));
    let read = Limited::new(body, config.max_body).collect();
    let bytes = match tokio::time::timeout_at(read_until.into(), read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => return Err(too_large()),
        Ok(Err(_)) => {
            return Err(AppError::closing_with(
                StatusCode::BAD_REQUEST,
                "body unreadable",
            ));
        }
        Err(_) if read_until < body_deadline => {
            return Err(AppError::closing_with(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline passed",
            ));
        }
        Err(_) => {
            return Err(AppError::closing_with(
                StatusCode::REQUEST_TIMEOUT,
                "body too slow",
            ));
        }
    };
    parts.extensions.insert(deadline);
    Ok(Request::from_parts(parts, Body::from(bytes)))
}
