//! What one service instance is: where the CPU work runs, how big the pool is, the limits;
//! and the binary's command line that fills it in.

use std::net::SocketAddr;
use std::time::Duration;

/// The largest request body by default: 32 MiB.
const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;
/// Requests slower than this log a warning by default.
const DEFAULT_SLOW_MS: u64 = 2_000;
/// A request's time from its head to its response by default: 10 s.
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Time to send a complete request head, or between requests on a kept-alive connection.
const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
/// Time to send a whole request body.
const DEFAULT_BODY_TIMEOUT_MS: u64 = 10_000;
/// Open connections beyond which new ones are refused.
const DEFAULT_MAX_CONNECTIONS: usize = 4_096;
/// Time the server gives in-flight requests and queued tasks after a shutdown signal.
const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 30_000;
/// The largest refused body read and thrown away to keep its connection, by default: 1 MiB,
/// the size from which curl asks `Expect: 100-continue` (a client sending more without it
/// is closed on instead).
const DEFAULT_DRAIN_REFUSED: usize = 1 << 20;
/// A connection's read buffer at most: hyper's default lets it grow to about 400 KiB while
/// a large body streams in, which hundreds of connections uploading at once turn into
/// hundreds of MB (measured: see [`Config::read_buffer`]).
const DEFAULT_READ_BUFFER: usize = 16 << 10;
/// The smallest read buffer hyper accepts.
pub(crate) const MIN_READ_BUFFER: usize = 8 << 10;
/// The binary's bound on queued input, in MiB (see `Cli::queue_mb` for why).
const DEFAULT_QUEUE_MB: u64 = 256;
/// The binary's result cache by default, in MiB (see `Cli::cache_mb` for why).
const DEFAULT_CACHE_MB: u64 = 64;
/// How long a cached result is served by default: 10 minutes.
const DEFAULT_CACHE_TTL_MS: u64 = 600_000;
/// The fleet's queue by default: the `offload-worker` binary's default too.
const DEFAULT_QUEUE: &str = "offload";

