//! Hostile and unlucky connections over a real loopback socket, through
//! `offload_service::serve`: slow headers, a body declared too large, too many connections, and
//! a shutdown that cannot finish in time.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use offload_service::{Config, Mode};
use offload_service_support::{
    PATIENCE, PHOTO, Serving, call, exchange, get, occupy, post, state_with, until,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n";

/// One pool thread and room for four queued tasks, with `config`'s other settings.
fn small(config: Config) -> Config {
    Config {
        mode: Mode::Offload,
        threads: Some(1),
        queue: Some(4),
        ..config
    }
}

/// Sends `request` on a new connection (keeping it open), and asserts that within `within`
/// the server answers `status` with `reason` as the body and closes the connection.
async fn assert_closing_answer(
    addr: std::net::SocketAddr,
    request: &[u8],
    within: Duration,
    status: &str,
    reason: &str,
) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("no answer and close within {within:?}"))
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(
        answer.starts_with(&format!("http/1.1 {status}")),
        "{answer}"
    );
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.ends_with(&format!("{reason}\n")), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let server = Serving::start(state_with(small(Config::default()))).await;
    let answer = exchange(server.addr, HEALTHZ).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_clients_do_not_delay_healthz_and_are_closed_after_the_header_timeout() {
    const TRICKLERS: usize = 250;
    let header_timeout = Duration::from_secs(3);
    let server = Serving::start(state_with(small(Config {
        header_timeout,
        max_connections: 2 * TRICKLERS,
        ..Config::default()
    })))
    .await;
    let addr = server.addr;
    let (started, mut all_started) = tokio::sync::mpsc::channel::<()>(TRICKLERS);
    let closed = Arc::new(AtomicUsize::new(0));
    let tricklers: Vec<_> = (0..TRICKLERS)
        .map(|_| {
            let (started, closed) = (started.clone(), Arc::clone(&closed));
            tokio::spawn(async move {
                // Before connecting: the server's timer cannot start earlier than this.
                let opened = Instant::now();
                let mut stream = TcpStream::connect(addr).await.unwrap();
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nx-slow: ")
                    .await
                    .unwrap();
                started.send(()).await.unwrap();
                // One more header byte every 50 ms, never the end of the head, until the
                // server closes the connection (a read of 0 bytes, or a reset).
                let mut answer = Vec::new();
                let mut chunk = [0u8; 512];
                loop {
                    tokio::select! {
                        read = stream.read(&mut chunk) => match read {
                            Ok(n @ 1..) => answer.extend_from_slice(&chunk[..n]),
                            _ => break,
                        },
                        () = tokio::time::sleep(Duration::from_millis(50)) => {
                            if stream.write_all(b"x").await.is_err() {
                                break;
                            }
                        }
                    }
                }
                closed.fetch_add(1, Ordering::SeqCst);
                (opened.elapsed(), answer)
            })
        })
        .collect();
    drop(started);
    for _ in 0..TRICKLERS {
        tokio::time::timeout(PATIENCE, all_started.recv())
            .await
            .unwrap()
            .unwrap();
    }

    // Every trickler is connected and sending: /healthz is still answered at once, every
    // time, long before any of them is cut off.
    for _ in 0..20 {
        let answer = exchange(addr, HEALTHZ).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    assert_eq!(
        closed.load(Ordering::SeqCst),
        0,
        "the probes were answered while every trickler was still connected"
    );

    for trickler in tricklers {
        let (open_for, answer) = tokio::time::timeout(PATIENCE, trickler)
            .await
            .expect("the server closes a trickling connection")
            .unwrap();
        assert!(
            open_for >= header_timeout,
            "closed after {open_for:?}, before the header timeout"
        );
        assert!(
            !String::from_utf8_lossy(&answer).contains(" 200 "),
            "no request was served: {answer:?}"
        );
    }
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_content_length_over_the_limit_is_a_413_within_a_second() {
    let s = state_with(small(Config::default()));
    let server = Serving::start(s.clone()).await;
    for expect in ["", "expect: 100-continue\r\n"] {
        let request = format!(
            "POST /thumbnail HTTP/1.1\r\nhost: test\r\ncontent-type: image/jpeg\r\n\
             content-length: 10000000000\r\n{expect}\r\n"
        );
        // No body follows: the answer must come from the header alone.
        let within = Duration::from_secs(1);
        assert_closing_answer(
            server.addr,
            request.as_bytes(),
            within,
            "413",
            "body too large",
        )
        .await;
    }
    assert_eq!(s.pool().metrics().submitted, 0, "refused before any work");
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_too_slowly_is_a_408_that_closes_the_connection() {
    let s = state_with(small(Config {
        body_timeout: Duration::from_millis(300),
        ..Config::default()
    }));
    let server = Serving::start(s.clone()).await;
    // The head promises 1000 bytes; 10 come, then nothing (the connection stays open).
    let request =
        b"POST /thumbnail HTTP/1.1\r\nhost: test\r\ncontent-length: 1000\r\n\r\n0123456789";
    assert_closing_answer(server.addr, request, PATIENCE, "408", "body too slow").await;
    assert_eq!(s.pool().metrics().submitted, 0, "refused before any work");
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_get_503_until_one_closes() {
    const LIMIT: usize = 3;
    let server = Serving::start(state_with(small(Config {
        max_connections: LIMIT,
        ..Config::default()
    })))
    .await;
    let addr = server.addr;
    // LIMIT kept-alive connections, each proven accepted by an answered request.
    let mut kept = Vec::new();
    for _ in 0..LIMIT {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(PATIENCE, stream.read_exact(&mut head))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        kept.push(stream);
    }

    let answer = exchange(addr, HEALTHZ).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.ends_with("too many connections\n"), "{answer}");
    assert!(answer.contains("retry-after: "), "{answer}");

    // One closes: its slot frees up, and a new connection is served again.
    drop(kept.pop());
    tokio::time::timeout(PATIENCE, async {
        while !exchange(addr, HEALTHZ).await.starts_with("HTTP/1.1 200") {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("a freed slot is served again");
    drop(kept);
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_at_its_deadline_with_a_task_still_held_and_says_so_afterwards() {
    let s = state_with(small(Config {
        shutdown_timeout: Duration::from_millis(200),
        request_timeout: Duration::from_secs(120),
        ..Config::default()
    }));
    let server = Serving::start(s.clone()).await;
    let busy = occupy(s.pool());
    let mut in_flight = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /thumbnail HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\n\r\n",
        PHOTO.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    in_flight.write_all(PHOTO).await.unwrap();
    until(|| s.pool().queued() == 1).await;

    // The pool's only thread stays held: without the deadline, `serve` would wait for it
    // (and the queued thumbnail) forever.
    tokio::time::timeout(PATIENCE, server.stop())
        .await
        .expect("serve returned at its shutdown deadline")
        .unwrap()
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, in_flight.read_to_end(&mut answer))
        .await
        .expect("the dropped connection is closed");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));

    // Anything still reaching the app learns why it is refused, and to go elsewhere.
    let reply = call(&s, get("/healthz")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.text(), "shutting down\n");
    assert_eq!(reply.headers[header::CONNECTION], "close");
    let reply = call(&s, post("/thumbnail", PHOTO)).await;
    assert_eq!(reply.text(), "shutting down\n");

    busy.release().await;
}
