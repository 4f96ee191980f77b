//! Sums that many threads add to and few read: one cache line per shard, the calling
//! thread's shard picked by a thread-local index, the shards added up only when read.
//!
//! Every task adds to the pool's counters and to the backlog's expected times from two
//! sides (the caller's thread at submission and on delivery, a worker thread when it starts
//! and ends the task). Kept in one atomic each, those lines would bounce between the cores
//! several times per task; sharded, each thread mostly writes a line it already holds. The
//! reads (a metrics snapshot, a deadline forecast) are far rarer than the writes.
//!
//! Values are `u64` with wrapping arithmetic, so one shard may go "negative" (a task counted
//! into the queue on one thread and out of it on another) while the sum stays exact.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// `N` sums, sharded.
pub(crate) struct Sharded<const N: usize> {
    shards: Box<[CachePadded<[AtomicU64; N]>]>,
}

impl<const N: usize> Sharded<N> {
    /// Enough shards that the threads of a machine this size rarely share one.
    pub(crate) fn new() -> Sharded<N> {
        let shards = (2 * num_cpus::get()).next_power_of_two().clamp(2, 64);
        Sharded {
            shards: (0..shards)
                .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }

    /// The calling thread's shard.
    fn local(&self) -> &[AtomicU64; N] {
        &self.shards[thread_index() & (self.shards.len() - 1)]
    }

    /// Adds `n` to sum `i`.
    pub(crate) fn add(&self, i: usize, n: u64) {
        self.local()[i].fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts `n` from sum `i`.
    pub(crate) fn sub(&self, i: usize, n: u64) {
        self.local()[i].fetch_sub(n, Ordering::Relaxed);
    }

    /// Sum `i` now. Shards are read one after the other, so a sum that others change
    /// meanwhile may be off by their changes, as any unlocked read of a moving count is.
    pub(crate) fn sum(&self, i: usize) -> u64 {
        self.shards
            .iter()
            .map(|shard| shard[i].load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// Sum `i` of a quantity that is never negative in total: a read that raced an add on
    /// one shard and its subtraction on another comes out as 0, not as a wrapped huge value.
    pub(crate) fn sum_at_least_zero(&self, i: usize) -> u64 {
        u64::try_from(self.sum(i) as i64).unwrap_or(0)
    }
}

impl<const N: usize> Default for Sharded<N> {
    fn default() -> Sharded<N> {
        Sharded::new()
    }
}

impl<const N: usize> std::fmt::Debug for Sharded<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sums: [u64; N] = std::array::from_fn(|i| self.sum(i));
        f.debug_tuple("Sharded").field(&sums).finish()
    }
}

/// A small number per thread, handed out in the order threads first ask: neighbours in
/// time (a pool's threads, a runtime's workers) land on different shards.
fn thread_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
    }
    INDEX.with(|index| {
        index.get().unwrap_or_else(|| {
            let i = NEXT.fetch_add(1, Ordering::Relaxed);
            index.set(Some(i));
            i
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_add_up_across_threads_even_when_one_shard_goes_below_zero() {
        let s = Sharded::<2>::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..1_000 {
                        s.add(0, 3);
                    }
                });
            }
        });
        assert_eq!(s.sum(0), 12_000);
        // Added here, taken away on another thread: that thread's shard wraps below zero.
        s.add(1, 5);
        std::thread::scope(|scope| {
            scope.spawn(|| s.sub(1, 5));
        });
        assert_eq!(s.sum(1), 0);
        assert_eq!(s.sum_at_least_zero(1), 0);
    }

    #[test]
    fn a_read_between_a_subtraction_and_its_add_clamps_at_zero() {
        let s = Sharded::<1>::new();
        std::thread::scope(|scope| {
            scope.spawn(|| s.sub(0, 7));
        });
        assert_eq!(s.sum(0), 7u64.wrapping_neg());
        assert_eq!(s.sum_at_least_zero(0), 0);
    }
}
