//! What a request may take: its time (the request's deadline, the body-read timeout) and its
//! bytes (`Content-Length` checked before reading, the body read under a limit); `Deadline`,
//! the extractor that hands the deadline to the task; and `Upload`, the body a handler reads
//! only once the backend would take its task.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
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

/// Middleware around every route: refuses what cannot be served before reading anything, and
/// answers 504 once the request's deadline passes. The body is left unread for the handler's
/// [`Upload`], which asks the pool first.
///
/// In order: a server shutting down answers `503 shutting down`; a bad
/// `x-request-timeout-ms` is a 400; a declared `Content-Length` over [`Config::max_body`] is a
/// 413 at once, before a byte of the body is read (and without the `100 Continue` a client
/// may wait for). Then the handler runs until the deadline (504 after it).
pub(crate) async fn guard(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let arrived = Instant::now();
    let config = state.config();
    if state.is_shutting_down() {
        return AppError::shutting_down().into_response();
    }
    let deadline = match Deadline::of(config, arrived, request.headers()) {
        Ok(deadline) => deadline,
        Err(e) => return e.into_response(),
    };
    if declared_length(request.headers()).is_some_and(|n| n > config.max_body as u64) {
        return too_large().into_response();
    }
    request.extensions_mut().insert(deadline);
    request.extensions_mut().insert(Arrived(arrived));
    match deadline.0 {
        Some(at) => tokio::time::timeout_at(at.into(), next.run(request))
            .await
            .unwrap_or_else(|_| AppError::deadline_passed().into_response()),
        None => next.run(request).await,
    }
}

/// When the request's head arrived, for the body's timeout; put in the extensions by
/// [`guard`].
#[derive(Debug, Clone, Copy)]
struct Arrived(Instant);

/// The request's `Content-Length`, if it declares one that parses.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn too_large() -> AppError {
    AppError::closing_with(StatusCode::PAYLOAD_TOO_LARGE, "body too large")
}

/// How long a refused request's body may take to arrive while it is read and thrown away, so
/// that the connection can serve the client's next request; past it the connection closes.
const DRAIN_FOR: Duration = Duration::from_secs(1);

/// A request body not read yet: a handler first asks whether its task would be admitted
/// ([`admit`](Upload::admit)), and only then reads it.
///
/// An extractor, so it comes last among a handler's arguments.
#[derive(Debug)]
pub(crate) struct Upload {
    body: Body,
    /// `Content-Length`, when declared (a chunked body has none).
    declared: Option<u64>,
    /// Whether the client waits for `100 Continue` before sending the body.
    expects_continue: bool,
    arrived: Instant,
}

impl FromRequest<AppState> for Upload {
    type Rejection = Infallible;

    async fn from_request(request: Request, _: &AppState) -> Result<Upload, Infallible> {
        let (parts, body) = request.into_parts();
        let expects_continue = parts
            .headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        // `guard` has put it there; a router built without it counts from now.
        let arrived = parts
            .extensions
            .get::<Arrived>()
            .map_or_else(Instant::now, |a| a.0);
        Ok(Upload {
            body,
            declared: declared_length(&parts.headers),
            expects_continue,
            arrived,
        })
    }
}

