//! The service over a real loopback socket, through `offload_service::serve`: graceful
//! shutdown, and a client that disconnects while its task is queued.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use offload_service::Mode;
use offload_service_support::{PATIENCE, PHOTO, Serving, occupy, state, until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn send_thumbnail_request(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /thumbnail?w=64&h=64 HTTP/1.1\r\nhost: test\r\ncontent-type: image/jpeg\r\ncontent-length: {}\r\n\r\n",
        PHOTO.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(PHOTO).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let server = Serving::start(state(Mode::Offload)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(PATIENCE, stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok\n"));
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests_then_stops() {
    let s = state(Mode::Offload);
    let server = Serving::start(s.clone()).await;
    let addr = server.addr;
    let busy = occupy(s.pool());
    let mut in_flight = send_thumbnail_request(addr).await;
    until(|| s.pool().queued() == 1).await;

    let served = server.stop();
    // Stops accepting: new connections are refused once the listener is gone.
    until(|| std::net::TcpStream::connect(addr).is_err()).await;
    assert!(!served.is_finished(), "waits for the in-flight request");

    busy.release().await;
    let mut response = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, in_flight.read(&mut response))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&response[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop(in_flight);
    tokio::time::timeout(PATIENCE, served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // `serve` has shut the pool down: everything it accepted has ended.
    let m = s.pool().metrics();
    assert!(s.pool().is_closed());
    assert_eq!(m.tasks["thumbnail"].run.count, 1);
    assert!(m.is_settled(), "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnected_clients_queued_task_never_runs() {
    let s = state(Mode::Offload);
    let server = Serving::start(s.clone()).await;
    let busy = occupy(s.pool());
    let client = send_thumbnail_request(server.addr).await;
    until(|| s.pool().queued() == 1).await;
    drop(client);
    // The server notices the closed connection and drops the handler, cancelling the task.
    until(|| s.pool().metrics().cancelled == 1).await;
    busy.release().await;
    server.stop_and_wait().await;
    let m = s.pool().metrics();
    assert!(
        !m.tasks.contains_key("thumbnail"),
        "the thumbnail never ran: {m:?}"
    );
    assert_eq!((m.submitted, m.cancelled), (2, 1));
}
