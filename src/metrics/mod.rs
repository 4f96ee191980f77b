//! What a pool counts and times, and the plain snapshot that `Pool::metrics` returns.
//!
//! Counters are keyed by [`Outcome`], the way a task ended as its caller learned it; latencies
//! live in one [`Recorder`] slot per worker thread, merged only when a snapshot is taken. With
//! the `metrics` feature the same events also go to the `metrics` facade (see `facade.rs`).

#[cfg(feature = "metrics")]
mod facade;
#[cfg(feature = "metrics")]
pub(crate) use facade::reactor_lag as export_reactor_lag;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::Error;

/// One hour in nanoseconds: longer waits and runs are recorded as one hour.
const HIGHEST_NS: u64 = 3_600_000_000_000;

/// An empty latency histogram: 1 ns to one hour, two significant digits (percentiles within
/// 1%, a few tens of KiB each).
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_NS, 2).expect("constant bounds are valid")
}

/// Records `d` in `h`, saturating at the histogram's bounds.
pub(crate) fn record_duration(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1));
}

/// How a submitted task ended, as its caller learned it. Exactly one per submitted task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The value reached the caller.
    Completed,
    /// The task panicked.
    Panicked,
    /// The caller left first, or the pool was torn down before the task could run.
    Cancelled,
    /// The deadline passed first.
    TimedOut,
    /// Dropped unrun by the queue-delay policy; the caller learned it as overloaded.
    Shed,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Completed,
        Outcome::Panicked,
        Outcome::Cancelled,
        Outcome::TimedOut,
        Outcome::Shed,
    ];

    /// The outcome a caller learns from `result`.
    pub(crate) fn of<O>(result: &Result<O, Error>) -> Outcome {
        match result {
            Ok(_) => Outcome::Completed,
            Err(Error::Panicked { .. }) => Outcome::Panicked,
            Err(Error::TimedOut { .. }) => Outcome::TimedOut,
            Err(Error::Closed) => Outcome::Cancelled,
            // At admission a refusal is counted `rejected` (never submitted); through a
            // handle it is the queue-delay policy's.
            Err(Error::Overloaded { .. }) => Outcome::Shed,
            // Remote backends only: they do not reach a pool's handle, but if one did, the
            // nearest outcome counts it.
            Err(Error::Unavailable { .. }) => Outcome::Cancelled,
            Err(Error::Failed { .. }) => Outcome::Panicked,
        }
    }

    /// The label of this outcome in exported metrics.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn label(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Panicked => "panicked",
            Outcome::Cancelled => "cancelled",
            Outcome::TimedOut => "timed_out",
            Outcome::Shed => "shed",
        }
    }
}

/// Submission and outcome counters. Outcomes are counted where the caller learns them (so
/// they match what callers saw); `submitted` and `rejected` at admission.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    submitted: AtomicU64,
    rejected: AtomicU64,
    ended: [AtomicU64; 5],
    #[cfg(feature = "metrics")]
    facade: Option<facade::Counters>,
}

impl Counters {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(label: &str) -> Counters {
        Counters {
            #[cfg(feature = "metrics")]
            facade: Some(facade::Counters::new(label)),
            ..Counters::default()
        }
    }

    pub(crate) fn submitted(&self) {
        self.submitted.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(f) = &self.facade {
            f.submitted.increment(1);
        }
    }

    pub(crate) fn rejected(&self, tasks: u64) {
        self.rejected.fetch_add(tasks, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(f) = &self.facade {
            f.rejected.increment(tasks);
        }
    }

    pub(crate) fn ended(&self, outcome: Outcome) {
        self.ended[outcome as usize].fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(f) = &self.facade {
            f.ended[outcome as usize].increment(1);
        }
    }

    fn load(&self, outcome: Outcome) -> u64 {
        self.ended[outcome as usize].load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct Pair {
    wait: Histogram<u64>,
    run: Histogram<u64>,
    /// Where this name's run-time average is in [`Averages`]: looked up at the first run
    /// on this thread (`Some(None)`: the table is full).
    average: Option<Option<usize>>,
    #[cfg(feature = "metrics")]
    facade: Option<facade::Pair>,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            wait: histogram(),
            run: histogram(),
            average: None,
            #[cfg(feature = "metrics")]
            facade: None,
        }
    }

    fn merge(&mut self, other: &Pair) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.wait.add(&other.wait);
        let _ = self.run.add(&other.run);
    }
}

