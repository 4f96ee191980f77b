//! The example service over a real loopback socket: graceful shutdown, and a client that
//! disconnects while its task is queued.
#![allow(clippy::unwrap_used)]

#[path = "../examples/server/app.rs"]
mod app;
mod support;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PHOTO: &[u8] = include_bytes!("fixtures/images/seeding_1200x675.jpg");

async fn serve(
    state: app::AppState,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app::app(state))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, stop, server)
}

async fn send_thumbnail_request(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /thumbnail?w=64&h=64 HTTP/1.1\r\nhost: test\r\ncontent-type: image/jpeg\r\ncontent-length: {}\r\n\r\n",
        PHOTO.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(PHOTO).await.unwrap();
    stream
}

fn state() -> app::AppState {
    app::AppState::new(app::Config {
        threads: Some(1),
        queue: Some(8),
        ..app::Config::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let s = state();
    let (addr, stop, server) = serve(s.clone()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok\n"));
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests_then_stops() {
    let s = state();
    let (addr, stop, server) = serve(s.clone()).await;
    let busy = support::occupy(&s.pool);
    let mut in_flight = send_thumbnail_request(addr).await;
    support::until(|| s.pool.queued() == 1).await;

    stop.send(()).unwrap();
    // Stops accepting: new connections are refused once the listener is gone.
    support::until(|| std::net::TcpStream::connect(addr).is_err()).await;
    assert!(!server.is_finished(), "waits for the in-flight request");

    busy.release().await;
    let mut response = vec![0u8; 4096];
    let n = in_flight.read(&mut response).await.unwrap();
    let head = String::from_utf8_lossy(&response[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop(in_flight);
    tokio::time::timeout(support::PATIENCE, server)
        .await
        .unwrap()
        .unwrap();
    s.pool.shutdown().await;
    let m = s.pool.metrics();
    assert_eq!(m.tasks["thumbnail"].run.count, 1);
    assert!(m.is_settled(), "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnected_clients_queued_task_never_runs() {
    let s = state();
    let (addr, stop, server) = serve(s.clone()).await;
    let busy = support::occupy(&s.pool);
    let client = send_thumbnail_request(addr).await;
    support::until(|| s.pool.queued() == 1).await;
    drop(client);
    // The server notices the closed connection and drops the handler, cancelling the task.
    support::until(|| s.pool.metrics().cancelled == 1).await;
    busy.release().await;
    stop.send(()).unwrap();
    server.await.unwrap();
    s.pool.shutdown().await;
    let m = s.pool.metrics();
    assert!(
        !m.tasks.contains_key("thumbnail"),
        "the thumbnail never ran: {m:?}"
    );
    assert_eq!((m.submitted, m.cancelled), (2, 1));
}
