//! Helpers shared by offload-service's integration tests: a state and a one-call client for
//! the router, a real server on a loopback port, gates that hold the pool's threads, and
//! bounded waits that fail a test instead of hanging it.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use offload::Pool;
use offload_service::{AppState, Config, Mode};
use tower::ServiceExt;

/// Long enough never to run out on a healthy run; turns a hang into a test failure.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A 1200x675 baseline JPEG photo (95 KB).
pub const PHOTO: &[u8] = include_bytes!("../fixtures/seeding_1200x675.jpg");

/// A state in `mode` with one pool thread and room for four queued tasks.
pub fn state(mode: Mode) -> AppState {
    AppState::new(Config {
        mode,
        threads: Some(1),
        queue: Some(4),
        ..Config::default()
    })
    .expect("the state builds")
}

/// A response, its body collected.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text (lossy), for assertions and failure messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` through `app(state)`, without a socket, and collects the response.
pub async fn call(state: &AppState, request: Request<Body>) -> Reply {
    let response = offload_service::app(state.clone())
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the body collects")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// `GET uri`.
pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .body(Body::empty())
        .expect("a valid request")
}

/// `POST uri` with `body`.
pub fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .body(body.into())
        .expect("a valid request")
}

/// The service on an ephemeral loopback port, in this runtime, until [`stop`](Serving::stop).
#[derive(Debug)]
pub struct Serving {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Serving {
    /// Starts `offload_service::serve` for `state` on `127.0.0.1:0`.
    pub async fn start(state: AppState) -> Serving {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(offload_service::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Serving { addr, stop, served }
    }

    /// Signals shutdown and returns the server's task, which ends once in-flight requests are
    /// answered and the pool has joined its threads.
    pub fn stop(self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        let _ = self.stop.send(());
        self.served
    }

    /// [`stop`](Serving::stop)s and waits for the server to return; fails the test if it
    /// does not return, or fails, within [`PATIENCE`].
    pub async fn stop_and_wait(self) {
        tokio::time::timeout(PATIENCE, self.stop())
            .await
            .expect("the server stops")
            .expect("the server task ends")
            .expect("the server ends well");
    }
}

/// Writes `request` (raw HTTP/1.1) on a new connection to `addr` and reads until the server
/// closes it (send `connection: close`); fails the test after [`PATIENCE`]. A reset after
/// the answer counts as the end.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::time::timeout(PATIENCE, async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("the server accepts");
        stream
            .write_all(request)
            .await
            .expect("the request is sent");
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut chunk).await {
            answer.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .expect("the server answered and closed the connection")
}

/// A state built from `config`.
pub fn state_with(config: Config) -> AppState {
    AppState::new(config).expect("the state builds")
}

/// Polls `done` every 2 ms until it holds; fails the test after [`PATIENCE`] instead of
/// hanging.
pub async fn until(mut done: impl FnMut() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("condition never held");
}

/// Holds tasks until opened, so a test controls exactly when a worker frees up.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn open(&self) {
        *self.0.0.lock().expect("gate lock") = true;
        self.0.1.notify_all();
    }

    /// Blocks until opened; panics (failing the test) after [`PATIENCE`].
    fn wait(&self) {
        let open = self.0.0.lock().expect("gate lock");
        let (open, timeout) = self
            .0
            .1
            .wait_timeout_while(open, PATIENCE, |open| !*open)
            .expect("gate lock");
        assert!(*open && !timeout.timed_out(), "gate never opened");
    }
}

/// Every thread of a pool held by a task that waits on one gate; see [`occupy`].
#[must_use = "release the threads, or the pool never runs anything else"]
pub struct Occupied {
    gate: Gate,
    handles: Vec<offload::TaskHandle<()>>,
}

impl std::fmt::Debug for Occupied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Occupied")
            .field("threads", &self.handles.len())
            .finish_non_exhaustive()
    }
}

impl Occupied {
    /// Opens the gate and waits for the holding tasks to finish.
    pub async fn release(self) {
        self.gate.open();
        for h in self.handles {
            h.await.expect("the holding task ends");
        }
    }
}

/// Occupies every thread of `pool` with a task that waits on a gate, and returns once all of
/// them are running, so the next task submitted stays queued.
pub fn occupy(pool: &Pool) -> Occupied {
    let gate = Gate::default();
    let (started, running) = mpsc::channel();
    let handles = (0..pool.threads())
        .map(|_| {
            let (gate, started) = (gate.clone(), started.clone());
            let mut task = Some(move || {
                let _ = started.send(());
                gate.wait();
            });
            // With a tiny queue the previous task may not have left it yet: retry until a
            // worker picks it up (each one does, promptly, since every thread is idle).
            loop {
                match pool.try_run(task.take().expect("the task is back")) {
                    Ok(handle) => break handle,
                    Err(e) if e.is_full() => {
                        task = Some(e.into_task());
                        std::thread::yield_now();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .collect();
    for _ in 0..pool.threads() {
        running
            .recv_timeout(PATIENCE)
            .expect("a holding task never started");
    }
    Occupied { gate, handles }
}

/// A pool that refuses the next task: every thread held (see [`occupy`]) and the queue full
/// of tasks that do nothing.
#[must_use = "release the pool, or it never runs anything else"]
pub struct Filled {
    busy: Occupied,
    queued: Vec<offload::TaskHandle<()>>,
}

impl std::fmt::Debug for Filled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filled")
            .field("busy", &self.busy)
            .field("queued", &self.queued.len())
            .finish()
    }
}

impl Filled {
    /// Releases the threads and waits for the queued tasks.
    pub async fn release(self) {
        self.busy.release().await;
        for h in self.queued {
            h.await.expect("a queued task ends");
        }
    }
}

/// Occupies every thread of `pool` and fills its queue, so that it refuses the next task.
pub fn fill(pool: &Pool) -> Filled {
    let busy = occupy(pool);
    let mut queued = Vec::new();
    loop {
        match pool.try_run(|| ()) {
            Ok(handle) => queued.push(handle),
            Err(e) if e.is_full() => break,
            Err(e) => panic!("{e}"),
        }
    }
    Filled { busy, queued }
}

/// Waits up to `patience` for `child` to exit; kills it and fails the test if it does not.
pub fn exit_within(child: &mut Child, patience: Duration) -> ExitStatus {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child did not exit within {patience:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The lines a child writes to a pipe, read on a thread of their own so the pipe never
/// fills, and handed out with a bound on the wait.
#[derive(Debug)]
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    /// Starts reading `pipe` (a child's stdout or stderr) until it closes.
    pub fn read(pipe: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// The next line for which `wanted` holds (earlier ones are skipped); fails the test if
    /// none comes within [`PATIENCE`] or the pipe closes first.
    pub fn next_matching(&self, mut wanted: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("no matching line ({e})"),
            }
        }
    }
}
