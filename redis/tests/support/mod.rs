//! Shared by the fleet tests: test tasks, an in-process worker, worker child processes
//! (this test binary run again as a worker), and bounded polling.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use offload::{Pool, Task};
use offload_redis::{Fleet, Worker, WorkerBuilder};
use serde::{Deserialize, Serialize};

/// Returns its input; the cheapest round trip.
#[derive(Debug, Serialize, Deserialize)]
pub struct Echo(pub u64);

/// Every value an `Echo` returned in this process, in run order.
pub static ECHOED: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

impl Task for Echo {
    type Output = u64;
    fn run(self) -> u64 {
        ECHOED.lock().unwrap().push(self.0);
        self.0
    }
    fn name(&self) -> &'static str {
        "echo"
    }
}

/// Returns the sum of its bytes. At 20,000 bytes its payload is large enough to wait in
/// the payloads hash rather than in its stream entry.
#[derive(Debug, Serialize, Deserialize)]
pub struct Blob(pub Vec<u8>);

impl Task for Blob {
    type Output = u64;
    fn run(self) -> u64 {
        self.0.iter().map(|&b| u64::from(b)).sum()
    }
    fn name(&self) -> &'static str {
        "blob"
    }
}

/// Sleeps `ms` (waking every 5 ms to look at `is_cancelled`), then returns the id of the
/// process that ran it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Sleep {
    pub ms: u64,
}

/// How many `Sleep` runs in this process saw `is_cancelled` turn true.
pub static SLEEPS_CANCELLED: AtomicU32 = AtomicU32::new(0);
/// How many `Sleep` runs started in this process.
pub static SLEEPS_STARTED: AtomicU32 = AtomicU32::new(0);

impl Task for Sleep {
    type Output = u32;
    fn run(self) -> u32 {
        SLEEPS_STARTED.fetch_add(1, Ordering::SeqCst);
        let until = Instant::now() + Duration::from_millis(self.ms);
        while Instant::now() < until {
            if offload::is_cancelled() {
                SLEEPS_CANCELLED.fetch_add(1, Ordering::SeqCst);
                return 0;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::process::id()
    }
    fn name(&self) -> &'static str {
        "sleep"
    }
}

/// Panics on its first `panics` runs (counted in this process, per `key`), then returns
/// the number of the run that succeeded.
#[derive(Debug, Serialize, Deserialize)]
pub struct Flaky {
    pub key: u64,
    pub panics: u32,
}

static FLAKY_RUNS: std::sync::Mutex<Vec<(u64, u32)>> = std::sync::Mutex::new(Vec::new());

/// How many times the `Flaky` task with `key` ran in this process.
pub fn flaky_runs(key: u64) -> u32 {
    FLAKY_RUNS
        .lock()
        .unwrap()
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(0, |(_, n)| *n)
}

impl Task for Flaky {
    type Output = u32;
    fn run(self) -> u32 {
        let run = {
            let mut runs = FLAKY_RUNS.lock().unwrap();
            let pos = runs.iter().position(|(k, _)| *k == self.key);
            let slot = match pos {
                Some(p) => &mut runs[p],
                None => {
                    runs.push((self.key, 0));
                    runs.last_mut().unwrap()
                }
            };
            slot.1 += 1;
            slot.1
        };
        if run <= self.panics {
            panic!("flaky run {run} of job {}", self.key);
        }
        run
    }
    fn name(&self) -> &'static str {
        "flaky"
    }
}

/// A [`Flaky`] whose payload is large enough to wait in the payloads hash: returns the run
/// that succeeded and the sum of its ballast, so a payload that a retry lost or mangled
/// shows in the result.
#[derive(Debug, Serialize, Deserialize)]
pub struct LargeFlaky {
    pub flaky: Flaky,
    pub ballast: Vec<u8>,
}

impl Task for LargeFlaky {
    type Output = (u32, u64);
    fn run(self) -> (u32, u64) {
        let sum = self.ballast.iter().map(|&b| u64::from(b)).sum();
        (self.flaky.run(), sum)
    }
    fn name(&self) -> &'static str {
        "large_flaky"
    }
}

/// Fails on its own terms: an `Err` output, which is a result, not a retry.
#[derive(Debug, Serialize, Deserialize)]
pub struct Refuse;

pub static REFUSALS: AtomicU64 = AtomicU64::new(0);

impl Task for Refuse {
    type Output = Result<u32, String>;
    fn run(self) -> Result<u32, String> {
        REFUSALS.fetch_add(1, Ordering::SeqCst);
        Err("no thanks".to_owned())
    }
    fn name(&self) -> &'static str {
        "refuse"
    }
}

/// A worker builder serving every test task on a pool of `threads`.
pub fn worker(threads: usize, lease_ms: u64) -> WorkerBuilder {
    let pool = Pool::builder()
        .threads(threads)
        .build()
        .expect("threads start");
    Worker::builder(pool)
        .task::<Echo>("echo")
        .task::<Blob>("blob")
        .task::<Sleep>("sleep")
        .task::<Flaky>("flaky")
        .task::<LargeFlaky>("large_flaky")
        .task::<Refuse>("refuse")
        .lease(Duration::from_millis(lease_ms))
        .retry_backoff(Duration::from_millis(20))
}

