//! Helpers shared by the pool tests: gates that hold a worker thread, signals, and bounds
//! that turn a hang into a test failure.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::future::{Future, IntoFuture};
use std::pin::{Pin, pin};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures::future::{self, Either};

/// Long enough never to fire on a healthy run; turns a hang into a test failure.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Awaits `fut`, failing the test if it has not resolved after `PATIENCE` of real time.
///
/// The bound is a watchdog thread, not a tokio timer, so it works under any executor and in
/// tests with paused tokio time (where a tokio timeout would fire as soon as the runtime
/// idles, since paused time jumps to the next timer).
pub async fn bounded<F: IntoFuture>(fut: F) -> F::Output {
    let (stop, stopped) = mpsc::channel::<()>();
    let (fire, fired) = futures::channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        // Dropping `stop` (the future resolved) ends the wait early without firing.
        if stopped.recv_timeout(PATIENCE) == Err(mpsc::RecvTimeoutError::Timeout) {
            let _ = fire.send(());
        }
    });
    let fut = pin!(fut.into_future());
    let out = match future::select(fut, fired).await {
        Either::Left((out, _)) => out,
        Either::Right(_) => panic!("still waiting after {PATIENCE:?}: a hang"),
    };
    drop(stop);
    out
}

/// `futures::executor::block_on` (no tokio anywhere), failing the test after `PATIENCE`.
pub fn block_on<F: IntoFuture>(fut: F) -> F::Output {
    futures::executor::block_on(bounded(fut))
}

/// Blocks the calling thread until `done` holds, checking every millisecond of real time;
/// fails the test after `PATIENCE`. For tests that must not yield to their runtime (paused
/// tokio time) or run without one.
pub fn wait_for(mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < give_up, "condition never held");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Polls `done` every 2 ms until it holds; fails the test after `PATIENCE` instead of hanging.
/// Needs a tokio runtime with real (not paused) time.
pub async fn until(mut done: impl FnMut() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("condition never held");
}

/// Polls `fut` once with a waker that does nothing: the test decides when to poll again.
pub fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(Waker::noop()))
}

/// Polls a future that already returned `Ready` and returns the message it panicked with
/// (`None` if it did not panic, or panicked with a non-string payload).
pub fn repoll_panic<F: Future + Unpin>(fut: &mut F) -> Option<String> {
    let repoll = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poll_once(fut)));
    let payload = repoll.err()?;
    payload
        .downcast_ref::<&str>()
        .map(|m| (*m).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

/// Holds tasks until opened, so tests control exactly when a worker frees up.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// A task that waits for this gate to open, then returns `value`.
    pub fn hold<T: Send + 'static>(&self, value: T) -> impl FnOnce() -> T + Send + 'static {
        let gate = self.clone();
        move || {
            gate.wait();
            value
        }
    }

    pub fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }

    /// Blocks until opened; panics (failing the test) if that takes longer than `PATIENCE`.
    pub fn wait(&self) {
        let open = self.0.0.lock().unwrap();
        let (open, timeout) = self
            .0
            .1
            .wait_timeout_while(open, PATIENCE, |open| !*open)
            .unwrap();
        assert!(*open && !timeout.timed_out(), "gate never opened");
    }
}

/// A one-way "it happened" signal from a task to the test.
pub fn signal() -> (mpsc::Sender<()>, Signal) {
    let (tx, rx) = mpsc::channel();
    (tx, Signal(rx))
}

pub struct Signal(mpsc::Receiver<()>);

impl Signal {
    /// Waits for one signal; panics if none comes within `PATIENCE`.
    pub fn wait(&self) {
        self.0.recv_timeout(PATIENCE).expect("signal never came");
    }
}

/// A pool with `threads` threads and room for `capacity` queued tasks.
pub fn pool(threads: usize, capacity: usize) -> offload::Pool {
    offload::Pool::builder()
        .threads(threads)
        .queue_capacity(capacity)
        .build()
        .unwrap()
}

/// [`pool`], with deadline-aware admission off: for tests that race timeouts against
/// completions, whose tight deadlines a forecast would mostly refuse before they could race.
pub fn racing_pool(threads: usize, capacity: usize) -> offload::Pool {
    offload::Pool::builder()
        .threads(threads)
        .queue_capacity(capacity)
        .deadline_admission(false)
        .build()
        .unwrap()
}

/// Every thread of a pool held by a task that waits on one gate.
pub struct Occupied {
    gate: Gate,
    handles: Vec<offload::TaskHandle<()>>,
}

impl Occupied {
    /// Opens the gate and waits (bounded, under any executor) for the holding tasks to
    /// finish.
    pub async fn release(self) {
        self.gate.open();
        let handles = self.handles;
        bounded(async move {
            for h in handles {
                h.await.unwrap();
            }
        })
        .await;
    }
}

/// Occupies every thread of `pool` with a task that waits on a gate, and returns once all of
/// them are running.
pub fn occupy(pool: &offload::Pool) -> Occupied {
    let gate = Gate::new();
    let (tx, started) = signal();
    let handles = (0..pool.threads())
        .map(|_| {
            let gate = gate.clone();
            let tx = tx.clone();
            let mut task = Some(move || {
                tx.send(()).unwrap();
                gate.wait();
            });
            // With a tiny queue the previous task may not have left it yet: retry until a
            // worker picks it up (each one does, promptly, since every thread is idle).
            loop {
                match pool.try_run(task.take().unwrap()) {
                    Ok(handle) => break handle,
                    Err(e) if e.is_full() => {
                        task = Some(e.into_task());
                        std::thread::yield_now();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .collect();
    for _ in 0..pool.threads() {
        started.wait();
    }
    Occupied { gate, handles }
}

/// Every outcome counter of a pool, named, to compare in one assertion (its `Debug` shows
/// them all when it fails).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub submitted: u64,
    pub completed: u64,
    pub panicked: u64,
    pub cancelled: u64,
    pub timed_out: u64,
    pub shed: u64,
    pub rejected: u64,
}

/// Asserts `pool`'s counters are exactly `want` and that nothing is queued, running or
/// unaccounted for.
#[track_caller]
pub fn assert_settled(pool: &offload::Pool, want: Tally) {
    let m = pool.metrics();
    let got = Tally {
        submitted: m.submitted,
        completed: m.completed,
        panicked: m.panicked,
        cancelled: m.cancelled,
        timed_out: m.timed_out,
        shed: m.shed,
        rejected: m.rejected,
    };
    assert_eq!(got, want, "{m:?}");
    assert!(m.is_settled(), "{m:?}");
}

/// Waits until nothing is queued or running on `pool` (a worker retires its task just after
/// sending the result), then [`assert_settled`].
pub async fn settles(pool: &offload::Pool, want: Tally) {
    until(|| pool.queued() == 0 && pool.running() == 0).await;
    assert_settled(pool, want);
}
