//! The same events, sent to the `metrics` facade (feature `metrics`), for whatever exporter
//! the application installed (Prometheus, StatsD, ...).
//!
//! Series, each labelled `pool` (the builder's `thread_name`, `offload` by default):
//! - `offload_tasks_submitted_total`, `offload_tasks_rejected_total` (counters);
//! - `offload_tasks_total{outcome="completed|panicked|cancelled|timed_out|shed"}` (counter): once
//!   nothing is in flight, its sum equals `offload_tasks_submitted_total`;
//! - `offload_queued`, `offload_running` (gauges);
//! - `offload_task_wait_seconds{task}`, `offload_task_run_seconds{task}` (histograms);
//! - `offload_reactor_lag_seconds` (histogram, while `Pool::monitor_reactor` runs).
//!
//! Handles are registered once (per pool, and per task name on each worker thread), so the
//! hot path costs an atomic add per event, not a registry look-up.

use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use super::Outcome;

#[derive(Debug)]
pub(super) struct Counters {
    pub(super) submitted: Counter,
    pub(super) rejected: Counter,
    pub(super) ended: [Counter; 5],
}

impl Counters {
    pub(super) fn new(pool: &str) -> Counters {
        let pool = pool.to_owned();
        Counters {
            submitted: counter!("offload_tasks_submitted_total", "pool" => pool.clone()),
            rejected: counter!("offload_tasks_rejected_total", "pool" => pool.clone()),
            ended: Outcome::ALL.map(|outcome| {
                counter!("offload_tasks_total", "pool" => pool.clone(), "outcome" => outcome.label())
            }),
        }
    }
}

#[derive(Clone)]
pub(super) struct Pair {
    wait: Histogram,
    run: Histogram,
}

impl Pair {
    pub(super) fn new(pool: &str, task: &'static str) -> Pair {
        let pool = pool.to_owned();
        Pair {
            wait: histogram!("offload_task_wait_seconds", "pool" => pool.clone(), "task" => task),
            run: histogram!("offload_task_run_seconds", "pool" => pool, "task" => task),
        }
    }

    pub(super) fn record(&self, wait: Duration, run: Duration) {
        self.wait.record(wait.as_secs_f64());
        self.run.record(run.as_secs_f64());
    }
}

#[derive(Debug)]
pub(super) struct Load {
    queued: Gauge,
    running: Gauge,
}

impl Load {
    pub(super) fn new(pool: &str) -> Load {
        Load {
            queued: gauge!("offload_queued", "pool" => pool.to_owned()),
            running: gauge!("offload_running", "pool" => pool.to_owned()),
        }
    }

    pub(super) fn set(&self, queued: u64, running: u64) {
        self.queued.set(queued as f64);
        self.running.set(running as f64);
    }
}

/// A reactor lag sample.
pub(crate) fn reactor_lag(lag: Duration) {
    histogram!("offload_reactor_lag_seconds").record(lag.as_secs_f64());
}
