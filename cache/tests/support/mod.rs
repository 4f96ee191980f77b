//! A probe task whose runs the tests can count, hold and release, and bounded waits.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

use offload::{Pool, Task};
use offload_cache::{Cacheable, Keep, KeyWriter};
use serde::{Deserialize, Serialize};

/// The longest any test waits for something to happen before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// What a probe does when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Returns `size` bytes at once.
    Value,
    /// Returns a typed input error (kept only under a negative TTL).
    Refuse,
    /// Panics (a runner error: never kept).
    Panic,
    /// Waits until released (or cancelled), then returns `size` bytes.
    Hold,
}

/// A task with an id; its runs are recorded in `state(id)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    pub id: u64,
    pub size: usize,
    pub mode: Mode,
}

/// What happened to the probes of one id.
#[derive(Default)]
pub struct ProbeState {
    pub runs: AtomicU32,
    pub started: AtomicBool,
    pub saw_cancel: AtomicBool,
    open: Mutex<bool>,
    gate: Condvar,
}

impl ProbeState {
    /// Lets held probes of this id finish.
    pub fn release(&self) {
        *self.open.lock().expect("gate") = true;
        self.gate.notify_all();
    }
}

static STATES: LazyLock<Mutex<HashMap<u64, Arc<ProbeState>>>> = LazyLock::new(Mutex::default);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The record of probes with this id.
pub fn state(id: u64) -> Arc<ProbeState> {
    Arc::clone(STATES.lock().expect("states").entry(id).or_default())
}

/// A probe id no other test uses.
pub fn fresh_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

impl Probe {
    pub fn value(id: u64, size: usize) -> Probe {
        Probe {
            id,
            size,
            mode: Mode::Value,
        }
    }

    pub fn mode(id: u64, mode: Mode) -> Probe {
        Probe { id, size: 16, mode }
    }
}

impl Task for Probe {
    type Output = Result<Vec<u8>, String>;

    fn run(self) -> Self::Output {
        let state = state(self.id);
        state.runs.fetch_add(1, Ordering::SeqCst);
        state.started.store(true, Ordering::SeqCst);
        match self.mode {
            Mode::Value => {}
            Mode::Refuse => return Err(format!("probe {} refused", self.id)),
            Mode::Panic => panic!("probe {} panicked", self.id),
            Mode::Hold => {
                let deadline = Instant::now() + PATIENCE;
                let mut open = state.open.lock().expect("gate");
                while !*open && Instant::now() < deadline {
                    if offload::is_cancelled() {
                        state.saw_cancel.store(true, Ordering::SeqCst);
                        break;
                    }
                    open = state
                        .gate
                        .wait_timeout(open, Duration::from_millis(5))
                        .expect("gate")
                        .0;
                }
            }
        }
        Ok(vec![(self.id % 251) as u8; self.size])
    }

    fn name(&self) -> &'static str {
        "probe"
    }
}

impl Cacheable for Probe {
    fn write_key(&self, key: &mut KeyWriter) {
        let Probe { id, size, mode } = self;
        key.u64(*id).u64(*size as u64).serde(mode);
    }

    fn keep(output: &Self::Output) -> Keep {
        Keep::result(output, |_| true)
    }
}

/// A pool of `threads` threads.
pub fn pool(threads: usize) -> Pool {
    Pool::builder()
        .threads(threads)
        .build()
        .expect("threads start")
}

/// Polls `done` every few milliseconds until it holds; panics after [`PATIENCE`].
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
