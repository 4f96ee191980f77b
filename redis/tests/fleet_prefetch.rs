//! Prefetch: a worker holds at most one job per thread plus its prefetch, and a held job
//! (taken, waiting for a thread) still heeds its caller's cancellation.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::time::Duration;

use offload_test_redis::RedisServer;
use support::{Echo, Sleep};

/// How many jobs `consumer` holds now.
async fn held(url: &str, consumer: &str) -> usize {
    support::owners(url, "q")
        .await
        .iter()
        .filter(|o| *o == consumer)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let worker = support::spawn_worker(support::worker(1, 500).prefetch(1), &url, "q").await;
    let fleet = support::fleet(&url, "q").await;
    let calls: Vec<_> = (0..6)
        .map(|_| tokio::spawn(fleet.run(Sleep { ms: 60 }).into_future()))
        .collect();
    let mut most_held = 0;
    let watch = async {
        loop {
            most_held = most_held.max(held(&url, &worker.consumer).await);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        results = futures::future::join_all(calls) => {
            for r in results {
                assert!(r.expect("no panic").is_ok());
            }
        }
        () = watch => unreachable!(),
    }
    assert_eq!(
        most_held, 2,
        "a one-thread worker with a prefetch of one holds two jobs while more wait"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_job_that_is_cancelled_never_runs() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let worker = support::spawn_worker(support::worker(1, 300).prefetch(1), &url, "q").await;
    let fleet = support::fleet(&url, "q").await;
    // The one thread is busy until cancelled; the next job is held behind it.
    let long = tokio::spawn(fleet.run(Sleep { ms: 20_000 }).into_future());
    support::eventually(Duration::from_secs(5), "the long job is taken", || async {
        held(&url, &worker.consumer).await == 1
    })
    .await;
    let call = tokio::spawn(fleet.run(Echo(7000)).into_future());
    support::eventually(Duration::from_secs(5), "the echo is held", || async {
        held(&url, &worker.consumer).await == 2
    })
    .await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    // The heartbeat sees the cancel key and drops the held job without running it.
    support::eventually(Duration::from_secs(5), "the held job is dropped", || {
        let fleet = fleet.clone();
        async move { fleet.queue_stats().await.is_ok_and(|s| s.cancelled == 1) }
    })
    .await;
    long.abort();
    support::eventually(Duration::from_secs(5), "the long job is dropped", || {
        let fleet = fleet.clone();
        async move {
            fleet
                .queue_stats()
                .await
                .is_ok_and(|s| s.cancelled == 2 && s.backlog == 0)
        }
    })
    .await;
    assert!(
        !support::ECHOED.lock().unwrap().contains(&7000),
        "never ran"
    );
    worker.stop().await;
}

/// A worker holding more entries than the work script's one ownership query lists at a time
/// (it asks for the finished runs plus 64): the entries the query left out are checked one
/// by one, so no finished run is mistaken for one another worker took over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_holding_many_jobs_still_owns_each_one_it_finishes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let fleet = support::fleet(&url, "q").await;
    // Queued before the worker starts, so its first step takes 1 + 100 of them at once.
    let calls: Vec<_> = (0..150u64)
        .map(|n| tokio::spawn(fleet.run(Echo(n)).into_future()))
        .collect();
    support::eventually(Duration::from_secs(10), "all 150 queued", || {
        let fleet = fleet.clone();
        async move { fleet.queue_stats().await.is_ok_and(|s| s.backlog == 150) }
    })
    .await;
    let worker = support::spawn_worker(support::worker(1, 5_000).prefetch(100), &url, "q").await;
    for (n, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.expect("no panic"), Ok(n as u64));
    }
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!(
        (stats.completed, stats.lost, stats.redelivered),
        (150, 0, 0),
        "every run ended by its owner, none handed on"
    );
    worker.stop().await;
}
