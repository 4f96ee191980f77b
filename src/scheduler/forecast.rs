//! What the queue holds in time and in cost, and the forecasts admission draws from it.
//!
//! Each admitted task carries a [`Charge`]: its expected run time (from the recorder's
//! moving average for its name) and its cost (what [`Task::cost`](crate::Task::cost)
//! reported, such as its input's length). The [`Backlog`] adds the charge up per priority
//! while the task is queued and moves its time to `running` while it runs, so admission can
//! predict when a new task would start (the work queued ahead of it in priority order, plus
//! half of what is running, over the thread count) and refuse one that would finish past its
//! deadline. The same sums bound the queue's total cost, and give `retry_after`.
//!
//! The sums are estimates and are read without a lock: a forecast may be off by the tasks
//! admitted or claimed meanwhile, which is the noise any prediction has anyway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::job::Charge;
#[cfg(test)]
use crate::priority::Priority;

#[derive(Debug, Default)]
pub(crate) struct Backlog {
    /// Expected nanoseconds of queued work, per queue (highest priority first).
    queued_ns: [CachePadded<AtomicU64>; 3],
    /// Expected nanoseconds of the running tasks, whole.
    running_ns: CachePadded<AtomicU64>,
    /// Summed cost of the queued tasks.
    queued_cost: CachePadded<AtomicU64>,
}

impl Backlog {
    /// Reserves `cost` under `limit`. A task heavier than the limit alone is still admitted
    /// into an empty queue (else it could never run); refused otherwise.
    pub(crate) fn reserve_cost(&self, cost: u64, limit: Option<u64>) -> bool {
        let Some(limit) = limit else {
            return true;
        };
        let mut held = self.queued_cost.load(Ordering::Relaxed);
        loop {
            if !fits(held, cost, limit) {
                return false;
            }
            match self.queued_cost.compare_exchange_weak(
                held,
                held.saturating_add(cost),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => held = actual,
            }
        }
    }

    /// Whether [`reserve_cost`](Self::reserve_cost) would succeed now, reserving nothing.
    pub(crate) fn has_room_for(&self, cost: u64, limit: Option<u64>) -> bool {
        limit.is_none_or(|limit| fits(self.queued_cost.load(Ordering::Relaxed), cost, limit))
    }

    /// Gives back a reservation that was not used (admission refused the task after all),
    /// or the cost of a task leaving the queue.
    pub(crate) fn release_cost(&self, cost: u64, limit: Option<u64>) {
        if limit.is_some() {
            self.queued_cost.fetch_sub(cost, Ordering::AcqRel);
        }
    }

    /// The task is queued now.
    pub(crate) fn queued(&self, charge: Charge) {
        self.queued_ns[charge.queue].fetch_add(charge.expected_ns, Ordering::Relaxed);
    }

    /// The task left the queue unrun (its caller took it back).
    pub(crate) fn dequeued(&self, charge: Charge) {
        self.queued_ns[charge.queue].fetch_sub(charge.expected_ns, Ordering::Relaxed);
    }

    /// The task left the queue and runs now.
    pub(crate) fn started(&self, charge: Charge) {
        self.queued_ns[charge.queue].fetch_sub(charge.expected_ns, Ordering::Relaxed);
        self.running_ns
            .fetch_add(charge.expected_ns, Ordering::Relaxed);
    }

    /// The task is done with.
    pub(crate) fn ended(&self, charge: Charge) {
        self.running_ns
            .fetch_sub(charge.expected_ns, Ordering::Relaxed);
    }

    /// How long until a task queued now at `queue` would start, on `threads` threads:
    /// everything queued at its priority or above, plus half of what runs (on average a
    /// running task is half done), shared over the threads.
    pub(crate) fn wait_at(&self, queue: usize, threads: u64) -> Duration {
        let ahead: u64 = self.queued_ns[..=queue]
            .iter()
            .map(|q| q.load(Ordering::Relaxed))
            .fold(0, u64::saturating_add);
        let running = self.running_ns.load(Ordering::Relaxed) / 2;
        Duration::from_nanos(ahead.saturating_add(running) / threads.max(1))
    }

    /// Whether a task with `charge` would miss `deadline` if admitted now. A deadline that
    /// has passed already is not a forecast: that task has timed out, and the timeout paths
    /// say so.
    pub(crate) fn would_be_late(&self, charge: Charge, deadline: Instant, threads: u64) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let done = self
            .wait_at(charge.queue, threads)
            .saturating_add(Duration::from_nanos(charge.expected_ns));
        now.checked_add(done).is_none_or(|finish| finish > deadline)
    }

    /// When the work in flight now will have drained: every queue, plus half of what runs.
    pub(crate) fn drain_time(&self, threads: u64) -> Duration {
        self.wait_at(2, threads)
    }
}

/// Whether `cost` more fits under `limit` with `held` queued: always into an empty queue.
fn fits(held: u64, cost: u64, limit: u64) -> bool {
    held == 0 || held.saturating_add(cost) <= limit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(ms: u64, priority: Priority) -> Charge {
        Charge::new(Some(Duration::from_millis(ms)), 1, priority)
    }

    #[test]
    fn the_wait_counts_only_work_queued_at_the_same_priority_or_above() {
        let b = Backlog::default();
        b.queued(charge(100, Priority::Low));
        b.queued(charge(40, Priority::Normal));
        b.queued(charge(20, Priority::High));
        let ms = |queue| b.wait_at(queue, 2).as_millis();
        assert_eq!(ms(Priority::High.queue_index()), 10);
        assert_eq!(ms(Priority::Normal.queue_index()), 30);
        assert_eq!(ms(Priority::Low.queue_index()), 80);
        assert_eq!(b.drain_time(2).as_millis(), 80);
    }

    #[test]
    fn running_work_counts_half_and_ending_removes_it() {
        let b = Backlog::default();
        let c = charge(100, Priority::Normal);
        b.queued(c);
        assert_eq!(b.drain_time(1).as_millis(), 100);
        b.started(c);
        assert_eq!(b.drain_time(1).as_millis(), 50);
        b.ended(c);
        assert_eq!(b.drain_time(1), Duration::ZERO);
    }

    #[test]
    fn a_deadline_shorter_than_the_forecast_is_late() {
        let b = Backlog::default();
        b.queued(charge(200, Priority::Normal));
        let own = charge(10, Priority::Normal);
        let soon = Instant::now() + Duration::from_millis(100);
        let later = Instant::now() + Duration::from_secs(10);
        assert!(b.would_be_late(own, soon, 1));
        assert!(!b.would_be_late(own, later, 1));
        // Two threads halve the wait; 110 ms is still past 100.
        assert!(b.would_be_late(own, soon, 2));
        // High priority jumps the queue: only its own 10 ms remain.
        assert!(!b.would_be_late(charge(10, Priority::High), soon, 1));
    }

    #[test]
    fn the_cost_bound_admits_one_heavy_task_into_an_empty_queue_only() {
        let b = Backlog::default();
        let limit = Some(100);
        assert!(b.reserve_cost(60, limit));
        assert!(b.reserve_cost(40, limit));
        assert!(!b.reserve_cost(1, limit), "full");
        b.release_cost(60, limit);
        b.release_cost(40, limit);
        assert!(b.has_room_for(500, limit), "alone, a heavy task still fits");
        assert!(b.reserve_cost(500, limit));
        assert!(!b.has_room_for(1, limit));
        assert!(!b.reserve_cost(1, limit));
        assert!(b.reserve_cost(u64::MAX, None), "no bound");
    }
}
