//! Refusing before reading: over a real loopback socket, an overloaded pool answers 503 from a
//! request's head, so a refused upload is never received, a client waiting on
//! `Expect: 100-continue` is never asked for its body, and a client that sent its body anyway
//! keeps its connection (or, past the drain bound, is told it closes).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::http::StatusCode;
use offload_service::{AppState, Config, Mode};
use offload_service_support::{PATIENCE, PHOTO, Serving, call, fill, post, state_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One pool thread, room for four queued tasks, and a body timeout longer than the tests'
/// patience: a server that waited for a body the client holds back would fail the test
/// rather than answer 408.
fn small(config: Config) -> Config {
    Config {
        mode: Mode::Offload,
        threads: Some(1),
        queue: Some(4),
        body_timeout: PATIENCE * 2,
        request_timeout: PATIENCE * 2,
        ..config
    }
}

/// A service with [`small`]`(config)`'s pool, serving on a loopback port.
async fn serve_small(config: Config) -> (AppState, Serving) {
    let s = state_with(small(config));
    let server = Serving::start(s.clone()).await;
    (s, server)
}

/// The head of `POST /thumbnail` for a body of `length` bytes, with `extra` header lines.
fn thumbnail_head(length: usize, extra: &str) -> String {
    format!(
        "POST /thumbnail?w=64&h=64 HTTP/1.1\r\nhost: test\r\ncontent-type: image/jpeg\r\n\
         content-length: {length}\r\n{extra}\r\n"
    )
}

/// A raw HTTP/1.1 connection that reads answers one at a time.
struct Wire {
    stream: TcpStream,
    unread: Vec<u8>,
}

impl Wire {
    async fn connect(addr: SocketAddr) -> Wire {
        Wire {
            stream: TcpStream::connect(addr).await.unwrap(),
            unread: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next answer, head and body (by its `content-length`; none for a `100 Continue`),
    /// lowercased; fails the test if it does not come within [`PATIENCE`].
    async fn answer(&mut self) -> String {
        tokio::time::timeout(PATIENCE, async {
            let head_end = loop {
                if let Some(at) = self.unread.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
                self.fill().await;
            };
            let head = String::from_utf8_lossy(&self.unread[..head_end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            while self.unread.len() < head_end + length {
                self.fill().await;
            }
            let answer: Vec<u8> = self.unread.drain(..head_end + length).collect();
            String::from_utf8_lossy(&answer).to_ascii_lowercase()
        })
        .await
        .expect("an answer within the test's patience")
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed mid-answer: {:?}", self.unread);
        self.unread.extend_from_slice(&chunk[..n]);
    }

    /// Whether the server closes the connection with nothing more to say.
    async fn closes(&mut self) -> bool {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(PATIENCE, self.stream.read_to_end(&mut rest)).await;
        // A reset after the answer is a close too.
        read.is_ok() && rest.is_empty() && self.unread.is_empty()
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let (_state, server) = serve_small(Config::default()).await;
    let mut wire = Wire::connect(server.addr).await;
    wire.send(thumbnail_head(PHOTO.len(), "").as_bytes()).await;
    wire.send(PHOTO).await;
    let answer = wire.answer().await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_expecting_100_continue_is_refused_without_being_asked_for_its_body() {
    let (s, server) = serve_small(Config::default()).await;
    let full = fill(s.pool());
    let mut wire = Wire::connect(server.addr).await;
    // The head only: a client that sent `Expect` sends its body after `100 Continue`.
    wire.send(thumbnail_head(PHOTO.len(), "expect: 100-continue\r\n").as_bytes())
        .await;
    let answer = wire.answer().await;
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.ends_with("overloaded, retry later\n"), "{answer}");
    assert!(answer.contains("retry-after: "), "{answer}");
    // Whether the body would follow is the client's choice: the server does not wait for it.
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(wire.closes().await, "the connection stays open");
    full.release().await;

    // With room again, the same request is asked for its body and served.
    let mut wire = Wire::connect(server.addr).await;
    wire.send(thumbnail_head(PHOTO.len(), "expect: 100-continue\r\n").as_bytes())
        .await;
    let answer = wire.answer().await;
    assert!(answer.starts_with("http/1.1 100 continue"), "{answer}");
    wire.send(PHOTO).await;
    let answer = wire.answer().await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_answered_from_the_head_and_the_body_sent_after_it_keeps_the_connection() {
    let (s, server) = serve_small(Config::default()).await;
    let full = fill(s.pool());
    let mut wire = Wire::connect(server.addr).await;
    // No `Expect`, and the body held back: the answer cannot be waiting for it.
    wire.send(thumbnail_head(PHOTO.len(), "").as_bytes()).await;
    let answer = wire.answer().await;
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(!answer.contains("connection: close"), "{answer}");
    // The body arrives after all (a client that does not read until it has sent): it is
    // thrown away, and the connection serves the next request.
    wire.send(PHOTO).await;
    wire.send(HEALTHZ).await;
    let answer = wire.answer().await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok\n"), "{answer}");
    full.release().await;
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_body_over_the_drain_bound_is_not_read_and_the_connection_closes() {
    let (s, server) = serve_small(Config {
        drain_refused: PHOTO.len() - 1,
        ..Config::default()
    })
    .await;
    let full = fill(s.pool());
    let mut wire = Wire::connect(server.addr).await;
    wire.send(thumbnail_head(PHOTO.len(), "").as_bytes()).await;
    wire.send(&PHOTO[..1000]).await;
    let answer = wire.answer().await;
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(wire.closes().await, "the connection stays open");
    full.release().await;
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_would_overflow_the_queued_bytes_is_refused_unread() {
    let (s, server) = serve_small(Config {
        queue_bytes: Some(PHOTO.len() as u64),
        ..Config::default()
    })
    .await;
    let busy = offload_service_support::occupy(s.pool());
    // One photo queued fills the bound (the queue has room for three more by count).
    let queued = tokio::spawn({
        let s = s.clone();
        async move { call(&s, post("/thumbnail?w=8&h=8", PHOTO)).await }
    });
    offload_service_support::until(|| s.pool().queued() == 1).await;
    let mut wire = Wire::connect(server.addr).await;
    wire.send(thumbnail_head(PHOTO.len(), "expect: 100-continue\r\n").as_bytes())
        .await;
    let answer = wire.answer().await;
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    busy.release().await;
    assert_eq!(queued.await.unwrap().status, StatusCode::OK);
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_cache_the_body_is_read_since_the_answer_may_be_cached() {
    let (s, server) = serve_small(Config {
        cache_bytes: 1 << 20,
        ..Config::default()
    })
    .await;
    let full = fill(s.pool());
    let mut wire = Wire::connect(server.addr).await;
    wire.send(thumbnail_head(PHOTO.len(), "expect: 100-continue\r\n").as_bytes())
        .await;
    let answer = wire.answer().await;
    assert!(answer.starts_with("http/1.1 100 continue"), "{answer}");
    wire.send(PHOTO).await;
    let answer = wire.answer().await;
    // A miss, which the full pool refuses when it is submitted.
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    full.release().await;
    server.stop_and_wait().await;
}
