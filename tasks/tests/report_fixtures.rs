//! A small hand-written file (CRLF, reordered header, quoted commas, escaped quotes, an
//! embedded line break, a refund, ISO-week year edges) with its figures worked out by hand.
#![allow(clippy::unwrap_used)]

use offload::Task;
use offload_tasks::report::{Money, Period, Report, ReportTask};

const CSV: &[u8] = include_bytes!("fixtures/report/tricky.csv");
const JSON: &[u8] = include_bytes!("fixtures/report/tricky.json");

// Amounts in cents, by hand:
//   2024-02-28 Books, Music   3 x 19.99  =    5997
//   2024-02-29 Toys          20 x  0.05  =     100
//   2024-03-01 Books, Music  -1 x 1000   = -100000
//   2024-12-30 Garden         2 x 12.5   =    2500
//   2025-01-05 Garden         1 x  7.10  =     710
const TOTAL: i64 = 5997 + 100 - 100_000 + 2500 + 710; // -90693

fn csv(period: Period) -> Report {
    ReportTask::from_csv(CSV).by(period).top(2).run().unwrap()
}

#[test]
fn smoke() {
    let r = csv(Period::Month);
    assert_eq!(r.overall.count, 5);
    assert_eq!(r.overall.sum, Money(TOTAL));
}

#[test]
fn overall_and_categories() {
    let r = csv(Period::Month);
    assert_eq!(r.overall.min, Some(Money(-100_000)));
    assert_eq!(r.overall.max, Some(Money(5997)));
    // -90693 / 5 = -18138.6, rounded half away from zero.
    assert_eq!(r.overall.mean, Some(Money(-18_139)));
    let cats: Vec<(&str, u64, i64)> = r
        .categories
        .iter()
        .map(|c| (c.category.as_str(), c.stats.count, c.stats.sum.0))
        .collect();
    assert_eq!(
        cats,
        [
            ("Books, Music", 2, 5997 - 100_000),
            ("Garden", 2, 3210),
            ("Toys", 1, 100)
        ]
    );
    let garden = &r.categories[1].stats;
    // Nearest rank over [710, 2500]: median = 1st, p95 = ceil(1.9) = 2nd.
    assert_eq!(
        (garden.median, garden.p95, garden.mean),
        (Money(710), Money(2500), Money(1605))
    );
    let top: Vec<&str> = r
        .top_categories
        .iter()
        .map(|t| t.category.as_str())
        .collect();
    assert_eq!(top, ["Garden", "Toys"]);
}

#[test]
fn months_and_iso_weeks() {
    let r = csv(Period::Month);
    let months: Vec<(&str, u64, i64)> = r
        .periods
        .iter()
        .map(|p| (p.period.as_str(), p.stats.count, p.stats.sum.0))
        .collect();
    assert_eq!(
        months,
        [
            ("2024-02", 2, 6097),
            ("2024-03", 1, -100_000),
            ("2024-12", 1, 2500),
            ("2025-01", 1, 710)
        ]
    );
    // Wed 2024-02-28 .. Fri 2024-03-01 share ISO week 9; Mon 2024-12-30 and Sun 2025-01-05
    // are both in 2025-W01.
    let r = csv(Period::Week);
    let weeks: Vec<(&str, &str, u64, i64)> = r
        .periods
        .iter()
        .map(|p| {
            (
                p.period.as_str(),
                p.start.as_str(),
                p.stats.count,
                p.stats.sum.0,
            )
        })
        .collect();
    assert_eq!(
        weeks,
        [
            ("2024-W09", "2024-02-26", 3, -93_903),
            ("2025-W01", "2024-12-30", 2, 3210)
        ]
    );
}

#[test]
fn json_fixture_gives_the_same_report() {
    for period in [Period::Day, Period::Week, Period::Month] {
        let json = ReportTask::from_json(JSON).by(period).top(2).run().unwrap();
        assert_eq!(json, csv(period), "{period:?}");
    }
}
