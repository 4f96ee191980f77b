//! Redis outage: with Redis stopped, no caller hangs (each gets its result or a typed error
//! within its timeout or the outage grace), new calls fail fast, and callers and workers
//! reconnect by themselves when Redis returns.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use offload::Error;
use offload_redis::Fleet;
use offload_test_redis::RedisServer;
use support::{Echo, Sleep};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_caller_hangs_and_everyone_reconnects() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let worker = support::spawn_worker(support::worker(1, 500), &url, "q").await;
    let fleet = Fleet::builder()
        .command_timeout(Duration::from_millis(500))
        .outage_grace(Duration::from_secs(1))
        .connect(&url, "q")
        .await
        .expect("connects");
    let running = tokio::spawn(
        fleet
            .run(Sleep { ms: 600 })
            .timeout(Duration::from_secs(4))
            .into_future(),
    );
    support::eventually(Duration::from_secs(5), "the sleep runs", || async {
        support::SLEEPS_STARTED.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    // Queued behind the sleep on the one thread; no timeout of its own: the outage grace
    // bounds it.
    let queued = tokio::spawn(fleet.run(Echo(1)).into_future());
    support::eventually(Duration::from_secs(5), "the echo is queued", || {
        let fleet = fleet.clone();
        async move { fleet.queue_stats().await.map(|s| s.backlog) == Ok(2) }
    })
    .await;
    redis.stop();

    let started = Instant::now();
    let err = fleet.run(Echo(2)).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "failed fast");

    let bound = Duration::from_secs(6);
    let running = tokio::time::timeout(bound, running)
        .await
        .expect("the running job's caller does not hang")
        .expect("no panic");
    assert!(
        matches!(
            running,
            Ok(_) | Err(Error::Unavailable { .. } | Error::TimedOut { .. })
        ),
        "{running:?}"
    );
    let queued = tokio::time::timeout(bound, queued)
        .await
        .expect("the queued job's caller does not hang")
        .expect("no panic");
    assert!(
        matches!(queued, Err(Error::Unavailable { .. })),
        "{queued:?}"
    );

    redis.restart();
    let back = fleet.run(Echo(3)).timeout(Duration::from_secs(10)).await;
    assert_eq!(back, Ok(3), "the caller and the worker reconnected");
    let m = fleet.metrics();
    assert!(m.unavailable >= 2, "{m:?}");
    assert_eq!(m.in_flight, 0);
    worker.stop().await;
}
