//! The shared tier: two caches ("replicas") on one Redis share results, and a Redis that
//! goes away never fails a call.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use offload::Pool;
use offload_cache::{BuildError, Cache, Outcome, Secret};
use offload_test_redis::RedisServer;
use support::{PATIENCE, Probe, eventually, fresh_id, pool, state};

fn replica(url: &str) -> Cache<Pool> {
    Cache::builder()
        .secret(Secret::from_passphrase("the replicas' shared secret"))
        .redis(url)
        .redis_timeout(Duration::from_millis(200))
        .redis_pause(Duration::from_millis(50))
        .build(pool(1))
        .expect("cache")
}

/// Redis's `DBSIZE`, as a number.
fn keys(redis: &RedisServer) -> u64 {
    let reply = redis.command("DBSIZE");
    reply
        .trim_start_matches(':')
        .parse()
        .unwrap_or_else(|_| panic!("DBSIZE answered {reply:?}"))
}

/// Whether the result of `key` reaches Redis within a second (A's write follows its answer).
async fn stored(redis: &RedisServer, key: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < deadline {
        if redis.command(&format!("EXISTS offload:cache:{key}")) == ":1" {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (replica(&redis.url()), replica(&redis.url()));
    let id = fresh_id();
    let first = a.run(Probe::value(id, 1000)).await.expect("runs");
    assert_eq!(first.outcome, Outcome::Miss);
    // The write to Redis follows the answer; wait for it rather than race it.
    eventually("replica A's result reaches redis", || keys(&redis) == 1).await;
    let second = b.run(Probe::value(id, 1000)).await.expect("runs");
    assert_eq!(second.outcome, Outcome::Hit, "replica B's first request");
    assert_eq!(second.value, first.value);
    assert_eq!(second.key, first.key);
    assert_eq!(state(id).runs.load(Ordering::SeqCst), 1);
    assert_eq!(b.stats().shared_hits, 1);
    assert_eq!(b.stats().executions, 0);
    // B now has it locally too.
    assert_eq!(
        b.run(Probe::value(id, 1000)).await.expect("runs").outcome,
        Outcome::Hit
    );
    assert_eq!(b.stats().shared_hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_entries_carry_the_ttl() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let cache = Cache::builder()
        .secret(Secret::from_passphrase("ttl"))
        .ttl(Duration::from_secs(30))
        .redis(redis.url())
        .build(pool(1))
        .expect("cache");
    let cached = cache.run(Probe::value(fresh_id(), 10)).await.expect("runs");
    let key = format!("offload:cache:{}", cached.key.expect("keyed"));
    eventually("the result reaches redis", || keys(&redis) == 1).await;
    let pttl: i64 = redis
        .command(&format!("PTTL {key}"))
        .trim_start_matches(':')
        .parse()
        .expect("PTTL is a number");
    assert!((1..=30_000).contains(&pttl), "PTTL {pttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_is_down_degrades_to_the_local_tier_and_comes_back() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (replica(&redis.url()), replica(&redis.url()));
    redis.stop();

    let id = fresh_id();
    let first = a
        .run(Probe::value(id, 100))
        .await
        .expect("served without redis");
    assert_eq!(first.outcome, Outcome::Miss);
    let again = a
        .run(Probe::value(id, 100))
        .await
        .expect("served without redis");
    assert_eq!(again.outcome, Outcome::Hit, "the local tier still serves");
    let other = b
        .run(Probe::value(id, 100))
        .await
        .expect("served without redis");
    assert_eq!(
        other.outcome,
        Outcome::Miss,
        "nothing shared while redis is down"
    );
    assert_eq!(other.value, first.value);
    assert!(a.stats().shared_errors > 0);

    redis.restart();
    // Shared again once the pause after the last failure is over and the connection is
    // back: a fresh key computed by A becomes a hit for B. Bounded retries.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let id = fresh_id();
        let computed = a.run(Probe::value(id, 100)).await.expect("runs");
        let key = computed.key.expect("keyed");
        if !stored(&redis, &key.to_string()).await {
            assert!(tokio::time::Instant::now() < deadline, "never stored again");
            continue;
        }
        let cached = b.run(Probe::value(id, 100)).await.expect("runs");
        if cached.outcome == Outcome::Hit {
            assert_eq!(state(id).runs.load(Ordering::SeqCst), 1);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never shared again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_is_down_at_start_is_no_reason_not_to_start() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    redis.stop();
    let cache = replica(&url);
    let id = fresh_id();
    let cached = cache
        .run(Probe::value(id, 10))
        .await
        .expect("served without redis");
    assert_eq!(cached.outcome, Outcome::Miss);
    assert_eq!(state(id).runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_tier_needs_a_shared_secret() {
    let built = Cache::builder()
        .redis("redis://127.0.0.1:1/")
        .build(pool(1));
    assert_eq!(built.err(), Some(BuildError::SharedWithoutSecret));
    let built = Cache::builder()
        .secret(Secret::random())
        .redis("not a url")
        .build(pool(1));
    assert!(matches!(built, Err(BuildError::RedisUrl(_))));
}
