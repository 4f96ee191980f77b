//! `Pool::run_all` under the interleavings its first tests leave out: the countdown reaching
//! zero between submissions, closing and dropping while the batch waits for queue room,
//! timeouts racing completions, re-polling, inline pools and non-tokio timeouts.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use offload::{Error, Pool};
use support::{Gate, bounded, poll_once};

/// Many small batches from concurrent callers through a tiny queue: the countdown keeps
/// reaching zero between submissions; every batch still returns every result, in order.
#[test]
fn smoke() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pool = support::pool(2, 2);
    const CALLERS: u64 = 4;
    const BATCHES: u64 = 150;
    runtime.block_on(bounded(async {
        let joins: Vec<_> = (0..CALLERS)
            .map(|c| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    for b in 0..BATCHES {
                        let len = (c * 7 + b) % 9;
                        let results = pool.run_all((0..len).map(|k| move || (b, k))).await;
                        let expected: Vec<_> = (0..len).map(|k| Ok((b, k))).collect();
                        assert_eq!(results, expected);
                    }
                })
            })
            .collect();
        for j in joins {
            j.await.unwrap();
        }
        pool.shutdown().await;
    }));
    let m = pool.metrics();
    let total: u64 = (0..CALLERS)
        .flat_map(|c| (0..BATCHES).map(move |b| (c * 7 + b) % 9))
        .sum();
    assert_eq!((m.submitted, m.completed, m.rejected), (total, total, 0));
    assert!(m.is_settled());
}

/// The first task finishes (the countdown hits zero) while the batch still waits for room
/// for the rest: the batch must not resolve until the later tasks have ended.
#[tokio::test]
async fn zero_between_submissions_is_not_the_end() {
    let pool = support::pool(1, 1);
    let gate = Gate::new();
    let g = gate.clone();
    let tasks: Vec<Box<dyn FnOnce() -> u32 + Send>> = vec![
        Box::new(|| 0),
        Box::new(|| 1),
        Box::new(move || {
            g.wait();
            2
        }),
        Box::new(|| 3),
    ];
    let mut batch = pool.run_all(tasks).into_future();
    // Submits what fits, then waits for room.
    assert!(poll_once(&mut batch).is_pending());
    // Drive the batch until its gated task is admitted; at some point in between the
    // countdown is back to zero with tasks still unsent.
    support::until(|| {
        let _ = poll_once(&mut batch).map(|r| panic!("resolved early: {r:?}"));
        pool.running() == 1
    })
    .await;
    assert!(
        poll_once(&mut batch).is_pending(),
        "task 2 is held by the gate"
    );
    gate.open();
    let results = bounded(batch).await;
    assert_eq!(results, [Ok(0), Ok(1), Ok(2), Ok(3)]);
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed), (4, 4));
    assert!(m.is_settled());
}

/// Closing while the batch waits for room: what got in runs and keeps its value, the rest
/// comes back `Closed` and is counted `rejected`, once each.
#[tokio::test]
async fn closing_while_waiting_for_room_refuses_the_rest() {
    let pool = support::pool(1, 2);
    let busy = support::occupy(&pool);
    let mut batch = pool.run_all((0..10u32).map(|i| move || i)).into_future();
    assert!(poll_once(&mut batch).is_pending(), "two in, eight waiting");
    assert_eq!(pool.queued(), 2);
    pool.close();
    let (results, ()) = tokio::join!(bounded(batch), busy.release());
    assert_eq!(&results[..2], [Ok(0), Ok(1)]);
    assert!(results[2..].iter().all(|r| r == &Err(Error::Closed)));
    assert_eq!(results.len(), 10);
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.rejected), (3, 3, 8));
    assert_eq!(m.cancelled, 0);
    assert!(m.is_settled());
}

