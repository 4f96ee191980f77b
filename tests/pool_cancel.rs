//! Dropped futures, dropped handles and timeouts: what runs, what does not, and who hears.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;
use offload::Pool;
use support::{Gate, bounded, signal};

fn flag() -> (Arc<AtomicBool>, impl Fn() -> bool) {
    let f = Arc::new(AtomicBool::new(false));
    let g = Arc::clone(&f);
    (f, move || g.load(Ordering::SeqCst))
}

#[tokio::test]
async fn smoke() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let busy = support::occupy(&pool);
    let (ran, did_run) = flag();
    let mut fut = Box::pin(
        pool.run(move || ran.store(true, Ordering::SeqCst))
            .into_future(),
    );
    assert!(
        (&mut fut).now_or_never().is_none(),
        "queued behind the gate"
    );
    drop(fut);
    busy.release().await;
    bounded(pool.shutdown()).await;
    assert!(!did_run(), "a future dropped while queued must never run");
    let m = pool.metrics();
    assert_eq!((m.submitted, m.cancelled, m.completed), (2, 1, 1));
    assert!(m.is_settled());
}

#[tokio::test]
async fn a_dropped_handle_cancels_its_queued_task() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let busy = support::occupy(&pool);
    let (ran, did_run) = flag();
    let handle = pool
        .try_run(move || ran.store(true, Ordering::SeqCst))
        .unwrap();
    drop(handle);
    busy.release().await;
    bounded(pool.shutdown()).await;
    assert!(!did_run());
    let m = pool.metrics();
    assert_eq!((m.submitted, m.cancelled, m.completed), (2, 1, 1));
    assert!(m.is_settled());
}

#[tokio::test]
async fn a_running_task_sees_is_cancelled_once_its_caller_leaves() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let (started_tx, started) = signal();
    let (done_tx, done) = std::sync::mpsc::channel();
    let handle = pool
        .try_run(move || {
            assert!(!offload::is_cancelled());
            started_tx.send(()).unwrap();
            let mut spins = 0u64;
            while !offload::is_cancelled() {
                spins += 1;
                std::thread::yield_now();
            }
            done_tx.send(spins).unwrap();
        })
        .unwrap();
    started.wait();
    drop(handle);
    done.recv_timeout(support::PATIENCE)
        .expect("the task never saw the cancellation");
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.cancelled, m.completed), (1, 1, 0));
    assert!(m.is_settled());
    assert!(!offload::is_cancelled(), "false outside tasks");
}

/// The caller gets the timeout while its task is still blocked: the gate opens only after
/// the error has arrived, so the error cannot have waited for the task.
#[tokio::test]
async fn a_timeout_reaches_the_caller_while_the_task_is_still_blocked() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let gate = Gate::new();
    let (started_tx, started) = signal();
    let (saw_tx, saw) = std::sync::mpsc::channel();
    let g = gate.clone();
    let err = bounded(
        pool.run(move || {
            started_tx.send(()).unwrap();
            g.wait();
            saw_tx.send(offload::is_cancelled()).unwrap();
            7
        })
        .timeout(Duration::from_millis(500)),
    )
    .await
    .unwrap_err();
    started.wait();
    assert_eq!(pool.running(), 1, "the task is still held by the gate");
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("timed out after 500ms"), "{err}");
    gate.open();
    assert!(
        saw.recv_timeout(support::PATIENCE).unwrap(),
        "the task was told"
    );
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.timed_out, m.completed), (1, 1, 0));
    assert!(m.is_settled());
}

#[tokio::test]
async fn a_task_whose_timeout_passes_in_the_queue_never_runs() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let busy = support::occupy(&pool);
    let (ran, did_run) = flag();
    let err = bounded(
        pool.run(move || ran.store(true, Ordering::SeqCst))
            .timeout(Duration::from_millis(20)),
    )
    .await
    .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    busy.release().await;
    bounded(pool.shutdown()).await;
    assert!(!did_run());
    let m = pool.metrics();
    assert_eq!(
        (m.submitted, m.completed, m.timed_out, m.cancelled),
        (2, 1, 1, 0)
    );
    assert!(m.is_settled());
}

#[tokio::test]
async fn a_task_that_beats_its_timeout_returns_its_value() {
    let pool = Pool::builder().threads(1).build().unwrap();
    let out = bounded(pool.run(|| 5).timeout(Duration::from_secs(30))).await;
    assert_eq!(out, Ok(5));
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.timed_out), (1, 1, 0));
    assert!(m.is_settled());
}

#[tokio::test]
async fn a_full_queue_wait_also_times_out() {
    let pool = support::pool(1, 1);
    let busy = support::occupy(&pool);
    let queued = pool.try_run(|| ()).unwrap();
    let err = bounded(pool.run(|| ()).timeout(Duration::from_millis(20)))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    busy.release().await;
    bounded(queued).await.unwrap();
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.timed_out), (3, 2, 1));
    assert!(m.is_settled());
}
