//! The queue is bounded: `try_run` refuses at once, `run` waits without blocking.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::task::Poll;

use futures::FutureExt;

#[tokio::test]
async fn smoke() {
    let pool = support::pool(1, 2);
    let busy = support::occupy(&pool);
    let a = pool.try_run(|| 'a').unwrap();
    let b = pool.try_run(|| 'b').unwrap();
    let err = pool.try_run(|| 'c').unwrap_err();
    assert!(err.is_full() && !err.is_closed());
    assert_eq!(err.to_string(), "queue full");
    assert_eq!((err.into_task())(), 'c', "the task comes back untouched");
    busy.release().await;
    assert_eq!((a.await, b.await), (Ok('a'), Ok('b')));
    let m = pool.metrics();
    assert_eq!((m.submitted, m.rejected, m.completed), (3, 1, 3));
}

#[tokio::test]
async fn running_tasks_do_not_count_against_the_capacity() {
    let pool = support::pool(2, 1);
    let busy = support::occupy(&pool);
    assert_eq!((pool.running(), pool.queued()), (2, 0));
    assert_eq!((pool.metrics().running, pool.metrics().queued), (2, 0));
    let queued = pool.try_run(|| 1).unwrap();
    assert_eq!((pool.running(), pool.queued()), (2, 1));
    assert!(pool.try_run(|| 2).unwrap_err().is_full());
    busy.release().await;
    assert_eq!(queued.await, Ok(1));
}

#[tokio::test]
async fn run_waits_for_room_instead_of_failing() {
    let pool = support::pool(1, 1);
    let busy = support::occupy(&pool);
    let first = pool.try_run(|| 1).unwrap();
    let mut waiting = pool.run(|| 2).into_future();
    // Full: the future stays pending (and returns, so the calling thread is not blocked).
    for _ in 0..3 {
        assert!(matches!(futures::poll!(&mut waiting), Poll::Pending));
    }
    assert_eq!(pool.metrics().queued, 1);
    assert_eq!(
        pool.metrics().submitted,
        2,
        "the waiting task is not submitted yet"
    );
    busy.release().await;
    assert_eq!(first.await, Ok(1));
    assert_eq!(waiting.await, Ok(2));
    let m = pool.metrics();
    assert_eq!((m.submitted, m.rejected, m.completed), (3, 0, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_queue_never_holds_more_than_its_capacity() {
    let capacity = 8;
    let pool = support::pool(2, capacity);
    let mut submitters = Vec::new();
    for s in 0..16 {
        let pool = pool.clone();
        submitters.push(tokio::spawn(async move {
            let mut most_queued = 0;
            for i in 0..200u64 {
                let v = pool.run(move || i * s).await.unwrap();
                assert_eq!(v, i * s);
                most_queued = most_queued.max(pool.queued());
            }
            most_queued
        }));
    }
    for s in submitters {
        let most = s.await.unwrap();
        assert!(most <= capacity, "queued {most} > capacity {capacity}");
    }
    pool.shutdown().await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.rejected), (3200, 3200, 0));
}

#[test]
fn a_dropped_waiter_never_submits() {
    let pool = support::pool(1, 1);
    let busy = support::occupy(&pool);
    let first = pool.try_run(|| 1).unwrap();
    let waiting = pool.run(|| 2).into_future();
    let mut waiting = Box::pin(waiting);
    assert!((&mut waiting).now_or_never().is_none());
    drop(waiting);
    futures::executor::block_on(async {
        busy.release().await;
        assert_eq!(first.await, Ok(1));
        pool.shutdown().await;
    });
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.cancelled), (2, 2, 0));
    assert!(m.is_settled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tiny_queue_under_many_submitters_loses_nothing() {
    // A drainer claims a task before it pops it, so for a moment a queue channel can hold
    // one more task per drainer than the capacity; none of those may be dropped.
    let pool = support::pool(2, 1);
    let mut submitters = Vec::new();
    for s in 0..8u64 {
        let pool = pool.clone();
        submitters.push(tokio::spawn(async move {
            for i in 0..2_000u64 {
                assert_eq!(pool.run(move || i + s).await, Ok(i + s));
            }
        }));
    }
    for s in submitters {
        s.await.unwrap();
    }
    pool.shutdown().await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed), (16_000, 16_000));
}
