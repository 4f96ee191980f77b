//! What the cache counts: one counter per outcome, plus what the tiers report.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// How one call through the cache was served; what a service puts in `x-cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// From a cache tier (this process's, or the shared one): nothing ran.
    Hit,
    /// This call started the computation.
    Miss,
    /// Another call was computing the same key; this one waited for that result.
    Coalesced,
    /// The task's key could not be computed (a field failed to encode), so it ran uncached.
    Bypass,
}

impl Outcome {
    /// `"hit"`, `"miss"`, `"coalesced"` or `"bypass"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Coalesced => "coalesced",
            Outcome::Bypass => "bypass",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of a cache's counters, from [`Cache::stats`](crate::Cache::stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct CacheStats {
    /// Calls answered from a tier ([`Outcome::Hit`]), `shared_hits` included.
    pub hits: u64,
    /// Of `hits`, those found in the shared tier (Redis) by a computation that then did not
    /// run.
    pub shared_hits: u64,
    /// Calls that started a computation ([`Outcome::Miss`]).
    pub misses: u64,
    /// Calls that waited for another call's computation ([`Outcome::Coalesced`]).
    pub coalesced: u64,
    /// Calls that ran uncached ([`Outcome::Bypass`]).
    pub bypassed: u64,
    /// Tasks actually run by the runner (misses that the shared tier did not answer).
    pub executions: u64,
    /// Entries removed from the local tier to stay within its byte bound.
    pub evictions: u64,
    /// Bytes held by the local tier (serialised results).
    pub bytes: u64,
    /// The local tier's byte bound.
    pub capacity_bytes: u64,
    /// Entries in the local tier.
    pub entries: u64,
    /// Computations in progress (a cancelled one counts until its task has ended).
    pub in_flight: u64,
    /// Callers waiting for a computation in progress (its starter included).
    pub waiting: u64,
    /// Shared-tier calls that failed or timed out (each one served locally instead).
    pub shared_errors: u64,
}

impl CacheStats {
    /// `hits / (hits + misses + coalesced)`, or 0 before any call. Coalesced calls cost no
    /// execution either; [`saved_ratio`](CacheStats::saved_ratio) counts them.
    pub fn hit_ratio(&self) -> f64 {
        let calls = self.hits + self.misses + self.coalesced;
        if calls == 0 {
            0.0
        } else {
            self.hits as f64 / calls as f64
        }
    }

    /// The share of calls that ran nothing: `(hits + coalesced) / calls`.
    pub fn saved_ratio(&self) -> f64 {
        let calls = self.hits + self.misses + self.coalesced;
        if calls == 0 {
            0.0
        } else {
            (self.hits + self.coalesced) as f64 / calls as f64
        }
    }
}

/// The live counters behind [`CacheStats`].
#[derive(Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    shared_hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
    bypassed: AtomicU64,
    executions: AtomicU64,
}

impl Counters {
    /// Counts one call's outcome (and emits it through the `metrics` facade when enabled).
    pub(crate) fn call(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Hit => &self.hits,
            Outcome::Miss => &self.misses,
            Outcome::Coalesced => &self.coalesced,
            Outcome::Bypass => &self.bypassed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("offload_cache_requests_total", "outcome" => outcome.as_str())
            .increment(1);
    }

    #[cfg_attr(not(feature = "redis"), expect(dead_code))]
    pub(crate) fn shared_hit(&self) {
        self.shared_hits.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("offload_cache_shared_hits_total").increment(1);
    }

    pub(crate) fn execution(&self) {
        self.executions.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("offload_cache_executions_total").increment(1);
    }

    /// The snapshot, without the tiers' figures (the cache fills those in).
    pub(crate) fn snapshot(&self) -> CacheStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            hits: get(&self.hits),
            shared_hits: get(&self.shared_hits),
            misses: get(&self.misses),
            coalesced: get(&self.coalesced),
            bypassed: get(&self.bypassed),
            executions: get(&self.executions),
            ..CacheStats::default()
        }
    }
}

/// Publishes the local tier's figures through the `metrics` facade.
#[cfg(feature = "metrics")]
pub(crate) fn emit_local(bytes: u64, entries: u64, evictions: u64) {
    metrics::gauge!("offload_cache_bytes").set(bytes as f64);
    metrics::gauge!("offload_cache_entries").set(entries as f64);
    metrics::counter!("offload_cache_evictions_total").absolute(evictions);
}
