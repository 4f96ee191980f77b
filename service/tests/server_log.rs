//! The request log: one JSON line per answered request with method, path, status and
//! latency, and a warning past the slow-request threshold.
#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use offload_service::{AppState, Config, log_subscriber};
use offload_service_support::{PHOTO, call, get, post};
use serde_json::Value;
use tracing_subscriber::EnvFilter;

/// Everything the subscriber writes, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// A one-thread state whose slow-request threshold is `slow`.
fn state(slow: Duration) -> AppState {
    AppState::new(Config {
        threads: Some(1),
        slow_request: slow,
        ..Config::default()
    })
    .unwrap()
}

/// The service's log format, installed for this thread (the current-thread runtime runs
/// every handler here) while the guard lives.
fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = log_subscriber(EnvFilter::new("info"), move || writer.clone());
    (captured, tracing::subscriber::set_default(subscriber))
}

/// Checks one response line: level, message, status, a latency, and the request's span.
fn assert_line(line: &Value, level: &str, message: &str, method: &str, path: &str, status: u16) {
    assert_eq!(line["level"], level, "{line}");
    assert_eq!(line["message"], message, "{line}");
    assert_eq!(line["status"], status, "{line}");
    let latency = line["latency_ms"].as_f64().unwrap();
    assert!(latency.is_finite() && latency >= 0.0, "{line}");
    assert_eq!(line["span"]["method"], method, "{line}");
    assert_eq!(line["span"]["path"], path, "{line}");
}

#[tokio::test]
async fn smoke() {
    let (captured, _guard) = capture();
    let s = state(Duration::from_secs(3600));
    assert_eq!(call(&s, get("/healthz")).await.status, StatusCode::OK);
    let lines = captured.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_line(&lines[0], "INFO", "request", "GET", "/healthz", 200);
}

#[tokio::test]
async fn one_line_per_request_whatever_the_status() {
    let (captured, _guard) = capture();
    let s = state(Duration::from_secs(3600));
    let requests = [
        (post("/thumbnail?w=64", PHOTO), "POST", "/thumbnail", 200),
        (post("/thumbnail?w=abc", PHOTO), "POST", "/thumbnail", 400),
        (
            post("/thumbnail", &b"not an image"[..]),
            "POST",
            "/thumbnail",
            415,
        ),
        (get("/no/such/route"), "GET", "/no/such/route", 404),
    ];
    let mut expected = Vec::new();
    for (request, method, path, status) in requests {
        assert_eq!(call(&s, request).await.status.as_u16(), status);
        expected.push((method, path, status));
    }
    let lines = captured.lines();
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
    for (line, (method, path, status)) in lines.iter().zip(expected) {
        assert_line(line, "INFO", "request", method, path, status);
    }
}

#[tokio::test]
async fn requests_over_the_slow_threshold_log_a_warning_instead() {
    let (captured, _guard) = capture();
    // Every request takes longer than zero.
    let s = state(Duration::ZERO);
    assert_eq!(call(&s, get("/healthz")).await.status, StatusCode::OK);
    let lines = captured.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_line(&lines[0], "WARN", "slow request", "GET", "/healthz", 200);
}