/// Dropping the batch while it waits for room: each admitted task is counted cancelled
/// once, unsent ones are not counted, and the pool stops counting it among its waiters.
#[tokio::test]
async fn dropping_while_waiting_for_room_counts_each_admitted_task_once() {
    let pool = support::pool(1, 2);
    let busy = support::occupy(&pool);
    let ran = Arc::new(AtomicUsize::new(0));
    let mut batch = pool
        .run_all((0..10).map(|_| {
            let ran = Arc::clone(&ran);
            move || ran.fetch_add(1, Ordering::SeqCst)
        }))
        .into_future();
    assert!(poll_once(&mut batch).is_pending());
    drop(batch);
    busy.release().await;
    // The room it waited for is free for others: a plain run gets in at once.
    assert_eq!(bounded(pool.run(|| 7).into_future()).await, Ok(7));
    bounded(pool.shutdown()).await;
    assert_eq!(ran.load(Ordering::SeqCst), 0, "cancelled tasks never ran");
    let m = pool.metrics();
    assert_eq!(
        (m.submitted, m.completed, m.cancelled, m.rejected),
        (4, 2, 2, 0)
    );
    assert!(m.is_settled());
}

/// Batches dropped after a random number of polls, beside batches that finish: every
/// task of a finished batch is `completed`, every admitted task of a dropped one
/// `cancelled`, exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_batches_reconcile_exactly() {
    let pool = support::pool(2, 3);
    let mut finished_ok = 0u64;
    for round in 0..300u64 {
        let len = round % 11;
        let mut batch = pool
            .run_all((0..len).map(|k| move || std::hint::black_box(k * k)))
            .into_future();
        let expected: Vec<_> = (0..len).map(|k| Ok(k * k)).collect();
        if round % 3 == 0 {
            for _ in 0..round % 5 {
                // It may finish between two polls: then its values were delivered.
                if let Poll::Ready(results) = poll_once(&mut batch) {
                    assert_eq!(results, expected);
                    finished_ok += len;
                    break;
                }
            }
            drop(batch);
        } else {
            let results = bounded(batch).await;
            assert_eq!(results, expected);
            finished_ok += len;
        }
    }
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!(m.completed, finished_ok, "{m:?}");
    assert_eq!(m.submitted, m.completed + m.cancelled, "{m:?}");
    assert_eq!((m.panicked, m.timed_out, m.rejected), (0, 0, 0));
    assert!(m.is_settled());
}

/// Timeouts racing completions, panics and queue-room waits: what each caller saw matches
/// the counters exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_racing_completions_reconcile_exactly() {
    let pool = support::racing_pool(2, 4);
    let (mut ok, mut panicked, mut timed_out, mut total) = (0u64, 0u64, 0u64, 0u64);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"planned") {
            default_hook(info);
        }
    }));
    for round in 0..120u64 {
        let len = 3 + round % 10;
        total += len;
        let results = bounded(
            pool.run_all((0..len).map(|k| {
                move || {
                    assert!(k != 5, "planned");
                    let until = Instant::now() + Duration::from_micros(150 * ((round + k) % 6));
                    while Instant::now() < until && !offload::is_cancelled() {
                        std::hint::spin_loop();
                    }
                    k
                }
            }))
            .timeout(Duration::from_micros(300 + 100 * (round % 7)))
            .into_future(),
        )
        .await;
        assert_eq!(results.len() as u64, len);
        for (k, r) in results.iter().enumerate() {
            match r {
                Ok(v) => {
                    assert_eq!(*v, k as u64);
                    ok += 1;
                }
                Err(e) if e.is_panic() => panicked += 1,
                Err(e) => {
                    assert!(e.is_timeout(), "{e}");
                    timed_out += 1;
                }
            }
        }
    }
    bounded(pool.shutdown()).await;
    let _ = std::panic::take_hook();
    let m = pool.metrics();
    assert_eq!(m.submitted, total, "{m:?}");
    assert_eq!(
        (
            m.completed,
            m.panicked,
            m.timed_out,
            m.cancelled,
            m.rejected
        ),
        (ok, panicked, timed_out, 0, 0),
        "{m:?}"
    );
    assert!(m.is_settled());
}

/// Polling again after `Ready` panics with a clear message (as tokio's `JoinHandle` does)
/// and neither delivers nor counts any result a second time.
fn assert_repoll_panics<F: Future + Unpin>(batch: &mut F) {
    assert_eq!(
        support::repoll_panic(batch).as_deref(),
        Some("`RunAllFuture` polled after completion")
    );
}

