//! A `run` timeout against its task's value, each ordering forced one at a time, with the
//! exact counts: under tokio with paused time (the caller's timer decides at once) and with
//! no tokio at all (the pool enforces the deadline when the task would start and when it
//! ends).
//!
//! The paused-time tests poll by hand and never yield to their runtime while a task runs:
//! paused time jumps to the next timer whenever the runtime idles, which would fire the
//! timeout at a moment the test did not choose. Waits on the pool's threads are blocking,
//! in real time ([`support::wait_for`], gates, signals).
#![allow(clippy::unwrap_used)]

mod support;

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::task::Poll;
use std::time::{Duration, Instant};

use offload::{Error, Pool};
use support::{Gate, PATIENCE, bounded, poll_once};

/// Under paused time only the test moves the tokio clock; the pool's own checks read the
/// real clock and never see an hour pass.
const TIMEOUT: Duration = Duration::from_secs(3600);

/// A value that reports being dropped, so a test sees that a late value was let go of.
struct Tracked {
    value: u32,
    dropped: Arc<AtomicBool>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tracked({})", self.value)
    }
}

/// Whether the pool has nothing queued or running: a value sent is then in its channel.
fn idle(pool: &Pool) -> bool {
    pool.queued() == 0 && pool.running() == 0
}

/// submitted, completed, timed_out, cancelled
fn counts(pool: &Pool) -> (u64, u64, u64, u64) {
    let m = pool.metrics();
    assert_eq!((m.panicked, m.rejected), (0, 0), "{m:?}");
    (m.submitted, m.completed, m.timed_out, m.cancelled)
}

/// The value lands before the deadline: `Ok`, counted `completed`; a timer that has not
/// reached its deadline does not fire early.
#[tokio::test(start_paused = true)]
async fn smoke() {
    let pool = support::pool(1, 4);
    let gate = Gate::new();
    let mut fut = pool.run(gate.hold(7)).timeout(TIMEOUT).into_future();
    assert!(poll_once(&mut fut).is_pending(), "held by the gate");
    // Paused time stands where the runtime started, before the deadline was set: this
    // stays short of the deadline however slow the machine.
    tokio::time::advance(TIMEOUT - Duration::from_secs(1)).await;
    assert!(
        poll_once(&mut fut).is_pending(),
        "a second of the timeout left"
    );
    gate.open();
    support::wait_for(|| idle(&pool));
    assert_eq!(poll_once(&mut fut), Poll::Ready(Ok(7)));
    bounded(pool.shutdown()).await;
    assert_eq!(counts(&pool), (1, 1, 0, 0));
    assert!(pool.metrics().is_settled());
}

/// The deadline passes while the task runs: the caller gets `TimedOut` at once (the task is
/// still held by its gate), the task then sees `is_cancelled`, its late value is dropped,
/// and the task is counted `timed_out` exactly once.
#[tokio::test(start_paused = true)]
async fn a_deadline_passing_while_the_task_runs_times_out_at_once() {
    let pool = support::pool(1, 4);
    let gate = Gate::new();
    let (saw_tx, saw) = mpsc::channel();
    let dropped = Arc::new(AtomicBool::new(false));
    let (g, d) = (gate.clone(), Arc::clone(&dropped));
    let mut fut = pool
        .run(move || {
            g.wait();
            saw_tx.send(offload::is_cancelled()).unwrap();
            Tracked {
                value: 7,
                dropped: d,
            }
        })
        .timeout(TIMEOUT)
        .into_future();
    assert!(poll_once(&mut fut).is_pending());
    support::wait_for(|| pool.running() == 1);
    tokio::time::advance(TIMEOUT * 2).await;
    let Poll::Ready(Err(err)) = poll_once(&mut fut) else {
        panic!("the timer fired: the caller must have its error now");
    };
    assert!(err.is_timeout(), "{err}");
    assert_eq!(pool.running(), 1, "the task is still held by its gate");
    gate.open();
    assert!(
        saw.recv_timeout(PATIENCE).unwrap(),
        "the task saw is_cancelled"
    );
    support::wait_for(|| idle(&pool));
    assert!(dropped.load(Ordering::SeqCst), "the late value was dropped");
    bounded(pool.shutdown()).await;
    assert_eq!(counts(&pool), (1, 0, 1, 0));
    assert!(pool.metrics().is_settled());
}

/// The value is already in the channel when the timer fires: one poll sees both, and the
/// value wins.
#[tokio::test(start_paused = true)]
async fn a_value_in_the_channel_wins_over_a_timer_that_fired() {
    let pool = support::pool(1, 4);
    let gate = Gate::new();
    let mut fut = pool.run(gate.hold(7)).timeout(TIMEOUT).into_future();
    assert!(poll_once(&mut fut).is_pending(), "timer armed, task held");
    gate.open();
    support::wait_for(|| idle(&pool));
    tokio::time::advance(TIMEOUT * 2).await;
    assert_eq!(poll_once(&mut fut), Poll::Ready(Ok(7)));
    bounded(pool.shutdown()).await;
    assert_eq!(counts(&pool), (1, 1, 0, 0));
    assert!(pool.metrics().is_settled());
}

