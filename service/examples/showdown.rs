//! The offload-vs-inline showdown: the same service and the same load, several ways.
//!
//! ```text
//! cargo run --release -p offload-service --example showdown
//! cargo run --release -p offload-service --example showdown -- --duration 20 --clients 16 --json
//! cargo run --release -p offload-service --example showdown -- --task mixed
//! cargo run --release -p offload-service --example showdown -- --overload --duration 3
//! cargo run --release -p offload-service --example showdown -- --modes offload,fleet
//! ```
//!
//! For each mode (`inline`: the work on the reactor thread, `blocking`: tokio's
//! `spawn_blocking`, `offload`: an offload pool) it starts the service in-process on an
//! ephemeral loopback port, has `--clients` concurrent clients post work for `--duration`
//! seconds while a prober calls `/healthz` every 5 ms, and prints responses/s, `/healthz`
//! latency, reactor lag and errors side by side. `--task` picks the work: `thumbnail` (the
//! bundled 1920x1280 photo to `/thumbnail`), `report` (a generated CSV to `/report`), `pdf`
//! (the same CSV to `/report.pdf`) or `mixed` (the three in turn).
//!
//! `fleet` (not in the default modes; needs `redis-server` on the PATH) starts a throwaway
//! Redis and a worker process with as many pool threads as `offload`'s pool, and the service
//! sends its tasks there (see `showdown/fleet.rs`).
//!
//! `--overload` runs the overload scenario instead (see `showdown/overload.rs`): it measures
//! capacity with a few clients, then offers multiples of it with a 500 ms request deadline.

// A command-line report: printing to stdout is its job.
#![allow(clippy::print_stdout)]

#[path = "showdown/expect.rs"]
mod expect;
#[path = "showdown/fleet.rs"]
mod fleet;
#[path = "showdown/overload.rs"]
mod overload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use indicatif::{ProgressBar, ProgressStyle};
use offload_service::{AppState, Config, Mode, REQUEST_TIMEOUT_HEADER};

const PHOTO: &[u8] = include_bytes!("../tests/fixtures/seeding_1920x1280.jpg");
const PROBE_EVERY: Duration = Duration::from_millis(5);
/// Rows of the generated CSV that `report` and `pdf` post.
const REPORT_ROWS: usize = 20_000;

