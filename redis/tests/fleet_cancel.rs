//! Cancellation and deadlines: dropping the caller's future cancels a queued job (it never
//! runs) and stops a running one (`is_cancelled` turns true); a job whose deadline has
//! passed is discarded unrun.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::sync::atomic::Ordering;
use std::time::Duration;

use offload::Error;
use offload_test_redis::RedisServer;
use support::{Echo, Sleep};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fleet = support::fleet(&redis.url(), "q").await;
    // No worker yet: the job waits in the stream; the caller gives up and drops it.
    let call = tokio::spawn(fleet.run(Echo(5000)).into_future());
    support::eventually(Duration::from_secs(5), "the job is queued", || {
        let fleet = fleet.clone();
        async move { fleet.queue_stats().await.map(|s| s.backlog) == Ok(1) }
    })
    .await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    support::eventually(Duration::from_secs(5), "the cancel is recorded", || {
        let fleet = fleet.clone();
        async move { fleet.metrics().cancelled == 1 && fleet.metrics().in_flight == 0 }
    })
    .await;
    support::eventually(Duration::from_secs(5), "the cancel key is set", || {
        let redis = &redis;
        async move { redis.command("KEYS offload:{q}:cancel:*") != "*0" }
    })
    .await;
    let worker = support::spawn_worker(support::worker(1, 500), &redis.url(), "q").await;
    // A later job runs; the cancelled one was dropped unrun.
    assert_eq!(fleet.run(Echo(5001)).await, Ok(5001));
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!((stats.cancelled, stats.completed, stats.backlog), (1, 1, 0));
    assert!(
        !support::ECHOED.lock().unwrap().contains(&5000),
        "never ran"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_future_stops_a_running_task() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let worker = support::spawn_worker(support::worker(1, 300), &redis.url(), "q").await;
    let fleet = support::fleet(&redis.url(), "q").await;
    let call = tokio::spawn(fleet.run(Sleep { ms: 10_000 }).into_future());
    support::eventually(Duration::from_secs(5), "the task runs", || async {
        support::SLEEPS_STARTED.load(Ordering::SeqCst) == 1
    })
    .await;
    call.abort();
    support::eventually(
        Duration::from_secs(5),
        "the task sees is_cancelled",
        || async { support::SLEEPS_CANCELLED.load(Ordering::SeqCst) == 1 },
    )
    .await;
    support::eventually(Duration::from_secs(5), "the entry is dropped", || {
        let fleet = fleet.clone();
        async move {
            fleet
                .queue_stats()
                .await
                .is_ok_and(|s| s.cancelled == 1 && s.backlog == 0)
        }
    })
    .await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_deadline_is_discarded_unrun() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fleet = support::fleet(&redis.url(), "q").await;
    // Queued with a 100 ms timeout and no worker: the caller times out...
    let err = fleet
        .run(Echo(6000))
        .timeout(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::TimedOut { task: "echo", .. }),
        "{err:?}"
    );
    // ...and its cancel key is removed behind its back, to show that the deadline alone
    // keeps the job from running.
    support::eventually(Duration::from_secs(5), "the cancel key is set", || {
        let redis = &redis;
        async move { redis.command("KEYS offload:{q}:cancel:*") != "*0" }
    })
    .await;
    let caller = fleet
        .reply_key()
        .rsplit(':')
        .next()
        .expect("caller")
        .to_owned();
    assert_eq!(
        redis.command(&format!("DEL offload:{{q}}:cancel:{caller}:0")),
        ":1"
    );
    let worker = support::spawn_worker(support::worker(1, 500), &redis.url(), "q").await;
    assert_eq!(fleet.run(Echo(6001)).await, Ok(6001));
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!((stats.expired, stats.completed, stats.backlog), (1, 1, 0));
    assert!(
        !support::ECHOED.lock().unwrap().contains(&6000),
        "never ran"
    );
    worker.stop().await;
}
