//! The showdown's overload scenario: what each server does with more work than it can finish
//! in time.
//!
//! 1. Capacity: `--clients` closed-loop clients on the `offload-deadline` server for
//!    `--duration` seconds; capacity is its responses per second.
//! 2. For each server and each `--loads` multiple: requests arrive open-loop (evenly spaced,
//!    whatever the answers) at that multiple of capacity for `--duration` seconds, each with
//!    `x-request-timeout-ms: --deadline-ms`, while `/healthz` is probed every 5 ms.
//!
//! Per row: goodput (2xx answers within the deadline, per second of offered load), p99 of
//! the 2xx answers, p50 of the refusals (503), `/healthz` p99, and the peak RSS of the
//! server: each row's server runs in a child process (this executable with `--serve`), so
//! the figure is the server's own `VmHWM`, without the load generator or the rows before.
//! A request still unanswered at deadline + 2 s counts as an error; arrivals beyond 8192
//! outstanding requests are dropped (counted).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use hyper::StatusCode;
use offload_service::{Config, Mode};
use tokio::sync::Semaphore;

use super::expect::ExpectClient;
use super::{
    Args, HttpClient, Requests, Running, closed_loop, http_client, latencies, load_runtime, ms,
    probe, progress_bar, send,
};

/// How long past its deadline the load generator waits for an answer.
const GRACE: Duration = Duration::from_secs(2);
/// Outstanding requests at most; later arrivals are dropped and counted.
const MAX_OUTSTANDING: usize = 8192;

/// The servers the overload scenario compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Server {
    /// The work on the reactor thread (request deadlines on, but nothing can preempt).
    Inline,
    /// The work on `spawn_blocking` (request deadlines on: a late request gets its 504 while
    /// its work runs on).
    Blocking,
    /// An offload pool with a plain bounded queue and no deadlines: the service before
    /// deadlines, refusing only when the queue is full.
    OffloadQueue,
    /// An offload pool, each task given its request's deadline: refused with a 503 when the
    /// pool predicts it cannot finish in time, dropped from the queue when it passes.
    OffloadDeadline,
}

impl Server {
    fn as_str(self) -> &'static str {
        match self {
            Server::Inline => "inline",
            Server::Blocking => "blocking",
            Server::OffloadQueue => "offload-queue",
            Server::OffloadDeadline => "offload-deadline",
        }
    }

    /// The server's settings; `args` may change how refused bodies are drained.
    fn config(self, args: &Args) -> Config {
        let (mode, deadlines) = match self {
            Server::Inline => (Mode::Inline, true),
            Server::Blocking => (Mode::Blocking, true),
            Server::OffloadQueue => (Mode::Offload, false),
            Server::OffloadDeadline => (Mode::Offload, true),
        };
        let defaults = Config::default();
        Config {
            mode,
            deadlines,
            drain_refused: args
                .drain_refused_kb
                .map_or(defaults.drain_refused, |kb| kb * 1024),
            queue_bytes: args.queue_mb.map(|mb| mb << 20),
            ..defaults
        }
    }
}

/// One server at one offered load.
#[derive(Debug, serde::Serialize)]
struct Row {
    server: Server,
    load: f64,
    offered_per_s: f64,
    goodput_per_s: f64,
    goodput_vs_capacity: f64,
    #[serde(flatten)]
    counts: Counts,
    ok_p99_ms: f64,
    refusal_p50_ms: f64,
    healthz_p99_ms: f64,
    peak_rss_mb: Option<f64>,
}

#[derive(Debug, serde::Serialize)]
struct Report {
    task: super::Work,
    threads: usize,
    deadline_ms: u64,
    duration_s: f64,
    expect_continue: bool,
    queue_mb: Option<u64>,
    capacity_clients: usize,
    capacity_per_s: f64,
    rows: Vec<Row>,
}

