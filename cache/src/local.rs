//! The local tier: results held in this process, bounded in bytes, each with its own expiry.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::key::Key;

/// A result as the local tier holds it: the task's output behind `Any` (the tier holds every
/// task type; the key, which covers the task's name, says which), its weight and how long
/// it lives.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    /// The length of the output's serialised form, in bytes.
    pub(crate) weight: u32,
    pub(crate) ttl: Duration,
}

/// moka's byte-weighted cache with a per-entry expiry. Its own single-flight (`get_with`) is
/// not used: see `flight.rs`.
pub(crate) struct Local {
    cache: moka::sync::Cache<Key, Entry>,
    evictions: Arc<AtomicU64>,
    capacity: u64,
}

struct PerEntry;

impl moka::Expiry<Key, Entry> for PerEntry {
    fn expire_after_create(&self, _: &Key, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl Local {
    /// A tier holding at most `capacity` bytes of serialised results.
    pub(crate) fn new(capacity: u64) -> Local {
        let evictions = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&evictions);
        let cache = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .weigher(|_: &Key, entry: &Entry| entry.weight)
            .expire_after(PerEntry)
            .eviction_listener(move |_, _, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        Local {
            cache,
            evictions,
            capacity,
        }
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Entry> {
        self.cache.get(key)
    }

    /// Stores `entry`, then lets moka apply its size bound at once: inserts happen once per
    /// computed result, so the bound is kept tight at a cost that is small beside the work.
    pub(crate) fn insert(&self, key: Key, entry: Entry) {
        if u64::from(entry.weight) > self.capacity {
            // Larger than the whole tier: it would only push everything else out first.
            return;
        }
        self.cache.insert(key, entry);
        self.cache.run_pending_tasks();
    }

    /// Bytes held (the sum of the weights), as of moka's last maintenance.
    pub(crate) fn bytes(&self) -> u64 {
        self.cache.weighted_size()
    }

    pub(crate) fn entries(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Entries removed to stay within the byte bound (not counting expiries).
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Runs moka's pending maintenance (expiries, evictions), so the counters are current.
    pub(crate) fn sync(&self) {
        self.cache.run_pending_tasks();
    }
}
