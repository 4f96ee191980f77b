#![doc = include_str!("../README.md")]
#![deny(missing_docs, missing_debug_implementations)]

// The path of one job: `fleet` (admit, encode; `submitter` batches the `submit` script
// calls) -> Redis stream -> `worker` (the `work` script takes it, the pool runs it, the
// finisher's next `work` call records it) -> the caller's reply stream -> `fleet`'s reply
// reader -> the waiting future. Leaves: `keys`, `protocol`, `scripts`, `conn`, `error`.

mod conn;
mod error;
mod fleet;
mod keys;
mod protocol;
mod scripts;
mod submitter;
mod worker;

pub use error::{ConnectError, TryRunError};
pub use fleet::{Fleet, FleetBuilder, FleetHandle, FleetMetrics, FleetRun, QueueStats};
pub use worker::{Worker, WorkerBuilder};

/// A random 64-bit number from the standard library's per-process hasher seed (ids and
/// jitter need unpredictability, not cryptography).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}
