//! The result cache through real HTTP: `x-cache`, `ETag` and `Cache-Control`, 304s, one
//! execution for a burst of identical requests, the cache's series in /metrics, no cache
//! headers with the cache off, and replicas sharing results through Redis.

mod client;

use std::time::Duration;

use axum::http::StatusCode;
use client::{Answer, Http};
use offload_service::{AppState, Config, Mode};
use offload_service_support::{PHOTO, Serving, occupy, state_with, until};
use offload_test_redis::RedisServer;

const THUMB: &str = "/thumbnail?w=64&h=64";
/// Requests in the burst test.
const BURST: usize = 50;

/// A cache-on offload state: one pool thread, `bytes` of cache, a 5-minute TTL.
fn cached(bytes: u64, config: Config) -> AppState {
    state_with(Config {
        mode: Mode::Offload,
        threads: Some(1),
        queue: Some(4),
        cache_bytes: bytes,
        cache_ttl: Duration::from_secs(300),
        ..config
    })
}

/// Room for plenty of results.
const ROOMY: u64 = 16 << 20;
/// Room for about one 40-pixel thumbnail (~1 KB serialised).
const TINY: u64 = 1_500;

/// Thumbnails the pool ran, once its counts have settled.
async fn thumbnails_run(state: &AppState) -> u64 {
    until(|| state.pool().metrics().is_settled()).await;
    state
        .pool()
        .metrics()
        .tasks
        .get("thumbnail")
        .map_or(0, |t| t.run.count)
}

/// `n` identical `POST path`s that all arrive while the first one's task is in flight: the
/// pool's thread is held until every request waits on the cache, so each must join the one
/// computation (none may run its own), then released.
async fn burst(s: &AppState, http: &Http, path: &'static str, n: usize) -> Vec<Answer> {
    let busy = occupy(s.pool());
    let requests: Vec<_> = (0..n)
        .map(|_| {
            let http = http.clone();
            tokio::spawn(async move { http.post(path, PHOTO, &[]).await })
        })
        .collect();
    until(|| s.cache_stats().expect("the cache is on").waiting == n as u64).await;
    busy.release().await;
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.expect("no panic"));
    }
    answers
}

