//! Peak-memory measurement for the hostile-input tests.
//!
//! A test binary installs the counting allocator with
//! `#[global_allocator] static ALLOC: &PeakMemAlloc<System> = &INSTRUMENTED_SYSTEM;`
//! (from `peakmem_alloc`) and measures with [`measure`], which runs one closure at a time,
//! so tests in the same binary cannot add to each other's peak.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAllocTrait};

static SERIAL: Mutex<()> = Mutex::new(());

/// What [`measure`] saw: the closure's value, its wall time, and the most bytes allocated
/// at once during it beyond what was live when it started.
#[derive(Debug)]
pub(crate) struct Measured<T> {
    pub(crate) value: T,
    pub(crate) elapsed: Duration,
    pub(crate) peak: usize,
}

/// Runs `f` alone (other `measure` calls wait) and records its peak extra memory and time.
///
/// Only meaningful in a binary whose global allocator is `INSTRUMENTED_SYSTEM`.
pub(crate) fn measure<T>(f: impl FnOnce() -> T) -> Measured<T> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    INSTRUMENTED_SYSTEM.reset_peak_memory();
    let start = Instant::now();
    let value = f();
    let elapsed = start.elapsed();
    let peak = INSTRUMENTED_SYSTEM.get_peak_memory();
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