/// One thread's latency histograms per task name.
#[derive(Default)]
struct Slot {
    // A handful of names per service: a linear scan, no hashing.
    by_name: Vec<(&'static str, Pair)>,
}

/// Where finished runs are timed: one slot per worker thread plus one for every other thread
/// (inline callers), so workers never contend for a lock. Also knows the slow-task threshold.
pub(crate) struct Recorder {
    slots: Box<[CachePadded<Mutex<Slot>>]>,
    /// The same per task name: what admission expects a task of that name to take.
    averages: Averages,
    threads: usize,
    slow_task_threshold: Duration,
    #[cfg(feature = "metrics")]
    label: std::sync::Arc<str>,
    #[cfg(feature = "metrics")]
    load: facade::Load,
}

impl Recorder {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(threads: usize, slow_task_threshold: Duration, label: &str) -> Recorder {
        Recorder {
            slots: (0..=threads)
                .map(|_| CachePadded::new(Mutex::new(Slot::default())))
                .collect(),
            averages: Averages::new(),
            threads,
            slow_task_threshold,
            #[cfg(feature = "metrics")]
            label: label.into(),
            #[cfg(feature = "metrics")]
            load: facade::Load::new(label),
        }
    }

    /// Whether a run this long deserves a warning.
    pub(crate) fn is_slow(&self, run: Duration) -> bool {
        run > self.slow_task_threshold
    }

    /// Records a finished run in this thread's slot.
    pub(crate) fn record(&self, name: &'static str, wait: Duration, run: Duration) {
        let index = rayon::current_thread_index()
            .filter(|&i| i < self.threads)
            .unwrap_or(self.threads);
        let mut slot = self.slots[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Names are mostly the same `'static` string each time: compare addresses first.
        let same = |n: &&'static str| std::ptr::eq(*n, name) || *n == name;
        let pair = match slot.by_name.iter().position(|(n, _)| same(n)) {
            Some(i) => &mut slot.by_name[i].1,
            None => {
                slot.by_name.push((name, Pair::new()));
                &mut slot.by_name.last_mut().expect("just pushed").1
            }
        };
        record_duration(&mut pair.wait, wait);
        record_duration(&mut pair.run, run);
        let slot = *pair
            .average
            .get_or_insert_with(|| self.averages.register(name));
        if let Some(slot) = slot {
            fold(self.averages.average(slot), run);
        }
        #[cfg(feature = "metrics")]
        pair.facade
            .get_or_insert_with(|| facade::Pair::new(&self.label, name))
            .record(wait, run);
    }

    /// How long a task named `name` is expected to run: the moving average of its runs, or
    /// before one of that name has run, the mean of the other names' averages; `None`
    /// before any task ran. (Derived here, at the rare look-up of an unknown name, rather
    /// than kept as one more average every run would write.) Reads atomics only: it runs at
    /// every submission.
    pub(crate) fn expected_run(&self, name: &'static str) -> Option<Duration> {
        let ns = |average: &AtomicU64| average.load(Ordering::Relaxed);
        let known = self.averages.published();
        if let Some(ns) = known
            .clone()
            .find(|(n, _)| std::ptr::eq(*n, name) || *n == name)
            .map(|(_, average)| ns(average))
            .filter(|&ns| ns > 0)
        {
            return Some(Duration::from_nanos(ns));
        }
        let (total, count) = known
            .map(|(_, average)| ns(average))
            .filter(|&ns| ns > 0)
            .fold((0u64, 0u64), |(total, count), ns| {
                (total.saturating_add(ns), count + 1)
            });
        (count > 0).then(|| Duration::from_nanos(total / count))
    }

    /// The queue depth and running tasks now, for exporters that are pushed to.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn load(&self, queued: u64, running: u64) {
        #[cfg(feature = "metrics")]
        self.load.set(queued, running);
    }

