//! The queue is bounded: `try_run` refuses at once, `run` waits without blocking.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::task::Poll;

use futures::FutureExt;
use offload::Pool;

#[tokio::test]
async fn smoke() {
    let pool = Pool::builder()
        .threads(1)
        .queue_capacity(2)
        .build()
        .unwrap();
    let (gate, running) = support::occupy(&pool);
    let a = pool.try_run(|| 'a').unwrap();
    let b = pool.try_run(|| 'b').unwrap();
    let err = pool.try_run(|| 'c').unwrap_err();
    assert!(err.is_full() && !err.is_closed());
    assert_eq!(err.to_string(), "queue full");
    assert_eq!((err.into_task())(), 'c', "the task comes back untouched");
    gate.open();
    assert_eq!((a.await, b.await), (Ok('a'), Ok('b')));
    for h in running {
        h.await.unwrap();
    }
    let m = pool.metrics();
    assert_eq!((m.submitted, m.rejected, m.completed), (3, 1, 3));
}

#[tokio::test]
async fn running_tasks_do_not_count_against_the_capacity() {
    let pool = Pool::builder()
        .threads(2)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (gate, running) = support::occupy(&pool);
    assert_eq!(pool.metrics().running, 2);
    assert_eq!(pool.metrics().queued, 0);
    let queued = pool.try_run(|| 1).unwrap();
    assert_eq!(pool.metrics().queued, 1);
    assert!(pool.try_run(|| 2).unwrap_err().is_full());
    gate.open();
    assert_eq!(queued.await, Ok(1));
    for h in running {
        h.await.unwrap();
    }
}

#[tokio::test]
async fn run_waits_for_room_instead_of_failing() {
    let pool = Pool::builder()
        .threads(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (gate, running) = support::occupy(&pool);
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
    gate.open();
    assert_eq!(first.await, Ok(1));
    assert_eq!(waiting.await, Ok(2));
    for h in running {
        h.await.unwrap();
    }
    let m = pool.metrics();
    assert_eq!((m.submitted, m.rejected, m.completed), (3, 0, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_queue_never_holds_more_than_its_capacity() {
    let capacity = 8;
    let pool = Pool::builder()
        .threads(2)
        .queue_capacity(capacity)
        .build()
        .unwrap();
    let mut submitters = Vec::new();
    for s in 0..16 {
        let pool = pool.clone();
        submitters.push(tokio::spawn(async move {
            let mut most_queued = 0;
            for i in 0..200u64 {
                let v = pool.run(move || i * s).await.unwrap();
                assert_eq!(v, i * s);
                most_queued = most_queued.max(pool.metrics().queued);
            }
            most_queued
        }));
    }
    for s in submitters {
        let most = s.await.unwrap();
        assert!(
            most <= capacity as u64,
            "queued {most} > capacity {capacity}"
        );
    }
    pool.shutdown().await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.rejected), (3200, 3200, 0));
}

#[test]
fn a_dropped_waiter_never_submits() {
    let pool = Pool::builder()
        .threads(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (gate, running) = support::occupy(&pool);
    let first = pool.try_run(|| 1).unwrap();
    let waiting = pool.run(|| 2).into_future();
    let mut waiting = Box::pin(waiting);
    assert!((&mut waiting).now_or_never().is_none());
    drop(waiting);
    gate.open();
    futures::executor::block_on(async {
        assert_eq!(first.await, Ok(1));
        for h in running {
            h.await.unwrap();
        }
        pool.shutdown().await;
    });
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.cancelled), (2, 2, 0));
    assert!(m.is_settled());
}