/// The deadline passes while the task is queued: `TimedOut` at once, and the task never
/// runs once a thread frees up.
#[tokio::test(start_paused = true)]
async fn a_deadline_passing_while_queued_means_the_task_never_runs() {
    let pool = support::pool(1, 4);
    let busy = support::occupy(&pool);
    let ran = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ran);
    let mut fut = pool
        .run(move || r.store(true, Ordering::SeqCst))
        .timeout(TIMEOUT)
        .into_future();
    assert!(poll_once(&mut fut).is_pending());
    assert_eq!(pool.queued(), 1);
    tokio::time::advance(TIMEOUT * 2).await;
    let Poll::Ready(Err(err)) = poll_once(&mut fut) else {
        panic!("the timer fired: the caller must have its error now");
    };
    assert!(err.is_timeout(), "{err}");
    busy.release().await;
    bounded(pool.shutdown()).await;
    assert!(
        !ran.load(Ordering::SeqCst),
        "a timed-out queued task never runs"
    );
    assert_eq!(counts(&pool), (2, 1, 1, 0));
    assert!(pool.metrics().is_settled());
}

/// No tokio: the value before the deadline is `Ok`.
#[test]
fn without_tokio_a_value_before_the_deadline_is_ok() {
    let pool = support::pool(1, 4);
    assert_eq!(support::block_on(pool.run(|| 7).timeout(TIMEOUT)), Ok(7));
    support::block_on(pool.shutdown());
    assert_eq!(counts(&pool), (1, 1, 0, 0));
    assert!(pool.metrics().is_settled());
}

/// No tokio: the deadline passes while the task runs. The task sees `is_cancelled` turn
/// true (it spins until then), and the pool turns its late value into `TimedOut` when it
/// ends, dropping the value.
#[test]
fn without_tokio_a_deadline_passing_while_the_task_runs_drops_the_late_value() {
    let pool = support::pool(1, 4);
    let dropped = Arc::new(AtomicBool::new(false));
    let d = Arc::clone(&dropped);
    let out = support::block_on(
        pool.run(move || {
            let give_up = Instant::now() + PATIENCE;
            while !offload::is_cancelled() {
                assert!(Instant::now() < give_up, "is_cancelled never turned true");
                std::thread::yield_now();
            }
            Tracked {
                value: 7,
                dropped: d,
            }
        })
        .timeout(Duration::from_millis(20)),
    );
    let err = out.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    support::wait_for(|| idle(&pool));
    assert!(dropped.load(Ordering::SeqCst), "the late value was dropped");
    support::block_on(pool.shutdown());
    assert_eq!(counts(&pool), (1, 0, 1, 0));
    assert!(pool.metrics().is_settled());
}

/// No tokio: a value that landed in time stays the answer when the caller polls only after
/// the deadline.
#[test]
fn without_tokio_a_value_that_landed_in_time_wins_after_the_deadline() {
    let timeout = Duration::from_secs(1);
    let pool = support::pool(1, 4);
    let submitted = Instant::now();
    let handle = pool.run(|| 7).timeout(timeout).try_submit().unwrap();
    support::wait_for(|| idle(&pool));
    assert!(
        submitted.elapsed() < timeout,
        "setup: the task must end before its deadline (machine too slow?)"
    );
    let deadline_passed = Instant::now() + timeout;
    while Instant::now() < deadline_passed {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(support::block_on(handle), Ok(7));
    support::block_on(pool.shutdown());
    assert_eq!(counts(&pool), (1, 1, 0, 0));
    assert!(pool.metrics().is_settled());
}

/// No tokio: the deadline passes while the task is queued; the worker checks it before
/// starting the task, which then never runs.
#[test]
fn without_tokio_a_deadline_passing_while_queued_means_the_task_never_runs() {
    let timeout = Duration::from_millis(5);
    let pool = support::pool(1, 4);
    let busy = support::occupy(&pool);
    let ran = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ran);
    let handle = pool
        .run(move || r.store(true, Ordering::SeqCst))
        .timeout(timeout)
        .try_submit()
        .unwrap();
    // Not a timing assert: wait until the deadline has certainly passed, then free the thread.
    let deadline_passed = Instant::now() + timeout;
    while Instant::now() < deadline_passed {
        std::thread::sleep(Duration::from_millis(1));
    }
    support::block_on(busy.release());
    let err = support::block_on(handle).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    support::block_on(pool.shutdown());
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(counts(&pool), (2, 1, 1, 0));
    assert!(pool.metrics().is_settled());
}

/// Timeouts racing completions for real, many times: whatever each caller saw, the counters
/// match it, and every value a task produced is either delivered or dropped, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_is_delivered_or_dropped_exactly_once() {
    struct Counted(u64, Arc<AtomicU64>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    let pool = support::racing_pool(2, 4);
    let made = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let (mut ok, mut timed_out) = (0u64, 0u64);
    bounded(async {
        for round in 0..400u64 {
            let (made, dropped) = (Arc::clone(&made), Arc::clone(&dropped));
            let out = pool
                .run(move || {
                    let until = Instant::now() + Duration::from_micros(100 * (round % 7));
                    while Instant::now() < until && !offload::is_cancelled() {
                        std::hint::spin_loop();
                    }
                    made.fetch_add(1, Ordering::SeqCst);
                    Counted(round, dropped)
                })
                .timeout(Duration::from_micros(150 + 50 * (round % 5)))
                .await;
            match out {
                Ok(v) => {
                    assert_eq!(v.0, round);
                    ok += 1;
                }
                Err(Error::TimedOut { .. }) => timed_out += 1,
                Err(e) => panic!("{e}"),
            }
        }
        pool.shutdown().await;
    })
    .await;
    assert_eq!(ok + timed_out, 400);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        made.load(Ordering::SeqCst),
        "a value was leaked"
    );
    assert_eq!(counts(&pool), (400, ok, timed_out, 0));
    assert!(pool.metrics().is_settled());
}
