//! Retries and dead letters: a panicking task is retried with backoff up to `max_attempts`,
//! then dead-lettered with its last error, and the caller gets `Error::Failed`.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use offload::Error;
use offload_test_redis::RedisServer;
use support::{Flaky, LargeFlaky};

#[tokio::test]
async fn smoke() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let worker = support::spawn_worker(support::worker(1, 500), &redis.url(), "q").await;
    let fleet = support::fleet(&redis.url(), "q").await;
    // Panics twice, succeeds on its third run: within the default three attempts.
    let result = fleet
        .run(Flaky { key: 1, panics: 2 })
        .timeout(Duration::from_secs(10))
        .await;
    assert_eq!(result, Ok(3));
    assert_eq!(support::flaky_runs(1), 3);
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!(
        (stats.retried, stats.dead_lettered, stats.backlog),
        (2, 0, 0)
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_task_that_keeps_panicking_is_dead_lettered_after_max_attempts() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let worker =
        support::spawn_worker(support::worker(1, 500).max_attempts(4), &redis.url(), "q").await;
    let fleet = support::fleet(&redis.url(), "q").await;
    let err = fleet
        .run(Flaky {
            key: 2,
            panics: u32::MAX,
        })
        .timeout(Duration::from_secs(10))
        .await
        .unwrap_err();
    match &err {
        Error::Failed {
            task,
            attempts,
            message,
        } => {
            assert_eq!((*task, *attempts), ("flaky", 4));
            assert!(message.contains("flaky run 4 of job 2"), "{message}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(support::flaky_runs(2), 4, "ran exactly max_attempts times");
    let dead = support::dead_letters(&redis.url(), "q").await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].0.contains("panicked"), "{dead:?}");
    assert_eq!((dead[0].1.as_str(), dead[0].2.as_str()), ("4", "flaky"));
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!(
        (stats.retried, stats.dead_lettered, stats.backlog),
        (3, 1, 0)
    );
    assert_eq!(fleet.metrics().failed, 1);
    // The dead letter keeps the task (to inspect or replay). This small payload travelled in
    // its entry, so the payloads hash never held it; the large-payload path is
    // fleet_bounds' `large_payloads_wait_beside_their_entries_and_leave_with_them`.
    let has_payload = "EVAL \"local f = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1][2] \
        for i = 1, #f, 2 do if f[i] == 'payload' then return 1 end end return 0\" 1 offload:{q}:dead";
    assert_eq!(
        redis.command(has_payload),
        ":1",
        "the dead letter has its payload"
    );
    assert_eq!(redis.command("HLEN offload:{q}:payloads"), ":0");
    worker.stop().await;
}

#[tokio::test]
async fn a_large_payload_survives_its_retries_and_leaves_the_hash_with_its_job() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let worker = support::spawn_worker(support::worker(1, 500), &redis.url(), "q").await;
    let fleet = support::fleet(&redis.url(), "q").await;
    let large = |key, panics| LargeFlaky {
        flaky: Flaky { key, panics },
        ballast: vec![7; 20_000],
    };
    // The first run's payload comes from the hash; the retries' from their re-queued
    // entries, which the work script moved it into.
    let result = fleet
        .run(large(5, 2))
        .timeout(Duration::from_secs(10))
        .await;
    assert_eq!(result, Ok((3, 140_000)));
    assert_eq!(redis.command("HLEN offload:{q}:payloads"), ":0");
    // Dead-lettered after three runs: the dead letter keeps the payload, the hash does not.
    let err = fleet
        .run(large(6, u32::MAX))
        .timeout(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Failed { attempts: 3, .. }), "{err:?}");
    assert_eq!(support::flaky_runs(6), 3);
    let dead = support::dead_letters(&redis.url(), "q").await;
    assert_eq!(dead.len(), 1);
    let ballast_kept = "EVAL \"local f = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1][2] \
        for i = 1, #f, 2 do if f[i] == 'payload' then return #f[i + 1] end end return 0\" 1 offload:{q}:dead";
    let kept: u64 = redis.command(ballast_kept)[1..].parse().unwrap();
    assert!(
        kept >= 20_000,
        "the dead letter holds the whole payload: {kept} bytes"
    );
    assert_eq!(redis.command("HLEN offload:{q}:payloads"), ":0");
    worker.stop().await;
}
