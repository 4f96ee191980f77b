//! Running tasks: closures, `Task` types, names, inline mode, executors, nested rayon.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use offload::{Error, Pool, Task};
use rayon::prelude::*;
use support::bounded;

#[tokio::test]
async fn smoke() {
    let pool = Pool::builder().threads(2).build().unwrap();
    assert_eq!(bounded(pool.run(|| 21 * 2)).await, Ok(42));
}

#[test]
fn pool_is_a_cheap_shareable_handle() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<Pool>();
    fn assert_send<T: Send>(_: &T) {}
    let pool = Pool::builder().threads(1).build().unwrap();
    let run = pool.run(|| 1);
    assert_send(&run);
    let fut = std::future::IntoFuture::into_future(run);
    assert_send(&fut);
}

#[tokio::test]
async fn runs_off_the_calling_thread_on_named_threads() {
    let pool = Pool::builder()
        .threads(2)
        .thread_name("crunch")
        .build()
        .unwrap();
    let here = std::thread::current().id();
    let (id, name) = bounded(pool.run(|| {
        let t = std::thread::current();
        (t.id(), t.name().map(str::to_owned))
    }))
    .await
    .unwrap();
    assert_ne!(id, here);
    assert!(name.unwrap().starts_with("crunch-"));
}

struct Checksum(Vec<u8>);

impl Task for Checksum {
    type Output = u64;
    fn run(self) -> u64 {
        self.0.iter().map(|&b| u64::from(b)).sum()
    }
    fn name(&self) -> &'static str {
        "checksum"
    }
}

struct Unnamed;

impl Task for Unnamed {
    type Output = ();
    fn run(self) {}
}

#[tokio::test]
async fn task_types_and_names_reach_the_metrics() {
    let pool = Pool::builder().threads(2).build().unwrap();
    bounded(async {
        assert_eq!(pool.run(Checksum(vec![1, 2, 3])).await, Ok(6));
        assert_eq!(pool.run(Checksum(vec![255; 4])).await, Ok(1020));
        pool.run(Unnamed).await.unwrap();
        pool.run(|| ()).name("custom").await.unwrap();
        pool.shutdown().await;
    })
    .await;
    let m = pool.metrics();
    let names: Vec<_> = m.tasks.keys().cloned().collect();
    assert_eq!(names, ["Unnamed", "checksum", "custom"]);
    let runs: Vec<_> = m
        .tasks
        .values()
        .map(|t| (t.run.count, t.wait.count))
        .collect();
    assert_eq!(runs, [(1, 1), (2, 2), (1, 1)]);
    assert_eq!(m.overall.run.count, 4);
    assert_eq!(m.overall.wait.count, 4);
    assert_eq!((m.submitted, m.completed), (4, 4));
    assert!(m.is_settled());
}

#[test]
fn works_under_a_non_tokio_executor() {
    let pool = Pool::builder().threads(2).build().unwrap();
    let out = support::block_on(async {
        let a = pool.run(|| 1).await.unwrap();
        let b = pool.try_run(|| 2).unwrap().await.unwrap();
        a + b
    });
    assert_eq!(out, 3);
    support::block_on(pool.shutdown());
    assert!(pool.metrics().is_settled());
}

#[test]
fn works_under_smol() {
    let pool = Pool::builder().threads(2).build().unwrap();
    let out = smol::block_on(bounded(async {
        // Slow enough that smol parks its thread until the pool's thread wakes it.
        let slow = pool.run(|| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            40
        });
        let (slow, quick) = futures::join!(slow.into_future(), pool.run(|| 2).into_future());
        let batch = pool.run_all((0..10u32).map(|i| move || i)).await;
        slow.unwrap() + quick.unwrap() + batch.into_iter().map(Result::unwrap).sum::<u32>()
    }));
    assert_eq!(out, 42 + 45);
    smol::block_on(bounded(pool.shutdown()));
    assert!(pool.metrics().is_settled());
}

