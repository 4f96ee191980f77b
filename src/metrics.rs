//! Counters and latency histograms, and the plain snapshot that `Pool::metrics` returns.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::Error;
use crate::shared::Config;

/// One hour in nanoseconds: longer waits and runs are recorded as one hour.
const HIGHEST_NS: u64 = 3_600_000_000_000;

fn histogram() -> Histogram<u64> {
    // Two significant digits: percentiles within 1%, a few tens of KiB per histogram.
    Histogram::new_with_bounds(1, HIGHEST_NS, 2).expect("constant bounds are valid")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// Outcome counters, bumped where the caller learns the outcome (so they match what callers
/// saw) and at submission.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) submitted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) timed_out: AtomicU64,
}

impl Counters {
    pub(crate) fn outcome<O>(&self, result: &Result<O, Error>) {
        let counter = match result {
            Ok(_) => &self.completed,
            Err(Error::Panicked { .. }) => &self.panicked,
            Err(Error::TimedOut { .. }) => &self.timed_out,
            Err(Error::Closed) => &self.cancelled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Clone)]
struct Pair {
    wait: Histogram<u64>,
    run: Histogram<u64>,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            wait: histogram(),
            run: histogram(),
        }
    }

    fn record(&mut self, wait: Duration, run: Duration) {
        self.wait.saturating_record(nanos(wait));
        self.run.saturating_record(nanos(run));
    }

    fn merge(&mut self, other: &Pair) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.wait.add(&other.wait);
        let _ = self.run.add(&other.run);
    }
}

/// One thread's latency histograms per task name. The overall figures are the merge of
/// these, made when a snapshot is taken, so a task records two values, not four.
#[derive(Default)]
pub(crate) struct Slot {
    // A handful of names per service: a linear scan, no hashing.
    by_name: Vec<(&'static str, Pair)>,
}

impl Slot {
    pub(crate) fn record(&mut self, name: &'static str, wait: Duration, run: Duration) {
        let pair = match self.by_name.iter().position(|(n, _)| *n == name) {
            Some(i) => &mut self.by_name[i].1,
            None => {
                self.by_name.push((name, Pair::new()));
                &mut self.by_name.last_mut().expect("just pushed").1
            }
        };
        pair.record(wait, run);
    }
}

/// Percentiles of one latency distribution, in nanoseconds (1% precision).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// How many values were recorded.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Largest value seen.
    pub max_ns: u64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            p50_ns: h.value_at_quantile(0.50),
            p90_ns: h.value_at_quantile(0.90),
            p99_ns: h.value_at_quantile(0.99),
            max_ns: h.max(),
        }
    }
}

/// Queue-wait and run-time percentiles of the tasks that ran under one name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TaskLatency {
    /// Time from submission to the start of the run.
    pub wait: Latency,
    /// Time the task's `run` took.
    pub run: Latency,
}

/// A snapshot of a pool's counters and latencies. Returned by
/// [`Pool::metrics`](crate::Pool::metrics); plain data that serializes with serde.
///
/// Every submitted task ends exactly one way, so once nothing is in flight (for example after
/// [`shutdown`](crate::Pool::shutdown) returns and every caller has its result),
/// `submitted == completed + panicked + cancelled + timed_out` and
/// `queued == running == 0`; see [`Metrics::is_settled`]. Tasks that `try_run` refused, or
/// that arrived after the pool closed, count as `rejected` and were never submitted.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), offload::Error> {
/// let pool = offload::Pool::builder().threads(2).build().expect("threads start");
/// pool.run(|| 1 + 1).name("add").await?;
/// pool.shutdown().await;
/// let m = pool.metrics();
/// assert_eq!((m.submitted, m.completed), (1, 1));
/// assert!(m.is_settled());
/// assert_eq!(m.tasks["add"].run.count, 1);
/// println!("{}", serde_json::to_string(&m).unwrap());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Worker threads (0 for an inline pool).
    pub threads: u64,
    /// The bound on queued tasks.
    pub queue_capacity: u64,
    /// Tasks accepted by `run` or `try_run`.
    pub submitted: u64,
    /// Tasks whose value reached the caller.
    pub completed: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Tasks whose caller dropped the future or handle first, or that the pool closed
    /// before they could run.
    pub cancelled: u64,
    /// Tasks whose timeout passed first.
    pub timed_out: u64,
    /// Tasks refused (queue full for `try_run`, or pool closed); never submitted.
    pub rejected: u64,
    /// Tasks waiting in the queue now.
    pub queued: u64,
    /// Tasks running now.
    pub running: u64,
    /// Queue-wait and run-time percentiles over all tasks that ran.
    pub overall: TaskLatency,
    /// The same per [`Task::name`](crate::Task::name), sorted by name.
    pub tasks: BTreeMap<String, TaskLatency>,
    /// How late the async runtime runs timers, when
    /// [`Pool::monitor_reactor`](crate::Pool::monitor_reactor) is on.
    pub reactor_lag: Option<Latency>,
}

impl Metrics {
    pub(crate) fn snapshot<'a>(
        config: &Config,
        counters: &Counters,
        queued: u64,
        running: u64,
        slots: impl Iterator<Item = &'a Mutex<Slot>>,
        reactor_lag: Option<Latency>,
    ) -> Metrics {
        let mut by_name: BTreeMap<&'static str, Pair> = BTreeMap::new();
        for slot in slots {
            // Merge under the lock rather than cloning: a worker waits at most this long.
            let slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            for (name, pair) in &slot.by_name {
                by_name.entry(name).or_insert_with(Pair::new).merge(pair);
            }
        }
        let mut all = Pair::new();
        for pair in by_name.values() {
            all.merge(pair);
        }
        let latency = |p: &Pair| TaskLatency {
            wait: Latency::of(&p.wait),
            run: Latency::of(&p.run),
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Metrics {
            threads: config.threads as u64,
            queue_capacity: config.capacity as u64,
            submitted: load(&counters.submitted),
            completed: load(&counters.completed),
            panicked: load(&counters.panicked),
            cancelled: load(&counters.cancelled),
            timed_out: load(&counters.timed_out),
            rejected: load(&counters.rejected),
            queued,
            running,
            overall: latency(&all),
            tasks: by_name
                .iter()
                .map(|(name, pair)| ((*name).to_owned(), latency(pair)))
                .collect(),
            reactor_lag,
        }
    }

    /// Tasks that have ended, one way or another.
    pub fn ended(&self) -> u64 {
        self.completed + self.panicked + self.cancelled + self.timed_out
    }

    /// Whether every submitted task has ended and nothing is queued or running.
    pub fn is_settled(&self) -> bool {
        self.submitted == self.ended() && self.queued == 0 && self.running == 0
    }
}