/// The load generator's HTTP client.
type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[derive(Debug, Parser)]
#[command(about = "offload vs inline vs spawn_blocking under the same load")]
struct Args {
    /// Seconds of load per mode (per mode and load in `--overload`).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Concurrent clients posting work (`--overload`: the clients that measure capacity).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Server runtime worker threads (and offload pool threads). Default: one per CPU.
    #[arg(long)]
    threads: Option<usize>,
    /// Modes to run, in order (without `--overload`).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "inline,blocking,offload"
    )]
    modes: Vec<Contender>,
    /// The work each request asks for.
    #[arg(long, value_enum, default_value = "thumbnail")]
    task: Work,
    /// Run the overload scenario: capacity, then multiples of it with a request deadline.
    #[arg(long)]
    overload: bool,
    /// Soak: capacity, then the first of `--loads` on `offload-deadline` for `--duration`
    /// seconds on one server; checks RSS drift and that the counters reconcile (exit 1 if
    /// not). See `service/scripts/soak.sh`.
    #[arg(long, conflicts_with = "overload")]
    soak: bool,
    /// `--overload`: the offered loads, as multiples of the measured capacity.
    #[arg(long, value_delimiter = ',', default_value = "1,3,10")]
    loads: Vec<f64>,
    /// `--overload`: the servers to compare, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "inline,blocking,offload-queue,offload-deadline"
    )]
    servers: Vec<overload::Server>,
    /// `--overload`, `--soak`: seconds of the capacity measurement. Default: `--duration`.
    #[arg(long)]
    capacity_seconds: Option<f64>,
    /// `--overload`: each request's deadline in milliseconds (`x-request-timeout-ms`).
    #[arg(long, default_value_t = 500)]
    deadline_ms: u64,
    /// `--overload`, `--soak`: post the work as curl does a large upload, with
    /// `Expect: 100-continue`, sending the body only once the server asks for it (hyper's
    /// client, the default, sends it at once).
    #[arg(long)]
    expect_continue: bool,
    /// `--overload`, `--soak`: the servers' `Config::drain_refused`, in KiB (the largest
    /// refused body read and thrown away to keep its connection; 0 closes). Default: the
    /// service's.
    #[arg(long)]
    drain_refused_kb: Option<usize>,
    /// `--overload`, `--soak`: the offload servers' bound on queued request bodies
    /// (`Config::queue_bytes`), in MiB. Default: none (the library's default; the service
    /// binary's `--queue-mb` is 256).
    #[arg(long)]
    queue_mb: Option<u64>,
    /// `fleet`: the showdown's Redis `appendfsync` policy. `always` flushes the append-only
    /// file to disk before each write is acknowledged (a Redis crash loses nothing it
    /// answered); `everysec`, Redis's default for AOF, flushes once a second (a crash of the
    /// machine can lose the last second; a restart of Redis loses nothing).
    #[arg(long, value_enum, default_value = "always")]
    redis_fsync: fleet::Fsync,
    /// `fleet`: jobs the worker holds ready in its pool's queue beyond one per thread
    /// (`WorkerBuilder::prefetch`), so a thread that ends a job starts the next without
    /// waiting for a round trip to Redis. Default: the thread count, as the local pool's
    /// queue holds work ready too; 0 takes a job only for a free thread.
    #[arg(long)]
    fleet_prefetch: Option<usize>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Internal (`--overload` runs each server in a child process with it): serve one
    /// overload server, print `listening ADDR`, and stop when stdin closes.
    #[arg(long, value_enum, hide = true)]
    serve: Option<overload::Server>,
    /// Internal (`fleet` runs its worker in a child process with it): serve the built-in
    /// tasks from the fleet at this Redis URL, print `ready`, and stop when stdin closes.
    #[arg(long, hide = true)]
    fleet_worker: Option<String>,
}

/// Where a mode runs the service's work: one of the service's [`Mode`]s, or a Redis fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Contender {
    /// On the reactor thread ([`Mode::Inline`]).
    Inline,
    /// On tokio's blocking pool ([`Mode::Blocking`]).
    Blocking,
    /// On an offload pool in the service ([`Mode::Offload`]).
    Offload,
    /// On a worker process through a Redis fleet (needs `redis-server` on the PATH).
    Fleet,
}

impl Contender {
    fn as_str(self) -> &'static str {
        match self {
            Contender::Inline => "inline",
            Contender::Blocking => "blocking",
            Contender::Offload => "offload",
            Contender::Fleet => "fleet",
        }
    }

    /// The service's mode when the work stays in its process; `None` for the fleet.
    fn local(self) -> Option<Mode> {
        match self {
            Contender::Inline => Some(Mode::Inline),
            Contender::Blocking => Some(Mode::Blocking),
            Contender::Offload => Some(Mode::Offload),
            Contender::Fleet => None,
        }
    }
}

/// What the load asks the service to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Work {
    /// `POST /thumbnail?w=256&h=256` of the bundled 1920x1280 JPEG.
    Thumbnail,
    /// `POST /report?period=week` of a generated CSV.
    Report,
    /// `POST /report.pdf?period=week` of the same CSV.
    Pdf,
    /// The three in turn.
    Mixed,
}

impl Work {
    fn as_str(self) -> &'static str {
        match self {
            Work::Thumbnail => "thumbnail",
            Work::Report => "report",
            Work::Pdf => "pdf",
            Work::Mixed => "mixed",
        }
    }
}