#[test]
fn inline_pool_runs_on_the_polling_thread() {
    let pool = Pool::inline();
    assert!(pool.is_inline());
    assert_eq!(pool.threads(), 0);
    let here = std::thread::current().id();
    support::block_on(async {
        let id = pool.run(move || std::thread::current().id()).await.unwrap();
        assert_eq!(id, here);
        let err = pool
            .run(|| -> u8 { panic!("inline boom") })
            .await
            .unwrap_err();
        assert_eq!(err.panic_message(), Some("inline boom"));
        // An inline handle runs only when polled; dropping it first means it never runs.
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        drop(
            pool.try_run(move || r.fetch_add(1, Ordering::SeqCst))
                .unwrap(),
        );
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        pool.shutdown().await;
    });
    let m = pool.metrics();
    assert_eq!(
        (m.submitted, m.completed, m.panicked, m.cancelled),
        (3, 1, 1, 1)
    );
    assert!(m.is_settled());
    assert!(pool.is_closed());
}

#[tokio::test]
async fn nested_rayon_work_spreads_over_the_pool_threads() {
    let pool = Pool::builder().threads(2).build().unwrap();
    let (threads, indices) = bounded(pool.run(|| {
        // Both halves must run at the same time to meet at the gate, which only works if
        // the second thread of the pool steals one of them.
        let gate = std::sync::Barrier::new(2);
        let (a, b) = rayon::join(
            || {
                gate.wait();
                rayon::current_thread_index()
            },
            || {
                gate.wait();
                rayon::current_thread_index()
            },
        );
        let sum: u64 = (0..10_000u64).into_par_iter().sum();
        assert_eq!(sum, 49_995_000);
        (rayon::current_num_threads(), [a, b])
    }))
    .await
    .unwrap();
    assert_eq!(threads, 2);
    let mut indices = indices.map(Option::unwrap);
    indices.sort_unstable();
    assert_eq!(indices, [0, 1]);
}

/// The outcome counters (not the gauges: a worker retires a task just after sending its
/// value, so `running` may still read 1 when the caller has the value).
fn counters(pool: &Pool) -> [u64; 6] {
    let m = pool.metrics();
    [
        m.submitted,
        m.completed,
        m.panicked,
        m.cancelled,
        m.timed_out,
        m.rejected,
    ]
}

/// Polling a `RunFuture` again after it returned `Ready` panics (as tokio's `JoinHandle`
/// does), whether it ended with a value or refused, and counts nothing a second time.
#[tokio::test]
async fn polling_a_finished_run_future_panics() {
    let pool = support::pool(1, 4);
    let mut fut = pool.run(|| 3).into_future();
    assert_eq!(bounded(&mut fut).await, Ok(3));
    let before = counters(&pool);
    assert_eq!(
        support::repoll_panic(&mut fut).as_deref(),
        Some("`RunFuture` polled after completion")
    );
    assert_eq!(counters(&pool), before);

    pool.close();
    let mut refused = pool.run(|| 4).into_future();
    assert_eq!(bounded(&mut refused).await, Err(Error::Closed));
    let before = counters(&pool);
    assert_eq!(
        support::repoll_panic(&mut refused).as_deref(),
        Some("`RunFuture` polled after completion")
    );
    assert_eq!(counters(&pool), before);
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.rejected), (1, 1, 1));
    assert!(m.is_settled());
}

/// The same for a `TaskHandle`, on a threaded pool and on an inline one (whose handle runs
/// the task at the first poll: a second poll must not run it again).
#[test]
fn polling_a_finished_task_handle_panics() {
    for pool in [support::pool(1, 4), Pool::inline()] {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&runs);
        let mut handle = pool
            .try_run(move || r.fetch_add(1, Ordering::SeqCst))
            .unwrap();
        assert_eq!(support::block_on(&mut handle), Ok(0));
        let before = counters(&pool);
        assert_eq!(
            support::repoll_panic(&mut handle).as_deref(),
            Some("`TaskHandle` polled after completion")
        );
        assert_eq!(counters(&pool), before);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the task ran once");
        drop(handle);
        support::block_on(pool.shutdown());
        let m = pool.metrics();
        assert_eq!((m.submitted, m.completed, m.cancelled), (1, 1, 0));
        assert!(m.is_settled());
    }
}
