//! `Pool::run_all`: results in input order, every task ending exactly one way, and one
//! wake-up of the caller for the whole batch.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use futures::FutureExt;
use offload::{Pool, Priority};
use support::{Gate, PATIENCE, bounded, signal};

#[tokio::test]
async fn smoke() {
    let pool = support::pool(2, 64);
    // Uneven work, so tasks finish out of input order.
    let results = bounded(pool.run_all((0..200u64).map(|i| {
        move || {
            let mut x = i;
            for k in 0..(200 - i) * 500 {
                x = std::hint::black_box(x ^ k) ^ k;
            }
            x
        }
    })))
    .await;
    let values: Vec<u64> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(values, (0..200).collect::<Vec<_>>());
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed), (200, 200));
    assert!(m.is_settled());
}

#[tokio::test]
async fn panics_stay_in_their_own_slot() {
    let pool = support::pool(2, 64);
    let results = bounded(
        pool.run_all((0..30u32).map(|i| {
            move || {
                assert!(i % 7 != 3, "planned panic {i}");
                i
            }
        }))
        .name("planned"),
    )
    .await;
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v as usize, i),
            Err(e) => {
                assert_eq!(i % 7, 3, "only planned panics fail: {e}");
                assert!(e.is_panic());
                assert!(e.to_string().contains(&format!("planned panic {i}")), "{e}");
                assert!(e.to_string().contains("`planned`"), "{e}");
            }
        }
    }
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.completed, m.panicked), (26, 4));
    assert!(m.is_settled());
}

/// A batch of 300 through a queue of 4. Waiting tasks are counted from outside the queue's
/// gauge (which admission itself caps): admitted (`submitted`) minus started (each task marks
/// its start). With the one worker held by the first task the batch fills the queue and no
/// more; while it drains, no task ever sees more than 4 admitted and not started.
#[tokio::test]
async fn a_batch_larger_than_the_queue_waits_for_room() {
    const CAPACITY: u64 = 4;
    let pool = support::pool(1, CAPACITY as usize);
    let gate = Gate::new();
    let started = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let waiting = {
        let (pool, started) = (pool.clone(), Arc::clone(&started));
        move || pool.metrics().submitted - started.load(Ordering::SeqCst)
    };
    let mut batch = pool
        .run_all((0..300usize).map(|i| {
            let (gate, started, peak, waiting) = (
                gate.clone(),
                Arc::clone(&started),
                Arc::clone(&peak),
                waiting.clone(),
            );
            move || {
                started.fetch_add(1, Ordering::SeqCst);
                peak.fetch_max(waiting(), Ordering::SeqCst);
                if i == 0 {
                    gate.wait();
                }
                i
            }
        }))
        .into_future();
    support::until(|| {
        assert!(
            support::poll_once(&mut batch).is_pending(),
            "held by the gate"
        );
        // `running` counts the task once a thread claims it, a moment before its body
        // counts itself in `started`: wait for both.
        pool.running() == 1
            && pool.queued() == CAPACITY as usize
            && started.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(support::poll_once(&mut batch).is_pending());
    assert_eq!(started.load(Ordering::SeqCst), 1);
    assert_eq!(waiting(), CAPACITY, "admitted and not started, worker held");
    gate.open();
    let results = bounded(batch).await;
    assert_eq!(
        results.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        (0..300).collect::<Vec<_>>()
    );
    assert!(
        peak.load(Ordering::SeqCst) <= CAPACITY,
        "queue exceeded its capacity: {} waiting",
        peak.load(Ordering::SeqCst)
    );
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed), (300, 300));
    assert!(m.is_settled());
}

