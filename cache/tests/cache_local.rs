//! The local tier: TTL, the byte bound, and what is (not) kept.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use offload_cache::{Cache, Outcome};
use support::{Mode, PATIENCE, Probe, fresh_id, pool, state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let cache = Cache::builder().build(pool(1)).expect("cache");
    let id = fresh_id();
    let miss = cache.run(Probe::value(id, 100)).await.expect("runs");
    let hit = cache.run(Probe::value(id, 100)).await.expect("runs");
    assert_eq!((miss.outcome, hit.outcome), (Outcome::Miss, Outcome::Hit));
    let stats = cache.stats();
    assert_eq!(stats.entries, 1);
    // The weight is the serialised length: the 100 bytes plus postcard's framing.
    assert!((100..120).contains(&stats.bytes), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_recomputes() {
    let cache = Cache::builder()
        .ttl(Duration::from_millis(50))
        .build(pool(1))
        .expect("cache");
    let id = fresh_id();
    assert_eq!(
        cache.run(Probe::value(id, 8)).await.expect("runs").outcome,
        Outcome::Miss
    );
    // Until the entry expires calls are hits; then one recomputes. Bounded poll, no
    // assumption about when exactly the 50 ms run out on a loaded machine.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let cached = cache.run(Probe::value(id, 8)).await.expect("runs");
        if cached.outcome == Outcome::Miss {
            break;
        }
        assert_eq!(cached.outcome, Outcome::Hit);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the entry never expired"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(state(id).runs.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().executions, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_bound_holds_under_distinct_large_results() {
    const CAPACITY: u64 = 1 << 20;
    const SIZE: usize = 64 << 10;
    let cache = Cache::builder()
        .capacity_bytes(CAPACITY)
        .build(pool(2))
        .expect("cache");
    for _ in 0..100 {
        let cached = cache
            .run(Probe::value(fresh_id(), SIZE))
            .await
            .expect("runs");
        assert_eq!(cached.outcome, Outcome::Miss);
        let stats = cache.stats();
        assert!(stats.bytes <= CAPACITY, "{} bytes held", stats.bytes);
        assert!(stats.entries <= CAPACITY / SIZE as u64, "{stats:?}");
    }
    let stats = cache.stats();
    assert!(stats.evictions >= 100 - CAPACITY / SIZE as u64, "{stats:?}");
    // A result larger than the whole bound is returned but not kept.
    let huge = cache
        .run(Probe::value(fresh_id(), 2 << 20))
        .await
        .expect("runs");
    assert_eq!(huge.value.map(|v| v.len()), Ok(2 << 20));
    assert!(cache.stats().bytes <= CAPACITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_errors_are_not_cached() {
    let cache = Cache::builder().build(pool(1)).expect("cache");
    let id = fresh_id();
    for _ in 0..2 {
        let err = cache
            .run(Probe::mode(id, Mode::Panic))
            .await
            .expect_err("the probe panics");
        assert!(err.is_panic(), "{err}");
    }
    assert_eq!(state(id).runs.load(Ordering::SeqCst), 2);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (0, 2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_errors_are_not_cached_without_a_negative_ttl() {
    let cache = Cache::builder().build(pool(1)).expect("cache");
    let id = fresh_id();
    for _ in 0..2 {
        let cached = cache
            .run(Probe::mode(id, Mode::Refuse))
            .await
            .expect("runs");
        assert_eq!(cached.outcome, Outcome::Miss);
        assert!(cached.value.is_err());
    }
    assert_eq!(state(id).runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_ttl_refuses_the_same_input_from_the_cache() {
    let cache = Cache::builder()
        .negative_ttl(Duration::from_secs(60))
        .build(pool(1))
        .expect("cache");
    let id = fresh_id();
    let first = cache
        .run(Probe::mode(id, Mode::Refuse))
        .await
        .expect("runs");
    let second = cache
        .run(Probe::mode(id, Mode::Refuse))
        .await
        .expect("runs");
    assert_eq!(
        (first.outcome, second.outcome),
        (Outcome::Miss, Outcome::Hit)
    );
    assert_eq!(second.value, Err(format!("probe {id} refused")));
    assert_eq!(state(id).runs.load(Ordering::SeqCst), 1);
}
