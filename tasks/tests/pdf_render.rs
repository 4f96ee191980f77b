//! PDF reports parse back with the right pages and text; tricky text is handled.
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use offload::{Pool, Task};
use offload_tasks::pdf::synth::transactions_table;
use offload_tasks::pdf::{Column, PdfError, PdfReportTask, Table, Unencodable};
use offload_tasks::report::{Period, Report, ReportTask, synth};
use support::pdf::{grouped_money, page_texts};

const TIME: i64 = 1_700_000_000; // 2023-11-14 22:13:20 UTC

fn report(rows: &[synth::Row]) -> Report {
    ReportTask::from_csv(synth::to_csv(rows)).run().unwrap()
}

/// A report of `rows` followed by their transactions table, generated at [`TIME`].
fn with_transactions(title: &str, rows: &[synth::Row]) -> PdfReportTask {
    PdfReportTask::new(title, report(rows))
        .generated_at(TIME)
        .table(transactions_table(rows))
}

#[test]
fn smoke() {
    let rows = synth::rows(50, 1);
    let pdf = PdfReportTask::new("Smoke", report(&rows))
        .generated_at(TIME)
        .run()
        .unwrap();
    assert!(pdf.bytes.starts_with(b"%PDF"));
    let texts = page_texts(&pdf.bytes);
    assert_eq!(texts.len() as u32, pdf.pages);
    assert!(texts[0].contains("Smoke"));
    assert!(
        texts[0].contains("Generated 2023-11-14 22:13:20 UTC"),
        "{}",
        texts[0]
    );
    assert_eq!(PdfReportTask::new("x", report(&rows)).name(), "pdf_report");
}

#[test]
fn thousand_row_table_paginates_with_headers_and_footers() {
    let rows = synth::rows(1000, 2);
    let pdf = with_transactions("Sales", &rows).run().unwrap();
    let texts = page_texts(&pdf.bytes);
    let n = texts.len();
    assert_eq!(n as u32, pdf.pages);
    assert!((18..=24).contains(&n), "{n} pages");
    for (i, t) in texts.iter().enumerate() {
        assert!(
            t.contains(&format!("Page {} of {n}", i + 1)),
            "footer on page {}",
            i + 1
        );
    }
    // The transactions table starts on page 2 or 3 and repeats its header on every page after.
    let first = texts
        .iter()
        .position(|t| t.contains("Transactions"))
        .unwrap();
    assert!(first <= 2);
    for t in &texts[first..] {
        assert!(
            t.contains("Unit price") && t.contains("Description"),
            "header repeated"
        );
    }
    // Every generated row's date and price is in the transactions table, in row order.
    let table: String = texts[first..].concat();
    let mut at = table.find("Transactions").unwrap();
    for (i, r) in rows.iter().enumerate() {
        let price = format!(
            "{}.{:02}",
            r.unit_price_cents / 100,
            r.unit_price_cents % 100
        );
        let date = at
            + table[at..]
                .find(&r.date)
                .unwrap_or_else(|| panic!("row {i}: {} not found after the previous row", r.date));
        at = date
            + table[date..]
                .find(&price)
                .unwrap_or_else(|| panic!("row {i}: {price} not found after {}", r.date));
    }
}

#[test]
fn summary_and_tables_show_the_report_figures() {
    let rows = synth::rows(3000, 3);
    let total: i64 = rows.iter().map(|r| r.quantity * r.unit_price_cents).sum();
    let pdf = PdfReportTask::new("Figures", report(&rows))
        .generated_at(TIME)
        .run()
        .unwrap();
    let all = page_texts(&pdf.bytes).concat();
    assert!(
        all.contains(&grouped_money(total)),
        "total {}",
        grouped_money(total)
    );
    assert!(all.contains("Top 10 categories by sum"));
    for c in synth::CATEGORIES {
        assert!(all.contains(c), "{c}");
    }
    assert!(all.contains("2024-01") && all.contains("2025-12"));
    let weekly = ReportTask::from_csv(synth::to_csv(&rows))
        .by(Period::Week)
        .run()
        .unwrap();
    let pdf = PdfReportTask::new("Weekly", weekly)
        .generated_at(TIME)
        .run()
        .unwrap();
    let all = page_texts(&pdf.bytes).concat();
    assert!(all.contains("By ISO week") && all.contains("2024-W01"));
}

#[test]
fn parentheses_and_backslashes_survive() {
    let rows = synth::rows(10, 4);
    let table = Table::new("Odd (text)", vec![Column::left("a"), Column::left("b")])
        .row(["f(x) = \\alpha", "))((\\\\"])
        .row(["unbalanced (", "tab\tand\nnewline"]);
    let pdf = PdfReportTask::new("Q1 (draft) \\ final", report(&rows))
        .generated_at(TIME)
        .table(table)
        .run()
        .unwrap();
    let all = page_texts(&pdf.bytes).concat();
    for s in [
        "Q1 (draft) \\ final",
        "Odd (text)",
        "f(x) = \\alpha",
        "))((\\\\",
        "unbalanced (",
        "tab and newline",
    ] {
        assert!(all.contains(s), "{s:?} missing from {all:?}");
    }
}

