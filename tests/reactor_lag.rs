//! The reactor-lag monitor notices a blocked reactor and reports through pool metrics.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use offload::{Pool, ReactorLag};

/// Probes keep recording, and on an idle runtime they measure lateness, not the sleep: with
/// a 100 ms probe interval, a lag that counted the interval itself would read 100 ms or more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let lag = ReactorLag::with_settings(Duration::from_millis(100), Duration::from_secs(600));
    support::until(|| lag.snapshot().count >= 2).await;
    let first = lag.snapshot().count;
    support::until(|| lag.snapshot().count > first).await;
    let s = lag.snapshot();
    assert!(
        s.p50_ns < 50_000_000,
        "an idle runtime wakes its timers within 50 ms: {s:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_blocked_reactor_shows_up_as_lag() {
    let lag = ReactorLag::with_settings(Duration::from_millis(5), Duration::from_secs(60));
    support::until(|| lag.snapshot().count > 0).await;
    // What an inline CPU-heavy handler does to the only reactor thread.
    std::thread::sleep(Duration::from_millis(100));
    let before = lag.snapshot().count;
    support::until(|| lag.snapshot().count != before).await;
    let s = lag.snapshot();
    assert!(
        s.max_ns >= 50_000_000,
        "a 100 ms stall must register as at least 50 ms of lag: {s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_metrics_carry_the_reactor_lag() {
    let pool = Pool::builder().threads(1).build().unwrap();
    assert_eq!(pool.metrics().reactor_lag, None);
    let lag = pool.monitor_reactor();
    support::until(|| pool.metrics().reactor_lag.unwrap().count > 0).await;
    // The pool reports the monitor it started, not a copy frozen at some point.
    let seen = pool.metrics().reactor_lag.unwrap().count;
    support::until(|| lag.snapshot().count > seen).await;
    assert!(pool.metrics().reactor_lag.unwrap().count > seen);
    let json = serde_json::to_value(pool.metrics()).unwrap();
    assert!(json["reactor_lag"]["p99_ns"].is_u64(), "{json}");
    assert!(
        json["reactor_lag"]["count"].as_u64().unwrap() > seen,
        "{json}"
    );
}