/// Builds the requests of one kind of work against one server.
#[derive(Clone, Debug)]
struct Requests {
    base: String,
    work: Work,
    csv: Bytes,
    deadline: Option<Duration>,
}

impl Requests {
    fn new(addr: SocketAddr, work: Work, deadline: Option<Duration>) -> Requests {
        Requests {
            base: format!("http://{addr}"),
            work,
            csv: transactions_csv(REPORT_ROWS),
            deadline,
        }
    }

    /// The `n`th request's path, media type and body (`mixed` takes turns by `n`).
    fn nth_parts(&self, n: u64) -> (&'static str, &'static str, Bytes) {
        let work = match self.work {
            Work::Mixed => [Work::Thumbnail, Work::Report, Work::Pdf][(n % 3) as usize],
            one => one,
        };
        match work {
            Work::Thumbnail | Work::Mixed => (
                "/thumbnail?w=256&h=256&q=80",
                "image/jpeg",
                Bytes::from_static(PHOTO),
            ),
            Work::Report => ("/report?period=week", "text/csv", self.csv.clone()),
            Work::Pdf => ("/report.pdf?period=week", "text/csv", self.csv.clone()),
        }
    }

    /// The `n`th request (`mixed` takes turns by `n`).
    fn nth(&self, n: u64) -> hyper::Request<Full<Bytes>> {
        let (path, content_type, body) = self.nth_parts(n);
        let mut request = hyper::Request::post(format!("{}{path}", self.base))
            .header("content-type", content_type);
        if let Some(deadline) = self.deadline {
            request = request.header(REQUEST_TIMEOUT_HEADER, deadline.as_millis().to_string());
        }
        request.body(Full::new(body)).expect("valid request")
    }

    fn healthz(&self) -> hyper::Request<Full<Bytes>> {
        hyper::Request::get(format!("{}/healthz", self.base))
            .body(Full::new(Bytes::new()))
            .expect("valid request")
    }
}

/// `rows` transactions over a year, 40 categories and 4 regions, always the same.
fn transactions_csv(rows: usize) -> Bytes {
    let mut csv = String::from("date,category,region,description,quantity,unit_price\n");
    let mut seed = 0x2545_f491_u64;
    for _ in 0..rows {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let r = seed >> 33;
        csv.push_str(&format!(
            "2024-{:02}-{:02},category-{},{},item {},{},{}.{:02}\n",
            r % 12 + 1,
            r % 28 + 1,
            r % 40,
            ["eu", "us", "apac", "latam"][(r % 4) as usize],
            r % 1000,
            r % 9 + 1,
            r % 200,
            r % 100
        ));
    }
    Bytes::from(csv)
}

#[derive(Debug, serde::Serialize)]
struct Outcome {
    mode: Contender,
    task: Work,
    responses: u64,
    responses_per_s: f64,
    healthz_p50_ms: f64,
    healthz_p99_ms: f64,
    healthz_max_ms: f64,
    healthz_samples: u64,
    reactor_lag_p99_ms: f64,
    errors: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.duration > 0.0, "--duration must be positive");
    anyhow::ensure!(args.clients > 0, "--clients must be positive");
    let threads = args.threads.unwrap_or_else(num_cpus::get).max(1);
    if let Some(server) = args.serve {
        return overload::serve(server, &args, threads);
    }
    if let Some(url) = &args.fleet_worker {
        return fleet::work(url, threads, args.fleet_prefetch.unwrap_or(threads));
    }
    if args.overload {
        return overload::main(&args, threads);
    }
    if args.soak {
        return overload::soak(&args, threads);
    }
    if args.modes.contains(&Contender::Fleet) {
        fleet::ensure_redis()?;
    }
    let duration = Duration::from_secs_f64(args.duration);
    let bar = progress_bar(duration * args.modes.len() as u32)?;
    let mut outcomes = Vec::new();
    for &mode in &args.modes {
        bar.set_prefix(mode.as_str());
        outcomes.push(run_mode(mode, &args, threads, &bar)?);
    }
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else {
        print_table(&outcomes, &args, threads);
    }
    Ok(())
}

