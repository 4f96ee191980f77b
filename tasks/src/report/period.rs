//! The buckets of the per-period table: which bucket a day falls in, and its label.

use super::types::Period;
use crate::calendar::{civil_from_days, iso_date, iso_week, weekday};

/// The bucket key of a day for a period: the day itself, the Monday starting its ISO week,
/// or `year * 12 + month - 1`.
pub(crate) fn period_key(period: Period, days: i32) -> i32 {
    match period {
        Period::Day => days,
        Period::Week => days - weekday(days),
        Period::Month => {
            let (y, m, _) = civil_from_days(days);
            y * 12 + m - 1
        }
    }
}

/// The label (`2024-03-05`, `2024-W10`, `2024-03`) and first day (ISO date) of a bucket.
pub(crate) fn period_label(period: Period, key: i32) -> (String, String) {
    match period {
        Period::Day => (iso_date(key), iso_date(key)),
        Period::Week => {
            let (iso_year, week) = iso_week(key);
            (format!("{iso_year:04}-W{week:02}"), iso_date(key))
        }
        Period::Month => {
            let (y, m) = (key.div_euclid(12), key.rem_euclid(12) + 1);
            (format!("{y:04}-{m:02}"), format!("{y:04}-{m:02}-01"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::days_from_civil;

    #[test]
    fn labels_at_year_edges() {
        let label =
            |period, y, m, d| period_label(period, period_key(period, days_from_civil(y, m, d)));
        let week = |y, m, d| label(Period::Week, y, m, d);
        assert_eq!(week(2021, 1, 3), ("2020-W53".into(), "2020-12-28".into()));
        assert_eq!(week(2021, 1, 4), ("2021-W01".into(), "2021-01-04".into()));
        assert_eq!(week(2024, 12, 30), ("2025-W01".into(), "2024-12-30".into()));
        assert_eq!(week(2026, 11, 26), ("2026-W48".into(), "2026-11-23".into()));
        assert_eq!(week(2015, 12, 31), ("2015-W53".into(), "2015-12-28".into()));
        assert_eq!(
            label(Period::Month, 2024, 12, 31),
            ("2024-12".into(), "2024-12-01".into())
        );
        assert_eq!(
            label(Period::Day, 2024, 2, 29),
            ("2024-02-29".into(), "2024-02-29".into())
        );
    }
}
