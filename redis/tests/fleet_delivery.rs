//! Delivery: each caller's future completes once, with the first result; a duplicate reply
//! is dropped and counted; a task's own `Err` is a result; priorities order the queue.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use offload::{Priority, RunOptions, Runner};
use offload_test_redis::RedisServer;
use support::{Echo, Refuse};

#[tokio::test]
async fn smoke() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let worker = support::spawn_worker(support::worker(2, 500), &redis.url(), "q").await;
    let fleet = support::fleet(&redis.url(), "q").await;
    assert_eq!(fleet.run(Echo(42)).await, Ok(42));
    let m = fleet.metrics();
    assert_eq!((m.submitted, m.completed, m.in_flight), (1, 1, 0));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_callers_each_complete_once_with_their_own_result() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = support::spawn_worker(support::worker(2, 500), &redis.url(), "q").await;
    let b = support::spawn_worker(support::worker(2, 500), &redis.url(), "q").await;
    let fleet = support::fleet(&redis.url(), "q").await;
    let calls = (0..400u64).map(|n| {
        let fleet = fleet.clone();
        tokio::spawn(async move { (n, fleet.run(Echo(n)).await) })
    });
    for call in futures::future::join_all(calls).await {
        let (n, result) = call.expect("no panic");
        assert_eq!(result, Ok(n));
    }
    let m = fleet.metrics();
    assert_eq!((m.submitted, m.completed), (400, 400));
    assert_eq!(m.duplicates_dropped, 0);
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!(stats.completed, 400);
    assert_eq!(stats.backlog, 0, "completed entries are deleted");
    assert_eq!(stats.live_workers, 2);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_duplicate_reply_is_dropped_and_counted() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let worker = support::spawn_worker(support::worker(1, 500), &redis.url(), "q").await;
    let fleet = support::fleet(&redis.url(), "q").await;
    assert_eq!(fleet.run(Echo(7)).await, Ok(7));
    // The same job answered again (as a second worker would if a job ran twice): the id of
    // the first job this handle submitted is `<caller>:0`.
    let caller = fleet.reply_key().rsplit(':').next().expect("caller id");
    let output = "\u{1}"; // MessagePack for 1
    let added = redis.command(&format!(
        "XADD {} * job {caller}:0 kind ok output {output}",
        fleet.reply_key()
    ));
    assert!(added.starts_with('$'), "{added}");
    support::eventually(Duration::from_secs(5), "the duplicate is counted", || {
        let fleet = fleet.clone();
        async move { fleet.metrics().duplicates_dropped == 1 }
    })
    .await;
    // Later calls are unaffected.
    assert_eq!(fleet.run(Echo(8)).await, Ok(8));
    assert_eq!(fleet.metrics().completed, 2);
    worker.stop().await;
}

#[tokio::test]
async fn a_tasks_own_error_is_a_result_not_a_retry() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let worker = support::spawn_worker(support::worker(1, 500), &redis.url(), "q").await;
    let fleet = support::fleet(&redis.url(), "q").await;
    let before = support::REFUSALS.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(fleet.run(Refuse).await, Ok(Err("no thanks".to_owned())));
    let after = support::REFUSALS.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(after - before, 1, "ran once");
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!((stats.retried, stats.dead_lettered), (0, 0));
    worker.stop().await;
}

#[tokio::test]
async fn the_runner_trait_and_priorities() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fleet = support::fleet(&redis.url(), "q").await;
    // Queue low, normal, high with no worker up; a one-thread worker then takes high first.
    let low = tokio::spawn(fleet.run_with(Echo(1003), RunOptions::new().priority(Priority::Low)));
    let normal = tokio::spawn(fleet.run_with(Echo(1002), RunOptions::new()));
    let high = tokio::spawn(fleet.run_with(Echo(1001), RunOptions::new().priority(Priority::High)));
    support::eventually(Duration::from_secs(5), "three jobs queued", || {
        let fleet = fleet.clone();
        async move { fleet.queue_stats().await.map(|s| s.backlog) == Ok(3) }
    })
    .await;
    let ids = |key: &str| redis.command(&format!("XLEN offload:{{q}}:jobs:{key}"));
    assert_eq!(
        (ids("high"), ids("normal"), ids("low")),
        (":1".into(), ":1".into(), ":1".into())
    );
    let worker = support::spawn_worker(support::worker(1, 500), &redis.url(), "q").await;
    assert_eq!(low.await.expect("no panic"), Ok(1003));
    assert_eq!(normal.await.expect("no panic"), Ok(1002));
    assert_eq!(high.await.expect("no panic"), Ok(1001));
    let order: Vec<u64> = support::ECHOED
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|n| (1001..=1003).contains(n))
        .collect();
    assert_eq!(order, [1001, 1002, 1003], "high first, low last");
    worker.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_jobs_in_flight_then_refuses() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let worker = support::spawn_worker(support::worker(1, 500), &redis.url(), "q").await;
    let fleet = support::fleet(&redis.url(), "q").await;
    let in_flight = fleet.try_run(Echo(11)).await.expect("room");
    let closing = tokio::spawn({
        let fleet = fleet.clone();
        async move { fleet.shutdown().await }
    });
    assert_eq!(
        in_flight.await,
        Ok(11),
        "a job in flight still gets its result"
    );
    tokio::time::timeout(Duration::from_secs(5), closing)
        .await
        .expect("shutdown returns once nothing is in flight")
        .expect("no panic");
    assert_eq!(fleet.run(Echo(12)).await, Err(offload::Error::Closed));
    assert!(fleet.try_run(Echo(13)).await.unwrap_err().is_closed());
    worker.stop().await;
}
