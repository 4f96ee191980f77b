//! Helpers shared by the pool tests: gates that hold a worker thread, and signals.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Long enough never to fire on a healthy run; turns a hang into a test failure.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Holds tasks until opened, so tests control exactly when a worker frees up.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
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

/// Every thread of a pool held by a task that waits on one gate.
pub struct Occupied {
    gate: Gate,
    handles: Vec<offload::TaskHandle<()>>,
}

impl Occupied {
    /// Opens the gate and waits for the holding tasks to finish.
    pub async fn release(self) {
        self.gate.open();
        for h in self.handles {
            h.await.unwrap();
        }
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

/// Polls `done` every 2 ms until it holds; fails the test after `PATIENCE` instead of hanging.
pub async fn until(mut done: impl FnMut() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("condition never held");
}
