//! The scheduler's state word: every count that admission, draining and shutdown must agree
//! on, packed into one `AtomicU64` so each step is a single compare-and-swap.
//!
//! Layout: queued (24 bits) | in flight (24 bits) | drainers (14 bits) | closed | abandoned.
//! *Queued* tasks are admitted and not yet claimed by a drainer; *in flight* counts queued and
//! running ones; *drainers* are rayon jobs that claim and run tasks in a loop. Invariants that
//! every transition keeps (unit-tested below, model-checked in `loom.rs`):
//! - queued <= capacity and queued <= in flight;
//! - drainers <= threads, and while a task is queued at least one drainer is active: a
//!   drainer retires only in the same swap that sees the queue empty;
//! - once closed, nothing is admitted; the swap that takes in flight to zero on a closed pool
//!   reports it, so shutdown's waiter is woken exactly when the last task ends.

// Loom is a dev-dependency, so only the library's own test build can use its atomics (as in
// tokio); `--cfg offload_loom` leaves every other build of the crate on std's.
#[cfg(all(test, offload_loom))]
use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(all(test, offload_loom)))]
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use event_listener::Event;

const QUEUED_ONE: u64 = 1;
const IN_FLIGHT_SHIFT: u32 = 24;
const IN_FLIGHT_ONE: u64 = 1 << IN_FLIGHT_SHIFT;
const DRAINERS_SHIFT: u32 = 48;
const DRAINER_ONE: u64 = 1 << DRAINERS_SHIFT;
const FIELD_MASK: u64 = (1 << 24) - 1;
const DRAINERS_MASK: u64 = (1 << 14) - 1;
const CLOSED: u64 = 1 << 62;
const ABANDONED: u64 = 1 << 63;

/// Bounds the builder enforces so the fields cannot overflow: queued and running tasks
/// together stay below 2^24.
pub(crate) const MAX_QUEUE_CAPACITY: usize = 1 << 23;
/// At most this many drainers, so at most this many threads.
pub(crate) const MAX_THREADS: usize = DRAINERS_MASK as usize;

fn queued(word: u64) -> u64 {
    word & FIELD_MASK
}

fn in_flight(word: u64) -> u64 {
    (word >> IN_FLIGHT_SHIFT) & FIELD_MASK
}

fn drainers(word: u64) -> u64 {
    (word >> DRAINERS_SHIFT) & DRAINERS_MASK
}

/// Why a task was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `capacity` tasks are queued already.
    Full,
    /// The pool no longer takes tasks.
    Closed,
}

/// What a drainer does next, decided by [`State::claim_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A queued task is now this drainer's: pop and run it (or, when the pool was abandoned,
    /// resolve it as closed without running it).
    Run { abandoned: bool },
    /// Nothing is queued: this drainer has retired.
    Retire,
}

/// Queued and running tasks at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Load {
    pub(crate) queued: u64,
    pub(crate) running: u64,
}

