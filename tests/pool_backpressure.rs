//! The queue is bounded: `try_run` refuses at once, `run` waits without blocking.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::task::Poll;

use futures::FutureExt;
use support::bounded;

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
    assert_eq!(
        bounded(async { (a.await, b.await) }).await,
        (Ok('a'), Ok('b'))
    );
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.rejected, m.completed), (3, 1, 3));
    assert!(m.is_settled());
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
    assert_eq!(bounded(queued).await, Ok(1));
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
    assert_eq!(bounded(first).await, Ok(1));
    assert_eq!(bounded(waiting).await, Ok(2));
    let m = pool.metrics();
    assert_eq!((m.submitted, m.rejected, m.completed), (3, 0, 3));
}

/// Many threads race `try_run` for the last slots while every worker is held, round after
/// round. Each task marks when its body starts; a handle that came back `Ok` is a task
/// admitted. With the workers held no task can start, so the admitted tasks are exactly the
/// ones waiting: counted here from the handles, not read from the pool's own gauge (which the
/// admission check itself caps), a broken bound would show.
#[test]
fn the_queue_never_holds_more_than_its_capacity() {
    const CAPACITY: usize = 8;
    const RACERS: usize = 4;
    let pool = support::pool(2, CAPACITY);
    let started = Arc::new(AtomicUsize::new(0));
    let mut admitted_total = 0;
    for round in 0..100 {
        let busy = support::occupy(&pool);
        let start_line = Arc::new(Barrier::new(RACERS));
        let (tx, admitted) = mpsc::channel();
        for _ in 0..RACERS {
            let (pool, started, start_line, tx) = (
                pool.clone(),
                Arc::clone(&started),
                Arc::clone(&start_line),
                tx.clone(),
            );
            std::thread::spawn(move || {
                let mut handles = Vec::new();
                start_line.wait();
                loop {
                    let started = Arc::clone(&started);
                    match pool.try_run(move || {
                        started.fetch_add(1, Ordering::SeqCst);
                        round
                    }) {
                        Ok(handle) => handles.push(handle),
                        Err(e) => {
                            assert!(e.is_full(), "{e}");
                            break;
                        }
                    }
                }
                tx.send(handles).unwrap();
            });
        }
        let handles: Vec<_> = (0..RACERS)
            .flat_map(|_| admitted.recv_timeout(support::PATIENCE).unwrap())
            .collect();
        let waiting = handles.len() + admitted_total - started.load(Ordering::SeqCst);
        assert_eq!(
            waiting, CAPACITY,
            "round {round}: tasks admitted and not started"
        );
        support::block_on(async {
            busy.release().await;
            for h in handles {
                assert_eq!(h.await, Ok(round));
            }
        });
        admitted_total += CAPACITY;
        assert_eq!(started.load(Ordering::SeqCst), admitted_total);
    }
    support::block_on(pool.shutdown());
    let m = pool.metrics();
    let holders = 2 * 100;
    assert_eq!(m.submitted, (admitted_total + holders) as u64);
    assert_eq!(m.completed, m.submitted);
    assert_eq!(
        m.rejected,
        (RACERS * 100) as u64,
        "one `Full` per racer per round"
    );
    assert!(m.is_settled());
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
    support::block_on(async {
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
    bounded(async {
        for s in submitters {
            s.await.unwrap();
        }
        pool.shutdown().await;
    })
    .await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed), (16_000, 16_000));
    assert!(m.is_settled());
}
