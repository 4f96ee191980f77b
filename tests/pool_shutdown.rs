//! Shutdown finishes accepted work and joins the threads; dropping the pool neither hangs
//! nor leaks.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use offload::{Error, Pool};

fn counting_pool(threads: usize) -> (Pool, Arc<AtomicUsize>, mpsc::Receiver<()>) {
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&stopped);
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let pool = Pool::builder()
        .threads(threads)
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
    let (pool, stopped, _) = counting_pool(2);
    let busy = support::occupy(&pool);
    let queued: Vec<_> = (0..10)
        .map(|i| pool.try_run(move || i * 10).unwrap())
        .collect();
    let shutdown = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.shutdown().await })
    };
    // Once closed, new work is refused...
    while !pool.is_closed() {
        tokio::task::yield_now().await;
    }
    assert_eq!(pool.run(|| 0).await, Err(Error::Closed));
    assert!(pool.try_run(|| 0).unwrap_err().is_closed());
    // ...while accepted work finishes.
    busy.release().await;
    for (i, h) in queued.into_iter().enumerate() {
        assert_eq!(h.await, Ok(i * 10));
    }
    shutdown.await.unwrap();
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
    let (pool, stopped, _) = counting_pool(2);
    pool.run(|| ()).await.unwrap();
    let other = pool.clone();
    tokio::join!(pool.shutdown(), other.shutdown());
    pool.shutdown().await;
    assert_eq!(stopped.load(Ordering::SeqCst), 2);
}

#[test]
fn dropping_the_last_pool_resolves_queued_tasks_as_closed_and_stops_the_threads() {
    let (pool, _, stops) = counting_pool(1);
    let busy = support::occupy(&pool);
    let queued: Vec<_> = (0..5).map(|i| pool.try_run(move || i).unwrap()).collect();
    drop(pool);
    futures::executor::block_on(async {
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
    let (pool, _, stops) = counting_pool(3);
    drop(pool);
    for _ in 0..3 {
        stops
            .recv_timeout(support::PATIENCE)
            .expect("a worker thread never exited");
    }
}

#[tokio::test]
async fn shutdown_of_an_unused_pool_returns() {
    let (pool, stopped, _) = counting_pool(2);
    pool.shutdown().await;
    assert_eq!(stopped.load(Ordering::SeqCst), 2);
    assert!(pool.metrics().is_settled());
}