fn csv() -> Vec<u8> {
    offload_tasks::report::synth::csv(200, 3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let s = cached(ROOMY, Config::default());
    let server = Serving::start(s.clone()).await;
    let http = Http::new(server.addr);
    let first = http.post(THUMB, PHOTO, &[]).await;
    let second = http.post(THUMB, PHOTO, &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("x-cache"), Some("miss"));
    assert_eq!(second.header("x-cache"), Some("hit"));
    assert_eq!(first.body, second.body, "a hit serves the same thumbnail");
    assert_eq!(first.header("content-type"), Some("image/jpeg"));
    assert_eq!(second.header("x-width"), first.header("x-width"));
    let etag = first.header("etag").expect("an ETag");
    assert!(
        etag.len() == 66 && etag.starts_with('"') && etag.ends_with('"'),
        "{etag}"
    );
    assert_eq!(second.header("etag"), Some(etag));
    assert_eq!(first.header("cache-control"), Some("private, max-age=300"));
    assert_eq!(thumbnails_run(&s).await, 1);
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_identical_requests_run_once() {
    // No deadlines: the one task waits behind the held thread however long the test takes.
    let s = cached(
        ROOMY,
        Config {
            deadlines: false,
            ..Config::default()
        },
    );
    let server = Serving::start(s.clone()).await;
    let http = Http::new(server.addr);
    let answers = burst(&s, &http, THUMB, BURST).await;
    let outcome = |name: &str| {
        answers
            .iter()
            .filter(|a| a.header("x-cache") == Some(name))
            .count()
    };
    assert!(answers.iter().all(|a| a.status == StatusCode::OK));
    assert_eq!((outcome("miss"), outcome("coalesced")), (1, BURST - 1));
    assert!(answers.iter().all(|a| a.body == answers[0].body));
    assert!(
        answers
            .iter()
            .all(|a| a.header("etag") == answers[0].header("etag"))
    );
    assert_eq!(
        thumbnails_run(&s).await,
        1,
        "one execution for {BURST} requests"
    );
    let stats = s.cache_stats().expect("the cache is on");
    assert_eq!(
        (stats.misses, stats.coalesced, stats.executions),
        (1, 49, 1)
    );
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_none_match_is_answered_304_without_running() {
    let s = cached(ROOMY, Config::default());
    let server = Serving::start(s.clone()).await;
    let http = Http::new(server.addr);
    let first = http.post(THUMB, PHOTO, &[]).await;
    let etag = first.header("etag").expect("an ETag").to_owned();
    let weak = format!("W/{etag}");
    let listed = format!("\"0000\", {etag}");
    for tag in [etag.as_str(), weak.as_str(), listed.as_str()] {
        let again = http.post(THUMB, PHOTO, &[("if-none-match", tag)]).await;
        assert_eq!(
            again.status,
            StatusCode::NOT_MODIFIED,
            "If-None-Match: {tag}"
        );
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        assert_eq!(again.header("cache-control"), Some("private, max-age=300"));
    }
    // Another size is another result: the old tag does not match it.
    let other = http
        .post("/thumbnail?w=32&h=32", PHOTO, &[("if-none-match", &etag)])
        .await;
    assert_eq!(other.status, StatusCode::OK);
    assert_ne!(other.header("etag"), Some(etag.as_str()));
    assert_eq!(s.pool().metrics().submitted, 2, "the 304s ran nothing");
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_off_sends_no_cache_headers_and_runs_every_request() {
    let s = state_with(Config {
        threads: Some(1),
        queue: Some(4),
        cache_bytes: 0,
        ..Config::default()
    });
    assert!(s.cache_stats().is_none());
    let server = Serving::start(s.clone()).await;
    let http = Http::new(server.addr);
    for _ in 0..3 {
        let answer = http.post(THUMB, PHOTO, &[("if-none-match", "*")]).await;
        assert_eq!(answer.status, StatusCode::OK);
        for name in ["x-cache", "etag", "cache-control"] {
            assert_eq!(answer.header(name), None, "{name} with the cache off");
        }
    }
    assert_eq!(thumbnails_run(&s).await, 3);
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_and_pdfs_share_a_key_across_requests() {
    let s = cached(ROOMY, Config::default());
    let server = Serving::start(s.clone()).await;
    let http = Http::new(server.addr);
    for path in ["/report?period=week", "/report.pdf?period=week"] {
        let first = http.post(path, csv(), &[]).await;
        assert_eq!(first.status, StatusCode::OK, "{path}");
        // Each PDF task is stamped with the clock's second; its key must not depend on it.
        let second = http.post(path, csv(), &[]).await;
        assert_eq!(first.header("x-cache"), Some("miss"), "{path}");
        assert_eq!(second.header("x-cache"), Some("hit"), "{path}");
        assert_eq!(first.body, second.body, "{path}");
        let etag = first.header("etag").expect("an ETag");
        assert_eq!(second.header("etag"), Some(etag), "{path}");
        let revalidated = http.post(path, csv(), &[("if-none-match", etag)]).await;
        assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED, "{path}");
    }
    until(|| s.pool().metrics().is_settled()).await;
    let m = s.pool().metrics();
    let runs = |name: &str| m.tasks.get(name).map_or(0, |t| t.run.count);
    assert_eq!(
        (runs("report_json"), runs("report"), runs("pdf_report")),
        (1, 1, 1),
        "{m:?}"
    );
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_hits_misses_coalesced_evictions_and_bytes() {
    // Room for one thumbnail: a second distinct one evicts (or is refused room by) the first.
    let s = cached(
        TINY,
        Config {
            deadlines: false,
            ..Config::default()
        },
    );
    let server = Serving::start(s.clone()).await;
    let http = Http::new(server.addr);
    let pair = burst(&s, &http, "/thumbnail?w=40&h=40", 2).await;
    assert!(pair.iter().all(|a| a.status == StatusCode::OK));
    assert_eq!(
        http.post("/thumbnail?w=40&h=40", PHOTO, &[])
            .await
            .header("x-cache"),
        Some("hit")
    );
    assert_eq!(
        http.post("/thumbnail?w=41&h=41", PHOTO, &[])
            .await
            .header("x-cache"),
        Some("miss")
    );
    let stats = s.cache_stats().expect("the cache is on");
    assert!(stats.evictions >= 1 && stats.bytes <= TINY, "{stats:?}");
    let text = String::from_utf8_lossy(&http.get("/metrics").await.body).into_owned();
    for series in [
        r#"offload_cache_requests_total{outcome="hit"}"#,
        r#"offload_cache_requests_total{outcome="miss"}"#,
        r#"offload_cache_requests_total{outcome="coalesced"}"#,
        "offload_cache_evictions_total",
        "offload_cache_bytes",
        "offload_cache_entries",
    ] {
        assert!(
            text.contains(series),
            "{series} missing from /metrics:\n{text}"
        );
    }
    server.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_results_through_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let replica = || {
        cached(
            ROOMY,
            Config {
                cache_redis: Some(redis.url()),
                cache_secret: Some("the replicas' shared secret".to_owned()),
                ..Config::default()
            },
        )
    };
    let (a, b) = (replica(), replica());
    let (server_a, server_b) = (
        Serving::start(a.clone()).await,
        Serving::start(b.clone()).await,
    );
    let first = Http::new(server_a.addr).post(THUMB, PHOTO, &[]).await;
    assert_eq!(first.header("x-cache"), Some("miss"));
    // Replica A writes to Redis after answering; wait for the write rather than race it.
    until(|| redis.command("DBSIZE") == ":1").await;
    let second = Http::new(server_b.addr).post(THUMB, PHOTO, &[]).await;
    assert_eq!(
        second.header("x-cache"),
        Some("hit"),
        "replica B's first request"
    );
    assert_eq!(second.body, first.body);
    assert_eq!(
        second.header("etag"),
        first.header("etag"),
        "one secret, one key"
    );
    assert_eq!(thumbnails_run(&b).await, 0, "replica B ran nothing");
    assert_eq!(b.cache_stats().expect("the cache is on").shared_hits, 1);
    server_a.stop_and_wait().await;
    server_b.stop_and_wait().await;
}
