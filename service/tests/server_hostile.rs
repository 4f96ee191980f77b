//! Hostile uploads through the whole service (router, extractors, handler, pool, task), in
//! one process whose allocator counts: each gets its answer within a time budget, and the
//! request's peak memory stays within a small multiple of its body. The inputs are built in
//! the test (`offload-test-hostile`); the task-level tests in `tasks/tests/hostile_*.rs` pin
//! each decoder's own bound.
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use offload_service::{Config, Mode};
use offload_service_support::{Reply, call, post, state_with};
use offload_test_hostile as hostile;
use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};

#[global_allocator]
static ALLOC: &PeakMemAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// A hang guard, not a speed claim: a debug build on a busy 2-core machine answers each of
/// these in well under a second (figures in the failure messages and the PR).
const BUDGET: Duration = Duration::from_secs(10);
const MB: usize = 1_000_000;

/// One measurement at a time: the allocator's peak is process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// What one hostile request cost.
#[derive(Debug)]
struct Cost {
    reply: Reply,
    elapsed: Duration,
    /// The most bytes allocated at once beyond what was live before the request was sent.
    peak: usize,
}

/// Sends `body` to `uri` (as `content_type`) through a fresh offload-mode service and
/// measures the request. The body is built before the measurement starts.
fn send(uri: &str, content_type: &str, body: Vec<u8>) -> Cost {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let state = state_with(Config {
        mode: Mode::Offload,
        threads: Some(1),
        ..Config::default()
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut request = post(uri, body);
    request
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type.parse().unwrap());
    INSTRUMENTED_SYSTEM.reset_peak_memory();
    let start = Instant::now();
    let reply = runtime.block_on(call(&state, request));
    let elapsed = start.elapsed();
    let peak = INSTRUMENTED_SYSTEM.get_peak_memory();
    Cost {
        reply,
        elapsed,
        peak,
    }
}

/// Asserts a client error (never a 5xx) within the budget, and a peak of at most `peak_mb`.
#[track_caller]
fn assert_refused(cost: &Cost, peak_mb: usize) {
    assert!(
        cost.reply.status.is_client_error(),
        "{}: {}",
        cost.reply.status,
        cost.reply.text()
    );
    assert_within(cost, peak_mb);
}

#[track_caller]
fn assert_within(cost: &Cost, peak_mb: usize) {
    // Shown with `--nocapture`: the figures the bounds were set from.
    eprintln!(
        "{}: {} in {:?}, peak {:.1} MB",
        std::thread::current().name().unwrap_or("?"),
        cost.reply.status,
        cost.elapsed,
        cost.peak as f64 / MB as f64
    );
    assert!(cost.elapsed < BUDGET, "took {:?}", cost.elapsed);
    assert!(
        cost.peak <= peak_mb * MB,
        "peak {:.1} MB > {peak_mb} MB (status {}, {:?})",
        cost.peak as f64 / MB as f64,
        cost.reply.status,
        cost.elapsed
    );
}

#[test]
fn a_gif_declaring_a_huge_screen_is_refused_before_any_pixel_buffer() {
    // 40 bytes that declare 10000x10000: a full canvas would be 400 MB.
    let cost = send("/thumbnail", "image/gif", hostile::gif_bomb(10_000, 10_000));
    assert_refused(&cost, 8);
}

#[test]
fn a_png_whose_profile_inflates_to_a_gibibyte_is_thumbnailed_without_inflating_it() {
    // About 1 MB whose `iCCP` chunk inflates to 1 GiB: the profile is skipped, not inflated,
    // and the 1x1 image inside is a valid upload.
    let body = hostile::png_with_profile_bomb(1 << 30);
    assert!(body.len() < 2 * MB);
    let cost = send("/thumbnail?format=png", "image/png", body);
    assert_eq!(cost.reply.status, StatusCode::OK, "{}", cost.reply.text());
    assert_within(&cost, 16);
}

#[test]
fn a_csv_report_with_no_line_break_is_refused_in_linear_time() {
    let body = hostile::csv_without_line_breaks(8 * MB);
    let cost = send("/report", "text/csv", body);
    // The cutter scans once and keeps no copy of the field.
    assert_refused(&cost, 8);
}

#[test]
fn a_csv_report_with_bare_cr_line_ends_stays_within_a_few_bodies() {
    let body = hostile::csv_cr_only(200_000);
    let len = body.len();
    let cost = send("/report", "text/csv", body);
    assert!(
        !cost.reply.status.is_server_error(),
        "{}: {}",
        cost.reply.status,
        cost.reply.text()
    );
    // Before the linear cutter: 346 MB for a 28 MB body of such rows.
    assert_within(&cost, len / MB + 8);
}

#[test]
fn a_json_report_of_zeros_is_refused_at_the_first_row() {
    // Before the streaming parse: 244 MB for 30 MB of zeros, parsed into a vector of raw
    // values before the first row was looked at; then a full pass before failing (4.4 s for
    // these 4 MB in a debug build).
    let body = hostile::json_zeros(15 * MB);
    let cost = send("/report", "application/json", body);
    assert_refused(&cost, 8);
    assert!(cost.reply.text().contains("row 1"), "{}", cost.reply.text());
}
