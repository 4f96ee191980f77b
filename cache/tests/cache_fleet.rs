//! The cache in front of a Redis fleet (`offload_redis::Fleet` as the runner): identical
//! concurrent calls become one job, run once by the worker.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use offload::Pool;
use offload_cache::{Cache, Outcome};
use offload_redis::{Fleet, Worker};
use offload_test_redis::RedisServer;
use support::{Mode, Probe, eventually, fresh_id, state};

/// Callers of one key in the burst test.
const CALLERS: usize = 50;

/// A worker serving `Probe` on two threads, in this process (so the probe's run counters
/// are visible here), until the returned sender is dropped.
async fn worker(url: &str, queue: &str) -> tokio::sync::oneshot::Sender<()> {
    let pool = Pool::builder().threads(2).build().expect("threads start");
    let worker = Worker::builder(pool)
        .task::<Probe>("probe")
        .lease(Duration::from_secs(5))
        .connect(url, queue)
        .await
        .expect("the worker connects");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let _worker = worker(&redis.url(), "cache-smoke").await;
    let fleet = Fleet::connect(&redis.url(), "cache-smoke")
        .await
        .expect("the fleet connects");
    let cache = Cache::builder().build(fleet).expect("cache");
    let id = fresh_id();
    let first = cache.run(Probe::value(id, 100)).await.expect("runs");
    let again = cache.run(Probe::value(id, 100)).await.expect("runs");
    assert_eq!(first.outcome, Outcome::Miss);
    assert_eq!(again.outcome, Outcome::Hit);
    assert_eq!(first.value, again.value);
    assert_eq!(first.value, Ok(vec![(id % 251) as u8; 100]));
    assert_eq!(state(id).runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        cache.runner().metrics().submitted,
        1,
        "one job reached redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_identical_calls_run_once_on_the_worker() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let _worker = worker(&redis.url(), "cache-burst").await;
    let fleet = Fleet::connect(&redis.url(), "cache-burst")
        .await
        .expect("the fleet connects");
    let cache = Cache::builder().build(fleet).expect("cache");
    let id = fresh_id();
    // The job holds on the worker until every caller has joined it, so the 49 others are
    // coalesced onto the one job, not hits that come after it.
    let calls: Vec<_> = (0..CALLERS)
        .map(|_| tokio::spawn(cache.run(Probe::mode(id, Mode::Hold))))
        .collect();
    let probe = state(id);
    eventually("the job starts on the worker", || {
        probe.started.load(Ordering::SeqCst)
    })
    .await;
    eventually("every caller waits for the one job", || {
        cache.stats().waiting == CALLERS as u64
    })
    .await;
    probe.release();
    let mut outcomes = Vec::new();
    for call in calls {
        let cached = call.await.expect("no panic").expect("the job's result");
        assert_eq!(cached.value, Ok(vec![(id % 251) as u8; 16]));
        outcomes.push(cached.outcome);
    }
    let misses = outcomes.iter().filter(|&&o| o == Outcome::Miss).count();
    let coalesced = outcomes
        .iter()
        .filter(|&&o| o == Outcome::Coalesced)
        .count();
    assert_eq!((misses, coalesced), (1, CALLERS - 1), "{outcomes:?}");
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1, "one execution");
    assert_eq!(cache.runner().metrics().submitted, 1, "one job");
    let stats = cache.stats();
    assert_eq!(
        (stats.executions, stats.misses, stats.coalesced),
        (1, 1, 49)
    );
}