/// An in-process worker, stopped (gracefully) when dropped or `stop`ped.
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub consumer: String,
}

impl Running {
    pub async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the worker stops within 10 s")
                .expect("the worker does not panic");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
    }
}

/// Connects `builder` to the queue and runs it in a tokio task.
pub async fn spawn_worker(builder: WorkerBuilder, url: &str, queue: &str) -> Running {
    let worker = builder.connect(url, queue).await.expect("worker connects");
    let consumer = worker.consumer().to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async move {
        let _ = rx.await;
    }));
    Running {
        stop: Some(tx),
        task: Some(task),
        consumer,
    }
}

pub async fn fleet(url: &str, queue: &str) -> Fleet {
    Fleet::builder()
        .command_timeout(Duration::from_millis(500))
        .outage_grace(Duration::from_secs(2))
        .connect(url, queue)
        .await
        .expect("fleet connects")
}

/// Polls `check` every 10 ms until it holds, failing the test after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Environment variables that turn this test binary into a worker process.
const CHILD_URL: &str = "OFFLOAD_TEST_CHILD_REDIS";
const CHILD_QUEUE: &str = "OFFLOAD_TEST_CHILD_QUEUE";
const CHILD_LEASE: &str = "OFFLOAD_TEST_CHILD_LEASE_MS";
const READY: &str = "offload-test-child-ready";

/// The body of a test named `child_worker` in a test file that spawns worker processes:
/// nothing unless the environment says this process is a child; then serve until killed.
pub fn child_worker_main() {
    let (Ok(url), Ok(queue), Ok(lease)) = (
        std::env::var(CHILD_URL),
        std::env::var(CHILD_QUEUE),
        std::env::var(CHILD_LEASE),
    ) else {
        return;
    };
    let lease: u64 = lease.parse().expect("lease ms");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let worker = worker(1, lease)
            .connect(&url, &queue)
            .await
            .expect("child worker connects");
        // The parent reads this line from the child's stdout.
        #[allow(clippy::print_stdout)]
        {
            println!("{READY} {}", worker.consumer());
        }
        worker.run(std::future::pending()).await;
    });
}

/// A worker process (this test binary again, running only its `child_worker` test), with
/// one thread. Killed when dropped.
pub struct Child_ {
    pub child: Child,
    pub consumer: String,
}

impl Child_ {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.pid());
    }
}

impl Drop for Child_ {
    fn drop(&mut self) {
        // A stopped process must be continued to die of SIGKILL promptly everywhere.
        let _ = self.child.kill();
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.pid().to_string())
            .status();
        let _ = self.child.wait();
    }
}

pub fn spawn_child(url: &str, queue: &str, lease_ms: u64) -> Child_ {
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--exact", "child_worker", "--nocapture", "--test-threads=1"])
        .env(CHILD_URL, url)
        .env(CHILD_QUEUE, queue)
        .env(CHILD_LEASE, lease_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the test binary starts again");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest may print its "test child_worker ... " before it on the same line.
            if let Some(at) = line.find(READY) {
                let _ = tx.send(line[at + READY.len()..].trim().to_owned());
            }
        }
    });
    // The guard first: a child that never gets ready is killed too.
    let mut guard = Child_ {
        child,
        consumer: String::new(),
    };
    guard.consumer = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the child worker connects within 20 s");
    guard
}

/// A plain connection to the test's Redis, for looking at (or tampering with) its keys.
pub async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

/// The consumers that own pending entries of the queue's normal-priority stream.
pub async fn owners(url: &str, queue: &str) -> Vec<String> {
    let mut conn = connection(url).await;
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(format!("offload:{{{queue}}}:jobs:normal"))
        .arg("workers")
        .arg("-")
        .arg("+")
        .arg(100)
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    pending.into_iter().map(|(_, owner, _, _)| owner).collect()
}

/// The dead-letter stream's entries as (reason, attempts, task) triples.
pub async fn dead_letters(url: &str, queue: &str) -> Vec<(String, String, String)> {
    let mut conn = connection(url).await;
    let entries: redis::Value = redis::cmd("XRANGE")
        .arg(format!("offload:{{{queue}}}:dead"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("xrange");
    let redis::Value::Array(entries) = entries else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let redis::Value::Array(mut parts) = entry else {
                return None;
            };
            let redis::Value::Array(fields) = parts.pop()? else {
                return None;
            };
            let text = |v: &redis::Value| match v {
                redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            };
            let get = |name: &str| {
                fields
                    .chunks_exact(2)
                    .find(|p| text(&p[0]) == name)
                    .map(|p| text(&p[1]))
                    .unwrap_or_default()
            };
            Some((get("reason"), get("attempts"), get("task")))
        })
        .collect()
}
