//! Bad rows are named by row and column, or skipped and counted; limits give typed errors.
#![allow(clippy::unwrap_used)]

use offload::Task;
use offload_tasks::report::{
    Limits, Money, OnBadRow, ReportError, ReportTask, RowError, RowErrorKind, synth,
};

const HEADER: &str = "date,category,region,description,quantity,unit_price\n";

fn csv(rows: &[&str]) -> String {
    let mut s = HEADER.to_owned();
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

fn row_error(input: String) -> (u64, String, RowErrorKind) {
    let e = ReportTask::from_csv(input).run().unwrap_err();
    let r = e
        .as_row()
        .unwrap_or_else(|| panic!("expected a row error, got {e:?}"));
    (r.row, r.column.clone(), r.kind.clone())
}

#[test]
fn smoke() {
    let (row, column, kind) = row_error(csv(&[
        "2024-01-01,A,EU,x,1,1.00",
        "2024-01-02,A,EU,x,1,abc",
    ]));
    assert_eq!(
        (row, column.as_str(), kind),
        (2, "unit_price", RowErrorKind::InvalidPrice)
    );
}

#[test]
fn each_column_is_named() {
    let good = "2024-01-01,A,EU,x,1,1.00";
    let cases = [
        (
            "2024-02-30,A,EU,x,1,1.00",
            "date",
            RowErrorKind::InvalidDate,
        ),
        (
            "01/02/2024,A,EU,x,1,1.00",
            "date",
            RowErrorKind::InvalidDate,
        ),
        (
            "2024-01-01,A,EU,x,1.5,1.00",
            "quantity",
            RowErrorKind::InvalidQuantity,
        ),
        (
            "2024-01-01,A,EU,x,1,1.005",
            "unit_price",
            RowErrorKind::InvalidPrice,
        ),
        (
            "2024-01-01,A,EU,x,999999999999999999,99999.00",
            "unit_price",
            RowErrorKind::AmountOverflow,
        ),
        (
            "2024-01-01,A,EU,x,1",
            "unit_price",
            RowErrorKind::MissingField,
        ),
        ("2024-01-01,A,EU", "description", RowErrorKind::MissingField),
        (
            "2024-01-01,A,EU,x,1,1.00,extra",
            "*",
            RowErrorKind::ExtraField,
        ),
        (
            "2024-01-01,A,EU,\"unclosed,1,1.00",
            "description",
            RowErrorKind::UnterminatedQuote,
        ),
        (
            "2024-01-01,A,EU,\"x\"y,1,1.00",
            "description",
            RowErrorKind::MisplacedQuote,
        ),
        (
            "2024-01-01,A,E\"U,x,1,1.00",
            "region",
            RowErrorKind::MisplacedQuote,
        ),
    ];
    for (bad, col, kind) in cases {
        let (row, column, got) = row_error(csv(&[good, good, bad, good]));
        assert_eq!((row, column.as_str(), &got), (3, col, &kind), "{bad}");
    }
}

#[test]
fn invalid_utf8_category_is_named() {
    let mut input = csv(&["2024-01-01,A,EU,x,1,1.00"]).into_bytes();
    input.extend_from_slice(b"2024-01-01,\xff\xfe,EU,x,1,1.00\n");
    let e = ReportTask::from_csv(input).run().unwrap_err();
    let r = e.as_row().unwrap();
    assert_eq!(
        (r.row, r.column.as_str(), &r.kind),
        (2, "category", &RowErrorKind::InvalidUtf8)
    );
    assert_eq!(e.to_string(), "row 2, column `category`: not valid utf-8");
}

#[test]
fn row_numbers_are_global_across_parallel_chunks() {
    // ~4.5 MB, so the bad row sits in a late chunk.
    let rows = synth::rows(80_000, 9);
    let mut text = String::from_utf8(synth::to_csv(&rows)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let bad_row = 71_234; // 1-based data row
    let mut fixed: Vec<String> = lines.iter().map(|s| (*s).to_owned()).collect();
    fixed[bad_row] = fixed[bad_row].replacen("20", "xx", 1); // breaks the date
    text = fixed.join("\n");
    let e = ReportTask::from_csv(text.clone()).run().unwrap_err();
    let r = e.as_row().unwrap();
    assert_eq!((r.row, r.column.as_str()), (bad_row as u64, "date"));
    // Skip mode: exactly one row left out, and the totals are the rest's.
    let report = ReportTask::from_csv(text)
        .on_bad_row(OnBadRow::Skip)
        .run()
        .unwrap();
    assert_eq!(report.skipped_rows, 1);
    let want: i64 = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| i + 1 != bad_row)
        .map(|(_, r)| r.quantity * r.unit_price_cents)
        .sum();
    assert_eq!(report.overall.sum, Money(want));
    assert_eq!(report.overall.count, rows.len() as u64 - 1);
}

#[test]
fn skip_mode_counts_every_bad_row() {
    let input = csv(&[
        "2024-01-01,A,EU,x,2,1.50",
        "2024-13-01,A,EU,x,1,1.00",
        "2024-01-02,B,EU,\"broken\"x,1,1.00",
        "2024-01-03,B,EU,x,1,oops",
        "2024-01-04,B,EU,x,3,0.25",
        "short,row",
    ]);
    let report = ReportTask::from_csv(input)
        .on_bad_row(OnBadRow::Skip)
        .run()
        .unwrap();
    assert_eq!(report.skipped_rows, 4);
    assert_eq!(report.overall.count, 2);
    assert_eq!(report.overall.sum, Money(300 + 75));
}

#[test]
fn missing_header_column_is_typed() {
    let e = ReportTask::from_csv("date,category,quantity\n2024-01-01,A,1\n")
        .run()
        .unwrap_err();
    assert_eq!(e, ReportError::MissingColumn("unit_price".to_owned()));
    assert_eq!(
        ReportTask::from_csv("").run().unwrap_err(),
        ReportError::MissingColumn("date".to_owned())
    );
}

#[test]
fn limits_are_typed_errors() {
    let input = synth::csv(1000, 1);
    let small = Limits {
        max_input_bytes: 1000,
        ..Limits::default()
    };
    let e = ReportTask::from_csv(input.clone())
        .limits(small)
        .run()
        .unwrap_err();
    assert!(e.is_limit());
    assert_eq!(
        e,
        ReportError::InputTooLarge {
            size: input.len(),
            limit: 1000
        }
    );
    let few = Limits {
        max_rows: 999,
        ..Limits::default()
    };
    let e = ReportTask::from_csv(input.clone())
        .limits(few)
        .run()
        .unwrap_err();
    assert_eq!(e, ReportError::TooManyRows { limit: 999 });
    let exact = Limits {
        max_rows: 1000,
        ..Limits::default()
    };
    assert_eq!(
        ReportTask::from_csv(input)
            .limits(exact)
            .run()
            .unwrap()
            .overall
            .count,
        1000
    );
}

#[test]
fn sum_overflow_is_typed() {
    let row = "2024-01-01,A,EU,x,9000000000000000,10.00"; // 9e18 cents: fits once
    let e = ReportTask::from_csv(csv(&[row, row])).run().unwrap_err();
    assert_eq!(e, ReportError::Overflow);
}

#[test]
fn sums_are_exact_while_a_running_total_leaves_64_bits() {
    // 9e18 + 9e18 does not fit in i64, but the total after the return does: not an overflow,
    // and the same answer however rayon groups the rows.
    let big = "2024-01-01,A,EU,x,9000000000000000,10.00";
    let back = "2024-01-02,A,EU,x,-9000000000000000,10.00";
    let report = ReportTask::from_csv(csv(&[big, big, back])).run().unwrap();
    assert_eq!(report.overall.sum, Money(9_000_000_000_000_000_000));
    assert_eq!(
        report.categories[0].stats.sum,
        Money(9_000_000_000_000_000_000)
    );
    assert_eq!(report.overall.count, 3);
}

#[test]
fn the_answer_does_not_depend_on_the_thread_count() {
    // ~4.5 MB: many chunks, grouped differently into partials on each pool size.
    let rows = synth::rows(80_000, 5);
    let good = synth::to_csv(&rows);
    let mut lines: Vec<String> = String::from_utf8(good.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    // Two bad rows far apart: the first one in input order is the one reported.
    for bad in [40_001, 77_777] {
        lines[bad] = lines[bad].replacen(',', ",,", 1);
    }
    let bad = lines.join("\n");
    let on = |threads: usize, task: ReportTask| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(move || task.run())
    };
    let want = on(1, ReportTask::from_csv(good.clone())).unwrap();
    for threads in [2, 3, 4] {
        assert_eq!(
            on(threads, ReportTask::from_csv(good.clone())).unwrap(),
            want
        );
        let e = on(threads, ReportTask::from_csv(bad.clone())).unwrap_err();
        let r = e.as_row().unwrap();
        assert_eq!(
            (r.row, &r.kind),
            (40_001, &RowErrorKind::ExtraField),
            "{threads} threads"
        );
        let skipped = on(
            threads,
            ReportTask::from_csv(bad.clone()).on_bad_row(OnBadRow::Skip),
        );
        assert_eq!(skipped.unwrap().skipped_rows, 2, "{threads} threads");
    }
}

#[test]
fn garbage_never_panics() {
    // Deterministic byte soup built from CSV-ish pieces, in both modes and both formats. Not
    // panicking is not all: each outcome must be one the API documents for that input.
    let pieces: [&[u8]; 12] = [
        b",",
        b"\"",
        b"\n",
        b"\r\n",
        b"2024-01-01",
        b"A",
        b"1",
        b"1.00",
        b"\xff",
        b"-",
        b"\"\"",
        b"9999999999999999",
    ];
    let mut state = 0x1234_5678_u64;
    for len in [0usize, 1, 5, 40, 400, 4000] {
        for _ in 0..30 {
            let mut input = HEADER.as_bytes().to_vec();
            for _ in 0..len {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                input.extend_from_slice(pieces[(state >> 33) as usize % pieces.len()]);
            }
            let shown = String::from_utf8_lossy(&input);
            // A valid header, then soup. Failing: a report with nothing skipped, or a bad data
            // row. Skipping: then the same report, or one that counts the bad rows it left out.
            let fail = ReportTask::from_csv(input.clone()).run();
            let skip = ReportTask::from_csv(input.clone())
                .on_bad_row(OnBadRow::Skip)
                .run();
            match (fail, skip) {
                (Ok(fail), Ok(skip)) => {
                    assert_eq!(fail.skipped_rows, 0, "{shown:?}");
                    assert_eq!(skip, fail, "{shown:?}");
                }
                (Err(ReportError::Row(e)), Ok(skip)) => {
                    assert!(e.row >= 1, "the header is valid: {e} in {shown:?}");
                    assert!(skip.skipped_rows >= 1, "{shown:?}");
                }
                other => panic!("unexpected {other:?} for {shown:?}"),
            }
            for policy in [OnBadRow::Fail, OnBadRow::Skip] {
                // CSV is not JSON.
                let e = ReportTask::from_json(input.clone())
                    .on_bad_row(policy)
                    .run()
                    .unwrap_err();
                assert!(matches!(e, ReportError::Json(_)), "{e:?}");
                // Soup where the header should be: it never names the `date` column, or it
                // does not parse as a record at all.
                let headless = &input[HEADER.len()..];
                let e = ReportTask::from_csv(headless.to_vec())
                    .on_bad_row(policy)
                    .run()
                    .unwrap_err();
                match e {
                    ReportError::MissingColumn(column) => assert_eq!(column, "date"),
                    ReportError::Row(RowError { row: 0, column, .. }) => assert_eq!(column, "*"),
                    e => panic!("{policy:?}: unexpected {e:?} for headless {shown:?}"),
                }
            }
        }
    }
}
