//! The service with `--redis`: handlers send their tasks to a Redis fleet, with the same
//! answers and status codes as on the local pool, and the cache works over it.

mod client;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use client::Http;
use offload::Pool;
use offload_redis::Worker;
use offload_service::{AppState, Config};
use offload_service_support::{PATIENCE, PHOTO, Serving, state_with};
use offload_tasks::{PdfReportTask, ReportTask, Thumbnail};
use offload_test_redis::RedisServer;

const THUMB: &str = "/thumbnail?w=64&h=64";

/// An in-process worker serving the built-in tasks (as `offload-worker` does) on a pool of
/// one thread, until the returned sender is dropped; the pool is returned for its metrics.
async fn worker(url: &str, queue: &str) -> (Pool, tokio::sync::oneshot::Sender<()>) {
    let pool = Pool::builder().threads(1).build().expect("threads start");
    let worker = Worker::builder(pool.clone())
        .task::<Thumbnail>("thumbnail")
        .task::<ReportTask>("report")
        .task::<PdfReportTask>("pdf_report")
        .connect(url, queue)
        .await
        .expect("the worker connects");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    (pool, stop)
}

/// A fleet state on `redis`'s queue `queue`.
async fn fleet(redis: &RedisServer, queue: &str, config: Config) -> AppState {
    AppState::connect(config.fleet(redis.url(), queue))
        .await
        .expect("the fleet connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (workers, _stop) = worker(&redis.url(), "svc-smoke").await;
    let s = fleet(&redis, "svc-smoke", Config::default()).await;
    assert!(s.fleet().is_some());
    let server = Serving::start(s.clone()).await;
    let remote = Http::new(server.addr).post(THUMB, PHOTO, &[]).await;
    assert_eq!(remote.status, StatusCode::OK);
    assert_eq!(remote.header("x-cache"), None, "the cache is off");
    // The same request on the local pool: the same thumbnail, byte for byte.
    let local = Serving::start(state_with(Config::default())).await;
    let here = Http::new(local.addr).post(THUMB, PHOTO, &[]).await;
    assert_eq!(here.status, StatusCode::OK);
    assert_eq!(remote.body, here.body);
    assert_eq!(remote.header("x-width"), here.header("x-width"));
    assert_eq!(
        workers.metrics().tasks["thumbnail"].run.count,
        1,
        "it ran on the worker"
    );
    assert_eq!(
        s.pool().metrics().submitted,
        0,
        "nothing ran in the service"
    );
    assert_eq!(s.fleet().expect("a fleet").metrics().completed, 1);
    server.stop_and_wait().await;
    local.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_and_pdfs_run_on_the_fleet() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (workers, _stop) = worker(&redis.url(), "svc-reports").await;
    let s = fleet(&redis, "svc-reports", Config::default()).await;
    let server = Serving::start(s.clone()).await;
    let http = Http::new(server.addr);
    let csv = offload_tasks::report::synth::csv(100, 5);
    let json = http.post("/report?period=week", csv.clone(), &[]).await;
    assert_eq!(json.status, StatusCode::OK);
    assert_eq!(json.header("content-type"), Some("application/json"));
    let report: serde_json::Value = serde_json::from_slice(&json.body).expect("json");
    assert_eq!(report["overall"]["count"], 100);
    let pdf = http.post("/report.pdf?period=week", csv, &[]).await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert!(pdf.body.starts_with(b"%PDF-"));
    let m = workers.metrics();
    assert_eq!(
        (m.tasks["report"].run.count, m.tasks["pdf_report"].run.count),
        (2, 1)
    );
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_works_over_the_fleet() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (workers, _stop) = worker(&redis.url(), "svc-cache").await;
    let s = fleet(
        &redis,
        "svc-cache",
        Config {
            cache_bytes: 16 << 20,
            ..Config::default()
        },
    )
    .await;
    let server = Serving::start(s.clone()).await;
    let http = Http::new(server.addr);
    let first = http.post(THUMB, PHOTO, &[]).await;
    let second = http.post(THUMB, PHOTO, &[]).await;
    assert_eq!(first.header("x-cache"), Some("miss"));
    assert_eq!(second.header("x-cache"), Some("hit"));
    assert_eq!(first.body, second.body);
    let etag = first.header("etag").expect("an ETag");
    let revalidated = http.post(THUMB, PHOTO, &[("if-none-match", etag)]).await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        s.fleet().expect("a fleet").metrics().submitted,
        1,
        "one job"
    );
    assert_eq!(workers.metrics().tasks["thumbnail"].run.count, 1);
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_a_503_with_retry_after_not_a_hang() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let s = fleet(&redis, "svc-outage", Config::default()).await;
    let server = Serving::start(s.clone()).await;
    let http = Http::new(server.addr);
    redis.stop();
    let asked = Instant::now();
    // `Http::post` fails the test after PATIENCE: an answer at all is the no-hang check.
    let answer = http.post(THUMB, PHOTO, &[]).await;
    let took = asked.elapsed();
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "after {took:?}"
    );
    let retry: u64 = answer
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(retry >= 1);
    assert!(answer.header("x-retry-after-ms").is_some());
    // Within the request's deadline (10 s; a 504 after it): the fleet's command timeout.
    assert!(took < Config::default().request_timeout, "{took:?}");
    // Redis back: the fleet reconnects by itself and new requests succeed.
    redis.restart();
    let (_workers, _stop) = worker(&redis.url(), "svc-outage").await;
    tokio::time::timeout(PATIENCE, async {
        while http.post(THUMB, PHOTO, &[]).await.status != StatusCode::OK {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("requests succeed again once redis is back");
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_needs_connect_and_offload_mode() {
    let url = "redis://127.0.0.1:1/".to_owned();
    let config = Config::default().fleet(url.clone(), "q");
    assert!(
        AppState::new(config).is_err(),
        "AppState::new cannot connect"
    );
    let inline = Config {
        mode: offload_service::Mode::Inline,
        ..Config::default().fleet(url, "q")
    };
    let refused = AppState::connect(inline).await.expect_err("inline + fleet");
    assert!(refused.to_string().contains("--mode offload"), "{refused}");
}
