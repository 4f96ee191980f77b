//! Report totals checked against figures computed independently from the generated rows.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use offload::Task;
use offload_tasks::report::{Money, Period, ReportTask, synth};

/// Independent figures: plain loops in i128 cents over the generator's integer fields.
fn expected_sums(rows: &[synth::Row]) -> (i128, BTreeMap<String, (u64, i128)>) {
    let mut total = 0i128;
    let mut per_cat = BTreeMap::new();
    for r in rows {
        let amount = i128::from(r.quantity) * i128::from(r.unit_price_cents);
        total += amount;
        let e = per_cat
            .entry(r.category.to_owned())
            .or_insert((0u64, 0i128));
        e.0 += 1;
        e.1 += amount;
    }
    (total, per_cat)
}

#[test]
fn smoke() {
    let csv = "date,category,region,description,quantity,unit_price\n2024-01-05,A,EU,x,3,0.10\n";
    let report = ReportTask::from_csv(csv).run().unwrap();
    assert_eq!(report.overall.count, 1);
    assert_eq!(report.overall.sum, Money(30));
    assert_eq!(ReportTask::from_csv(csv).name(), "report");
}

#[test]
fn totals_match_to_the_cent() {
    // 3.5 MB: several parallel chunks.
    let rows = synth::rows(60_000, 7);
    let (total, per_cat) = expected_sums(&rows);
    let report = ReportTask::from_csv(synth::to_csv(&rows))
        .top(5)
        .run()
        .unwrap();
    assert_eq!(report.overall.count, rows.len() as u64);
    assert_eq!(i128::from(report.overall.sum.0), total);
    let min = rows
        .iter()
        .map(|r| r.quantity * r.unit_price_cents)
        .min()
        .unwrap();
    let max = rows
        .iter()
        .map(|r| r.quantity * r.unit_price_cents)
        .max()
        .unwrap();
    assert_eq!(report.overall.min, Some(Money(min)));
    assert_eq!(report.overall.max, Some(Money(max)));
    assert_eq!(report.categories.len(), per_cat.len());
    for c in &report.categories {
        let (count, sum) = per_cat[&c.category];
        assert_eq!(c.stats.count, count, "{}", c.category);
        assert_eq!(i128::from(c.stats.sum.0), sum, "{}", c.category);
    }
    // Categories sorted by name; top list by sum descending, and it is the true top 5.
    let names: Vec<_> = report
        .categories
        .iter()
        .map(|c| c.category.clone())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let mut by_sum: Vec<_> = per_cat.iter().map(|(k, v)| (v.1, k.clone())).collect();
    by_sum.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let top: Vec<_> = report
        .top_categories
        .iter()
        .map(|t| t.category.clone())
        .collect();
    let want: Vec<_> = by_sum.iter().take(5).map(|(_, k)| k.clone()).collect();
    assert_eq!(top, want);
}

#[test]
fn per_month_buckets_match() {
    let rows = synth::rows(20_000, 11);
    let mut per_month: BTreeMap<String, (u64, i128)> = BTreeMap::new();
    for r in &rows {
        let e = per_month.entry(r.date[..7].to_owned()).or_default();
        e.0 += 1;
        e.1 += i128::from(r.quantity) * i128::from(r.unit_price_cents);
    }
    let report = ReportTask::from_csv(synth::to_csv(&rows))
        .by(Period::Month)
        .run()
        .unwrap();
    let got: BTreeMap<String, (u64, i128)> = report
        .periods
        .iter()
        .map(|p| (p.period.clone(), (p.stats.count, i128::from(p.stats.sum.0))))
        .collect();
    assert_eq!(got, per_month);
    assert_eq!(
        report.periods[0].start,
        format!("{}-01", report.periods[0].period)
    );
}

#[test]
fn per_day_and_week_buckets_cover_every_row() {
    let rows = synth::rows(5_000, 3);
    let csv = synth::to_csv(&rows);
    let (total, _) = expected_sums(&rows);
    for period in [Period::Day, Period::Week] {
        let report = ReportTask::from_csv(csv.clone()).by(period).run().unwrap();
        let count: u64 = report.periods.iter().map(|p| p.stats.count).sum();
        let sum: i128 = report
            .periods
            .iter()
            .map(|p| i128::from(p.stats.sum.0))
            .sum();
        assert_eq!((count, sum), (rows.len() as u64, total), "{period:?}");
        let labels: Vec<_> = report.periods.iter().map(|p| p.start.clone()).collect();
        let mut sorted = labels.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(labels, sorted, "{period:?} buckets ascending and distinct");
    }
    let days: std::collections::BTreeSet<_> = rows.iter().map(|r| r.date.clone()).collect();
    let report = ReportTask::from_csv(csv).by(Period::Day).run().unwrap();
    assert_eq!(report.periods.len(), days.len());
}

#[test]
fn median_and_p95_are_nearest_rank() {
    let rows = synth::rows(30_000, 5);
    let report = ReportTask::from_csv(synth::to_csv(&rows)).run().unwrap();
    for c in &report.categories {
        let mut amounts: Vec<i64> = rows
            .iter()
            .filter(|r| r.category == c.category)
            .map(|r| r.quantity * r.unit_price_cents)
            .collect();
        amounts.sort_unstable();
        let n = amounts.len();
        let rank = |p: usize| (p * n).div_ceil(100); // 1-based nearest rank
        assert_eq!(
            c.stats.median,
            Money(amounts[rank(50) - 1]),
            "{}",
            c.category
        );
        assert_eq!(c.stats.p95, Money(amounts[rank(95) - 1]), "{}", c.category);
        let sum: i64 = amounts.iter().sum();
        let mean = (sum as f64 / n as f64).round() as i64; // small sums: f64 is exact enough here
        assert_eq!(c.stats.mean, Money(mean), "{}", c.category);
    }
}

#[test]
fn decimal_prices_have_no_float_drift() {
    // 0.10 added 100,000 times: floats drift, minor units do not.
    let mut csv = String::from("date,category,region,description,quantity,unit_price\n");
    for _ in 0..100_000 {
        csv.push_str("2024-01-01,Dimes,EU,coin,1,0.10\n");
    }
    let report = ReportTask::from_csv(csv).run().unwrap();
    assert_eq!(report.overall.sum, Money(1_000_000));
    assert_eq!(report.overall.sum.to_string(), "10000.00");
}
