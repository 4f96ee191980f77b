//! Shutdown finishes accepted work and joins the threads; dropping the pool neither hangs
//! nor leaks.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use offload::{Error, Pool};
use support::{Tally, bounded};
use tokio::task::JoinHandle;

fn counting_pool(threads: usize, capacity: usize) -> (Pool, Arc<AtomicUsize>, mpsc::Receiver<()>) {
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&stopped);
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let pool = Pool::builder()
        .threads(threads)
        .queue_capacity(capacity)
        .on_thread_stop(move || {
            s.fetch_add(1, Ordering::SeqCst);
            let _ = tx.lock().unwrap().send(());
        })
        .build()
        .unwrap();
    (pool, stopped, rx)
}

#[tokio::test]
async fn smoke() {
    let (pool, stopped, _) = counting_pool(2, 64);
    let busy = support::occupy(&pool);
    let queued: Vec<_> = (0..10)
        .map(|i| pool.try_run(move || i * 10).unwrap())
        .collect();
    let shutdown = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.shutdown().await })
    };
    // Once closed, new work is refused...
    support::until(|| pool.is_closed()).await;
    assert_eq!(bounded(pool.run(|| 0)).await, Err(Error::Closed));
    assert!(pool.try_run(|| 0).unwrap_err().is_closed());
    // ...while accepted work finishes.
    busy.release().await;
    bounded(async {
        for (i, h) in queued.into_iter().enumerate() {
            assert_eq!(h.await, Ok(i * 10));
        }
        shutdown.await.unwrap();
    })
    .await;
    assert_eq!(
        stopped.load(Ordering::SeqCst),
        2,
        "threads joined before shutdown returned"
    );
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.rejected), (12, 12, 2));
    assert!(m.is_settled());
}

#[tokio::test]
async fn shutdown_twice_and_from_clones_is_fine() {
    let (pool, stopped, _) = counting_pool(2, 64);
    bounded(pool.run(|| ())).await.unwrap();
    let other = pool.clone();
    bounded(async { tokio::join!(pool.shutdown(), other.shutdown()) }).await;
    bounded(pool.shutdown()).await;
    assert_eq!(stopped.load(Ordering::SeqCst), 2);
}

#[test]
fn dropping_the_last_pool_resolves_queued_tasks_as_closed_and_stops_the_threads() {
    let (pool, _, stops) = counting_pool(1, 64);
    let busy = support::occupy(&pool);
    let queued: Vec<_> = (0..5).map(|i| pool.try_run(move || i).unwrap()).collect();
    drop(pool);
    support::block_on(async {
        busy.release().await;
        for h in queued {
            assert_eq!(h.await, Err(Error::Closed));
        }
    });
    stops
        .recv_timeout(support::PATIENCE)
        .expect("the worker thread never exited");
}

#[test]
fn dropping_an_idle_pool_stops_its_threads() {
    let (pool, _, stops) = counting_pool(3, 64);
    drop(pool);
    for _ in 0..3 {
        stops
            .recv_timeout(support::PATIENCE)
            .expect("a worker thread never exited");
    }
}

#[tokio::test]
async fn shutdown_of_an_unused_pool_returns() {
    let (pool, stopped, _) = counting_pool(2, 64);
    bounded(pool.shutdown()).await;
    assert_eq!(stopped.load(Ordering::SeqCst), 2);
    assert!(pool.metrics().is_settled());
}

/// Spawns `n` `run` futures on a current-thread runtime and waits until each has been
/// polled once: a spawned task runs only when the test yields, and its first poll tries to
/// submit, so from then on it is queued or registered as a waiter for room.
async fn spawn_runs(pool: &Pool, n: usize) -> Vec<JoinHandle<Result<usize, Error>>> {
    let polled = Arc::new(AtomicUsize::new(0));
    let joins = (0..n)
        .map(|i| {
            let fut = pool.run(move || 100 + i).into_future();
            let polled = Arc::clone(&polled);
            tokio::spawn(async move {
                polled.fetch_add(1, Ordering::SeqCst);
                fut.await
            })
        })
        .collect();
    support::until(|| polled.load(Ordering::SeqCst) == n).await;
    joins
}

