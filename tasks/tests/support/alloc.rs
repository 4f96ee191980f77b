//! Peak-memory measurement for the hostile-input tests.
//!
//! A test binary installs the counting allocator with
//! `#[global_allocator] static ALLOC: Counting = &INSTRUMENTED_SYSTEM;` and measures with [`measure`], which runs one test's setup and
//! task at a time, so tests in the same binary cannot add to each other's peak.

use std::alloc::System;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) use peakmem_alloc::INSTRUMENTED_SYSTEM;
use peakmem_alloc::{PeakMemAlloc, PeakMemAllocTrait};

/// The type of the global allocator a measuring test binary installs.
pub(crate) type Counting = &'static PeakMemAlloc<System>;

/// A time bound for a hostile input: five times the slowest healthy run seen on a busy
/// 2-core machine in a debug build (2.2 s), far below the old code's there (40 to 70 s for
/// the quadratic CSV cutter, 48 s to inflate a 1 GiB `iCCP`).
pub(crate) const QUICK: Duration = Duration::from_secs(10);

/// A megabyte (10^6 bytes).
pub(crate) const MB: usize = 1_000_000;

static SERIAL: Mutex<()> = Mutex::new(());

/// What [`measure`] saw: the closure's value, its wall time, and the most bytes allocated
/// at once during it beyond what was live when it started.
#[derive(Debug)]
pub(crate) struct Measured<T> {
    pub(crate) value: T,
    pub(crate) elapsed: Duration,
    pub(crate) peak: usize,
}

/// Builds the input with `setup`, then runs `f` on it and records `f`'s peak extra memory
/// and time. Whole calls run one at a time, so no other test's input is being built while
/// `f` is measured.
///
/// Only meaningful in a binary whose global allocator is `INSTRUMENTED_SYSTEM`. `f`
/// borrows the input, so freeing it does not offset the peak.
pub(crate) fn measure<I, T>(setup: impl FnOnce() -> I, f: impl FnOnce(&I) -> T) -> Measured<T> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let input = setup();
    INSTRUMENTED_SYSTEM.reset_peak_memory();
    let start = Instant::now();
    let value = f(&input);
    let elapsed = start.elapsed();
    let peak = INSTRUMENTED_SYSTEM.get_peak_memory();
    drop(input);
    Measured {
        value,
        elapsed,
        peak,
    }
}

/// Megabytes (10^6 bytes), for messages.
pub(crate) fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}
