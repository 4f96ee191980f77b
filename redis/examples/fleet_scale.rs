//! Scaling out through one local Redis, as ratios measured in one run: two worker processes
//! of one thread each against one on 5 ms CPU tasks, and thumbnails of the 1920x1280 fixture
//! through the fleet against the local pool with the same number of threads, by a worker
//! without prefetch and by one holding a job ready per thread. Starts its own
//! `redis-server` and its worker processes (this program again).
//!
//! ```text
//! cargo run --release -p offload-redis --example fleet_scale -- [spin jobs] [thumbnails] [threads]
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use offload::{Pool, Runner, Task};
use offload_redis::{Fleet, Worker};
use offload_tasks::Thumbnail;
use serde::{Deserialize, Serialize};

/// Keeps a thread busy for `ms` milliseconds.
#[derive(Serialize, Deserialize)]
struct Spin {
    ms: u64,
}

impl Task for Spin {
    type Output = u64;
    fn run(self) -> u64 {
        let until = Instant::now() + Duration::from_millis(self.ms);
        let mut n = 0u64;
        while Instant::now() < until {
            n = std::hint::black_box(n.wrapping_add(1));
        }
        n
    }
    fn name(&self) -> &'static str {
        "spin"
    }
}

/// Set in a worker process: `<redis url> <queue> <threads> <prefetch>`.
const WORKER_ENV: &str = "FLEET_SCALE_WORKER";
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tasks/tests/fixtures/images/seeding_1920x1280.jpg"
);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Runtime::new()?;
    match std::env::var(WORKER_ENV) {
        Ok(spec) => runtime.block_on(serve(&spec)),
        Err(_) => runtime.block_on(measure()),
    }
}

/// The worker process: serves `spin` and `thumbnail` until killed.
async fn serve(spec: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut parts = spec.split(' ');
    let (Some(url), Some(queue), Some(threads), Some(prefetch)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("{WORKER_ENV} must be `<url> <queue> <threads> <prefetch>`").into());
    };
    let pool = Pool::builder().threads(threads.parse()?).build()?;
    let worker = Worker::builder(pool)
        .task::<Spin>("spin")
        .task::<Thumbnail>("thumbnail")
        .prefetch(prefetch.parse()?)
        .connect(url, queue)
        .await?;
    #[allow(clippy::print_stdout)]
    {
        println!("ready");
    }
    worker.run(std::future::pending()).await;
    Ok(())
}

/// A worker process, killed when dropped.
struct WorkerProcess(Child);

impl WorkerProcess {
    fn start(
        url: &str,
        queue: &str,
        threads: usize,
        prefetch: usize,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(WORKER_ENV, format!("{url} {queue} {threads} {prefetch}"))
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let process = WorkerProcess(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            return Err("the worker process did not start".into());
        }
        Ok(process)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `jobs` tasks made by `make`, `callers` at a time, and returns the elapsed time.
async fn drive<R, T>(
    runner: &R,
    jobs: usize,
    callers: usize,
    make: impl Fn() -> T + Clone + Send + 'static,
) -> Result<Duration, offload::Error>
where
    R: Runner + Clone + Send + Sync + 'static,
    T: offload::Portable,
{
    let started = Instant::now();
    let per = jobs.div_ceil(callers);
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (runner, make) = (runner.clone(), make.clone());
            tokio::spawn(async move {
                for _ in 0..per {
                    runner.run_with(make(), offload::RunOptions::new()).await?;
                }
                Ok::<(), offload::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|_| offload::Error::Closed)??;
    }
    Ok(started.elapsed())
}

async fn measure() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let spins: usize = args.next().map_or(Ok(400), |s| s.parse())?;
    let thumbs: usize = args.next().map_or(Ok(60), |s| s.parse())?;
    let threads: usize = args.next().map_or(Ok(2), |s| s.parse())?;
    let Some(redis) = offload_test_redis::RedisServer::start() else {
        return Err("redis-server is not installed".into());
    };
    let url = redis.url();

    // 5 ms CPU tasks: one worker process of one thread, then two; twice each, alternating.
    let fleet = Fleet::connect(&url, "spin").await?;
    let spin = || Spin { ms: 5 };
    let mut one = Duration::ZERO;
    let mut two = Duration::ZERO;
    for round in 0..4 {
        let workers = if round % 3 == 0 { 1 } else { 2 };
        let processes = (0..workers)
            .map(|_| WorkerProcess::start(&url, "spin", 1, 0))
            .collect::<Result<Vec<_>, _>>()?;
        drive(&fleet, 20, 4, spin).await?; // warm up
        let took = drive(&fleet, spins, 8, spin).await?;
        drop(processes);
        *(if workers == 1 { &mut one } else { &mut two }) += took;
    }
    report(
        "5 ms tasks",
        2 * spins,
        ("one worker process", one),
        ("two", two),
    );

    // Thumbnails: the local pool against one worker process, `threads` threads each,
    // without prefetch and with one job held ready per thread (each on its own queue).
    let photo = std::fs::read(FIXTURE)?;
    let thumbnail = move || Thumbnail::fit(photo.clone(), 320, 320);
    let pool = Pool::builder().threads(threads).build()?;
    let plain = Fleet::connect(&url, "thumbs").await?;
    let ahead = Fleet::connect(&url, "thumbs-ahead").await?;
    let _workers = (
        WorkerProcess::start(&url, "thumbs", threads, 0)?,
        WorkerProcess::start(&url, "thumbs-ahead", threads, threads)?,
    );
    let callers = threads * 2;
    drive(&pool, threads * 2, callers, thumbnail.clone()).await?;
    drive(&plain, threads * 2, callers, thumbnail.clone()).await?;
    drive(&ahead, threads * 2, callers, thumbnail.clone()).await?;
    let mut local = Duration::ZERO;
    let mut remote = Duration::ZERO;
    let mut prefetched = Duration::ZERO;
    for _ in 0..2 {
        local += drive(&pool, thumbs, callers, thumbnail.clone()).await?;
        remote += drive(&plain, thumbs, callers, thumbnail.clone()).await?;
        prefetched += drive(&ahead, thumbs, callers, thumbnail.clone()).await?;
    }
    let what = format!("thumbnails 1920x1280 -> 320, {threads} threads");
    report(&what, 2 * thumbs, ("local pool", local), ("fleet", remote));
    report(
        &what,
        2 * thumbs,
        ("local pool", local),
        ("fleet with prefetch", prefetched),
    );
    Ok(())
}

/// Prints both rates of `jobs` jobs and the second's speed relative to the first.
fn report(what: &str, jobs: usize, base: (&str, Duration), other: (&str, Duration)) {
    let rate = |d: Duration| jobs as f64 / d.as_secs_f64();
    eprintln!(
        "{what}: {} {:.1}/s, {} {:.1}/s: {:.2}x",
        base.0,
        rate(base.1),
        other.0,
        rate(other.1),
        base.1.as_secs_f64() / other.1.as_secs_f64()
    );
}