/// Where the CPU work runs: the comparison the showdown makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// On the offload pool (a full queue, or a task that cannot finish by its deadline, is a
    /// 503).
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
    /// The pool's bound on queued input in bytes (offload mode): the request bodies of the
    /// tasks waiting for a thread, whatever their count. A request whose declared
    /// `Content-Length` would not fit is refused (503) before its body is read. Default
    /// (`None`): no bound beyond [`queue`](Config::queue); the binary's `--queue-mb`
    /// defaults to 256 MiB.
    pub queue_bytes: Option<u64>,
    /// Largest request body in bytes; larger ones get 413. Default: 32 MiB.
    pub max_body: usize,
    /// Requests slower than this log a warning instead of an info line. Default: 2 s.
    pub slow_request: Duration,
    /// A request's deadline, counted from the arrival of its head: reading the body, waiting
    /// for the pool and running the task all count. A client can shorten it for one request
    /// with the `x-request-timeout-ms` header, never lengthen it. Past the deadline the
    /// answer is a 504; a task the pool cannot fit before it is refused with a 503. Default:
    /// 10 s.
    pub request_timeout: Duration,
    /// Whether tasks get the request's deadline (and requests time out with a 504). `false`
    /// serves the way the service did before deadlines existed: a request waits as long as
    /// its task takes, and only a full queue is refused. For comparisons (the showdown's
    /// plain-queue row); default: `true`.
    pub deadlines: bool,
    /// Time a connection has to send a complete request head, from when it opens or from the
    /// end of its previous response. The same hyper timer is the keep-alive idle timeout: an
    /// idle connection is closed when it passes. Default: 10 s.
    pub header_timeout: Duration,
    /// Time a client has to send a whole request body once its head has arrived (within
    /// the request's deadline too); past it the answer is a 408 and the connection closes.
    /// Default: 10 s.
    pub body_timeout: Duration,
    /// A request refused before its body was read (the pool would not take its task) whose declared body is at most this many bytes has it read and thrown away (for
    /// at most a second) so the connection stays open for the client's next request; a larger
    /// or chunked body, or one the client holds back for `100 Continue`, is not read, and the
    /// connection closes after the 503. 0 closes every such connection. Default: 1 MiB.
    pub drain_refused: usize,
    /// Open connections at most; a connection beyond it gets a 503 (`too many connections`)
    /// and is closed. Default: 4096.
    pub max_connections: usize,
    /// The most a connection buffers of what it reads, in bytes (hyper's `max_buf_size`;
    /// values under 8 KiB count as 8 KiB). A request body streams through it in pieces of
    /// at most this size, so it bounds the memory of each connection whatever its upload:
    /// with hyper's default (about 400 KiB) the showdown's overload scenario at 10x peaked
    /// at 197-320 MB, with 16 KiB at 73-90 MB, at the same goodput and the same closed-loop
    /// throughput. Default: 16 KiB.
    pub read_buffer: usize,
    /// After a shutdown signal: time for in-flight requests and the pool's accepted tasks to
    /// finish. When it passes, the remaining connections are dropped and `serve` returns
    /// without waiting for the pool's threads. Default: 30 s.
    pub shutdown_timeout: Duration,
    /// The result cache's bound in bytes (serialised results); 0 turns the cache off. With
    /// a cache, identical requests to `/thumbnail`, `/report` and `/report.pdf` run once
    /// while their result lives (concurrent ones wait for the one run), and responses carry
    /// `x-cache`, `ETag` and `Cache-Control`. Default: 0, so that programs that build a
    /// `Config` (the showdown, load tests) measure the work itself; the binary's
    /// `--cache-mb` defaults to 64 MiB.
    pub cache_bytes: u64,
    /// How long a cached result is served, locally and in the shared tier; also the
    /// responses' `Cache-Control: max-age`. Default: 10 minutes.
    pub cache_ttl: Duration,
    /// The cache's shared tier: a Redis URL that replicas share results through
    /// (cache-aside: read on a local miss, write what was computed, with the TTL). A Redis
    /// that is down degrades to the local cache, never to failed requests. Needs
    /// [`cache_secret`](Config::cache_secret) and a cache (`cache_bytes > 0`). Default: none.
    pub cache_redis: Option<String>,
    /// The passphrase the cache keys are derived from (a keyed BLAKE3 hash, so clients
    /// cannot forge colliding keys). Replicas sharing [`cache_redis`](Config::cache_redis)
    /// must use the same one. Default: none, a random secret per process (fine without a
    /// shared tier).
    pub cache_secret: Option<String>,
    /// Run tasks on a Redis fleet at this URL (`offload_redis::Fleet`) instead of the local
    /// pool; workers (`offload-worker`) serve [`redis_queue`](Config::redis_queue). Only in
    /// [`Mode::Offload`]; needs [`AppState::connect`](crate::AppState::connect). Default:
    /// none, the local pool.
    pub redis: Option<String>,
    /// The fleet's queue name. Default: `offload`, as `offload-worker`'s.
    pub redis_queue: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Offload,
            threads: None,
            queue: None,
            queue_bytes: None,
            max_body: DEFAULT_MAX_BODY,
            slow_request: Duration::from_millis(DEFAULT_SLOW_MS),
            request_timeout: Duration::from_millis(DEFAULT_REQUEST_TIMEOUT_MS),
            deadlines: true,
            header_timeout: Duration::from_millis(DEFAULT_HEADER_TIMEOUT_MS),
            body_timeout: Duration::from_millis(DEFAULT_BODY_TIMEOUT_MS),
            drain_refused: DEFAULT_DRAIN_REFUSED,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            read_buffer: DEFAULT_READ_BUFFER,
            shutdown_timeout: Duration::from_millis(DEFAULT_SHUTDOWN_TIMEOUT_MS),
            cache_bytes: 0,
            cache_ttl: Duration::from_millis(DEFAULT_CACHE_TTL_MS),
            cache_redis: None,
            cache_secret: None,
            redis: None,
            redis_queue: DEFAULT_QUEUE.to_owned(),
        }
    }
}

