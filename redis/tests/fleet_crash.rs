//! Worker processes that die or stall: a SIGKILLed worker's job moves on after the lease, a
//! live worker's heartbeats keep a long job, and a worker paused past its lease can neither
//! ack nor reply when it resumes.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::time::Duration;

use offload_redis::Fleet;
use offload_test_redis::RedisServer;
use support::Sleep;

/// Not a test of its own: the body of the worker processes the tests below start.
#[test]
fn child_worker() {
    support::child_worker_main();
}

const LEASE_MS: u64 = 300;

/// A worker process `a` (lease `lease_ms`) running a `Sleep { ms }` job that a caller awaits.
async fn job_running_in_a_child(
    url: &str,
    lease_ms: u64,
    ms: u64,
) -> (
    support::Child_,
    Fleet,
    tokio::task::JoinHandle<Result<u32, offload::Error>>,
) {
    let a = support::spawn_child(url, "q", lease_ms);
    let fleet = support::fleet(url, "q").await;
    let call = tokio::spawn(
        fleet
            .run(Sleep { ms })
            .timeout(Duration::from_secs(20))
            .into_future(),
    );
    support::eventually(Duration::from_secs(10), "worker a runs the job", || {
        let url = url.to_owned();
        let a = a.consumer.clone();
        async move { support::owners(&url, "q").await == [a] }
    })
    .await;
    (a, fleet, call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_loses_nothing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let (a, fleet, call) = job_running_in_a_child(&url, LEASE_MS, 400).await;
    a.signal("KILL");
    let b = support::spawn_worker(support::worker(1, LEASE_MS), &url, "q").await;
    let ran_on = call.await.expect("no panic").expect("the job completes");
    assert_eq!(ran_on, std::process::id(), "worker b (this process) ran it");
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!(stats.redelivered, 1);
    assert_eq!(stats.backlog, 0);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_long_job_with_its_live_worker() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    // Eight leases long.
    let (a, fleet, call) = job_running_in_a_child(&url, 150, 1200).await;
    // An idle worker looking for expired leases all along.
    let b = support::spawn_worker(support::worker(1, 150), &url, "q").await;
    let ran_on = call.await.expect("no panic").expect("the job completes");
    assert_eq!(ran_on, a.pid(), "worker a kept and finished it");
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!((stats.redelivered, stats.lost), (0, 0));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_worker_can_neither_ack_nor_reply() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let (a, fleet, call) = job_running_in_a_child(&url, LEASE_MS, 600).await;
    a.signal("STOP");
    let b = support::spawn_worker(support::worker(1, LEASE_MS), &url, "q").await;
    let ran_on = call.await.expect("no panic").expect("the job completes");
    assert_eq!(ran_on, std::process::id(), "worker b took the job over");
    // The zombie wakes up with a finished (or overdue) run and a lease it no longer has.
    a.signal("CONT");
    support::eventually(Duration::from_secs(10), "the zombie is refused", || {
        let fleet = fleet.clone();
        // Its heartbeat, its completion, or both (when they cross) are refused.
        async move { fleet.queue_stats().await.is_ok_and(|s| s.lost >= 1) }
    })
    .await;
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!((stats.completed, stats.redelivered), (1, 1));
    assert_eq!(stats.backlog, 0);
    assert_eq!(
        fleet.metrics().duplicates_dropped,
        0,
        "no second reply was written"
    );
    b.stop().await;
}

/// Delivers the one waiting job to `ghosts` consumers in turn that never finish it, as
/// workers lost one after another would (the first reads it, each later one claims it).
async fn lose_the_job_to(url: &str, ghosts: usize) {
    let stream = "offload:{q}:jobs:normal";
    let mut conn = support::connection(url).await;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(&[
            "GROUP", "workers", "ghost-1", "COUNT", "1", "STREAMS", stream, ">",
        ])
        .query_async(&mut conn)
        .await
        .expect("read");
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(&[stream, "workers", "-", "+", "1"])
        .query_async(&mut conn)
        .await
        .expect("pending");
    let id = &pending[0].0;
    for ghost in 2..=ghosts {
        let _: redis::Value = redis::cmd("XCLAIM")
            .arg(&[stream, "workers", &format!("ghost-{ghost}"), "0", id])
            .query_async(&mut conn)
            .await
            .expect("claim");
    }
}

/// Submits one `Echo`, waits until it is queued, and loses it to `ghosts` workers.
async fn a_job_lost_by(
    url: &str,
    ghosts: usize,
) -> (Fleet, tokio::task::JoinHandle<Result<u64, offload::Error>>) {
    let fleet = support::fleet(url, "q").await;
    let call = tokio::spawn(
        fleet
            .run(support::Echo(7))
            .timeout(Duration::from_secs(20))
            .into_future(),
    );
    support::eventually(Duration::from_secs(10), "the job is queued", || {
        let fleet = fleet.clone();
        async move { fleet.queue_stats().await.is_ok_and(|s| s.backlog == 1) }
    })
    .await;
    lose_the_job_to(url, ghosts).await;
    (fleet, call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_on_lost_workers_count_toward_max_attempts() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    // Two workers lost it: the worker that reclaims it makes the third start, past two.
    let (fleet, call) = a_job_lost_by(&url, 2).await;
    let worker =
        support::spawn_worker(support::worker(1, LEASE_MS).max_attempts(2), &url, "q").await;
    let err = call.await.expect("no panic").unwrap_err();
    assert!(
        matches!(err, offload::Error::Failed { attempts: 2, .. }),
        "{err:?}"
    );
    let dead = support::dead_letters(&url, "q").await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].0.contains("lost"), "{dead:?}");
    assert_eq!(dead[0].1, "2");
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!((stats.dead_lettered, stats.backlog), (1, 0));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_lost_fewer_times_than_its_attempts_still_runs() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let (fleet, call) = a_job_lost_by(&url, 1).await;
    let worker =
        support::spawn_worker(support::worker(1, LEASE_MS).max_attempts(2), &url, "q").await;
    assert_eq!(call.await.expect("no panic"), Ok(7));
    let stats = fleet.queue_stats().await.expect("stats");
    assert_eq!((stats.redelivered, stats.dead_lettered), (1, 0));
    worker.stop().await;
}

/// An entry that names a reply key outside its queue (hand-written, or hostile) and is lost
/// too often: it is dead-lettered, and nothing is written to that key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_job_naming_a_foreign_reply_key_is_dead_lettered_without_writing_it() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let fleet = support::fleet(&url, "q").await;
    // The fleet created the stream and its group; the entry carries only what the work
    // script reads.
    let added =
        redis.command("XADD offload:{q}:jobs:normal * job hostile-1 task echo reply victim");
    assert!(added.starts_with('$'), "{added}");
    lose_the_job_to(&url, 2).await;
    let worker =
        support::spawn_worker(support::worker(1, LEASE_MS).max_attempts(2), &url, "q").await;
    support::eventually(Duration::from_secs(10), "the job is dead-lettered", || {
        let fleet = fleet.clone();
        async move {
            fleet
                .queue_stats()
                .await
                .is_ok_and(|s| s.dead_lettered == 1)
        }
    })
    .await;
    assert_eq!(redis.command("EXISTS victim"), ":0");
    worker.stop().await;
}
