#![doc = include_str!("../README.md")]
#![deny(missing_docs, missing_debug_implementations)]

// One call, top to bottom: `cache` (key, local tier, flight) -> `flight` (join or start the
// spawned computation) -> back in `cache`: local tier, `shared` tier, the runner -> `local`
// store -> publish through `flight`. Leaves: `key`, `codec`, `stats`.

mod cache;
mod codec;
mod flight;
mod key;
mod local;
#[cfg(feature = "redis")]
mod shared;
mod stats;
#[cfg(feature = "tasks")]
mod tasks;

pub use cache::{BuildError, Builder, Cache, Cached};
pub use key::{Cacheable, Keep, Key, KeyWriter, Secret};
pub use stats::{CacheStats, Outcome};
