//! Bounded everywhere: the caller's in-flight limit, the queue's backlog cap (refusal, never
//! trimming), and workers that hold no more jobs than they have free threads.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::time::Duration;

use offload::{Error, RunOptions, Runner};
use offload_redis::Fleet;
use offload_test_redis::RedisServer;
use support::{Blob, Echo, Sleep};

#[tokio::test]
async fn smoke() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fleet = Fleet::builder()
        .max_in_flight(2)
        .connect(&redis.url(), "q")
        .await
        .expect("connects");
    // No worker: the jobs stay in flight.
    let first = fleet.try_run(Echo(1)).await.expect("room");
    let second = fleet.try_run(Echo(2)).await.expect("room");
    let refused = fleet.try_run(Echo(3)).await.unwrap_err();
    assert!(refused.is_full());
    assert_eq!(refused.into_task().0, 3, "the task comes back");
    let m = fleet.metrics();
    assert_eq!((m.in_flight, m.refused, m.submitted), (2, 1, 2));
    // Dropping a handle frees its slot (and cancels its job).
    drop(first);
    let third = fleet.try_run(Echo(4)).await.expect("room again");
    let worker = support::spawn_worker(support::worker(1, 500), &redis.url(), "q").await;
    assert_eq!(second.await, Ok(2));
    assert_eq!(third.await, Ok(4));
    worker.stop().await;
}

#[tokio::test]
async fn the_backlog_cap_refuses_and_never_trims() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fleet = Fleet::builder()
        .backlog_cap(3)
        .connect(&redis.url(), "q")
        .await
        .expect("connects");
    let queued: Vec<_> = futures::future::join_all((0..3).map(|n| fleet.try_run(Echo(n))))
        .await
        .into_iter()
        .map(|h| h.expect("under the cap"))
        .collect();
    let refused = fleet.try_run(Echo(9)).await.unwrap_err();
    assert!(refused.is_full());
    // Through the Runner trait, a refusal is `Overloaded` with a retry hint.
    let err = fleet
        .run_with(Echo(9), RunOptions::new().wait_for_room(false))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Overloaded { task: "echo", .. }),
        "{err:?}"
    );
    assert!(err.retry_after().is_some());
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!(stats.backlog, 3, "nothing trimmed, nothing added");
    // A waiting `run` gets in once the worker drains the queue.
    let waiting = tokio::spawn(
        fleet
            .run(Echo(10))
            .timeout(Duration::from_secs(10))
            .into_future(),
    );
    let worker = support::spawn_worker(support::worker(1, 500), &redis.url(), "q").await;
    for (n, handle) in queued.into_iter().enumerate() {
        assert_eq!(handle.await, Ok(n as u64));
    }
    assert_eq!(waiting.await.expect("no panic"), Ok(10));
    worker.stop().await;
}

#[tokio::test]
async fn large_payloads_wait_beside_their_entries_and_leave_with_them() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fleet = Fleet::builder()
        .backlog_cap(2)
        .connect(&redis.url(), "q")
        .await
        .expect("connects");
    let blob = |n: u8| Blob(vec![n; 20_000]);
    let first = fleet.try_run(blob(1)).await.expect("under the cap");
    let second = fleet.try_run(blob(2)).await.expect("under the cap");
    assert!(fleet.try_run(blob(3)).await.unwrap_err().is_full());
    // Small payloads travel in their entries: only the two accepted blobs wait in the hash,
    // the refused one's was deleted with its refusal.
    let payloads = "HLEN offload:{q}:payloads";
    assert_eq!(redis.command(payloads), ":2");
    let worker = support::spawn_worker(support::worker(1, 500), &redis.url(), "q").await;
    assert_eq!(first.await, Ok(20_000));
    assert_eq!(second.await, Ok(40_000));
    worker.stop().await;
    // Each ended job took its payload with it.
    assert_eq!(redis.command(payloads), ":0");
}

#[tokio::test]
async fn a_refusals_retry_hint_is_the_backlogs_drain_time() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let fleet = Fleet::builder()
        .backlog_cap(3)
        .connect(&url, "q")
        .await
        .expect("connects");
    // A one-thread worker serves 20 ms jobs, then stops (still live within its lease).
    let worker = support::spawn_worker(support::worker(1, 5_000), &url, "q").await;
    for _ in 0..3 {
        assert!(fleet.run(Sleep { ms: 20 }).await.is_ok());
    }
    worker.stop().await;
    let queued: Vec<_> = futures::future::join_all((0..3).map(|_| fleet.try_run(Sleep { ms: 20 })))
        .await
        .into_iter()
        .map(|h| h.expect("under the cap"))
        .collect();
    let err = fleet
        .run_with(Sleep { ms: 20 }, RunOptions::new().wait_for_room(false))
        .await
        .unwrap_err();
    // Three jobs of at least 20 ms each for one live worker: at least 60 ms, and not the
    // one-second guess used when nothing is known.
    let hint = err.retry_after().expect("a hint");
    assert!(hint >= Duration::from_millis(60), "{hint:?}");
    assert!(hint < Duration::from_secs(1), "{hint:?}");
    drop(queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_holds_no_more_jobs_than_free_threads() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let a = support::spawn_worker(support::worker(2, 500), &url, "q").await;
    let b = support::spawn_worker(support::worker(2, 500), &url, "q").await;
    let fleet = support::fleet(&url, "q").await;
    let calls: Vec<_> = (0..12)
        .map(|_| tokio::spawn(fleet.run(Sleep { ms: 60 }).into_future()))
        .collect();
    let mut most_held = 0;
    let mut both_worked = (false, false);
    let watch = async {
        loop {
            let owners = support::owners(&url, "q").await;
            let held_a = owners.iter().filter(|o| **o == a.consumer).count();
            let held_b = owners.iter().filter(|o| **o == b.consumer).count();
            most_held = most_held.max(held_a).max(held_b);
            both_worked.0 |= held_a > 0;
            both_worked.1 |= held_b > 0;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let all = futures::future::join_all(calls);
    tokio::select! {
        results = all => {
            for r in results {
                assert!(r.expect("no panic").is_ok());
            }
        }
        () = watch => unreachable!(),
    }
    assert!(most_held <= 2, "a two-thread worker held {most_held} jobs");
    assert!(most_held >= 1, "the watch saw the jobs");
    assert_eq!(
        both_worked,
        (true, true),
        "the idle worker got the jobs the busy one left"
    );
    a.stop().await;
    b.stop().await;
}
