//! Round trips of empty tasks through one local Redis: throughput with 32 concurrent callers
//! and latency percentiles with one caller. Starts its own `redis-server` (AOF, `appendfsync`
//! as given) and an in-process worker.
//!
//! ```text
//! cargo run --release -p offload-redis --no-default-features --example fleet_roundtrip -- \
//!     [seconds] [everysec|always] [worker threads]
//! ```
//!
//! With `FLEET_COMMANDSTATS=1` it prints Redis's `INFO commandstats` after the throughput
//! phase (calls and µs per command: where the server's time went).

use std::time::{Duration, Instant};

use offload::{Pool, Task};
use offload_redis::{Fleet, Worker};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Empty;

impl Task for Empty {
    type Output = ();
    fn run(self) {}
    fn name(&self) -> &'static str {
        "empty"
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(Ok(3), |s| s.parse())?;
    let fsync = args.next().unwrap_or_else(|| "everysec".to_owned());
    let Some(redis) = offload_test_redis::RedisServer::start_with(&["--appendfsync", &fsync])
    else {
        return Err("redis-server is not installed".into());
    };
    let url = redis.url();
    let threads: usize = args.next().map_or(Ok(2), |s| s.parse())?;
    let pool = Pool::builder().threads(threads).build()?;
    let worker = Worker::builder(pool)
        .task::<Empty>("empty")
        .connect(&url, "bench")
        .await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    let fleet = Fleet::connect(&url, "bench").await?;
    // Warm up (scripts loaded, connections open).
    for _ in 0..200 {
        fleet.run(Empty).await?;
    }

    let window = Duration::from_secs(seconds);
    let started = Instant::now();
    let callers = (0..32).map(|_| {
        let fleet = fleet.clone();
        tokio::spawn(async move {
            let mut done = 0u64;
            while started.elapsed() < window {
                fleet.run(Empty).await?;
                done += 1;
            }
            Ok::<u64, offload::Error>(done)
        })
    });
    let mut total = 0;
    for caller in futures::future::join_all(callers).await {
        total += caller??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let throughput = total as f64 / elapsed;
    if std::env::var_os("FLEET_COMMANDSTATS").is_some() {
        // Where Redis spent its time in the throughput phase (warm-up included).
        let stats = std::process::Command::new("redis-cli")
            .args(["-p", &redis.port().to_string(), "INFO", "commandstats"])
            .output()?;
        eprintln!("{}", String::from_utf8_lossy(&stats.stdout));
    }

    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed() < window {
        let t = Instant::now();
        fleet.run(Empty).await?;
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    eprintln!(
        "appendfsync {fsync}, {threads} worker threads: 32 callers {throughput:.0} round trips/s ({total} in {elapsed:.1} s); \
         1 caller p50 {:?} p99 {:?} ({} calls)",
        at(0.5),
        at(0.99),
        latencies.len()
    );
    let _ = stop.send(());
    serving.await?;
    Ok(())
}
