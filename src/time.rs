//! Clocks, deadlines and the timeout timer.
//!
//! Two clocks: [`Stamp`] (the CPU's timestamp counter, cheap) for the wait and run figures in
//! metrics, and `std::time::Instant` for deadlines, which tokio's timers understand.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::{Duration, Instant};

/// A point in time for wait and run metrics: read from the CPU's timestamp counter where it
/// is reliable, with the OS clock as fallback. `cargo bench --bench dispatch -- d_clock`
/// measures both reads side by side (9.3 ns against 21.9 ns for `std::time::Instant::now` on
/// the 2-core development machine); a task reads it twice.
pub(crate) type Stamp = quanta::Instant;

/// Now, on the metrics clock.
pub(crate) fn stamp() -> Stamp {
    quanta::Instant::now()
}

/// The deadline of something that starts now and may take `timeout`. A timeout too large to
/// represent never fires (the deadline lands a century out).
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Whether `deadline` (if any) has passed; reads the clock only when there is one.
pub(crate) fn is_past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Whole microseconds, saturating: for span fields and log lines.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A timer that exists only under a tokio runtime; elsewhere timeouts are enforced by the
/// pool when the task would start or when it ends.
pub(crate) struct Timer(Option<Pin<Box<tokio::time::Sleep>>>);

impl Timer {
    fn new(deadline: Instant) -> Timer {
        Timer(
            tokio::runtime::Handle::try_current()
                .ok()
                .map(|_| Box::pin(tokio::time::sleep_until(deadline.into()))),
        )
    }

    /// Whether `deadline` has passed, starting the timer in `slot` on first use; until it
    /// has, the waker is registered with it.
    pub(crate) fn expired(
        slot: &mut Option<Timer>,
        deadline: Instant,
        cx: &mut Context<'_>,
    ) -> bool {
        slot.get_or_insert_with(|| Timer::new(deadline))
            .0
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready())
    }
}