impl Upload {
    /// The body, read only if the backend would take a task named `name` (its
    /// [`Task::name`](offload::Task::name)) costing the body's declared length by `deadline`:
    /// an overloaded server refuses without reading the body, so a refusal costs neither the
    /// upload's memory nor the CPU to receive it, and a client that sent
    /// `Expect: 100-continue` is never asked to send it (hyper sends `100 Continue` when the
    /// body is first read).
    ///
    /// The body is read into one buffer sized by `Content-Length`: at most one copy from the
    /// connection's buffers, whatever the number of chunks, and none for a body that is one
    /// buffer of its own.
    ///
    /// # Errors
    ///
    /// The forecast's refusal (a 503 with `Retry-After`, or `503 shutting down`); then, while
    /// reading: a 413 past [`Config::max_body`], a 408 past [`Config::body_timeout`], a 504 past
    /// the deadline, a 400 for a body that breaks off. The reading errors close the
    /// connection.
    ///
    /// # A refused body
    ///
    /// A client that sent `Expect: 100-continue` has not sent its body: the connection closes
    /// after the 503, since the server cannot tell whether the body will follow. Otherwise, a
    /// body declared at most [`Config::drain_refused`] bytes is read and thrown away in the
    /// background (for at most a second, each chunk dropped as it comes), so the
    /// client's next request can use the same connection; a larger or chunked one is not read,
    /// and the connection closes after the 503.
    pub(crate) async fn admit(
        self,
        state: &AppState,
        name: &'static str,
        deadline: Deadline,
    ) -> Result<Vec<u8>, AppError> {
        if let Err(refused) = state.forecast(name, self.declared.unwrap_or(1), deadline) {
            return Err(self.refuse(state.config(), refused));
        }
        self.read(state.config(), deadline).await
    }

    /// `refused`, after deciding what becomes of the unread body (see [`admit`](Upload::admit)).
    fn refuse(self, config: &Config, refused: AppError) -> AppError {
        let drainable = !self.expects_continue
            && self
                .declared
                .is_some_and(|n| n <= config.drain_refused as u64);
        if !drainable {
            // Dropping the body unread makes hyper close the connection after the answer.
            return refused.closing();
        }
        let until = tokio::time::Instant::now() + DRAIN_FOR;
        let mut body = self.body;
        tokio::spawn(async move {
            // Each frame is dropped as it comes; a body that does not end in time is dropped
            // unread, and hyper closes the connection.
            let _ = tokio::time::timeout_at(until, async {
                while let Some(Ok(_)) = body.frame().await {}
            })
            .await;
        });
        refused
    }

    /// Reads the whole body under the limits (see [`admit`](Upload::admit)).
    async fn read(self, config: &Config, deadline: Deadline) -> Result<Vec<u8>, AppError> {
        let body_deadline = self.arrived + config.body_timeout;
        let read_until = deadline.0.map_or(body_deadline, |d| d.min(body_deadline));
        // The declared length was checked against the limit; a body that sends more is
        // refused by `Limited` before it is buffered.
        let capacity = self.declared.map_or(0, |n| n.min(config.max_body as u64)) as usize;
        let mut limited = Limited::new(self.body, config.max_body);
        let read = async {
            // A body of one chunk is kept as it came: turning it into a `Vec` moves the
            // buffer when nothing else shares it (a body built in memory), and copies it once
            // otherwise (a slice of hyper's read buffer). Chunks after the first are copied
            // into one buffer sized by `Content-Length`, dropped as they come, so a body in
            // many chunks never takes twice its size.
            let mut only: Option<Bytes> = None;
            let mut bytes = Vec::new();
            while let Some(frame) = limited.frame().await {
                let Ok(data) = frame?.into_data() else {
                    continue;
                };
                if data.is_empty() {
                    continue;
                }
                match only.take() {
                    None if bytes.is_empty() => only = Some(data),
                    first => {
                        if bytes.is_empty() {
                            bytes.reserve_exact(capacity.max(data.len()));
                        }
                        bytes.extend_from_slice(&first.unwrap_or_default());
                        bytes.extend_from_slice(&data);
                    }
                }
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(only.map_or(bytes, Vec::from))
        };
        match tokio::time::timeout_at(read_until.into(), read).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large()),
            Ok(Err(_)) => Err(AppError::closing_with(
                StatusCode::BAD_REQUEST,
                "body unreadable",
            )),
            Err(_) if read_until < body_deadline => Err(AppError::closing_with(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline passed",
            )),
            Err(_) => Err(AppError::closing_with(
                StatusCode::REQUEST_TIMEOUT,
                "body too slow",
            )),
        }
    }
}