impl Config {
    /// This config with tasks sent to the Redis fleet at `url`, queue `queue` (build the
    /// state with [`AppState::connect`](crate::AppState::connect)).
    ///
    /// ```
    /// use offload_service::Config;
    ///
    /// let config = Config::default().fleet("redis://127.0.0.1:6379/", "thumbs");
    /// assert_eq!(config.redis.as_deref(), Some("redis://127.0.0.1:6379/"));
    /// ```
    #[must_use]
    pub fn fleet(self, url: impl Into<String>, queue: impl Into<String>) -> Config {
        Config {
            redis: Some(url.into()),
            redis_queue: queue.into(),
            ..self
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
    /// Pool bound on queued request bodies, in MiB (offload mode); 0: none. Default 256: far
    /// more than a deadline lets queue (a few seconds of work), and it caps what 128 queued
    /// 32 MiB uploads per thread could otherwise hold.
    #[arg(long, default_value_t = DEFAULT_QUEUE_MB)]
    pub queue_mb: u64,
    /// Address to listen on; port 0 picks a free one (the `listening` log line names it).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY)]
    pub max_body: usize,
    /// Requests slower than this many milliseconds log a warning.
    #[arg(long, default_value_t = DEFAULT_SLOW_MS)]
    pub slow_ms: u64,
    /// A request's deadline in milliseconds (`x-request-timeout-ms` can shorten it).
    #[arg(long, default_value_t = DEFAULT_REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: u64,
    /// Serve without deadlines: requests wait for their tasks however long they take.
    #[arg(long)]
    pub no_deadlines: bool,
    /// Milliseconds a connection has to send a request head (also the keep-alive idle
    /// timeout).
    #[arg(long, default_value_t = DEFAULT_HEADER_TIMEOUT_MS)]
    pub header_timeout_ms: u64,
    /// Milliseconds a client has to send a request body.
    #[arg(long, default_value_t = DEFAULT_BODY_TIMEOUT_MS)]
    pub body_timeout_ms: u64,
    /// Largest refused body, in KiB, read and thrown away to keep the connection open (larger
    /// ones, and bodies held back for `100 Continue`, close it).
    #[arg(long, default_value_t = DEFAULT_DRAIN_REFUSED / 1024)]
    pub drain_refused_kb: usize,
    /// Open connections at most; more are answered 503 and closed.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// A connection's read buffer at most, in KiB (at least 8): bounds each connection's
    /// memory while bodies stream in.
    #[arg(long, default_value_t = DEFAULT_READ_BUFFER / 1024)]
    pub read_buffer_kb: usize,
    /// Milliseconds to finish in-flight work after SIGTERM before exiting anyway.
    #[arg(long, default_value_t = DEFAULT_SHUTDOWN_TIMEOUT_MS)]
    pub shutdown_timeout_ms: u64,
    /// Result cache size in MiB; 0 turns it off. Default 64: about 2,500 256-pixel JPEG
    /// thumbnails (~25 KB each), small beside the memory of a few 32 MiB request bodies in
    /// flight, and the repeated requests a thumbnail service sees (the same avatar on every
    /// page) are mostly a small hot set.
    #[arg(long, default_value_t = DEFAULT_CACHE_MB)]
    pub cache_mb: u64,
    /// How long a cached result is served, in milliseconds (also `Cache-Control: max-age`).
    #[arg(long, default_value_t = DEFAULT_CACHE_TTL_MS)]
    pub cache_ttl_ms: u64,
    /// Share cached results with other replicas through this Redis (needs
    /// --cache-secret). A Redis that is down only costs the shared hits.
    #[arg(long)]
    pub cache_redis: Option<String>,
    /// Passphrase the cache keys derive from; the same on every replica sharing
    /// --cache-redis. Better passed through the environment than the command line.
    #[arg(long, env = "OFFLOAD_CACHE_SECRET", hide_env_values = true)]
    pub cache_secret: Option<String>,
    /// Run tasks on a Redis fleet of `offload-worker` processes at this URL instead of the
    /// local pool (offload mode only).
    #[arg(long)]
    pub redis: Option<String>,
    /// The fleet's queue name (the workers' --queue; this binary's --queue is the local
    /// pool's capacity).
    #[arg(long, default_value = DEFAULT_QUEUE)]
    pub redis_queue: String,
}

impl Cli {
    /// The service settings the command line asks for.
    pub fn config(&self) -> Config {
        Config {
            mode: self.mode,
            threads: self.threads,
            queue: self.queue,
            queue_bytes: (self.queue_mb > 0).then(|| self.queue_mb.saturating_mul(1 << 20)),
            max_body: self.max_body,
            slow_request: Duration::from_millis(self.slow_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            deadlines: !self.no_deadlines,
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            drain_refused: self.drain_refused_kb.saturating_mul(1024),
            max_connections: self.max_connections,
            read_buffer: self.read_buffer_kb.saturating_mul(1024),
            shutdown_timeout: Duration::from_millis(self.shutdown_timeout_ms),
            cache_bytes: self.cache_mb.saturating_mul(1 << 20),
            cache_ttl: Duration::from_millis(self.cache_ttl_ms),
            cache_redis: self.cache_redis.clone(),
            cache_secret: self.cache_secret.clone(),
            redis: self.redis.clone(),
            redis_queue: self.redis_queue.clone(),
        }
    }
}
