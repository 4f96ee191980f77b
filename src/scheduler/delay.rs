//! The queue-delay policy for tasks without a deadline, after CoDel (Nichols and Jacobson,
//! 2012) as Facebook applies it to server queues ("Fail at Scale", ACM Queue 2015): a queue
//! whose *minimum* wait stays above `target` for a whole `interval` is a standing queue,
//! which only adds latency; while it stands, a task that waited longer than `target` is shed
//! at dequeue (its caller gets [`Error::Overloaded`](crate::Error::Overloaded)) instead of
//! run late. One wait at or under `target` ends the episode.
//!
//! Tasks with a deadline are left to deadline-aware admission and the check at dequeue.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::time::{self, Stamp};

#[derive(Debug)]
pub(crate) struct QueueDelay {
    target: Duration,
    interval: Duration,
    /// The clock's zero for `above_since`.
    origin: Stamp,
    /// Since when (nanoseconds after `origin`, plus one) every wait was above target; 0 when
    /// the last one was not.
    above_since: AtomicU64,
    shedding: AtomicBool,
}

impl QueueDelay {
    pub(crate) fn new(target: Duration, interval: Duration) -> QueueDelay {
        QueueDelay {
            target,
            interval,
            origin: time::stamp(),
            above_since: AtomicU64::new(0),
            shedding: AtomicBool::new(false),
        }
    }

    /// Notes a task that waited `wait` and leaves the queue at `now`; returns whether to
    /// shed it (when it has no deadline of its own).
    pub(crate) fn shed(&self, wait: Duration, now: Stamp) -> bool {
        if wait <= self.target {
            self.above_since.store(0, Ordering::Relaxed);
            self.shedding.store(false, Ordering::Relaxed);
            return false;
        }
        let at = u64::try_from(now.saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        match self.above_since.load(Ordering::Relaxed) {
            0 => {
                self.above_since.store(at, Ordering::Relaxed);
                false
            }
            since => {
                if Duration::from_nanos(at.saturating_sub(since)) >= self.interval {
                    self.shedding.store(true, Ordering::Relaxed);
                }
                self.shedding.load(Ordering::Relaxed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn sheds_only_after_a_whole_interval_above_target_and_stops_at_once() {
        let policy = QueueDelay::new(5 * MS, 100 * MS);
        let t0 = policy.origin;
        assert!(
            !policy.shed(20 * MS, t0 + 10 * MS),
            "first wait above target"
        );
        assert!(!policy.shed(20 * MS, t0 + 60 * MS), "inside the interval");
        assert!(policy.shed(20 * MS, t0 + 111 * MS), "a standing queue");
        assert!(policy.shed(7 * MS, t0 + 120 * MS), "still standing");
        assert!(
            !policy.shed(2 * MS, t0 + 130 * MS),
            "one short wait ends it"
        );
        assert!(
            !policy.shed(20 * MS, t0 + 140 * MS),
            "and the interval starts over"
        );
    }
}