async fn outcomes(joins: Vec<JoinHandle<Result<usize, Error>>>) -> Vec<Result<usize, Error>> {
    let mut out = Vec::new();
    for j in joins {
        out.push(j.await.unwrap());
    }
    out
}

/// The queue is full behind a held worker and five `run`s wait for room. `close` wakes
/// every waiter: each resolves `Err(Closed)` while the gate is still shut (it did not wait
/// for the queue to drain), counted `rejected`, not `submitted`; the queued and running
/// tasks still finish with their values.
#[tokio::test]
async fn close_refuses_runs_waiting_for_room_at_once() {
    let pool = support::pool(1, 2);
    let busy = support::occupy(&pool);
    let queued = [pool.try_run(|| 1).unwrap(), pool.try_run(|| 2).unwrap()];
    let waiters = spawn_runs(&pool, 5).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.queued, m.rejected), (3, 2, 0), "{m:?}");

    pool.close();
    let refused = bounded(outcomes(waiters)).await;
    assert_eq!(refused, vec![Err(Error::Closed); 5]);
    assert_eq!(
        (pool.running(), pool.queued()),
        (1, 2),
        "refused while the gate was still shut"
    );

    busy.release().await;
    let [a, b] = queued;
    assert_eq!(bounded(async { (a.await, b.await) }).await, (Ok(1), Ok(2)));
    bounded(pool.shutdown()).await;
    let want = Tally {
        submitted: 3,
        completed: 3,
        rejected: 5,
        ..Tally::default()
    };
    support::assert_settled(&pool, want);
}

/// The same with `shutdown` running concurrently: the waiters are refused while shutdown
/// still waits for the held task, and shutdown returns only after the queued tasks ran.
#[tokio::test]
async fn shutdown_refuses_runs_waiting_for_room_and_finishes_the_queue() {
    let (pool, stopped, _) = counting_pool(1, 2);
    let busy = support::occupy(&pool);
    let queued = [pool.try_run(|| 1).unwrap(), pool.try_run(|| 2).unwrap()];
    let waiters = spawn_runs(&pool, 5).await;

    let shutdown = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.shutdown().await })
    };
    let refused = bounded(outcomes(waiters)).await;
    assert_eq!(refused, vec![Err(Error::Closed); 5]);
    assert!(!shutdown.is_finished(), "the held task has not ended yet");
    assert_eq!((pool.running(), pool.queued()), (1, 2));

    busy.release().await;
    let [a, b] = queued;
    assert_eq!(bounded(async { (a.await, b.await) }).await, (Ok(1), Ok(2)));
    bounded(shutdown).await.unwrap();
    assert_eq!(stopped.load(Ordering::SeqCst), 1, "threads joined");
    let want = Tally {
        submitted: 3,
        completed: 3,
        rejected: 5,
        ..Tally::default()
    };
    support::assert_settled(&pool, want);
}

/// Many rounds of `run`s from several tasks on a multi-thread runtime, most of them waiting
/// for room in a tiny queue, with `close` landing at a different point each round: every
/// result is its value or `Closed`, and the counters match what the callers saw exactly.
#[test]
fn closing_under_many_waiting_runs_reconciles_exactly() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for round in 0..30u64 {
        let pool = support::pool(2, 2);
        let (ok, closed) = runtime.block_on(bounded(async {
            let joins: Vec<_> = (0..40u64)
                .map(|i| tokio::spawn(pool.run(move || i * 2).into_future()))
                .collect();
            support::until(|| pool.metrics().submitted >= round).await;
            pool.close();
            let (mut ok, mut closed) = (0u64, 0u64);
            for (i, j) in joins.into_iter().enumerate() {
                match j.await.unwrap() {
                    Ok(v) => {
                        assert_eq!(v, i as u64 * 2);
                        ok += 1;
                    }
                    Err(e) => {
                        assert_eq!(e, Error::Closed);
                        closed += 1;
                    }
                }
            }
            pool.shutdown().await;
            (ok, closed)
        }));
        assert_eq!(ok + closed, 40);
        let m = pool.metrics();
        assert_eq!(
            (m.submitted, m.completed, m.rejected),
            (ok, ok, closed),
            "{m:?}"
        );
        assert_eq!(m.cancelled + m.timed_out + m.panicked, 0, "{m:?}");
        assert!(m.is_settled());
    }
}