    /// Merges every slot's histograms by name, under each slot's lock in turn (a worker
    /// waits at most one merge).
    fn merged(&self) -> BTreeMap<&'static str, Pair> {
        let mut by_name: BTreeMap<&'static str, Pair> = BTreeMap::new();
        for slot in self.slots.iter() {
            let slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            for (name, pair) in &slot.by_name {
                by_name.entry(name).or_insert_with(Pair::new).merge(pair);
            }
        }
        by_name
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("threads", &self.threads)
            .field("slow_task_threshold", &self.slow_task_threshold)
            .finish_non_exhaustive()
    }
}

/// How many task names get a run-time average of their own; tasks of later names are
/// expected to take the mean of the others.
const AVERAGED_NAMES: usize = 64;

/// Run-time averages per task name, read at every submission without a lock: a fixed
/// table filled in order, each entry written once (under `register`'s lock) and published by
/// `len`.
struct Averages {
    entries: Box<[OnceLock<(&'static str, AtomicU64)>]>,
    len: AtomicUsize,
    register: Mutex<()>,
}

impl Averages {
    fn new() -> Averages {
        Averages {
            entries: (0..AVERAGED_NAMES).map(|_| OnceLock::new()).collect(),
            len: AtomicUsize::new(0),
            register: Mutex::new(()),
        }
    }

    /// The published entries.
    fn published(&self) -> impl Iterator<Item = &(&'static str, AtomicU64)> + Clone {
        self.entries[..self.len.load(Ordering::Acquire)]
            .iter()
            .filter_map(OnceLock::get)
    }

    /// The index of `name`'s average, registered at its first run on any thread; `None`
    /// once the table is full.
    fn register(&self, name: &'static str) -> Option<usize> {
        let _only_writer = self.register.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = self.published().position(|(n, _)| *n == name) {
            return Some(i);
        }
        let i = self.len.load(Ordering::Relaxed);
        self.entries.get(i)?.set((name, AtomicU64::new(0))).ok()?;
        self.len.store(i + 1, Ordering::Release);
        Some(i)
    }

    /// The average at `index`, as `register` returned it.
    fn average(&self, index: usize) -> &AtomicU64 {
        &self.entries[index]
            .get()
            .expect("registered before its index was handed out")
            .1
    }
}

/// Folds `run` into the moving average `average` (nanoseconds, 0 = none yet) with weight
/// 1/8. Two threads racing may lose one sample; an estimate does not mind.
fn fold(average: &AtomicU64, run: Duration) {
    let sample = u64::try_from(run.as_nanos()).unwrap_or(u64::MAX).max(1);
    let old = average.load(Ordering::Relaxed);
    let new = if old == 0 {
        sample
    } else {
        (old - old / 8).saturating_add(sample / 8).max(1)
    };
    average.store(new, Ordering::Relaxed);
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

impl TaskLatency {
    fn of(pair: &Pair) -> TaskLatency {
        TaskLatency {
            wait: Latency::of(&pair.wait),
            run: Latency::of(&pair.run),
        }
    }
}

/// A snapshot of a pool's counters and latencies. Returned by
/// [`Pool::metrics`](crate::Pool::metrics); plain data that serializes with serde.
///
/// Every submitted task ends exactly one way, so once nothing is in flight (for example after
/// [`shutdown`](crate::Pool::shutdown) returns and every caller has its result),
/// `submitted == completed + panicked + cancelled + timed_out + shed` and
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
    /// Tasks the queue-delay policy ([`Builder::queue_delay`](crate::Builder::queue_delay))
    /// dropped unrun; their callers got [`Error::Overloaded`](crate::Error::Overloaded).
    pub shed: u64,
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

/// The parts of a snapshot that are not counters or latencies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gauges {
    pub(crate) threads: usize,
    pub(crate) capacity: usize,
    pub(crate) queued: u64,
    pub(crate) running: u64,
}

impl Metrics {
    pub(crate) fn snapshot(
        gauges: Gauges,
        counters: &Counters,
        recorder: &Recorder,
        reactor_lag: Option<Latency>,
    ) -> Metrics {
        let by_name = recorder.merged();
        let mut all = Pair::new();
        for pair in by_name.values() {
            all.merge(pair);
        }
        let [completed, panicked, cancelled, timed_out, shed] =
            Outcome::ALL.map(|o| counters.load(o));
        Metrics {
            threads: gauges.threads as u64,
            queue_capacity: gauges.capacity as u64,
            submitted: counters.submitted.load(Ordering::Relaxed),
            completed,
            panicked,
            cancelled,
            timed_out,
            shed,
            rejected: counters.rejected.load(Ordering::Relaxed),
            queued: gauges.queued,
            running: gauges.running,
            overall: TaskLatency::of(&all),
            tasks: by_name
                .iter()
                .map(|(name, pair)| ((*name).to_owned(), TaskLatency::of(pair)))
                .collect(),
            reactor_lag,
        }
    }

    /// Tasks that have ended, one way or another.
    pub fn ended(&self) -> u64 {
        self.completed + self.panicked + self.cancelled + self.timed_out + self.shed
    }

    /// Whether every submitted task has ended and nothing is queued or running.
    pub fn is_settled(&self) -> bool {
        self.submitted == self.ended() && self.queued == 0 && self.running == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_apart() {
        let counters = Counters::new("test");
        counters.submitted();
        counters.submitted();
        counters.ended(Outcome::of::<()>(&Err(Error::Closed)));
        counters.ended(Outcome::of(&Ok(1)));
        counters.rejected(3);
        let recorder = Recorder::new(1, Duration::from_secs(1), "test");
        let gauges = Gauges {
            threads: 1,
            capacity: 4,
            queued: 0,
            running: 0,
        };
        let m = Metrics::snapshot(gauges, &counters, &recorder, None);
        assert_eq!(
            (m.submitted, m.completed, m.cancelled, m.rejected),
            (2, 1, 1, 3)
        );
        assert_eq!((m.panicked, m.timed_out), (0, 0));
        assert!(m.is_settled());
    }

    #[test]
    fn overall_latency_is_the_merge_of_the_names() {
        let recorder = Recorder::new(2, Duration::from_secs(1), "test");
        recorder.record("a", Duration::from_micros(1), Duration::from_micros(10));
        recorder.record("b", Duration::from_micros(2), Duration::from_micros(20));
        recorder.record("a", Duration::from_micros(3), Duration::from_micros(30));
        let gauges = Gauges {
            threads: 2,
            capacity: 4,
            queued: 0,
            running: 0,
        };
        let m = Metrics::snapshot(gauges, &Counters::new("test"), &recorder, None);
        assert_eq!(m.tasks["a"].run.count, 2);
        assert_eq!(m.tasks["b"].run.count, 1);
        assert_eq!(m.overall.run.count, 3);
        assert!(m.overall.run.max_ns >= 29_000);
    }

    #[test]
    fn expected_runs_follow_each_name_and_fall_back_to_the_mean_past_the_table() {
        let recorder = Recorder::new(1, Duration::from_secs(1), "test");
        assert_eq!(recorder.expected_run("a"), None, "nothing ran yet");
        let us = Duration::from_micros;
        recorder.record("a", us(1), us(100));
        assert_eq!(recorder.expected_run("a"), Some(us(100)));
        assert_eq!(
            recorder.expected_run("new"),
            Some(us(100)),
            "the mean of the others"
        );
        // Fill the table; names past it are still recorded in the histograms, and expected
        // to take the mean of the averaged names.
        let names: Vec<&'static str> = (0..AVERAGED_NAMES + 6)
            .map(|i| &*format!("name{i}").leak())
            .collect();
        for name in &names {
            recorder.record(name, us(1), us(300));
        }
        let mean_ns = (100_000 + 300_000 * (AVERAGED_NAMES as u64 - 1)) / AVERAGED_NAMES as u64;
        assert_eq!(recorder.expected_run(names[0]), Some(us(300)));
        let late = names[AVERAGED_NAMES + 5];
        assert_eq!(
            recorder.expected_run(late),
            Some(Duration::from_nanos(mean_ns))
        );
        recorder.record("a", us(1), us(900));
        assert_eq!(
            recorder.expected_run("a"),
            Some(us(100 + 800 / 8)),
            "a moving average"
        );
    }
}
