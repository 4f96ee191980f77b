//! The `offload-service` binary: the service on a TCP port, logging JSON lines to stdout.
//!
//! ```text
//! cargo run --release -p offload-service -- --mode offload --addr 127.0.0.1:3000
//! cargo run --release -p offload-service -- --help
//! ```
//!
//! `--mode inline` runs the same work on the reactor thread and `--mode blocking` on tokio's
//! `spawn_blocking` pool, for comparison. SIGINT or SIGTERM stops accepting, finishes
//! in-flight requests and pool tasks, and exits 0.

use std::error::Error;
use std::future::Future;

use clap::Parser as _;
use offload_service::{AppState, Cli, log_subscriber};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing::subscriber::set_global_default(log_subscriber(filter, std::io::stdout))?;
    // Before anything can take time: a signal from now on means "shut down", not "die".
    let shutdown = shutdown_signal()?;
    let state = AppState::connect(cli.config()).await?;
    state.pool().monitor_reactor();
    let listener = tokio::net::TcpListener::bind(cli.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, mode = cli.mode.as_str(), "listening");
    offload_service::serve(listener, state, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Installs the signal handlers now and resolves at the first SIGINT or SIGTERM.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!(signal = name, "shutting down");
    })
}

/// Resolves at the first Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!(signal = "ctrl-c", "shutting down");
    })
}
