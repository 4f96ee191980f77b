//! Single-flight: identical calls in flight run once; the computation outlives any one
//! caller and is cancelled only when all have gone.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use offload_cache::{Cache, Outcome};
use support::{Mode, Probe, eventually, fresh_id, pool, state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let cache = Cache::builder().build(pool(1)).expect("cache");
    let id = fresh_id();
    let first = cache.run(Probe::value(id, 8)).await.expect("runs");
    let second = cache.run(Probe::value(id, 8)).await.expect("runs");
    assert_eq!(first.outcome, Outcome::Miss);
    assert_eq!(second.outcome, Outcome::Hit);
    assert_eq!(first.value, Ok(vec![(id % 251) as u8; 8]));
    assert_eq!(first.value, second.value);
    assert_eq!(first.key, second.key);
    assert_eq!(state(id).runs.load(Ordering::SeqCst), 1);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.executions), (1, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_identical_calls_run_once() {
    for _round in 0..10 {
        let cache = Cache::builder().build(pool(2)).expect("cache");
        let id = fresh_id();
        let barrier = Arc::new(tokio::sync::Barrier::new(50));
        let calls: Vec<_> = (0..50)
            .map(|_| {
                let cache = cache.clone();
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    cache.run(Probe::mode(id, Mode::Hold)).await
                })
            })
            .collect();
        eventually("the probe starts", || {
            state(id).started.load(Ordering::SeqCst)
        })
        .await;
        state(id).release();
        let mut outcomes = Vec::new();
        for call in calls {
            let cached = call.await.expect("no panic").expect("runs");
            assert_eq!(cached.value, Ok(vec![(id % 251) as u8; 16]));
            outcomes.push(cached.outcome);
        }
        let count = |o| outcomes.iter().filter(|&&x| x == o).count();
        assert_eq!(
            state(id).runs.load(Ordering::SeqCst),
            1,
            "exactly one execution"
        );
        assert_eq!(count(Outcome::Miss), 1);
        assert_eq!(count(Outcome::Coalesced) + count(Outcome::Hit), 49);
        let stats = cache.stats();
        assert_eq!(stats.executions, 1);
        assert_eq!(stats.misses + stats.coalesced + stats.hits, 50);
        assert_eq!((stats.in_flight, stats.waiting), (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_caller_drops_the_others_get_the_result() {
    let cache = Cache::builder().build(pool(1)).expect("cache");
    let id = fresh_id();
    let first = tokio::spawn(cache.run(Probe::mode(id, Mode::Hold)));
    eventually("the probe starts", || {
        state(id).started.load(Ordering::SeqCst)
    })
    .await;
    let others: Vec<_> = (0..4)
        .map(|_| tokio::spawn(cache.run(Probe::mode(id, Mode::Hold))))
        .collect();
    eventually("five callers wait", || cache.stats().waiting == 5).await;
    first.abort();
    assert!(first.await.expect_err("aborted").is_cancelled());
    eventually("the first caller has left", || cache.stats().waiting == 4).await;
    assert_eq!(cache.stats().in_flight, 1, "the computation goes on");
    state(id).release();
    for other in others {
        let cached = other.await.expect("no panic").expect("runs");
        assert_eq!(cached.outcome, Outcome::Coalesced);
        assert_eq!(cached.value, Ok(vec![(id % 251) as u8; 16]));
    }
    assert_eq!(state(id).runs.load(Ordering::SeqCst), 1);
    assert!(!state(id).saw_cancel.load(Ordering::SeqCst));
    assert_eq!(
        cache
            .run(Probe::mode(id, Mode::Hold))
            .await
            .expect("runs")
            .outcome,
        Outcome::Hit
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_callers_drop_a_queued_task_never_runs() {
    let pool = pool(1);
    let cache = Cache::builder().build(pool.clone()).expect("cache");
    // Keep the only thread busy so the cached task stays queued.
    let blocker = fresh_id();
    let busy = tokio::spawn(pool.run(Probe::mode(blocker, Mode::Hold)).into_future());
    eventually("the blocker starts", || {
        state(blocker).started.load(Ordering::SeqCst)
    })
    .await;

    let id = fresh_id();
    let calls: Vec<_> = (0..3)
        .map(|_| tokio::spawn(cache.run(Probe::value(id, 16))))
        .collect();
    eventually("three callers wait", || cache.stats().waiting == 3).await;
    for call in &calls {
        call.abort();
    }
    eventually("the computation is gone", || cache.stats().in_flight == 0).await;

    state(blocker).release();
    busy.await
        .expect("no panic")
        .expect("runs")
        .expect("blocker value");
    // FIFO on one thread: had the cached task stayed queued, it would run before this one.
    let after = fresh_id();
    pool.run(Probe::value(after, 1))
        .await
        .expect("runs")
        .expect("value");
    assert_eq!(
        state(id).runs.load(Ordering::SeqCst),
        0,
        "cancelled while queued"
    );
    assert_eq!(cache.stats().executions, 1, "started, then cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_callers_drop_a_running_task_is_cancelled() {
    let cache = Cache::builder().build(pool(1)).expect("cache");
    let id = fresh_id();
    let calls: Vec<_> = (0..3)
        .map(|_| tokio::spawn(cache.run(Probe::mode(id, Mode::Hold))))
        .collect();
    eventually("the probe starts", || {
        state(id).started.load(Ordering::SeqCst)
    })
    .await;
    eventually("three callers wait", || cache.stats().waiting == 3).await;
    for call in &calls {
        call.abort();
    }
    eventually("the running task sees is_cancelled", || {
        state(id).saw_cancel.load(Ordering::SeqCst)
    })
    .await;
    eventually("the computation is gone", || cache.stats().in_flight == 0).await;
    assert_eq!(state(id).runs.load(Ordering::SeqCst), 1);
    // Nothing was stored: the next call computes again.
    state(id).release();
    let again = cache.run(Probe::mode(id, Mode::Hold)).await.expect("runs");
    assert_eq!(again.outcome, Outcome::Miss);
    assert_eq!(state(id).runs.load(Ordering::SeqCst), 2);
}
