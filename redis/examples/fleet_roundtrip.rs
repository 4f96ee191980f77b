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
    let cpu_before = (process_cpu(), redis_cpu(redis.port()));
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
    // CPU per round trip: what the machine's load does not change much.
    let client_us = (process_cpu() - cpu_before.0) * 1e6 / total as f64;
    let redis_us = (redis_cpu(redis.port()) - cpu_before.1) * 1e6 / total as f64;
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
         1 caller p50 {:?} p99 {:?} ({} calls); CPU per round trip (32 callers): \
         caller and worker {client_us:.0} µs, redis-server {redis_us:.0} µs",
        at(0.5),
        at(0.99),
        latencies.len()
    );
    let _ = stop.send(());
    serving.await?;
    Ok(())
}

/// This process's CPU time (user + system) in seconds, from `/proc/self/stat`.
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are the 12th
    // and 13th, in clock ticks (100 a second on Linux).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    fields.iter().sum::<f64>() / 100.0
}

/// The Redis server's CPU time (user + system) in seconds, from `INFO cpu`.
fn redis_cpu(port: u16) -> f64 {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "INFO", "cpu"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| {
            l.strip_prefix("used_cpu_sys:")
                .or_else(|| l.strip_prefix("used_cpu_user:"))
        })
        .map(|v| v.trim().parse::<f64>().unwrap_or(0.0))
        .sum()
}