#[tokio::test]
async fn polling_after_ready_delivers_nothing_twice() {
    let pool = support::pool(2, 8);
    let mut batch = pool.run_all((0..5).map(|i| move || i)).into_future();
    let first = bounded(&mut batch).await;
    assert_eq!(first, [Ok(0), Ok(1), Ok(2), Ok(3), Ok(4)]);
    let before = pool.metrics();
    assert_repoll_panics(&mut batch);
    let after = pool.metrics();
    assert_eq!(
        (before.submitted, before.completed),
        (after.submitted, after.completed)
    );

    // The same after a timeout, with the task still running.
    let gate = Gate::new();
    let g = gate.clone();
    let mut batch = pool
        .run_all([move || g.wait()])
        .timeout(Duration::from_millis(20))
        .into_future();
    let first = bounded(&mut batch).await;
    assert!(first[0].as_ref().unwrap_err().is_timeout());
    let before = pool.metrics();
    assert_repoll_panics(&mut batch);
    gate.open();
    drop(batch);
    bounded(pool.shutdown()).await;
    let after = pool.metrics();
    assert_eq!(before.timed_out, after.timed_out);
    assert_eq!(after.submitted, after.completed + after.timed_out);
    assert!(after.is_settled());
}

/// An axum handler's future must be `Send`: so must a batch's.
#[test]
fn the_batch_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let pool = support::pool(1, 1);
    let batch = pool.run_all([|| 1u8]);
    assert_send(&batch);
    assert_send(&batch.into_future());
}

/// Without tokio, the pool enforces the batch's deadline, also for tasks admitted only
/// after it passed while the batch waited for room.
#[test]
fn without_tokio_a_batch_waiting_for_room_still_times_out() {
    let pool = support::pool(1, 1);
    let busy = support::occupy(&pool);
    let ran = Arc::new(AtomicUsize::new(0));
    let timeout = Duration::from_millis(10);
    let start = Instant::now();
    let mut batch = pool
        .run_all((0..3).map(|_| {
            let ran = Arc::clone(&ran);
            move || ran.fetch_add(1, Ordering::SeqCst)
        }))
        .timeout(timeout)
        .into_future();
    assert!(poll_once(&mut batch).is_pending(), "one in, two waiting");
    // Not a timing assert: wait until the deadline has certainly passed, then free room.
    while start.elapsed() <= timeout {
        std::thread::yield_now();
    }
    let (results, ()) = support::block_on(async { futures::join!(&mut batch, busy.release()) });
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r.as_ref().unwrap_err().is_timeout()));
    support::block_on(pool.shutdown());
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let m = pool.metrics();
    assert_eq!((m.submitted, m.completed, m.timed_out), (4, 1, 3));
    assert!(m.is_settled());
}

/// An inline pool with a zero timeout: nothing runs, everything times out, counted once.
#[tokio::test]
async fn an_inline_batch_with_a_zero_timeout_runs_nothing() {
    let pool = Pool::inline();
    let ran = Arc::new(AtomicUsize::new(0));
    let results = bounded(
        pool.run_all((0..4).map(|_| {
            let ran = Arc::clone(&ran);
            move || ran.fetch_add(1, Ordering::SeqCst)
        }))
        .timeout(Duration::ZERO),
    )
    .await;
    assert_eq!(results.len(), 4);
    assert!(results.iter().all(|r| r.as_ref().unwrap_err().is_timeout()));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let m = pool.metrics();
    assert_eq!((m.submitted, m.timed_out), (4, 4));
    assert!(m.is_settled());
}

/// An inline batch whose task closes the pool: every task still ends one way, and the
/// counters match what the caller saw.
#[tokio::test]
async fn an_inline_batch_that_closes_its_pool_reconciles() {
    let pool = Pool::inline();
    let results = bounded(pool.run_all((0..4).map(|i| {
        let pool = pool.clone();
        move || {
            if i == 1 {
                pool.close();
            }
            i
        }
    })))
    .await;
    assert_eq!(&results[..2], [Ok(0), Ok(1)]);
    let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
    let closed = results.iter().filter(|r| r == &&Err(Error::Closed)).count() as u64;
    assert_eq!(ok + closed, 4, "{results:?}");
    let m = pool.metrics();
    assert_eq!(m.submitted, 4);
    assert_eq!((m.completed, m.cancelled + m.rejected), (ok, closed));
    assert!(m.is_settled());
    // Closed before the batch: refused, counted rejected, nothing submitted.
    let rejected = m.rejected;
    let refused = bounded(pool.run_all([|| 9])).await;
    assert_eq!(refused, [Err(Error::Closed)]);
    assert_eq!(pool.metrics().rejected, rejected + 1);
    assert_eq!(pool.metrics().submitted, 4);
}

