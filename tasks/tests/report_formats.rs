//! CSV and JSON give the same report; quoting, CRLF and BOM; results are deterministic.
#![allow(clippy::unwrap_used)]

// Each test binary uses only some of the shared helpers.
#[allow(dead_code)]
mod support;

use offload::{Pool, Task};
use offload_tasks::report::{
    Money, OnBadRow, Period, ReportError, ReportTask, RowErrorKind, synth,
};

#[test]
fn smoke() {
    let json = r#"[{"date":"2024-01-05","category":"A","region":"EU","description":"x","quantity":3,"unit_price":0.1}]"#;
    let report = ReportTask::from_json(json).run().unwrap();
    assert_eq!(report.overall.sum, Money(30));
}

#[test]
fn csv_and_json_give_the_same_report() {
    let rows = synth::rows(40_000, 21);
    for period in [Period::Day, Period::Week, Period::Month] {
        let a = ReportTask::from_csv(synth::to_csv(&rows))
            .by(period)
            .top(7)
            .run()
            .unwrap();
        let b = ReportTask::from_json(synth::to_json(&rows))
            .by(period)
            .top(7)
            .run()
            .unwrap();
        assert_eq!(a, b, "{period:?}");
        assert_eq!(a.overall.count, rows.len() as u64);
    }
}

#[test]
fn quoted_fields_with_commas_quotes_and_newlines() {
    let csv = "category,date,unit_price,quantity,description,region\r\n\
               \"Books, Music\",2024-01-01,1.00,1,\"said \"\"hi\"\", left\",EU\r\n\
               \"Toys \"\"Deluxe\"\"\",2024-01-02,2.00,1,\"two\nlines\",EU\r\n\
               \"Books, Music\",2024-01-03,3.00,2,plain,EU\r\n";
    let report = ReportTask::from_csv(csv).run().unwrap();
    let names: Vec<_> = report
        .categories
        .iter()
        .map(|c| c.category.as_str())
        .collect();
    assert_eq!(names, ["Books, Music", "Toys \"Deluxe\""]);
    assert_eq!(report.categories[0].stats.sum, Money(700));
    assert_eq!(report.overall.sum, Money(900));
}

#[test]
fn bom_and_blank_lines_are_tolerated() {
    let csv = "\u{feff}date,category,region,description,quantity,unit_price\n\n2024-01-01,A,EU,x,1,1.00\n\n";
    let report = ReportTask::from_csv(csv).run().unwrap();
    assert_eq!(report.overall.count, 1);
    assert_eq!(report.overall.sum, Money(100));
    assert_eq!(report.skipped_rows, 0, "blank lines are not bad rows");
}

#[test]
fn json_amounts_are_read_as_text_not_floats() {
    // 0.29 * 100 in f64 is 28.999999999999996; the exact parser gives 29 cents each.
    let json = r#"[
        {"date":"2024-01-01","category":"A","quantity":"100","unit_price":"0.29"},
        {"date":"2024-01-01","category":"A","quantity":100,"unit_price":0.29}
    ]"#;
    let report = ReportTask::from_json(json).run().unwrap();
    assert_eq!(report.overall.sum, Money(5800));
}

#[test]
fn json_errors_name_row_and_column() {
    let json = r#"[
        {"date":"2024-01-01","category":"A","quantity":1,"unit_price":1},
        {"date":20240101,"category":"A","quantity":1,"unit_price":1},
        {"category":"A","quantity":1,"unit_price":1},
        {"date":"2024-01-01","category":"A","quantity":1,"unit_price":1.234},
        [1,2]
    ]"#;
    let e = ReportTask::from_json(json).run().unwrap_err();
    let r = e.as_row().unwrap();
    assert_eq!(
        (r.row, r.column.as_str(), &r.kind),
        (2, "date", &RowErrorKind::WrongType)
    );
    let report = ReportTask::from_json(json)
        .on_bad_row(OnBadRow::Skip)
        .run()
        .unwrap();
    assert_eq!((report.overall.count, report.skipped_rows), (1, 4));
    assert!(matches!(
        ReportTask::from_json("{").run(),
        Err(ReportError::Json(_))
    ));
}

#[test]
fn same_report_on_one_and_two_threads_and_inline() {
    let csv = synth::csv(50_000, 99);
    let inline = ReportTask::from_csv(csv.clone())
        .by(Period::Week)
        .run()
        .unwrap();
    for threads in [1, 2] {
        let pool = Pool::builder().threads(threads).build().unwrap();
        let task = ReportTask::from_csv(csv.clone()).by(Period::Week);
        assert_eq!(task.name(), "report");
        let pooled = support::block_on(pool.run(task)).unwrap().unwrap();
        assert_eq!(pooled, inline, "{threads} threads");
    }
    let json_a = serde_json::to_string(&inline).unwrap();
    let json_b =
        serde_json::to_string(&ReportTask::from_csv(csv).by(Period::Week).run().unwrap()).unwrap();
    assert_eq!(json_a, json_b);
}

#[test]
fn task_and_report_round_trip_through_serde() {
    let task = ReportTask::from_csv(synth::csv(100, 4))
        .by(Period::Day)
        .top(3);
    let back: ReportTask = serde_json::from_str(&serde_json::to_string(&task).unwrap()).unwrap();
    assert_eq!(back, task);
    let report = back.run().unwrap();
    let again: offload_tasks::Report =
        serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert_eq!(again, report);
}
