//! What one service instance is: where the CPU work runs, how big the pool is, the limits;
//! and the binary's command line that fills it in.

use std::net::SocketAddr;
use std::time::Duration;

/// The largest request body by default: 32 MiB.
const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;
/// Requests slower than this log a warning by default.
const DEFAULT_SLOW_MS: u64 = 2_000;

/// Where the CPU work runs: the comparison the showdown makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// On the offload pool (`try_run`; a full queue is a 503).
    Offload,
    /// On the reactor thread, inside the handler (what offload replaces).
    Inline,
    /// On tokio's blocking pool (`spawn_blocking`, unbounded).
    Blocking,
}

impl Mode {
    /// The mode's name on the command line and in JSON: `offload`, `inline` or `blocking`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Offload => "offload",
            Mode::Inline => "inline",
            Mode::Blocking => "blocking",
        }
    }
}

/// Settings of one service instance.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the CPU work runs. Default: [`Mode::Offload`].
    pub mode: Mode,
    /// Pool threads in offload mode. Default (`None`): one per CPU.
    pub threads: Option<usize>,
    /// Pool queue capacity in offload mode. Default (`None`): 128 per thread.
    pub queue: Option<usize>,
    /// Largest request body in bytes; larger ones get 413. Default: 32 MiB.
    pub max_body: usize,
    /// Requests slower than this log a warning instead of an info line. Default: 2 s.
    pub slow_request: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Offload,
            threads: None,
            queue: None,
            max_body: DEFAULT_MAX_BODY,
            slow_request: Duration::from_millis(DEFAULT_SLOW_MS),
        }
    }
}

/// The command line of the `offload-service` binary.
#[derive(Debug, clap::Parser)]
#[command(
    name = "offload-service",
    about = "An axum service that offloads CPU-heavy work to an offload pool"
)]
pub struct Cli {
    /// Where the CPU work runs.
    #[arg(long, value_enum, default_value = "offload")]
    pub mode: Mode,
    /// Pool threads (offload mode). Default: one per CPU.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Pool queue capacity (offload mode). Default: 128 per thread.
    #[arg(long)]
    pub queue: Option<usize>,
    /// Address to listen on; port 0 picks a free one (the `listening` log line names it).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY)]
    pub max_body: usize,
    /// Requests slower than this many milliseconds log a warning.
    #[arg(long, default_value_t = DEFAULT_SLOW_MS)]
    pub slow_ms: u64,
}

impl Cli {
    /// The service settings the command line asks for.
    pub fn config(&self) -> Config {
        Config {
            mode: self.mode,
            threads: self.threads,
            queue: self.queue,
            max_body: self.max_body,
            slow_request: Duration::from_millis(self.slow_ms),
        }
    }
}