/// `close` between two batches of one caller while a second caller's batch waits for room:
/// every result is a value or `Closed`, and `Closed` results equal `rejected` exactly.
#[test]
fn closing_under_concurrent_batches_reconciles_exactly() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for round in 0..20u64 {
        let pool = support::pool(2, 2);
        let (ok, closed) = runtime.block_on(bounded(async {
            let joins: Vec<_> = (0..3u64)
                .map(|c| {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        let (mut ok, mut closed) = (0u64, 0u64);
                        for b in 0..40u64 {
                            let len = 1 + (c + b) % 6;
                            let results = pool.run_all((0..len).map(|k| move || k)).await;
                            assert_eq!(results.len() as u64, len);
                            // Closing is final: values form a prefix, refusals the rest.
                            let first_closed = results.iter().position(Result::is_err);
                            for (k, r) in results.iter().enumerate() {
                                match r {
                                    Ok(v) => {
                                        assert_eq!(*v, k as u64);
                                        assert!(first_closed.is_none_or(|f| k < f));
                                        ok += 1;
                                    }
                                    Err(e) => {
                                        assert!(e.is_closed(), "{e}");
                                        closed += 1;
                                    }
                                }
                            }
                        }
                        (ok, closed)
                    })
                })
                .collect();
            // Close once the callers are under way.
            let target = 20 + round * 7;
            support::until(|| pool.metrics().submitted >= target).await;
            pool.close();
            let mut totals = (0, 0);
            for j in joins {
                let (ok, closed) = j.await.unwrap();
                totals.0 += ok;
                totals.1 += closed;
            }
            pool.shutdown().await;
            totals
        }));
        let m = pool.metrics();
        assert_eq!((m.submitted, m.completed), (ok, ok), "{m:?}");
        assert_eq!(m.rejected, closed, "{m:?}");
        assert_eq!(m.cancelled + m.timed_out + m.panicked, 0, "{m:?}");
        assert!(m.is_settled());
    }
}

/// Marks spans of tasks named `boom`, and panics when one is entered: a subscriber failing
/// inside the worker, between the task's job being parked in thread-local storage and its
/// restore.
struct PanicOnEnter;

struct Boom;

impl<S> tracing_subscriber::Layer<S> for PanicOnEnter
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct IsBoom(bool);
        impl tracing::field::Visit for IsBoom {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0 |= field.name() == "task" && value == "boom";
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut visitor = IsBoom(false);
        attrs.record(&mut visitor);
        if visitor.0 {
            ctx.span(id).unwrap().extensions_mut().insert(Boom);
        }
    }

    fn on_enter(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let boom = ctx
            .span(id)
            .is_some_and(|s| s.extensions().get::<Boom>().is_some());
        assert!(!boom, "subscriber failed on enter");
    }
}

/// A panic outside the task's own guard (here: the subscriber entering the task's span)
/// must still end the task one way and tick the batch's countdown; it must not hang.
#[tokio::test]
async fn a_panicking_subscriber_does_not_hang_the_batch() {
    use tracing_subscriber::layer::SubscriberExt;
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(PanicOnEnter))
        .unwrap();
    let pool = support::pool(1, 4);
    let results = bounded(pool.run_all([|| 1u8, || 2]).name("boom")).await;
    assert_eq!(results.len(), 2);
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert!(e.is_panic(), "{e}");
        assert_eq!(e.panic_message(), Some("subscriber failed on enter"));
    }
    bounded(pool.shutdown()).await;
    let m = pool.metrics();
    assert_eq!((m.submitted, m.panicked, m.completed), (2, 2, 0));
    assert!(m.is_settled());
}
