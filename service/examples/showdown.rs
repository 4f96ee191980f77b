//! The offload-vs-inline showdown: the same service and the same load, three ways.
//!
//! ```text
//! cargo run --release -p offload-service --example showdown
//! cargo run --release -p offload-service --example showdown -- --duration 20 --clients 16 --json
//! ```
//!
//! For each mode (`inline`: thumbnails on the reactor thread, `blocking`: tokio's
//! `spawn_blocking`, `offload`: an offload pool) it starts the service in-process on an
//! ephemeral loopback port, has `--clients` concurrent clients post the bundled photo to
//! `/thumbnail` for `--duration` seconds while a prober calls `/healthz` every 5 ms, and
//! prints thumbnails/s, `/healthz` latency, reactor lag and errors side by side.

// A command-line report: printing to stdout is its job.
#![allow(clippy::print_stdout)]

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
use offload_service::{AppState, Config, Mode};

const PHOTO: &[u8] = include_bytes!("../tests/fixtures/seeding_1920x1280.jpg");
const PROBE_EVERY: Duration = Duration::from_millis(5);

#[derive(Debug, Parser)]
#[command(about = "offload vs inline vs spawn_blocking under the same thumbnail load")]
struct Args {
    /// Seconds of load per mode.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Concurrent clients posting photos.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Server runtime worker threads (and offload pool threads). Default: one per CPU.
    #[arg(long)]
    threads: Option<usize>,
    /// Modes to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "inline,blocking,offload"
    )]
    modes: Vec<Mode>,
    /// Print a JSON array instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, serde::Serialize)]
struct Outcome {
    mode: Mode,
    thumbnails: u64,
    thumbnails_per_s: f64,
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
    let duration = Duration::from_secs_f64(args.duration);
    let bar = ProgressBar::new((duration.as_millis() as u64) * args.modes.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:40}] {elapsed_precise} {msg}")
            .context("progress template")?
            .progress_chars("=> "),
    );
    let mut outcomes = Vec::new();
    for &mode in &args.modes {
        bar.set_prefix(mode.as_str());
        outcomes.push(run_mode(mode, threads, args.clients, duration, &bar)?);
    }
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else {
        print_table(&outcomes, threads, args.clients, duration);
    }
    Ok(())
}

/// Starts the server for `mode` on its own runtime, loads it from another, and tears down.
fn run_mode(
    mode: Mode,
    threads: usize,
    clients: usize,
    duration: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<Outcome> {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("server")
        .enable_all()
        .build()?;
    let state = AppState::new(Config {
        mode,
        threads: Some(threads),
        queue: None,
        ..Config::default()
    })?;
    let (addr, stop, served) = server_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(offload_service::serve(listener, state, async {
            let _ = stopped.await;
        }));
        anyhow::Ok((addr, stop, served))
    })?;
    // The lag monitor covers exactly the loaded period.
    let lag = server_rt.block_on(async {
        offload::ReactorLag::with_settings(Duration::from_millis(10), Duration::from_secs(3600))
    });

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("load")
        .enable_all()
        .build()?;
    let load = client_rt.block_on(drive(addr, clients, duration, bar));
    let lag = lag.snapshot();
    let _ = stop.send(());
    // `serve` returns once in-flight requests are answered and the pool has joined its threads.
    server_rt.block_on(served)??;
    drop(client_rt);
    drop(server_rt);
    let load = load?;
    let ms = |ns: u64| ns as f64 / 1e6;
    Ok(Outcome {
        mode,
        thumbnails: load.thumbnails,
        thumbnails_per_s: load.thumbnails as f64 / load.elapsed.as_secs_f64(),
        healthz_p50_ms: ms(load.healthz.value_at_quantile(0.50)),
        healthz_p99_ms: ms(load.healthz.value_at_quantile(0.99)),
        healthz_max_ms: ms(load.healthz.max()),
        healthz_samples: load.healthz.len(),
        reactor_lag_p99_ms: ms(lag.p99_ns),
        errors: load.errors,
    })
}