pub(crate) fn main(args: &Args, threads: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.loads.iter().all(|l| *l > 0.0),
        "--loads must be positive"
    );
    let duration = Duration::from_secs_f64(args.duration);
    let runs = 1 + args.servers.len() * args.loads.len();
    let bar = progress_bar(duration * runs as u32)?;

    let capacity = measure_capacity(args, threads, &bar)?;

    let mut rows = Vec::new();
    for &server in &args.servers {
        for &multiple in &args.loads {
            bar.set_prefix(format!("{} {multiple}x", server.as_str()));
            let rate = capacity * multiple;
            let mut row = offer(server, args, threads, rate, &bar)?;
            row.load = multiple;
            row.goodput_vs_capacity = row.goodput_per_s / capacity;
            rows.push(row);
        }
    }
    bar.finish_and_clear();
    let report = Report {
        task: args.task,
        threads,
        deadline_ms: args.deadline_ms,
        duration_s: args.duration,
        expect_continue: args.expect_continue,
        queue_mb: args.queue_mb,
        capacity_clients: args.clients,
        capacity_per_s: capacity,
        rows,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Responses per second of `--clients` closed-loop clients on the `offload-deadline` server.
fn measure_capacity(
    args: &Args,
    threads: usize,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<f64> {
    bar.set_prefix("capacity");
    let duration = Duration::from_secs_f64(args.capacity_seconds.unwrap_or(args.duration));
    let deadline = Duration::from_millis(args.deadline_ms);
    let running = Running::start(Server::OffloadDeadline.config(args), threads)?;
    let requests = Requests::new(running.addr, args.task, Some(deadline));
    let load = load_runtime()?.block_on(closed_loop(&requests, args.clients, duration, bar));
    running.stop()?;
    let load = load?;
    let capacity = load.responses as f64 / load.elapsed.as_secs_f64();
    anyhow::ensure!(
        capacity > 0.0,
        "no request succeeded while measuring capacity"
    );
    Ok(capacity)
}

/// How many requests arrived and what became of them: each arrival ends in exactly one of
/// the other counts.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
struct Counts {
    arrivals: u64,
    /// 2xx within the deadline: the goodput.
    ok_in_time: u64,
    /// 2xx after the deadline.
    ok_late: u64,
    /// 503: refused (a full or overloaded pool, too many connections).
    refused: u64,
    /// 504: the deadline passed at the server.
    timed_out: u64,
    /// Another status, a connection error, or no answer by deadline + [`GRACE`].
    errors: u64,
    /// Never sent: [`MAX_OUTSTANDING`] requests were outstanding.
    dropped: u64,
}

/// What the answers to one row's requests were, and how long they took.
struct Tally {
    counts: Counts,
    ok: Histogram<u64>,
    refusals: Histogram<u64>,
}

impl Counts {
    /// Arrivals whose fate is known: every arrival once the run has ended.
    fn settled(&self) -> u64 {
        self.ok_in_time + self.ok_late + self.refused + self.timed_out + self.errors + self.dropped
    }

    /// Requests the server answered with a status.
    fn answered(&self) -> u64 {
        self.ok_in_time + self.ok_late + self.refused + self.timed_out
    }
}

impl Tally {
    fn new() -> Tally {
        Tally {
            counts: Counts::default(),
            ok: latencies(),
            refusals: latencies(),
        }
    }

    fn record(&mut self, answer: Option<StatusCode>, took: Duration, deadline: Duration) {
        let ns = took.as_nanos() as u64;
        let counts = &mut self.counts;
        match answer {
            Some(status) if status.is_success() => {
                self.ok.saturating_record(ns);
                if took <= deadline {
                    counts.ok_in_time += 1;
                } else {
                    counts.ok_late += 1;
                }
            }
            Some(StatusCode::SERVICE_UNAVAILABLE) => {
                self.refusals.saturating_record(ns);
                counts.refused += 1;
            }
            Some(StatusCode::GATEWAY_TIMEOUT) => counts.timed_out += 1,
            _ => counts.errors += 1,
        }
    }
}

/// Starts `server`, offers `rate` requests per second open-loop for `--duration`, and tears
/// down.
fn offer(
    server: Server,
    args: &Args,
    threads: usize,
    rate: f64,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Row> {
    let child = Child::start(server, args, threads)?;
    let duration = Duration::from_secs_f64(args.duration);
    let deadline = Duration::from_millis(args.deadline_ms);
    let requests = Requests::new(child.addr, args.task, Some(deadline));
    let client_rt = load_runtime()?;
    let expect = args.expect_continue.then(|| ExpectClient::new(child.addr));
    let (tally, healthz) = client_rt.block_on(open_loop(&requests, expect, rate, duration, bar));
    let peak_rss_mb = child.peak_rss_mb();
    child.stop()?;
    drop(client_rt);
    let seconds = duration.as_secs_f64();
    Ok(Row {
        server,
        load: 0.0,
        offered_per_s: rate,
        goodput_per_s: tally.counts.ok_in_time as f64 / seconds,
        goodput_vs_capacity: 0.0,
        counts: tally.counts,
        ok_p99_ms: ms(tally.ok.value_at_quantile(0.99)),
        refusal_p50_ms: ms(tally.refusals.value_at_quantile(0.50)),
        healthz_p99_ms: ms(healthz.value_at_quantile(0.99)),
        peak_rss_mb,
    })
}

/// One overload server in a child process: this executable, run with `--serve`.
struct Child {
    process: std::process::Child,
    addr: SocketAddr,
}

impl Child {
    /// Starts `server` with `threads` threads (and `args`' drain and queued-bytes settings)
    /// and waits for its address.
    fn start(server: Server, args: &Args, threads: usize) -> anyhow::Result<Child> {
        let threads = threads.to_string();
        let mut argv = vec!["--serve", server.as_str(), "--threads", &threads];
        let drain = args.drain_refused_kb.map(|kb| kb.to_string());
        if let Some(kb) = &drain {
            argv.extend(["--drain-refused-kb", kb]);
        }
        let queue_mb = args.queue_mb.map(|mb| mb.to_string());
        if let Some(mb) = &queue_mb {
            argv.extend(["--queue-mb", mb]);
        }
        let (mut process, line) = spawn_self(&argv, server.as_str())?;
        let addr = line
            .strip_prefix("listening ")
            .and_then(|a| a.trim().parse().ok());
        let Some(addr) = addr else {
            let _ = process.kill();
            let _ = process.wait();
            anyhow::bail!("the {} server did not start: {line:?}", server.as_str());
        };
        Ok(Child { process, addr })
    }

    /// The server's peak RSS so far, in MB (Linux; `None` elsewhere).
    fn peak_rss_mb(&self) -> Option<f64> {
        status_mb(&format!("/proc/{}/status", self.process.id()), "VmHWM:")
    }

    /// Closes the server's stdin, which stops it, and waits for it to exit.
    fn stop(mut self) -> anyhow::Result<()> {
        drop(self.process.stdin.take());
        let status = self.process.wait()?;
        anyhow::ensure!(status.success(), "the server exited with {status}");
        Ok(())
    }
}

/// Runs this executable with `args`, stdin and stdout piped, and reads the first line it
/// prints (how a child says it is ready); `what` names it in errors.
pub(crate) fn spawn_self(
    args: &[&str],
    what: &str,
) -> anyhow::Result<(std::process::Child, String)> {
    let mut process = Command::new(std::env::current_exe()?)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting the {what}"))?;
    let stdout = process.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    if let Err(e) = BufReader::new(stdout).read_line(&mut line) {
        let _ = process.kill();
        let _ = process.wait();
        return Err(e).with_context(|| format!("reading the {what}'s first line"));
    }
    Ok((process, line))
}

/// `--serve`: runs `server` until stdin closes, after printing `listening ADDR` for the
/// parent.
pub(crate) fn serve(server: Server, args: &Args, threads: usize) -> anyhow::Result<()> {
    let running = Running::start(server.config(args), threads)?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening {}", running.addr)?;
    stdout.flush()?;
    // Until the parent closes the pipe (or exits).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    running.stop()
}

/// Sends request `n` at `start + n / rate` for `duration`, each on its own task, whatever the
/// answers to the earlier ones, through `expect` if given (else hyper's client); waits for the
/// answers (at most deadline + [`GRACE`] each).
async fn open_loop(
    requests: &Requests,
    expect: Option<ExpectClient>,
    rate: f64,
    duration: Duration,
    bar: &indicatif::ProgressBar,
) -> (Tally, Histogram<u64>) {
    let client: HttpClient = http_client();
    let deadline = requests.deadline.unwrap_or(GRACE);
    let tally = Arc::new(Mutex::new(Tally::new()));
    let outstanding = Arc::new(Semaphore::new(MAX_OUTSTANDING));
    let started = Instant::now();
    let prober = tokio::spawn(probe(client.clone(), requests.clone(), started + duration));
    let base = bar.position();
    // Finished requests are reaped as the run goes: a `JoinHandle` kept until the end holds
    // its task's memory, which over a 10-minute soak is hundreds of megabytes.
    let mut answers = tokio::task::JoinSet::new();
    for n in 0u64.. {
        let at = started + Duration::from_secs_f64(n as f64 / rate);
        if at >= started + duration {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        if n % 64 == 0 {
            bar.set_position(base + started.elapsed().min(duration).as_millis() as u64);
        }
        tally.lock().expect("tally lock").counts.arrivals += 1;
        let Ok(slot) = Arc::clone(&outstanding).try_acquire_owned() else {
            tally.lock().expect("tally lock").counts.dropped += 1;
            continue;
        };
        let (client, requests, expect, tally) = (
            client.clone(),
            requests.clone(),
            expect.clone(),
            Arc::clone(&tally),
        );
        while answers.try_join_next().is_some() {}
        answers.spawn(async move {
            let sent = Instant::now();
            let exchange = async {
                match &expect {
                    Some(expect) => {
                        let (path, content_type, body) = requests.nth_parts(n);
                        expect
                            .post(path, content_type, &body, requests.deadline)
                            .await
                    }
                    None => send(&client, requests.nth(n)).await,
                }
            };
            let answer = tokio::time::timeout(deadline + GRACE, exchange).await;
            let status = answer.ok().and_then(Result::ok);
            tally
                .lock()
                .expect("tally lock")
                .record(status, sent.elapsed(), deadline);
            drop(slot);
        });
    }
    while answers.join_next().await.is_some() {}
    let (healthz, _) = prober.await.unwrap_or_else(|_| (latencies(), 0));
    let tally = Arc::into_inner(tally)
        .expect("every request task has ended")
        .into_inner()
        .expect("tally lock");
    (tally, healthz)
}

/// RSS samples a soak takes, one per window.
const SOAK_WINDOWS: u32 = 10;

/// What a soak measured.
#[derive(Debug, serde::Serialize)]
struct Soak {
    task: super::Work,
    capacity_per_s: f64,
    offered_per_s: f64,
    duration_s: f64,
    /// `VmRSS` in MB at the end of each window.
    rss_mb: Vec<f64>,
    /// (last - first) / first over `rss_mb`, the first window being the warm-up.
    rss_drift: f64,
    #[serde(flatten)]
    counts: Counts,
    goodput_per_s: f64,
    /// `http_requests_total` of the work's routes plus `http_connections_refused_total`.
    server_answered: u64,
    pool_settled: bool,
}

/// One `offload-deadline` server at the first of `--loads` times capacity for `--duration`:
/// samples RSS each tenth of the run, then checks that it did not drift by 10% or more and
/// that the counters reconcile: every arrival has an outcome, the server counted as many
/// answers as the load generator got (up to the ones it gave up on), and the pool ended
/// every task it accepted.
pub(crate) fn soak(args: &Args, threads: usize) -> anyhow::Result<()> {
    let multiple = args.loads.first().copied().unwrap_or(3.0);
    let duration = Duration::from_secs_f64(args.duration);
    let bar = progress_bar(duration * 2)?;
    let capacity = measure_capacity(args, threads, &bar)?;
    let rate = capacity * multiple;
    bar.set_prefix(format!("soak {multiple}x"));
    let child = Child::start(Server::OffloadDeadline, args, threads)?;
    let deadline = Duration::from_millis(args.deadline_ms);
    let requests = Requests::new(child.addr, args.task, Some(deadline));
    let expect = args.expect_continue.then(|| ExpectClient::new(child.addr));
    let client_rt = load_runtime()?;
    let window = duration / SOAK_WINDOWS;
    let status = format!("/proc/{}/status", child.process.id());
    let ((tally, _), rss_mb, metrics) = client_rt.block_on(async {
        let sampler = tokio::spawn(async move {
            let mut samples = Vec::new();
            for _ in 0..SOAK_WINDOWS {
                tokio::time::sleep(window).await;
                samples.push(status_mb(&status, "VmRSS:").unwrap_or(0.0));
            }
            samples
        });
        let before = metrics_text(&requests).await;
        let load = open_loop(&requests, expect, rate, duration, &bar).await;
        let samples = sampler.await.unwrap_or_default();
        // Tasks of requests that timed out may still be finishing: give the pool a moment.
        let mut after = metrics_text(&requests).await;
        let settling = Instant::now() + Duration::from_secs(10);
        while after.as_deref().is_ok_and(|m| !pool_settled(m)) && Instant::now() < settling {
            tokio::time::sleep(Duration::from_millis(100)).await;
            after = metrics_text(&requests).await;
        }
        (load, samples, before.and_then(|b| Ok((b, after?))))
    });
    child.stop()?;
    drop(client_rt);
    bar.finish_and_clear();
    let (before, after) = metrics?;
    let server_answered = work_answers(&after) - work_answers(&before);
    let first = rss_mb.first().copied().unwrap_or(0.0);
    let last = rss_mb.last().copied().unwrap_or(0.0);
    let report = Soak {
        task: args.task,
        capacity_per_s: capacity,
        offered_per_s: rate,
        duration_s: args.duration,
        rss_drift: if first > 0.0 {
            (last - first) / first
        } else {
            0.0
        },
        rss_mb,
        counts: tally.counts,
        goodput_per_s: tally.counts.ok_in_time as f64 / duration.as_secs_f64(),
        server_answered,
        pool_settled: pool_settled(&after),
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    anyhow::ensure!(
        report.rss_drift < 0.10,
        "RSS drifted by {:.1}%",
        report.rss_drift * 100.0
    );
    let counts = report.counts;
    anyhow::ensure!(
        counts.settled() == counts.arrivals,
        "arrivals without an outcome"
    );
    let answered = counts.answered();
    anyhow::ensure!(
        (answered..=answered + counts.errors).contains(&report.server_answered),
        "the server counted {} answers, the load generator {answered} (+{} unanswered)",
        report.server_answered,
        counts.errors
    );
    anyhow::ensure!(
        report.pool_settled,
        "the pool did not end every task it accepted"
    );
    Ok(())
}

/// `GET /metrics` of the server `requests` targets.
async fn metrics_text(requests: &Requests) -> anyhow::Result<String> {
    use http_body_util::BodyExt as _;
    let request = hyper::Request::get(format!("{}/metrics", requests.base))
        .body(http_body_util::Full::new(axum::body::Bytes::new()))?;
    let response = http_client().request(request).await?;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The answers the server counted for the work's routes (not `/healthz`, not `/metrics`),
/// connections refused over the limit included.
fn work_answers(metrics: &str) -> u64 {
    sample_sum(metrics, "http_requests_total{", |labels| {
        !labels.contains(r#"route="/healthz""#) && !labels.contains(r#"route="/metrics""#)
    }) + sample_sum(metrics, "http_connections_refused_total", |_| true)
}

/// The sum of the Prometheus samples named `prefix` whose labels `wanted` accepts.
fn sample_sum(text: &str, prefix: &str, wanted: impl Fn(&str) -> bool) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(prefix) && wanted(line))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Whether the server's pool, by its `/metrics`, has nothing queued or running and an
/// outcome for every task it accepted.
fn pool_settled(metrics: &str) -> bool {
    let all = |_: &str| true;
    let submitted = sample_sum(metrics, "offload_tasks_submitted_total", all);
    let ended = sample_sum(metrics, "offload_tasks_total{", all);
    let busy =
        sample_sum(metrics, "offload_queued", all) + sample_sum(metrics, "offload_running", all);
    submitted > 0 && submitted == ended && busy == 0
}

/// A line of a `/proc/<pid>/status` file such as `VmRSS:   123456 kB`, in MB.
fn status_mb(path: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn print_table(report: &Report) {
    println!(
        "overload, {} work: capacity {:.1} responses/s ({} closed-loop clients, offload); \
         open-loop arrivals for {:.0} s per row, {} ms request deadline; server runtime and \
         pool: {} threads; each server in a child process, the load generator here (1 thread){}{}",
        report.task.as_str(),
        report.capacity_per_s,
        report.capacity_clients,
        report.duration_s,
        report.deadline_ms,
        report.threads,
        if report.expect_continue {
            "; uploads sent with Expect: 100-continue"
        } else {
            ""
        },
        report.queue_mb.map_or(String::new(), |mb| format!(
            "; queued bodies at most {mb} MiB"
        )),
    );
    println!();
    println!(
        "| server           | load | offered/s | goodput/s | vs capacity | ok p99 | refusal p50 | 503 | 504 | late | errors | /healthz p99 | peak RSS |"
    );
    println!(
        "|------------------|-----:|----------:|----------:|------------:|-------:|------------:|----:|----:|-----:|-------:|-------------:|---------:|"
    );
    for r in &report.rows {
        let rss = r
            .peak_rss_mb
            .map_or_else(|| "n/a".to_owned(), |mb| format!("{mb:.0} MB"));
        println!(
            "| {:<16} | {:>3}x | {:>9.1} | {:>9.1} | {:>10.2}x | {:>3.0} ms | {:>8.1} ms | {:>3} | {:>3} | {:>4} | {:>6} | {:>9.1} ms | {:>8} |",
            r.server.as_str(),
            r.load,
            r.offered_per_s,
            r.goodput_per_s,
            r.goodput_vs_capacity,
            r.ok_p99_ms,
            r.refusal_p50_ms,
            r.counts.refused,
            r.counts.timed_out,
            r.counts.ok_late,
            r.counts.errors + r.counts.dropped,
            r.healthz_p99_ms,
            rss
        );
    }
}