#[test]
fn text_helvetica_cannot_show_is_never_silent() {
    let rows = synth::rows(10, 5);
    let table = Table::new("Names", vec![Column::left("name")])
        .row(["東京 😀"])
        .row(["Zürich – €5 “ok”"]);
    let base = PdfReportTask::new("Report", report(&rows))
        .generated_at(TIME)
        .table(table);

    let pdf = base.clone().run().unwrap();
    assert_eq!(pdf.replaced_chars, 3);
    let all = page_texts(&pdf.bytes).concat();
    assert!(all.contains("<U+6771><U+4EAC> <U+1F600>"), "{all}");
    assert!(all.contains("Zürich – €5 “ok”"), "WinAnsi text kept as is");

    let pdf = base
        .clone()
        .unencodable(Unencodable::Replace)
        .run()
        .unwrap();
    assert_eq!(pdf.replaced_chars, 3);
    assert!(page_texts(&pdf.bytes).concat().contains("?? ?"));

    let err = base.unencodable(Unencodable::Fail).run().unwrap_err();
    assert!(
        matches!(
            err,
            PdfError::Unencodable {
                character: '東',
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn output_is_deterministic_given_the_time() {
    let rows = synth::rows(500, 6);
    let task = with_transactions("Same", &rows);
    let a = task.clone().run().unwrap();
    let b = task.clone().run().unwrap();
    assert!(a.bytes == b.bytes, "same input, same bytes");
    let later = task.generated_at(TIME + 60).run().unwrap();
    assert!(later.bytes != a.bytes);
    assert!(page_texts(&later.bytes)[0].contains("22:14:20 UTC"));
}

#[test]
fn uncompressed_output_has_the_same_text() {
    let rows = synth::rows(200, 7);
    let task = with_transactions("Raw", &rows);
    let packed = task.clone().run().unwrap();
    let raw = task.compress(false).run().unwrap();
    assert!(raw.bytes.len() > packed.bytes.len());
    assert_eq!(page_texts(&raw.bytes), page_texts(&packed.bytes));
}

#[test]
fn bad_tables_and_limits_are_typed_errors() {
    let rows = synth::rows(10, 8);
    let ragged = Table::new("T", vec![Column::left("a"), Column::left("b")])
        .row(["1", "2"])
        .row(["only one"]);
    let err = PdfReportTask::new("x", report(&rows))
        .table(ragged)
        .run()
        .unwrap_err();
    assert_eq!(
        err,
        PdfError::RaggedRow {
            table: "T".into(),
            row: 2,
            cells: 1,
            columns: 2
        }
    );
    let mut task = PdfReportTask::new("x", report(&rows)).table(transactions_table(&rows));
    task.max_rows = 20;
    assert!(matches!(
        task.run().unwrap_err(),
        PdfError::TooManyRows { limit: 20, .. }
    ));
    // Empty report and empty table still give a valid one-page document.
    let empty = ReportTask::from_csv("date,category,region,description,quantity,unit_price\n")
        .run()
        .unwrap();
    let pdf = PdfReportTask::new("", empty)
        .table(Table::new("none", vec![]))
        .run()
        .unwrap();
    assert_eq!(page_texts(&pdf.bytes).len(), 1);
}

#[test]
fn runs_on_the_pool() {
    let rows = synth::rows(300, 9);
    let task = with_transactions("Pooled", &rows);
    let inline = task.clone().run().unwrap();
    let pool = Pool::builder().threads(2).build().unwrap();
    let pooled = support::block_on(pool.run(task)).unwrap().unwrap();
    assert!(pooled == inline, "pool and inline differ");
}

#[test]
fn extreme_inputs_still_render() {
    // 300 categories with long names, a top list longer than a page, odd timestamps.
    let mut csv = String::from("date,category,region,description,quantity,unit_price\n");
    for i in 0..300 {
        csv.push_str(&format!(
            "2024-01-01,{}{i},EU,x,{},1.00\n",
            "very long category name ".repeat(4),
            i % 7 - 3
        ));
    }
    let report = ReportTask::from_csv(csv).top(300).run().unwrap();
    for (t, generated) in [
        (
            i64::MIN,
            "-9223372036854775808 seconds after 1970-01-01 UTC",
        ),
        (-1, "1969-12-31 23:59:59 UTC"),
        (0, "1970-01-01 00:00:00 UTC"),
        (i64::MAX, "9223372036854775807 seconds after 1970-01-01 UTC"),
    ] {
        let pdf = PdfReportTask::new("Extremes", report.clone())
            .generated_at(t)
            .run()
            .unwrap();
        let texts = page_texts(&pdf.bytes);
        assert_eq!(texts.len() as u32, pdf.pages);
        assert!(texts[0].contains(&format!(
            "Top {} categories by sum",
            offload_tasks::pdf::MAX_BARS
        )));
        assert!(
            texts[0].contains(&format!("Generated {generated}")),
            "{t}: {}",
            texts[0]
        );
    }
}