/// A bar over `total` of load, in milliseconds.
fn progress_bar(total: Duration) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(total.as_millis() as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>16} [{bar:40}] {elapsed_precise} {msg}")
            .context("progress template")?
            .progress_chars("=> "),
    );
    Ok(bar)
}

/// The service in this process, on its own runtime and an ephemeral loopback port.
struct Running {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    fn start(config: Config, threads: usize) -> anyhow::Result<Running> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("server")
            .enable_all()
            .build()?;
        let (addr, stop, served) = runtime.block_on(async {
            // `connect` builds every configuration, a fleet's too.
            let state = AppState::connect(Config {
                threads: Some(threads),
                ..config
            })
            .await?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let served = tokio::spawn(offload_service::serve(listener, state.clone(), async {
                let _ = stopped.await;
            }));
            anyhow::Ok((addr, stop, served))
        })?;
        Ok(Running {
            runtime,
            addr,
            stop,
            served,
        })
    }

    /// Stops the server; `serve` returns once in-flight requests are answered and the pool
    /// has joined its threads.
    fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.runtime.block_on(self.served)??;
        Ok(())
    }
}

/// A runtime for the load: one thread, so the server keeps the rest of the machine.
fn load_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("load")
        .enable_all()
        .build()?)
}

/// Starts the server for `mode` (and a fleet for it), loads it with closed-loop clients, and
/// tears down; on an error too, as dropping a fleet kills it.
fn run_mode(
    mode: Contender,
    args: &Args,
    threads: usize,
    bar: &ProgressBar,
) -> anyhow::Result<Outcome> {
    let (config, fleet) = match mode.local() {
        Some(local) => (
            Config {
                mode: local,
                ..Config::default()
            },
            None,
        ),
        None => {
            let fleet = fleet::Fleet::start(
                threads,
                args.fleet_prefetch.unwrap_or(threads),
                args.redis_fsync,
            )?;
            (fleet.config(), Some(fleet))
        }
    };
    let server = Running::start(config, threads)?;
    // The lag monitor covers exactly the loaded period.
    let lag = server.runtime.block_on(async {
        offload::ReactorLag::with_settings(Duration::from_millis(10), Duration::from_secs(3600))
    });
    let duration = Duration::from_secs_f64(args.duration);
    let requests = Requests::new(server.addr, args.task, None);
    let client_rt = load_runtime()?;
    let load = client_rt.block_on(closed_loop(&requests, args.clients, duration, bar));
    let lag = lag.snapshot();
    server.stop()?;
    if let Some(fleet) = fleet {
        fleet.stop()?;
    }
    drop(client_rt);
    let load = load?;
    Ok(Outcome {
        mode,
        task: args.task,
        responses: load.responses,
        responses_per_s: load.responses as f64 / load.elapsed.as_secs_f64(),
        healthz_p50_ms: ms(load.healthz.value_at_quantile(0.50)),
        healthz_p99_ms: ms(load.healthz.value_at_quantile(0.99)),
        healthz_max_ms: ms(load.healthz.max()),
        healthz_samples: load.healthz.len(),
        reactor_lag_p99_ms: ms(lag.p99_ns),
        errors: load.errors,
    })
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// A latency histogram in nanoseconds, 1 µs to 10 minutes.
fn latencies() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1_000, 600_000_000_000, 3).expect("constant bounds")
}

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

struct Load {
    responses: u64,
    errors: u64,
    elapsed: Duration,
    healthz: Histogram<u64>,
}

