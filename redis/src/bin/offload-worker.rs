//! `offload-worker`: serves a Redis queue with offload-tasks' built-in tasks (`thumbnail`,
//! `report`, `pdf_report`) on an offload pool, until SIGINT or SIGTERM.
//!
//! ```text
//! cargo run --release -p offload-redis --bin offload-worker -- \
//!     --redis redis://127.0.0.1:6379/ --queue tasks --threads 4 --lease-ms 30000 [--prefetch 4]
//! ```

use std::time::Duration;

use clap::Parser;
use offload::Pool;
use offload_redis::Worker;
use offload_tasks::{PdfReportTask, ReportTask, Thumbnail};

/// Serve an offload queue on Redis with the built-in tasks.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Redis URL; credentials and TLS through it (`redis://user:pass@host:6379/0`,
    /// `rediss://` when built with the `tls` feature).
    #[arg(long)]
    redis: String,
    /// Queue name (every key carries it as a Cluster hash tag).
    #[arg(long, default_value = "offload")]
    queue: String,
    /// Worker threads, which is also how many jobs this worker holds at once (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Jobs held ready beyond one per thread, so a thread whose run ended starts the next
    /// at once instead of waiting out the round trip to Redis (0: none; 1 per thread suits
    /// thumbnails). A held job waits for this worker's threads even if another is idle.
    #[arg(long, default_value_t = 0)]
    prefetch: usize,
    /// The lease on a running job, renewed by heartbeats; a dead worker's jobs move on after it.
    #[arg(long, default_value_t = 30_000)]
    lease_ms: u64,
    /// Starts per job before it goes to the dead letters.
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut pool = Pool::builder();
    if args.threads > 0 {
        pool = pool.threads(args.threads);
    }
    let worker = Worker::builder(pool.build()?)
        .task::<Thumbnail>("thumbnail")
        .task::<ReportTask>("report")
        .task::<PdfReportTask>("pdf_report")
        .lease(Duration::from_millis(args.lease_ms.max(30)))
        .max_attempts(args.max_attempts.max(1))
        .prefetch(args.prefetch)
        .connect(&args.redis, &args.queue)
        .await?;
    eprintln!(
        "offload-worker {} serving queue `{}`",
        worker.consumer(),
        args.queue
    );
    worker.run(shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