#[tokio::test]
async fn dropping_the_batch_cancels_what_has_not_started() {
    let pool = support::pool(1, 64);
    let gate = Gate::new();
    let (started, first_started) = signal();
    let ran = Arc::new(AtomicUsize::new(0));
    let saw_cancel = Arc::new(AtomicUsize::new(0));
    let tasks = (0..10).map(|i| {
        let (gate, started) = (gate.clone(), started.clone());
        let (ran, saw_cancel) = (Arc::clone(&ran), Arc::clone(&saw_cancel));
        move || {
            ran.fetch_add(1, Ordering::SeqCst);
            if i == 0 {
                started.send(()).unwrap();
                gate.wait();
                if offload::is_cancelled() {
                    saw_cancel.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    });
    let mut batch = Box::pin(pool.run_all(tasks).into_future());
    assert!((&mut batch).now_or_never().is_none(), "held by the gate");
    first_started.wait();
    drop(batch);
    gate.open();
    bounded(pool.shutdown()).await;
    assert_eq!(ran.load(Ordering::SeqCst), 1, "only the running task ran");
    assert_eq!(saw_cancel.load(Ordering::SeqCst), 1, "it saw is_cancelled");
    let m = pool.metrics();
    assert_eq!((m.submitted, m.cancelled), (10, 10));
    assert!(m.is_settled());
}

#[tokio::test]
async fn at_the_timeout_finished_tasks_keep_their_values() {
    let pool = support::pool(1, 64);
    let ran_third = Arc::new(AtomicUsize::new(0));
    let third = Arc::clone(&ran_third);
    let tasks: Vec<Box<dyn FnOnce() -> u32 + Send>> = vec![
        Box::new(|| 1),
        // Runs until the batch times out (bounded, so a broken timeout fails, not hangs).
        Box::new(|| {
            let give_up = std::time::Instant::now() + PATIENCE;
            while !offload::is_cancelled() && std::time::Instant::now() < give_up {
                std::thread::yield_now();
            }
            2
        }),
        Box::new(move || {
            third.fetch_add(1, Ordering::SeqCst);
            3
        }),
    ];
    let results = bounded(pool.run_all(tasks).timeout(Duration::from_millis(100))).await;
    assert_eq!(results[0], Ok(1));
    assert!(results[1].as_ref().unwrap_err().is_timeout());
    assert!(results[2].as_ref().unwrap_err().is_timeout());
    bounded(pool.shutdown()).await;
    assert_eq!(
        ran_third.load(Ordering::SeqCst),
        0,
        "queued past its deadline"
    );
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.timed_out), (3, 1, 2));
    assert!(m.is_settled());
}

#[tokio::test]
async fn a_batch_can_time_out_while_waiting_for_queue_room() {
    let pool = support::pool(1, 1);
    let busy = support::occupy(&pool);
    let ran = Arc::new(AtomicUsize::new(0));
    let results = bounded(
        pool.run_all((0..3).map(|_| {
            let ran = Arc::clone(&ran);
            move || ran.fetch_add(1, Ordering::SeqCst)
        }))
        .timeout(Duration::from_millis(50)),
    )
    .await;
    // One task took the only queue slot, two never got in: all three time out.
    assert!(
        results.iter().all(|r| r.as_ref().unwrap_err().is_timeout()),
        "{results:?}"
    );
    busy.release().await;
    bounded(pool.shutdown()).await;
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let m = pool.metrics();
    assert_eq!((m.submitted, m.timed_out, m.completed), (4, 3, 1));
    assert!(m.is_settled());
}

#[tokio::test]
async fn a_closed_pool_refuses_the_whole_batch() {
    let pool = support::pool(1, 64);
    pool.close();
    let results = bounded(pool.run_all((0..3).map(|i| move || i))).await;
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r.as_ref().unwrap_err().is_closed()));
    let m = pool.metrics();
    assert_eq!((m.submitted, m.rejected), (0, 3));
}

#[tokio::test]
async fn an_empty_batch_is_empty() {
    let pool = support::pool(1, 4);
    assert!(
        bounded(pool.run_all(Vec::<fn() -> u8>::new()))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn an_inline_pool_runs_the_batch_on_the_calling_thread_in_order() {
    let pool = Pool::inline();
    let caller = std::thread::current().id();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let results = bounded(
        pool.run_all((0..5).map(|i| {
            let order = Arc::clone(&order);
            move || {
                order.lock().unwrap().push(i);
                std::thread::current().id()
            }
        }))
        .priority(Priority::High),
    )
    .await;
    assert!(results.into_iter().all(|r| r.unwrap() == caller));
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
}

#[test]
fn works_without_tokio() {
    let pool = support::pool(2, 8);
    let results = support::block_on(pool.run_all((1..=50u64).map(|n| move || n)));
    let sum: u64 = results.into_iter().map(Result::unwrap).sum();
    assert_eq!(sum, 50 * 51 / 2);
}

/// Counts how often the future's waker is woken.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn the_caller_is_woken_once_for_the_whole_batch() {
    let pool = support::pool(2, 256);
    let gate = Gate::new();
    let wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&wakes));
    let mut cx = Context::from_waker(&waker);
    let tasks = (0..100u32).map(|i| {
        let gate = gate.clone();
        move || {
            gate.wait();
            i
        }
    });
    let mut batch = pool.run_all(tasks).into_future();
    // Submits all 100, which wait on the gate.
    assert!(std::pin::Pin::new(&mut batch).poll(&mut cx).is_pending());
    gate.open();
    support::until(|| wakes.0.load(Ordering::SeqCst) > 0).await;
    support::until(|| pool.queued() == 0 && pool.running() == 0).await;
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        1,
        "one wake-up for 100 results"
    );
    let std::task::Poll::Ready(results) = std::pin::Pin::new(&mut batch).poll(&mut cx) else {
        panic!("every task had ended");
    };
    assert_eq!(results.len(), 100);
    assert!(results.iter().enumerate().all(|(i, r)| r == &Ok(i as u32)));
}
