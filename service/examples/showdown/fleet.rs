//! The showdown's `fleet` mode: a throwaway `redis-server` and a worker process, so the
//! service can send its tasks to a Redis fleet under the same load as the local pool.
//!
//! The worker is this executable run with `--fleet-worker URL`: one process whose pool has
//! as many threads as the local pool in `offload` mode, serving the built-in tasks until its
//! stdin closes. Redis is `offload-test-redis`'s: a free loopback port, a temporary folder,
//! killed and removed on drop, so an error on the way tears everything down too.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use offload::Pool;
use offload_redis::Worker;
use offload_service::Config;
use offload_tasks::{PdfReportTask, ReportTask, Thumbnail};
use offload_test_redis::RedisServer;

use crate::overload::spawn_self;

/// The fleet's queue; the Redis is the showdown's own, so any name does.
const QUEUE: &str = "showdown";
/// How long a worker may take to exit once its stdin closes, before it is killed.
const WORKER_EXIT: Duration = Duration::from_secs(10);

/// Fails with what to do when `fleet` was asked for and `redis-server` is missing.
pub(crate) fn ensure_redis() -> anyhow::Result<()> {
    anyhow::ensure!(
        offload_test_redis::installed(),
        "--modes fleet needs redis-server on the PATH (the showdown starts its own): \
         install it (apt-get install redis-server) or leave fleet out of --modes"
    );
    Ok(())
}

/// The showdown Redis's `appendfsync` policy (`--redis-fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Fsync {
    /// Flush the append-only file before acknowledging each write.
    Always,
    /// Flush it once a second.
    Everysec,
}

impl Fsync {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Everysec => "everysec",
        }
    }
}

/// A running Redis and one worker process with `threads` pool threads and `prefetch` jobs
/// held ready.
pub(crate) struct Fleet {
    // Dropped first: the worker goes before its Redis.
    worker: WorkerProcess,
    redis: RedisServer,
}

impl Fleet {
    pub(crate) fn start(threads: usize, prefetch: usize, fsync: Fsync) -> anyhow::Result<Fleet> {
        ensure_redis()?;
        let redis = RedisServer::start_with(&["--appendfsync", fsync.as_str()])
            .context("redis-server is not installed")?;
        let (process, line) = spawn_self(
            &[
                "--fleet-worker",
                &redis.url(),
                "--threads",
                &threads.to_string(),
                "--fleet-prefetch",
                &prefetch.to_string(),
            ],
            "fleet worker",
        )?;
        // A failed `ensure!` drops `worker`, which kills it, and `redis`.
        let worker = WorkerProcess(Some(process));
        anyhow::ensure!(
            line.trim() == "ready",
            "the fleet worker did not start: {line:?}"
        );
        Ok(Fleet { worker, redis })
    }

    /// The service's configuration: tasks go to this fleet.
    pub(crate) fn config(&self) -> Config {
        Config::default().fleet(self.redis.url(), QUEUE)
    }

    /// Stops the worker (it finishes what it holds) and then Redis.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        self.worker.stop()
    }
}

/// The worker child; killed on drop unless [`stop`](WorkerProcess::stop) ended it.
struct WorkerProcess(Option<std::process::Child>);

impl WorkerProcess {
    /// Closes the worker's stdin, which stops it, and waits (killing it after
    /// [`WORKER_EXIT`]).
    fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut process) = self.0.take() else {
            return Ok(());
        };
        drop(process.stdin.take());
        let until = Instant::now() + WORKER_EXIT;
        loop {
            if let Some(status) = process.try_wait()? {
                anyhow::ensure!(status.success(), "the fleet worker exited with {status}");
                return Ok(());
            }
            if Instant::now() > until {
                let _ = process.kill();
                let _ = process.wait();
                anyhow::bail!("the fleet worker did not stop within {WORKER_EXIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(mut process) = self.0.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// `--fleet-worker URL`: serves the built-in tasks on a pool of `threads` threads, holding up
/// to `prefetch` more jobs ready in the pool's queue, after printing `ready` for the parent,
/// until stdin closes.
pub(crate) fn work(url: &str, threads: usize, prefetch: usize) -> anyhow::Result<()> {
    // The worker's own I/O (Redis) needs little: the pool does the work.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fleet-worker")
        .enable_all()
        .build()?;
    let pool = Pool::builder().threads(threads).build()?;
    runtime.block_on(async {
        let worker = Worker::builder(pool.clone())
            .prefetch(prefetch)
            .task::<Thumbnail>("thumbnail")
            .task::<ReportTask>("report")
            .task::<PdfReportTask>("pdf_report")
            .connect(url, QUEUE)
            .await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Until the parent closes the pipe (or exits).
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            let _ = stop.send(());
        });
        let mut stdout = std::io::stdout();
        writeln!(stdout, "ready")?;
        stdout.flush()?;
        worker
            .run(async {
                let _ = stopped.await;
            })
            .await;
        pool.shutdown().await;
        anyhow::Ok(())
    })
}