struct Load {
    thumbnails: u64,
    errors: u64,
    elapsed: Duration,
    healthz: Histogram<u64>,
}

async fn drive(
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<Load> {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let thumbnails = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let thumb_url: hyper::Uri = format!("http://{addr}/thumbnail?w=256&h=256&q=80").parse()?;
    let health_url: hyper::Uri = format!("http://{addr}/healthz").parse()?;

    let mut workers = Vec::new();
    for _ in 0..clients {
        let (client, url) = (client.clone(), thumb_url.clone());
        let (thumbnails, errors) = (Arc::clone(&thumbnails), Arc::clone(&errors));
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let request = hyper::Request::post(url.clone())
                    .header("content-type", "image/jpeg")
                    .body(Full::new(Bytes::from_static(PHOTO)))
                    .expect("valid request");
                match send(&client, request).await {
                    Ok(true) => thumbnails.fetch_add(1, Ordering::Relaxed),
                    _ => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let prober = {
        let (client, url, errors) = (client.clone(), health_url, Arc::clone(&errors));
        tokio::spawn(async move {
            let mut healthz = Histogram::<u64>::new_with_bounds(1_000, 600_000_000_000, 3)
                .expect("constant bounds");
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while Instant::now() < deadline {
                tick.tick().await;
                let request = hyper::Request::get(url.clone())
                    .body(Full::new(Bytes::new()))
                    .expect("valid request");
                let sent = Instant::now();
                match send(&client, request).await {
                    Ok(true) => {
                        healthz.saturating_record(sent.elapsed().as_nanos() as u64);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            healthz
        })
    };
    let base = bar.position();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        bar.set_position(base + started.elapsed().min(duration).as_millis() as u64);
        bar.set_message(format!(
            "{} thumbnails, {} errors",
            thumbnails.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed)
        ));
    }
    for w in workers {
        w.await?;
    }
    let healthz = prober.await?;
    Ok(Load {
        thumbnails: thumbnails.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        healthz,
    })
}

/// Sends a request and reads the whole body; `Ok(true)` for a 2xx answer.
async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
) -> anyhow::Result<bool> {
    let response = client.request(request).await?;
    let ok = response.status().is_success();
    response.into_body().collect().await?;
    Ok(ok)
}

fn print_table(outcomes: &[Outcome], threads: usize, clients: usize, duration: Duration) {
    println!(
        "thumbnail load: {clients} clients posting a {} KB 1920x1280 JPEG for {:.0} s per mode; \
         server runtime and pool: {threads} threads; /healthz probed every {} ms",
        PHOTO.len() / 1024,
        duration.as_secs_f64(),
        PROBE_EVERY.as_millis()
    );
    println!();
    println!(
        "| mode     | thumbnails/s | /healthz p50 | /healthz p99 | /healthz max | reactor lag p99 | errors |"
    );
    println!(
        "|----------|-------------:|-------------:|-------------:|-------------:|----------------:|-------:|"
    );
    for o in outcomes {
        println!(
            "| {:<8} | {:>12.1} | {:>9.2} ms | {:>9.2} ms | {:>9.2} ms | {:>12.2} ms | {:>6} |",
            o.mode.as_str(),
            o.thumbnails_per_s,
            o.healthz_p50_ms,
            o.healthz_p99_ms,
            o.healthz_max_ms,
            o.reactor_lag_p99_ms,
            o.errors
        );
    }
    let find = |m: Mode| outcomes.iter().find(|o| o.mode == m);
    if let (Some(inline), Some(offload)) = (find(Mode::Inline), find(Mode::Offload)) {
        println!();
        println!(
            "offload vs inline: /healthz p99 {:.1}x lower, thumbnails/s {:.2}x",
            inline.healthz_p99_ms / offload.healthz_p99_ms.max(1e-9),
            offload.thumbnails_per_s / inline.thumbnails_per_s.max(1e-9)
        );
    }
}