impl Load {
    fn of(word: u64) -> Load {
        Load {
            queued: queued(word),
            running: in_flight(word) - queued(word),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    word: CachePadded<AtomicU64>,
}

impl State {
    /// Reserves a queue slot and counts the task in flight, in one step. Returns whether the
    /// caller must start a drainer (fewer than `threads` were active), and the load after.
    pub(crate) fn try_admit(&self, capacity: u64, threads: u64) -> Result<(bool, Load), Refusal> {
        let mut word = self.word.load(Ordering::Relaxed);
        loop {
            if word & CLOSED != 0 {
                return Err(Refusal::Closed);
            }
            if queued(word) >= capacity {
                return Err(Refusal::Full);
            }
            let start_drainer = drainers(word) < threads;
            let mut next = word + QUEUED_ONE + IN_FLIGHT_ONE;
            if start_drainer {
                next += DRAINER_ONE;
            }
            match self
                .word
                .compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok((start_drainer, Load::of(next))),
                Err(actual) => word = actual,
            }
        }
    }

    /// A drainer's one step: retires the task it ran last (when `finished`) and either claims
    /// a queued task or retires the drainer when none is queued. Also returns the load after,
    /// and whether this step ended the last task in flight of a closed pool (wake the
    /// shutdown waiters).
    pub(crate) fn claim_next(&self, finished: bool) -> (Step, Load, bool) {
        let done = if finished { IN_FLIGHT_ONE } else { 0 };
        let mut word = self.word.load(Ordering::Relaxed);
        loop {
            let claim = queued(word) > 0;
            let next = if claim {
                word - done - QUEUED_ONE
            } else {
                word - done - DRAINER_ONE
            };
            // SeqCst pairs with the waiter count in `Scheduler`: a `run` waiting for room
            // either sees this claim's freed slot or is seen and notified.
            match self
                .word
                .compare_exchange_weak(word, next, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => {
                    let idle = finished && next & CLOSED != 0 && in_flight(next) == 0;
                    let step = if claim {
                        Step::Run {
                            abandoned: word & ABANDONED != 0,
                        }
                    } else {
                        Step::Retire
                    };
                    return (step, Load::of(next), idle);
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// Counts a task in flight that runs outside the queue (an inline pool's), unless the
    /// pool is closed.
    pub(crate) fn begin_unqueued(&self) -> Result<(), Refusal> {
        let mut word = self.word.load(Ordering::Relaxed);
        loop {
            if word & CLOSED != 0 {
                return Err(Refusal::Closed);
            }
            match self.word.compare_exchange_weak(
                word,
                word + IN_FLIGHT_ONE,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => word = actual,
            }
        }
    }

    /// Ends a task begun with [`begin_unqueued`](Self::begin_unqueued). Returns whether it
    /// was the last task in flight of a closed pool.
    pub(crate) fn end_unqueued(&self) -> bool {
        let word = self.word.fetch_sub(IN_FLIGHT_ONE, Ordering::AcqRel);
        word & CLOSED != 0 && in_flight(word) == 1
    }

    /// Refuses new tasks from now on.
    pub(crate) fn close(&self) {
        self.word.fetch_or(CLOSED, Ordering::AcqRel);
    }

    /// Closes, and has drainers resolve every still-queued task as closed instead of running
    /// it: the last pool handle is gone.
    pub(crate) fn abandon(&self) {
        self.word.fetch_or(CLOSED | ABANDONED, Ordering::AcqRel);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.word.load(Ordering::Acquire) & CLOSED != 0
    }

    pub(crate) fn load(&self) -> Load {
        Load::of(self.word.load(Ordering::Acquire))
    }

    /// Tasks queued or running.
    pub(crate) fn in_flight(&self) -> u64 {
        in_flight(self.word.load(Ordering::Acquire))
    }

    /// Active drainers.
    #[cfg(test)]
    pub(crate) fn drainers(&self) -> u64 {
        drainers(self.word.load(Ordering::Acquire))
    }

    /// Waits until nothing is in flight. Whoever takes the count to zero on a closed pool
    /// (see [`claim_next`](Self::claim_next)) notifies `idle`.
    pub(crate) async fn until_idle(&self, idle: &Event) {
        while self.in_flight() != 0 {
            let listener = idle.listen();
            if self.in_flight() == 0 {
                return;
            }
            listener.await;
        }
    }
}

#[cfg(all(test, not(offload_loom)))]
mod tests {
    use super::*;

    const CAPACITY: u64 = 3;
    const THREADS: u64 = 2;

    #[test]
    fn smoke() {
        let s = State::default();
        assert_eq!(s.try_admit(CAPACITY, THREADS), Ok((true, load(1, 0))));
        assert_eq!(
            s.claim_next(false),
            (Step::Run { abandoned: false }, load(0, 1), false)
        );
        assert_eq!(s.claim_next(true), (Step::Retire, load(0, 0), false));
        assert_eq!((s.in_flight(), s.drainers()), (0, 0));
    }

    fn load(queued: u64, running: u64) -> Load {
        Load { queued, running }
    }

    #[test]
    fn admission_starts_at_most_one_drainer_per_thread() {
        let s = State::default();
        let started: Vec<bool> = (0..3)
            .map(|_| s.try_admit(CAPACITY, THREADS).expect("room").0)
            .collect();
        assert_eq!(started, [true, true, false]);
        assert_eq!(s.drainers(), THREADS);
    }

    #[test]
    fn a_full_queue_refuses_and_running_tasks_do_not_count() {
        let s = State::default();
        for _ in 0..CAPACITY {
            s.try_admit(CAPACITY, THREADS).expect("room");
        }
        assert_eq!(s.try_admit(CAPACITY, THREADS), Err(Refusal::Full));
        // A drainer claims one: it is running, no longer queued, and frees a slot.
        assert_eq!(s.claim_next(false).0, Step::Run { abandoned: false });
        assert_eq!(s.load(), load(CAPACITY - 1, 1));
        assert!(s.try_admit(CAPACITY, THREADS).is_ok());
        assert_eq!(s.in_flight(), CAPACITY + 1);
    }

    #[test]
    fn a_drainer_retires_only_when_the_queue_is_empty() {
        let s = State::default();
        s.try_admit(CAPACITY, 1).expect("room");
        s.try_admit(CAPACITY, 1).expect("room");
        assert_eq!(s.drainers(), 1);
        assert_eq!(s.claim_next(false).0, Step::Run { abandoned: false });
        assert_eq!(s.claim_next(true).0, Step::Run { abandoned: false });
        assert_eq!(s.drainers(), 1, "still one task to finish");
        assert_eq!(s.claim_next(true).0, Step::Retire);
        assert_eq!(s.drainers(), 0);
    }

    #[test]
    fn closing_refuses_and_the_last_finish_reports_idle() {
        let s = State::default();
        s.try_admit(CAPACITY, THREADS).expect("room");
        s.try_admit(CAPACITY, THREADS).expect("room");
        s.close();
        assert!(s.is_closed());
        assert_eq!(s.try_admit(CAPACITY, THREADS), Err(Refusal::Closed));
        assert_eq!(s.begin_unqueued(), Err(Refusal::Closed));
        // Queued tasks still run after a plain close.
        let (a, _, _) = s.claim_next(false);
        let (b, _, _) = s.claim_next(false);
        assert_eq!(
            (a, b),
            (
                Step::Run { abandoned: false },
                Step::Run { abandoned: false }
            )
        );
        assert!(!s.claim_next(true).2, "one task still in flight");
        let (step, _, idle) = s.claim_next(true);
        assert_eq!((step, idle), (Step::Retire, true));
    }

    #[test]
    fn an_abandoned_pool_hands_out_queued_tasks_as_abandoned() {
        let s = State::default();
        s.try_admit(CAPACITY, THREADS).expect("room");
        s.abandon();
        assert_eq!(s.claim_next(false).0, Step::Run { abandoned: true });
        assert_eq!(s.claim_next(true), (Step::Retire, load(0, 0), true));
    }

    #[test]
    fn unqueued_tasks_count_in_flight() {
        let s = State::default();
        s.begin_unqueued().expect("open");
        s.begin_unqueued().expect("open");
        assert_eq!(s.load(), load(0, 2));
        s.close();
        assert!(!s.end_unqueued());
        assert!(s.end_unqueued(), "the last one reports idle");
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn fields_hold_their_maxima_without_spilling() {
        let s = State::default();
        let capacity = MAX_QUEUE_CAPACITY as u64;
        let threads = MAX_THREADS as u64;
        // Fill the drainer field: one admission per thread.
        for _ in 0..threads {
            s.try_admit(capacity, threads).expect("room");
        }
        assert_eq!(s.drainers(), threads);
        // Every one claimed and running, then fill the queue to capacity.
        for _ in 0..threads {
            s.claim_next(false);
        }
        for _ in 0..capacity {
            s.try_admit(capacity, threads).expect("room");
        }
        assert_eq!(s.try_admit(capacity, threads), Err(Refusal::Full));
        assert_eq!(s.load(), load(capacity, threads));
        assert_eq!(s.drainers(), threads);
        assert!(!s.is_closed());
    }
}