/// `clients` clients each sending the next request as soon as the previous one is answered,
/// until `duration` has passed, while [`probe`] times `/healthz`.
async fn closed_loop(
    requests: &Requests,
    clients: usize,
    duration: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<Load> {
    let client = http_client();
    let responses = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;

    let mut workers = Vec::new();
    for _ in 0..clients {
        let (client, requests) = (client.clone(), requests.clone());
        let (responses, errors, sent) = (
            Arc::clone(&responses),
            Arc::clone(&errors),
            Arc::clone(&sent),
        );
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let request = requests.nth(sent.fetch_add(1, Ordering::Relaxed));
                match send(&client, request).await {
                    Ok(status) if status.is_success() => responses.fetch_add(1, Ordering::Relaxed),
                    _ => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let prober = tokio::spawn(probe(client.clone(), requests.clone(), deadline));
    let base = bar.position();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        bar.set_position(base + started.elapsed().min(duration).as_millis() as u64);
        bar.set_message(format!(
            "{} responses, {} errors",
            responses.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed)
        ));
    }
    for w in workers {
        w.await?;
    }
    let (healthz, probe_errors) = prober.await?;
    Ok(Load {
        responses: responses.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed) + probe_errors,
        elapsed: started.elapsed(),
        healthz,
    })
}

/// Times `GET /healthz` every [`PROBE_EVERY`] until `until`: the latencies, and how many
/// probes failed.
async fn probe(client: HttpClient, requests: Requests, until: Instant) -> (Histogram<u64>, u64) {
    let mut healthz = latencies();
    let mut errors = 0;
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < until {
        tick.tick().await;
        let sent = Instant::now();
        match send(&client, requests.healthz()).await {
            Ok(status) if status.is_success() => {
                healthz.saturating_record(sent.elapsed().as_nanos() as u64);
            }
            _ => errors += 1,
        }
    }
    (healthz, errors)
}

/// Sends a request and reads the whole body; the answer's status.
async fn send(
    client: &HttpClient,
    request: hyper::Request<Full<Bytes>>,
) -> anyhow::Result<hyper::StatusCode> {
    let response = client.request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    Ok(status)
}

fn print_table(outcomes: &[Outcome], args: &Args, threads: usize) {
    println!(
        "{} load: {} clients for {:.0} s per mode; server runtime and pool: {threads} threads; \
         /healthz probed every {} ms",
        args.task.as_str(),
        args.clients,
        args.duration,
        PROBE_EVERY.as_millis()
    );
    println!();
    println!(
        "| mode     | responses/s | /healthz p50 | /healthz p99 | /healthz max | reactor lag p99 | errors |"
    );
    println!(
        "|----------|------------:|-------------:|-------------:|-------------:|----------------:|-------:|"
    );
    for o in outcomes {
        println!(
            "| {:<8} | {:>11.1} | {:>9.2} ms | {:>9.2} ms | {:>9.2} ms | {:>12.2} ms | {:>6} |",
            o.mode.as_str(),
            o.responses_per_s,
            o.healthz_p50_ms,
            o.healthz_p99_ms,
            o.healthz_max_ms,
            o.reactor_lag_p99_ms,
            o.errors
        );
    }
    let find = |m: Contender| outcomes.iter().find(|o| o.mode == m);
    if let (Some(inline), Some(offload)) = (find(Contender::Inline), find(Contender::Offload)) {
        println!();
        println!(
            "offload vs inline: /healthz p99 {:.1}x lower, responses/s {:.2}x",
            inline.healthz_p99_ms / offload.healthz_p99_ms.max(1e-9),
            offload.responses_per_s / inline.responses_per_s.max(1e-9)
        );
    }
    if let (Some(offload), Some(fleet)) = (find(Contender::Offload), find(Contender::Fleet)) {
        println!();
        println!(
            "fleet (appendfsync {}, prefetch {}) vs offload: responses/s {:.2}x, /healthz p99 {:.2} vs {:.2} ms",
            args.redis_fsync.as_str(),
            args.fleet_prefetch.unwrap_or(threads),
            fleet.responses_per_s / offload.responses_per_s.max(1e-9),
            fleet.healthz_p99_ms,
            offload.healthz_p99_ms
        );
    }
}
