//! The result cache as HTTP sees it: `x-cache`, `ETag` (the cache key) and `Cache-Control`
//! on a cached route's answer, and `304 Not Modified` for an `If-None-Match` that holds the
//! key.

// Implementation: the key is a keyed BLAKE3 hash of the task's input and parameters, so
// equal keys mean equal results and the key is a strong validator. The routes are POSTs whose
// answer is a pure function of the request; RFC 9110 (13.1.2) asks a 412 of a failed
// If-None-Match on methods other than GET and HEAD, meant for writes that must not overwrite.
// Nothing is written here: the 304 tells the client that its copy is the answer, which is
// what a client revalidating a thumbnail needs.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use offload_cache::{Key, Outcome};

use crate::error::AppError;

/// A cached route's task, answered: its output and how the cache served it, or a 304 for a
/// client whose `If-None-Match` already holds the result.
#[derive(Debug)]
pub(crate) enum Served<O> {
    /// The client's copy is current; nothing ran.
    NotModified(Response),
    /// The output, and the headers that say how it was served.
    Fresh(O, CacheTag),
}

impl<O> Served<O> {
    /// The answer: the 304, or `render`'s response to the output with the cache headers
    /// (an error from `render`, such as the task's own `Err`, goes out without them).
    ///
    /// # Errors
    ///
    /// `render`'s.
    pub(crate) fn respond(
        self,
        render: impl FnOnce(O) -> Result<Response, AppError>,
    ) -> Result<Response, AppError> {
        match self {
            Served::NotModified(response) => Ok(response),
            Served::Fresh(value, tag) => Ok(tag.decorate(render(value)?)),
        }
    }
}

/// The cache headers of one answer; empty when the cache is off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheTag(Option<(Outcome, Option<Key>, Duration)>);

impl CacheTag {
    /// No headers: the cache is off.
    pub(crate) fn none() -> CacheTag {
        CacheTag(None)
    }

    pub(crate) fn new(outcome: Outcome, key: Option<Key>, ttl: Duration) -> CacheTag {
        CacheTag(Some((outcome, key, ttl)))
    }

    /// Adds `x-cache` and, when the result has a key, `ETag` and `Cache-Control` to a
    /// successful answer.
    pub(crate) fn decorate(self, mut response: Response) -> Response {
        if let Some((outcome, key, ttl)) = self.0 {
            let headers = response.headers_mut();
            headers.insert("x-cache", HeaderValue::from_static(outcome.as_str()));
            if let Some(key) = key {
                validators(headers, key, ttl);
            }
        }
        response
    }
}

/// `ETag: "<key>"` and `Cache-Control: private, max-age=<ttl>`: private, since the answer
/// derives from this client's upload, which a shared cache would not key on.
fn validators(headers: &mut HeaderMap, key: Key, ttl: Duration) {
    let etag = HeaderValue::try_from(format!("\"{key}\"")).expect("hex digits are a valid value");
    headers.insert(header::ETAG, etag);
    let control = HeaderValue::try_from(format!("private, max-age={}", ttl.as_secs()))
        .expect("digits are a valid value");
    headers.insert(header::CACHE_CONTROL, control);
}

/// A `304 Not Modified` with the validators when `request`'s `If-None-Match` lists `key`
/// (strong or weak, `W/"..."`, as RFC 9110's weak comparison allows); `None` otherwise.
/// `*` does not match: whether a result exists is not known without running the task.
pub(crate) fn not_modified(key: Key, ttl: Duration, request: &HeaderMap) -> Option<Response> {
    let wanted = format!("\"{key}\"");
    let listed = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag.strip_prefix("W/").unwrap_or(tag) == wanted);
    if !listed {
        return None;
    }
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    validators(response.headers_mut(), key, ttl);
    Some(response)
}
