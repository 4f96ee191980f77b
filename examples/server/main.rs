//! An axum service that offloads thumbnails, reports and PDF reports to an offload pool.
//!
//! ```text
//! cargo run --release --example server -- --mode offload --addr 127.0.0.1:3000
//! curl --data-binary @photo.jpg 'http://127.0.0.1:3000/thumbnail?w=256&h=256' -o thumb.jpg
//! curl --data-binary @rows.csv 'http://127.0.0.1:3000/report?period=week'
//! curl http://127.0.0.1:3000/metrics
//! ```
//!
//! `--mode inline` runs the same work on the reactor thread and `--mode blocking` on tokio's
//! `spawn_blocking` pool, for comparison. SIGINT or SIGTERM stops accepting, finishes
//! in-flight requests and pool tasks, and exits 0.

mod app;

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "An axum service that offloads CPU-heavy work to an offload pool")]
struct Args {
    /// Where the CPU work runs.
    #[arg(long, value_enum, default_value = "offload")]
    mode: app::Mode,
    /// Pool threads (offload mode). Default: one per CPU.
    #[arg(long)]
    threads: Option<usize>,
    /// Pool queue capacity (offload mode). Default: 128 per thread.
    #[arg(long)]
    queue: Option<usize>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    max_body: usize,
    /// Requests slower than this many milliseconds log a warning.
    #[arg(long, default_value_t = 2000)]
    slow_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let state = app::AppState::new(app::Config {
        mode: args.mode,
        threads: args.threads,
        queue: args.queue,
        max_body: args.max_body,
        slow_request: Duration::from_millis(args.slow_ms),
    })?;
    state.pool.monitor_reactor();
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, mode = ?args.mode, "listening");
    let pool = state.pool.clone();
    axum::serve(listener, app::app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // In-flight requests are done; let accepted pool tasks finish and join the threads.
    pool.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
