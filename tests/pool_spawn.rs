//! `run` and `run_all` futures own a handle to their pool: they are `Send + 'static`, so
//! they can be spawned as they are, and a pending one keeps the pool open.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use offload::{Pool, Run, RunAll, RunAllFuture, RunFuture, Task, TaskHandle};
use support::bounded;

/// Fans out with `tokio::spawn(pool.run(..).into_future())`: no clone of the pool per task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let pool = support::pool(2, 16);
    let joins: Vec<_> = (0..500u64)
        .map(|i| tokio::spawn(pool.run(move || i * 3).into_future()))
        .collect();
    let batch = tokio::spawn(
        pool.run_all((0..50u64).map(|i| move || i + 1))
            .into_future(),
    );
    bounded(async {
        for (i, j) in joins.into_iter().enumerate() {
            assert_eq!(j.await.unwrap(), Ok(i as u64 * 3));
        }
        let expected: Vec<_> = (1..=50).map(Ok).collect();
        assert_eq!(batch.await.unwrap(), expected);
        pool.shutdown().await;
    })
    .await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.rejected), (550, 550, 0));
    assert!(m.is_settled());
}

/// Compiled, not run for its result: for every task type, what `run`, `run_all` and
/// `try_run` return is `Send + 'static`, as `tokio::spawn` and axum handlers require.
#[test]
fn the_futures_are_send_and_static_for_every_task() {
    fn send_static<T: Send + 'static>() {}
    fn every<T: Task>() {
        send_static::<Run<T>>();
        send_static::<RunFuture<T>>();
        send_static::<RunAll<T>>();
        send_static::<RunAllFuture<T>>();
        send_static::<TaskHandle<T::Output>>();
    }
    every::<fn() -> u8>();
    every::<Box<dyn FnOnce() -> String + Send>>();
}

/// A pool whose single thread reports its exit, with room for two queued tasks.
fn watched_pool() -> (Pool, mpsc::Receiver<()>) {
    let (stop_tx, stops) = mpsc::channel();
    let stop_tx = std::sync::Mutex::new(stop_tx);
    let pool = Pool::builder()
        .threads(1)
        .queue_capacity(2)
        .on_thread_stop(move || {
            let _ = stop_tx.lock().unwrap().send(());
        })
        .build()
        .unwrap();
    (pool, stops)
}

/// Spawns `fut` and counts its first poll, at which it submits or starts to wait for room:
/// on a current-thread runtime both happen in that same poll.
fn spawn_counted<F>(fut: F, polled: &Arc<AtomicUsize>) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let polled = Arc::clone(polled);
    tokio::spawn(async move {
        polled.fetch_add(1, Ordering::SeqCst);
        fut.await
    })
}

/// Every `Pool` handle is dropped while spawned `run`s are queued or still waiting for
/// queue room: they hold the pool open, so every one of them gets its value (none is
/// abandoned as `Closed`); the thread stops only after the last of them has finished.
#[tokio::test]
async fn dropping_every_pool_handle_leaves_spawned_runs_their_values() {
    let (pool, stops) = watched_pool();
    let busy = support::occupy(&pool);
    let polled = Arc::new(AtomicUsize::new(0));
    let runs: Vec<_> = (0..8u32)
        .map(|i| spawn_counted(pool.run(move || i * 10).into_future(), &polled))
        .collect();
    support::until(|| polled.load(Ordering::SeqCst) == 8).await;
    let m = pool.metrics();
    assert_eq!(
        (m.submitted, m.queued),
        (3, 2),
        "one holder running, two queued, the rest waiting for room: {m:?}"
    );

    drop(pool);
    busy.release().await;
    let values = bounded(async {
        let mut values = Vec::new();
        for r in runs {
            values.push(r.await.unwrap());
        }
        values
    })
    .await;
    let expected: Vec<_> = (0..8).map(|i| Ok(i * 10)).collect();
    assert_eq!(values, expected);
    stops
        .recv_timeout(support::PATIENCE)
        .expect("the pool's thread never stopped after its last future ended");
}

/// The same for a spawned `run_all` larger than the queue.
#[tokio::test]
async fn dropping_every_pool_handle_leaves_a_spawned_batch_its_values() {
    let (pool, stops) = watched_pool();
    let busy = support::occupy(&pool);
    let polled = Arc::new(AtomicUsize::new(0));
    let batch = spawn_counted(
        pool.run_all((0..6u32).map(|k| move || 100 + k))
            .into_future(),
        &polled,
    );
    support::until(|| polled.load(Ordering::SeqCst) == 1).await;
    assert_eq!(pool.metrics().submitted, 3, "holder and two queued");

    drop(pool);
    busy.release().await;
    let results = bounded(batch).await.unwrap();
    let expected: Vec<_> = (0..6).map(|k| Ok(100 + k)).collect();
    assert_eq!(results, expected);
    stops
        .recv_timeout(support::PATIENCE)
        .expect("the pool's thread never stopped after its last future ended");
}
