//! Bad input: a malformed entry, an unknown task, a payload that does not decode or is over
//! the size limit each go to the dead letters with a reason; the worker keeps going.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use offload::{Error, Task};
use offload_test_redis::RedisServer;
use serde::{Deserialize, Serialize};
use support::Echo;

/// A task no worker serves.
#[derive(Serialize, Deserialize)]
struct Unknown;

impl Task for Unknown {
    type Output = u64;
    fn run(self) -> u64 {
        0
    }
    fn name(&self) -> &'static str {
        "nobody-serves-this"
    }
}

/// Claims to be `echo`, but its payload is a string, not a number.
#[derive(Serialize, Deserialize)]
struct FakeEcho(String);

impl Task for FakeEcho {
    type Output = u64;
    fn run(self) -> u64 {
        0
    }
    fn name(&self) -> &'static str {
        "echo"
    }
}

fn failed_with(result: Result<u64, Error>, needle: &str) {
    match result {
        Err(Error::Failed { message, .. }) => assert!(message.contains(needle), "{message}"),
        other => panic!("expected Failed containing {needle:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn smoke() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let worker =
        support::spawn_worker(support::worker(1, 500).max_payload(64), &redis.url(), "q").await;
    let fleet = support::fleet(&redis.url(), "q").await;
    let limit = Duration::from_secs(10);

    failed_with(fleet.run(Unknown).timeout(limit).await, "unknown task");
    failed_with(
        fleet.run(FakeEcho("seven".into())).timeout(limit).await,
        "does not decode",
    );
    failed_with(
        fleet.run(FakeEcho("x".repeat(100))).timeout(limit).await,
        "exceeds",
    );
    let added = redis.command("XADD offload:{q}:jobs:normal * garbage 1");
    assert!(added.starts_with('$'), "{added}");
    // The worker is still serving.
    assert_eq!(fleet.run(Echo(77)).timeout(limit).await, Ok(77));
    support::eventually(limit, "four dead letters", || {
        let url = redis.url();
        async move { support::dead_letters(&url, "q").await.len() == 4 }
    })
    .await;
    let reasons: Vec<String> = support::dead_letters(&redis.url(), "q")
        .await
        .into_iter()
        .map(|(reason, _, _)| reason)
        .collect();
    for needle in [
        "unknown task",
        "does not decode",
        "exceeds",
        "malformed entry",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(needle)),
            "{needle}: {reasons:?}"
        );
    }
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!((stats.dead_lettered, stats.backlog), (4, 0));
    worker.stop().await;
}

#[tokio::test]
async fn the_caller_refuses_an_oversized_payload_before_sending() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fleet = offload_redis::Fleet::builder()
        .max_payload(32)
        .connect(&redis.url(), "q")
        .await
        .expect("connects");
    let err = fleet.try_run(FakeEcho("y".repeat(64))).await.unwrap_err();
    assert_eq!(err.into_task().0.len(), 64);
    failed_with(fleet.run(FakeEcho("y".repeat(64))).await, "exceeds");
    assert_eq!(fleet.queue_stats().await.expect("stats").backlog, 0);
}

/// A malformed entry (no task) that still names its job and reply stream: its dead letter
/// goes out as before, and now what it names is used too: the payload stored under its job
/// id leaves the hash, and its caller's reply stream hears of the failure.
#[tokio::test]
async fn a_malformed_entry_still_clears_its_payload_and_answers_its_caller() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fleet = support::fleet(&redis.url(), "q").await;
    let worker = support::spawn_worker(support::worker(1, 500), &redis.url(), "q").await;
    assert_eq!(redis.command("HSET offload:{q}:payloads m-1 stored"), ":1");
    let added = redis.command("XADD offload:{q}:jobs:normal * job m-1 reply offload:{q}:reply:c9");
    assert!(added.starts_with('$'), "{added}");
    support::eventually(Duration::from_secs(10), "one dead letter", || {
        let url = redis.url();
        async move { support::dead_letters(&url, "q").await.len() == 1 }
    })
    .await;
    assert_eq!(redis.command("HLEN offload:{q}:payloads"), ":0");
    assert_eq!(redis.command("XLEN offload:{q}:reply:c9"), ":1");
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!((stats.dead_lettered, stats.backlog), (1, 0));
    worker.stop().await;
}
