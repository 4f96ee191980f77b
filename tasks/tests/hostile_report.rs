//! Hostile report bodies: no line breaks, CR-only line ends, arrays of bare zeros. Each is
//! parsed in time linear in its size and in memory that does not grow with it.
//!
//! Each test measures the task's peak heap with a counting allocator; before the budget
//! these bodies took hundreds of megabytes (figures in the PR).
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use std::time::Duration;

use offload_tasks::report::{Limits, OnBadRow, Report, ReportError, ReportTask, RowErrorKind};
use support::alloc::{Counting, INSTRUMENTED_SYSTEM, MB, QUICK, mb, measure};

#[global_allocator]
static ALLOC: Counting = &INSTRUMENTED_SYSTEM;

/// Generous for any of these bodies: a few partials, the field list, the index; the old
/// code took 10 to 30 times this.
const BUDGET: usize = 8 * MB;

/// The JSON bodies' size: serde_json in a debug build parses about 1 MB/s of bare zeros,
/// so `cargo test --release` runs the issue's full 30 MB.
const JSON_LEN: usize = if cfg!(debug_assertions) {
    2 * MB
} else {
    30 * MB
};

/// A few partials (64 KiB of date cache each) and the chunk index; the old code's vector of
/// raw values was 8 bytes an input byte (16 MB for the debug build's 2 MB body).
const JSON_BUDGET: usize = 4 * MB;

const HEADER: &str = "date,category,region,description,quantity,unit_price";

/// `unit` repeated to `len` bytes after `head`.
fn repeated(head: &str, unit: &str, len: usize) -> Vec<u8> {
    let mut out = head.as_bytes().to_vec();
    while out.len() < len {
        out.extend_from_slice(unit.as_bytes());
    }
    out
}

/// Builds the task with `setup`, runs it and checks time and peak memory against `budget`.
fn run_within(
    name: &str,
    budget: usize,
    setup: impl FnOnce() -> ReportTask,
) -> Result<Report, ReportError> {
    // `compute` borrows the input, so freeing it does not offset the peak.
    let run = measure(setup, |task| task.compute());
    eprintln!("{name}: {:?}, peak {:.1} MB", run.elapsed, mb(run.peak));
    assert!(run.elapsed < QUICK, "{name} took {:?}", run.elapsed);
    assert!(run.peak < budget, "{name}: peak {:.1} MB", mb(run.peak));
    run.value
}

/// A JSON array of bare zeros, `len` bytes long.
fn json_zeros(len: usize) -> Vec<u8> {
    let mut body = repeated("[0", ",0", len - 1);
    body.push(b']');
    body
}

#[test]
fn smoke() {
    // 32 MB after the header without a line break: one record of millions of fields.
    let body = || repeated(&format!("{HEADER}\n"), "2024-01-01,", 32 * MB);
    let err = run_within("csv without line break", BUDGET, || {
        ReportTask::from_csv(body())
    })
    .unwrap_err();
    let row = err.as_row().unwrap();
    assert_eq!((row.row, row.kind.clone()), (1, RowErrorKind::ExtraField));
}

#[test]
fn csv_without_any_separator_is_one_bad_record() {
    // Neither comma nor newline: the cutter's worst case, one field to the end.
    let body = || repeated(&format!("{HEADER}\n"), "x", 32 * MB);
    let err = run_within("csv of one field", BUDGET, || ReportTask::from_csv(body())).unwrap_err();
    let row = err.as_row().unwrap();
    assert_eq!((row.row, row.kind.clone()), (1, RowErrorKind::MissingField));
}

#[test]
fn csv_with_cr_only_line_ends_fails_on_the_header() {
    let row = "2024-03-01,Books,EU,novel,2,9.99\r";
    let body = || repeated(&format!("{HEADER}\r"), row, 28 * MB);
    let err = run_within("csv with cr-only line ends", BUDGET, || {
        ReportTask::from_csv(body())
    })
    .unwrap_err();
    assert_eq!(err, ReportError::TooManyColumns { limit: 1024 });
    assert!(err.is_limit());
}

#[test]
fn csv_body_with_cr_only_line_ends_is_skipped_as_one_record() {
    let row = "2024-03-01,Books,EU,novel,2,9.99\r";
    let body = || repeated(&format!("{HEADER}\n"), row, 28 * MB);
    let report = run_within("csv body with cr-only line ends", BUDGET, || {
        ReportTask::from_csv(body()).on_bad_row(OnBadRow::Skip)
    })
    .unwrap();
    assert_eq!((report.overall.count, report.skipped_rows), (0, 1));
}

#[test]
fn json_array_of_zeros_fails_on_the_first_row() {
    let err = run_within("json of zeros", JSON_BUDGET, || {
        ReportTask::from_json(json_zeros(JSON_LEN))
    })
    .unwrap_err();
    let row = err.as_row().unwrap();
    assert_eq!((row.row, row.kind.clone()), (1, RowErrorKind::WrongType));
}

#[test]
fn json_array_of_zeros_is_skipped_row_by_row() {
    // Half the size: every row takes the skip path.
    let len = JSON_LEN / 2;
    let rows = (len / 2) as u64;
    let report = run_within("json of zeros, skipped", JSON_BUDGET, || {
        ReportTask::from_json(json_zeros(len)).on_bad_row(OnBadRow::Skip)
    })
    .unwrap();
    assert_eq!((report.overall.count, report.skipped_rows), (0, rows));
}

#[test]
fn json_row_limit_applies_while_parsing() {
    let body = || {
        let mut body = repeated("[{}", ",{}", 30 * MB);
        body.push(b']');
        let limits = Limits {
            max_rows: 1000,
            ..Limits::default()
        };
        ReportTask::from_json(body).limits(limits)
    };
    let run = measure(body, |task| task.compute());
    assert_eq!(
        run.value.unwrap_err(),
        ReportError::TooManyRows { limit: 1000 }
    );
    // The rest of the body is never read.
    assert!(
        run.elapsed < Duration::from_millis(100),
        "took {:?}",
        run.elapsed
    );
    assert!(run.peak < MB, "peak {:.1} MB", mb(run.peak));
}
