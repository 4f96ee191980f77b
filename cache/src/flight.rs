//! Single-flight: one computation per key in flight, shared by every caller that asks for
//! the key meanwhile, and cancelled only when the last of them has gone.
//
// Implementation: moka's `get_with` also merges concurrent misses, but its waiters depend on
// the first caller's future (moka#240): if that caller is dropped, the others stall or retry.
// Here the computation is a spawned task that belongs to no caller. Each caller holds a
// `Waiter`; the map counts them under its lock, so joining a flight and leaving the last seat
// of one cannot interleave: the last `Waiter` to drop removes the flight from the map and
// aborts its task (dropping the runner's future: a queued task never runs, a running one sees
// `offload::is_cancelled()`). The task reports through `Completion`, which removes the flight
// from the map (a caller arriving after that finds the result in the local tier) and then
// publishes the result on a watch channel, which also serves callers that subscribed late.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::key::Key;

/// A computed result as every waiter of the flight receives it.
#[derive(Clone)]
pub(crate) struct Landed {
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    /// Computed by the runner, rather than found in a tier.
    pub(crate) computed: bool,
}

pub(crate) type Outcome = Result<Landed, offload::Error>;

struct Flight {
    id: u64,
    waiters: usize,
    rx: watch::Receiver<Option<Outcome>>,
    abort: Option<AbortHandle>,
}

/// The flights in progress, by key.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<Key, Flight>>,
    next_id: AtomicU64,
    /// Computations whose task is alive (its `Completion` not yet dropped): a cancelled
    /// flight leaves the map at once, but counts here until its task is gone.
    alive: AtomicU64,
}

impl Flights {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Flight>> {
        // Nothing panics while holding the lock; recover anyway rather than spread a panic.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the flight for `key`, or starts one: `start` gets the [`Completion`] to report
    /// through and returns the spawned task's abort handle. The `bool` is `true` for the
    /// caller that started the flight.
    pub(crate) fn join_or_start(
        self: &Arc<Self>,
        key: Key,
        start: impl FnOnce(Completion) -> AbortHandle,
    ) -> (Waiter, bool) {
        let mut map = self.lock();
        if let Some(flight) = map.get_mut(&key) {
            flight.waiters += 1;
            let waiter = Waiter {
                flights: Arc::clone(self),
                key,
                id: flight.id,
                rx: flight.rx.clone(),
            };
            return (waiter, false);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.alive.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = watch::channel(None);
        let completion = Completion {
            flights: Arc::clone(self),
            key,
            id,
            tx: Some(tx),
        };
        // Spawned under the lock: the task cannot complete (which takes the lock) before its
        // flight, with the abort handle, is in the map.
        let abort = start(completion);
        map.insert(
            key,
            Flight {
                id,
                waiters: 1,
                rx: rx.clone(),
                abort: Some(abort),
            },
        );
        let waiter = Waiter {
            flights: Arc::clone(self),
            key,
            id,
            rx,
        };
        (waiter, true)
    }

    /// Removes flight `id` of `key` if it is still in the map.
    fn remove(&self, key: &Key, id: u64) {
        let mut map = self.lock();
        if map.get(key).is_some_and(|f| f.id == id) {
            map.remove(key);
        }
    }

    /// Computations whose task has not ended yet.
    pub(crate) fn alive(&self) -> u64 {
        self.alive.load(Ordering::SeqCst)
    }

    /// Callers waiting for a computation.
    pub(crate) fn waiting(&self) -> u64 {
        self.lock().values().map(|f| f.waiters as u64).sum()
    }
}

/// How a flight's task reports its outcome. Dropped without [`finish`](Completion::finish)
/// (the task was aborted or panicked), it removes the flight and the waiters learn that no
/// result is coming.
pub(crate) struct Completion {
    flights: Arc<Flights>,
    key: Key,
    id: u64,
    tx: Option<watch::Sender<Option<Outcome>>>,
}

impl Completion {
    /// Publishes `outcome` to every waiter. Store the result in the local tier first, so a
    /// caller arriving once the flight is gone finds it there.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.flights.remove(&self.key, self.id);
        if let Some(tx) = self.tx.take() {
            // No receiver left is fine: every caller has gone.
            let _ = tx.send(Some(outcome));
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.flights.remove(&self.key, self.id);
        }
        self.flights.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One caller's seat in a flight.
pub(crate) struct Waiter {
    flights: Arc<Flights>,
    key: Key,
    id: u64,
    rx: watch::Receiver<Option<Outcome>>,
}

impl Waiter {
    /// The flight's outcome; `None` if its task ended without one (it panicked).
    pub(crate) async fn outcome(&mut self) -> Option<Outcome> {
        match self.rx.wait_for(Option::is_some).await {
            Ok(published) => published.clone(),
            Err(_) => None,
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let abort = {
            let mut map = self.flights.lock();
            let Some(flight) = map.get_mut(&self.key).filter(|f| f.id == self.id) else {
                // The flight has landed (or ended) already.
                return;
            };
            flight.waiters -= 1;
            if flight.waiters > 0 {
                return;
            }
            map.remove(&self.key).and_then(|mut f| f.abort.take())
        };
        // Outside the lock: the aborted task's `Completion` takes it when dropped.
        if let Some(abort) = abort {
            abort.abort();
        }
    }
}
