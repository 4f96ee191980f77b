//! Reactor lag: how late the async runtime runs a timer, like Node's `monitorEventLoopDelay`.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::metrics::{self, Latency};

/// Measures how late the async runtime wakes a timer: the time a ready task waits for a
/// reactor thread. Near zero on a healthy service; it grows when handlers block the reactor
/// with CPU work, which is what offloading prevents.
///
/// Probe tasks sleep for `resolution` in a loop and record how much later than asked they
/// woke up. Percentiles cover the last one to two `window`s. The cost is one timer wake-up
/// per probe per `resolution` (100 per second with the defaults), so it can stay on in
/// production. Tokio's timers tick in whole milliseconds, so an idle runtime shows up to
/// about 1 ms of lag.
///
/// The probes stop when the last `ReactorLag` handle (including the one a [`Pool`] keeps
/// after [`Pool::monitor_reactor`]) is dropped, or when the runtime shuts down.
///
/// [`Pool`]: crate::Pool
/// [`Pool::monitor_reactor`]: crate::Pool::monitor_reactor
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() {
/// let lag = offload::ReactorLag::start();
/// tokio::time::sleep(std::time::Duration::from_millis(50)).await;
/// let snapshot = lag.snapshot();
/// assert!(snapshot.count > 0);
/// println!("reactor lag p99: {} µs", snapshot.p99_ns / 1_000);
/// # }
/// ```
#[derive(Clone)]
pub struct ReactorLag {
    inner: Arc<Inner>,
}

struct Inner {
    resolution: Duration,
    window: Duration,
    windows: Mutex<Windows>,
}

struct Windows {
    current: Histogram<u64>,
    previous: Histogram<u64>,
    started: Instant,
}

impl ReactorLag {
    /// Starts monitoring the current tokio runtime with a 10 ms resolution, a 10 s window,
    /// and one probe per runtime worker thread.
    ///
    /// # Panics
    ///
    /// Panics when called outside a tokio runtime, or inside one built without timers.
    #[track_caller]
    pub fn start() -> ReactorLag {
        ReactorLag::with_settings(Duration::from_millis(10), Duration::from_secs(10))
    }

    /// Like [`start`](ReactorLag::start), with another probe interval and window.
    ///
    /// # Panics
    ///
    /// Panics when called outside a tokio runtime, or inside one built without timers, or if
    /// `resolution` is zero.
    #[track_caller]
    pub fn with_settings(resolution: Duration, window: Duration) -> ReactorLag {
        assert!(!resolution.is_zero(), "the resolution must be positive");
        let handle = tokio::runtime::Handle::current();
        let inner = Arc::new(Inner {
            resolution,
            window,
            windows: Mutex::new(Windows {
                current: metrics::histogram(),
                previous: metrics::histogram(),
                started: Instant::now(),
            }),
        });
        let probes = handle.metrics().num_workers().max(1);
        for _ in 0..probes {
            handle.spawn(probe(Arc::downgrade(&inner)));
        }
        ReactorLag { inner }
    }

    /// Lag percentiles over the last one to two windows, in nanoseconds.
    pub fn snapshot(&self) -> Latency {
        let w = self
            .inner
            .windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut both = w.previous.clone();
        // Same bounds on both sides, so adding cannot fail.
        let _ = both.add(&w.current);
        Latency::of(&both)
    }
}

impl Inner {
    fn record(&self, lag: Duration) {
        let mut w = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if w.started.elapsed() >= self.window {
            let w = &mut *w;
            std::mem::swap(&mut w.previous, &mut w.current);
            w.current.reset();
            w.started = Instant::now();
        }
        metrics::record_duration(&mut w.current, lag);
        #[cfg(feature = "metrics")]
        metrics::export_reactor_lag(lag);
    }
}

async fn probe(inner: Weak<Inner>) {
    let Some(resolution) = inner.upgrade().map(|i| i.resolution) else {
        return;
    };
    loop {
        let deadline = tokio::time::Instant::now() + resolution;
        tokio::time::sleep_until(deadline).await;
        let lag = tokio::time::Instant::now().saturating_duration_since(deadline);
        match inner.upgrade() {
            Some(inner) => inner.record(lag),
            None => return,
        }
    }
}

impl fmt::Debug for ReactorLag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReactorLag")
            .field("resolution", &self.inner.resolution)
            .field("window", &self.inner.window)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}
